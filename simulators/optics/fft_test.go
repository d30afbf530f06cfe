package optics

import (
	"math"
	"math/cmplx"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/dsp/fourier"
)

// dft is the O(n²) definition, the reference for the FFT.
func dft(x []complex128, sign float64) []complex128 {
	n := len(x)
	out := make([]complex128, n)
	for k := range n {
		var s complex128
		for j, v := range x {
			// Reduce jk mod n first so the angle stays accurate.
			s += v * cmplx.Rect(1, sign*2*math.Pi*float64((j*k)%n)/float64(n))
		}
		out[k] = s
	}
	return out
}

func dft2(d []complex128, n int) []complex128 {
	out := append([]complex128(nil), d...)
	for r := range n {
		copy(out[r*n:(r+1)*n], dft(out[r*n:(r+1)*n], -1))
	}
	col := make([]complex128, n)
	for c := range n {
		for r := range n {
			col[r] = out[r*n+c]
		}
		col = dft(col, -1)
		for r := range n {
			out[r*n+c] = col[r]
		}
	}
	return out
}

func randomComplex(rng *rand.Rand, n int) []complex128 {
	x := make([]complex128, n)
	for i := range x {
		x[i] = complex(rng.NormFloat64(), rng.NormFloat64())
	}
	return x
}

// relErrC is ‖a − b‖/‖b‖ (or ‖a‖ when b = 0).
func relErrC(a, b []complex128) float64 {
	var num, den float64
	for i := range a {
		num += sq(a[i] - b[i])
		den += sq(b[i])
	}
	if den == 0 {
		return math.Sqrt(num)
	}
	return math.Sqrt(num / den)
}

func TestFFTMatchesDFTAndGonum(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{1, 2, 4, 8, 16, 64, 128, 256} {
		f, err := NewFFT(n)
		if err != nil {
			t.Fatal(err)
		}
		x := randomComplex(rng, n)
		got := append([]complex128(nil), x...)
		f.Forward(got)
		if e := relErrC(got, dft(x, -1)); e > 1e-13 {
			t.Errorf("n=%d: forward vs DFT: relative error %.2g", n, e)
		}
		g := fourier.NewCmplxFFT(n).Coefficients(nil, x)
		if e := relErrC(got, g); e > 1e-13 {
			t.Errorf("n=%d: forward vs gonum: relative error %.2g", n, e)
		}
		inv := append([]complex128(nil), x...)
		f.Inverse(inv)
		want := dft(x, 1)
		for i := range want {
			want[i] /= complex(float64(n), 0)
		}
		if e := relErrC(inv, want); e > 1e-13 {
			t.Errorf("n=%d: inverse vs DFT: relative error %.2g", n, e)
		}
		f.Forward(inv)
		if e := relErrC(inv, x); e > 1e-13 {
			t.Errorf("n=%d: round trip: relative error %.2g", n, e)
		}
	}
}

func TestNewFFTRejectsNonPowersOfTwo(t *testing.T) {
	for _, n := range []int{0, -4, 3, 6, 60, 120} {
		if _, err := NewFFT(n); err == nil {
			t.Errorf("NewFFT(%d) accepted", n)
		}
	}
}

func TestFFT2MatchesDFTAndPrunedVariants(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{1, 2, 4, 8, 16} {
		p, err := NewFFT2(n)
		if err != nil {
			t.Fatal(err)
		}
		x := randomComplex(rng, n*n)
		got := append([]complex128(nil), x...)
		p.Forward(got)
		want := dft2(x, n)
		if e := relErrC(got, want); e > 1e-13 {
			t.Errorf("n=%d: 2-D forward vs DFT: %.2g", n, e)
		}
		p.Inverse(got)
		if e := relErrC(got, x); e > 1e-13 {
			t.Errorf("n=%d: 2-D round trip: %.2g", n, e)
		}

		// forward with trailing zero rows skipped, and the inverse that
		// computes only the top-left m×m block.
		m := (n + 1) / 2
		z := append([]complex128(nil), x...)
		clear(z[m*n:])
		full := append([]complex128(nil), z...)
		p.Forward(full)
		pr := append([]complex128(nil), z...)
		p.forward(pr, m)
		if e := relErrC(pr, full); e > 1e-15 {
			t.Errorf("n=%d: pruned forward differs: %.2g", n, e)
		}
		blk := append([]complex128(nil), full...)
		p.inverseBlock(blk, m)
		ref := append([]complex128(nil), full...)
		p.Inverse(ref)
		for r := range m {
			for c := range m {
				a, b := blk[r*n+c]/complex(float64(n*n), 0), ref[r*n+c]
				if cmplx.Abs(a-b) > 1e-13*(1+cmplx.Abs(b)) {
					t.Fatalf("n=%d: inverseBlock (%d,%d) = %v, want %v", n, r, c, a, b)
				}
			}
		}
	}
}

// FuzzFFT compares the FFT with the direct DFT on random power-of-two
// inputs drawn from the fuzzer's seed.
func FuzzFFT(f *testing.F) {
	f.Add(uint8(3), uint64(1), 1.0)
	f.Add(uint8(0), uint64(2), 1e-300)
	f.Add(uint8(7), uint64(3), 1e200)
	f.Fuzz(func(t *testing.T, logn uint8, seed uint64, scale float64) {
		if logn > 8 || math.IsNaN(scale) || math.IsInf(scale, 0) || scale == 0 || math.Abs(scale) > 1e250 || math.Abs(scale) < 1e-250 {
			t.Skip()
		}
		n := 1 << logn
		fft, err := NewFFT(n)
		if err != nil {
			t.Fatal(err)
		}
		x := randomComplex(rand.New(rand.NewPCG(seed, 7)), n)
		for i := range x {
			x[i] *= complex(scale, 0)
		}
		got := append([]complex128(nil), x...)
		fft.Forward(got)
		if e := relErrC(got, dft(x, -1)); e > 1e-12 {
			t.Fatalf("n=%d scale=%g: relative error %.2g", n, scale, e)
		}
		fft.Inverse(got)
		if e := relErrC(got, x); e > 1e-12 {
			t.Fatalf("n=%d scale=%g: round trip relative error %.2g", n, scale, e)
		}
	})
}
