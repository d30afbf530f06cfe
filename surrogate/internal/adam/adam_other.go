//go:build !amd64 || purego

package adam

// Only the Go loop here.
var (
	kernels64 = []kernel[float64]{{name: "go"}}
	kernels32 = []kernel[float32]{{name: "go"}}
)

func updateAsm[T Float](m, v, p, g []T, c *Coef[T]) int { return 0 }
