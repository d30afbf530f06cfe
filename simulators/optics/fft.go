package optics

import (
	"fmt"
	"math"
	"math/bits"
)

// FFT is an iterative radix-2 complex FFT of one power-of-two length, with
// its bit-reversal permutation and twiddles computed once. It is the hot
// path of every query: gonum's dsp/fourier is correct but about 4× slower
// on 128² (measured on the twin's transforms), and the default build stays
// pure Go (no FFTW, no cgo).
//
// An FFT is immutable after NewFFT and works in place without scratch, so
// one value is safe for concurrent use on distinct slices.
type FFT struct {
	n   int
	rev []int32 // rev[i]: i with its log2(n) bits reversed
	// Twiddles stage by stage, contiguous: the stage of half-length h uses
	// fwd[h−1+k] = exp(−2πik/2h), k < h, so the inner loop reads them in
	// order instead of striding through one table.
	fwd []complex128
	inv []complex128 // conjugates of fwd
}

// NewFFT returns the transform of length n, which must be a power of two.
func NewFFT(n int) (*FFT, error) {
	if n < 1 || n&(n-1) != 0 {
		return nil, fmt.Errorf("owms: FFT length %d is not a power of two", n)
	}
	f := &FFT{n: n, rev: make([]int32, n), fwd: make([]complex128, max(n-1, 0)), inv: make([]complex128, max(n-1, 0))}
	shift := 64 - bits.Len(uint(n)) + 1
	for i := range n {
		if n > 1 {
			f.rev[i] = int32(bits.Reverse64(uint64(i)) >> shift)
		}
	}
	for h := 1; h < n; h <<= 1 {
		for k := range h {
			// Each twiddle straight from Sincos: no accumulated recurrence error.
			s, c := math.Sincos(-math.Pi * float64(k) / float64(h))
			f.fwd[h-1+k] = complex(c, s)
			f.inv[h-1+k] = complex(c, -s)
		}
	}
	return f, nil
}

// Len returns the transform length.
func (f *FFT) Len() int { return f.n }

// Forward replaces x by X_k = Σ_j x_j e^{−2πijk/n} (unnormalized).
func (f *FFT) Forward(x []complex128) { f.mustLen(x); f.transform(x, f.fwd) }

// Inverse replaces X by x_j = (1/n) Σ_k X_k e^{2πijk/n}, so that Inverse
// undoes Forward.
func (f *FFT) Inverse(x []complex128) {
	f.mustLen(x)
	f.transform(x, f.inv)
	s := 1 / float64(f.n)
	for i := range x {
		x[i] = complex(real(x[i])*s, imag(x[i])*s)
	}
}

func (f *FFT) mustLen(x []complex128) {
	if len(x) != f.n {
		panic(fmt.Sprintf("owms: FFT of length %d given %d values", f.n, len(x)))
	}
}

// transform is the decimation-in-time butterfly network on bit-reversed
// input, with twiddle table tw (fwd or inv). The first stage needs no
// multiplications; the others are fused in pairs (radix 2²), which halves
// the passes over x.
func (f *FFT) transform(x []complex128, tw []complex128) {
	n := f.n
	x = x[:n]
	for i, r := range f.rev {
		if j := int(r); i < j {
			x[i], x[j] = x[j], x[i]
		}
	}
	for i := 0; i+1 < n; i += 2 {
		a, b := x[i], x[i+1]
		x[i], x[i+1] = a+b, a-b
	}
	half := 2
	for ; 2*half < n; half <<= 2 {
		w1 := tw[half-1 : 2*half-1]
		w2 := tw[2*half-1 : 4*half-1]
		for start := 0; start < n; start += 4 * half {
			x0 := x[start : start+half]
			x1 := x[start+half : start+2*half]
			x2 := x[start+2*half : start+3*half]
			x3 := x[start+3*half : start+4*half]
			x1, x2, x3 = x1[:len(x0)], x2[:len(x0)], x3[:len(x0)]
			w1 := w1[:len(x0)]
			w2a, w2b := w2[:len(x0)], w2[half:][:len(x0)]
			for k := range x0 {
				a1, a3 := w1[k]*x1[k], w1[k]*x3[k]
				b0, b1 := x0[k]+a1, x0[k]-a1
				b2, b3 := x2[k]+a3, x2[k]-a3
				t2, t3 := w2a[k]*b2, w2b[k]*b3
				x0[k], x2[k] = b0+t2, b0-t2
				x1[k], x3[k] = b1+t3, b1-t3
			}
		}
	}
	if half < n { // one radix-2 stage left
		w := tw[half-1 : 2*half-1]
		a, b := x[:half], x[half:2*half]
		b, w = b[:len(a)], w[:len(a)]
		for k := range a {
			t := w[k] * b[k]
			b[k] = a[k] - t
			a[k] += t
		}
	}
}

// columns transforms the first ncols columns of the n×stride row-major
// array d (n = f.n rows). The butterflies act on whole row segments, so the
// inner loop runs along contiguous memory and no column is ever gathered;
// stages are fused in pairs as in transform.
func (f *FFT) columns(d []complex128, stride, ncols int, tw []complex128) {
	n := f.n
	row := func(i int) []complex128 { return d[i*stride : i*stride+ncols] }
	for i, r := range f.rev {
		if j := int(r); i < j {
			ri, rj := row(i), row(j)
			rj = rj[:len(ri)]
			for c := range ri {
				ri[c], rj[c] = rj[c], ri[c]
			}
		}
	}
	for i := 0; i+1 < n; i += 2 {
		ra, rb := row(i), row(i+1)
		rb = rb[:len(ra)]
		for c := range ra {
			a, b := ra[c], rb[c]
			ra[c], rb[c] = a+b, a-b
		}
	}
	half := 2
	for ; 2*half < n; half <<= 2 {
		for start := 0; start < n; start += 4 * half {
			for k := range half {
				w1, w2a, w2b := tw[half-1+k], tw[2*half-1+k], tw[2*half-1+k+half]
				r0, r1, r2, r3 := row(start+k), row(start+k+half), row(start+k+2*half), row(start+k+3*half)
				r1, r2, r3 = r1[:len(r0)], r2[:len(r0)], r3[:len(r0)]
				for c := range r0 {
					a1, a3 := w1*r1[c], w1*r3[c]
					b0, b1 := r0[c]+a1, r0[c]-a1
					b2, b3 := r2[c]+a3, r2[c]-a3
					t2, t3 := w2a*b2, w2b*b3
					r0[c], r2[c] = b0+t2, b0-t2
					r1[c], r3[c] = b1+t3, b1-t3
				}
			}
		}
	}
	if half < n {
		for k := range half {
			w := tw[half-1+k]
			ra, rb := row(k), row(k+half)
			rb = rb[:len(ra)]
			for c := range ra {
				t := w * rb[c]
				rb[c] = ra[c] - t
				ra[c] += t
			}
		}
	}
}

// FFT2 is the 2-D transform of an n×n row-major array: rows, then columns.
// Like FFT it is immutable and safe for concurrent use.
type FFT2 struct{ f *FFT }

// NewFFT2 returns the n×n transform; n must be a power of two.
func NewFFT2(n int) (*FFT2, error) {
	f, err := NewFFT(n)
	if err != nil {
		return nil, err
	}
	return &FFT2{f}, nil
}

// Len returns the side n.
func (p *FFT2) Len() int { return p.f.n }

// Forward transforms the n×n array d in place (unnormalized).
func (p *FFT2) Forward(d []complex128) { p.forward(d, p.f.n) }

// Inverse undoes Forward, 1/n² included.
func (p *FFT2) Inverse(d []complex128) {
	n := p.f.n
	p.mustLen(d)
	for r := range n {
		p.f.transform(d[r*n:(r+1)*n], p.f.inv)
	}
	p.f.columns(d, n, n, p.f.inv)
	s := 1 / float64(n*n)
	for i := range d {
		d[i] = complex(real(d[i])*s, imag(d[i])*s)
	}
}

// forward transforms d, whose rows from nz on are known to be zero: their
// row transforms are zero too and are skipped.
func (p *FFT2) forward(d []complex128, nz int) {
	n := p.f.n
	p.mustLen(d)
	for r := range nz {
		p.f.transform(d[r*n:(r+1)*n], p.f.fwd)
	}
	p.f.columns(d, n, n, p.f.fwd)
}

// inverseBlock computes the unnormalized inverse transform of d but only
// its top-left m×m block, which is all a propagation keeps: all columns
// first (every row's transform needs all of its inputs), then only the m
// wanted rows. The other rows of d are left half-transformed.
func (p *FFT2) inverseBlock(d []complex128, m int) {
	n := p.f.n
	p.mustLen(d)
	p.f.columns(d, n, n, p.f.inv)
	for r := range m {
		p.f.transform(d[r*n:(r+1)*n], p.f.inv)
	}
}

func (p *FFT2) mustLen(d []complex128) {
	if len(d) != p.f.n*p.f.n {
		panic(fmt.Sprintf("owms: 2-D FFT of side %d given %d values", p.f.n, len(d)))
	}
}
