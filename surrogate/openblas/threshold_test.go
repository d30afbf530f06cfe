//go:build openblas && cgo

package openblas

import (
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/netlib/blas/netlib"
)

// A product of exactly GemmMin multiply-adds goes to OpenBLAS: bit for bit
// what OpenBLAS computes on its own.
func TestDgemmAtThresholdIsOpenBLAS(t *testing.T) {
	g := gemmCase{blas.NoTrans, blas.Trans, 37, 41, 43, 1.5, 0.5, 2}
	rng := rand.New(rand.NewPCG(1, 2))
	a, lda, b, ldb, c, ldc := g.operands(rng)
	want := append([]float64(nil), c...)
	netlib.Implementation{}.Dgemm(g.tA, g.tB, g.m, g.n, g.k, g.alpha, a, lda, b, ldb, g.beta, want, ldc)
	got := append([]float64(nil), c...)
	Implementation{GemmMin: g.m * g.n * g.k}.Dgemm(g.tA, g.tB, g.m, g.n, g.k, g.alpha, a, lda, b, ldb, g.beta, got, ldc)
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("C[%d] = %v, OpenBLAS gives %v", i, got[i], want[i])
		}
	}
}
