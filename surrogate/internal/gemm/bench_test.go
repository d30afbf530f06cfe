package gemm

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// The products of a training step of the OWMS surrogate (3600→1000⁴→500→1,
// batch 256): forward x·W, dW = xᵀ·dZ and dX = dZ·Wᵀ, and a square one.
var benchShapes = []struct {
	name           string
	m, n, k        int
	transA, transB bool
}{
	{"fwd-256x1000x3600", 256, 1000, 3600, false, false},
	{"fwd-256x1000x1000", 256, 1000, 1000, false, false},
	{"dW-3600x1000x256", 3600, 1000, 256, true, false},
	{"dX-256x1000x1000", 256, 1000, 1000, false, true},
	{"square-1000", 1000, 1000, 1000, false, false},
	{"CNON-256x256x256", 256, 256, 256, false, false},
}

func gflops(b *testing.B, flops float64, d time.Duration) {
	b.ReportMetric(flops*float64(b.N)/d.Seconds()/1e9, "GFLOP/s")
}

func benchGemm[T Float](b *testing.B, gonumToo bool) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, s := range benchShapes {
		o := newOperands[T](rng, s.transA, s.transB, s.m, s.n, s.k)
		flops := 2 * float64(s.m) * float64(s.n) * float64(s.k)
		b.Run(s.name, func(b *testing.B) {
			start := time.Now()
			for b.Loop() {
				Gemm(s.transA, s.transB, s.m, s.n, s.k, 1, o.a, o.lda, o.b, o.ldb, 0, o.c, o.ldc)
			}
			gflops(b, flops, time.Since(start))
		})
		if !gonumToo {
			continue
		}
		tr := func(t bool) blas.Transpose {
			if t {
				return blas.Trans
			}
			return blas.NoTrans
		}
		b.Run(s.name+"/gonum", func(b *testing.B) {
			impl := gonum.Implementation{}
			start := time.Now()
			for b.Loop() {
				switch c := any(o.c).(type) {
				case []float64:
					impl.Dgemm(tr(s.transA), tr(s.transB), s.m, s.n, s.k, 1, any(o.a).([]float64), o.lda, any(o.b).([]float64), o.ldb, 0, c, o.ldc)
				case []float32:
					impl.Sgemm(tr(s.transA), tr(s.transB), s.m, s.n, s.k, 1, any(o.a).([]float32), o.lda, any(o.b).([]float32), o.ldb, 0, c, o.ldc)
				}
			}
			gflops(b, flops, time.Since(start))
		})
	}
}

// BenchmarkGemm times the OWMS step's products against gonum's Dgemm and
// Sgemm on the same operands.
func BenchmarkGemm(b *testing.B) {
	b.Run("f64", func(b *testing.B) { benchGemm[float64](b, true) })
	b.Run("f32", func(b *testing.B) { benchGemm[float32](b, true) })
}

// BenchmarkPeak is the micro-kernel alone on operands that stay in the L1
// cache, on every core at once: the most this package's products can
// reach on this machine (the peak that docs/performance.md's percentages
// refer to).
func BenchmarkPeak(b *testing.B) {
	b.Run("f64", func(b *testing.B) { benchPeak(b, best[float64]()) })
	b.Run("f32", func(b *testing.B) { benchPeak(b, best[float32]()) })
}

func benchPeak[T Float](b *testing.B, kern kernel[T]) {
	const kb = 128
	workers := runtime.GOMAXPROCS(0)
	b.Run(fmt.Sprintf("%s-%dx%d", kern.name, kern.mr, kern.nr), func(b *testing.B) {
		const reps = 2000
		start := time.Now()
		for b.Loop() {
			done := make(chan struct{})
			for range workers {
				go func() {
					a, bb, c := make([]T, kb*kern.mr), make([]T, kb*kern.nr), make([]T, kern.mr*kern.nr)
					for range reps {
						kern.fn(kb, &a[0], &bb[0], &c[0], kern.nr, true)
					}
					done <- struct{}{}
				}()
			}
			for range workers {
				<-done
			}
		}
		gflops(b, 2*float64(kb*kern.mr*kern.nr*reps*workers), time.Since(start))
	})
}
