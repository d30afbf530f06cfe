package optics

import (
	"math"
	"testing"
)

func TestNollIndex(t *testing.T) {
	// Noll (1976), table 1.
	want := [][2]int{{0, 0}, {1, 1}, {1, -1}, {2, 0}, {2, -2}, {2, 2}, {3, -1}, {3, 1}, {3, -3}, {3, 3}, {4, 0}, {4, 2}, {4, -2}, {4, 4}, {4, -4}, {5, 1}}
	for i, w := range want {
		if n, m := NollIndex(i + 1); n != w[0] || m != w[1] {
			t.Errorf("Noll %d = (%d, %d), want %v", i+1, n, m, w)
		}
	}
}

// The closed forms of the low orders, and orthonormality over the unit
// disc by a polar quadrature (Gauss–Legendre in ρ², uniform in θ).
func TestZernikeNormalization(t *testing.T) {
	rho, th := 0.7, 0.4
	for _, c := range []struct {
		j    int
		want float64
	}{
		{4, math.Sqrt(3) * (2*rho*rho - 1)},
		{6, math.Sqrt(6) * rho * rho * math.Cos(2*th)},
		{8, math.Sqrt(8) * (3*rho*rho*rho - 2*rho) * math.Cos(th)},
		{11, math.Sqrt(5) * (6*math.Pow(rho, 4) - 6*rho*rho + 1)},
	} {
		n, m := NollIndex(c.j)
		if got := ZernikeAt(n, m, rho, th); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("Z%d = %v, want %v", c.j, got, c.want)
		}
	}
	const nr, nt = 200, 64
	// Midpoint rule in u = ρ² (dA = ½ du dθ): at 200 nodes its error
	// for polynomials of degree ≤ 8 in ρ is below 2e-4.
	inner := func(a, b int) float64 {
		na, ma := NollIndex(a)
		nb, mb := NollIndex(b)
		s := 0.0
		for i := range nr {
			u := (float64(i) + 0.5) / nr
			r := math.Sqrt(u)
			for k := range nt {
				th := 2 * math.Pi * float64(k) / nt
				s += ZernikeAt(na, ma, r, th) * ZernikeAt(nb, mb, r, th)
			}
		}
		return s / (nr * nt) // mean over the disc
	}
	for a := 1; a <= 15; a++ {
		for b := a; b <= 15; b++ {
			want := 0.0
			if a == b {
				want = 1
			}
			if got := inner(a, b); math.Abs(got-want) > 5e-4 {
				t.Errorf("<Z%d, Z%d> = %.4f, want %v", a, b, got, want)
			}
		}
	}
}
