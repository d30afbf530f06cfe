package gemm

import "unsafe"

// The Go micro-kernel: 4×4 tiles with the sixteen sums in local variables.
// It is the fallback where no assembly kernel runs, and the reference the
// assembly kernels are compared with besides the naive loop.
const goMR, goNR = 4, 4

func goKernel[T Float]() kernel[T] {
	return kernel[T]{name: "go", mr: goMR, nr: goNR, kc: 256, mc: 64, fn: kernelGo[T]}
}

func kernelGo[T Float](k int, a, b, c *T, ldc int, add bool) {
	ap := unsafe.Slice(a, k*goMR)
	bp := unsafe.Slice(b, k*goNR)
	var c00, c01, c02, c03, c10, c11, c12, c13, c20, c21, c22, c23, c30, c31, c32, c33 T
	for p := range k {
		av := ap[p*goMR : p*goMR+goMR : p*goMR+goMR]
		bv := bp[p*goNR : p*goNR+goNR : p*goNR+goNR]
		b0, b1, b2, b3 := bv[0], bv[1], bv[2], bv[3]
		a0 := av[0]
		c00 += a0 * b0
		c01 += a0 * b1
		c02 += a0 * b2
		c03 += a0 * b3
		a1 := av[1]
		c10 += a1 * b0
		c11 += a1 * b1
		c12 += a1 * b2
		c13 += a1 * b3
		a2 := av[2]
		c20 += a2 * b0
		c21 += a2 * b1
		c22 += a2 * b2
		c23 += a2 * b3
		a3 := av[3]
		c30 += a3 * b0
		c31 += a3 * b1
		c32 += a3 * b2
		c33 += a3 * b3
	}
	cs := unsafe.Slice(c, 3*ldc+goNR)
	if !add {
		for i := range goMR {
			clear(cs[i*ldc : i*ldc+goNR])
		}
	}
	r := cs[0:4:4]
	r[0] += c00
	r[1] += c01
	r[2] += c02
	r[3] += c03
	r = cs[ldc : ldc+4 : ldc+4]
	r[0] += c10
	r[1] += c11
	r[2] += c12
	r[3] += c13
	r = cs[2*ldc : 2*ldc+4 : 2*ldc+4]
	r[0] += c20
	r[1] += c21
	r[2] += c22
	r[3] += c23
	r = cs[3*ldc : 3*ldc+4 : 3*ldc+4]
	r[0] += c30
	r[1] += c31
	r[2] += c32
	r[3] += c33
}

var (
	kernels64 = append(asmKernels64(), goKernel[float64]())
	kernels32 = append(asmKernels32(), goKernel[float32]())
)

// best returns the fastest kernel this CPU runs for T.
func best[T Float]() kernel[T] {
	if _, ok := any(T(0)).(float32); ok {
		return any(kernels32[0]).(kernel[T])
	}
	return any(kernels64[0]).(kernel[T])
}

// Kernel names the micro-kernel products of T use on this CPU: "avx512",
// "avx2" or "go".
func Kernel[T Float]() string { return best[T]().name }
