//go:build openblas && cgo

package openblas

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"sync"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/blas/gonum"
	"gonum.org/v1/netlib/blas/netlib"
)

func randSlice(rng *rand.Rand, n int) []float64 {
	s := make([]float64, n)
	for i := range s {
		s[i] = rng.NormFloat64()
	}
	return s
}

// gemmCase is one Dgemm call with leading dimensions padded past the
// matrix widths, so stride handling is exercised too.
type gemmCase struct {
	tA, tB      blas.Transpose
	m, n, k     int
	alpha, beta float64
	pad         int
}

func (g gemmCase) String() string {
	t := func(x blas.Transpose) string {
		if x == blas.NoTrans {
			return "N"
		}
		return "T"
	}
	return fmt.Sprintf("%s%s_%dx%dx%d_a%g_b%g_pad%d", t(g.tA), t(g.tB), g.m, g.n, g.k, g.alpha, g.beta, g.pad)
}

// operands returns A, B and C with their leading dimensions.
func (g gemmCase) operands(rng *rand.Rand) (a []float64, lda int, b []float64, ldb int, c []float64, ldc int) {
	ar, ac := g.m, g.k
	if g.tA != blas.NoTrans {
		ar, ac = g.k, g.m
	}
	br, bc := g.k, g.n
	if g.tB != blas.NoTrans {
		br, bc = g.n, g.k
	}
	lda, ldb, ldc = max(ac+g.pad, 1), max(bc+g.pad, 1), max(g.n+g.pad, 1)
	return randSlice(rng, max(ar*lda, 1)), lda, randSlice(rng, max(br*ldb, 1)), ldb, randSlice(rng, max(g.m*ldc, 1)), ldc
}

// checkGemm runs the case through impl and through gonum and compares C,
// padding included (it must be untouched), to a tolerance that grows with
// k: the two libraries sum in different orders and with or without FMA.
func checkGemm(t *testing.T, impl blas.Float64, g gemmCase) {
	t.Helper()
	rng := rand.New(rand.NewPCG(uint64(g.m*1000003+g.n*1009+g.k), 7))
	a, lda, b, ldb, c, ldc := g.operands(rng)
	want := append([]float64(nil), c...)
	gonum.Implementation{}.Dgemm(g.tA, g.tB, g.m, g.n, g.k, g.alpha, a, lda, b, ldb, g.beta, want, ldc)
	got := append([]float64(nil), c...)
	impl.Dgemm(g.tA, g.tB, g.m, g.n, g.k, g.alpha, a, lda, b, ldb, g.beta, got, ldc)
	// Entries are sums of k products of N(0,1) values: their size is about
	// |alpha|·√k, and rounding errors grow at most like k·ε times that.
	tol := 1e-14 * float64(g.k+4) * (math.Abs(g.alpha)*math.Sqrt(float64(g.k)) + math.Abs(g.beta) + 1)
	for i := range want {
		if d := math.Abs(got[i] - want[i]); !(d <= tol) {
			t.Fatalf("%v: C[%d] = %v, gonum gives %v (|Δ| = %.3g > %.3g)", g, i, got[i], want[i], d, tol)
		}
	}
}

// TestDgemmMatchesGonum checks the routed Dgemm against gonum's Go result
// for sizes below and above the threshold, all four transposes, several
// alpha/beta, and padded leading dimensions.
func TestDgemmMatchesGonum(t *testing.T) {
	shapes := [][3]int{
		{1, 1, 1}, {2, 3, 4}, {3, 5, 7}, {16, 16, 16}, // small
		{17, 23, 29}, {64, 64, 64}, {96, 10, 96}, {96, 96, 10}, // large
		{96, 1, 40}, {40, 96, 1}, {1, 120, 100}, {120, 1, 100}, // skinny
		{0, 5, 5}, {5, 0, 5}, {5, 5, 0}, // empty
	}
	var cases []gemmCase
	for _, s := range shapes {
		for _, tA := range []blas.Transpose{blas.NoTrans, blas.Trans} {
			for _, tB := range []blas.Transpose{blas.NoTrans, blas.Trans} {
				for _, ab := range [][2]float64{{1, 0}, {-0.5, 2}, {0, 0.3}, {2.5, -1}} {
					for _, pad := range []int{0, 3} {
						cases = append(cases, gemmCase{tA, tB, s[0], s[1], s[2], ab[0], ab[1], pad})
					}
				}
			}
		}
	}
	for _, impl := range []Implementation{{}, {GemmMin: 1}} {
		t.Run(fmt.Sprintf("GemmMin=%d", impl.GemmMin), func(t *testing.T) {
			for _, g := range cases {
				checkGemm(t, impl, g)
			}
		})
	}
}

// TestDgemmBelowThresholdIsGo: products below GemmMin must be gonum's,
// bit for bit.
func TestDgemmBelowThresholdIsGo(t *testing.T) {
	g := gemmCase{blas.NoTrans, blas.Trans, 37, 41, 43, 1.5, 0.5, 2}
	rng := rand.New(rand.NewPCG(1, 2))
	a, lda, b, ldb, c, ldc := g.operands(rng)
	want := append([]float64(nil), c...)
	gonum.Implementation{}.Dgemm(g.tA, g.tB, g.m, g.n, g.k, g.alpha, a, lda, b, ldb, g.beta, want, ldc)
	got := append([]float64(nil), c...)
	Implementation{GemmMin: g.m*g.n*g.k + 1}.Dgemm(g.tA, g.tB, g.m, g.n, g.k, g.alpha, a, lda, b, ldb, g.beta, got, ldc)
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("C[%d] = %v, gonum gives %v", i, got[i], want[i])
		}
	}
}

// TestDgemmPanics: bad arguments panic on both sides of the threshold, as
// blas.Float64 requires.
func TestDgemmPanics(t *testing.T) {
	for _, impl := range []Implementation{{}, {GemmMin: 1}} {
		for name, call := range map[string]func(){
			"short lda": func() {
				a, b, c := make([]float64, 64*64), make([]float64, 64*64), make([]float64, 64*64)
				impl.Dgemm(blas.NoTrans, blas.NoTrans, 64, 64, 64, 1, a, 63, b, 64, 0, c, 64)
			},
			"short C": func() {
				a, b, c := make([]float64, 64*64), make([]float64, 64*64), make([]float64, 64*63)
				impl.Dgemm(blas.NoTrans, blas.NoTrans, 64, 64, 64, 1, a, 64, b, 64, 0, c, 64)
			},
			"bad transpose": func() {
				a, b, c := make([]float64, 64*64), make([]float64, 64*64), make([]float64, 64*64)
				impl.Dgemm('x', blas.NoTrans, 64, 64, 64, 1, a, 64, b, 64, 0, c, 64)
			},
		} {
			func() {
				defer func() {
					if recover() == nil {
						t.Errorf("GemmMin=%d, %s: no panic", impl.GemmMin, name)
					}
				}()
				call()
			}()
		}
	}
}

// TestDgemmConcurrent: the surrogate may multiply from several goroutines
// at once (Predict and VJP run concurrently); OpenBLAS must give each
// caller its own correct result.
func TestDgemmConcurrent(t *testing.T) {
	const workers, rounds = 4, 5
	g := gemmCase{blas.NoTrans, blas.NoTrans, 96, 80, 112, 1, 0, 0}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 3))
			for range rounds {
				a, lda, b, ldb, c, ldc := g.operands(rng)
				want := append([]float64(nil), c...)
				gonum.Implementation{}.Dgemm(g.tA, g.tB, g.m, g.n, g.k, g.alpha, a, lda, b, ldb, g.beta, want, ldc)
				Implementation{}.Dgemm(g.tA, g.tB, g.m, g.n, g.k, g.alpha, a, lda, b, ldb, g.beta, c, ldc)
				for i := range want {
					if math.Abs(c[i]-want[i]) > 1e-11 {
						t.Errorf("worker %d: C[%d] = %v, gonum gives %v", w, i, c[i], want[i])
						return
					}
				}
			}
		}()
	}
	wg.Wait()
}

// TestSgemmMatchesGonum checks the routed Sgemm against gonum's on both
// sides of the threshold, all four transposes and padded strides, to a
// float32 tolerance; and that a product at the threshold is OpenBLAS's
// own result, one below it gonum's, bit for bit.
func TestSgemmMatchesGonum(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	f32 := func(n int) []float32 {
		s := make([]float32, n)
		for i := range s {
			s[i] = float32(rng.NormFloat64())
		}
		return s
	}
	for _, s := range [][3]int{{2, 3, 4}, {3, 5, 7}, {17, 23, 29}, {96, 1, 40}, {40, 96, 1}, {120, 80, 100}} {
		for _, tA := range []blas.Transpose{blas.NoTrans, blas.Trans} {
			for _, tB := range []blas.Transpose{blas.NoTrans, blas.Trans} {
				g := gemmCase{tA, tB, s[0], s[1], s[2], -0.5, 2, 3}
				ar, ac, br, bc := g.m, g.k, g.k, g.n
				if tA == blas.Trans {
					ar, ac = ac, ar
				}
				if tB == blas.Trans {
					br, bc = bc, br
				}
				lda, ldb, ldc := ac+g.pad, bc+g.pad, g.n+g.pad
				a, b, c := f32(ar*lda), f32(br*ldb), f32(g.m*ldc)
				want := append([]float32(nil), c...)
				gonum.Implementation{}.Sgemm(tA, tB, g.m, g.n, g.k, -0.5, a, lda, b, ldb, 2, want, ldc)
				for _, impl := range []Implementation{{}, {GemmMin: 1}} {
					got := append([]float32(nil), c...)
					impl.Sgemm(tA, tB, g.m, g.n, g.k, -0.5, a, lda, b, ldb, 2, got, ldc)
					tol := 2e-6 * float64(g.k+4) * (0.5*math.Sqrt(float64(g.k)) + 3)
					for i := range want {
						if d := math.Abs(float64(got[i] - want[i])); !(d <= tol) {
							t.Fatalf("%v GemmMin=%d: C[%d] = %v, gonum gives %v", g, impl.GemmMin, i, got[i], want[i])
						}
					}
				}
				at, below := append([]float32(nil), c...), append([]float32(nil), c...)
				ref := append([]float32(nil), c...)
				netlib.Implementation{}.Sgemm(tA, tB, g.m, g.n, g.k, -0.5, a, lda, b, ldb, 2, ref, ldc)
				mnk := g.m * g.n * g.k
				Implementation{GemmMin: mnk}.Sgemm(tA, tB, g.m, g.n, g.k, -0.5, a, lda, b, ldb, 2, at, ldc)
				Implementation{GemmMin: mnk + 1}.Sgemm(tA, tB, g.m, g.n, g.k, -0.5, a, lda, b, ldb, 2, below, ldc)
				for i := range ref {
					if at[i] != ref[i] || below[i] != want[i] {
						t.Fatalf("%v: C[%d] at the threshold %v (OpenBLAS %v), below it %v (gonum %v)", g, i, at[i], ref[i], below[i], want[i])
					}
				}
			}
		}
	}
}

// TestInstalled: importing the package installs the backend for blas64
// and blas32.
func TestInstalled(t *testing.T) {
	if _, ok := blas64.Implementation().(Implementation); !ok {
		t.Fatalf("blas64 uses %T, want openblas.Implementation", blas64.Implementation())
	}
	if _, ok := blas32.Implementation().(Implementation); !ok {
		t.Fatalf("blas32 uses %T, want openblas.Implementation", blas32.Implementation())
	}
	if !Enabled {
		t.Fatal("Enabled is false in a build with the backend")
	}
	t.Logf("%s; kernels %s, %d threads", Config(), CoreName(), Threads())
}

func TestThreads(t *testing.T) {
	explicit := false
	for _, v := range threadEnv {
		explicit = explicit || os.Getenv(v) != ""
	}
	if !explicit {
		if got, want := Threads(), defaultThreads(); got != want {
			t.Errorf("Threads() = %d at start, want the default %d", got, want)
		}
	}
	old := Threads()
	defer SetThreads(old)
	SetThreads(1)
	if got := Threads(); got != 1 {
		t.Errorf("after SetThreads(1), Threads() = %d", got)
	}
	SetThreads(0)
	if got := Threads(); got != 1 {
		t.Errorf("after SetThreads(0), Threads() = %d, want 1", got)
	}
	// Still correct with one thread on a product large enough to be split.
	checkGemm(t, Implementation{}, gemmCase{blas.Trans, blas.NoTrans, 200, 150, 300, 1, 0, 0})
}
