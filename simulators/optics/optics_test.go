package optics

import (
	"context"
	"errors"
	"math"
	"math/cmplx"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/insitu-lab/insitu"
	"github.com/insitu-lab/insitu/loop"
)

func newTwin(t testing.TB, edit func(*Config)) *Twin {
	t.Helper()
	c := DefaultConfig()
	if edit != nil {
		edit(&c)
	}
	tw, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	return tw
}

func randomPhases(rng *rand.Rand, n int) []float64 {
	x := make([]float64, n)
	for i := range x {
		x[i] = 2 * math.Pi * rng.Float64()
	}
	return x
}

func mustQuery(t testing.TB, tw *Twin, x []float64) []float64 {
	t.Helper()
	y, err := tw.Query(context.Background(), x)
	if err != nil {
		t.Fatal(err)
	}
	return y
}

func dot(a, b []float64) float64 {
	var s float64
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

// noiseless evaluates the map VJP differentiates, without using a query
// index.
func noiseless(tw *Twin, x []float64) []float64 { return tw.represent(tw.Field(x)) }

// VJP against central differences of vᵀy along random directions and along
// single coordinates, in every output mode and with the SLM options on.
func TestVJPMatchesFiniteDifferences(t *testing.T) {
	small := func(c *Config) { c.N, c.Pitch = 8, 20e-6 }
	cases := []struct {
		name string
		edit func(*Config)
	}{
		{"field", small},
		{"angular", func(c *Config) { small(c); c.Method = MethodAngular; c.Distance = 0.005 }},
		{"intensity", func(c *Config) { small(c); c.Output = OutputIntensity }},
		{"amplitude", func(c *Config) { small(c); c.Output = OutputAmplitude }},
		{"camera", func(c *Config) {
			small(c)
			c.Output = OutputCamera
			c.Camera.Binning = 2
			c.Camera.ShotNoise, c.Camera.ReadNoise = false, 0
		}},
		{"lut+crosstalk", func(c *Config) {
			small(c)
			c.LUT = []float64{0, 0.5, 2, 4, 5.5, 6}
			c.Crosstalk = 0.7
		}},
		{"aberration+intensity", func(c *Config) {
			small(c)
			c.Output = OutputIntensity
			c.Aberration = []Zernike{{Noll: 5, Coefficient: 1.3}, {Noll: 8, Coefficient: -0.7}}
		}},
		{"macro-pixel+camera", func(c *Config) {
			small(c)
			c.MacroPixel = 2
			c.Crosstalk = 0.7
			c.Output = OutputCamera
			c.Camera.Binning = 4
			c.Camera.ShotNoise, c.Camera.ReadNoise = false, 0
		}},
	}
	ctx := context.Background()
	for _, tc := range cases {
		tw := newTwin(t, tc.edit)
		rng := rand.New(rand.NewPCG(11, 12))
		n2 := tw.nc * tw.nc
		// Stay away from the box edges and the LUT's knots' kinks matter
		// only on a set of measure zero.
		x := make([]float64, n2)
		for i := range x {
			x[i] = 0.3 + (2*math.Pi-0.6)*rng.Float64()
		}
		v := make([]float64, len(tw.out))
		for i := range v {
			v[i] = rng.NormFloat64()
		}
		g, err := tw.VJP(ctx, x, v)
		if err != nil {
			t.Fatal(err)
		}
		const h = 1e-5
		fd := func(dir []float64) float64 {
			xp, xm := slices.Clone(x), slices.Clone(x)
			for i := range x {
				xp[i] += h * dir[i]
				xm[i] -= h * dir[i]
			}
			return (dot(v, noiseless(tw, xp)) - dot(v, noiseless(tw, xm))) / (2 * h)
		}
		scale := math.Sqrt(dot(g, g))
		for trial := range 3 {
			dir := make([]float64, n2)
			for i := range dir {
				dir[i] = rng.NormFloat64()
			}
			want, got := fd(dir), dot(g, dir)
			if math.Abs(got-want) > 1e-6*scale*math.Sqrt(float64(n2)) {
				t.Errorf("%s: direction %d: VJP·d = %.10g, finite difference %.10g", tc.name, trial, got, want)
			}
		}
		for _, i := range []int{0, 9, min(27, n2-2), n2 - 1} {
			e := make([]float64, n2)
			e[i] = 1
			if want := fd(e); math.Abs(g[i]-want) > 1e-6*scale {
				t.Errorf("%s: ∂/∂x[%d] = %.10g, finite difference %.10g", tc.name, i, g[i], want)
			}
		}
	}
}

// A macro-pixel twin answers exactly what the pixel twin answers for the
// expanded pattern, and names its (N/b)² controls.
func TestMacroPixelIsTheExpandedPattern(t *testing.T) {
	const n, b = 12, 3
	small := func(c *Config) { c.N, c.Pitch, c.Output = n, 20e-6, OutputIntensity }
	macro := newTwin(t, func(c *Config) { small(c); c.MacroPixel = b })
	pixel := newTwin(t, small)
	s := macro.Spec()
	if got := len(s.In.Lower); got != (n/b)*(n/b) {
		t.Fatalf("macro twin has %d inputs, want %d", got, (n/b)*(n/b))
	}
	if s.In.Names[0] != "phi_0_0" || s.In.Names[len(s.In.Names)-1] != "phi_3_3" {
		t.Errorf("input names %s … %s", s.In.Names[0], s.In.Names[len(s.In.Names)-1])
	}
	if len(s.Out) != n*n {
		t.Errorf("outputs: %d, want %d (the output grid is the SLM's)", len(s.Out), n*n)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for range 3 {
		x := randomPhases(rng, (n/b)*(n/b))
		full := make([]float64, n*n)
		for r := range n {
			for c := range n {
				full[r*n+c] = x[(r/b)*(n/b)+c/b]
			}
		}
		got, want := mustQuery(t, macro, x), mustQuery(t, pixel, full)
		if !slices.Equal(got, want) {
			t.Fatal("macro-pixel output differs from the expanded pattern's")
		}
		// The VJP of a block is the sum of its pixels' VJPs.
		v := make([]float64, n*n)
		for i := range v {
			v[i] = rng.NormFloat64()
		}
		gm, err := macro.VJP(context.Background(), x, v)
		if err != nil {
			t.Fatal(err)
		}
		gp, err := pixel.VJP(context.Background(), full, v)
		if err != nil {
			t.Fatal(err)
		}
		for k := range gm {
			var sum float64
			for r := range b {
				for c := range b {
					sum += gp[((k/(n/b))*b+r)*n+(k%(n/b))*b+c]
				}
			}
			if math.Abs(gm[k]-sum) > 1e-12*(1+math.Abs(sum)) {
				t.Fatalf("VJP[%d] = %g, sum over its block %g", k, gm[k], sum)
			}
		}
	}
	for _, bad := range []int{-1, 7, 11} {
		c := DefaultConfig()
		c.MacroPixel = bad
		if _, err := New(c); err == nil || !strings.Contains(err.Error(), "macro_pixel") {
			t.Errorf("macro_pixel %d: error %v, want one naming macro_pixel", bad, err)
		}
	}
}

// With quantization the VJP is the straight-through derivative: the same
// as without quantization at the rounded phases.
func TestVJPQuantizedIsStraightThrough(t *testing.T) {
	q := newTwin(t, func(c *Config) { c.N, c.QuantizeBits = 6, 3 })
	p := newTwin(t, func(c *Config) { c.N = 6 })
	rng := rand.New(rand.NewPCG(1, 3))
	x := randomPhases(rng, 36)
	xr := make([]float64, 36)
	for i, v := range x {
		xr[i] = math.Round(v/(2*math.Pi)*7) / 7 * 2 * math.Pi
	}
	if !slices.Equal(noiseless(q, x), noiseless(p, xr)) {
		// The two round differently only through floating point.
		for i, a := range noiseless(q, x) {
			if b := noiseless(p, xr)[i]; math.Abs(a-b) > 1e-12 {
				t.Fatalf("quantized output %d = %v, want %v", i, a, b)
			}
		}
	}
	v := make([]float64, len(q.out))
	for i := range v {
		v[i] = rng.NormFloat64()
	}
	gq, _ := q.VJP(context.Background(), x, v)
	gp, _ := p.VJP(context.Background(), xr, v)
	for i := range gq {
		if math.Abs(gq[i]-gp[i]) > 1e-12*(1+math.Abs(gp[i])) {
			t.Fatalf("straight-through gradient %d = %v, want %v", i, gq[i], gp[i])
		}
	}
}

func TestSLMOptions(t *testing.T) {
	// An 8-bit SLM applies one of 256 phases.
	s := newSLM(Config{N: 1, QuantizeBits: 8})
	for _, phi := range []float64{0, 0.01, 1, 3.14159, 2 * math.Pi} {
		psi, _ := s.phase(phi)
		lvl := psi / (2 * math.Pi) * 255
		if math.Abs(lvl-math.Round(lvl)) > 1e-9 || math.Abs(psi-phi) > math.Pi/255+1e-12 {
			t.Errorf("8-bit phase of %v = %v (level %v)", phi, psi, lvl)
		}
	}
	// A LUT is interpolated between gray levels and is monotone.
	s = newSLM(Config{N: 1, LUT: []float64{0, 1, 1, 5}})
	prev := -1.0
	for i := range 101 {
		phi := 2 * math.Pi * float64(i) / 100
		psi, _ := s.phase(phi)
		if psi < prev {
			t.Fatalf("LUT not monotone at %v: %v < %v", phi, psi, prev)
		}
		prev = psi
	}
	if psi, _ := s.phase(2 * math.Pi / 6); math.Abs(psi-0.5) > 1e-12 {
		t.Errorf("LUT halfway between levels 0 and 1: %v, want 0.5", psi)
	}
	if psi, _ := s.phase(2 * math.Pi); psi != 5 {
		t.Errorf("LUT at full scale: %v, want 5", psi)
	}
	// Crosstalk keeps a uniform phase uniform and smooths a step.
	b := newBlur(10, 1)
	a := make([]float64, 100)
	for i := range a {
		a[i] = 2
	}
	b.apply2d(a, make([]float64, 10), false)
	for i, v := range a {
		if math.Abs(v-2) > 1e-12 {
			t.Fatalf("uniform phase blurred to %v at %d", v, i)
		}
	}
	for r := range 10 {
		for c := range 10 {
			a[r*10+c] = 0
			if c >= 5 {
				a[r*10+c] = 1
			}
		}
	}
	b.apply2d(a, make([]float64, 10), false)
	if !(a[4] > 0.1 && a[4] < 0.5 && a[5] > 0.5 && a[5] < 0.9) {
		t.Errorf("step edge after blur: %v %v", a[4], a[5])
	}
}

func cameraTwin(t testing.TB, edit func(*CameraConfig)) *Twin {
	return newTwin(t, func(c *Config) {
		c.N, c.Output = 16, OutputCamera
		if edit != nil {
			edit(&c.Camera)
		}
	})
}

func TestCameraZeroNoiseIsScaledIntensity(t *testing.T) {
	tw := cameraTwin(t, func(c *CameraConfig) { c.ShotNoise, c.ReadNoise, c.BitDepth, c.Binning = false, 0, 0, 2 })
	x := randomPhases(rand.New(rand.NewPCG(2, 2)), 256)
	y := mustQuery(t, tw, x)
	u := tw.Field(x)
	s := tw.cfg.Camera.Gain * tw.cfg.Camera.Exposure * tw.dA
	for r := range 8 {
		for c := range 8 {
			var want float64
			for dr := range 2 {
				for dc := range 2 {
					want += sq(u[(2*r+dr)*16+2*c+dc]) * s
				}
			}
			if got := y[r*8+c]; math.Abs(got-want) > 1e-12*want {
				t.Fatalf("pixel (%d,%d) = %v, want %v", r, c, got, want)
			}
		}
	}
	if len(y) != 64 || tw.Spec().Out[63] != "cam_07_07" {
		t.Errorf("binned camera has %d outputs, last %q", len(y), tw.Spec().Out[len(y)-1])
	}
	if _, tgt := tw.Target(0); len(tgt) != 64 {
		t.Errorf("camera target has %d values", len(tgt))
	}
}

func TestCameraSaturationClipsAndFlags(t *testing.T) {
	// Exposure so high that the bright centre saturates a 12-bit ADC.
	tw := cameraTwin(t, func(c *CameraConfig) { c.Exposure = 1e8 })
	x := make([]float64, 256)
	img, sat := tw.Image(x, 0)
	if sat == 0 {
		t.Fatal("no pixel saturated")
	}
	var clipped int
	for _, v := range img {
		if v > 4095 || v < 0 || v != math.Round(v) {
			t.Fatalf("pixel %v outside the 12-bit range or not an integer", v)
		}
		if v == 4095 {
			clipped++
		}
	}
	if clipped != sat {
		t.Errorf("%d pixels at 4095, %d reported saturated", clipped, sat)
	}
	if q, px := tw.Saturation(); q != 0 || px != 0 {
		t.Errorf("Image counted towards Saturation: %d, %d", q, px)
	}
	mustQuery(t, tw, x)
	mustQuery(t, tw, x)
	if q, px := tw.Saturation(); q != 2 || px < 2 {
		t.Errorf("Saturation after two saturated queries: %d queries, %d pixels", q, px)
	}
	// The default exposure does not saturate the unmodulated beam.
	tw = cameraTwin(t, nil)
	if _, sat := tw.Image(x, 0); sat != 0 {
		t.Errorf("default camera saturates on the plain beam: %d pixels", sat)
	}
	// An explicit saturation level applies without an ADC too.
	tw = cameraTwin(t, func(c *CameraConfig) { c.BitDepth, c.Saturation, c.ShotNoise, c.ReadNoise = 0, 100, false, 0 })
	img, sat = tw.Image(x, 0)
	if sat == 0 || slices.Max(img) != 100 {
		t.Errorf("saturation 100 without ADC: %d saturated, max %v", sat, slices.Max(img))
	}
}

func TestCameraNoiseIsSeededPerQuery(t *testing.T) {
	x := randomPhases(rand.New(rand.NewPCG(9, 9)), 256)
	a, b := cameraTwin(t, nil), cameraTwin(t, nil)
	ya0, ya1 := mustQuery(t, a, x), mustQuery(t, a, x)
	yb0 := mustQuery(t, b, x)
	if !slices.Equal(ya0, yb0) {
		t.Error("same seed, same query index: different images")
	}
	if slices.Equal(ya0, ya1) {
		t.Error("query 0 and query 1 have identical noise")
	}
	if img, _ := a.Image(x, 1); !slices.Equal(img, ya1) {
		t.Error("Image(x, 1) differs from query 1")
	}
	c := newTwin(t, func(c *Config) { c.N, c.Output, c.Seed = 16, OutputCamera, 2 })
	if slices.Equal(mustQuery(t, c, x), ya0) {
		t.Error("seeds 1 and 2 give the same noise")
	}
	// The noise is of the expected size: shot noise √(e⁻) dominates.
	ideal := noiseless(a, x)
	var s2, ne float64
	for i := range ideal {
		d := ya0[i] - ideal[i]
		s2 += d * d
		ne += ideal[i] / a.cfg.Camera.Gain // electrons
	}
	g := a.cfg.Camera.Gain
	want := g * g * (ne + float64(len(ideal))*25) // shot + read noise variance, ADU²
	if r := s2 / want; r < 0.7 || r > 1.3 {
		t.Errorf("noise variance %.4g ADU², want ≈ %.4g (ratio %.2f)", s2, want, r)
	}
}

func TestPoisson(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	for _, mu := range []float64{0.5, 7, 29, 31, 1000} {
		var s, s2 float64
		const n = 20000
		for range n {
			k := poisson(rng, mu)
			s += k
			s2 += k * k
		}
		mean := s / n
		variance := s2/n - mean*mean
		if math.Abs(mean-mu) > 5*math.Sqrt(mu/n) || math.Abs(variance/mu-1) > 0.06 {
			t.Errorf("Poisson(%v): mean %v, variance %v", mu, mean, variance)
		}
	}
}

func TestQueryBatchEqualsSequentialQueries(t *testing.T) {
	for _, out := range []string{OutputField, OutputCamera} {
		edit := func(c *Config) { c.N, c.Output = 12, out }
		a, b := newTwin(t, edit), newTwin(t, edit)
		rng := rand.New(rand.NewPCG(4, 4))
		xs := make([][]float64, 9)
		for i := range xs {
			xs[i] = randomPhases(rng, 144)
		}
		mustQuery(t, a, xs[0]) // both batches start at query index 1
		mustQuery(t, b, xs[0])
		ys, err := a.QueryBatch(context.Background(), xs)
		if err != nil {
			t.Fatal(err)
		}
		for i, x := range xs {
			if !slices.Equal(ys[i], mustQuery(t, b, x)) {
				t.Errorf("%s: batch item %d differs from the sequential query", out, i)
			}
		}
	}
}

func TestQueryBatchErrors(t *testing.T) {
	tw := newTwin(t, func(c *Config) { c.N = 4 })
	good := make([]float64, 16)
	bad := slices.Clone(good)
	bad[5] = 7
	_, err := tw.QueryBatch(context.Background(), [][]float64{good, bad})
	if err == nil || !strings.Contains(err.Error(), "query 1") || !strings.Contains(err.Error(), "phi_1_1") {
		t.Errorf("out-of-box item: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := tw.QueryBatch(ctx, [][]float64{good}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled batch: %v", err)
	}
	if _, err := tw.Query(ctx, good); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled query: %v", err)
	}
	if _, err := tw.VJP(ctx, good, make([]float64, 32)); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled VJP: %v", err)
	}
}

func TestQueryAndVJPCheckInputs(t *testing.T) {
	tw := newTwin(t, func(c *Config) { c.N = 4 })
	ctx := context.Background()
	for _, x := range [][]float64{make([]float64, 15), append(make([]float64, 15), math.NaN()), append(make([]float64, 15), -0.1), append(make([]float64, 15), 6.3)} {
		if _, err := tw.Query(ctx, x); err == nil || !strings.HasPrefix(err.Error(), "owms: ") {
			t.Errorf("Query(%v): %v", x[len(x)-1], err)
		}
		if _, err := tw.VJP(ctx, x, make([]float64, 32)); err == nil {
			t.Errorf("VJP accepted %v", x)
		}
	}
	x := make([]float64, 16)
	if _, err := tw.VJP(ctx, x, make([]float64, 31)); err == nil {
		t.Error("VJP accepted a short cotangent")
	}
	v := make([]float64, 32)
	v[3] = math.Inf(1)
	if _, err := tw.VJP(ctx, x, v); err == nil || !strings.Contains(err.Error(), "im_0_1") {
		t.Errorf("VJP with infinite cotangent: %v", err)
	}
}

func TestSpecAndTarget(t *testing.T) {
	tw := newTwin(t, nil)
	s := tw.Spec()
	if s.Name != "owms" || s.In.Dim() != 3600 || len(s.Out) != 7200 {
		t.Fatalf("spec: %s, %d inputs, %d outputs", s.Name, s.In.Dim(), len(s.Out))
	}
	if s.In.Names[61] != "phi_01_01" || s.Out[0] != "re_00_00" || s.Out[7199] != "im_59_59" || s.In.Upper[0] != 2*math.Pi {
		t.Errorf("names %q %q %q, upper %v", s.In.Names[61], s.Out[0], s.Out[7199], s.In.Upper[0])
	}
	if tw.FFTSize() != 128 {
		t.Errorf("FFT size %d, want 128", tw.FFTSize())
	}
	if !s.In.IsPeriodic(0) || !s.In.IsPeriodic(3599) || s.Validate() != nil {
		t.Errorf("phases must be periodic: %v", s.Validate())
	}
	xRef, y := tw.Target(3)
	if xRef != nil || dot(y, y) < 1-1e-12 || dot(y, y) > 1+1e-12 {
		t.Errorf("target: xRef %v, power %v", xRef, dot(y, y))
	}
	// Two spots at ±140 µm = ±14 pixels from the centre, on the middle rows.
	u := tw.TargetField()
	if a, b := sq(u[29*60+15]), sq(u[29*60+29]); a < 10*b {
		t.Errorf("target spot %v not brighter than the centre %v", a, b)
	}
	// The distance objective on field output is the area-weighted field
	// loss; on intensity output it is the intensity loss.
	x := randomPhases(rand.New(rand.NewPCG(1, 5)), 3600)
	obj, _, err := loop.NewObjective(context.Background(), loop.ObjectiveConfig{Kind: "distance", TargetSeed: 3}, tw)
	if err != nil {
		t.Fatal(err)
	}
	fl, il := tw.Losses(x)
	if got := obj.Value(mustQuery(t, tw, x)); math.Abs(got-fl) > 1e-12*fl {
		t.Errorf("distance objective %v, field loss %v", got, fl)
	}
	ti := newTwin(t, func(c *Config) { c.Output = OutputIntensity })
	obj, _, err = loop.NewObjective(context.Background(), loop.ObjectiveConfig{Kind: "distance"}, ti)
	if err != nil {
		t.Fatal(err)
	}
	if got := obj.Value(mustQuery(t, ti, x)); math.Abs(got-il) > 1e-12*il {
		t.Errorf("distance objective on intensity %v, intensity loss %v", got, il)
	}
	// On amplitude output it is the amplitude loss √(Σ(|U_2| − |U_t|)²·dA),
	// computed here from the fields.
	ta := newTwin(t, func(c *Config) { c.Output = OutputAmplitude })
	obj, _, err = loop.NewObjective(context.Background(), loop.ObjectiveConfig{Kind: "distance"}, ta)
	if err != nil {
		t.Fatal(err)
	}
	var al float64
	tf := ta.TargetField()
	for i, v := range ta.Field(x) {
		d := cabs(v) - cabs(tf[i])
		al += d * d * 1e-10
	}
	if got, want := obj.Value(mustQuery(t, ta, x)), math.Sqrt(al); math.Abs(got-want) > 1e-12*want {
		t.Errorf("distance objective on amplitude %v, amplitude loss %v", got, want)
	}
	if len(ta.Spec().Out) != 3600 || ta.Spec().Out[61] != "a_01_01" {
		t.Errorf("amplitude outputs: %d, %q", len(ta.Spec().Out), ta.Spec().Out[61])
	}
	// The flat phase misses the target by a lot: the loss is not trivial.
	if f0, _ := tw.Losses(make([]float64, 3600)); f0 < 0.5 {
		t.Errorf("field loss of the flat phase: %v", f0)
	}
}

func TestDefaultsAreDeterministic(t *testing.T) {
	a, b := newTwin(t, nil), newTwin(t, nil)
	x := randomPhases(rand.New(rand.NewPCG(8, 8)), 3600)
	if !slices.Equal(mustQuery(t, a, x), mustQuery(t, b, x)) || !slices.Equal(mustQuery(t, a, x), mustQuery(t, a, x)) {
		t.Error("field output not deterministic")
	}
}

func TestConcurrentUse(t *testing.T) {
	tw := newTwin(t, func(c *Config) { c.N = 16 })
	x := randomPhases(rand.New(rand.NewPCG(6, 6)), 256)
	want := mustQuery(t, tw, x)
	v := slices.Clone(want)
	g0, _ := tw.VJP(context.Background(), x, v)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 10 {
				if y, err := tw.Query(context.Background(), x); err != nil || !slices.Equal(y, want) {
					t.Error("concurrent query differs")
					return
				}
				if g, err := tw.VJP(context.Background(), x, v); err != nil || !slices.Equal(g, g0) {
					t.Error("concurrent VJP differs")
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestRegistry(t *testing.T) {
	ctx := context.Background()
	b, err := insitu.New(ctx, insitu.Params{Kind: "owms", Values: map[string]any{
		"n": 8, "output": "camera", "camera": map[string]any{"binning": 2, "read_noise": 0},
		"lut": []any{0, 3, 6.2}, "crosstalk": "0.5",
	}})
	if err != nil {
		t.Fatal(err)
	}
	tw := b.(*Twin)
	if tw.cfg.Camera.Gain != DefaultConfig().Camera.Gain || tw.cfg.Camera.Binning != 2 || len(b.Spec().Out) != 16 {
		t.Errorf("decoded camera config %+v", tw.cfg.Camera)
	}
	_, err = insitu.New(ctx, insitu.Params{Kind: "owms", File: "x.yaml", Values: map[string]any{"n": 8, "pitch": -1, "camera": map[string]any{"gain": 0}}})
	if err == nil || !strings.Contains(err.Error(), "x.yaml: blackbox.pitch:") || !strings.Contains(err.Error(), "blackbox.camera.gain:") {
		t.Errorf("bad values: %v", err)
	}
	_, err = insitu.New(ctx, insitu.Params{Kind: "owms", Values: map[string]any{"wavelenght": 1e-6}})
	if err == nil || !strings.Contains(err.Error(), "wavelenght") {
		t.Errorf("misspelt key: %v", err)
	}
}

// The target's own share of power in its spots is what a Gaussian spot
// keeps within its waist, 1 − e⁻² ≈ 0.865 (a closed form; the grid's
// sampling moves it a little), in intensity output and in a camera binned
// 3×3; field output has no spots.
func TestSpotsHoldTheTargetsPower(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		edit func(*Config)
	}{
		{"intensity", func(c *Config) { c.Output = OutputIntensity }},
		{"camera 3×3", func(c *Config) {
			c.Output, c.Camera.Binning = OutputCamera, 3
			c.Camera.ShotNoise, c.Camera.ReadNoise, c.Camera.BitDepth = false, 0, 0
		}},
	} {
		tw := newTwin(t, tc.edit)
		o, dir, err := loop.NewObjective(ctx, insitu.ObjectiveConfig{Kind: "fraction"}, tw)
		if err != nil {
			t.Fatal(err)
		}
		_, y := tw.Target(0)
		f := o.Value(y)
		if want := 1 - math.Exp(-2); dir != insitu.Maximize || math.Abs(f-want) > 0.04 {
			t.Errorf("%s: the target keeps %.3f of its power in the spots (%s), want ≈ %.3f", tc.name, f, dir, want)
		}
		// The unmodulated beam lands between the spots: a small share.
		if g := o.Value(mustQuery(t, tw, make([]float64, tw.nc*tw.nc))); !(g < 0.2) {
			t.Errorf("%s: flat phase puts %.3f in the spots", tc.name, g)
		}
	}
	if s := newTwin(t, nil).Spots(); s != nil {
		t.Errorf("field output names spots %v", s)
	}
}

// An aberration is a phase added to the SLM's: the aberrated twin's field
// under x is the plain twin's under x + W, with W the Zernike sum over the
// disc of radius aberration_radius.
func TestAberrationAddsToThePhase(t *testing.T) {
	terms := []Zernike{{Noll: 4, Coefficient: 0.8}, {Noll: 6, Coefficient: -1.1}, {Noll: 7, Coefficient: 0.4}}
	plain := newTwin(t, func(c *Config) { c.N, c.Pitch = 16, 20e-6 })
	ab := newTwin(t, func(c *Config) { c.N, c.Pitch = 16, 20e-6; c.Aberration = terms; c.AberrationRadius = 100e-6 })
	x := make([]float64, 16*16)
	for i := range x {
		x[i] = math.Mod(0.37*float64(i), 2*math.Pi)
	}
	w := Aberration(terms, 16, 5) // 100 µm / 20 µm
	xw := make([]float64, len(x))
	for i := range x {
		// The independent sum, term by term, at cell (r, c).
		r, c := float64(i/16)-7.5, float64(i%16)-7.5
		rho, th := math.Hypot(c, r)/5, math.Atan2(r, c)
		want := 0.8*math.Sqrt(3)*(2*rho*rho-1) - 1.1*math.Sqrt(6)*rho*rho*math.Cos(2*th) + 0.4*math.Sqrt(8)*(3*rho*rho*rho-2*rho)*math.Sin(th)
		if math.Abs(w[i]-want) > 1e-12 {
			t.Fatalf("aberration at cell %d = %v, want %v", i, w[i], want)
		}
		xw[i] = x[i] + w[i]
	}
	got, want := ab.Field(x), plain.Field(xw)
	for i := range got {
		if cmplx.Abs(got[i]-want[i]) > 1e-9*cmplx.Abs(want[i])+1e-15 {
			t.Fatalf("field at %d: %v, want %v", i, got[i], want[i])
		}
	}
	if c := ab.Config(); len(c.Aberration) != 3 {
		t.Errorf("Config lost the aberration: %+v", c.Aberration)
	}
	bad := DefaultConfig()
	bad.Aberration = []Zernike{{Noll: 0, Coefficient: 1}}
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "aberration") {
		t.Errorf("Noll index 0 accepted: %v", err)
	}
}
