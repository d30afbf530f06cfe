//go:build openblas

package main

// Built with -tags openblas, the command trains surrogates with OpenBLAS
// for large matrix products; the import installs it with blas64.Use.
import _ "github.com/insitu-lab/insitu/surrogate/openblas"
