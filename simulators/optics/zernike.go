package optics

import (
	"fmt"
	"math"
)

// Zernike is one term of an aberration: the Zernike polynomial of Noll
// index Noll (1 piston, 2–3 tilt, 4 defocus, 5–6 astigmatism, 7–8 coma,
// 11 spherical, …), normalized as Noll does (unit RMS over the unit
// disc), times Coefficient radians of phase. The mapstructure tags are the
// keys of a config's aberration list.
type Zernike struct {
	Noll        int     `mapstructure:"noll" doc:"the term's Noll index (1 piston, 2–3 tilt, 4 defocus, 5–6 astigmatism, 7–8 coma, 11 spherical, …)"`
	Coefficient float64 `mapstructure:"coefficient" unit:"rad" doc:"the term's RMS phase over the aberration's disc"`
}

// MaxNoll bounds the Noll index a config may name.
const MaxNoll = 231 // radial order 20

// NollIndex returns the radial order n and azimuthal frequency m of Noll
// index j ≥ 1: m > 0 is a cosine term, m < 0 a sine term.
func NollIndex(j int) (n, m int) {
	j1 := j - 1
	for j1 > n {
		n++
		j1 -= n
	}
	m = (n%2 + 2*((j1+(n+1)%2)/2))
	if j%2 == 1 {
		m = -m
	}
	return n, m
}

// ZernikeAt is the Noll-normalized Zernike polynomial (n, m) at polar
// coordinates (rho, theta); rho may exceed 1 (the polynomial goes on
// smoothly outside the unit disc).
func ZernikeAt(n, m int, rho, theta float64) float64 {
	am := m
	if am < 0 {
		am = -am
	}
	var r float64
	for s := 0; s <= (n-am)/2; s++ {
		c := fact(n-s) / (fact(s) * fact((n+am)/2-s) * fact((n-am)/2-s))
		if s%2 == 1 {
			c = -c
		}
		r += c * math.Pow(rho, float64(n-2*s))
	}
	switch {
	case m == 0:
		return math.Sqrt(float64(n+1)) * r
	case m > 0:
		return math.Sqrt(2*float64(n+1)) * r * math.Cos(float64(am)*theta)
	}
	return math.Sqrt(2*float64(n+1)) * r * math.Sin(float64(am)*theta)
}

func fact(k int) float64 {
	f := 1.0
	for i := 2; i <= k; i++ {
		f *= float64(i)
	}
	return f
}

// CheckZernike reports the first problem with terms, naming its index in
// the list.
func CheckZernike(terms []Zernike) error {
	for i, z := range terms {
		if z.Noll < 1 || z.Noll > MaxNoll {
			return fmt.Errorf("[%d].noll: %d: want a Noll index in 1..%d", i, z.Noll, MaxNoll)
		}
		if !finite(z.Coefficient) || math.Abs(z.Coefficient) > maxLUTPhase {
			return fmt.Errorf("[%d].coefficient: %v: want a phase within ±%v rad", i, z.Coefficient, maxLUTPhase)
		}
	}
	return nil
}

// Aberration is the phase (radians) of terms on a side×side grid of unit
// cells, row-major, the optical axis at the grid's centre and the unit
// disc of radius radius cells: cell (r, c) is at ((c − (side−1)/2),
// (r − (side−1)/2)) / radius, the x axis along columns. Nil when terms is
// empty.
func Aberration(terms []Zernike, side int, radius float64) []float64 {
	if len(terms) == 0 {
		return nil
	}
	w := make([]float64, side*side)
	h := float64(side-1) / 2
	for r := range side {
		y := (float64(r) - h) / radius
		for c := range side {
			x := (float64(c) - h) / radius
			rho, theta := math.Hypot(x, y), math.Atan2(y, x)
			for _, z := range terms {
				n, m := NollIndex(z.Noll)
				w[r*side+c] += z.Coefficient * ZernikeAt(n, m, rho, theta)
			}
		}
	}
	return w
}
