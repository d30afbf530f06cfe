// Package optics is the twin of the OWMS task (optical wave manipulation
// with a phase-only SLM, from the GradPIE paper, arXiv 2501.19161),
// registered as kind "owms".
//
// A unit-power Gaussian U_in = √(2/(πw0²))·exp(−(x²+y²)/w0²), sampled on
// the centres of an N×N grid of pitch p, is modulated by the SLM,
// U_1 = U_in ⊙ exp(iψ(φ)), and propagated over z by Rayleigh–Sommerfeld,
//
//	U_2(x, y) = Σ U_1(x', y') · h(x−x', y−y', z) · p²,
//	h = (1/2π)·(z/r²)·(1/r − ik)·e^{ikr},
//
// a linear convolution computed with zero-padded FFTs (no wrap-around) and
// kept on the same N×N grid; the angular-spectrum method is an option for
// short distances. The input is the N² commanded phases φ ∈ [0, 2π],
// row-major, named phi_<row>_<col>; with macro_pixel b > 1 it is the
// (N/b)² phases of b×b blocks of pixels, each block showing one phase.
//
// Output modes (Config.Output):
//
//   - field (default): 2·N² reals, Re and Im of U_2·p interleaved per pixel
//     (re_r_c, im_r_c, …). The scale √dA = p makes the plain Euclidean
//     distance between two outputs the area-weighted field L2 loss
//     √(Σ|ΔU|²·dA), so the loop's "distance" objective is that loss.
//   - intensity: N² reals |U_2|²·dA, the power in each pixel; "distance"
//     is then the intensity L2 loss √(Σ(Δ|U|²)²)·dA.
//   - amplitude: N² reals |U_2|·√dA, the square root of each pixel's
//     power (what a camera's image gives, up to its scale); "distance" is
//     then the amplitude L2 loss √(Σ(Δ|U|)²·dA), which leaves the output's
//     phase free.
//   - camera: the binned pixel powers as a camera sees them, in ADU, with
//     exposure, gain, shot and read noise, bit depth and saturation. Noise
//     of query k (counting from 0 over the twin's life, QueryBatch taking
//     consecutive indices) depends only on the seed and k.
//
// VJP is exact for field, intensity and amplitude output (up to rounding;
// for amplitude, where |U_2| = 0 its subgradient 0; with
// quantize_bits > 0 the rounding of gray levels is passed straight through,
// since its true derivative is zero almost everywhere). For camera output
// it is the VJP of the expected image Gain·Exposure·P — noise, ADC rounding
// and clipping are not differentiated.
//
// A Twin is safe for concurrent use.
package optics

import (
	"context"
	"fmt"
	"math"
	"math/cmplx"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/insitu-lab/insitu"
	"github.com/insitu-lab/insitu/internal/splitmix"
	"github.com/insitu-lab/insitu/simulators/batch"
)

const saltNoise = 0x6f776d73_00000001 // camera noise streams

// Twin is an OWMS. Build it with New or through insitu.New with kind "owms".
type Twin struct {
	cfg    Config
	n      int
	mp, nc int // macro-pixel side, controls per side (n/mp)
	dA     float64
	uin    []complex128 // input field, N×N
	target []complex128 // target field, unit power on the grid
	slm    *slm
	ab     []float64 // aberration phase, N×N; nil: none
	prop   *propagator
	cam    *camera
	space  insitu.Space
	out    []string

	noiseSeed uint64
	next      atomic.Uint64 // index of the next query, for its noise
	satQ      atomic.Uint64 // queries with a saturated pixel
	satPx     atomic.Uint64 // saturated pixels over all queries
	pool      sync.Pool     // *work
}

// work is one query's scratch.
type work struct {
	buf        []complex128 // m×m
	u1, u2, g  []complex128 // N×N
	psi, d, gp []float64    // N×N
	phi        []float64    // N×N commanded phases, expanded from macro-pixels
	pw         []float64    // N×N cell powers
	tmp        []float64    // N
	pcg        rand.PCG
	rng        *rand.Rand
}

// New builds a twin: input and target fields and the kernel's transform
// are computed once here.
func New(cfg Config) (*Twin, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.LUT = append([]float64(nil), cfg.LUT...)
	if len(cfg.LUT) == 0 {
		cfg.LUT = nil
	}
	n := cfg.N
	mp := max(1, cfg.MacroPixel)
	cfg.MacroPixel = mp
	nc := n / mp
	m := cfg.Pad
	if m == 0 {
		m = autoPad(n, cfg.Method)
	}
	prop, err := newPropagator(cfg, m)
	if err != nil {
		return nil, fmt.Errorf("owms: %w", err)
	}
	t := &Twin{
		cfg:       cfg,
		n:         n,
		mp:        mp,
		nc:        nc,
		dA:        cfg.Pitch * cfg.Pitch,
		uin:       make([]complex128, n*n),
		target:    make([]complex128, n*n),
		slm:       newSLM(cfg),
		prop:      prop,
		noiseSeed: splitmix.Seed(cfg.Seed, saltNoise),
	}
	if cfg.Output == OutputCamera {
		t.cam = newCamera(cfg)
	}
	if len(cfg.Aberration) > 0 {
		radius := cfg.AberrationRadius
		if radius == 0 {
			radius = float64(n) * cfg.Pitch / 2
		}
		t.ab = Aberration(cfg.Aberration, n, radius/cfg.Pitch)
		cfg.Aberration = append([]Zernike(nil), cfg.Aberration...)
		t.cfg.Aberration = cfg.Aberration
	}

	w0, wt := cfg.Waist, cfg.TargetWaist
	amp := math.Sqrt(2 / (math.Pi * w0 * w0))
	// A tilted spot at ±x0 has the phase ±k·x0·x/z of a beam that left the
	// optical axis at the SLM towards it.
	var kt float64
	if cfg.TargetPhase == TargetTilted {
		kt = 2 * math.Pi / cfg.Wavelength * cfg.TargetOffset / cfg.Distance
	}
	var pt float64
	for r := range n {
		y := t.coord(r)
		for c := range n {
			x := t.coord(c)
			t.uin[r*n+c] = complex(amp*math.Exp(-(x*x+y*y)/(w0*w0)), 0)
			a, b := x-cfg.TargetOffset, x+cfg.TargetOffset
			ea, eb := math.Exp(-(a*a+y*y)/(wt*wt)), math.Exp(-(b*b+y*y)/(wt*wt))
			v := complex(ea, 0)*cmplx.Exp(complex(0, kt*x)) + complex(eb, 0)*cmplx.Exp(complex(0, -kt*x))
			t.target[r*n+c] = v
			pt += sq(v) * t.dA
		}
	}
	var pin float64
	for _, v := range t.uin {
		pin += sq(v) * t.dA
	}
	if !(pin > 0) || math.IsInf(pin, 0) {
		return nil, fmt.Errorf("owms: input beam has power %v on the grid: waist %v m does not fit %d cells of %v m", pin, w0, n, cfg.Pitch)
	}
	if !(pt > 0) || math.IsInf(pt, 0) {
		return nil, fmt.Errorf("owms: target has power %v on the grid: target_offset or target_waist puts it outside the %d×%d window", pt, n, n)
	}
	for i := range t.target {
		t.target[i] *= complex(1/math.Sqrt(pt), 0)
	}

	t.space = insitu.Box(nc*nc, 0, 2*math.Pi)
	t.space.Names = make([]string, nc*nc)
	t.space.Units = make([]string, nc*nc)
	t.space.Periodic = make([]bool, nc*nc) // phases: a step past 2π comes back at 0
	width := len(strconv.Itoa(n - 1))
	name := func(prefix string, r, c int) string { return fmt.Sprintf("%s_%0*d_%0*d", prefix, width, r, width, c) }
	wc := len(strconv.Itoa(nc - 1))
	for r := range nc {
		for c := range nc {
			t.space.Names[r*nc+c] = fmt.Sprintf("phi_%0*d_%0*d", wc, r, wc, c)
			t.space.Units[r*nc+c] = "rad"
			t.space.Periodic[r*nc+c] = true
		}
	}
	switch cfg.Output {
	case OutputField:
		for r := range n {
			for c := range n {
				t.out = append(t.out, name("re", r, c), name("im", r, c))
			}
		}
	case OutputIntensity:
		for r := range n {
			for c := range n {
				t.out = append(t.out, name("p", r, c))
			}
		}
	case OutputAmplitude:
		for r := range n {
			for c := range n {
				t.out = append(t.out, name("a", r, c))
			}
		}
	case OutputCamera:
		s := t.cam.side
		for r := range s {
			for c := range s {
				t.out = append(t.out, name("cam", r, c))
			}
		}
	}
	t.pool.New = func() any {
		w := &work{
			buf: make([]complex128, m*m),
			u1:  make([]complex128, n*n), u2: make([]complex128, n*n), g: make([]complex128, n*n),
			psi: make([]float64, n*n), d: make([]float64, n*n), gp: make([]float64, n*n),
			pw: make([]float64, n*n), tmp: make([]float64, n),
		}
		if mp > 1 {
			w.phi = make([]float64, n*n)
		}
		w.rng = rand.New(&w.pcg)
		return w
	}
	return t, nil
}

// coord is the position of cell centre i along either axis, the optical
// axis through the middle of the grid.
func (t *Twin) coord(i int) float64 { return (float64(i) - float64(t.n-1)/2) * t.cfg.Pitch }

// Config returns the configuration the twin was built with.
func (t *Twin) Config() Config {
	c := t.cfg
	c.LUT = append([]float64(nil), c.LUT...)
	c.Aberration = append([]Zernike(nil), c.Aberration...)
	return c
}

// FFTSize returns the side of the padded transforms.
func (t *Twin) FFTSize() int { return t.prop.m }

// Spec describes the twin: N² (or (N/macro_pixel)²) phases in [0, 2π] rad
// and the outputs of the configured mode.
func (t *Twin) Spec() insitu.Spec {
	return insitu.Spec{Name: "owms", In: t.space.Clone(), Out: append([]string(nil), t.out...)}
}

// Skip moves the query counter, which indexes the noise streams, on by n
// (insitu.Sequenced): a resumed run's next query gets the noise it had in
// the uninterrupted run.
func (t *Twin) Skip(n uint64) { t.next.Add(n) }

// Query applies the phases x and returns the output of the configured mode
// (with fresh camera noise, in camera mode). x must lie in the input box.
func (t *Twin) Query(ctx context.Context, x []float64) ([]float64, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("owms: %w", err)
	}
	if err := t.space.Contains(x); err != nil {
		return nil, fmt.Errorf("owms: %w", err)
	}
	k := t.next.Add(1) - 1
	w := t.pool.Get().(*work)
	defer t.pool.Put(w)
	return t.query(w, x, k), nil
}

// QueryBatch answers xs on runtime.GOMAXPROCS goroutines. The results,
// camera noise included, are bit-identical to calling Query on each x in
// order: the batch takes the next len(xs) query indices. Every x is checked
// before anything runs; on cancellation the indices stay used.
func (t *Twin) QueryBatch(ctx context.Context, xs [][]float64) ([][]float64, error) {
	ys := make([][]float64, len(xs))
	err := batch.Run(ctx, "owms", t.space, &t.next, xs, 0, func(_ context.Context, i int, k uint64) error {
		w := t.pool.Get().(*work)
		defer t.pool.Put(w)
		ys[i] = t.query(w, xs[i], k)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return ys, nil
}

// forward computes the applied phases, U_1 and U_2 of x into w.
func (t *Twin) forward(w *work, x []float64) {
	if t.mp > 1 {
		for r := range t.n {
			row := x[(r/t.mp)*t.nc:]
			for c := range t.n {
				w.phi[r*t.n+c] = row[c/t.mp]
			}
		}
		x = w.phi
	}
	t.slm.apply(x, w.psi, w.d, w.tmp)
	for i, a := range t.ab { // a constant phase: the VJP's ∂ψ/∂φ is unchanged
		w.psi[i] += a
	}
	for i, p := range w.psi {
		s, c := math.Sincos(p)
		w.u1[i] = t.uin[i] * complex(c, s)
	}
	t.prop.run(w.buf, w.u1, w.u2, false)
}

// query runs query number k.
func (t *Twin) query(w *work, x []float64, k uint64) []float64 {
	t.forward(w, x)
	if t.cam == nil {
		return t.represent(w.u2)
	}
	t.power(w.u2, w.pw)
	y := make([]float64, len(t.out))
	if t.cam.noisy {
		// One stream per query index: reproducible whatever the order in
		// which concurrent workers run.
		splitmix.QueryPCG(&w.pcg, t.noiseSeed, k)
	}
	if s := t.cam.capture(w.pw, y, w.rng); s > 0 {
		t.satQ.Add(1)
		t.satPx.Add(uint64(s))
	}
	return y
}

// power fills pw with the power |u|²·dA in each cell.
func (t *Twin) power(u []complex128, pw []float64) {
	for i, v := range u {
		pw[i] = sq(v) * t.dA
	}
}

// represent returns field u in the noiseless output representation.
func (t *Twin) represent(u []complex128) []float64 {
	y := make([]float64, len(t.out))
	switch t.cfg.Output {
	case OutputField:
		s := math.Sqrt(t.dA)
		for i, v := range u {
			y[2*i], y[2*i+1] = real(v)*s, imag(v)*s
		}
	case OutputIntensity:
		for i, v := range u {
			y[i] = sq(v) * t.dA
		}
	case OutputAmplitude:
		s := math.Sqrt(t.dA)
		for i, v := range u {
			y[i] = cmplx.Abs(v) * s
		}
	case OutputCamera:
		pw := make([]float64, len(u))
		t.power(u, pw)
		t.cam.expected(pw, y)
	}
	return y
}

func sq(v complex128) float64 { return real(v)*real(v) + imag(v)*imag(v) }

// VJP returns J(x)ᵀ·v for the noiseless map x ↦ output (see the package
// comment for camera output and quantization). It costs one forward and
// one adjoint propagation: the optics is linear in the field, so the
// adjoint is the correlation with the kernel, an FFT product with the
// conjugate spectrum.
func (t *Twin) VJP(ctx context.Context, x, v []float64) ([]float64, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("owms: %w", err)
	}
	if err := t.space.Contains(x); err != nil {
		return nil, fmt.Errorf("owms: %w", err)
	}
	if len(v) != len(t.out) {
		return nil, fmt.Errorf("owms: cotangent has %d components, want %d", len(v), len(t.out))
	}
	for i, vi := range v {
		if math.IsNaN(vi) || math.IsInf(vi, 0) {
			return nil, fmt.Errorf("owms: cotangent component %d (%s) is %v", i, t.out[i], vi)
		}
	}
	w := t.pool.Get().(*work)
	defer t.pool.Put(w)
	t.forward(w, x)
	// Cotangent of U_2 such that Σ v·dy = Re Σ conj(g)·dU_2.
	switch t.cfg.Output {
	case OutputField:
		s := math.Sqrt(t.dA)
		for i := range w.g {
			w.g[i] = complex(s*v[2*i], s*v[2*i+1])
		}
	case OutputIntensity:
		for i, u := range w.u2 {
			w.g[i] = complex(2*t.dA*v[i], 0) * u
		}
	case OutputAmplitude:
		// ∂|U|/∂U along dU is Re(conj(U/|U|)·dU).
		s := math.Sqrt(t.dA)
		for i, u := range w.u2 {
			if a := cmplx.Abs(u); a > 0 {
				w.g[i] = complex(s*v[i]/a, 0) * u
			} else {
				w.g[i] = 0
			}
		}
	case OutputCamera:
		c := t.cam
		s := 2 * t.dA * c.cfg.Gain * c.cfg.Exposure
		for r := range t.n {
			for col := range t.n {
				i := r*t.n + col
				w.g[i] = complex(s*v[(r/c.b)*c.side+col/c.b], 0) * w.u2[i]
			}
		}
	}
	t.prop.run(w.buf, w.g, w.g, true)
	// dU_1 = i·U_1·dψ, so ∂L/∂ψ = Re(conj(g)·i·U_1) = Im(conj(U_1)·g).
	for i, u := range w.u1 {
		w.gp[i] = imag(cmplx.Conj(u) * w.g[i])
	}
	t.slm.adjoint(w.gp, w.d, w.tmp)
	if t.mp == 1 {
		return append([]float64(nil), w.gp...), nil
	}
	// A macro-pixel's phase moves all its pixels: its derivative is the sum.
	g := make([]float64, t.nc*t.nc)
	for r := range t.n {
		row := g[(r/t.mp)*t.nc:]
		for c := range t.n {
			row[c/t.mp] += w.gp[r*t.n+c]
		}
	}
	return g, nil
}

// Field returns the noiseless output field U_2 of phases x (N×N
// row-major, in √W/m with unit input power). x must have the input's
// length but need not lie in the box.
func (t *Twin) Field(x []float64) []complex128 {
	t.mustLen("Field", x)
	w := t.pool.Get().(*work)
	defer t.pool.Put(w)
	t.forward(w, x)
	return append([]complex128(nil), w.u2...)
}

// InputField returns a copy of the input Gaussian U_in.
func (t *Twin) InputField() []complex128 { return append([]complex128(nil), t.uin...) }

// TargetField returns a copy of the target field, unit power on the grid.
func (t *Twin) TargetField() []complex128 { return append([]complex128(nil), t.target...) }

// Target returns the two-spot target in the twin's noiseless output
// representation (for camera output the expected image, unrounded and
// unclipped). The target is fixed by the configuration, so the seed is
// ignored and xRef is nil: no phase pattern is known to reach it exactly.
func (t *Twin) Target(seed uint64) (xRef, y []float64) { return nil, t.represent(t.target) }

// Spots returns the outputs inside the target spots (insitu.Spotter): for
// intensity, amplitude and camera output, the pixels whose centre lies within
// target_waist of a spot's centre, where the target puts 1 − 1/e² ≈ 86 %
// of each spot's power. Nil for field output, which no camera measures.
func (t *Twin) Spots() []int {
	b, side := 1, t.n
	switch t.cfg.Output {
	case OutputCamera:
		b, side = t.cam.b, t.cam.side
	case OutputIntensity, OutputAmplitude:
	default:
		return nil
	}
	var idx []int
	wt := t.cfg.TargetWaist
	for r := range side {
		y := (float64(r*b) + float64(b-1)/2 - float64(t.n-1)/2) * t.cfg.Pitch
		for c := range side {
			x := (float64(c*b) + float64(b-1)/2 - float64(t.n-1)/2) * t.cfg.Pitch
			for _, x0 := range []float64{-t.cfg.TargetOffset, t.cfg.TargetOffset} {
				if (x-x0)*(x-x0)+y*y <= wt*wt {
					idx = append(idx, r*side+c)
					break
				}
			}
		}
	}
	return idx
}

// Losses returns the two figures of merit of phases x on the noiseless
// field: the area-weighted field L2 loss √(Σ|U_2 − U_t|²·dA) and the
// intensity L2 loss √(Σ(|U_2|² − |U_t|²)²)·dA (the latter in units of pixel
// power, like output mode intensity).
func (t *Twin) Losses(x []float64) (field, intensity float64) {
	u := t.Field(x)
	var sf, si float64
	for i, v := range u {
		sf += sq(v - t.target[i])
		d := sq(v) - sq(t.target[i])
		si += d * d
	}
	return math.Sqrt(sf * t.dA), math.Sqrt(si) * t.dA
}

// Image returns the camera image of phases x as query number k would see
// it, and how many pixels saturated, without using up a query index or
// counting towards Saturation. It panics unless the output mode is camera.
func (t *Twin) Image(x []float64, k uint64) (img []float64, saturated int) {
	t.mustLen("Image", x)
	if t.cam == nil {
		panic("owms: Image: output mode is " + t.cfg.Output + ", not camera")
	}
	w := t.pool.Get().(*work)
	defer t.pool.Put(w)
	t.forward(w, x)
	t.power(w.u2, w.pw)
	img = make([]float64, len(t.out))
	if t.cam.noisy {
		splitmix.QueryPCG(&w.pcg, t.noiseSeed, k)
	}
	return img, t.cam.capture(w.pw, img, w.rng)
}

// Saturation returns how many camera queries had a saturated pixel, and
// how many pixels saturated in all, over the twin's life: the flag a bench
// operator would watch (the image itself is clipped).
func (t *Twin) Saturation() (queries, pixels uint64) { return t.satQ.Load(), t.satPx.Load() }

func (t *Twin) mustLen(method string, x []float64) {
	if len(x) != t.nc*t.nc {
		panic(fmt.Sprintf("owms: %s: %d phases, twin has %d", method, len(x), t.nc*t.nc))
	}
}
