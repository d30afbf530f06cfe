package gemm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// operands returns random A, B and C for an m×n×k product with the given
// transposes and padded strides (each at least one more than needed, so a
// kernel that strays past a row's end hits data that would change the
// result).
type operands[T Float] struct {
	transA, transB bool
	m, n, k        int
	lda, ldb, ldc  int
	a, b, c        []T
}

func newOperands[T Float](rng *rand.Rand, transA, transB bool, m, n, k int) operands[T] {
	o := operands[T]{transA: transA, transB: transB, m: m, n: n, k: k}
	ar, ac := m, k
	if transA {
		ar, ac = k, m
	}
	br, bc := k, n
	if transB {
		br, bc = n, k
	}
	o.lda, o.ldb, o.ldc = ac+1+rng.IntN(3), bc+1+rng.IntN(3), n+1+rng.IntN(3)
	fill := func(rows, ld int) []T {
		s := make([]T, rows*ld)
		for i := range s {
			s[i] = T(rng.NormFloat64())
		}
		return s
	}
	o.a, o.b, o.c = fill(ar, o.lda), fill(br, o.ldb), fill(m, o.ldc)
	return o
}

func (o operands[T]) at(s []T, ld int, trans bool, i, j int) float64 {
	if trans {
		return float64(s[j*ld+i])
	}
	return float64(s[i*ld+j])
}

// reference is the naive triple loop in float64, with a bound on the
// rounding error of each element of C for type T: every sum of k products
// may be off by k·ε·Σ|terms| in any order.
func (o operands[T]) reference(alpha, beta float64) (want, bound []float64) {
	eps := 0x1p-52
	if _, ok := any(T(0)).(float32); ok {
		eps = 0x1p-23
	}
	want, bound = make([]float64, o.m*o.n), make([]float64, o.m*o.n)
	for i := range o.m {
		for j := range o.n {
			var s, abs float64
			for p := range o.k {
				t := o.at(o.a, o.lda, o.transA, i, p) * o.at(o.b, o.ldb, o.transB, p, j)
				s += t
				abs += math.Abs(t)
			}
			c := float64(o.c[i*o.ldc+j])
			want[i*o.n+j] = alpha*s + beta*c
			bound[i*o.n+j] = float64(o.k+3)*eps*(math.Abs(alpha)*abs+math.Abs(beta*c)) + 1e-300
		}
	}
	return want, bound
}

// check compares the product in got (stride o.ldc) with the reference and
// that the padding between rows was not written.
func (o operands[T]) check(t *testing.T, what string, got []T, alpha, beta float64) {
	t.Helper()
	want, bound := o.reference(alpha, beta)
	bad := 0
	for i := range o.m {
		for j := range o.ldc {
			g := float64(got[i*o.ldc+j])
			if j >= o.n {
				if got[i*o.ldc+j] != o.c[i*o.ldc+j] {
					t.Fatalf("%s: padding C[%d][%d] written: %v, was %v", what, i, j, g, o.c[i*o.ldc+j])
				}
				continue
			}
			w, b := want[i*o.n+j], bound[i*o.n+j]
			if !(math.Abs(g-w) <= b) {
				if bad < 5 {
					t.Errorf("%s: C[%d][%d] = %v, want %v ± %.3g", what, i, j, g, w, b)
				}
				bad++
			}
		}
	}
	if bad > 0 {
		t.Fatalf("%s: %d of %d elements wrong", what, bad, o.m*o.n)
	}
}

// oddShapes are sizes around every kernel's tile and block edges.
var oddShapes = [][3]int{
	{1, 1, 1}, {1, 17, 3}, {13, 1, 5}, {2, 3, 0}, {0, 4, 5}, {4, 0, 3},
	{5, 7, 11}, {11, 16, 9}, {12, 16, 1}, {12, 32, 256}, {13, 33, 257},
	{6, 8, 255}, {7, 9, 513}, {25, 17, 300}, {145, 31, 70}, {97, 40, 33},
	{3, 4100, 7}, {150, 20, 600},
}

func testKernel[T Float](t *testing.T, kern kernel[T]) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, s := range oddShapes {
		if raceEnabled && s[0]*s[1]*s[2] > 1<<19 {
			continue
		}
		for _, tr := range [][2]bool{{false, false}, {false, true}, {true, false}, {true, true}} {
			for _, ab := range [][2]float64{{1, 0}, {1, 1}, {-0.5, 2}} {
				for _, workers := range []int{1, 3} {
					m, n, k := s[0], s[1], s[2]
					o := newOperands[T](rng, tr[0], tr[1], m, n, k)
					got := append([]T(nil), o.c...)
					// beta = 0 on 3 goroutines overwrites C, which must
					// not be read: it holds NaN. Otherwise mul adds to C
					// scaled by beta, as Gemm does.
					overwrite := ab[1] == 0 && workers == 3
					for i := range m {
						for j := range n {
							switch {
							case overwrite:
								got[i*o.ldc+j] = T(math.NaN())
							case ab[1] == 0:
								got[i*o.ldc+j] = 0
							default:
								got[i*o.ldc+j] *= T(ab[1])
							}
						}
					}
					if m > 0 && n > 0 && k > 0 {
						mul(kern, workers, overwrite, o.transA, o.transB, m, n, k, T(ab[0]), o.a, o.lda, o.b, o.ldb, got, o.ldc)
					} else if overwrite {
						continue
					}
					o.check(t, fmt.Sprintf("%s %d×%d×%d trans %v alpha %v beta %v workers %d", kern.name, m, n, k, tr, ab[0], ab[1], workers), got, ab[0], ab[1])
				}
			}
		}
	}
}

// TestKernels runs every kernel this CPU has, assembly and Go, on odd
// shapes, all four transposes, several alpha and beta, and 1 and 3
// goroutines, against a naive float64 triple loop.
func TestKernels(t *testing.T) {
	for _, kern := range kernels64 {
		t.Run("f64/"+kern.name, func(t *testing.T) { testKernel(t, kern) })
	}
	for _, kern := range kernels32 {
		t.Run("f32/"+kern.name, func(t *testing.T) { testKernel(t, kern) })
	}
	t.Logf("kernels: float64 %s, float32 %s", Kernel[float64](), Kernel[float32]())
}

// TestGemmAgainstGonum compares Gemm (small path, packed path and the
// goroutine split) with gonum's Dgemm and Sgemm.
func TestGemmAgainstGonum(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	impl := gonum.Implementation{}
	tr := func(b bool) blas.Transpose {
		if b {
			return blas.Trans
		}
		return blas.NoTrans
	}
	for _, s := range [][3]int{{3, 5, 7}, {31, 29, 37}, {256, 1000, 100}, {100, 37, 256}, {20, 1, 256}, {256, 20, 1}} {
		for _, tab := range [][2]bool{{false, false}, {false, true}, {true, false}, {true, true}} {
			m, n, k := s[0], s[1], s[2]
			o := newOperands[float64](rng, tab[0], tab[1], m, n, k)
			got, want := append([]float64(nil), o.c...), append([]float64(nil), o.c...)
			Gemm(o.transA, o.transB, m, n, k, 0.7, o.a, o.lda, o.b, o.ldb, 0.3, got, o.ldc)
			impl.Dgemm(tr(o.transA), tr(o.transB), m, n, k, 0.7, o.a, o.lda, o.b, o.ldb, 0.3, want, o.ldc)
			for i := range got {
				if d := math.Abs(got[i] - want[i]); d > 1e-12*float64(k+1)*(1+math.Abs(want[i])) {
					t.Fatalf("f64 %v trans %v: element %d = %v, gonum %v", s, tab, i, got[i], want[i])
				}
			}
			o32 := newOperands[float32](rng, tab[0], tab[1], m, n, k)
			got32, want32 := append([]float32(nil), o32.c...), append([]float32(nil), o32.c...)
			Gemm(o32.transA, o32.transB, m, n, k, 0.7, o32.a, o32.lda, o32.b, o32.ldb, 0.3, got32, o32.ldc)
			impl.Sgemm(tr(o32.transA), tr(o32.transB), m, n, k, 0.7, o32.a, o32.lda, o32.b, o32.ldb, 0.3, want32, o32.ldc)
			for i := range got32 {
				if d := math.Abs(float64(got32[i] - want32[i])); d > 2e-6*float64(k+1)*(1+math.Abs(float64(want32[i]))) {
					t.Fatalf("f32 %v trans %v: element %d = %v, gonum %v", s, tab, i, got32[i], want32[i])
				}
			}
		}
	}
}

// TestGemmGoroutinesSameBits: the split over goroutines does not change a
// single bit.
func TestGemmGoroutinesSameBits(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, s := range [][3]int{{256, 1000, 300}, {1000, 100, 256}} {
		o := newOperands[float64](rng, false, true, s[0], s[1], s[2])
		one, two := append([]float64(nil), o.c...), append([]float64(nil), o.c...)
		kern := best[float64]()
		mul(kern, 1, false, o.transA, o.transB, s[0], s[1], s[2], 1, o.a, o.lda, o.b, o.ldb, one, o.ldc)
		mul(kern, 2, false, o.transA, o.transB, s[0], s[1], s[2], 1, o.a, o.lda, o.b, o.ldb, two, o.ldc)
		for i := range one {
			if math.Float64bits(one[i]) != math.Float64bits(two[i]) {
				t.Fatalf("%v: element %d differs between 1 and 2 goroutines: %v vs %v", s, i, one[i], two[i])
			}
		}
	}
}

// TestGemmBetaZeroIgnoresNaN: beta = 0 overwrites C, as BLAS specifies.
func TestGemmBetaZeroIgnoresNaN(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	o := newOperands[float64](rng, false, false, 30, 40, 50)
	for i := range o.c {
		o.c[i] = math.NaN()
	}
	got := append([]float64(nil), o.c...)
	Gemm(false, false, 30, 40, 50, 1, o.a, o.lda, o.b, o.ldb, 0, got, o.ldc)
	for i := range 30 {
		for j := range 40 {
			if math.IsNaN(got[i*o.ldc+j]) {
				t.Fatalf("C[%d][%d] is NaN after beta = 0", i, j)
			}
		}
	}
}

func TestGemmPanics(t *testing.T) {
	for name, f := range map[string]func(){
		"short A": func() {
			Gemm(false, false, 2, 2, 2, 1, make([]float64, 3), 2, make([]float64, 4), 2, 0, make([]float64, 4), 2)
		},
		"short C": func() {
			Gemm(false, false, 2, 2, 2, 1, make([]float64, 4), 2, make([]float64, 4), 2, 0, make([]float64, 3), 2)
		},
		"small stride": func() {
			Gemm(false, false, 2, 3, 2, 1, make([]float64, 4), 2, make([]float64, 6), 2, 0, make([]float64, 6), 3)
		},
		"negative": func() { Gemm[float64](false, false, -1, 2, 2, 1, nil, 2, nil, 2, 0, nil, 2) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}

// beta is the beta a fuzzed mul call implies: bit 2 of trans asks to
// overwrite C, which is beta = 0.
func beta(trans uint8) float64 {
	if trans&4 != 0 {
		return 0
	}
	return 1
}

// FuzzGemm draws shapes, transposes, strides and whether C is overwritten,
// and checks every kernel against the naive loop.
func FuzzGemm(f *testing.F) {
	f.Add(uint8(13), uint8(33), uint16(257), uint8(0), uint64(1))
	f.Add(uint8(1), uint8(1), uint16(1), uint8(3), uint64(2))
	f.Add(uint8(145), uint8(17), uint16(300), uint8(2), uint64(3))
	f.Add(uint8(30), uint8(70), uint16(513), uint8(5), uint64(4))
	f.Fuzz(func(t *testing.T, m, n uint8, k uint16, trans uint8, seed uint64) {
		k %= 600
		rng := rand.New(rand.NewPCG(seed, 9))
		mm, nn, kk := int(m)+1, int(n)+1, int(k)+1
		for _, kern := range kernels64 {
			o := newOperands[float64](rng, trans&1 != 0, trans&2 != 0, mm, nn, kk)
			got := append([]float64(nil), o.c...)
			mul(kern, 2, trans&4 != 0, o.transA, o.transB, mm, nn, kk, 1.5, o.a, o.lda, o.b, o.ldb, got, o.ldc)
			o.check(t, "f64 "+kern.name, got, 1.5, beta(trans))
		}
		for _, kern := range kernels32 {
			o := newOperands[float32](rng, trans&1 != 0, trans&2 != 0, mm, nn, kk)
			got := append([]float32(nil), o.c...)
			mul(kern, 2, trans&4 != 0, o.transA, o.transB, mm, nn, kk, 1.5, o.a, o.lda, o.b, o.ldb, got, o.ldc)
			o.check(t, "f32 "+kern.name, got, 1.5, beta(trans))
		}
	})
}
