package loop

import (
	"context"
	"math"
	"slices"
	"testing"

	"github.com/insitu-lab/insitu"
	"github.com/insitu-lab/insitu/loop/journal"
)

// rampBox is y = x on [0, 4]^d with its exact VJP.
type rampBox struct{ d int }

func (b rampBox) Spec() insitu.Spec {
	out := make([]string, b.d)
	for i := range out {
		out[i] = string(rune('a' + i))
	}
	return insitu.Spec{Name: "ramp", In: insitu.Box(b.d, 0, 4), Out: out}
}

func (b rampBox) Query(_ context.Context, x []float64) ([]float64, error) {
	return slices.Clone(x), nil
}

func (b rampBox) VJP(_ context.Context, _, v []float64) ([]float64, error) {
	return slices.Clone(v), nil
}

// sumObjective is Σy, minimized: its gradient is constant.
type sumObjective struct{}

func (sumObjective) Value(y []float64) float64 {
	var s float64
	for _, v := range y {
		s += v
	}
	return s
}

func (sumObjective) Grad(y []float64) []float64 {
	g := make([]float64, len(y))
	for i := range g {
		g[i] = 1
	}
	return g
}

func TestStepRateSchedule(t *testing.T) {
	c := Config{StepLR: 0.1, StepLRFinal: 0.01, Iterations: 11}
	for _, tc := range []struct {
		t    int
		want float64
	}{{0, 0.1}, {1, 0.1}, {6, 0.055}, {11, 0.01}, {20, 0.01}} {
		if got := c.StepRate(tc.t); math.Abs(got-tc.want) > 1e-15 {
			t.Errorf("StepRate(%d) = %v, want %v", tc.t, got, tc.want)
		}
	}
	// A half cosine: at t = 3, a fifth of the way, (1 + cos(π/5))/2 of the fall is still to come.
	if got, want := c.StepRate(3), 0.01+0.09*(1+math.Cos(math.Pi*0.2))/2; math.Abs(got-want) > 1e-15 {
		t.Errorf("StepRate(3) = %v, want %v", got, want)
	}
	for tt := 2; tt <= c.Iterations; tt++ {
		if c.StepRate(tt) > c.StepRate(tt-1) {
			t.Errorf("rate rises from %v to %v at %d", c.StepRate(tt-1), c.StepRate(tt), tt)
		}
	}
	c.StepLRFinal = 0
	if c.StepRate(7) != 0.1 {
		t.Errorf("without step_lr_final the rate is %v, want step_lr", c.StepRate(7))
	}
	bad := DefaultConfig()
	bad.StepLRFinal = math.NaN()
	if err := bad.Validate(); err == nil {
		t.Error("step_lr_final NaN accepted")
	}
}

// The online loop steps with the scheduled rate: on Σx with a constant
// gradient every Adam step moves each normalized coordinate by exactly the
// iteration's rate, and every step improves, so the best point steps next.
func TestOnlineStepsFollowTheSchedule(t *testing.T) {
	box := rampBox{d: 3}
	cfg := DefaultConfig()
	cfg.Method, cfg.Iterations, cfg.TopK, cfg.Local.Samples = MethodExact, 6, 1, 0
	cfg.Init.X = [][]float64{{2, 2, 2}}
	cfg.StepLR, cfg.StepLRFinal = 0.05, 0.005
	j := createJournal(t, t.TempDir(), MethodExact)
	defer j.Close()
	if _, err := Run(context.Background(), cfg, Problem{Box: box, Objective: sumObjective{}, Direction: Minimize, Exact: box}, j, nil); err != nil {
		t.Fatal(err)
	}
	qs, err := j.Queries(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	prev := []float64{2, 2, 2}
	n := 0
	for _, q := range qs {
		if q.Role != journal.RoleStep {
			continue
		}
		n++
		want := cfg.StepRate(q.Iteration) * 4 // normalized rate × the box's width
		for i := range prev {
			if d := prev[i] - q.X[i]; math.Abs(d-want) > 1e-9 {
				t.Errorf("iteration %d: coordinate %d moved %v, want %v", q.Iteration, i, d, want)
			}
		}
		prev = q.X
	}
	if n != cfg.Iterations {
		t.Errorf("%d steps journaled, want %d", n, cfg.Iterations)
	}
}
