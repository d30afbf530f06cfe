package surrogate

import (
	"math"
	"slices"
	"testing"
)

// smoothPair returns pred and target (rows×out) whose elementwise
// differences pred − target = 0.37·(i+1) + 0.011·o, so every residual of
// MAE and every pair residual of GradPIE (i ≠ j) is at least 0.36 from the
// kink at 0: finite differences never cross it.
func smoothPair(rows, out int, seed uint64) (pred, target []float64) {
	rng := newRand(seed)
	target = randVec(rng, rows*out, 1)
	pred = make([]float64, rows*out)
	for i := range rows {
		for o := range out {
			pred[i*out+o] = target[i*out+o] + 0.37*float64(i+1) + 0.011*float64(o)
		}
	}
	return pred, target
}

func testPairs() [][2]int {
	return [][2]int{{0, 1}, {0, 2}, {1, 3}, {2, 0}, {3, 4}, {4, 1}, {4, 2}}
}

func TestLossGradients(t *testing.T) {
	const rows, out = 5, 3
	pred, target := smoothPair(rows, out, 1)
	for _, tc := range []struct {
		name string
		loss func(pred, grad []float64) float64
	}{
		{"MAE", func(p, g []float64) float64 { return MAE(p, target, g) }},
		{"MSE", func(p, g []float64) float64 { return MSE(p, target, g) }},
		{"GradPIE l1", func(p, g []float64) float64 { return GradPIELoss(p, target, out, testPairs(), NormL1, g) }},
		{"GradPIE default norm", func(p, g []float64) float64 { return GradPIELoss(p, target, out, testPairs(), "", g) }},
		{"GradPIE l2", func(p, g []float64) float64 { return GradPIELoss(p, target, out, testPairs(), NormL2, g) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			grad := make([]float64, len(pred))
			for i := range grad {
				grad[i] = 123 // must be overwritten, not accumulated into
			}
			l := tc.loss(pred, grad)
			if l2 := tc.loss(pred, nil); l2 != l {
				t.Errorf("loss with nil grad %v, with grad %v", l2, l)
			}
			checkGrad(t, tc.name, grad, numGrad(pred, func() float64 { return tc.loss(pred, nil) }))
		})
	}
}

func TestLossValues(t *testing.T) {
	pred, target := []float64{1, 2, 3, 4}, []float64{0, 2, 5, 4}
	if got := MAE(pred, target, nil); got != 0.75 {
		t.Errorf("MAE = %v, want 0.75", got)
	}
	if got := MSE(pred, target, nil); got != 1.25 {
		t.Errorf("MSE = %v, want 1.25", got)
	}
	// Two rows of two outputs, one pair: r = (pred1 − pred0) − (t1 − t0) = (3−1, 4−2) − (5−0, 4−2) = (−3, 0).
	pairs := [][2]int{{0, 1}}
	if got := GradPIELoss(pred, target, 2, pairs, NormL1, nil); got != 1.5 {
		t.Errorf("GradPIE l1 = %v, want 1.5", got)
	}
	if got := GradPIELoss(pred, target, 2, pairs, NormL2, nil); got != 4.5 {
		t.Errorf("GradPIE l2 = %v, want 4.5", got)
	}
	if got := GradPIELoss(pred, target, 2, nil, NormL1, nil); got != 0 {
		t.Errorf("GradPIE without pairs = %v, want 0", got)
	}
}

func TestGradPIEIgnoresOffsets(t *testing.T) {
	const rows, out = 5, 3
	pred, target := smoothPair(rows, out, 2)
	for _, norm := range []string{NormL1, NormL2} {
		g0 := make([]float64, len(pred))
		l0 := GradPIELoss(pred, target, out, testPairs(), norm, g0)
		// A constant per output component added to all targets, and another to all predictions.
		shifted, shiftedPred := slices.Clone(target), slices.Clone(pred)
		for i := range shifted {
			shifted[i] += 3.25 - 1.5*float64(i%out)
			shiftedPred[i] -= 0.75
		}
		g1 := make([]float64, len(pred))
		l1 := GradPIELoss(shiftedPred, shifted, out, testPairs(), norm, g1)
		if math.Abs(l1-l0) > 1e-12*l0 || relErr(g1, g0) > 1e-12 {
			t.Errorf("%s: loss %v → %v after shifting targets", norm, l0, l1)
		}
		// Predictions equal to targets plus a constant: zero loss (up to
		// rounding), and for l2 zero gradient; l1's gradient is the sign of
		// the rounding residue.
		off := slices.Clone(target)
		for i := range off {
			off[i] += 7
		}
		if l := GradPIELoss(off, target, out, testPairs(), norm, g1); l > 1e-12 {
			t.Errorf("%s: loss %v for targets plus a constant", norm, l)
		}
		for _, g := range g1 {
			if norm == NormL2 && math.Abs(g) > 1e-12 {
				t.Fatalf("%s: gradient %v for targets plus a constant", norm, g)
			}
		}
	}
}

func TestGradPIELambdaGradient(t *testing.T) {
	const rows, out, anchors = 5, 3, 2
	pred, target := smoothPair(rows, out, 3)
	m, _ := NewModel(boxSpace(2), out, Arch{}, 1)
	for _, norm := range []string{NormL1, NormL2} {
		tr, err := NewTrainer(m, TrainConfig{Loss: LossGradPIE, K: 2, Norm: norm, Lambda: 0.3}, 1)
		if err != nil {
			t.Fatal(err)
		}
		grad := make([]float64, len(pred))
		l := tr.lossGrad(pred, target, anchors, testPairs(), grad)
		want := GradPIELoss(pred, target, out, testPairs(), norm, nil) + 0.3*MAE(pred[:anchors*out], target[:anchors*out], nil)
		if math.Abs(l-want) > 1e-15 {
			t.Errorf("%s: loss %v, want gradpie + 0.3·MAE(anchors) = %v", norm, l, want)
		}
		checkGrad(t, "gradpie+λ·MAE "+norm, grad, numGrad(pred, func() float64 {
			return tr.lossGrad(pred, target, anchors, testPairs(), nil)
		}))
	}
}

func TestLossPanicsOnMismatch(t *testing.T) {
	for name, f := range map[string]func(){
		"MAE":          func() { MAE([]float64{1}, []float64{1, 2}, nil) },
		"MSE grad":     func() { MSE([]float64{1}, []float64{1}, []float64{1, 2}) },
		"GradPIE rows": func() { GradPIELoss([]float64{1, 2, 3}, []float64{1, 2, 3}, 2, nil, "", nil) },
		"GradPIE pair": func() { GradPIELoss([]float64{1, 2}, []float64{1, 2}, 1, [][2]int{{0, 2}}, "", nil) },
		"GradPIE norm": func() { GradPIELoss([]float64{1, 2}, []float64{1, 2}, 1, nil, "l3", nil) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}
