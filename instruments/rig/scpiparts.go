package rig

import (
	"context"

	"github.com/insitu-lab/insitu"
	"github.com/insitu-lab/insitu/instruments/powermeter"
	"github.com/insitu-lab/insitu/instruments/smu"
)

// The SCPI instruments join rigs as parts: a source-measure unit is an
// actuator (its level) and a sensor (voltage and current read back), a
// power meter a sensor.
func init() {
	RegisterPart("smu", func(ctx context.Context, p insitu.Params, _ map[string]Part) (Part, error) {
		var c smu.Config
		if err := Decode(p, &c); err != nil {
			return nil, err
		}
		return smu.Open(ctx, c)
	})
	RegisterPart("powermeter", func(ctx context.Context, p insitu.Params, _ map[string]Part) (Part, error) {
		var c powermeter.Config
		if err := Decode(p, &c); err != nil {
			return nil, err
		}
		return powermeter.Open(ctx, c)
	})
}
