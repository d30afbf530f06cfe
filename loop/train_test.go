package loop

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/insitu-lab/insitu"
	"github.com/insitu-lab/insitu/loop/journal"
)

// tanhTwin is a tiny PNN twin: x = [u (2); W (2×2); b (2)], class scores
// s = tanh(gain·(W u + b)) + offset. gain 1 and offset 0 is the ideal twin.
type tanhTwin struct {
	gain, offset float64
}

const twinDu, twinClasses = 2, 2

func (b tanhTwin) Spec() insitu.Spec {
	lo := []float64{-2, -2, -3, -3, -3, -3, -3, -3}
	hi := []float64{2, 2, 3, 3, 3, 3, 3, 3}
	return insitu.Spec{Name: "tanh-twin", In: insitu.Space{Lower: lo, Upper: hi}, Out: []string{"s0", "s1"}}
}

func (b tanhTwin) pre(x []float64) []float64 {
	z := make([]float64, twinClasses)
	for c := range z {
		z[c] = b.gain * (x[2+2*c]*x[0] + x[2+2*c+1]*x[1] + x[6+c])
	}
	return z
}

func (b tanhTwin) Query(_ context.Context, x []float64) ([]float64, error) {
	z := b.pre(x)
	for c := range z {
		z[c] = math.Tanh(z[c]) + b.offset*float64(c)
	}
	return z, nil
}

func (b tanhTwin) VJP(_ context.Context, x, v []float64) ([]float64, error) {
	z := b.pre(x)
	g := make([]float64, len(x))
	for c := range z {
		d := v[c] * b.gain * (1 - math.Tanh(z[c])*math.Tanh(z[c]))
		g[0] += d * x[2+2*c]
		g[1] += d * x[2+2*c+1]
		g[2+2*c] += d * x[0]
		g[2+2*c+1] += d * x[1]
		g[6+c] += d
	}
	return g, nil
}

func (b tanhTwin) Split() (int, int)      { return twinDu, 6 }
func (b tanhTwin) Ideal() insitu.BlackBox { return tanhTwin{gain: 1} }

// blobs is two separable Gaussian blobs around (−0.7, −0.7) and (0.7, 0.7).
func blobs(n int, noise float64, seed uint64) LabeledSet {
	rng := rand.New(rand.NewPCG(seed, 3))
	var s LabeledSet
	for i := range n {
		c := i % 2
		m := -0.7 + 1.4*float64(c)
		s.X = append(s.X, []float64{m + noise*rng.NormFloat64(), m + noise*rng.NormFloat64()})
		s.Y = append(s.Y, c)
	}
	return s
}

func init() {
	insitu.RegisterDataset("test-blobs", func(_ context.Context, c DataConfig) (TrainData, error) {
		return Split(blobs(c.N, c.Noise, c.Seed), 2, c.TestFraction, c.Seed), nil
	})
}

func twinData(t *testing.T) TrainData {
	t.Helper()
	d, err := NewDataset(context.Background(), DataConfig{Kind: "test-blobs", N: 80, Noise: 0.25, TestFraction: 0.25, Seed: 4})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func twinProblem(real tanhTwin) TrainProblem {
	ideal := tanhTwin{gain: 1}
	return TrainProblem{Box: real, Du: twinDu, Exact: real, Ideal: ideal, IdealExact: ideal}
}

func smallTrainConfig(method string) TrainConfig {
	c := DefaultTrainConfig()
	c.Method, c.Epochs, c.Batch, c.LR = method, 6, 10, 0.05
	// A θ that gets every sample wrong: class 0 scores high for u > 0.
	c.ThetaInit = []float64{1, 1, -1, -1, 0, 0}
	c.Surrogate.Hidden, c.Surrogate.InitialEpochs, c.Surrogate.Epochs, c.Surrogate.Batch = []int{16, 16}, 30, 2, 64
	return c
}

// periodicTanh is tanhTwin with θ declared periodic (as SLM phases are).
type periodicTanh struct{ tanhTwin }

func (b periodicTanh) Spec() insitu.Spec {
	s := b.tanhTwin.Spec()
	s.In.Periodic = []bool{false, false, true, true, true, true, true, true}
	return s
}

// A step past a periodic θ's bound wraps around and is not a projection;
// the same training on the non-periodic box clips and counts.
func TestTrainWrapsPeriodicTheta(t *testing.T) {
	cfg := smallTrainConfig(TrainExact)
	cfg.Epochs, cfg.LR = 2, 0.3
	cfg.ThetaInit = []float64{3, 3, 3, 3, 3, 3} // every θ on its upper bound
	real := tanhTwin{gain: 0.8}
	clip, err := Train(context.Background(), cfg, twinProblem(real), twinData(t), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := twinProblem(real)
	p.Box = periodicTanh{real}
	wrap, err := Train(context.Background(), cfg, p, twinData(t), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if clip.Projected == 0 || wrap.Projected != 0 {
		t.Errorf("projected steps: %d clipping, %d wrapping (want > 0 and 0)", clip.Projected, wrap.Projected)
	}
	wrapped := false
	for _, th := range wrap.Theta {
		if th < -3 || th > 3 {
			t.Fatalf("θ %v left the box", wrap.Theta)
		}
		wrapped = wrapped || th < 0 // came round from +3 to the low side
	}
	if !wrapped {
		t.Errorf("no θ wrapped round: %v", wrap.Theta)
	}
}

func TestTrainExactReachesHighAccuracy(t *testing.T) {
	cfg := smallTrainConfig(TrainExact)
	cfg.ThetaInit = nil
	cfg.Epochs = 15
	res, err := Train(context.Background(), cfg, twinProblem(tanhTwin{gain: 0.8, offset: 0.1}), twinData(t), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	last := res.Epochs[len(res.Epochs)-1]
	if last.TestAcc <= 0.9 || last.Epoch != 15 {
		t.Errorf("exact gradients: final test accuracy %v after epoch %d, want > 0.9", last.TestAcc, last.Epoch)
	}
	// 60 train + 20 test evaluated 16 times, 60 training forward passes 15 times.
	if want := 16*80 + 15*60; res.Queries != want {
		t.Errorf("%d queries, want %d", res.Queries, want)
	}
	n := 0
	for _, row := range res.Confusion {
		for _, v := range row {
			n += v
		}
	}
	if n != 20 || res.Confusion[0][0]+res.Confusion[1][1] != int(math.Round(last.TestAcc*20)) {
		t.Errorf("confusion %v does not fit the test accuracy %v", res.Confusion, last.TestAcc)
	}
}

// The backward pass is the θ part (the last dθ entries) of the full VJP:
// for exact, the columns of the finite-difference Jacobian; for the
// surrogate, the columns of the model's Jacobian.
func TestTrainThetaVJPIsTheThetaColumns(t *testing.T) {
	ctx := context.Background()
	box := tanhTwin{gain: 0.8, offset: 0.1}
	x := []float64{0.3, -0.6, 0.5, -1.2, 0.7, 0.2, -0.4, 0.9}
	v := []float64{0.7, -1.3}
	for _, m := range []string{TrainExact, TrainInsituGradPIE} {
		tr, err := newTrainer(smallTrainConfig(m), twinProblem(box), twinData(t), nil)
		if err != nil {
			t.Fatal(err)
		}
		var jac func(o, i int) float64
		if m == TrainExact {
			jac = func(o, i int) float64 {
				const h = 1e-6
				xp, xm := append([]float64{}, x...), append([]float64{}, x...)
				xp[i] += h
				xm[i] -= h
				yp, _ := box.Query(ctx, xp)
				ym, _ := box.Query(ctx, xm)
				return (yp[o] - ym[o]) / (2 * h)
			}
		} else {
			m := EpochMetrics{}
			if err := tr.evaluate(ctx, &m); err != nil {
				t.Fatal(err)
			}
			if err := tr.fitSurrogate(ctx); err != nil {
				t.Fatal(err)
			}
			J := tr.tr.Model().Jacobian(x)
			jac = func(o, i int) float64 { return J[o*len(x)+i] }
		}
		g, err := tr.thetaVJP(ctx, x, v)
		if err != nil {
			t.Fatal(err)
		}
		if len(g) != 6 {
			t.Fatalf("%s: %d θ entries, want 6", m, len(g))
		}
		for k := range g {
			want := v[0]*jac(0, twinDu+k) + v[1]*jac(1, twinDu+k)
			if math.Abs(g[k]-want) > 1e-6*(1+math.Abs(want)) {
				t.Errorf("%s: θ[%d]: VJP %v, Jacobian column %v", m, k, g[k], want)
			}
		}
	}
}

func TestTrainInsituGradPIEImproves(t *testing.T) {
	cfg := smallTrainConfig(TrainInsituGradPIE)
	res, err := Train(context.Background(), cfg, twinProblem(tanhTwin{gain: 0.8, offset: 0.1}), twinData(t), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	first, last := res.Epochs[0], res.Epochs[len(res.Epochs)-1]
	t.Logf("insitu-gradpie: test accuracy %v → %v, loss %v → %v, %d queries", first.TestAcc, last.TestAcc, first.TestLoss, last.TestLoss, res.Queries)
	if !(last.TestAcc > first.TestAcc+0.3) || res.Model == nil {
		t.Errorf("test accuracy %v → %v: no improvement", first.TestAcc, last.TestAcc)
	}
}

func TestTrainComparisonMethodsRun(t *testing.T) {
	data := twinData(t)
	for _, m := range []string{TrainInsituMAE, TrainInsilico, TrainPAT} {
		cfg := smallTrainConfig(m)
		cfg.Epochs = 3
		res, err := Train(context.Background(), cfg, twinProblem(tanhTwin{gain: 0.8, offset: 0.1}), data, nil, nil)
		if err != nil {
			t.Fatalf("%s: %v", m, err)
		}
		want := 4*80 + 3*60
		if m == TrainInsilico {
			want = 4 * 80 // only the evaluations touch the real box
		}
		if res.Queries != want || len(res.Epochs) != 4 {
			t.Errorf("%s: %d queries, %d epochs; want %d, 4", m, res.Queries, len(res.Epochs), want)
		}
	}
}

// cancelBox cancels after n queries; the query in flight finishes.
type cancelBox struct {
	tanhTwin
	n      int64
	count  atomic.Int64
	cancel context.CancelFunc
}

func (b *cancelBox) Query(ctx context.Context, x []float64) ([]float64, error) {
	if b.count.Add(1) == b.n {
		b.cancel()
	}
	return b.tanhTwin.Query(ctx, x)
}

func TestTrainResumeLosesAndRepeatsNothing(t *testing.T) {
	for _, tc := range []struct {
		m        string
		every    int
		restored int // the final resume continues from this epoch's checkpoint
		local    int // θ-local queries per minibatch
	}{{TrainInsituGradPIE, 1, 2, 0}, {TrainPAT, 1, 2, 0}, {TrainInsituGradPIE, 0, 0, 0}, {TrainInsituMAE, 3, 0, 0}, {TrainInsituGradPIE, 1, 1, 3}} {
		m := tc.m
		t.Run(fmt.Sprintf("%s/checkpoint_every=%d/local=%d", m, tc.every, tc.local), func(t *testing.T) {
			cfg := smallTrainConfig(m)
			cfg.Epochs = 4
			cfg.CheckpointEvery = tc.every
			cfg.Local.Samples = tc.local
			data := twinData(t)
			real := tanhTwin{gain: 0.8, offset: 0.1}
			ref := createJournal(t, t.TempDir(), m)
			defer ref.Close()
			want, err := Train(context.Background(), cfg, twinProblem(real), data, ref, nil)
			if err != nil {
				t.Fatal(err)
			}

			dir := t.TempDir()
			// Each session stops after stopAt new queries: in epoch 1's
			// minibatches (105 in all), in its evaluation (165), and in
			// epoch 3's minibatches (365 of 640); each resume replays.
			for k, stopAt := range []int64{105, 60, 200} {
				var j *journal.Journal
				if k == 0 {
					j = createJournal(t, dir, m)
				} else if j, err = journal.Open(dir); err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				p := twinProblem(real)
				p.Box = &cancelBox{tanhTwin: real, n: stopAt, cancel: cancel}
				res, err := Train(ctx, cfg, p, data, j, nil)
				cancel()
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("stop %d: err %v", k, err)
				}
				if k > 0 && res.Replayed == 0 {
					t.Errorf("stop %d: nothing replayed", k)
				}
				j.Close()
			}
			j, err := journal.Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer j.Close()
			got, err := Train(context.Background(), cfg, twinProblem(real), data, j, nil)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got.Theta) != fmt.Sprint(want.Theta) || fmt.Sprint(got.Epochs) != fmt.Sprint(want.Epochs) ||
				fmt.Sprint(got.Confusion) != fmt.Sprint(want.Confusion) {
				t.Errorf("resumed θ %v, metrics %v\nuninterrupted θ %v, metrics %v", got.Theta, got.Epochs, want.Theta, want.Epochs)
			}
			qs, err := j.Queries(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			seen := map[string]bool{}
			for _, q := range qs {
				if seen[q.Key] {
					t.Errorf("key %s journaled twice", q.Key)
				}
				seen[q.Key] = true
			}
			if len(qs) != want.Queries || got.Queries != want.Queries || got.Replayed == 0 {
				t.Errorf("%d journaled, %d counted (%d replayed); uninterrupted %d", len(qs), got.Queries, got.Replayed, want.Queries)
			}
			if got.Restored != tc.restored {
				t.Errorf("final resume restored epoch %d, want %d", got.Restored, tc.restored)
			}
			its, err := j.Iterations(context.Background())
			if err != nil || len(its) != cfg.Epochs+1 || its[len(its)-1].Best != want.Epochs[cfg.Epochs].TestAcc {
				t.Errorf("iteration records: %v, %v", err, its)
			}
		})
	}
}

// θ-local queries: Samples per minibatch, each at one of the minibatch's
// data inputs and at θ moved by about σ, journaled as local; they give the
// surrogate the θ-direction its minibatch pairs lack, so its θ-gradient
// agrees better with the real one. With a small θ learning rate (as the
// optical PNN needs) θ hardly moves between minibatches and the surrogate
// otherwise sees one θ only: measured cosine 0.39 without, 0.72 with.
func TestTrainLocalSamplesTeachTheta(t *testing.T) {
	data := twinData(t)
	real := tanhTwin{gain: 0.8, offset: 0.1}
	thetaCos := func(local int) float64 {
		cfg := smallTrainConfig(TrainInsituGradPIE)
		cfg.Epochs, cfg.Local.Samples, cfg.Local.Sigma, cfg.LR = 3, local, 0.05, 0.01
		j := createJournal(t, t.TempDir(), TrainInsituGradPIE)
		defer j.Close()
		res, err := Train(context.Background(), cfg, twinProblem(real), data, j, nil)
		if err != nil {
			t.Fatal(err)
		}
		batches := (data.Train.Len() + cfg.Batch - 1) / cfg.Batch
		evals := (cfg.Epochs + 1) * (data.Train.Len() + data.Test.Len())
		if want := evals + cfg.Epochs*(data.Train.Len()+batches*local); res.Queries != want {
			t.Errorf("local %d: %d queries, want %d", local, res.Queries, want)
		}
		qs, err := j.Queries(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		nLocal := 0
		for _, q := range qs {
			if q.Role != journal.RoleLocal {
				continue
			}
			nLocal++
			if !slices.ContainsFunc(data.Train.X, func(u []float64) bool { return slices.Equal(u, q.X[:twinDu]) }) {
				t.Fatalf("local query at u = %v, not a training input", q.X[:twinDu])
			}
		}
		if nLocal != cfg.Epochs*batches*local {
			t.Errorf("local %d: %d local queries journaled, want %d", local, nLocal, cfg.Epochs*batches*local)
		}
		// Mean cosine of the surrogate's θ-gradient with the real twin's,
		// at the final θ, over the test inputs and random cotangents.
		rng := rand.New(rand.NewPCG(9, 9))
		var sum float64
		for _, u := range data.Test.X {
			x := append(slices.Clone(u), res.Theta...)
			v := []float64{rng.NormFloat64(), rng.NormFloat64()}
			g := res.Model.VJP(x, v)[twinDu:]
			e, _ := real.VJP(context.Background(), x, v)
			sum += dotCos(g, e[twinDu:])
		}
		return sum / float64(data.Test.Len())
	}
	without, with := thetaCos(0), thetaCos(6)
	t.Logf("θ-gradient cosine with the real twin's: %.3f without θ-local queries, %.3f with", without, with)
	if !(with > without+0.05) {
		t.Errorf("θ-local queries did not improve the surrogate's θ-gradient: cosine %.3f → %.3f", without, with)
	}
	// A method without a surrogate ignores them: no local query is made.
	cfg := smallTrainConfig(TrainPAT)
	cfg.Epochs, cfg.Local.Samples = 1, 4
	res, err := Train(context.Background(), cfg, twinProblem(real), data, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := 2*(data.Train.Len()+data.Test.Len()) + data.Train.Len(); res.Queries != want {
		t.Errorf("pat with local samples: %d queries, want %d", res.Queries, want)
	}
	for _, bad := range []LocalConfig{{Samples: -1}, {Sigma: math.NaN()}, {Sigma: 2}} {
		c := smallTrainConfig(TrainInsituGradPIE)
		c.Local = bad
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "local.") {
			t.Errorf("local %+v: %v", bad, err)
		}
	}
}

func dotCos(a, b []float64) float64 {
	var ab, aa, bb float64
	for i := range a {
		ab += a[i] * b[i]
		aa += a[i] * a[i]
		bb += b[i] * b[i]
	}
	if aa == 0 || bb == 0 {
		return 0
	}
	return ab / math.Sqrt(aa*bb)
}

func TestTrainConfigErrorsNameKeys(t *testing.T) {
	c := DefaultTrainConfig()
	c.Method, c.Epochs, c.LR, c.Batch = "sgd", 0, -1, 0
	c.Surrogate.K = 0
	c.Method = TrainInsituGradPIE
	err := c.Validate()
	for _, key := range []string{"epochs", "lr", "batch", "surrogate.k"} {
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("error does not name %s: %v", key, err)
		}
	}
	c = DefaultTrainConfig()
	c.Method = "sgd"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "method") {
		t.Errorf("unknown method: %v", err)
	}
	if err := ValidateData(DataConfig{Kind: "nope", N: 1, TestFraction: 1}); err == nil ||
		!strings.Contains(err.Error(), "data.kind") || !strings.Contains(err.Error(), "data.n") || !strings.Contains(err.Error(), "data.test_fraction") {
		t.Errorf("data errors: %v", err)
	}
	cfg := smallTrainConfig(TrainExact)
	cfg.ThetaInit = []float64{1, 2}
	if _, err := Train(context.Background(), cfg, twinProblem(tanhTwin{gain: 1}), twinData(t), nil, nil); err == nil || !strings.Contains(err.Error(), "theta_init") {
		t.Errorf("theta_init of the wrong length: %v", err)
	}
	p := twinProblem(tanhTwin{gain: 1})
	p.Exact = nil
	if _, err := Train(context.Background(), smallTrainConfig(TrainExact), p, twinData(t), nil, nil); err == nil || !strings.Contains(err.Error(), "exact") {
		t.Errorf("exact without a VJP: %v", err)
	}
}

// TestTrainSurrogateSchedule: in-situ training honours the step budget
// and shared neighbourhoods (the θ trajectory changes with each), and
// refuses overlap, which has no queries to hide behind.
func TestTrainSurrogateSchedule(t *testing.T) {
	run := func(set func(*SurrogateConfig)) []float64 {
		cfg := smallTrainConfig(TrainInsituGradPIE)
		cfg.Epochs = 3
		set(&cfg.Surrogate)
		res, err := Train(context.Background(), cfg, twinProblem(tanhTwin{gain: 0.8}), twinData(t), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		return res.Theta
	}
	epochs := run(func(*SurrogateConfig) {})
	steps := run(func(s *SurrogateConfig) { s.Steps = 3 })
	shared := run(func(s *SurrogateConfig) { s.Steps, s.Share, s.Rows = 3, true, 40 })
	if slices.Equal(epochs, steps) || slices.Equal(steps, shared) {
		t.Errorf("θ after training: epochs %v, steps %v, shared %v: a schedule key was ignored", epochs, steps, shared)
	}
	cfg := smallTrainConfig(TrainInsituGradPIE)
	cfg.Surrogate.Overlap = true
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "surrogate.overlap") {
		t.Errorf("overlap in a training config: %v", err)
	}
}
