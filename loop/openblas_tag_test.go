//go:build openblas

package loop

// Under the openblas build tag the package's tests run on the OpenBLAS
// backend, which the import installs with blas64.Use.
import _ "github.com/insitu-lab/insitu/surrogate/openblas"
