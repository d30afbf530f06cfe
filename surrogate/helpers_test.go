package surrogate

import (
	"math"
	"math/rand/v2"
	"testing"
)

// Gradient checks use central differences in float64; with this step the
// truncation and rounding errors are both around 1e-10 relative.
const (
	fdStep = 1e-5
	fdTol  = 1e-6
)

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 99)) }

func randVec(rng *rand.Rand, n int, scale float64) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = scale * rng.NormFloat64()
	}
	return v
}

// numGrad returns the central-difference gradient of f with respect to x,
// perturbing x in place and restoring it.
func numGrad(x []float64, f func() float64) []float64 {
	g := make([]float64, len(x))
	for i := range x {
		x0 := x[i]
		x[i] = x0 + fdStep
		fp := f()
		x[i] = x0 - fdStep
		fm := f()
		x[i] = x0
		g[i] = (fp - fm) / (2 * fdStep)
	}
	return g
}

// relErr is ‖a − b‖ / ‖b‖ (or ‖a‖ when b is zero).
func relErr(a, b []float64) float64 {
	var dd, bb, aa float64
	for i := range a {
		d := a[i] - b[i]
		dd += d * d
		bb += b[i] * b[i]
		aa += a[i] * a[i]
	}
	if bb == 0 {
		return math.Sqrt(aa)
	}
	return math.Sqrt(dd / bb)
}

func checkGrad(t *testing.T, name string, analytic, numeric []float64) {
	t.Helper()
	if len(analytic) != len(numeric) {
		t.Fatalf("%s: %d analytic values, %d numeric", name, len(analytic), len(numeric))
	}
	e := relErr(analytic, numeric)
	t.Logf("%s: relative error %.2g", name, e)
	if !(e <= fdTol) {
		t.Errorf("%s: relative error %.3g > %g\nanalytic %v\nnumeric  %v", name, e, fdTol, head(analytic), head(numeric))
	}
	var nz bool
	for _, v := range numeric {
		nz = nz || v != 0
	}
	if !nz {
		t.Errorf("%s: numeric gradient is all zero; the check proves nothing", name)
	}
}

func head(v []float64) []float64 { return v[:min(len(v), 8)] }

func dot(a, b []float64) float64 {
	var s float64
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}
