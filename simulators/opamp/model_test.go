package opamp

import (
	"context"
	"math"
	"math/cmplx"
	"math/rand/v2"
	"testing"
)

// nominal is a hand-picked working design: 8/1 bias, 16/1 pair, 8/1 load,
// 16/0.5 gain stage, r = 2, Cc = 2 pF.
var nominal = []float64{8, 1, 16, 1, 8, 1, 16, 0.5, 2, 2}

func randomSizing(rng *rand.Rand) []float64 {
	sp := Space()
	x := make([]float64, sp.Dim())
	for i := range x {
		x[i] = sp.Lower[i] + rng.Float64()*(sp.Upper[i]-sp.Lower[i])
	}
	return x
}

func bisect(f func(float64) float64, lo, hi float64) float64 {
	flo := f(lo)
	for range 200 {
		mid := (lo + hi) / 2
		if fm := f(mid); (fm < 0) == (flo < 0) {
			lo, flo = mid, fm
		} else {
			hi = mid
		}
	}
	return (lo + hi) / 2
}

func near(t *testing.T, what string, got, want, rel float64) {
	t.Helper()
	if math.IsNaN(got) || math.Abs(got-want) > rel*math.Abs(want) {
		t.Errorf("%s = %.10g, want %.10g (rel. tol. %g)", what, got, want, rel)
	}
}

// The analytic model against an independent hand calculation for the
// nominal sizing: the level-1 operating point solved by nested bisection
// on the device equations themselves, the small-signal parameters written
// out, and H(jω) from the full 4-node small-signal circuit solved directly
// (the model eliminates two nodes analytically).
func TestAnalyticAgainstHandCalculation(t *testing.T) {
	p := DefaultProcess()
	s := SizingOf(nominal)
	const um = 1.0 // W/L is a ratio; λ = 0.2 V⁻¹·µm / L
	bb, bd := p.KPn*8/1, p.KPn*16/1
	bl, bg := p.KPp*8/1, p.KPp*16/0.5
	lb, ld, ll, lg := 0.2*um/1, 0.2*um/1, 0.2*um/1, 0.2*um/0.5
	vtn, vtp := 0.45, 0.45
	sat := func(beta, vov, lam, vds float64) float64 { return beta / 2 * vov * vov * (1 + lam*vds) }

	vgs8 := bisect(func(v float64) float64 { return sat(bb, v-vtn, lb, v) - Iref }, vtn, VDD)
	i7 := sat(2*bb, vgs8-vtn, lb, VCM) // M7 is twice M8 (r = 2)
	vsg6 := bisect(func(v float64) float64 { return sat(bg, v-vtp, lg, VDD-VCM) - i7 }, vtp, VDD)
	v1 := VDD - vsg6
	var i1, i2, vsg3 float64
	vt := bisect(func(vt float64) float64 {
		i5 := sat(bb, vgs8-vtn, lb, vt)
		// Split: I2 = I1·(1+λl·VSG6)/(1+λl·VSG3(I1)), I1 + I2 = I5.
		i1 = bisect(func(i float64) float64 {
			v3 := bisect(func(v float64) float64 { return sat(bl, v-vtp, ll, v) - i }, vtp, VDD)
			return i*(1+ll*vsg6)/(1+ll*v3) - (i5 - i)
		}, 0, i5)
		i2 = i5 - i1
		vsg3 = bisect(func(v float64) float64 { return sat(bl, v-vtp, ll, v) - i1 }, vtp, VDD)
		return sat(bd, VCM-vt-vtn, ld, v1-vt) - i2
	}, 0, VCM-vtn)

	op := p.Operating(s)
	near(t, "VGS8", op.VGS8, vgs8, 1e-9)
	near(t, "I7", op.I7, i7, 1e-9)
	near(t, "V1", op.V1, v1, 1e-9)
	near(t, "VTail", op.VTail, vt, 1e-7)
	near(t, "I1", op.I1, i1, 1e-7)
	near(t, "I2", op.I2, i2, 1e-7)
	near(t, "VD1", op.VD1, VDD-vsg3, 1e-7)

	gm := func(beta, i, lam, vds float64) float64 { return math.Sqrt(2 * beta * i * (1 + lam*vds)) }
	gds := func(i, lam, vds float64) float64 { return lam * i / (1 + lam*vds) }
	i5 := i1 + i2
	gm1, gds1 := gm(bd, i1, ld, VDD-vsg3-vt), gds(i1, ld, VDD-vsg3-vt)
	gm2, gds2 := gm(bd, i2, ld, v1-vt), gds(i2, ld, v1-vt)
	gm3, gds3 := gm(bl, i1, ll, vsg3), gds(i1, ll, vsg3)
	gm4, gds4 := gm(bl, i2, ll, vsg6), gds(i2, ll, vsg6)
	gds5 := gds(i5, lb, vt)
	gm6, gds6 := gm(bg, i7, lg, VDD-VCM), gds(i7, lg, VDD-VCM)
	gds7 := gds(i7, lb, VCM)
	c1 := 2.0/3.0*8.5e-15*16*0.5 + 1e-15*(16+8)
	c2 := 2e-12 + 1e-15*(16+2*8)
	cc := 2e-12

	// The whole small-signal circuit: KCL at the tail, M3's diode, node 1
	// and the output, inn at AC ground, vin = 1 on M2's gate.
	nodal := func(w float64) complex128 {
		s := complex(0, w)
		r := func(v float64) complex128 { return complex(v, 0) }
		a := [][]complex128{
			{r(gds5 + gm1 + gds1 + gm2 + gds2), r(-gds1), r(-gds2), 0},
			{r(-(gm1 + gds1)), r(gds1 + gm3 + gds3), 0, 0},
			{r(-(gm2 + gds2)), r(gm4), r(gds2+gds4) + s*r(c1+cc), -s * r(cc)},
			{0, 0, r(gm6) - s*r(cc), r(gds6+gds7) + s*r(c2+cc)},
		}
		b := []complex128{r(gm2), 0, r(-gm2), 0}
		return solve(a, b)[3]
	}

	m := p.Model(s)
	near(t, "Gm6", m.Gm6, gm6, 1e-9)
	near(t, "G2", m.G2, gds6+gds7, 1e-9)
	near(t, "C1", m.C1, c1, 1e-12)
	near(t, "C2", m.C2, c2, 1e-12)
	// Textbook first stage: gm of the pair, gds2 + gds4, within the
	// corrections of the tail and the mirror.
	near(t, "Gm1 vs gm2", m.Gm1, gm2, 0.03)
	near(t, "G1 vs gds2+gds4", m.G1, gds2+gds4, 0.05)

	h := m.TF()
	a0 := real(nodal(0))
	near(t, "A0", h.A0, a0, 1e-6)
	near(t, "A0 vs textbook gm1·gm6/((gds2+gds4)(gds6+gds7))", h.A0, gm2*gm6/((gds2+gds4)*(gds6+gds7)), 0.05)
	if a0 < 500 || a0 > 5000 {
		t.Errorf("A0 = %.0f: the nominal design should have a plausible two-stage gain", a0)
	}
	// Poles: roots of B2·s² + B1·s + 1; the textbook Miller and output
	// poles approximate them.
	disc := h.B1*h.B1 - 4*h.B2
	if disc <= 0 {
		t.Fatalf("nominal design has complex poles")
	}
	p1 := (h.B1 - math.Sqrt(disc)) / (2 * h.B2)
	p2 := (h.B1 + math.Sqrt(disc)) / (2 * h.B2)
	near(t, "dominant pole vs Miller G1G2/(gm6·Cc)", p1, m.G1*m.G2/(gm6*cc), 0.05)
	near(t, "second pole vs gm6·Cc/(C1C2+Cc(C1+C2))", p2, gm6*cc/(c1*c2+cc*(c1+c2)), 0.05)
	near(t, "second pole vs gm6/C2", p2, gm6/c2, 0.25)
	near(t, "RHP zero", h.Z, gm6/cc, 1e-9)
	for _, w := range []float64{1, 1e3, 1e5, 1e7, 1e9, 1e11} {
		if got, want := h.H(w), nodal(w); cmplx.Abs(got-want) > 1e-6*cmplx.Abs(want) {
			t.Errorf("H(j%g) = %v, nodal solution %v", w, got, want)
		}
	}
	if mg := p.SaturationMargin(s); mg < 0.1 {
		t.Errorf("nominal design saturation margin %.3f V, want ≥ 0.1", mg)
	}
}

// solve returns x with a·x = b by Gaussian elimination with partial
// pivoting (a and b are overwritten).
func solve(a [][]complex128, b []complex128) []complex128 {
	n := len(b)
	for k := range n {
		p := k
		for i := k + 1; i < n; i++ {
			if cmplx.Abs(a[i][k]) > cmplx.Abs(a[p][k]) {
				p = i
			}
		}
		a[k], a[p] = a[p], a[k]
		b[k], b[p] = b[p], b[k]
		for i := k + 1; i < n; i++ {
			f := a[i][k] / a[k][k]
			for j := k; j < n; j++ {
				a[i][j] -= f * a[k][j]
			}
			b[i] -= f * b[k]
		}
	}
	x := make([]complex128, n)
	for i := n - 1; i >= 0; i-- {
		v := b[i]
		for j := i + 1; j < n; j++ {
			v -= a[i][j] * x[j]
		}
		x[i] = v / a[i][i]
	}
	return x
}

// bruteUnity scans |H| on a fine log grid for its last downward crossing
// of 1 and returns the geometric midpoint of the bracket.
func bruteUnity(h TF) (float64, bool) {
	const perDecade = 2000
	prev := cmplx.Abs(h.H(1e-2))
	found, w := false, 0.0
	for k := 1; k <= 15*perDecade; k++ {
		wk := 1e-2 * math.Pow(10, float64(k)/perDecade)
		m := cmplx.Abs(h.H(wk))
		if prev >= 1 && m < 1 {
			found, w = true, wk*math.Pow(10, -0.5/perDecade)
		}
		prev = m
	}
	return w, found
}

func TestUnityAgainstBruteForce(t *testing.T) {
	p := DefaultProcess()
	rng := rand.New(rand.NewPCG(11, 11))
	tfs := []TF{p.Model(SizingOf(nominal)).TF()}
	for range 30 {
		tfs = append(tfs, p.Model(SizingOf(randomSizing(rng))).TF())
	}
	// Synthetic cases: complex poles with peaking, a gain barely above 1,
	// a gain below 1 with a resonant peak above 1 (two crossings).
	tfs = append(tfs,
		TF{A0: 1000, Z: 1e9, B1: 1e-3, B2: 1e-12},
		TF{A0: 1.5, Z: 1e8, B1: 1e-4, B2: 1e-12},
		TF{A0: 0.8, Z: 1e12, B1: 1e-7, B2: 1e-12},
	)
	for i, h := range tfs {
		got, ok := h.Unity()
		want, wok := bruteUnity(h)
		if ok != wok {
			t.Errorf("case %d %+v: crossing %v, brute force %v", i, h, ok, wok)
			continue
		}
		if ok {
			near(t, "ω_u", got, want, 2e-3)
			near(t, "|H(jω_u)|", cmplx.Abs(h.H(got)), 1, 1e-9)
		}
	}
}

func TestRoundRatio(t *testing.T) {
	for _, c := range []struct {
		r    float64
		want int
	}{{1, 1}, {1.49, 1}, {1.5, 2}, {2, 2}, {2.49999, 2}, {2.5, 3}, {3, 3}, {0.2, 1}, {7, 3}} {
		if got := RoundRatio(c.r); got != c.want {
			t.Errorf("RoundRatio(%v) = %d, want %d", c.r, got, c.want)
		}
	}
	// The twin sees only the rounded ratio: 1.6 and 2.4 are the same design.
	tw := newTwin(t, nil)
	a, b := append([]float64(nil), nominal...), append([]float64(nil), nominal...)
	a[8], b[8] = 1.6, 2.4
	ya, _ := tw.Query(context.Background(), a)
	yb, _ := tw.Query(context.Background(), b)
	for i := range ya {
		if ya[i] != yb[i] {
			t.Errorf("r = 1.6 and 2.4 differ in %s: %v vs %v", OutputNames[i], ya[i], yb[i])
		}
	}
	b[8] = 1.4
	yc, _ := tw.Query(context.Background(), b)
	if yc[0] == ya[0] {
		t.Errorf("r = 1.4 (→1) and 1.6 (→2) give the same gain")
	}
}

// No sizing in the box lacks a crossing (the gain is always ≫ 1), so the
// penalty is exercised on the transfer function itself, and through
// ngspice with a fake simulator in TestNgspicePenalty.
func TestPenaltyWithoutCrossing(t *testing.T) {
	h := TF{A0: 0.5, Z: 1e9, B1: 1e-3, B2: 1e-12}
	g, pm, u := h.Metrics()
	if g != 0.5 || pm != PenaltyPM || u != 0 {
		t.Fatalf("Metrics = %v, %v, %v; want 0.5, %v, 0", g, pm, u, PenaltyPM)
	}
	f := FoM{}.Value([]float64{g, pm, u})
	if math.IsNaN(f) || f > -3 {
		t.Errorf("penalty FoM = %v, want about −3.2", f)
	}
	good := newTwin(t, nil)
	y, _ := good.Query(context.Background(), nominal)
	if (FoM{}).Value(y) < f+5 {
		t.Errorf("a working design scores %v, not clearly above the penalty %v", FoM{}.Value(y), f)
	}
}

// Every corner of the box and many random sizings give finite outputs.
func TestAnalyticFiniteEverywhere(t *testing.T) {
	tw := newTwin(t, nil)
	sp := Space()
	rng := rand.New(rand.NewPCG(5, 5))
	check := func(x []float64) {
		y, err := tw.Query(context.Background(), x)
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range y {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				t.Fatalf("x = %v: %s = %v", x, OutputNames[i], v)
			}
		}
	}
	for c := range 1 << 10 {
		x := make([]float64, 10)
		for i := range x {
			x[i] = sp.Lower[i]
			if c>>i&1 == 1 {
				x[i] = sp.Upper[i]
			}
		}
		check(x)
	}
	for range 2000 {
		check(randomSizing(rng))
	}
}

func TestQueryRejectsOutsideBox(t *testing.T) {
	tw := newTwin(t, nil)
	x := append([]float64(nil), nominal...)
	x[3] = 0.1
	if _, err := tw.Query(context.Background(), x); err == nil {
		t.Error("L_diff = 0.1 µm accepted")
	}
	x[3] = math.NaN()
	if _, err := tw.Query(context.Background(), x); err == nil {
		t.Error("NaN accepted")
	}
}

func TestNoiseAndMismatch(t *testing.T) {
	ctx := context.Background()
	ideal := newTwin(t, nil)
	y0, _ := ideal.Query(ctx, nominal)

	noisy := func() *Twin { return newTwin(t, func(c *Config) { c.OutputNoise = 0.05; c.Seed = 3 }) }
	a, b := noisy(), noisy()
	ya1, _ := a.Query(ctx, nominal)
	ya2, _ := a.Query(ctx, nominal)
	yb1, _ := b.Query(ctx, nominal)
	if ya1[0] == ya2[0] || ya1[0] == y0[0] {
		t.Error("output noise does not change the outputs from query to query")
	}
	for i := range ya1 {
		if ya1[i] != yb1[i] {
			t.Errorf("same seed, same query: %s %v vs %v", OutputNames[i], ya1[i], yb1[i])
		}
	}

	mm := newTwin(t, func(c *Config) { c.Mismatch = 0.1 })
	ym, _ := mm.Query(ctx, nominal)
	if ym[0] == y0[0] {
		t.Error("mismatch does not change the gain")
	}
	if mm.Process() == DefaultProcess() {
		t.Error("mismatch left the process unchanged")
	}
}

func TestQueryBatchEqualsSequentialAnalytic(t *testing.T) {
	ctx := context.Background()
	mk := func() *Twin { return newTwin(t, func(c *Config) { c.OutputNoise = 0.02 }) }
	rng := rand.New(rand.NewPCG(2, 2))
	xs := make([][]float64, 37)
	for i := range xs {
		xs[i] = randomSizing(rng)
	}
	a, b := mk(), mk()
	ys, err := a.QueryBatch(ctx, xs)
	if err != nil {
		t.Fatal(err)
	}
	for i, x := range xs {
		y, _ := b.Query(ctx, x)
		for j := range y {
			if y[j] != ys[i][j] {
				t.Fatalf("query %d %s: batch %v, sequential %v", i, OutputNames[j], ys[i][j], y[j])
			}
		}
	}
	bad := append([][]float64(nil), xs...)
	bad[5] = []float64{1}
	if _, err := a.QueryBatch(ctx, bad); err == nil {
		t.Error("batch with a malformed query accepted")
	}
}

func newTwin(tb testing.TB, edit func(*Config)) *Twin {
	tb.Helper()
	cfg := DefaultConfig()
	if edit != nil {
		edit(&cfg)
	}
	tw, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return tw
}
