package opamp_test

import (
	"context"
	"fmt"

	"github.com/insitu-lab/insitu/simulators/opamp"
)

// Size the amplifier: 8/1 µm bias, 16/1 µm pair, 8/1 µm load, 16/0.5 µm
// gain stage, r = 2, Cc = 2 pF, on the analytic backend.
func Example() {
	tw, err := opamp.New(opamp.DefaultConfig())
	if err != nil {
		panic(err)
	}
	y, err := tw.Query(context.Background(), []float64{8, 1, 16, 1, 8, 1, 16, 0.5, 2, 2})
	if err != nil {
		panic(err)
	}
	fmt.Printf("G = %.0f V/V, PM = %.1f°, UGBW = %.1f MHz, FoM = %.2f\n", y[0], y[1], y[2]/1e6, opamp.FoM{}.Value(y))
	// Output: G = 2188 V/V, PM = 39.8°, UGBW = 19.9 MHz, FoM = 25.74
}
