//go:build !purego

package adam

import "golang.org/x/sys/cpu"

//go:generate go run gen_amd64.go -out adam_amd64.s

//go:noescape
func updateF64AVX512(n int, m, v, p, grad *float64, c *[7]float64)

//go:noescape
func updateF64AVX2(n int, m, v, p, grad *float64, c *[7]float64)

//go:noescape
func updateF32AVX512(n int, m, v, p, grad *float32, c *[7]float32)

//go:noescape
func updateF32AVX2(n int, m, v, p, grad *float32, c *[7]float32)

// The kernels this CPU runs, fastest first, the Go loop last.
var (
	kernels64 = available(
		kernel[float64]{"avx512", 8, updateF64AVX512},
		kernel[float64]{"avx2", 4, updateF64AVX2})
	kernels32 = available(
		kernel[float32]{"avx512", 16, updateF32AVX512},
		kernel[float32]{"avx2", 8, updateF32AVX2})
)

func available[T Float](avx512, avx2 kernel[T]) []kernel[T] {
	var ks []kernel[T]
	if cpu.X86.HasAVX512F {
		ks = append(ks, avx512)
	}
	if cpu.X86.HasAVX2 {
		ks = append(ks, avx2)
	}
	return append(ks, kernel[T]{name: "go"})
}

// updateAsm updates the longest prefix the best kernel handles and returns
// its length.
func updateAsm[T Float](m, v, p, g []T, c *Coef[T]) int {
	var k kernel[T]
	if _, ok := any(T(0)).(float32); ok {
		k = any(kernels32[0]).(kernel[T])
	} else {
		k = any(kernels64[0]).(kernel[T])
	}
	return run(k, m, v, p, g, c)
}
