package surrogate

import (
	"bytes"
	"context"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/insitu-lab/insitu"
)

// sinSpace is the 3-D box of the training tests; it is not [0,1]³ so the
// normalization matters.
func sinSpace() insitu.Space {
	return insitu.Space{Lower: []float64{-1, 0, -2}, Upper: []float64{2, 1, 1}}
}

// sinTarget is a smooth 3→2 function.
func sinTarget(x []float64) []float64 {
	return []float64{math.Sin(x[0] + 2*x[1] - x[2]), 3*math.Cos(x[0]-0.5*x[2]) + x[1]}
}

func sinData(t testing.TB, m *Model, n int, seed uint64) *Dataset {
	t.Helper()
	rng := newRand(seed)
	s := m.Space()
	d := NewDataset(m)
	for range n {
		x := make([]float64, s.Dim())
		for j := range x {
			x[j] = s.Lower[j] + rng.Float64()*(s.Upper[j]-s.Lower[j])
		}
		d.Append(x, sinTarget(x))
	}
	return d
}

func newSinModel(t testing.TB, arch Arch, seed uint64) *Model {
	t.Helper()
	m, err := NewModel(sinSpace(), 2, arch, seed)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestTrainConfigValidate(t *testing.T) {
	good := []TrainConfig{
		{Loss: LossMAE},
		{Loss: LossMSE, Batch: 8, LR: 0.1},
		{Loss: LossGradPIE, K: 1},
		{Loss: LossGradPIE, K: 5, Norm: NormL2, Lambda: 0.5},
	}
	for _, c := range good {
		if err := c.Validate(); err != nil {
			t.Errorf("%+v: %v", c, err)
		}
	}
	bad := map[string]TrainConfig{
		"loss":       {Loss: "huber"},
		"no loss":    {},
		"norm":       {Loss: LossGradPIE, K: 1, Norm: "linf"},
		"k":          {Loss: LossGradPIE},
		"negative k": {Loss: LossMAE, K: -1},
		"batch":      {Loss: LossMAE, Batch: -1},
		"lr":         {Loss: LossMAE, LR: -1},
		"lr nan":     {Loss: LossMAE, LR: math.NaN()},
		"lambda":     {Loss: LossGradPIE, K: 1, Lambda: math.Inf(1)},
	}
	for name, c := range bad {
		if err := c.Validate(); err == nil {
			t.Errorf("%s: %+v accepted", name, c)
		}
		m, _ := NewModel(boxSpace(1), 1, Arch{}, 1)
		if _, err := NewTrainer(m, c, 1); err == nil {
			t.Errorf("%s: NewTrainer accepted %+v", name, c)
		}
	}
	// All problems at once.
	err := TrainConfig{Loss: "x", Batch: -1, LR: -1}.Validate()
	if err == nil || !strings.Contains(err.Error(), "batch") || !strings.Contains(err.Error(), "lr") {
		t.Errorf("want every problem reported, got %v", err)
	}
	m, _ := NewModel(boxSpace(1), 1, Arch{}, 1)
	tr, _ := NewTrainer(m, TrainConfig{Loss: LossGradPIE, K: 3}, 1)
	if c := tr.Config(); c.Batch != DefaultBatch || c.LR != DefaultLR || c.Norm != NormL1 {
		t.Errorf("defaults not filled in: %+v", c)
	}
}

func TestFitRejectsBadData(t *testing.T) {
	m := newSinModel(t, Arch{}, 1)
	tr, _ := NewTrainer(m, TrainConfig{Loss: LossGradPIE, K: 2}, 1)
	if _, err := tr.Fit(t.Context(), NewDataset(m), 1, nil); err == nil {
		t.Error("Fit accepted an empty dataset")
	}
	one := sinData(t, m, 1, 1)
	if _, err := tr.Fit(t.Context(), one, 1, nil); err == nil {
		t.Error("gradpie accepted a single point")
	}
	other, _ := NewModel(insitu.Box(3, 0, 1), 2, Arch{}, 1)
	if _, err := tr.Fit(t.Context(), sinData(t, other, 5, 1), 1, nil); err == nil {
		t.Error("Fit accepted a dataset normalized with another space")
	}
	if _, err := tr.Fit(t.Context(), nil, 1, nil); err == nil {
		t.Error("Fit accepted a nil dataset")
	}
	if _, err := tr.Fit(t.Context(), sinData(t, m, 5, 1), -1, nil); err == nil {
		t.Error("Fit accepted -1 epochs")
	}
	if l, err := tr.Fit(t.Context(), sinData(t, m, 5, 1), 0, nil); err != nil || !math.IsNaN(l) {
		t.Errorf("0 epochs: %v, %v; want NaN, nil", l, err)
	}
}

func TestFitReportsDivergence(t *testing.T) {
	m := newSinModel(t, Arch{Hidden: []int{4}}, 1)
	d := sinData(t, m, 20, 1)
	tr, _ := NewTrainer(m, TrainConfig{Loss: LossMSE}, 1)
	m.MLP().Params()[0] = math.Inf(1)
	if _, err := tr.Fit(t.Context(), d, 3, nil); err == nil || !strings.Contains(err.Error(), "diverged") || tr.Epochs() != 1 {
		t.Errorf("err = %v after %d epochs, want divergence after 1", err, tr.Epochs())
	}
}

func TestOneForwardPerUniquePoint(t *testing.T) {
	const n, k, batch = 200, 3, 16
	m := newSinModel(t, Arch{Hidden: []int{8}}, 1)
	d := sinData(t, m, n, 2)
	tr, err := NewTrainer(m, TrainConfig{Loss: LossGradPIE, K: k, Batch: batch}, 3)
	if err != nil {
		t.Fatal(err)
	}
	var norm [][]float64
	for i := range n {
		norm = append(norm, m.NormalizeInput(d.X(i)))
	}
	knn := naiveNeighbors(norm, k)

	var batches, rows int
	var seen []int
	tr.onBatch = func(anchors, unique []int) {
		batches++
		rows += len(unique)
		seen = append(seen, anchors...)
		if want := expectedRows(anchors, knn); !slices.Equal(unique, want) {
			t.Fatalf("unique points %v, want anchors then new neighbours %v", unique, want)
		}
	}
	calls0, rows0 := m.mlp.forwardCalls, m.mlp.forwardRows
	if _, err := tr.Fit(t.Context(), d, 1, nil); err != nil {
		t.Fatal(err)
	}
	if want := (n + batch - 1) / batch; batches != want {
		t.Errorf("%d minibatches, want %d", batches, want)
	}
	if got := m.mlp.forwardCalls - calls0; got != batches {
		t.Errorf("%d forward passes for %d minibatches", got, batches)
	}
	if got := m.mlp.forwardRows - rows0; got != rows {
		t.Errorf("%d rows forwarded, want %d unique points", got, rows)
	}
	if rows >= n*(k+1) || rows <= n {
		t.Errorf("%d rows forwarded: neighbours were not deduplicated (or not added)", rows)
	}
	slices.Sort(seen)
	for i, a := range seen {
		if a != i {
			t.Fatalf("an epoch did not visit every point exactly once as an anchor")
		}
	}
}

// expectedRows is what a GradPIE minibatch must forward: its anchors, then
// each anchor's neighbours (from the reference lists knn) not already there.
func expectedRows(anchors []int, knn [][]int) []int {
	want := slices.Clone(anchors)
	for _, a := range anchors {
		for _, j := range knn[a] {
			if !slices.Contains(want, j) {
				want = append(want, j)
			}
		}
	}
	return want
}

// TestMinibatchGradient checks the whole GradPIE minibatch path (unique-point
// gathering, pair rows, one forward, one backward) against finite
// differences of the loss computed naively, pair by pair, with one network
// evaluation per point.
func TestMinibatchGradient(t *testing.T) {
	for _, norm := range []string{NormL1, NormL2} {
		t.Run(norm, func(t *testing.T) {
			const n, k, lambda = 30, 3, 0.2
			m := newSinModel(t, Arch{Hidden: []int{8, 6}, LayerNorm: true}, 4)
			d := sinData(t, m, n, 5)
			m.SetOutputScale(d.ys())
			tr, _ := NewTrainer(m, TrainConfig{Loss: LossGradPIE, K: k, Norm: norm, Lambda: lambda}, 1)
			d.useK(k)
			anchors := []int{4, 9, 2, 17, 11}

			var norms [][]float64
			for i := range n {
				norms = append(norms, m.NormalizeInput(d.X(i)))
			}
			knn := naiveNeighbors(norms, k)
			mean, std := m.OutputScale()
			f := func(i int) (pred, target []float64) {
				pred = m.MLP().Predict(norms[i], 1)
				for o, y := range d.Y(i) {
					target = append(target, (y-mean[o])/std[o])
				}
				return pred, target
			}
			naive := func() float64 {
				var s, mae float64
				var pairs int
				for _, a := range anchors {
					pa, ta := f(a)
					for o := range pa {
						mae += math.Abs(pa[o] - ta[o])
					}
					for _, j := range knn[a] {
						pj, tj := f(j)
						for o := range pa {
							r := (pj[o] - pa[o]) - (tj[o] - ta[o])
							if norm == NormL2 {
								s += r * r
							} else {
								s += math.Abs(r)
							}
						}
						pairs++
					}
				}
				out := float64(m.Out())
				return s/(float64(pairs)*out) + lambda*mae/(float64(len(anchors))*out)
			}

			rows := tr.gather(d, anchors)
			pred := m.mlp.trainForward(tr.xb[:rows*d.in], rows)
			grad := make([]float64, rows*d.out)
			loss := tr.lossGrad(pred, tr.yb[:rows*d.out], len(anchors), tr.pairs, grad)
			if want := naive(); math.Abs(loss-want) > 1e-12*want {
				t.Errorf("minibatch loss %v, naive %v", loss, want)
			}
			m.mlp.ZeroGrad()
			m.mlp.net.backwardTrain(grad, false, false)
			checkGrad(t, "minibatch parameter gradient", m.mlp.Grads(), numGrad(m.mlp.Params(), naive))
		})
	}
}

func TestGradPIEZeroForTargetPlusConstant(t *testing.T) {
	m := newSinModel(t, Arch{Hidden: []int{16, 16}, LayerNorm: true}, 6)
	ref := sinData(t, m, 100, 7)
	m.SetOutputScale(ref.ys())
	// Targets are the model itself plus a constant: only the offset is wrong.
	d := NewDataset(m)
	for i := range ref.Len() {
		y := m.Predict(ref.X(i))
		y[0] += 2.5
		y[1] -= 40
		d.Append(ref.X(i), y)
	}
	for _, norm := range []string{NormL1, NormL2} {
		tr, _ := NewTrainer(m, TrainConfig{Loss: LossGradPIE, K: 5, Norm: norm}, 1)
		l, err := tr.Loss(d)
		if err != nil {
			t.Fatal(err)
		}
		if l > 1e-12 {
			t.Errorf("%s: GradPIE loss %g for targets = model + constant", norm, l)
		}
	}
	// The constant is visible to MAE, so the zero above is not vacuous.
	tr, _ := NewTrainer(m, TrainConfig{Loss: LossMAE}, 1)
	if l, _ := tr.Loss(d); l < 0.1 {
		t.Errorf("MAE loss %g: the offset should show", l)
	}
}

func TestFitDeterministic(t *testing.T) {
	run := func(seed uint64) []float64 {
		m := newSinModel(t, Arch{Hidden: []int{32, 32}, LayerNorm: true}, seed)
		d := sinData(t, m, 300, 1)
		tr, _ := NewTrainer(m, TrainConfig{Loss: LossGradPIE, K: 4, Batch: 64, Lambda: 0.1}, seed)
		if _, err := tr.Fit(t.Context(), d, 3, nil); err != nil {
			t.Fatal(err)
		}
		return slices.Clone(m.MLP().Params())
	}
	a, b, c := run(42), run(42), run(43)
	if !slices.Equal(a, b) {
		t.Error("same seed gave different weights after Fit")
	}
	if slices.Equal(a, c) {
		t.Error("different seeds gave the same weights")
	}
}

func TestFitReducesLoss(t *testing.T) {
	for _, cfg := range []TrainConfig{
		{Loss: LossMSE, Batch: 32, LR: 3e-3},
		{Loss: LossMAE, Batch: 32, LR: 3e-3},
		{Loss: LossGradPIE, K: 5, Batch: 32, LR: 3e-3},
		{Loss: LossGradPIE, K: 5, Batch: 32, LR: 3e-3, Norm: NormL2, Lambda: 0.1},
	} {
		name := string(cfg.Loss) + "/" + cfg.Norm
		t.Run(name, func(t *testing.T) {
			m := newSinModel(t, Arch{Hidden: []int{32, 32}}, 1)
			d := sinData(t, m, 256, 2)
			tr, err := NewTrainer(m, cfg, 1)
			if err != nil {
				t.Fatal(err)
			}
			initial, err := tr.Loss(d)
			if err != nil {
				t.Fatal(err)
			}
			var reported []float64
			last, err := tr.Fit(t.Context(), d, 50, func(epoch int, loss float64) {
				if epoch != len(reported) {
					t.Errorf("progress epoch %d, want %d", epoch, len(reported))
				}
				reported = append(reported, loss)
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(reported) != 50 || last != reported[49] {
				t.Errorf("%d progress calls, last %v, Fit returned %v", len(reported), reported[len(reported)-1], last)
			}
			final, _ := tr.Loss(d)
			t.Logf("loss %.4f → %.4f (last epoch mean %.4f)", initial, final, last)
			if !(final < 0.2*initial) {
				t.Errorf("loss %.4f → %.4f after 50 epochs, want < 0.2× initial", initial, final)
			}
			if tr.Epochs() != 50 {
				t.Errorf("Epochs() = %d", tr.Epochs())
			}
		})
	}
}

func TestFitSetsOutputScaleOnce(t *testing.T) {
	m := newSinModel(t, Arch{}, 1)
	d := sinData(t, m, 50, 1)
	tr, _ := NewTrainer(m, TrainConfig{Loss: LossMSE}, 1)
	if _, err := tr.Loss(d); err != nil || m.HasOutputScale() {
		t.Fatalf("Loss set the output scale (err %v)", err)
	}
	if _, err := tr.Fit(t.Context(), d, 1, nil); err != nil {
		t.Fatal(err)
	}
	mean, std := m.OutputScale()
	m2 := newSinModel(t, Arch{}, 1)
	m2.SetOutputScale(d.ys())
	if wm, ws := m2.OutputScale(); !slices.Equal(mean, wm) || !slices.Equal(std, ws) {
		t.Errorf("scale %v %v, want %v %v", mean, std, wm, ws)
	}
	// More data with another spread does not move the scale on later calls.
	for range 10 {
		d.Append([]float64{0, 0, 0}, []float64{100, 100})
	}
	if _, err := tr.Fit(t.Context(), d, 1, nil); err != nil {
		t.Fatal(err)
	}
	if m3, _ := m.OutputScale(); !slices.Equal(m3, mean) {
		t.Error("the second Fit changed the output scale")
	}
}

func TestFitCancel(t *testing.T) {
	m := newSinModel(t, Arch{Hidden: []int{8}}, 1)
	d := sinData(t, m, 100, 1)
	tr, _ := NewTrainer(m, TrainConfig{Loss: LossGradPIE, K: 2, Batch: 10}, 1)
	ctx, cancel := context.WithCancel(t.Context())
	var first float64
	last, err := tr.Fit(ctx, d, 5, func(epoch int, loss float64) {
		if epoch == 0 {
			first = loss
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if last != first || tr.Epochs() != 1 {
		t.Errorf("returned loss %v after %d epochs, want epoch 1's %v", last, tr.Epochs(), first)
	}
	t.Log(err)
}

// TestCheckpointResume saves a model and its trainer mid-run, restores both
// into fresh objects and checks that training continues bit-identically.
func TestCheckpointResume(t *testing.T) {
	cfg := TrainConfig{Loss: LossGradPIE, K: 3, Batch: 32}
	m := newSinModel(t, Arch{Hidden: []int{16}, LayerNorm: true}, 1)
	d := sinData(t, m, 120, 1)
	tr, _ := NewTrainer(m, cfg, 7)
	if _, err := tr.Fit(t.Context(), d, 2, nil); err != nil {
		t.Fatal(err)
	}
	var model bytes.Buffer
	if err := m.Save(&model); err != nil {
		t.Fatal(err)
	}
	state, err := tr.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Fit(t.Context(), d, 2, nil); err != nil {
		t.Fatal(err)
	}

	m2, err := Load(&model)
	if err != nil {
		t.Fatal(err)
	}
	tr2, _ := NewTrainer(m2, cfg, 12345) // the seed is overwritten by the state
	if err := tr2.UnmarshalBinary(state); err != nil {
		t.Fatal(err)
	}
	if tr2.Epochs() != 2 || tr2.Adam().Steps() != 8 {
		t.Errorf("restored %d epochs, %d Adam steps; want 2 and 8", tr2.Epochs(), tr2.Adam().Steps())
	}
	d2 := NewDataset(m2)
	for i := range d.Len() {
		d2.Append(d.X(i), d.Y(i))
	}
	if _, err := tr2.Fit(t.Context(), d2, 2, nil); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(m.MLP().Params(), m2.MLP().Params()) {
		t.Error("resumed training diverged from uninterrupted training")
	}

	other, _ := NewTrainer(newSinModel(t, Arch{Hidden: []int{4}}, 1), cfg, 1)
	if err := other.UnmarshalBinary(state); err == nil {
		t.Error("restored a state into a model of another size")
	}
	if err := tr2.UnmarshalBinary(state[:30]); err == nil {
		t.Error("accepted a truncated trainer state")
	}
}
