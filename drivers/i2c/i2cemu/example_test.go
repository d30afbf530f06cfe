package i2cemu_test

import (
	"context"
	"fmt"

	"periph.io/x/conn/v3/i2c/i2creg"
	"periph.io/x/conn/v3/physic"

	"github.com/insitu-lab/insitu/drivers/i2c/ads1115"
	"github.com/insitu-lab/insitu/drivers/i2c/i2cemu"
	"github.com/insitu-lab/insitu/drivers/i2c/mcp4728"
)

// A twin registers the emulated bus; the bench code opens it by name.
func Example() {
	twin := i2cemu.New(&i2cemu.Opts{
		// An inverting amplifier with gain −0.5 between DAC A and AIN0.
		Response: func(d [4]physic.ElectricPotential) [4]physic.ElectricPotential {
			return [4]physic.ElectricPotential{-d[0] / 2}
		},
	})
	if err := twin.Register("EMU-example"); err != nil {
		fmt.Println(err)
		return
	}
	defer i2creg.Unregister("EMU-example")

	bus, err := i2creg.Open("EMU-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer bus.Close()
	dac, _ := mcp4728.New(bus, &mcp4728.Opts{
		VDD:     5 * physic.Volt,
		Channel: [4]mcp4728.Config{{Ref: mcp4728.RefInternal}}, // 0.5 mV per code
	})
	adc, _ := ads1115.New(bus, nil)
	ain0, _ := adc.Open(ads1115.AIN0, 2048*physic.MilliVolt, 860)

	_ = dac.Set(0, 2*physic.Volt)
	v, err := ain0.Volts(context.Background())
	fmt.Println(v, err)
	// Output: -1V <nil>
}
