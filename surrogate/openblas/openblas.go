//go:build openblas && cgo

package openblas

/*
#cgo LDFLAGS: -lopenblas

// OpenBLAS's own extensions; declared here so the build does not depend on
// where a distribution puts its cblas.h.
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
int openblas_get_num_procs(void);
char *openblas_get_corename(void);
char *openblas_get_config(void);
*/
import "C"

import (
	"os"
	"runtime"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/blas/gonum"
	"gonum.org/v1/netlib/blas/netlib"
)

// Enabled reports whether this build has the OpenBLAS backend.
const Enabled = true

// DefaultGemmMin is the work, m·n·k multiply-adds, from which Dgemm goes
// to OpenBLAS. BenchmarkGemmCrossover (docs/performance.md) puts the
// crossover near 64: below about 30 (2×2×2, 3×3×3) gonum's Go kernels win
// by up to 3× because a cgo call costs about 100 ns; from 216 (6×6×6) on
// OpenBLAS wins every shape of the sweep, and by 5–100× on the skinny
// products of narrow layers (n = 1 or k = 1), where gonum's loops degrade
// to one-element AXPYs.
const DefaultGemmMin = 64

// Implementation is a blas.Float64 and a blas.Float32 that is gonum's
// pure-Go implementation except for Dgemm and Sgemm calls of at least
// GemmMin multiply-adds, which OpenBLAS computes. The zero value uses
// DefaultGemmMin.
type Implementation struct {
	gonum.Implementation

	// GemmMin is the m·n·k from which Dgemm goes to OpenBLAS; 0 means
	// DefaultGemmMin, 1 sends every non-empty product.
	GemmMin int
}

var (
	_ blas.Float64 = Implementation{}
	_ blas.Float32 = Implementation{}
)

// toOpenBLAS reports whether an m×n×k product goes to OpenBLAS. Empty and
// negative sizes go to Go, whose checks and quick returns need no cgo
// call. The product is taken in float64 so huge sizes cannot overflow the
// comparison.
func (impl Implementation) toOpenBLAS(m, n, k int) bool {
	lim := impl.GemmMin
	if lim <= 0 {
		lim = DefaultGemmMin
	}
	return m > 0 && n > 0 && k > 0 && float64(m)*float64(n)*float64(k) >= float64(lim)
}

// Dgemm computes C = alpha·op(A)·op(B) + beta·C (row-major, as blas.Float64
// documents), in OpenBLAS when m·n·k ≥ GemmMin and in Go otherwise. Both
// sides check their arguments and panic on the same errors.
func (impl Implementation) Dgemm(tA, tB blas.Transpose, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	if !impl.toOpenBLAS(m, n, k) {
		impl.Implementation.Dgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	netlib.Implementation{}.Dgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// Sgemm is Dgemm in float32, routed the same way.
func (impl Implementation) Sgemm(tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if !impl.toOpenBLAS(m, n, k) {
		impl.Implementation.Sgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	netlib.Implementation{}.Sgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// Use installs impl as blas64's and blas32's implementation.
func Use(impl Implementation) {
	blas64.Use(impl)
	blas32.Use(impl)
}

// SetThreads sets the number of OpenBLAS threads (n < 1 means 1). It takes
// effect for the next call and applies to the whole process.
func SetThreads(n int) { C.openblas_set_num_threads(C.int(max(n, 1))) }

// Threads returns the number of OpenBLAS threads.
func Threads() int { return int(C.openblas_get_num_threads()) }

// CoreName returns the name of the kernels OpenBLAS chose (or was told to
// use through OPENBLAS_CORETYPE), e.g. "Cooperlake" or "Haswell".
func CoreName() string { return C.GoString(C.openblas_get_corename()) }

// Config returns OpenBLAS's build description: version, threading, and
// the architectures it carries kernels for.
func Config() string { return C.GoString(C.openblas_get_config()) }

// threadEnv lists the variables OpenBLAS reads its thread count from.
var threadEnv = []string{"OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS"}

// defaultThreads is the thread count the package sets when the environment
// does not choose one.
func defaultThreads() int {
	return max(1, min(runtime.GOMAXPROCS(0), int(C.openblas_get_num_procs())))
}

func init() {
	explicit := false
	for _, v := range threadEnv {
		if os.Getenv(v) != "" {
			explicit = true
		}
	}
	if !explicit {
		SetThreads(defaultThreads())
	}
	Use(Implementation{})
}
