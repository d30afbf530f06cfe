package bayes

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/optimize"
)

// Hyper are a GP's hyperparameters in natural logs, in the units of the
// standardized objective and the unit box: the signal variance σ², one
// lengthscale per coordinate (ARD) or one for all, and the noise variance
// σn² (also the jitter that keeps a noiseless twin's matrix positive
// definite).
type Hyper struct {
	LogSignal float64   `json:"log_signal"`
	LogLength []float64 `json:"log_length"`
	LogNoise  float64   `json:"log_noise"`
}

func (h Hyper) vec() []float64 {
	v := make([]float64, 0, len(h.LogLength)+2)
	v = append(v, h.LogSignal)
	v = append(v, h.LogLength...)
	return append(v, h.LogNoise)
}

func hyperOf(v []float64) Hyper {
	return Hyper{LogSignal: v[0], LogLength: append([]float64(nil), v[1:len(v)-1]...), LogNoise: v[len(v)-1]}
}

// Bounds of the hyperparameters: a signal between 0.05 and 20 times the
// data's variance, noise between 1e−6 and half of it, lengthscales from
// 0.005 to 20 box widths per coordinate they cover.
var (
	logSignalLo, logSignalHi = math.Log(0.05), math.Log(20)
	logNoiseLo, logNoiseHi   = math.Log(1e-6), math.Log(0.5)
	logLengthLo              = math.Log(0.005)
)

const sqrt5 = 2.23606797749979

// matern is the Matérn-5/2 covariance of signal variance s at squared
// scaled distance r2, k = s·(1 + √5r + 5r²/3)·e^{−√5r}, and its
// derivative in r2, −(5/6)·s·(1 + √5r)·e^{−√5r} (finite at r = 0).
func matern(s, r2 float64) (k, dr2 float64) {
	r := math.Sqrt(r2)
	e := math.Exp(-sqrt5 * r)
	return s * (1 + sqrt5*r + 5*r2/3) * e, -5.0 / 6 * s * (1 + sqrt5*r) * e
}

// GP is a Gaussian-process regression of a scalar objective on the unit
// box with a Matérn-5/2 kernel. Points arrive with Add; Fit chooses the
// hyperparameters and factorizes; between fits each new point extends the
// Cholesky factor by one row (O(n²) instead of O(n³)).
type GP struct {
	d        int
	periodic []bool
	nl       int // lengthscales: d (ARD) or 1 (isotropic)

	h           Hyper
	mean, scale float64 // standardization of y, fixed at the last fit
	fitted      bool
	nFit        int // points at the last factorization from scratch

	x [][]float64
	y []float64
	// pw[a][b], b < a: the summed squared distance of points a and b over
	// every coordinate, kept for one lengthscale (nil for ARD), so that
	// a fit costs O(n³) per likelihood evaluation instead of O(n²d).
	pw [][]float64

	chol  mat.Cholesky
	alpha []float64 // (K + σn²I)⁻¹·(y − mean)/scale
}

// NewGP returns an empty GP on d coordinates (periodic[i]: coordinate i
// wraps; nil: none does), with one lengthscale per coordinate when ard.
func NewGP(d int, periodic []bool, ard bool) *GP {
	g := &GP{d: d, periodic: make([]bool, d), nl: 1}
	copy(g.periodic, periodic)
	if ard {
		g.nl = d
	}
	g.h = g.defaultHyper()
	return g
}

// Len is the number of points.
func (g *GP) Len() int { return len(g.x) }

// Hyper returns the hyperparameters in use.
func (g *GP) Hyper() Hyper { h := g.h; h.LogLength = append([]float64(nil), h.LogLength...); return h }

// per is how many coordinates a lengthscale covers.
func (g *GP) per() float64 { return float64(g.d / g.nl) }

func (g *GP) logLengthHi() float64 { return math.Log(20 * math.Sqrt(g.per())) }

func (g *GP) defaultHyper() Hyper {
	h := Hyper{LogSignal: 0, LogNoise: math.Log(1e-4), LogLength: make([]float64, g.nl)}
	for i := range h.LogLength {
		h.LogLength[i] = math.Log(0.5 * math.Sqrt(g.per()))
	}
	return h
}

// d2 is coordinate i's squared distance between a and b as the kernel sees
// it: Δ² on a line, (sin(πΔ)/π)² on the circle.
func (g *GP) d2(i int, a, b float64) float64 {
	dl := a - b
	if !g.periodic[i] {
		return dl * dl
	}
	s := math.Sin(math.Pi*dl) / math.Pi
	return s * s
}

// d2d is d2 and its derivative in a.
func (g *GP) d2d(i int, a, b float64) (v, da float64) {
	dl := a - b
	if !g.periodic[i] {
		return dl * dl, 2 * dl
	}
	s, c := math.Sincos(math.Pi * dl)
	return s * s / (math.Pi * math.Pi), 2 * s * c / math.Pi
}

// dist is Σ_i d2_i between a and b.
func (g *GP) dist(a, b []float64) float64 {
	var s float64
	for i := range a {
		s += g.d2(i, a[i], b[i])
	}
	return s
}

// r2 is the squared scaled distance between a and b: Σ_i d2_i·il2_i, il2
// the inverse squared lengthscales ((Σ_i d2_i)·il2_0 for one, the form
// the kept distances give, bit for bit).
func (g *GP) r2(a, b, il2 []float64) float64 {
	if g.nl == 1 {
		return g.dist(a, b) * il2[0]
	}
	var s float64
	for i := range a {
		s += g.d2(i, a[i], b[i]) * il2[i]
	}
	return s
}

// pairR2 is r2 of points a and b of the GP.
func (g *GP) pairR2(a, b int, il2 []float64) float64 {
	if a == b {
		return 0
	}
	if g.pw != nil {
		if a < b {
			a, b = b, a
		}
		return g.pw[a][b] * il2[0]
	}
	return g.r2(g.x[a], g.x[b], il2)
}

// li is the lengthscale of coordinate i.
func (g *GP) li(i int) int {
	if g.nl == 1 {
		return 0
	}
	return i
}

func invL2(logLength []float64) []float64 {
	il2 := make([]float64, len(logLength))
	for i, l := range logLength {
		il2[i] = math.Exp(-2 * l)
	}
	return il2
}

// Add appends a point (u in the unit box, y the objective). A fitted GP
// extends its factor by the point's row; NaN objectives are the caller's
// to drop.
func (g *GP) Add(u []float64, y float64) error { return g.add(u, y, nil) }

// add is Add with, for one lengthscale, the point's summed squared
// distances to the GP's points when the caller has them (nil: computed).
func (g *GP) add(u []float64, y float64, dists []float64) error {
	if len(u) != g.d {
		return fmt.Errorf("bayes: point has %d coordinates, want %d", len(u), g.d)
	}
	if math.IsNaN(y) || math.IsInf(y, 0) {
		return fmt.Errorf("bayes: objective %v is not finite", y)
	}
	if g.nl == 1 {
		row := dists
		if row == nil {
			row = make([]float64, len(g.x))
			for b, xb := range g.x {
				row[b] = g.dist(u, xb)
			}
		}
		g.pw = append(g.pw, row)
	}
	g.x = append(g.x, append([]float64(nil), u...))
	g.y = append(g.y, y)
	if !g.fitted {
		return nil
	}
	n := len(g.x) - 1
	il2 := invL2(g.h.LogLength)
	s, noise := math.Exp(g.h.LogSignal), math.Exp(g.h.LogNoise)
	col := make([]float64, n+1)
	for a := range n {
		col[a], _ = matern(s, g.pairR2(n, a, il2))
	}
	col[n] = s + noise
	var ext mat.Cholesky
	if ok := ext.ExtendVecSym(&g.chol, mat.NewVecDense(n+1, col)); !ok {
		// Numerically not positive definite (a repeated point with tiny
		// noise): factorize from scratch, with more jitter if needed.
		return g.factorize()
	}
	g.chol = ext
	return g.solveAlpha()
}

// standardized returns (y − mean)/scale.
func (g *GP) standardized() []float64 {
	z := make([]float64, len(g.y))
	for i, v := range g.y {
		z[i] = (v - g.mean) / g.scale
	}
	return z
}

// covariance fills the n×n matrix K + σn²I of hyperparameters h over g.x.
func (g *GP) covariance(h Hyper) *mat.SymDense {
	n := len(g.x)
	il2 := invL2(h.LogLength)
	s, noise := math.Exp(h.LogSignal), math.Exp(h.LogNoise)
	k := mat.NewSymDense(n, nil)
	for a := range n {
		for b := a; b < n; b++ {
			v, _ := matern(s, g.pairR2(a, b, il2))
			if a == b {
				v += noise
			}
			k.SetSym(a, b, v)
		}
	}
	return k
}

// factorize computes the Cholesky factor of all points from scratch with
// the current hyperparameters (raising the noise tenfold at a time if the
// matrix is numerically singular).
func (g *GP) factorize() error {
	if len(g.x) == 0 {
		return errors.New("bayes: no points")
	}
	for try := 0; ; try++ {
		if g.chol.Factorize(g.covariance(g.h)) {
			break
		}
		if try == 8 || g.h.LogNoise >= logNoiseHi {
			return errors.New("bayes: covariance matrix not positive definite")
		}
		g.h.LogNoise = min(g.h.LogNoise+math.Ln10, logNoiseHi)
	}
	g.fitted, g.nFit = true, len(g.x)
	return g.solveAlpha()
}

func (g *GP) solveAlpha() error {
	n := len(g.x)
	var a mat.VecDense
	err := g.chol.SolveVecTo(&a, mat.NewVecDense(n, g.standardized()))
	var c mat.Condition
	if err != nil && !errors.As(err, &c) {
		return err
	}
	g.alpha = append(g.alpha[:0], a.RawVector().Data...)
	return nil
}

// setScale standardizes y by its mean and standard deviation (1 when
// constant).
func (g *GP) setScale() {
	var m float64
	for _, v := range g.y {
		m += v
	}
	m /= float64(len(g.y))
	var ss float64
	for _, v := range g.y {
		ss += (v - m) * (v - m)
	}
	sd := math.Sqrt(ss / float64(len(g.y)))
	if !(sd > 1e-12*math.Max(1, math.Abs(m))) {
		sd = 1
	}
	g.mean, g.scale = m, sd
}

// Fit standardizes the objective, maximizes the log marginal likelihood
// over the hyperparameters by L-BFGS from restarts starts (the current
// hyperparameters, then random ones from rng within the bounds) and
// factorizes. It needs at least two points.
func (g *GP) Fit(rng *rand.Rand, restarts int) error {
	if len(g.x) < 2 {
		return fmt.Errorf("bayes: fit needs 2 points, have %d", len(g.x))
	}
	g.setScale()
	z := g.standardized()
	best, bestF := g.h.vec(), math.Inf(1)
	lo, hi := g.bounds()
	for r := range max(1, restarts) {
		start := g.h.vec()
		if r > 0 {
			for i := range start {
				start[i] = lo[i] + (hi[i]-lo[i])*rng.Float64()
			}
		}
		// Keep the best point any evaluation saw: a line search that ends
		// in an error still found it.
		x0, f0 := start, math.Inf(1)
		obj := func(v, grad []float64) float64 {
			f := -g.logMarginal(v, z, grad)
			// Quadratic walls outside the bounds.
			for i := range v {
				if d := v[i] - hi[i]; d > 0 {
					f += 100 * d * d
					if grad != nil {
						grad[i] = -grad[i] + 200*d
					}
				} else if d := lo[i] - v[i]; d > 0 {
					f += 100 * d * d
					if grad != nil {
						grad[i] = -grad[i] - 200*d
					}
				} else if grad != nil {
					grad[i] = -grad[i]
				}
			}
			if f < f0 && !math.IsNaN(f) {
				x0, f0 = append([]float64(nil), v...), f
			}
			return f
		}
		p := optimize.Problem{
			Func: func(v []float64) float64 { return obj(v, nil) },
			Grad: func(grad, v []float64) { obj(v, grad) },
		}
		_, _ = optimize.Minimize(p, start, &optimize.Settings{MajorIterations: 60, FuncEvaluations: 150, GradientThreshold: 1e-6}, &optimize.LBFGS{})
		if f0 < bestF {
			best, bestF = x0, f0
		}
	}
	for i := range best {
		best[i] = min(max(best[i], lo[i]), hi[i])
	}
	g.h = hyperOf(best)
	return g.factorize()
}

func (g *GP) bounds() (lo, hi []float64) {
	n := g.nl + 2
	lo, hi = make([]float64, n), make([]float64, n)
	lo[0], hi[0] = logSignalLo, logSignalHi
	for i := 1; i <= g.nl; i++ {
		lo[i], hi[i] = logLengthLo, g.logLengthHi()
	}
	lo[n-1], hi[n-1] = logNoiseLo, logNoiseHi
	return lo, hi
}

// logMarginal is the log marginal likelihood of the standardized data z
// under hyperparameters v (Hyper.vec order), and with grad non-nil its
// gradient: ½·tr((ααᵀ − K⁻¹)·∂K/∂v_j). −Inf when K is not positive
// definite.
func (g *GP) logMarginal(v, z, grad []float64) float64 {
	n := len(g.x)
	h := hyperOf(v)
	s, noise := math.Exp(h.LogSignal), math.Exp(h.LogNoise)
	il2 := invL2(h.LogLength)
	k := mat.NewSymDense(n, nil)
	// The kernel and its r²-derivative per pair, for the gradient.
	kfs, drs := make([]float64, n*n), make([]float64, n*n)
	for a := range n {
		for b := a; b < n; b++ {
			kv, dv := matern(s, g.pairR2(a, b, il2))
			kfs[a*n+b], drs[a*n+b] = kv, dv
			if a == b {
				kv += noise
			}
			k.SetSym(a, b, kv)
		}
	}
	var ch mat.Cholesky
	if !ch.Factorize(k) {
		if grad != nil {
			clear(grad)
		}
		return math.Inf(-1)
	}
	var al mat.VecDense
	if err := ch.SolveVecTo(&al, mat.NewVecDense(n, z)); err != nil {
		var c mat.Condition
		if !errors.As(err, &c) {
			return math.Inf(-1)
		}
	}
	alpha := al.RawVector().Data
	var yKy float64
	for i := range z {
		yKy += z[i] * alpha[i]
	}
	ll := -0.5*yKy - 0.5*ch.LogDet() - 0.5*float64(n)*math.Log(2*math.Pi)
	if grad == nil {
		return ll
	}
	clear(grad)
	var kinv mat.SymDense
	if err := ch.InverseTo(&kinv); err != nil {
		var c mat.Condition
		if !errors.As(err, &c) {
			return math.Inf(-1)
		}
	}
	ki := kinv.RawSymmetric()
	last := len(grad) - 1
	for a := range n {
		for b := a; b < n; b++ {
			w := alpha[a]*alpha[b] - ki.Data[a*ki.Stride+b]
			mult := 1.0 // each off-diagonal pair stands for (a,b) and (b,a)
			if a != b {
				mult = 2
			}
			kf, dr2 := kfs[a*n+b], drs[a*n+b]
			grad[0] += 0.5 * mult * w * kf
			if a == b {
				grad[last] += 0.5 * w * noise
				continue
			}
			// ∂K_ab/∂log ℓ_j = −2·dk/dr²·d2_j/ℓ_j².
			c := 0.5 * mult * w * (-2 * dr2)
			if g.nl == 1 {
				grad[1] += c * g.pairR2(a, b, il2)
				continue
			}
			xa, xb := g.x[a], g.x[b]
			for j := range xa {
				grad[1+j] += c * g.d2(j, xa[j], xb[j]) * il2[j]
			}
		}
	}
	return ll
}

// uRaw returns the upper Cholesky factor's raw storage.
func (g *GP) uRaw() blas64.Triangular {
	return g.chol.RawU().(*mat.TriDense).RawTriangular()
}

// kvec fills k with the covariances of u with every point, and kd with
// their derivatives in r2 (nil: not needed).
func (g *GP) kvec(u []float64, il2, k, kd []float64) {
	s := math.Exp(g.h.LogSignal)
	for a, xa := range g.x {
		kv, dv := matern(s, g.r2(xa, u, il2))
		k[a] = kv
		if kd != nil {
			kd[a] = dv
		}
	}
}

// Predict returns the posterior mean and standard deviation of the latent
// objective at u, in the objective's units; with dmu and dsd non-nil it
// also fills their gradients in u. It needs a fitted GP.
func (g *GP) Predict(u []float64, dmu, dsd []float64) (mu, sd float64) {
	n := len(g.x)
	il2 := invL2(g.h.LogLength)
	k, kd := make([]float64, n), []float64(nil)
	if dmu != nil || dsd != nil {
		kd = make([]float64, n)
	}
	g.kvec(u, il2, k, kd)
	for a := range n {
		mu += k[a] * g.alpha[a]
	}
	// v = U⁻ᵀk, var = s − vᵀv; w = U⁻¹v = K⁻¹k.
	ut := g.uRaw()
	v := append([]float64(nil), k...)
	blas64.Trsv(blas.Trans, ut, blas64.Vector{N: n, Data: v, Inc: 1})
	vv := blas64.Dot(blas64.Vector{N: n, Data: v, Inc: 1}, blas64.Vector{N: n, Data: v, Inc: 1})
	variance := math.Exp(g.h.LogSignal) - vv
	const tiny = 1e-12
	sdStd := math.Sqrt(max(variance, tiny))
	if kd != nil {
		w := v
		blas64.Trsv(blas.NoTrans, ut, blas64.Vector{N: n, Data: w, Inc: 1})
		if dmu != nil {
			clear(dmu)
		}
		if dsd != nil {
			clear(dsd)
		}
		for a, xa := range g.x {
			ca := kd[a] * g.alpha[a] * g.scale
			cw := -2 * kd[a] * w[a] / (2 * sdStd) * g.scale
			if variance <= tiny {
				cw = 0
			}
			for j := range u {
				_, dd := g.d2d(j, u[j], xa[j])
				dk := dd * il2[g.li(j)] // ∂r²/∂u_j; times kd[a] in ca, cw
				if dmu != nil {
					dmu[j] += ca * dk
				}
				if dsd != nil {
					dsd[j] += cw * dk
				}
			}
		}
	}
	return g.mean + g.scale*mu, g.scale * sdStd
}

// PredictBatch returns the posterior means and standard deviations at us,
// as Predict does one at a time, with one triangular solve for all (a
// matrix product, not len(us) vector ones).
func (g *GP) PredictBatch(us [][]float64) (mu, sd []float64) {
	n, m := len(g.x), len(us)
	il2 := invL2(g.h.LogLength)
	mu, kxc := g.crossSolve(m, func(c int, col []float64) { g.kvec(us[c], il2, col, nil) })
	s := math.Exp(g.h.LogSignal)
	vv := make([]float64, m)
	for a := range n {
		row := kxc[a*m : (a+1)*m]
		for c, v := range row {
			vv[c] += v * v
		}
	}
	sd = make([]float64, m)
	for c := range sd {
		sd[c] = g.scale * math.Sqrt(max(s-vv[c], 1e-12))
	}
	return mu, sd
}

// crossSolve returns the posterior means at m points given by their
// covariances with the GP's points (col fills column c), and V = U⁻ᵀ·Kxc,
// n×m row-major, from which their variances and covariances follow.
func (g *GP) crossSolve(m int, col func(c int, col []float64)) (mu, v []float64) {
	n := len(g.x)
	v = make([]float64, n*m) // n×m, row a: point a against every candidate
	kc := make([]float64, n)
	mu = make([]float64, m)
	for c := range m {
		col(c, kc)
		var s float64
		for a := range n {
			v[a*m+c] = kc[a]
			s += kc[a] * g.alpha[a]
		}
		mu[c] = g.mean + g.scale*s
	}
	blas64.Trsm(blas.Left, blas.Trans, 1, g.uRaw(), blas64.General{Rows: n, Cols: m, Stride: m, Data: v})
	return mu, v
}

// Posterior returns the joint posterior of the latent objective at us:
// the means and the covariance matrix, in the objective's units.
func (g *GP) Posterior(us [][]float64) (mu []float64, cov *mat.SymDense) {
	il2 := invL2(g.h.LogLength)
	s := math.Exp(g.h.LogSignal)
	return g.posterior(len(us), func(c int, col []float64) { g.kvec(us[c], il2, col, nil) },
		func(a, b int) float64 { k, _ := matern(s, g.r2(us[a], us[b], il2)); return k })
}

// posterior is Posterior over m points given by their covariances with
// the GP's points (col fills column c) and with each other (cross, a < b).
func (g *GP) posterior(m int, col func(c int, col []float64), cross func(a, b int) float64) (mu []float64, cov *mat.SymDense) {
	n := len(g.x)
	s := math.Exp(g.h.LogSignal)
	// V = U⁻ᵀ·Kxc, Σ = Kcc − VᵀV.
	mu, kxc := g.crossSolve(m, col)
	cov = mat.NewSymDense(m, nil)
	for a := range m {
		cov.SetSym(a, a, s)
		for b := a + 1; b < m; b++ {
			cov.SetSym(a, b, cross(a, b))
		}
	}
	blas64.Syrk(blas.Trans, -1, blas64.General{Rows: n, Cols: m, Stride: m, Data: kxc}, 1, cov.RawSymmetric())
	cov.ScaleSym(g.scale*g.scale, cov)
	return mu, cov
}

// State is what rebuilds a GP bit for bit from its points: the
// hyperparameters, the standardization and the number of points the last
// factorization from scratch covered (the rest were added one by one).
type State struct {
	Hyper  Hyper   `json:"hyper"`
	Mean   float64 `json:"mean"`
	Scale  float64 `json:"scale"`
	NFit   int     `json:"n_fit"`
	Fitted bool    `json:"fitted"`
}

// State returns the GP's state.
func (g *GP) State() State {
	return State{Hyper: g.Hyper(), Mean: g.mean, Scale: g.scale, NFit: g.nFit, Fitted: g.fitted}
}

// Restore rebuilds the GP from st and the points (us, ys), which must be
// the points the saved GP held, in order: the first st.NFit are factorized
// as at the last fit, the others added one at a time, as they were.
func (g *GP) Restore(st State, us [][]float64, ys []float64) error {
	if len(st.Hyper.LogLength) != g.nl {
		return fmt.Errorf("bayes: state has %d lengthscales, GP %d", len(st.Hyper.LogLength), g.nl)
	}
	if st.NFit > len(us) || len(us) != len(ys) {
		return fmt.Errorf("bayes: state covers %d points, %d given", st.NFit, len(us))
	}
	g.x, g.y, g.pw, g.fitted = nil, nil, nil, false
	g.h = st.Hyper
	g.h.LogLength = append([]float64(nil), st.Hyper.LogLength...)
	g.mean, g.scale = st.Mean, st.Scale
	start := 0
	if st.Fitted {
		for i := range st.NFit {
			if err := g.Add(us[i], ys[i]); err != nil {
				return err
			}
		}
		// factorize may raise the noise as it did at the fit: the saved
		// hyperparameters are the ones after that.
		if err := g.factorize(); err != nil {
			return err
		}
		start = st.NFit
	}
	for i := start; i < len(us); i++ {
		if err := g.Add(us[i], ys[i]); err != nil {
			return err
		}
	}
	return nil
}
