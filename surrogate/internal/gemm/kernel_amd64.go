//go:build !purego

package gemm

import "golang.org/x/sys/cpu"

//go:generate go run gen_amd64.go -out kernel_amd64.s

// The assembly micro-kernels (kernel_amd64.s); see kernel for what they compute.
//
//go:noescape
func kernF64AVX512(k int, a, b, c *float64, ldc int, add bool)

//go:noescape
func kernF64AVX2(k int, a, b, c *float64, ldc int, add bool)

//go:noescape
func kernF32AVX512(k int, a, b, c *float32, ldc int, add bool)

//go:noescape
func kernF32AVX2(k int, a, b, c *float32, ldc int, add bool)

// asmKernels64 lists the float64 assembly kernels this CPU runs, fastest
// first. AVX-512 keeps 12×16 of C in 24 of its 32 registers, AVX2 6×8 in
// 12 of 16; the block sizes keep a kc×nr panel of B in the L1 and an
// mc×kc block of A in the L2.
func asmKernels64() []kernel[float64] {
	var ks []kernel[float64]
	if cpu.X86.HasAVX512F {
		ks = append(ks, kernel[float64]{name: "avx512", mr: 12, nr: 16, kc: 256, mc: 144, fn: kernF64AVX512})
	}
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		ks = append(ks, kernel[float64]{name: "avx2", mr: 6, nr: 8, kc: 256, mc: 96, fn: kernF64AVX2})
	}
	return ks
}

func asmKernels32() []kernel[float32] {
	var ks []kernel[float32]
	if cpu.X86.HasAVX512F {
		ks = append(ks, kernel[float32]{name: "avx512", mr: 12, nr: 32, kc: 256, mc: 144, fn: kernF32AVX512})
	}
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		ks = append(ks, kernel[float32]{name: "avx2", mr: 6, nr: 16, kc: 256, mc: 96, fn: kernF32AVX2})
	}
	return ks
}
