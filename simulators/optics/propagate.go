package optics

import (
	"fmt"
	"math"
	"math/cmplx"
)

// propagator maps an N×N field on the SLM plane to the N×N field at
// distance z on the same grid: a convolution done as pointwise products of
// m×m transforms. spec holds the kernel's transform, divided by m² so the
// unnormalized inverse transform needs no extra pass.
type propagator struct {
	n, m int
	fft  *FFT2
	spec []complex128
}

// rsKernel is the Rayleigh–Sommerfeld impulse response
// h = (1/2π)·(z/r²)·(1/r − ik)·e^{ikr} at lateral displacement (dx, dy).
func rsKernel(dx, dy, z, k float64) complex128 {
	r2 := dx*dx + dy*dy + z*z
	r := math.Sqrt(r2)
	s, c := math.Sincos(k * r)
	return complex(z/(2*math.Pi*r2), 0) * complex(1/r, -k) * complex(c, s)
}

func newPropagator(c Config, m int) (*propagator, error) {
	f, err := NewFFT2(m)
	if err != nil {
		return nil, err
	}
	n := c.N
	p := &propagator{n: n, m: m, fft: f, spec: make([]complex128, m*m)}
	k := 2 * math.Pi / c.Wavelength
	z := c.Distance
	scale := 1 / float64(m*m)
	switch c.Method {
	case MethodRS:
		// h·dA on every displacement (i, j) ∈ [−(n−1), n−1]², stored at
		// (i mod m, j mod m). With m ≥ 2n−1 the circular convolution
		// restricted to the top-left n×n block is the linear one.
		dA := c.Pitch * c.Pitch
		for i := -(n - 1); i <= n-1; i++ {
			for j := -(n - 1); j <= n-1; j++ {
				h := rsKernel(float64(j)*c.Pitch, float64(i)*c.Pitch, z, k)
				p.spec[mod(i, m)*m+mod(j, m)] = h * complex(dA*scale, 0)
			}
		}
		f.Forward(p.spec)
	case MethodAngular:
		// Transfer function exp(i·z·√(k² − kx² − ky²)) on the FFT's
		// frequency grid; evanescent waves decay.
		df := 2 * math.Pi / (float64(m) * c.Pitch)
		for u := range m {
			ky := float64(signedIndex(u, m)) * df
			for v := range m {
				kx := float64(signedIndex(v, m)) * df
				kz2 := k*k - kx*kx - ky*ky
				var h complex128
				if kz2 >= 0 {
					s, c := math.Sincos(z * math.Sqrt(kz2))
					h = complex(c, s)
				} else {
					h = complex(math.Exp(-z*math.Sqrt(-kz2)), 0)
				}
				p.spec[u*m+v] = h * complex(scale, 0)
			}
		}
	}
	for _, v := range p.spec {
		if math.IsNaN(real(v)) || math.IsNaN(imag(v)) || math.IsInf(real(v), 0) || math.IsInf(imag(v), 0) {
			return nil, fmt.Errorf("owms: propagation kernel is not finite for distance %v m, wavelength %v m, pitch %v m", z, c.Wavelength, c.Pitch)
		}
	}
	return p, nil
}

func mod(i, m int) int { return ((i % m) + m) % m }

func signedIndex(u, m int) int {
	if u < (m+1)/2 {
		return u
	}
	return u - m
}

// run propagates in (N×N) into out (N×N) using buf (m×m) as scratch. With
// adjoint it applies the adjoint operator instead: the same steps with the
// conjugate spectrum, i.e. correlation with the kernel.
func (p *propagator) run(buf, in, out []complex128, adjoint bool) {
	n, m := p.n, p.m
	clear(buf)
	for r := range n {
		copy(buf[r*m:r*m+n], in[r*n:(r+1)*n])
	}
	p.fft.forward(buf, n)
	if adjoint {
		for i, s := range p.spec {
			buf[i] *= cmplx.Conj(s)
		}
	} else {
		for i, s := range p.spec {
			buf[i] *= s
		}
	}
	p.fft.inverseBlock(buf, n)
	for r := range n {
		copy(out[r*n:(r+1)*n], buf[r*m:r*m+n])
	}
}
