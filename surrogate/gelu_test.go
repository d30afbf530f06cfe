package surrogate

import (
	"math"
	"testing"
)

// geluRangeExact is the erf+exp GELU the table replaced, kept as the
// accuracy reference and the benchmark baseline.
func geluRangeExact(h, a, dact []float64, lo, hi int) {
	if dact == nil {
		for i, v := range h[lo:hi] {
			a[lo+i] = v * 0.5 * (1 + math.Erf(v*math.Sqrt2/2))
		}
		return
	}
	const invSqrt2Pi = 0.3989422804014327 // 1/√(2π)
	for i, v := range h[lo:hi] {
		cdf := 0.5 * (1 + math.Erf(v*math.Sqrt2/2))
		dact[lo+i] = cdf + v*invSqrt2Pi*math.Exp(-0.5*v*v)
		a[lo+i] = v * cdf
	}
}

// refPhi is Φ and φ from the standard library; erfc keeps the lower tail
// accurate, so the reference does not cancel where Φ is small.
func refPhi(x float64) (cdf, pdf float64) {
	return 0.5 * math.Erfc(-x*math.Sqrt2/2), math.Exp(-0.5*x*x) / math.Sqrt(2*math.Pi)
}

// tablePhi is Φ and φ as geluRange uses them, tails included.
func tablePhi(x float64) (cdf, pdf float64) {
	if c, p, ok := geluPhi(geluTable(), x); ok {
		return c, p
	}
	if x > 0 {
		return 1, 0
	}
	return 0, 0
}

// geluTestPoints is a dense grid over [−12, 12] (wider than the table, so
// both tails are crossed), the table's edges and random normal points at
// several scales.
func geluTestPoints() []float64 {
	const n = 1_000_000
	xs := make([]float64, 0, n+1+20+3*10_000)
	for i := range n + 1 {
		xs = append(xs, -12+24*float64(i)/n)
	}
	for _, e := range []float64{-geluL, geluL} {
		xs = append(xs, e, math.Nextafter(e, -20), math.Nextafter(e, 20), e-1e-9, e+1e-9)
	}
	for _, k := range []float64{1, float64(geluN - 1), 100, 777} {
		x := k/geluInvH - geluL // a node: interval ends meet here
		xs = append(xs, math.Nextafter(x, -20), x, math.Nextafter(x, 20))
	}
	rng := newRand(11)
	for _, s := range []float64{0.5, 2, 6} {
		xs = append(xs, randVec(rng, 10_000, s)...)
	}
	return xs
}

func TestGELUTableAccuracy(t *testing.T) {
	xs := geluTestPoints()
	var maxCdf, maxPdf, maxA, maxD float64
	var argCdf, argPdf float64
	for _, x := range xs {
		c, p := tablePhi(x)
		rc, rp := refPhi(x)
		if e := math.Abs(c - rc); !(e <= maxCdf) {
			maxCdf, argCdf = e, x
		}
		if e := math.Abs(p - rp); !(e <= maxPdf) {
			maxPdf, argPdf = e, x
		}
	}
	t.Logf("max |Φ error| %.3g at x = %v, max |φ error| %.3g at x = %v (bound %g)", maxCdf, argCdf, maxPdf, argPdf, geluMaxErr)
	if !(maxCdf <= geluMaxErr) || !(maxPdf <= geluMaxErr) {
		t.Errorf("table error above %g: Φ %.3g at %v, φ %.3g at %v", geluMaxErr, maxCdf, argCdf, maxPdf, argPdf)
	}

	// GELU through geluForward (serial and parallel paths) against the
	// exact form: x·Φ is off by at most |x|·ε, Φ + x·φ by (1+|x|)·ε.
	const tiny = 1e-15
	rows := 1000
	xs = xs[:len(xs)/rows*rows]
	a, d := make([]float64, len(xs)), make([]float64, len(xs))
	ra, rd := make([]float64, len(xs)), make([]float64, len(xs))
	geluForward(xs, a, d, rows, len(xs)/rows)
	geluRangeExact(xs, ra, rd, 0, len(xs))
	av := make([]float64, len(xs))
	geluForward(xs, av, nil, rows, len(xs)/rows)
	for i, x := range xs {
		if av[i] != a[i] {
			t.Fatalf("gelu(%v): %v without the derivative, %v with it", x, av[i], a[i])
		}
		// geluRange repeats geluPhi's body; the two must agree exactly.
		if c, p, ok := geluPhi(geluTable(), x); ok && (a[i] != x*c || d[i] != c+x*p) {
			t.Fatalf("gelu(%v) = %v, %v; geluPhi gives %v, %v", x, a[i], d[i], x*c, c+x*p)
		}
		ea, ed := math.Abs(a[i]-ra[i]), math.Abs(d[i]-rd[i])
		maxA, maxD = max(maxA, ea), max(maxD, ed)
		if !(ea <= geluMaxErr*math.Abs(x)+tiny) {
			t.Fatalf("gelu(%v) = %v, exact %v", x, a[i], ra[i])
		}
		if !(ed <= geluMaxErr*(1+math.Abs(x))+tiny) {
			t.Fatalf("gelu'(%v) = %v, exact %v", x, d[i], rd[i])
		}
	}
	t.Logf("max |GELU error| %.3g, max |GELU' error| %.3g", maxA, maxD)
}

func TestGELUSpecialValues(t *testing.T) {
	inf := math.Inf(1)
	for _, tc := range []struct{ x, a, d float64 }{
		{inf, inf, 1},
		{-inf, 0, 0},
		{math.MaxFloat64, math.MaxFloat64, 1},
		{-math.MaxFloat64, 0, 0},
		{1e300, 1e300, 1},
		{-1e300, 0, 0},
		{40, 40, 1},
		{-40, 0, 0},
		{0, 0, 0.5},
		{math.Copysign(0, -1), 0, 0.5},
	} {
		a, d := make([]float64, 1), make([]float64, 1)
		geluForward([]float64{tc.x}, a, d, 1, 1)
		if a[0] != tc.a || d[0] != tc.d {
			t.Errorf("gelu(%v) = %v, derivative %v; want %v, %v", tc.x, a[0], d[0], tc.a, tc.d)
		}
	}
	for _, x := range []float64{math.NaN(), math.Float64frombits(0x7ff8000000000001), math.Float64frombits(0xfff8000000000000)} {
		a, d := make([]float64, 1), make([]float64, 1)
		geluForward([]float64{x}, a, d, 1, 1)
		av := make([]float64, 1)
		geluForward([]float64{x}, av, nil, 1, 1)
		if !math.IsNaN(a[0]) || !math.IsNaN(d[0]) || !math.IsNaN(av[0]) {
			t.Errorf("gelu(NaN) = %v, derivative %v, value only %v; want NaN", a[0], d[0], av[0])
		}
	}
	// Subnormal and tiny inputs: Φ = ½ to double precision.
	for _, x := range []float64{5e-324, -5e-324, 1e-300, -1e-20} {
		a := make([]float64, 1)
		geluForward([]float64{x}, a, nil, 1, 1)
		if a[0] != 0.5*x {
			t.Errorf("gelu(%v) = %v, want %v", x, a[0], 0.5*x)
		}
	}
}

// BenchmarkGELU compares the table with the erf+exp form on 256×256
// values on one goroutine, with and without the derivative.
func BenchmarkGELU(b *testing.B) {
	const n = 256 * 256
	h := randVec(newRand(12), n, 1.5)
	a, d := make([]float64, n), make([]float64, n)
	geluTable() // built once, outside the timing
	for _, impl := range []struct {
		name string
		fn   func(h, a, dact []float64, lo, hi int)
	}{{"exact", geluRangeExact}, {"table", geluRange[float64]}} {
		for _, deriv := range []bool{false, true} {
			name := impl.name + "/value"
			dact := []float64(nil)
			if deriv {
				name, dact = impl.name+"/deriv", d
			}
			b.Run(name, func(b *testing.B) {
				b.SetBytes(8 * n)
				for b.Loop() {
					impl.fn(h, a, dact, 0, n)
				}
			})
		}
	}
}
