package cnon

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
)

func newTwin(t testing.TB, edit func(*Config)) *Twin {
	t.Helper()
	cfg := DefaultConfig()
	if edit != nil {
		edit(&cfg)
	}
	tw, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return tw
}

func randomIn(rng *rand.Rand, n int, r float64) []float64 {
	x := make([]float64, n)
	for i := range x {
		x[i] = r * (2*rng.Float64() - 1)
	}
	return x
}

func dot(a, b []float64) float64 {
	var s float64
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

func norm(a []float64) float64 { return math.Sqrt(dot(a, a)) }

func relErr(got, want []float64) float64 {
	d := make([]float64, len(got))
	for i := range got {
		d[i] = got[i] - want[i]
	}
	return norm(d) / norm(want)
}

func mustQuery(t testing.TB, tw *Twin, x []float64) []float64 {
	t.Helper()
	y, err := tw.Query(context.Background(), x)
	if err != nil {
		t.Fatal(err)
	}
	return y
}

// The VJP must be the derivative of the map Query computes: compare with
// central differences of v·Query(x), also with the reality gap that changes
// the system (η, coupling perturbation).
func TestVJPMatchesFiniteDifferences(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		edit func(*Config)
	}{
		{"N=10", func(c *Config) { c.N = 10 }},
		{"N=20", func(c *Config) { c.N = 20 }},
		{"N=10 eta coupling_noise", func(c *Config) { c.N, c.Eta, c.CouplingNoise = 10, 0.1, 0.05 }},
		{"N=7 T=12 steps=40 strong coupling", func(c *Config) { c.N, c.Horizon, c.Steps, c.C0, c.C1 = 7, 12, 40, 0.5, 0.5 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tw := newTwin(t, tc.edit)
			n := tw.Config().N
			rng := rand.New(rand.NewPCG(3, uint64(n)))
			for trial := range 3 {
				x := randomIn(rng, n, 0.95) // room for the stencil inside the box
				v := make([]float64, n)
				for i := range v {
					v[i] = rng.NormFloat64()
				}
				g, err := tw.VJP(ctx, x, v)
				if err != nil {
					t.Fatal(err)
				}
				const h = 1e-5
				fd := make([]float64, n)
				xp := slices.Clone(x)
				for k := range n {
					xp[k] = x[k] + h
					fp := dot(v, mustQuery(t, tw, xp))
					xp[k] = x[k] - h
					fm := dot(v, mustQuery(t, tw, xp))
					xp[k] = x[k]
					fd[k] = (fp - fm) / (2 * h)
				}
				if e := relErr(g, fd); e > 1e-7 {
					t.Errorf("trial %d: relative error %.3g of VJP vs finite differences\nvjp %v\nfd  %v", trial, e, g, fd)
				} else {
					t.Logf("trial %d: relative error %.2g", trial, e)
				}
			}
		})
	}
}

func TestJacobianConsistentWithVJP(t *testing.T) {
	tw := newTwin(t, func(c *Config) { c.N = 12 })
	rng := rand.New(rand.NewPCG(5, 5))
	x := randomIn(rng, 12, 1)
	jac := tw.Jacobian(x)
	for trial := range 4 {
		v := make([]float64, 12)
		for i := range v {
			v[i] = rng.NormFloat64()
		}
		g, err := tw.VJP(context.Background(), x, v)
		if err != nil {
			t.Fatal(err)
		}
		jtv := make([]float64, 12) // Jᵀv from the rows
		for i := range 12 {
			for j := range 12 {
				jtv[j] += jac[i*12+j] * v[i]
			}
		}
		if e := relErr(jtv, g); e > 1e-12 {
			t.Errorf("trial %d: Jᵀv from Jacobian differs from VJP by %.3g", trial, e)
		}
	}
	// A forward difference along one input checks the row-major layout:
	// column j is ∂y/∂x_j.
	const h = 1e-6
	j := 4
	xp := slices.Clone(x)
	xp[j] += h
	y0, y1 := tw.Noiseless(x), tw.Noiseless(xp)
	col := make([]float64, 12)
	fd := make([]float64, 12)
	for i := range 12 {
		col[i] = jac[i*12+j]
		fd[i] = (y1[i] - y0[i]) / h
	}
	if e := relErr(fd, col); e > 1e-4 {
		t.Errorf("column %d of the Jacobian vs forward difference: relative error %.3g", j, e)
	}
}

// maxDiff is the largest |a_i − b_i|.
func maxDiff(a, b []float64) float64 {
	var m float64
	for i := range a {
		m = max(m, math.Abs(a[i]-b[i]))
	}
	return m
}

// Classic RK4 is fourth order: halving dt divides the global error by ~16.
func TestRK4FourthOrderConvergence(t *testing.T) {
	withSteps := func(steps int) *Twin {
		return newTwin(t, func(c *Config) { c.Steps = steps; c.C0, c.C1 = 0.3, 0.3 })
	}
	rng := rand.New(rand.NewPCG(11, 0))
	x := randomIn(rng, 10, 1)
	ref := withSteps(50 * 256).Noiseless(x)
	var prev float64
	for _, steps := range []int{50, 100, 200, 400} {
		err := maxDiff(withSteps(steps).Noiseless(x), ref)
		if prev != 0 {
			ratio := prev / err
			t.Logf("steps %d→%d: error %.3g → %.3g, ratio %.2f", steps/2, steps, prev, err, ratio)
			if ratio < 12 || ratio > 20 {
				t.Errorf("steps %d→%d: error ratio %.2f, want ≈16 (fourth order)", steps/2, steps, ratio)
			}
		}
		prev = err
	}
}

// energyDrift is the largest relative change of any oscillator's energy
// along the trajectory from x.
func energyDrift(tw *Twin, x []float64) float64 {
	q, p := tw.Trajectory(x)
	e0 := tw.Energy(q[0], p[0])
	var drift float64
	for s := range q {
		es := tw.Energy(q[s], p[s])
		for i := range es {
			drift = max(drift, math.Abs(es[i]-e0[i])/math.Abs(e0[i]))
		}
	}
	return drift
}

// Without coupling every oscillator is a pendulum (driven by a constant
// force when e ≠ 0) whose energy the integrator conserves to its accuracy.
func TestUncoupledOscillatorsConserveEnergy(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 0))
	x := randomIn(rng, 10, 1)
	for _, tc := range []struct {
		name string
		edit func(*Config)
	}{
		{"pendulum", func(c *Config) {}},
		{"pendulum eta", func(c *Config) { c.Eta = 0.3 }},
		{"constant drive", func(c *Config) { c.E0, c.E1 = 0.1, 0.1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			drift := func(steps int) float64 {
				tw := newTwin(t, func(c *Config) {
					c.C0, c.C1, c.E0, c.E1 = 0, 0, 0, 0
					c.Horizon, c.Steps = 5, steps
					tc.edit(c)
				})
				return energyDrift(tw, x)
			}
			if d := drift(500); d >= 1e-6 { // dt = 0.01
				t.Errorf("relative energy drift %.3g with dt = 0.01, want < 1e-6", d)
			}
			// Fourth order. At coarse dt the ratio is above 16 (≈25 at
			// dt = 0.1): for oscillators RK4's energy error has a large
			// fifth-order part, which fades as dt shrinks.
			prev := drift(400)
			for _, steps := range []int{800, 1600} {
				d := drift(steps)
				r := prev / d
				t.Logf("dt %.4g → %.4g: drift %.3g → %.3g, ratio %.2f", 5/float64(steps/2), 5/float64(steps), prev, d, r)
				if r < 14 || r > 20 {
					t.Errorf("dt %.4g → %.4g: energy drift ratio %.2f, want ≈16 (fourth order)", 5/float64(steps/2), 5/float64(steps), r)
				}
				prev = d
			}
		})
	}
	// With coupling the per-oscillator energies are exchanged: the check
	// above would fail, so it is not vacuous.
	tw := newTwin(t, nil)
	if d := energyDrift(tw, x); d < 1e-3 {
		t.Errorf("coupled network: per-oscillator energy drift %.3g, expected exchange", d)
	}
}

func TestTrajectoryEndsAtQuery(t *testing.T) {
	tw := newTwin(t, nil)
	x := randomIn(rand.New(rand.NewPCG(1, 2)), 10, 1)
	q, p := tw.Trajectory(x)
	if len(q) != 51 || len(p) != 51 {
		t.Fatalf("%d and %d rows, want 51", len(q), len(p))
	}
	if !slices.Equal(q[0], x) || slices.ContainsFunc(p[0], func(v float64) bool { return v != 0 }) {
		t.Errorf("initial state (%v, %v), want (x, 0)", q[0], p[0])
	}
	if y := mustQuery(t, tw, x); !slices.Equal(q[50], y) {
		t.Errorf("trajectory ends at %v, Query returns %v", q[50], y)
	}
}

func TestSameSeedSameTwin(t *testing.T) {
	noisy := func(seed uint64) *Twin {
		return newTwin(t, func(c *Config) {
			c.Seed = seed
			c.CouplingNoise, c.InputNoise, c.OutputNoise = 0.05, 0.01, 0.01
		})
	}
	a, b, c := noisy(42), noisy(42), noisy(43)
	if !slices.Equal(a.Coupling(), b.Coupling()) || !slices.Equal(a.Drive(), b.Drive()) {
		t.Error("same seed, different C or e")
	}
	if slices.Equal(a.Coupling(), c.Coupling()) || slices.Equal(a.Drive(), c.Drive()) {
		t.Error("different seeds, same C or e")
	}
	x := make([]float64, 10)
	for i := range 5 {
		ya, yb, yc := mustQuery(t, a, x), mustQuery(t, b, x), mustQuery(t, c, x)
		if !slices.Equal(ya, yb) {
			t.Errorf("query %d: same seed, outputs differ: %v vs %v", i, ya, yb)
		}
		if slices.Equal(ya, yc) {
			t.Errorf("query %d: different seeds, same output", i)
		}
	}
	xr1, qt1 := a.Target(9)
	xr2, qt2 := b.Target(9)
	xr3, _ := a.Target(10)
	if !slices.Equal(xr1, xr2) || !slices.Equal(qt1, qt2) || slices.Equal(xr1, xr3) {
		t.Error("Target is not a function of its seed")
	}
	// Ideal twins from different seeds differ too (C, e and so the map).
	if slices.Equal(newTwin(t, nil).Noiseless(x), newTwin(t, func(c *Config) { c.Seed = 2 }).Noiseless(x)) {
		t.Error("seeds 1 and 2 give the same ideal map")
	}
}

func TestTargetIsReachable(t *testing.T) {
	tw := newTwin(t, nil)
	xr, qt := tw.Target(3)
	if err := tw.Spec().In.Contains(xr); err != nil {
		t.Fatal(err)
	}
	d := Distance{Target: qt}
	if v := d.Value(mustQuery(t, tw, xr)); v != 0 {
		t.Errorf("distance at the reference input %v, want 0", v)
	}
}

func TestDefaultsAreIdealAndDeterministic(t *testing.T) {
	tw := newTwin(t, nil)
	x := randomIn(rand.New(rand.NewPCG(2, 2)), 10, 1)
	want := tw.Noiseless(x)
	for range 3 {
		if y := mustQuery(t, tw, x); !slices.Equal(y, want) {
			t.Fatalf("default twin: Query %v, noiseless %v", y, want)
		}
	}
	// η = 0 and coupling_noise = 0 are the ideal system bit for bit.
	ideal := newTwin(t, func(c *Config) { c.Eta, c.CouplingNoise = 0, 0 })
	if !slices.Equal(ideal.Noiseless(x), want) {
		t.Error("explicit zero options change the map")
	}
}

func TestRealityGapOptionsChangeOutputs(t *testing.T) {
	x := randomIn(rand.New(rand.NewPCG(4, 4)), 10, 1)
	ideal := newTwin(t, nil)
	y0 := ideal.Noiseless(x)

	eta := newTwin(t, func(c *Config) { c.Eta = 0.1 })
	if d := maxDiff(eta.Noiseless(x), y0); d < 1e-3 {
		t.Errorf("η = 0.1 changes q(T) by only %.3g", d)
	}
	if !slices.Equal(eta.Coupling(), ideal.Coupling()) || !slices.Equal(eta.Drive(), ideal.Drive()) {
		t.Error("η changed the drawn constants")
	}

	cn := newTwin(t, func(c *Config) { c.CouplingNoise = 0.05; c.N = 20 })
	base := newTwin(t, func(c *Config) { c.N = 20 })
	if !slices.Equal(cn.Drive(), base.Drive()) {
		t.Error("coupling noise changed e: the draws are not independent")
	}
	dc := make([]float64, 400)
	for i, v := range cn.Coupling() {
		dc[i] = v - base.Coupling()[i]
	}
	if s := norm(dc) / 20; s < 0.04 || s > 0.06 {
		t.Errorf("coupling perturbation std %.4f, want ≈0.05", s)
	}
	if maxDiff(cn.Noiseless(make([]float64, 20)), base.Noiseless(make([]float64, 20))) == 0 {
		t.Error("coupling noise does not change outputs")
	}

	// Input noise: fresh at every query, small for a small std.
	in := newTwin(t, func(c *Config) { c.InputNoise = 1e-3 })
	ya, yb := mustQuery(t, in, x), mustQuery(t, in, x)
	if slices.Equal(ya, yb) || slices.Equal(ya, y0) {
		t.Error("input noise is not fresh at every query")
	}
	if d := maxDiff(ya, y0); d > 0.05 {
		t.Errorf("input noise of std 1e-3 moved q(T) by %.3g", d)
	}

	// Output noise: residuals have the configured std.
	const sigma = 0.02
	out := newTwin(t, func(c *Config) { c.OutputNoise = sigma })
	var ss float64
	const queries = 200
	for range queries {
		y := mustQuery(t, out, x)
		for i := range y {
			r := y[i] - y0[i]
			ss += r * r
		}
	}
	if s := math.Sqrt(ss / (queries * 10)); s < 0.9*sigma || s > 1.1*sigma {
		t.Errorf("output noise std %.4f, want ≈%v", s, sigma)
	}

	// The VJP is of the noiseless system: per-query noise does not touch it.
	both := newTwin(t, func(c *Config) { c.InputNoise, c.OutputNoise = 0.1, 0.1 })
	v := randomIn(rand.New(rand.NewPCG(6, 6)), 10, 1)
	g1, _ := ideal.VJP(context.Background(), x, v)
	g2, _ := both.VJP(context.Background(), x, v)
	if !slices.Equal(g1, g2) {
		t.Error("per-query noise changed the VJP")
	}
}

func TestQueryBatchEqualsSequentialQueries(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(8, 8))
	xs := make([][]float64, 37)
	for i := range xs {
		xs[i] = randomIn(rng, 10, 1)
	}
	for _, tc := range []struct {
		name string
		edit func(*Config)
	}{
		{"ideal", nil},
		{"noisy", func(c *Config) { c.InputNoise, c.OutputNoise, c.Eta = 0.01, 0.01, 0.1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			batched, sequential := newTwin(t, tc.edit), newTwin(t, tc.edit)
			// A query before and after the batch: the batch takes the
			// indices in between.
			for _, x := range xs[:1] {
				if !slices.Equal(mustQuery(t, batched, x), mustQuery(t, sequential, x)) {
					t.Fatal("first query differs")
				}
			}
			ys, err := batched.QueryBatch(ctx, xs)
			if err != nil {
				t.Fatal(err)
			}
			for i, x := range xs {
				if want := mustQuery(t, sequential, x); !slices.Equal(ys[i], want) {
					t.Errorf("batch item %d: %v, sequential %v", i, ys[i], want)
				}
			}
			if !slices.Equal(mustQuery(t, batched, xs[0]), mustQuery(t, sequential, xs[0])) {
				t.Error("query after the batch differs")
			}
		})
	}
}

func TestQueryBatchErrors(t *testing.T) {
	tw := newTwin(t, nil)
	xs := [][]float64{make([]float64, 10), make([]float64, 10), make([]float64, 10)}
	xs[2][3] = 1.5
	_, err := tw.QueryBatch(context.Background(), xs)
	if err == nil || !strings.Contains(err.Error(), "query 2") || !strings.Contains(err.Error(), "q0[3]") {
		t.Errorf("out-of-box batch item: error %v, want one naming query 2 and q0[3]", err)
	}
	xs[2][3] = 0
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := tw.QueryBatch(ctx, xs); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled batch: error %v, want context.Canceled", err)
	}
	if ys, err := tw.QueryBatch(context.Background(), nil); err != nil || len(ys) != 0 {
		t.Errorf("empty batch: %v, %v", ys, err)
	}
}

// cancelAfter is a context that reports cancellation from its limit-th
// Err call on: a cancellation in the middle of a batch, deterministically.
type cancelAfter struct {
	context.Context
	calls, limit atomic.Int64
}

func (c *cancelAfter) Err() error {
	if c.calls.Add(1) >= c.limit.Load() {
		return context.Canceled
	}
	return nil
}

// Cancelling while the batch runs stops it: the workers check the context
// between queries.
func TestQueryBatchHonoursCancellation(t *testing.T) {
	tw := newTwin(t, nil)
	xs := make([][]float64, 64)
	for i := range xs {
		xs[i] = make([]float64, 10)
	}
	ctx := &cancelAfter{Context: context.Background()}
	ctx.limit.Store(4)
	ys, err := tw.QueryBatch(ctx, xs)
	if !errors.Is(err, context.Canceled) || ys != nil {
		t.Errorf("batch cancelled after a few queries: %d results, error %v; want none and context.Canceled", len(ys), err)
	}
	if n := ctx.calls.Load(); n > 16 {
		t.Errorf("context checked %d times after cancellation: workers kept going", n)
	}
}

func TestQueryAndVJPCheckInputs(t *testing.T) {
	ctx := context.Background()
	tw := newTwin(t, nil)
	x := make([]float64, 10)
	cases := []struct {
		name string
		call func() error
		want []string
	}{
		{"short x", func() error { _, err := tw.Query(ctx, x[:9]); return err }, []string{"cnon", "9 coordinates"}},
		{"NaN", func() error {
			y := slices.Clone(x)
			y[2] = math.NaN()
			_, err := tw.Query(ctx, y)
			return err
		}, []string{"cnon", "q0[2]", "not finite"}},
		{"outside", func() error {
			y := slices.Clone(x)
			y[7] = -1.01
			_, err := tw.Query(ctx, y)
			return err
		}, []string{"cnon", "q0[7]", "outside"}},
		{"VJP outside", func() error {
			y := slices.Clone(x)
			y[1] = 2
			_, err := tw.VJP(ctx, y, x)
			return err
		}, []string{"cnon", "q0[1]"}},
		{"VJP short v", func() error { _, err := tw.VJP(ctx, x, x[:3]); return err }, []string{"cnon", "cotangent", "3"}},
		{"VJP Inf v", func() error {
			v := slices.Clone(x)
			v[4] = math.Inf(1)
			_, err := tw.VJP(ctx, x, v)
			return err
		}, []string{"cnon", "qT[4]"}},
	}
	for _, c := range cases {
		err := c.call()
		if err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not mention %q", c.name, err, w)
			}
		}
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := tw.Query(cancelled, x); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled query: %v", err)
	}
}

func TestSpec(t *testing.T) {
	tw := newTwin(t, func(c *Config) { c.N = 3 })
	s := tw.Spec()
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	if s.Name != "cnon" || s.In.Dim() != 3 || len(s.Out) != 3 {
		t.Fatalf("spec %+v", s)
	}
	if s.In.Names[2] != "q0[2]" || s.In.Units[0] != "rad" || s.Out[1] != "qT[1]" || s.In.Lower[0] != -1 || s.In.Upper[2] != 1 {
		t.Errorf("spec %+v", s)
	}
	s.In.Lower[0] = -5 // callers' changes must not reach the twin
	if _, err := tw.Query(context.Background(), []float64{-2, 0, 0}); err == nil {
		t.Error("changing a returned Spec widened the twin's box")
	}
}

func TestDistance(t *testing.T) {
	d := Distance{Target: []float64{1, 2, 3}}
	y := []float64{4, 6, 3}
	if v := d.Value(y); v != 5 {
		t.Errorf("value %v, want 5", v)
	}
	if g := d.Grad(y); !slices.Equal(g, []float64{0.6, 0.8, 0}) {
		t.Errorf("grad %v, want [0.6 0.8 0]", g)
	}
	if g := d.Grad([]float64{1, 2, 3}); !slices.Equal(g, []float64{0, 0, 0}) {
		t.Errorf("grad at the target %v, want zeros", g)
	}
	// Finite differences away from the target.
	rng := rand.New(rand.NewPCG(1, 1))
	y = randomIn(rng, 3, 5)
	g := d.Grad(y)
	for i := range y {
		yp, ym := slices.Clone(y), slices.Clone(y)
		yp[i] += 1e-6
		ym[i] -= 1e-6
		if fd := (d.Value(yp) - d.Value(ym)) / 2e-6; math.Abs(fd-g[i]) > 1e-8 {
			t.Errorf("∂/∂y%d: %v, finite difference %v", i, g[i], fd)
		}
	}
}

// Concurrent Query and VJP calls share only pooled scratch; run under -race.
func TestConcurrentUse(t *testing.T) {
	tw := newTwin(t, func(c *Config) { c.N = 6 })
	x := []float64{0.1, -0.2, 0.3, -0.4, 0.5, -0.6}
	wantY := tw.Noiseless(x)
	wantG, _ := tw.VJP(context.Background(), x, x)
	errs := make(chan error, 8)
	for g := range 8 {
		go func() {
			for range 50 {
				if g%2 == 0 {
					y, err := tw.Query(context.Background(), x)
					if err == nil && !slices.Equal(y, wantY) {
						err = fmt.Errorf("query %v, want %v", y, wantY)
					}
					if err != nil {
						errs <- err
						return
					}
				} else {
					v, err := tw.VJP(context.Background(), x, x)
					if err == nil && !slices.Equal(v, wantG) {
						err = fmt.Errorf("vjp %v, want %v", v, wantG)
					}
					if err != nil {
						errs <- err
						return
					}
				}
			}
			errs <- nil
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
