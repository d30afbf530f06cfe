//go:build !amd64 || purego

package adam

type kernel[T Float] struct{ name string }

var (
	kernels64 = []kernel[float64]{{"go"}}
	kernels32 = []kernel[float32]{{"go"}}
)

func updateAsm[T Float](m, v, p, g []T, c *Coef[T]) int { return 0 }
