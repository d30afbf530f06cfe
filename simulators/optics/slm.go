package optics

import "math"

// slm maps commanded phases φ ∈ [0, 2π] to the phases the modulator
// applies: gray level u = φ/2π, optionally rounded to 2^bits levels, the
// LUT, then the crosstalk blur. All of it is fixed at construction.
type slm struct {
	n      int
	levels float64   // 2^bits − 1; 0: no quantization
	lut    []float64 // phases at u = i/(len−1); nil: 2πu
	blur   *blur1d   // nil: no crosstalk
}

func newSLM(c Config) *slm {
	s := &slm{n: c.N}
	if c.QuantizeBits > 0 {
		s.levels = float64(int(1)<<c.QuantizeBits - 1)
	}
	if c.LUT != nil {
		s.lut = append([]float64(nil), c.LUT...)
	}
	if c.Crosstalk > 0 {
		s.blur = newBlur(c.N, c.Crosstalk)
	}
	return s
}

// phase maps one commanded phase to the applied phase (before crosstalk)
// and returns the derivative used by the VJP. Rounding has derivative zero
// almost everywhere, which would make every gradient vanish; the VJP
// passes straight through it (the derivative of the unrounded map at the
// rounded level) — a documented approximation, exact when bits = 0.
func (s *slm) phase(phi float64) (psi, dpsi float64) {
	u := phi / (2 * math.Pi)
	if s.levels > 0 {
		u = math.Round(u*s.levels) / s.levels
	}
	if s.lut == nil {
		return 2 * math.Pi * u, 1
	}
	// Piecewise linear through the LUT: monotone when the LUT is.
	last := len(s.lut) - 1
	t := u * float64(last)
	i := int(math.Floor(t))
	i = max(0, min(i, last-1))
	f := t - float64(i)
	slope := s.lut[i+1] - s.lut[i]
	return s.lut[i] + f*slope, slope * float64(last) / (2 * math.Pi)
}

// apply fills psi with the applied phases of phi and d with ∂ψ_i/∂φ_i
// before the blur.
func (s *slm) apply(phi, psi, d, tmp []float64) {
	for i, p := range phi {
		psi[i], d[i] = s.phase(p)
	}
	if s.blur != nil {
		s.blur.apply2d(psi, tmp, false)
	}
}

// adjoint turns ∂L/∂ψ (after the blur) into ∂L/∂φ in place.
func (s *slm) adjoint(g, d, tmp []float64) {
	if s.blur != nil {
		s.blur.apply2d(g, tmp, true)
	}
	for i := range g {
		g[i] *= d[i]
	}
}

// blur1d is a truncated Gaussian (radius ⌈3σ⌉) renormalized at the edges of
// the SLM, so a uniform phase stays uniform. It is applied along rows then
// columns; the 2-D blur is B⊗B and its adjoint Bᵀ⊗Bᵀ.
type blur1d struct {
	n      int
	start  []int       // first input index of output i
	weight [][]float64 // weights over start[i]…
}

func newBlur(n int, sigma float64) *blur1d {
	r := int(math.Ceil(3 * sigma))
	b := &blur1d{n: n, start: make([]int, n), weight: make([][]float64, n)}
	for i := range n {
		lo, hi := max(0, i-r), min(n-1, i+r)
		w := make([]float64, hi-lo+1)
		var sum float64
		for j := lo; j <= hi; j++ {
			d := float64(j-i) / sigma // not d²/σ²: σ² may underflow
			w[j-lo] = math.Exp(-d * d / 2)
			sum += w[j-lo]
		}
		for k := range w {
			w[k] /= sum
		}
		b.start[i], b.weight[i] = lo, w
	}
	return b
}

// line applies B (or Bᵀ) to the n values in at stride st, writing out.
func (b *blur1d) line(in []float64, off, st int, out []float64, transpose bool) {
	clear(out)
	for i := range b.n {
		lo := b.start[i]
		for k, w := range b.weight[i] {
			j := lo + k
			if transpose {
				out[j] += w * in[off+i*st]
			} else {
				out[i] += w * in[off+j*st]
			}
		}
	}
}

// apply2d blurs the n×n row-major array a in place; tmp has ≥ n values.
func (b *blur1d) apply2d(a, tmp []float64, transpose bool) {
	n := b.n
	tmp = tmp[:n]
	for r := range n {
		b.line(a, r*n, 1, tmp, transpose)
		copy(a[r*n:(r+1)*n], tmp)
	}
	for c := range n {
		b.line(a, c, n, tmp, transpose)
		for r := range n {
			a[r*n+c] = tmp[r]
		}
	}
}
