package cnon_test

import (
	"context"
	"fmt"

	"github.com/insitu-lab/insitu"
	"github.com/insitu-lab/insitu/simulators/cnon"
)

// Steer the network to a reachable target by gradient descent with the
// twin's exact VJP: the exact-gradient baseline a surrogate is compared with.
func Example() {
	ctx := context.Background()
	box, err := insitu.New(ctx, insitu.Params{Kind: "cnon", Values: map[string]any{"n": 10}})
	if err != nil {
		panic(err)
	}
	twin := box.(*cnon.Twin)
	_, target := twin.Target(7)
	obj := cnon.Distance{Target: target}

	x := make([]float64, 10) // start from rest at q = 0
	y, _ := twin.Query(ctx, x)
	fmt.Printf("start:     ‖q(T) − target‖ = %.2f\n", obj.Value(y))
	for range 200 {
		// Descend on ½‖q(T) − target‖²: its gradient is the distance times
		// that of the distance, and it shrinks near the target.
		d := obj.Value(y)
		g, err := twin.VJP(ctx, x, obj.Grad(y))
		if err != nil {
			panic(err)
		}
		for i := range x {
			x[i] -= d * g[i]
		}
		twin.Spec().In.Clamp(x)
		if y, err = twin.Query(ctx, x); err != nil {
			panic(err)
		}
	}
	fmt.Printf("200 steps: ‖q(T) − target‖ < 0.001: %v\n", obj.Value(y) < 0.001)
	// Output:
	// start:     ‖q(T) − target‖ = 1.27
	// 200 steps: ‖q(T) − target‖ < 0.001: true
}
