//go:build openblas && cgo

package gemm

import (
	"math/rand/v2"
	"testing"
	"time"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/netlib/blas/netlib"

	_ "github.com/insitu-lab/insitu/surrogate/openblas" // links OpenBLAS
)

// BenchmarkGemmOpenBLAS times OpenBLAS on BenchmarkGemm's shapes, for a
// comparison within one run (go test -tags openblas -bench 'Gemm').
func BenchmarkGemmOpenBLAS(b *testing.B) {
	tr := func(t bool) blas.Transpose {
		if t {
			return blas.Trans
		}
		return blas.NoTrans
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, s := range benchShapes {
		flops := 2 * float64(s.m) * float64(s.n) * float64(s.k)
		o := newOperands[float64](rng, s.transA, s.transB, s.m, s.n, s.k)
		b.Run("f64/"+s.name, func(b *testing.B) {
			start := time.Now()
			for b.Loop() {
				netlib.Implementation{}.Dgemm(tr(s.transA), tr(s.transB), s.m, s.n, s.k, 1, o.a, o.lda, o.b, o.ldb, 0, o.c, o.ldc)
			}
			gflops(b, flops, time.Since(start))
		})
		o32 := newOperands[float32](rng, s.transA, s.transB, s.m, s.n, s.k)
		b.Run("f32/"+s.name, func(b *testing.B) {
			start := time.Now()
			for b.Loop() {
				netlib.Implementation{}.Sgemm(tr(s.transA), tr(s.transB), s.m, s.n, s.k, 1, o32.a, o32.lda, o32.b, o32.ldb, 0, o32.c, o32.ldc)
			}
			gflops(b, flops, time.Since(start))
		})
	}
}
