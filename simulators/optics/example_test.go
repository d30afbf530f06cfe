package optics_test

import (
	"context"
	"fmt"
	"math"

	"github.com/insitu-lab/insitu/simulators/optics"
)

// Build the default 60×60 twin, apply a flat phase and score it against
// the two-spot target.
func Example() {
	tw, err := optics.New(optics.DefaultConfig())
	if err != nil {
		panic(err)
	}
	x := make([]float64, 3600) // φ = 0 everywhere
	y, err := tw.Query(context.Background(), x)
	if err != nil {
		panic(err)
	}
	_, target := tw.Target(0)
	var d float64
	for i := range y {
		d += (y[i] - target[i]) * (y[i] - target[i])
	}
	field, _ := tw.Losses(x)
	fmt.Printf("%d phases, %d outputs, FFT %d²\n", tw.Spec().In.Dim(), len(y), tw.FFTSize())
	fmt.Printf("distance %.4f = field loss %.4f\n", math.Sqrt(d), field)
	// Output:
	// 3600 phases, 7200 outputs, FFT 128²
	// distance 1.5771 = field loss 1.5771
}
