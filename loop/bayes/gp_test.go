package bayes

import (
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// maternDirect is the Matérn-5/2 kernel written out from its definition,
// for the closed-form checks.
func maternDirect(s float64, l []float64, a, b []float64, periodic []bool) float64 {
	var r2 float64
	for i := range a {
		d := a[i] - b[i]
		if periodic != nil && periodic[i] {
			d = math.Sin(math.Pi*d) / math.Pi
		}
		li := l[0]
		if len(l) > 1 {
			li = l[i]
		}
		r2 += d * d / (li * li)
	}
	r := math.Sqrt(r2)
	return s * (1 + math.Sqrt(5)*r + 5*r*r/3) * math.Exp(-math.Sqrt(5)*r)
}

// The posterior mean and variance on three points equal the closed form
// m = mean + scale·k*ᵀ(K + σn²I)⁻¹z, v = scale²·(s − k*ᵀ(K + σn²I)⁻¹k*),
// with the inverse from a direct dense linear solve, for an ARD and a
// periodic coordinate; the GP grown by Add equals the closed form on all
// four points.
func TestPosteriorMatchesDirectSolve(t *testing.T) {
	periodic := []bool{false, true}
	g := NewGP(2, periodic, true)
	xs := [][]float64{{0.1, 0.2}, {0.5, 0.9}, {0.8, 0.4}}
	ys := []float64{1.5, -0.3, 0.7}
	for i := range xs {
		if err := g.Add(xs[i], ys[i]); err != nil {
			t.Fatal(err)
		}
	}
	h := Hyper{LogSignal: math.Log(1.3), LogLength: []float64{math.Log(0.4), math.Log(0.7)}, LogNoise: math.Log(0.01)}
	g.h = h
	g.setScale()
	if err := g.factorize(); err != nil {
		t.Fatal(err)
	}
	check := func(xs [][]float64, ys []float64) {
		n := len(xs)
		s, noise := math.Exp(h.LogSignal), math.Exp(h.LogNoise)
		l := []float64{math.Exp(h.LogLength[0]), math.Exp(h.LogLength[1])}
		k := mat.NewDense(n, n, nil)
		for a := range n {
			for b := range n {
				v := maternDirect(s, l, xs[a], xs[b], periodic)
				if a == b {
					v += noise
				}
				k.Set(a, b, v)
			}
		}
		z := mat.NewDense(n, 1, nil)
		for i, y := range ys {
			z.Set(i, 0, (y-g.mean)/g.scale)
		}
		for _, u := range [][]float64{{0.3, 0.3}, {0.5, 0.95}, {0.9, 0.05}, xs[0]} {
			kst := mat.NewDense(n, 1, nil)
			for a := range n {
				kst.Set(a, 0, maternDirect(s, l, u, xs[a], periodic))
			}
			var kz, kk mat.Dense
			if err := kz.Solve(k, z); err != nil {
				t.Fatal(err)
			}
			if err := kk.Solve(k, kst); err != nil {
				t.Fatal(err)
			}
			wantMu := g.mean + g.scale*mat.Dot(kst.ColView(0), kz.ColView(0))
			wantVar := g.scale * g.scale * (s - mat.Dot(kst.ColView(0), kk.ColView(0)))
			mu, sd := g.Predict(u, nil, nil)
			if math.Abs(mu-wantMu) > 1e-10*(1+math.Abs(wantMu)) || math.Abs(sd*sd-wantVar) > 1e-10*(1+wantVar) {
				t.Errorf("%d points, at %v: mean %.12g var %.12g, closed form %.12g %.12g", n, u, mu, sd*sd, wantMu, wantVar)
			}
			bm, bs := g.PredictBatch([][]float64{{0.6, 0.1}, u})
			if math.Abs(bm[1]-wantMu) > 1e-10*(1+math.Abs(wantMu)) || math.Abs(bs[1]*bs[1]-wantVar) > 1e-10*(1+wantVar) {
				t.Errorf("%d points, batch at %v: mean %.12g var %.12g, closed form %.12g %.12g", n, u, bm[1], bs[1]*bs[1], wantMu, wantVar)
			}
		}
	}
	check(xs, ys)
	// A fourth point extends the factor by one row.
	if err := g.Add([]float64{0.35, 0.6}, 0.1); err != nil {
		t.Fatal(err)
	}
	if g.nFit != 3 {
		t.Fatalf("adding a point refactorized (nFit %d)", g.nFit)
	}
	check(append(xs, []float64{0.35, 0.6}), append(ys, 0.1))
}

// The marginal likelihood's gradient in the log hyperparameters matches
// central finite differences, for ARD with a periodic coordinate and for
// one lengthscale.
func TestLogMarginalGradient(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, ard := range []bool{true, false} {
		d := 4
		g := NewGP(d, []bool{false, false, true, false}, ard)
		for range 12 {
			u := make([]float64, d)
			for i := range u {
				u[i] = rng.Float64()
			}
			if err := g.Add(u, math.Sin(3*u[0])+u[1]*u[2]+0.1*rng.NormFloat64()); err != nil {
				t.Fatal(err)
			}
		}
		g.setScale()
		z := g.standardized()
		v := g.defaultHyper().vec()
		for i := range v {
			v[i] += 0.3 * rng.NormFloat64()
		}
		v[len(v)-1] = math.Log(0.05)
		grad := make([]float64, len(v))
		g.logMarginal(v, z, grad)
		const h = 1e-5
		for i := range v {
			vp, vm := append([]float64(nil), v...), append([]float64(nil), v...)
			vp[i] += h
			vm[i] -= h
			fd := (g.logMarginal(vp, z, nil) - g.logMarginal(vm, z, nil)) / (2 * h)
			if math.Abs(fd-grad[i]) > 1e-6*(1+math.Abs(fd)) {
				t.Errorf("ard %v: ∂/∂θ[%d] = %.10g, finite difference %.10g", ard, i, grad[i], fd)
			}
		}
	}
}

// Fit raises the marginal likelihood above the default hyperparameters'
// and recovers a short lengthscale for the coordinate the data vary
// along fast and a long one for the coordinate they ignore.
func TestFitFindsTheRelevantCoordinate(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	g := NewGP(2, nil, true)
	for range 40 {
		u := []float64{rng.Float64(), rng.Float64()}
		if err := g.Add(u, math.Sin(8*u[0])); err != nil {
			t.Fatal(err)
		}
	}
	g.setScale()
	z := g.standardized()
	before := g.logMarginal(g.defaultHyper().vec(), z, nil)
	if err := g.Fit(rng, 3); err != nil {
		t.Fatal(err)
	}
	after := g.logMarginal(g.h.vec(), z, nil)
	l0, l1 := math.Exp(g.h.LogLength[0]), math.Exp(g.h.LogLength[1])
	if !(after > before) || !(l1 > 3*l0) {
		t.Errorf("log marginal %v → %v, lengthscales %v %v", before, after, l0, l1)
	}
	t.Logf("log marginal %.3f → %.3f; lengthscales %.3f (varied) %.3f (ignored), noise %.2g", before, after, l0, l1, math.Exp(g.h.LogNoise))
}

// The gradients of the posterior mean and standard deviation, and of EI
// through them, match central finite differences.
func TestPredictAndEIGradients(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	d := 3
	g := NewGP(d, []bool{false, true, false}, true)
	for range 15 {
		u := []float64{rng.Float64(), rng.Float64(), rng.Float64()}
		if err := g.Add(u, u[0]*u[0]-math.Cos(6*u[1])+0.5*u[2]); err != nil {
			t.Fatal(err)
		}
	}
	if err := g.Fit(rng, 2); err != nil {
		t.Fatal(err)
	}
	const h = 1e-6
	for trial := range 5 {
		u := []float64{0.1 + 0.8*rng.Float64(), rng.Float64(), 0.1 + 0.8*rng.Float64()}
		// An incumbent within a standard deviation of the mean, so that EI
		// and both of its slopes are far from zero.
		m0, s0 := g.Predict(u, nil, nil)
		best := m0 + (float64(trial)-2)*0.5*s0
		dmu, dsd, dei := make([]float64, d), make([]float64, d), make([]float64, d)
		g.Predict(u, dmu, dsd)
		eiAt(g, u, best, dei)
		for j := range u {
			up, um := append([]float64(nil), u...), append([]float64(nil), u...)
			up[j] += h
			um[j] -= h
			mp, sp := g.Predict(up, nil, nil)
			mm, sm := g.Predict(um, nil, nil)
			fdMu, fdSd := (mp-mm)/(2*h), (sp-sm)/(2*h)
			fdEI := (eiAt(g, up, best, nil) - eiAt(g, um, best, nil)) / (2 * h)
			for _, c := range []struct {
				name    string
				got, fd float64
			}{{"mean", dmu[j], fdMu}, {"sd", dsd[j], fdSd}, {"EI", dei[j], fdEI}} {
				if math.Abs(c.got-c.fd) > 1e-5*(1+math.Abs(c.fd)) {
					t.Errorf("trial %d: ∂%s/∂u[%d] = %.9g, finite difference %.9g", trial, c.name, j, c.got, c.fd)
				}
			}
		}
	}
}

// EI against its definition as an integral, by quadrature.
func TestEIClosedForm(t *testing.T) {
	for _, c := range []struct{ mu, sd, best float64 }{{0, 1, 0}, {1, 0.5, 0.2}, {-2, 2, 1}, {3, 0.1, 2.5}} {
		// ∫ max(best − y, 0) N(y; mu, sd²) dy by the midpoint rule.
		var q float64
		const steps = 200000
		lo, hi := c.mu-12*c.sd, c.best
		dy := (hi - lo) / steps
		for i := range steps {
			y := lo + (float64(i)+0.5)*dy
			z := (y - c.mu) / c.sd
			q += (c.best - y) * math.Exp(-z*z/2) / (c.sd * math.Sqrt(2*math.Pi)) * dy
		}
		ei, dmu, dsd := EI(c.mu, c.sd, c.best)
		if math.Abs(ei-q) > 1e-7*(1+q) {
			t.Errorf("EI(%v) = %.10g, quadrature %.10g", c, ei, q)
		}
		const h = 1e-6
		fm := func(mu, sd float64) float64 { v, _, _ := EI(mu, sd, c.best); return v }
		if fd := (fm(c.mu+h, c.sd) - fm(c.mu-h, c.sd)) / (2 * h); math.Abs(dmu-fd) > 1e-6 {
			t.Errorf("EI(%v): ∂/∂μ = %.9g, finite difference %.9g", c, dmu, fd)
		}
		if fd := (fm(c.mu, c.sd+h) - fm(c.mu, c.sd-h)) / (2 * h); math.Abs(dsd-fd) > 1e-6 {
			t.Errorf("EI(%v): ∂/∂σ = %.9g, finite difference %.9g", c, dsd, fd)
		}
	}
}

// Restore rebuilds a GP that was fitted and then grown point by point to
// the same bits: same predictions, same state.
func TestRestoreIsBitIdentical(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	d := 3
	g := NewGP(d, []bool{true, false, false}, true)
	var us [][]float64
	var ys []float64
	for i := range 20 {
		u := []float64{rng.Float64(), rng.Float64(), rng.Float64()}
		y := math.Sin(5*u[0]) + u[1]
		us, ys = append(us, u), append(ys, y)
		if err := g.Add(u, y); err != nil {
			t.Fatal(err)
		}
		if i == 11 {
			if err := g.Fit(rng, 2); err != nil {
				t.Fatal(err)
			}
		}
	}
	r := NewGP(d, []bool{true, false, false}, true)
	if err := r.Restore(g.State(), us, ys); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		u := []float64{rng.Float64(), rng.Float64(), rng.Float64()}
		m1, s1 := g.Predict(u, nil, nil)
		m2, s2 := r.Predict(u, nil, nil)
		if math.Float64bits(m1) != math.Float64bits(m2) || math.Float64bits(s1) != math.Float64bits(s2) {
			t.Fatalf("restored GP predicts %v ± %v, original %v ± %v", m2, s2, m1, s1)
		}
	}
	if r.nFit != 12 || g.nFit != 12 {
		t.Errorf("nFit %d and %d, want 12", r.nFit, g.nFit)
	}
}
