//go:build !(openblas && cgo)

package openblas

// Enabled reports whether this build has the OpenBLAS backend: false
// without the openblas build tag or without cgo.
const Enabled = false
