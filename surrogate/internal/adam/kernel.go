package adam

import "unsafe"

// kernel is a vector update of n elements, n a multiple of lanes; the Go
// loop has no fn.
type kernel[T Float] struct {
	name  string
	lanes int
	fn    func(n int, m, v, p, grad *T, c *[7]T)
}

// run updates the longest prefix k handles and returns its length.
func run[T Float](k kernel[T], m, v, p, g []T, c *Coef[T]) int {
	if k.fn == nil {
		return 0
	}
	n := len(m) / k.lanes * k.lanes
	if n > 0 {
		k.fn(n, &m[0], &v[0], &p[0], &g[0], (*[7]T)(unsafe.Pointer(c)))
	}
	return n
}
