package surrogate

import (
	"fmt"
	"math"
	"slices"
	"testing"

	"gonum.org/v1/gonum/blas"
)

// Each layer is checked on the scalar s = Σ c ⊙ output for a random
// cotangent c, so the analytic backward pass with upstream c must match the
// finite-difference gradient of s.

func TestLinearGradients(t *testing.T) {
	rng := newRand(1)
	const rows, in, out = 3, 4, 5
	x, w, b := randVec(rng, rows*in, 1), randVec(rng, in*out, 1), randVec(rng, out, 1)
	c := randVec(rng, rows*out, 1)
	z := make([]float64, rows*out)
	s := func() float64 {
		linearForward(x, rows, in, out, w, b, z)
		return dot(c, z)
	}
	gw, gb, dx := make([]float64, in*out), make([]float64, out), make([]float64, rows*in)
	linearBackward(x, c, rows, in, out, w, gw, gb, dx, false)
	checkGrad(t, "dx", dx, numGrad(x, s))
	checkGrad(t, "dW", gw, numGrad(w, s))
	checkGrad(t, "db", gb, numGrad(b, s))

	// Gradients accumulate, and the single-row path (an outer product) agrees.
	linearBackward(x, c, rows, in, out, w, gw, gb, nil, false)
	checkGrad(t, "dW accumulated twice", gw, scaled(numGrad(w, s), 2))
	gw1 := make([]float64, in*out)
	linearBackward(x[:in], c[:out], 1, in, out, w, gw1, make([]float64, out), nil, false)
	s1 := func() float64 {
		linearForward(x[:in], 1, in, out, w, b, z[:out])
		return dot(c[:out], z[:out])
	}
	checkGrad(t, "dW single row", gw1, numGrad(w, s1))
}

func scaled(v []float64, a float64) []float64 {
	r := slices.Clone(v)
	for i := range r {
		r[i] *= a
	}
	return r
}

func TestGELU(t *testing.T) {
	// Reference values of x·Φ(x).
	for _, tc := range []struct{ x, want float64 }{
		{0, 0}, {1, 0.8413447460685429}, {-1, -0.15865525393145707}, {3, 3 * 0.9986501019683699},
	} {
		a := make([]float64, 1)
		geluForward([]float64{tc.x}, a, nil, 1, 1)
		if math.Abs(a[0]-tc.want) > 1e-15 {
			t.Errorf("gelu(%v) = %v, want %v", tc.x, a[0], tc.want)
		}
	}
	rng := newRand(2)
	const rows, width = 4, 7
	h := randVec(rng, rows*width, 2)
	c := randVec(rng, rows*width, 1)
	a, dact := make([]float64, rows*width), make([]float64, rows*width)
	s := func() float64 {
		geluForward(h, a, nil, rows, width)
		return dot(c, a)
	}
	geluForward(h, a, dact, rows, width)
	dh := make([]float64, rows*width)
	geluBackward(c, dact, dh, rows, width)
	checkGrad(t, "gelu dh", dh, numGrad(h, s))
}

func TestLayerNormGradients(t *testing.T) {
	rng := newRand(3)
	const rows, width = 3, 6
	z := randVec(rng, rows*width, 2)
	for i := range z {
		z[i] += 5 // an offset the normalization must remove
	}
	gamma, beta := randVec(rng, width, 1), randVec(rng, width, 1)
	c := randVec(rng, rows*width, 1)
	xhat, rstd, h := make([]float64, rows*width), make([]float64, rows), make([]float64, rows*width)
	s := func() float64 {
		layerNormForward(z, rows, width, gamma, beta, xhat, rstd, h)
		return dot(c, h)
	}
	s()
	// Each row of xhat has mean 0 and variance var/(var+eps) ≈ 1.
	for r := range rows {
		var mu, v float64
		for _, x := range xhat[r*width : (r+1)*width] {
			mu += x
			v += x * x
		}
		if math.Abs(mu/width) > 1e-14 || math.Abs(v/width-1) > 1e-4 {
			t.Errorf("row %d: normalized mean %g, variance %g", r, mu/width, v/width)
		}
	}
	dgamma, dbeta, dz := make([]float64, width), make([]float64, width), make([]float64, rows*width)
	layerNormParamGrads(c, xhat, rows, width, dgamma, dbeta)
	layerNormBackward(c, xhat, rstd, gamma, rows, width, dz)
	checkGrad(t, "layernorm dz", dz, numGrad(z, s))
	checkGrad(t, "layernorm dγ", dgamma, numGrad(gamma, s))
	checkGrad(t, "layernorm dβ", dbeta, numGrad(beta, s))

	// In place, as the MLP uses it.
	dh := slices.Clone(c)
	layerNormBackward(dh, xhat, rstd, gamma, rows, width, dh)
	if relErr(dh, dz) != 0 {
		t.Errorf("in-place backward differs from out-of-place")
	}
}

func testArchs() map[string]Arch {
	return map[string]Arch{
		"plain":     {Hidden: []int{5, 4}},
		"layernorm": {Hidden: []int{5, 4}, LayerNorm: true},
		"linear":    {},
	}
}

func TestMLPGradients(t *testing.T) {
	for name, arch := range testArchs() {
		t.Run(name, func(t *testing.T) {
			const in, out, rows = 3, 2, 4
			m, err := NewMLP(in, out, arch, 7)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := m.NumParams(), arch.NumParams(in, out); got != want || len(m.Params()) != want || len(m.Grads()) != want {
				t.Fatalf("NumParams %d, Params %d, Grads %d, want %d", got, len(m.Params()), len(m.Grads()), want)
			}
			rng := newRand(8)
			// Move LayerNorm off γ=1, β=0 so its parameters matter.
			for i := range m.Params() {
				m.Params()[i] += 0.1 * rng.NormFloat64()
			}
			x := randVec(rng, rows*in, 1)
			c := randVec(rng, rows*out, 1)
			s := func() float64 { return dot(c, m.Predict(x, rows)) }

			y := m.Forward(x, rows)
			if relErr(y, m.Predict(x, rows)) != 0 {
				t.Errorf("Forward and Predict differ")
			}
			m.ZeroGrad()
			dx := slices.Clone(m.Backward(c))
			checkGrad(t, "params", m.Grads(), numGrad(m.Params(), s))
			checkGrad(t, "dx", dx, numGrad(x, s))

			// A second Backward accumulates.
			g1 := slices.Clone(m.Grads())
			m.Backward(c)
			checkGrad(t, "params accumulated", m.Grads(), scaled(g1, 2))
			m.ZeroGrad()
			for _, g := range m.Grads() {
				if g != 0 {
					t.Fatal("ZeroGrad left a nonzero gradient")
				}
			}
		})
	}
}

func TestMLPVJPAndJacobian(t *testing.T) {
	for name, arch := range testArchs() {
		t.Run(name, func(t *testing.T) {
			const in, out = 4, 3
			m, err := NewMLP(in, out, arch, 11)
			if err != nil {
				t.Fatal(err)
			}
			rng := newRand(12)
			x := randVec(rng, in, 1)
			jac := m.Jacobian(x)
			for o := range out {
				row := numGrad(x, func() float64 { return m.Predict(x, 1)[o] })
				checkGrad(t, fmt.Sprintf("Jacobian row %d", o), jac[o*in:(o+1)*in], row)
			}
			v := randVec(rng, out, 1)
			m.ZeroGrad()
			g := m.VJP(x, v)
			checkGrad(t, "VJP", g, numGrad(x, func() float64 { return dot(v, m.Predict(x, 1)) }))
			for _, gr := range m.Grads() {
				if gr != 0 {
					t.Fatal("VJP touched Grads")
				}
			}
		})
	}
}

func TestMLPVJPDoesNotDisturbTraining(t *testing.T) {
	m, _ := NewMLP(3, 2, Arch{Hidden: []int{6}, LayerNorm: true}, 1)
	rng := newRand(1)
	x, c := randVec(rng, 5*3, 1), randVec(rng, 5*2, 1)
	m.Forward(x, 5)
	m.ZeroGrad()
	want := slices.Clone(m.Backward(c))
	wantG := slices.Clone(m.Grads())
	m.ZeroGrad()
	m.Forward(x, 5)
	m.VJP(x[:3], c[:2])
	m.Jacobian(x[3:6])
	m.Predict(x, 5)
	got := m.Backward(c)
	if relErr(got, want) != 0 || relErr(m.Grads(), wantG) != 0 {
		t.Error("VJP/Jacobian/Predict between Forward and Backward changed the result")
	}
}

func TestNewMLPInit(t *testing.T) {
	if _, err := NewMLP(0, 1, Arch{}, 1); err == nil {
		t.Error("NewMLP accepted 0 inputs")
	}
	if _, err := NewMLP(2, 1, Arch{Hidden: []int{3, 0}}, 1); err == nil {
		t.Error("NewMLP accepted a zero-width hidden layer")
	}
	m, _ := NewMLP(100, 50, Arch{Hidden: []int{50}, LayerNorm: true}, 3)
	l := m.net.(*net[float64]).layers[0]
	bound := 1 / math.Sqrt(100)
	var lo, hi float64
	for _, w := range l.w {
		lo, hi = min(lo, w), max(hi, w)
	}
	if lo < -bound || hi > bound || hi-lo < 1.9*bound {
		t.Errorf("first-layer weights span [%g, %g], want about ±%g", lo, hi, bound)
	}
	for j := range l.gamma {
		if l.gamma[j] != 1 || l.beta[j] != 0 {
			t.Fatalf("LayerNorm init γ=%v β=%v", l.gamma[j], l.beta[j])
		}
	}
	m2, _ := NewMLP(100, 50, Arch{Hidden: []int{50}, LayerNorm: true}, 3)
	m3, _ := NewMLP(100, 50, Arch{Hidden: []int{50}, LayerNorm: true}, 4)
	if !slices.Equal(m.Params(), m2.Params()) {
		t.Error("same seed, different weights")
	}
	if slices.Equal(m.Params(), m3.Params()) {
		t.Error("different seeds, same weights")
	}
}

func TestParallelPassesMatchSerial(t *testing.T) {
	// Big enough to take the multi-goroutine path; the result must not
	// depend on it.
	const rows, width = 64, 512
	rng := newRand(5)
	h := randVec(rng, rows*width, 1)
	a1, d1 := make([]float64, rows*width), make([]float64, rows*width)
	geluForward(h, a1, d1, rows, width)
	for r := range rows {
		a2, d2 := make([]float64, width), make([]float64, width)
		geluForward(h[r*width:(r+1)*width], a2, d2, 1, width)
		if !slices.Equal(a2, a1[r*width:(r+1)*width]) || !slices.Equal(d2, d1[r*width:(r+1)*width]) {
			t.Fatalf("row %d differs", r)
		}
	}
}

// TestMLPGradientsParallelPaths uses widths and batch sizes that take the
// multi-goroutine GELU/LayerNorm passes and the split GEMV, and checks
// them against finite differences (a random subset of the parameters).
func TestMLPGradientsParallelPaths(t *testing.T) {
	const in, out, rows = 6, 2, 24
	arch := Arch{Hidden: []int{400, 400}, LayerNorm: true}
	if rows*400 < parMinElems || 400*400 < gemvParMinElems {
		t.Fatal("sizes no longer reach the parallel paths")
	}
	m, err := NewMLP(in, out, arch, 21)
	if err != nil {
		t.Fatal(err)
	}
	rng := newRand(22)
	for i := range m.Params() {
		m.Params()[i] += 0.05 * rng.NormFloat64()
	}
	x, c := randVec(rng, rows*in, 1), randVec(rng, rows*out, 1)
	s := func() float64 { return dot(c, m.Predict(x, rows)) }
	m.Forward(x, rows)
	m.ZeroGrad()
	dx := slices.Clone(m.Backward(c))
	checkGrad(t, "dx", dx, numGrad(x, s))
	idx := rng.Perm(m.NumParams())[:40]
	var an, nu []float64
	for _, i := range idx {
		an = append(an, m.Grads()[i])
		nu = append(nu, numGrad(m.Params()[i:i+1], s)[0])
	}
	checkGrad(t, "40 random parameters", an, nu)

	x1, v := x[:in], c[:out]
	checkGrad(t, "VJP", m.VJP(x1, v), numGrad(x1, func() float64 { return dot(v, m.Predict(x1, 1)) }))
	// The batched Jacobian agrees with per-output VJPs.
	jac := m.Jacobian(x1)
	for o := range out {
		e := make([]float64, out)
		e[o] = 1
		if g := m.VJP(x1, e); relErr(jac[o*in:(o+1)*in], g) > 1e-12 {
			t.Errorf("Jacobian row %d differs from the VJP", o)
		}
	}
}

func TestGemvRowMatchesNaive(t *testing.T) {
	rng := newRand(30)
	const k, n = 300, 500 // above gemvParMinElems: split across goroutines
	a, bm := randVec(rng, k, 1), randVec(rng, k*n, 1)
	// c = a·B (B k×n) and c = a·Bᵀ (B n×k read as its transpose).
	c1 := randVec(rng, n, 1)
	want := slices.Clone(c1)
	for j := range n {
		var s float64
		for i := range k {
			s += a[i] * bm[i*n+j]
		}
		want[j] = 0.5*want[j] + 2*s
	}
	serial := slices.Clone(c1)
	gemm(blas.NoTrans, blas.NoTrans, 1, n, k, 2, a, bm, 0.5, c1)
	if e := relErr(c1, want); e > 1e-13 {
		t.Errorf("a·B: relative error %g", e)
	}
	gemvPart(blas.NoTrans, n, k, 2, a, bm, 0.5, serial, 0, n)
	if !slices.Equal(serial, c1) {
		t.Error("a·B: the split GEMV differs from the serial one")
	}
	c2 := make([]float64, n)
	for j := range n {
		var s float64
		for i := range k {
			s += a[i] * bm[j*k+i]
		}
		want[j] = s
	}
	gemm(blas.NoTrans, blas.Trans, 1, n, k, 1, a, bm, 0, c2)
	if e := relErr(c2, want); e > 1e-13 {
		t.Errorf("a·Bᵀ: relative error %g", e)
	}
	serial = make([]float64, n)
	gemvPart(blas.Trans, n, k, 1, a, bm, 0, serial, 0, n)
	if !slices.Equal(serial, c2) {
		t.Error("a·Bᵀ: the split GEMV differs from the serial one")
	}
}
