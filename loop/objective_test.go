package loop

import (
	"context"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/insitu-lab/insitu"
)

// spotBox names outputs and, like an image twin, its spots.
type spotBox struct {
	staticBox
	spots []int
	tgt   []float64
}

func (b spotBox) Spots() []int { return b.spots }

func (b spotBox) Target(uint64) ([]float64, []float64) { return nil, b.tgt }

// centralGrad is the central-difference gradient of o.Value at y.
func centralGrad(o Objective, y []float64) []float64 {
	g := make([]float64, len(y))
	const h = 1e-6
	for i := range y {
		y0 := y[i]
		y[i] = y0 + h
		fp := o.Value(y)
		y[i] = y0 - h
		fm := o.Value(y)
		y[i] = y0
		g[i] = (fp - fm) / (2 * h)
	}
	return g
}

func TestFractionAndOverlap(t *testing.T) {
	box := spotBox{staticBox: staticBox{out: []string{"a", "b", "c", "d", "e"}}, spots: []int{1, 3}, tgt: []float64{0, 2, 0, 1, 0}}
	ctx := context.Background()
	cases := []struct {
		cfg   ObjectiveConfig
		value func(y []float64) float64
	}{
		{ObjectiveConfig{Kind: "fraction"}, func(y []float64) float64 { return (y[1] + y[3]) / (y[0] + y[1] + y[2] + y[3] + y[4]) }},
		{ObjectiveConfig{Kind: "fraction", Outputs: []string{"a"}, Total: []string{"a", "b"}}, func(y []float64) float64 { return y[0] / (y[0] + y[1]) }},
		{ObjectiveConfig{Kind: "overlap"}, func(y []float64) float64 {
			return (2*y[1] + y[3]) / math.Sqrt(5) / math.Sqrt(y[0]*y[0]+y[1]*y[1]+y[2]*y[2]+y[3]*y[3]+y[4]*y[4])
		}},
		{ObjectiveConfig{Kind: "overlap", Outputs: []string{"b", "c"}, Target: []float64{1, 1}}, func(y []float64) float64 {
			return (y[1] + y[2]) / math.Sqrt2 / math.Sqrt(y[1]*y[1]+y[2]*y[2])
		}},
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tc := range cases {
		o, dir, err := NewObjective(ctx, tc.cfg, box)
		if err != nil {
			t.Fatalf("%+v: %v", tc.cfg, err)
		}
		if dir != Maximize {
			t.Errorf("%s: direction %s, want max", tc.cfg.Kind, dir)
		}
		for range 5 {
			y := make([]float64, 5)
			for i := range y {
				y[i] = 0.1 + rng.Float64()
			}
			if got, want := o.Value(y), tc.value(y); math.Abs(got-want) > 1e-14 {
				t.Errorf("%+v: value %v, direct %v", tc.cfg, got, want)
			}
			g, num := o.Grad(y), centralGrad(o, y)
			for i := range g {
				if math.Abs(g[i]-num[i]) > 1e-7 {
					t.Errorf("%+v: ∂/∂y[%d] = %v, finite difference %v", tc.cfg, i, g[i], num[i])
				}
			}
		}
		// A dark frame scores 0 with a zero gradient, not NaN.
		dark := make([]float64, 5)
		if v, g := o.Value(dark), o.Grad(dark); v != 0 || g[0] != 0 || g[1] != 0 {
			t.Errorf("%s of a dark frame: %v, %v", tc.cfg.Kind, v, g)
		}
	}
	// The overlap of the target with itself is 1, and of any other pattern less.
	o, _, _ := NewObjective(ctx, ObjectiveConfig{Kind: "overlap"}, box)
	if v := o.Value([]float64{0, 4, 0, 2, 0}); math.Abs(v-1) > 1e-15 {
		t.Errorf("overlap of the target with itself %v", v)
	}
	for _, bad := range []struct {
		cfg  ObjectiveConfig
		box  insitu.BlackBox
		want string
	}{
		{ObjectiveConfig{Kind: "fraction"}, staticBox{out: []string{"a"}}, "objective.outputs"},
		{ObjectiveConfig{Kind: "fraction", Total: []string{"zz"}}, box, "objective.total"},
		{ObjectiveConfig{Kind: "fraction", Target: []float64{1}}, box, "objective.target"},
		{ObjectiveConfig{Kind: "overlap"}, staticBox{out: []string{"a"}}, "objective.target"},
		{ObjectiveConfig{Kind: "overlap", Target: []float64{0, 0, 0, 0, 0}}, box, "objective.target"},
	} {
		if _, _, err := NewObjective(ctx, bad.cfg, bad.box); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%+v: error %v, want one naming %s", bad.cfg, err, bad.want)
		}
	}
}

// A misspelt output of a box with thousands names the key, the output and a
// few of the box's outputs, not all of them.
func TestUnknownOutputErrorIsShort(t *testing.T) {
	for _, n := range []int{3, 3600} {
		out := make([]string, n)
		for i := range out {
			out[i] = "E" + strings.Repeat("x", 3) + string(rune('a'+i%26))
		}
		out[0], out[n-1] = "first", "last"
		_, err := selectNames("objective.outputs", []string{"nope"}, staticBox{out}.Spec())
		if err == nil {
			t.Fatalf("%d outputs: no error for an unknown name", n)
		}
		msg := err.Error()
		for _, want := range []string{"objective.outputs", `"nope"`, "first", "last"} {
			if !strings.Contains(msg, want) {
				t.Errorf("%d outputs: %q lacks %s", n, msg, want)
			}
		}
		if n > 8 && (len(msg) > 200 || !strings.Contains(msg, "3600 in all")) {
			t.Errorf("%d outputs: %d-byte message %q", n, len(msg), msg)
		}
	}
}
