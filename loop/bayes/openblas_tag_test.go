//go:build openblas

package bayes

// Under the openblas build tag the package's tests and benchmarks run on
// the OpenBLAS backend, as the openblas binary does; the import installs
// it with blas64.Use.
import _ "github.com/insitu-lab/insitu/surrogate/openblas"
