//go:build widthexp

package study

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/insitu-lab/insitu"
	_ "github.com/insitu-lab/insitu/simulators/cnon" // registers kind cnon
	"github.com/insitu-lab/insitu/surrogate"
)

// TestInputWidthMechanism separates what a narrower input map changes. The
// network sees u = a·x + s for x in CNON's box [−1, 1]^N. Its first layer
// computes W·u + b = (a·W)·x + (b + W·s), so training on u with first-layer
// weights W is training on x with weights W' = a·W: the init of W' is a
// times PyTorch's, and since Adam's step on W is about lr whatever the
// gradient's scale, W' moves a·lr per step. Halving the width (a = 1/2)
// therefore halves both the first layer's init and its learning rate; the
// shift s only moves the first-layer bias. The variants below change one
// factor at a time.
//
// Run (18 models; 76 min with GOMAXPROCS=1 on a shared, loaded machine):
//
//	go test -tags widthexp -run TestInputWidthMechanism -v -timeout 2h ./loop/study/
func TestInputWidthMechanism(t *testing.T) {
	cfg := DefaultGradientConfig()
	cfg.Settings = cfg.Settings[:1] // N = 10, 1000 points
	cfg.File = ""
	cfg.BlackBox = map[string]any{"kind": "cnon", "horizon": 5, "steps": 50}
	p, err := newProblem(context.Background(), cfg, 0, cfg.Settings[0])
	if err != nil {
		t.Fatal(err)
	}
	n := p.dim
	box := func(lo, hi float64) insitu.Space { return insitu.Box(n, lo, hi) }
	type variant struct {
		name    string
		space   insitu.Space // the box the input map is built from
		in      surrogate.InputScaling
		w1      float64 // factor on the first layer's initial weights
		epochs  int
		lr      float64
		comment string
	}
	vs := []variant{
		{"box", box(-1, 1), surrogate.InputBox, 1, 100, 1e-3, "u = x"},
		{"unit", box(-1, 1), surrogate.InputUnit, 1, 100, 1e-3, "u = x/2 + 1/2"},
		{"half width", box(-2, 2), surrogate.InputBox, 1, 100, 1e-3, "u = x/2"},
		{"shift only", box(-2, 0), surrogate.InputBox, 1, 100, 1e-3, "u = x + 1"},
		{"box, init W1/2", box(-1, 1), surrogate.InputBox, 0.5, 100, 1e-3, "u = x, the init function of half width"},
		{"half width, init 2·W1", box(-2, 2), surrogate.InputBox, 2, 100, 1e-3, "u = x/2, the init of box: only W1's rate is halved"},
		{"unit, 2× epochs", box(-1, 1), surrogate.InputUnit, 1, 200, 1e-3, ""},
		{"unit, lr 2e-3", box(-1, 1), surrogate.InputUnit, 1, 100, 2e-3, ""},
		{"zscore", box(-1, 1), surrogate.InputZScore, 1, 100, 1e-3, "u = √3·x"},
	}
	fmt.Printf("| variant | map | MAE rel. error | GradPIE k=5 rel. error | ratio | MAE cos | GradPIE cos |\n|---|---|---|---|---|---|---|\n")
	for _, v := range vs {
		var rel, cos [2]float64
		for i, loss := range []surrogate.LossKind{surrogate.LossMAE, surrogate.LossGradPIE} {
			arch := surrogate.Arch{Hidden: cfg.Hidden, InputScaling: v.in, OutputScaling: surrogate.OutputZScore}
			m, err := surrogate.NewModel(v.space, len(p.box.Spec().Out), arch, cfg.Seed)
			if err != nil {
				t.Fatal(err)
			}
			w := m.MLP().Params()[:n*cfg.Hidden[0]] // W1, in×out row-major, first in the flat vector
			for j := range w {
				w[j] *= v.w1
			}
			tr, err := surrogate.NewTrainer(m, surrogate.TrainConfig{Loss: loss, K: 5, Batch: cfg.Batch, LR: v.lr}, cfg.Seed)
			if err != nil {
				t.Fatal(err)
			}
			d := surrogate.NewDataset(m)
			for j := range p.xs {
				d.Append(p.xs[j], p.ys[j])
			}
			start := time.Now()
			if _, err := tr.Fit(context.Background(), d, v.epochs, nil); err != nil {
				t.Fatal(err)
			}
			r := make([]float64, len(p.testX))
			c := make([]float64, len(p.testX))
			for j, x := range p.testX {
				r[j], c[j] = Compare(m.VJP(x, p.testV[j]), p.exact[j])
			}
			rel[i], _ = meanSD(r)
			cos[i], _ = meanSD(c)
			t.Logf("%s %s: %.1f s", v.name, loss, time.Since(start).Seconds())
		}
		fmt.Printf("| %s | %s | %.4f | %.4f | %.3f | %.4f | %.4f |\n", v.name, v.comment, rel[0], rel[1], rel[1]/rel[0], cos[0], cos[1])
	}
}

// TestInputWidthJacobianVariation looks inside the GradPIE models of
// TestInputWidthMechanism. For each, over 200 held-out points: the spread
// across the box of the first layer's pre-activations (the std over points
// of W·u + b, averaged over units: how much of the GELU's curved region
// the data spans), at init and after training; the Jacobian's variation
// across the box, mean ‖J(x) − J̄‖/‖J̄‖ with J̄ the mean Jacobian, against
// the exact map's; and the relative error of J split into the error of J̄
// (the linear part) and the error of J − J̄ (the varying part).
//
// Run (4 models; 9 min on the same machine):
//
//	go test -tags widthexp -run TestInputWidthJacobianVariation -v -timeout 2h ./loop/study/
func TestInputWidthJacobianVariation(t *testing.T) {
	cfg := DefaultGradientConfig()
	cfg.Settings = cfg.Settings[:1]
	cfg.BlackBox = map[string]any{"kind": "cnon", "horizon": 5, "steps": 50}
	p, err := newProblem(context.Background(), cfg, 0, cfg.Settings[0])
	if err != nil {
		t.Fatal(err)
	}
	n := p.dim
	out := len(p.box.Spec().Out)
	diff := p.box.(insitu.Differentiable)
	const nt = 200
	xs := p.testX[:nt]
	// Exact Jacobians, row by row through the VJP.
	exact := make([][]float64, nt)
	for i, x := range xs {
		exact[i] = make([]float64, out*n)
		for o := range out {
			v := make([]float64, out)
			v[o] = 1
			g, err := diff.VJP(context.Background(), x, v)
			if err != nil {
				t.Fatal(err)
			}
			copy(exact[i][o*n:], g)
		}
	}
	meanJ := func(js [][]float64) []float64 {
		m := make([]float64, len(js[0]))
		for _, j := range js {
			for k, v := range j {
				m[k] += v / float64(len(js))
			}
		}
		return m
	}
	norm := func(a []float64) float64 {
		var s float64
		for _, v := range a {
			s += v * v
		}
		return math.Sqrt(s)
	}
	sub := func(a, b []float64) []float64 {
		d := make([]float64, len(a))
		for k := range a {
			d[k] = a[k] - b[k]
		}
		return d
	}
	variation := func(js [][]float64) float64 {
		m := meanJ(js)
		var s float64
		for _, j := range js {
			s += norm(sub(j, m)) / norm(m) / float64(len(js))
		}
		return s
	}
	exMean := meanJ(exact)
	fmt.Printf("exact Jacobian: variation %.3f\n\n", variation(exact))
	fmt.Printf("| variant | pre-activation spread init → trained | Jacobian variation | error of J̄ | error of J − J̄ | rel. error of J |\n|---|---|---|---|---|---|\n")
	box := func(lo, hi float64) insitu.Space { return insitu.Box(n, lo, hi) }
	for _, v := range []struct {
		name  string
		space insitu.Space
		w1    float64
	}{
		{"box", box(-1, 1), 1},
		{"half width", box(-2, 2), 1},
		{"box, init W1/2", box(-1, 1), 0.5},
		{"half width, init 2·W1", box(-2, 2), 2},
	} {
		arch := surrogate.Arch{Hidden: cfg.Hidden, InputScaling: surrogate.InputBox, OutputScaling: surrogate.OutputZScore}
		m, err := surrogate.NewModel(v.space, out, arch, cfg.Seed)
		if err != nil {
			t.Fatal(err)
		}
		h := cfg.Hidden[0]
		w := m.MLP().Params()[:n*h]
		for j := range w {
			w[j] *= v.w1
		}
		spread := func() float64 {
			params := m.MLP().Params()
			w, b := params[:n*h], params[n*h:n*h+h]
			var s float64
			for u := range h {
				var mean, sq float64
				for _, x := range xs {
					xu := m.NormalizeInput(x)
					z := b[u]
					for i := range n {
						z += xu[i] * w[i*h+u]
					}
					mean += z / nt
					sq += z * z / nt
				}
				s += math.Sqrt(max(sq-mean*mean, 0)) / float64(h)
			}
			return s
		}
		s0 := spread()
		tr, _ := surrogate.NewTrainer(m, surrogate.TrainConfig{Loss: surrogate.LossGradPIE, K: 5, Batch: cfg.Batch, LR: cfg.LR}, cfg.Seed)
		d := surrogate.NewDataset(m)
		for j := range p.xs {
			d.Append(p.xs[j], p.ys[j])
		}
		if _, err := tr.Fit(context.Background(), d, cfg.Epochs, nil); err != nil {
			t.Fatal(err)
		}
		js := make([][]float64, nt)
		for i, x := range xs {
			js[i] = m.Jacobian(x)
		}
		mJ := meanJ(js)
		var errMean, errVar, errAll float64
		for i := range js {
			errAll += norm(sub(js[i], exact[i])) / norm(exact[i]) / nt
			errVar += norm(sub(sub(js[i], mJ), sub(exact[i], exMean))) / norm(sub(exact[i], exMean)) / nt
		}
		errMean = norm(sub(mJ, exMean)) / norm(exMean)
		fmt.Printf("| %s | %.3f → %.3f | %.3f | %.3f | %.3f | %.3f |\n", v.name, s0, spread(), variation(js), errMean, errVar, errAll)
	}
}
