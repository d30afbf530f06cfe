package surrogate

import (
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/insitu-lab/insitu"
)

// affineModel is the 1→1 model f(x) = w·u(x) + b with no hidden layer,
// where u is the input map of scaling s on the box [0, 6]; w and b are set
// so that f(x) = x + 5 in raw units whatever the map.
func affineModel(t *testing.T, s InputScaling) *Model {
	t.Helper()
	m, err := NewModel(insitu.Box(1, 0, 6), 1, Arch{InputScaling: s, OutputScaling: OutputNone}, 1)
	if err != nil {
		t.Fatal(err)
	}
	// u = (x − shift)·inv, so x + 5 = u/inv + shift + 5.
	p := m.MLP().Params() // [w, b]
	p[0], p[1] = 1/m.enc.inv[0], m.enc.shift[0]+5
	return m
}

// TestGradPIELossHandComputed pins the GradPIE-kNN loss and its parameter
// gradient on four points worked out by hand, and checks that they are not
// MAE's. Points x = 0, 1, 3, 6 with y = 0, 2, 2, 8 and k = 1: the nearest
// neighbours are 0→1, 1→0, 3→1, 6→3. The model predicts f = x + 5 = 5, 6, 8,
// 11, so the pair residuals (f_j − f_i) − (y_j − y_i) are −1, 1, −2, 3 and
//
//	L_GradPIE = (1 + 1 + 2 + 3)/4 = 1.75,  L_MAE = (5 + 4 + 6 + 3)/4 = 4.5.
//
// With f = w·x + b (input scaling none), ∂L/∂w = ¼ Σ sign(r)·(x_j − x_i) =
// ¼(−1 − 1 + 2 − 3) = −0.75 and ∂L/∂b = 0: the pair loss cannot see the
// offset. MAE's are ∂/∂w = ¼ Σ sign(f − y)·x = 2.5 and ∂/∂b = 1. Under the
// other input maps the same function has the same loss (the neighbours of
// a per-coordinate uniform scale are the same).
func TestGradPIELossHandComputed(t *testing.T) {
	xs, ys := []float64{0, 1, 3, 6}, []float64{0, 2, 2, 8}
	for _, s := range InputScalings {
		m := affineModel(t, s)
		d := NewDataset(m)
		for i := range xs {
			d.Append([]float64{xs[i]}, []float64{ys[i]})
		}
		m.SetOutputScale(d.ys()) // none: mean 0, std 1, the raw outputs
		gp, _ := NewTrainer(m, TrainConfig{Loss: LossGradPIE, K: 1}, 1)
		mae, _ := NewTrainer(m, TrainConfig{Loss: LossMAE}, 1)
		lg, err := gp.Loss(d)
		if err != nil {
			t.Fatal(err)
		}
		lm, _ := mae.Loss(d)
		if math.Abs(lg-1.75) > 1e-12 || math.Abs(lm-4.5) > 1e-12 {
			t.Errorf("%s: GradPIE loss %v (want 1.75), MAE loss %v (want 4.5)", s, lg, lm)
		}
		if s != InputNone {
			continue
		}
		d.useK(1)
		for i, want := range [][]int{{1}, {0}, {1}, {2}} {
			if got := d.neighbors(i); !slices.Equal(got, want) {
				t.Errorf("neighbours of point %d: %v, want %v", i, got, want)
			}
		}
		grad := func(tr *Trainer) []float64 {
			all := []int{0, 1, 2, 3}
			rows := tr.gather(d, all)
			pred := m.mlp.trainForward(tr.xb[:rows], rows)
			g := make([]float64, rows)
			tr.lossGrad(pred, tr.yb[:rows], len(all), tr.pairs, g)
			m.mlp.ZeroGrad()
			m.mlp.net.backwardTrain(g, false, false)
			return slices.Clone(m.mlp.Grads())
		}
		if g := grad(gp); math.Abs(g[0]+0.75) > 1e-12 || g[1] != 0 {
			t.Errorf("GradPIE gradient (∂w, ∂b) = %v, want (−0.75, 0)", g)
		}
		if g := grad(mae); math.Abs(g[0]-2.5) > 1e-12 || math.Abs(g[1]-1) > 1e-12 {
			t.Errorf("MAE gradient (∂w, ∂b) = %v, want (2.5, 1)", g)
		}
		// Through Fit: Adam's first step moves each parameter by lr against
		// its gradient's sign and leaves a zero-gradient parameter alone.
		const lr = 0.01
		for _, c := range []struct {
			loss   LossKind
			dw, db float64
		}{{LossGradPIE, lr, 0}, {LossMAE, -lr, -lr}} {
			m := affineModel(t, InputNone)
			d2 := NewDataset(m)
			for i := range xs {
				d2.Append([]float64{xs[i]}, []float64{ys[i]})
			}
			tr, _ := NewTrainer(m, TrainConfig{Loss: c.loss, K: 1, Batch: 4, LR: lr}, 1)
			if _, err := tr.Fit(t.Context(), d2, 1, nil); err != nil {
				t.Fatal(err)
			}
			p := m.MLP().Params()
			if math.Abs(p[0]-1-c.dw) > 1e-9 || math.Abs(p[1]-5-c.db) > 1e-9 {
				t.Errorf("%s: one Fit step moved (w, b) by (%v, %v), want (%v, %v)", c.loss, p[0]-1, p[1]-5, c.dw, c.db)
			}
		}
	}
}

// TestGradPIEPairsAreTrueNeighbours checks, under every input scaling, that
// the pairs a GradPIE minibatch trains on are each anchor with its true k
// nearest neighbours in the scaled input space (brute force over the
// model's own map), and that this space is the one the scaling defines:
// on a box of unequal widths the raw inputs (none) have other neighbours
// than the width-normalized maps, which all agree.
func TestGradPIEPairsAreTrueNeighbours(t *testing.T) {
	const n, k = 60, 4
	lists := map[InputScaling][][]int{}
	for _, s := range InputScalings {
		m, err := NewModel(oddSpace(), 1, Arch{Hidden: []int{4}, InputScaling: s}, 1)
		if err != nil {
			t.Fatal(err)
		}
		rng := newRand(11)
		sp := m.Space()
		d := NewDataset(m)
		var scaled [][]float64
		for range n {
			x := make([]float64, sp.Dim())
			for j := range x {
				x[j] = sp.Lower[j] + rng.Float64()*(sp.Upper[j]-sp.Lower[j])
			}
			d.Append(x, []float64{x[0]})
			scaled = append(scaled, m.NormalizeInput(x))
		}
		want := naiveNeighbors(scaled, k)
		lists[s] = want
		tr, _ := NewTrainer(m, TrainConfig{Loss: LossGradPIE, K: k, Batch: 16}, 1)
		var checked int
		tr.onBatch = func(anchors, unique []int) {
			got := make([][]int, len(anchors))
			for _, p := range tr.pairs {
				a := unique[p[0]]
				if p[0] >= len(anchors) || anchors[p[0]] != a {
					t.Fatalf("%s: pair (%d, %d) does not start at an anchor row", s, p[0], p[1])
				}
				got[p[0]] = append(got[p[0]], unique[p[1]])
			}
			for r, a := range anchors {
				if !slices.Equal(got[r], want[a]) {
					t.Errorf("%s: anchor %d is paired with %v, its %d nearest are %v", s, a, got[r], k, want[a])
				}
				checked++
			}
		}
		if _, err := tr.Fit(t.Context(), d, 1, nil); err != nil {
			t.Fatal(err)
		}
		if checked != n {
			t.Errorf("%s: %d anchors checked, want %d", s, checked, n)
		}
	}
	for _, s := range []InputScaling{InputBox, InputZScore} {
		if !slices.EqualFunc(lists[s], lists[InputUnit], slices.Equal) {
			t.Errorf("%s and unit have different neighbours: a uniform per-coordinate scale should not change them", s)
		}
	}
	if slices.EqualFunc(lists[InputNone], lists[InputUnit], slices.Equal) {
		t.Error("raw and width-normalized inputs have the same neighbours on a box of unequal widths: the test proves nothing")
	}
}

// sinGradErr trains a 16-16 surrogate of sinTarget on n points with loss
// and returns the mean relative error of its VJP against the exact one at
// 200 held-out points with random cotangents.
func sinGradErr(t *testing.T, loss LossKind, n, epochs int, seed uint64) float64 {
	t.Helper()
	m := newSinModel(t, Arch{Hidden: []int{16, 16}}, seed)
	d := sinData(t, m, n, seed+100)
	tr, err := NewTrainer(m, TrainConfig{Loss: loss, K: 5, Batch: 32, LR: 3e-3}, seed)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Fit(t.Context(), d, epochs, nil); err != nil {
		t.Fatal(err)
	}
	rng := newRand(seed + 1000)
	s := m.Space()
	const nt = 200
	var e float64
	for range nt {
		x := make([]float64, s.Dim())
		for j := range x {
			x[j] = s.Lower[j] + rng.Float64()*(s.Upper[j]-s.Lower[j])
		}
		v := randVec(rng, 2, 1)
		a, b := x[0]+2*x[1]-x[2], x[0]-0.5*x[2]
		exact := []float64{
			v[0]*math.Cos(a) - 3*v[1]*math.Sin(b),
			2*v[0]*math.Cos(a) + v[1],
			-v[0]*math.Cos(a) + 1.5*v[1]*math.Sin(b),
		}
		e += relErr(m.VJP(x, v), exact) / nt
	}
	return e
}

// TestGradPIEBeatsMAEGradient is the method's claim end to end, small enough
// to run in every test pass: with 100 points of a smooth 3→2 map, a
// surrogate trained on neighbour differences has a clearly better input
// gradient than the same network, init and minibatch order trained on
// values. Under the default scalings, over seeds 1–40 the ratio of the two
// errors was 0.40 on average and 0.60 at worst. A GradPIE trainer whose loss
// silently became MAE (on its anchors and their neighbours) gives 0.76–0.88
// on these seeds, and the plain MAE model exactly 1.
func TestGradPIEBeatsMAEGradient(t *testing.T) {
	var mean float64
	seeds := []uint64{1, 2, 3}
	for _, seed := range seeds {
		mae := sinGradErr(t, LossMAE, 100, 50, seed)
		gp := sinGradErr(t, LossGradPIE, 100, 50, seed)
		r := gp / mae
		t.Logf("seed %d: VJP relative error MAE %.3f, GradPIE %.3f (ratio %.2f)", seed, mae, gp, r)
		if !(r < 0.7) {
			t.Errorf("seed %d: GradPIE's gradient error %.3f is not clearly below MAE's %.3f", seed, gp, mae)
		}
		mean += r / float64(len(seeds))
	}
	if !(mean < 0.6) {
		t.Errorf("mean error ratio GradPIE/MAE %.2f, want < 0.6", mean)
	}
}

func ExampleInputScaling() {
	for _, s := range InputScalings {
		m, _ := NewModel(insitu.Box(1, 10, 14), 1, Arch{InputScaling: s}, 1)
		fmt.Printf("%-6s %v\n", s, [][]float64{m.NormalizeInput([]float64{10}), m.NormalizeInput([]float64{14})})
	}
	// A periodic coordinate under circle: its point on the unit circle.
	phase := insitu.Box(1, 0, 2*math.Pi)
	phase.Periodic = []bool{true}
	m, _ := NewModel(phase, 1, Arch{InputScaling: InputCircle}, 1)
	fmt.Printf("circle of a phase: %.3f %.3f\n", m.NormalizeInput([]float64{0}), m.NormalizeInput([]float64{math.Pi / 2}))
	// Output:
	// none   [[10] [14]]
	// box    [[-1] [1]]
	// zscore [[-1.7320508075688772] [1.7320508075688772]]
	// unit   [[0] [1]]
	// circle [[-1] [1]]
	// circle of a phase: [1.000 0.000] [0.000 1.000]
}
