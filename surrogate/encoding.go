package surrogate

import (
	"math"
	"slices"

	"github.com/insitu-lab/insitu"
)

// encoding maps raw inputs to the network's features. A box coordinate
// becomes (x − lo)/w ∈ [0,1]. A periodic one (an SLM phase), with angle
// θ = 2π(x − lo)/w, becomes the pair (½ + ½cos θ, ½ + ½sin θ) ∈ [0,1]²:
// the network and the neighbour search then see a circle, on which the
// two sides of the bounds are one point and a step wrapped round the box
// is a small step.
type encoding struct {
	lo, invW []float64
	periodic []bool // nil: no periodic coordinate
	feat     int    // number of features
}

func newEncoding(s insitu.Space) encoding {
	e := encoding{lo: slices.Clone(s.Lower), invW: make([]float64, s.Dim())}
	for i := range e.lo {
		if w := s.Upper[i] - s.Lower[i]; w > 0 {
			e.invW[i] = 1 / w
		}
		e.feat++
		if s.IsPeriodic(i) {
			if e.periodic == nil {
				e.periodic = make([]bool, s.Dim())
			}
			e.periodic[i] = true
			e.feat++
		}
	}
	return e
}

// dim is the number of raw inputs.
func (e encoding) dim() int { return len(e.lo) }

// equal reports whether two encodings map inputs alike.
func (e encoding) equal(o encoding) bool {
	return slices.Equal(e.lo, o.lo) && slices.Equal(e.invW, o.invW) && slices.Equal(e.periodic, o.periodic)
}

// encode writes x's features into f (length feat).
func (e encoding) encode(f, x []float64) {
	k := 0
	for i, v := range x {
		u := (v - e.lo[i]) * e.invW[i]
		if e.periodic == nil || !e.periodic[i] {
			f[k] = u
			k++
			continue
		}
		s, c := math.Sincos(2 * math.Pi * u)
		f[k], f[k+1] = 0.5+0.5*c, 0.5+0.5*s
		k += 2
	}
}

// pull maps a cotangent gf of the features at x back to the raw inputs:
// g = (∂f/∂x)ᵀ·gf.
func (e encoding) pull(g, gf, x []float64) {
	k := 0
	for i := range g {
		if e.periodic == nil || !e.periodic[i] {
			g[i] = gf[k] * e.invW[i]
			k++
			continue
		}
		s, c := math.Sincos(2 * math.Pi * (x[i] - e.lo[i]) * e.invW[i])
		w := math.Pi * e.invW[i] // ∂(½ cos θ)/∂x = −½ sin θ · 2π/w
		g[i] = (-s*gf[k] + c*gf[k+1]) * w
		k += 2
	}
}
