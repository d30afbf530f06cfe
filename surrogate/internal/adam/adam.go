// Package adam is the elementwise update of the Adam optimizer over flat
// parameter vectors, in float64 or float32:
//
//	m ← β₁·m + (1−β₁)·g
//	v ← β₂·v + (1−β₂)·g·g
//	p ← p − step·m / (√v·rbc2 + ε)
//
// with the bias corrections folded into step and rbc2 by the caller. It is
// a memory-bound pass with a square root and a division per element, which
// scalar Go code cannot keep up with; on amd64 it runs as AVX-512 or AVX2
// assembly (8 or 4 float64 lanes, 16 or 8 float32) where the CPU has it,
// with every operation rounded exactly as the Go code rounds it, so the
// assembly and the Go fallback give the same bits.
package adam

// Float is the element type of an update.
type Float interface{ float32 | float64 }

// Coef holds the update's coefficients in the precision of the update:
// B1 = β₁, C1 = 1−β₁, B2 = β₂, C2 = 1−β₂, Step = lr/(1−β₁ᵗ),
// RBC2 = 1/√(1−β₂ᵗ), Eps = ε.
type Coef[T Float] struct {
	B1, C1, B2, C2, Step, RBC2, Eps T
}

// Update applies one step to every element of p, with gradients g and
// moments m and v, all of the same length (it panics otherwise).
func Update[T Float](m, v, p, g []T, c Coef[T]) {
	n := len(m)
	if len(v) != n || len(p) != n || len(g) != n {
		panic("adam: slices of different lengths")
	}
	done := updateAsm(m, v, p, g, &c)
	updateGo(m[done:], v[done:], p[done:], g[done:], c)
}

// updateGo is the reference, which the assembly reproduces bit for bit.
// The conversions T(…) round each product, which keeps the compiler from
// fusing it with the following addition (Go fuses on arm64, and on amd64
// from GOAMD64=v3): every machine and build computes the same bits.
func updateGo[T Float](m, v, p, g []T, c Coef[T]) {
	v, p, g = v[:len(m)], p[:len(m)], g[:len(m)]
	for i, gi := range g {
		mi := T(c.B1*m[i]) + T(c.C1*gi)
		vi := T(c.B2*v[i]) + T(T(c.C2*gi)*gi)
		m[i], v[i] = mi, vi
		p[i] -= T(c.Step*mi) / (T(sqrt(vi)*c.RBC2) + c.Eps)
	}
}

// Kernel names the assembly the updates of T use on this CPU: "avx512",
// "avx2" or "go".
func Kernel[T Float]() string {
	if _, ok := any(T(0)).(float32); ok {
		return kernels32[0].name
	}
	return kernels64[0].name
}
