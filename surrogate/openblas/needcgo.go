//go:build openblas && !cgo

package openblas

// The openblas build tag asks for a cgo backend; without cgo the build
// would silently fall back to pure Go. Fail instead, with a name that says
// why.
var _ = the_openblas_build_tag_needs_CGO_ENABLED_1_and_a_C_compiler
