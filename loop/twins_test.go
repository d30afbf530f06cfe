package loop_test

import (
	"context"
	"strings"
	"testing"

	"github.com/insitu-lab/insitu"
	"github.com/insitu-lab/insitu/loop"
	"github.com/insitu-lab/insitu/simulators/opamp"
	"github.com/insitu-lab/insitu/simulators/optics"
)

// TestEveryMethodOnEveryTwin runs every method on the OWMS and op-amp twins
// through the same loop: the best objective never gets worse than the
// initial design's, and exact needs a Differentiable twin.
func TestEveryMethodOnEveryTwin(t *testing.T) {
	oc := optics.DefaultConfig()
	oc.N, oc.Pad = 8, 0
	owms, err := optics.New(oc)
	if err != nil {
		t.Fatal(err)
	}
	amp, err := opamp.New(opamp.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		box insitu.BlackBox
		obj loop.ObjectiveConfig
	}{
		{owms, loop.ObjectiveConfig{Kind: "distance"}},
		{amp, loop.ObjectiveConfig{Kind: "opamp-fom"}},
	} {
		obj, dir, err := loop.NewObjective(context.Background(), c.obj, c.box)
		if err != nil {
			t.Fatal(err)
		}
		p := loop.Problem{Box: c.box, Objective: obj, Direction: dir}
		if d, ok := c.box.(insitu.Differentiable); ok {
			p.Exact = d
		}
		for _, m := range loop.Methods() {
			cfg := loop.DefaultConfig()
			cfg.Method, cfg.Iterations, cfg.Init.Points, cfg.TopK = m, 5, 20, 2
			cfg.Surrogate.Hidden, cfg.Surrogate.InitialEpochs, cfg.Surrogate.Epochs, cfg.Surrogate.Batch = []int{16}, 3, 1, 32
			name := c.box.Spec().Name + "/" + m
			res, err := loop.Run(context.Background(), cfg, p, nil, nil)
			if m == loop.MethodExact && p.Exact == nil {
				if err == nil || !strings.Contains(err.Error(), "Differentiable") {
					t.Errorf("%s: want an error naming Differentiable, got %v", name, err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			first, last := res.Iterations[0].Best, res.Best.F
			worse := last > first
			if dir == loop.Maximize {
				worse = last < first
			}
			if worse || res.Queries != cfg.EffectiveBudget() {
				t.Errorf("%s: best %v after the initial %v, %d queries of %d", name, last, first, res.Queries, cfg.EffectiveBudget())
			}
		}
	}
}
