package bayes

import (
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/stat"
	"gonum.org/v1/gonum/stat/distuv"
)

// hartmann6 is the 6-dimensional Hartmann function on [0,1]⁶, minimum
// −3.32237 at (0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573).
func hartmann6(x []float64) float64 {
	alpha := [4]float64{1.0, 1.2, 3.0, 3.2}
	a := [4][6]float64{
		{10, 3, 17, 3.5, 1.7, 8},
		{0.05, 10, 17, 0.1, 8, 14},
		{3, 3.5, 1.7, 10, 17, 8},
		{17, 8, 0.05, 10, 0.1, 14},
	}
	p := [4][6]float64{
		{1312, 1696, 5569, 124, 8283, 5886},
		{2329, 4135, 8307, 3736, 1004, 9991},
		{2348, 1451, 3522, 2883, 3047, 6650},
		{4047, 8828, 8732, 5743, 1091, 381},
	}
	var s float64
	for i := range 4 {
		var e float64
		for j := range 6 {
			d := x[j] - p[i][j]*1e-4
			e += a[i][j] * d * d
		}
		s += alpha[i] * math.Exp(-e)
	}
	return -s
}

// welchP is the two-sided p-value of Welch's t between a and b.
func welchP(a, b []float64) (t, p float64) {
	ma, va := stat.MeanVariance(a, nil)
	mb, vb := stat.MeanVariance(b, nil)
	na, nb := float64(len(a)), float64(len(b))
	se2 := va/na + vb/nb
	t = (ma - mb) / math.Sqrt(se2)
	df := se2 * se2 / ((va/na)*(va/na)/(na-1) + (vb/nb)*(vb/nb)/(nb-1))
	return t, 2 * distuv.StudentsT{Mu: 0, Sigma: 1, Nu: df}.CDF(-math.Abs(t))
}

// On Hartmann-6, BayOpt (10 random points, then 40 by EI) beats random
// search at 50 evaluations over 10 seeds: lower mean best, p < 0.01.
func TestBOBeatsRandomOnHartmann6(t *testing.T) {
	if testing.Short() {
		t.Skip("50 GP iterations × 10 seeds")
	}
	const d, n0, budget, seeds = 6, 10, 50, 10
	var bo, rs []float64
	for seed := uint64(1); seed <= seeds; seed++ {
		rng := rand.New(rand.NewPCG(seed, 99))
		b := NewBO(d, nil, DefaultConfig(), seed, 1)
		best := math.Inf(1)
		for range n0 {
			u := make([]float64, d)
			for i := range u {
				u[i] = rng.Float64()
			}
			y := hartmann6(u)
			best = min(best, y)
			if err := b.Observe(u, y); err != nil {
				t.Fatal(err)
			}
		}
		for range budget - n0 {
			u, err := b.Suggest()
			if err != nil {
				t.Fatal(err)
			}
			y := hartmann6(u)
			best = min(best, y)
			if err := b.Observe(u, y); err != nil {
				t.Fatal(err)
			}
		}
		bo = append(bo, best)
		rs = append(rs, randomSearch(rng, d, budget, hartmann6))
	}
	tt, p := welchP(bo, rs)
	mb, mr := stat.Mean(bo, nil), stat.Mean(rs, nil)
	t.Logf("best after 50 evaluations, 10 seeds: BayOpt %.3f, random %.3f (minimum −3.322); t = %.2f, p = %.2g", mb, mr, tt, p)
	if !(mb < mr) || !(p < 0.01) {
		t.Errorf("BayOpt %.3f vs random %.3f: t = %.2f, p = %.2g", mb, mr, tt, p)
	}
}

// On a 60-dimensional sphere TuRBO (20 random points, then batches of 5)
// beats random search at 120 evaluations over 10 seeds.
func TestTurboBeatsRandomIn60Dimensions(t *testing.T) {
	if testing.Short() {
		t.Skip("20 TuRBO batches × 10 seeds")
	}
	const d, n0, q, budget, seeds = 60, 20, 5, 120, 10
	f := func(u []float64) float64 {
		var s float64
		for i, v := range u {
			c := 0.3 + 0.4*float64(i%7)/6
			s += (v - c) * (v - c)
		}
		return s
	}
	cfg := DefaultConfig()
	cfg.ARD, cfg.Candidates = false, 200
	var tu, rs []float64
	for seed := uint64(1); seed <= seeds; seed++ {
		rng := rand.New(rand.NewPCG(seed, 77))
		tr := NewTurbo(d, nil, q, cfg, DefaultTurboConfig(), seed, 1)
		var us [][]float64
		var ys []float64
		for range n0 {
			u := make([]float64, d)
			for i := range u {
				u[i] = rng.Float64()
			}
			us, ys = append(us, u), append(ys, f(u))
		}
		for len(us) < budget {
			batch, err := tr.Suggest(us, ys)
			if err != nil {
				t.Fatal(err)
			}
			prev := math.Inf(1)
			for _, y := range ys {
				prev = min(prev, y)
			}
			var vals []float64
			for _, u := range batch {
				us, ys, vals = append(us, u), append(ys, f(u)), append(vals, f(u))
			}
			if tr.Update(prev, vals) {
				t.Fatalf("seed %d: the region collapsed on a sphere", seed)
			}
		}
		best := math.Inf(1)
		for _, y := range ys {
			best = min(best, y)
		}
		tu = append(tu, best)
		rs = append(rs, randomSearch(rng, d, budget, f))
	}
	tt, p := welchP(tu, rs)
	t.Logf("60-d sphere, best after 120 evaluations, 10 seeds: TuRBO %.3f, random %.3f; t = %.2f, p = %.2g", stat.Mean(tu, nil), stat.Mean(rs, nil), tt, p)
	if !(stat.Mean(tu, nil) < stat.Mean(rs, nil)) || !(p < 0.01) {
		t.Errorf("TuRBO does not beat random search: t = %.2f, p = %.2g", tt, p)
	}
}

// The trust region doubles after SuccTol successes, halves after FailTol
// failures and reports a collapse below MinLength.
func TestTurboTrustRegionRule(t *testing.T) {
	tc := DefaultTurboConfig()
	tc.FailTol = 2
	tr := NewTurbo(4, nil, 1, DefaultConfig(), tc, 1, 1)
	for range 3 {
		tr.Update(1, []float64{0.5})
	}
	if tr.Length() != 1.6 {
		t.Fatalf("after 3 successes length %v, want 1.6", tr.Length())
	}
	for range 2 {
		tr.Update(1, []float64{1})
	}
	if tr.Length() != 0.8 {
		t.Fatalf("after 2 failures length %v, want 0.8", tr.Length())
	}
	collapsed := false
	for range 100 {
		if tr.Update(1, []float64{0.9995}) { // within 1e−3 of the best: a failure
			collapsed = true
			break
		}
	}
	if !collapsed || tr.Length() >= tc.MinLength {
		t.Fatalf("no collapse: length %v", tr.Length())
	}
	tr.Restart()
	if tr.Length() != tc.Length || tr.Restarts() != 1 {
		t.Errorf("after restart: length %v, restarts %d", tr.Length(), tr.Restarts())
	}
	if n := NewTurbo(3600, nil, 5, DefaultConfig(), DefaultTurboConfig(), 1, 1).failTol; n != 720 {
		t.Errorf("automatic failure tolerance in 3600 dimensions, batches of 5: %d, want ⌈3600/5⌉ = 720", n)
	}
}

// The trust region's posterior, computed from the moved coordinates only,
// equals the dense posterior of the same candidates.
func TestTurboPosteriorEqualsDense(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	const d = 40
	periodic := make([]bool, d)
	for i := range periodic {
		periodic[i] = i%3 == 0
	}
	for _, ard := range []bool{true, false} {
		cfg := DefaultConfig()
		cfg.ARD, cfg.Candidates = ard, 30
		tc := DefaultTurboConfig()
		tc.Perturb = 5
		tr := NewTurbo(d, periodic, 3, cfg, tc, 1, 2)
		g := NewGP(d, periodic, ard)
		for range 25 {
			u := make([]float64, d)
			for i := range u {
				u[i] = rng.Float64()
			}
			if err := g.Add(u, u[0]+math.Sin(4*u[1])); err != nil {
				t.Fatal(err)
			}
		}
		if err := g.Fit(rng, 1); err != nil {
			t.Fatal(err)
		}
		tr.gp = g
		center := g.x[3]
		w := make([]float64, d)
		for i := range w {
			w[i] = 0.5 + rng.Float64()
		}
		cs := tr.candidates(center, w)
		us := make([][]float64, len(cs))
		for i, c := range cs {
			us[i] = c.u
		}
		mu, cov := tr.posterior(g, center, cs)
		wmu, wcov := g.Posterior(us)
		for a := range us {
			if math.Abs(mu[a]-wmu[a]) > 1e-10*(1+math.Abs(wmu[a])) {
				t.Errorf("ard %v: mean %d: %v, dense %v", ard, a, mu[a], wmu[a])
			}
			for b := range us {
				if math.Abs(cov.At(a, b)-wcov.At(a, b)) > 1e-10 {
					t.Errorf("ard %v: cov %d,%d: %v, dense %v", ard, a, b, cov.At(a, b), wcov.At(a, b))
				}
			}
		}
	}
}

// randomSearch is the baseline: the best of budget uniform points in [0, 1]^d.
func randomSearch(rng *rand.Rand, d, budget int, f func([]float64) float64) float64 {
	best := math.Inf(1)
	for range budget {
		u := make([]float64, d)
		for i := range u {
			u[i] = rng.Float64()
		}
		best = min(best, f(u))
	}
	return best
}
