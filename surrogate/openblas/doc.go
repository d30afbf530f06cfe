// Package openblas is an optional BLAS backend for the surrogate: gonum's
// pure-Go implementation with large matrix products sent to OpenBLAS.
//
// The backend exists only in builds with the openblas build tag (and cgo).
// Such a build installs it when the package is initialized, by calling
// blas64.Use and blas32.Use, so importing the package for its side effect
// is all a command or test needs:
//
//	import _ "github.com/insitu-lab/insitu/surrogate/openblas"
//
// and building with
//
//	apt-get install libopenblas-dev   # Debian: OpenBLAS 0.3.21, pthread build
//	go build -tags openblas ./cmd/insitu
//
// The package links with -lopenblas itself; Debian's libopenblas-dev puts
// libopenblas.so on the default library path, so no CGO_LDFLAGS are needed
// there. Elsewhere, point the linker at the library, e.g.
// CGO_LDFLAGS="-L/opt/OpenBLAS/lib".
//
// Without the tag the package is empty apart from Enabled, which is false,
// and the surrogate stays on gonum's pure-Go BLAS: the default build needs
// neither cgo nor a system library.
//
// Routing. Implementation embeds gonum's implementation and overrides
// Dgemm and Sgemm (it is installed for blas64 and blas32): a product of
// m·n·k multiply-adds at or above GemmMin goes to OpenBLAS through gonum.org/v1/netlib/blas/netlib, a smaller one stays in
// Go, where it does not pay the cgo call and OpenBLAS's thread hand-off.
// Matrix-vector products (Dgemv, Dger) always stay in Go: they are
// memory-bound, the surrogate already splits the large ones across
// goroutines, and OpenBLAS was no faster on them (docs/performance.md has
// the sweep).
//
// Threads. OpenBLAS runs its own thread pool next to Go's scheduler. At
// initialization the package sets that pool to min(GOMAXPROCS, cores)
// threads unless OPENBLAS_NUM_THREADS, GOTO_NUM_THREADS or OMP_NUM_THREADS
// is set in the environment, in which case OpenBLAS's own reading of it
// stands. SetThreads changes it later.
//
// Kernels. OpenBLAS picks its kernels for the CPU when the library loads,
// before any Go code runs. An OPENBLAS_CORETYPE variable in the environment
// overrides that choice; on an AVX-512 machine, a preset
// OPENBLAS_CORETYPE=Haswell holds it to AVX2 kernels and costs 1.7–1.9× on
// GEMM. Unset it in the launching shell (env -u OPENBLAS_CORETYPE ...);
// it cannot be changed from inside the process. CoreName reports the
// kernels in use.
package openblas
