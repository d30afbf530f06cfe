//go:build openblas && cgo

package openblas

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
	"gonum.org/v1/netlib/blas/netlib"
)

// crossoverShapes are the Dgemm shapes of the sweep that sets
// DefaultGemmMin: squares, and the skinny shapes a surrogate's layers
// produce at batch 256 (a 20→1 output layer: 256×1×20 forward, 20×1×256
// for dW, 256×20×1 for dX; small input layers with k = in).
var crossoverShapes = func() [][3]int {
	var s [][3]int
	for _, n := range []int{2, 3, 4, 6, 8, 12, 16, 20, 24, 32, 48, 64, 128} {
		s = append(s, [3]int{n, n, n})
	}
	for _, n := range []int{8, 16, 32, 64, 128, 256} { // outer products
		s = append(s, [3]int{n, n, 1})
	}
	for _, k := range []int{2, 5, 10, 20, 40, 80} {
		s = append(s, [3]int{256, 1, k}, [3]int{k, 1, 256}, [3]int{256, k, 1})
	}
	for _, k := range []int{2, 4, 8} {
		s = append(s, [3]int{32, 32, k}, [3]int{64, 64, k})
	}
	return s
}()

// BenchmarkGemmCrossover times each shape in gonum's Go kernels and in
// OpenBLAS, NN and NT (the forward and the dX products of a layer).
// Compare the two as ns/op within one run.
func BenchmarkGemmCrossover(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	for _, s := range crossoverShapes {
		m, n, k := s[0], s[1], s[2]
		a, bm, c := randSlice(rng, m*k), randSlice(rng, k*n), randSlice(rng, m*n)
		for _, tB := range []blas.Transpose{blas.NoTrans, blas.Trans} {
			ldb := n
			if tB == blas.Trans {
				ldb = k
			}
			for _, side := range []struct {
				name string
				impl blas.Float64
			}{{"go", gonum.Implementation{}}, {"openblas", netlib.Implementation{}}} {
				t := "NN"
				if tB == blas.Trans {
					t = "NT"
				}
				b.Run(fmt.Sprintf("%s/mnk=%d/%dx%dx%d/%s", t, m*n*k, m, n, k, side.name), func(b *testing.B) {
					start := time.Now()
					for range b.N {
						side.impl.Dgemm(blas.NoTrans, tB, m, n, k, 1, a, k, bm, ldb, 1, c, n)
					}
					b.ReportMetric(2*float64(m*n*k)*float64(b.N)/time.Since(start).Seconds()/1e9, "GFLOP/s")
				})
			}
		}
	}
}

// BenchmarkGemv compares gonum and OpenBLAS on the matrix-vector products
// of a single-point VJP: y = Wᵀ·x (forward, W in×out row-major) and
// y = W·x (backward), at the three benchmark nets' layer sizes.
func BenchmarkGemv(b *testing.B) {
	rng := rand.New(rand.NewPCG(2, 2))
	for _, s := range [][2]int{{10, 100}, {100, 100}, {10, 256}, {256, 256}, {1000, 1000}, {3600, 1000}} {
		in, out := s[0], s[1]
		w, x, y := randSlice(rng, in*out), randSlice(rng, max(in, out)), randSlice(rng, max(in, out))
		for _, side := range []struct {
			name string
			impl blas.Float64
		}{{"go", gonum.Implementation{}}, {"openblas", netlib.Implementation{}}} {
			b.Run(fmt.Sprintf("T/%dx%d/%s", in, out, side.name), func(b *testing.B) {
				for range b.N {
					side.impl.Dgemv(blas.Trans, in, out, 1, w, out, x, 1, 0, y, 1)
				}
			})
			b.Run(fmt.Sprintf("N/%dx%d/%s", in, out, side.name), func(b *testing.B) {
				for range b.N {
					side.impl.Dgemv(blas.NoTrans, in, out, 1, w, out, x, 1, 0, y, 1)
				}
			})
		}
	}
}
