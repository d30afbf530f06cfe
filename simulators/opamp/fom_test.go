package opamp

import (
	"context"
	"math"
	"testing"

	"github.com/insitu-lab/insitu/loop"
)

func TestFoMValue(t *testing.T) {
	// 1.2·500/100 − 1.6·60/90 + 10·5e7/1e9 = 6 − 1.0667 + 0.5.
	got := FoM{}.Value([]float64{500, 60, 5e7})
	if want := 6 - 1.6*60/90 + 0.5; math.Abs(got-want) > 1e-12 {
		t.Errorf("FoM = %v, want %v", got, want)
	}
	if got := (FoM{}).Value([]float64{-500, 60, -5e7}); math.Abs(got-(6-1.6*60/90+0.5)) > 1e-12 {
		t.Errorf("FoM uses |G| and |UGBW|: got %v", got)
	}
}

// The objective as the loop builds it: direction max, value and gradient
// against central differences on the twin's outputs.
func TestFoMObjectiveGradient(t *testing.T) {
	ctx := context.Background()
	tw := newTwin(t, nil)
	obj, dir, err := loop.NewObjective(ctx, loop.ObjectiveConfig{Kind: "opamp-fom"}, tw)
	if err != nil {
		t.Fatal(err)
	}
	if dir != loop.Maximize {
		t.Errorf("direction %q, want max", dir)
	}
	for _, y := range [][]float64{{1234, 45, 2.5e7}, {-80, -20, 3e5}, {900, PenaltyPM, 1e3}} {
		g := obj.Grad(y)
		for i := range y {
			h := 1e-6 * max(1, math.Abs(y[i]))
			yp, ym := append([]float64(nil), y...), append([]float64(nil), y...)
			yp[i] += h
			ym[i] -= h
			fd := (obj.Value(yp) - obj.Value(ym)) / (2 * h)
			if math.Abs(fd-g[i]) > 1e-7*max(1e-8, math.Abs(fd)) {
				t.Errorf("y = %v: ∂FoM/∂%s = %v, finite differences %v", y, OutputNames[i], g[i], fd)
			}
		}
	}
	y, _ := tw.Query(ctx, nominal)
	if obj.Value(y) != (FoM{}).Value(y) {
		t.Error("objective and FoM disagree")
	}
	if _, _, err := loop.NewObjective(ctx, loop.ObjectiveConfig{Kind: "opamp-fom", Outputs: []string{"G"}}, tw); err == nil {
		t.Error("opamp-fom accepted an output selection")
	}
}
