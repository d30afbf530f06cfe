package bayes

import (
	"math"
	"math/rand/v2"
	"slices"

	"gonum.org/v1/gonum/optimize"
)

// EI is the expected improvement of a normal N(mu, sd²) below best, with
// its derivatives in mu and sd:
//
//	EI = (best − mu)·Φ(z) + sd·φ(z),  z = (best − mu)/sd,
//	∂EI/∂mu = −Φ(z),  ∂EI/∂sd = φ(z).
func EI(mu, sd, best float64) (ei, dmu, dsd float64) {
	if !(sd > 0) {
		return max(best-mu, 0), -step(best - mu), 0
	}
	z := (best - mu) / sd
	cdf := 0.5 * math.Erfc(-z/math.Sqrt2)
	pdf := math.Exp(-0.5*z*z) / math.Sqrt(2*math.Pi)
	return (best-mu)*cdf + sd*pdf, -cdf, pdf
}

func step(v float64) float64 {
	if v > 0 {
		return 1
	}
	return 0
}

// eiAt is EI of the GP at u below best, with its gradient in u when grad
// is non-nil.
func eiAt(g *GP, u []float64, best float64, grad []float64) float64 {
	if grad == nil {
		mu, sd := g.Predict(u, nil, nil)
		ei, _, _ := EI(mu, sd, best)
		return ei
	}
	dmu, dsd := make([]float64, len(u)), make([]float64, len(u))
	mu, sd := g.Predict(u, dmu, dsd)
	ei, a, b := EI(mu, sd, best)
	for j := range grad {
		grad[j] = a*dmu[j] + b*dsd[j]
	}
	return ei
}

// boxMap maps an unconstrained z to the unit box: (1 + sin z)/2 on a
// line (smooth, onto [0, 1]), z − ⌊z⌋ on the circle.
type boxMap struct{ periodic []bool }

func (m boxMap) u(z []float64) []float64 {
	u := make([]float64, len(z))
	for i, v := range z {
		if m.periodic[i] {
			u[i] = v - math.Floor(v)
		} else {
			u[i] = (1 + math.Sin(v)) / 2
		}
	}
	return u
}

// z is the inverse of u.
func (m boxMap) z(u []float64) []float64 {
	z := make([]float64, len(u))
	for i, v := range u {
		if m.periodic[i] {
			z[i] = v
		} else {
			z[i] = math.Asin(min(max(2*v-1, -1), 1))
		}
	}
	return z
}

// chain turns a gradient in u into one in z, in place.
func (m boxMap) chain(z, g []float64) {
	for i := range g {
		if !m.periodic[i] {
			g[i] *= math.Cos(z[i]) / 2
		}
	}
}

// MaximizeEI returns the point of the unit box with the largest expected
// improvement below best and that EI. It screens candidates random points
// (and small moves of the incumbents) by EI, then runs L-BFGS from the
// starts best of them; a line search that fails keeps the best point it
// evaluated. With EI zero everywhere it returns the screened point of
// lowest mean minus two standard deviations.
func MaximizeEI(g *GP, best float64, rng *rand.Rand, candidates, starts int, incumbents [][]float64) ([]float64, float64) {
	d := g.d
	type cand struct {
		u   []float64
		ei  float64
		lcb float64
	}
	var us [][]float64
	for range candidates {
		u := make([]float64, d)
		for i := range u {
			u[i] = rng.Float64()
		}
		us = append(us, u)
	}
	for _, x := range incumbents {
		for range 4 {
			u := make([]float64, d)
			for i := range u {
				u[i] = x[i] + 0.02*rng.NormFloat64()
			}
			project(u, g.periodic)
			us = append(us, u)
		}
	}
	cs := make([]cand, len(us))
	if len(us) > 0 {
		mus, sds := g.PredictBatch(us)
		for i, u := range us {
			ei, _, _ := EI(mus[i], sds[i], best)
			cs[i] = cand{u, ei, mus[i] - 2*sds[i]}
		}
	}
	if len(cs) == 0 {
		return nil, 0
	}
	slices.SortStableFunc(cs, func(a, b cand) int {
		switch {
		case a.ei > b.ei:
			return -1
		case a.ei < b.ei:
			return 1
		}
		return 0
	})
	if !(cs[0].ei > 0) {
		i := 0
		for k := range cs {
			if cs[k].lcb < cs[i].lcb {
				i = k
			}
		}
		return cs[i].u, 0
	}
	bm := boxMap{g.periodic}
	bestU, bestEI := cs[0].u, cs[0].ei
	for s := range min(starts, len(cs)) {
		if !(cs[s].ei > 0) {
			break
		}
		obj := func(z, grad []float64) float64 {
			u := bm.u(z)
			ei := eiAt(g, u, best, grad)
			if ei > bestEI {
				bestU, bestEI = u, ei
			}
			if grad != nil {
				bm.chain(z, grad)
				for i := range grad {
					grad[i] = -grad[i]
				}
			}
			return -ei
		}
		p := optimize.Problem{
			Func: func(z []float64) float64 { return obj(z, nil) },
			Grad: func(grad, z []float64) { obj(z, grad) },
		}
		_, _ = optimize.Minimize(p, bm.z(cs[s].u), &optimize.Settings{MajorIterations: 50, FuncEvaluations: 120, GradientThreshold: 1e-12}, &optimize.LBFGS{})
	}
	return bestU, bestEI
}

// project brings u into the unit box: a periodic coordinate wraps, any
// other is clipped.
func project(u []float64, periodic []bool) {
	for i, v := range u {
		if periodic[i] {
			u[i] = v - math.Floor(v)
		} else {
			u[i] = min(max(v, 0), 1)
		}
	}
}
