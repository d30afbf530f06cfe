package pnn

import (
	"context"
	"fmt"
	"math"
	"math/cmplx"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/insitu-lab/insitu"
	"github.com/insitu-lab/insitu/internal/splitmix"
	"github.com/insitu-lab/insitu/simulators/batch"
	"github.com/insitu-lab/insitu/simulators/optics"
)

// Stream salts of pnn-optical.
const (
	saltOptBlocks     = 0x706e6e6f_00000001
	saltOptAberration = 0x706e6e6f_00000002
	saltOptNoise      = 0x706e6e6f_00000003
)

// OpticalConfig configures a pnn-optical twin. Lengths are in metres.
type OpticalConfig struct {
	N          int     `mapstructure:"n" doc:"SLM and detector grid side: θ has n² phases"`
	Pitch      float64 `mapstructure:"pitch" unit:"m" doc:"pixel pitch"`
	Wavelength float64 `mapstructure:"wavelength" unit:"m" doc:"wavelength λ"`
	Distance   float64 `mapstructure:"distance" unit:"m" doc:"propagation distance z (within the RS kernel's alias-free bound)"`
	Waist      float64 `mapstructure:"waist" unit:"m" doc:"input Gaussian waist (unit power)"`
	Inputs     int     `mapstructure:"inputs" doc:"du: data features u"`
	Block      int     `mapstructure:"block" doc:"side in pixels of the block each u_j scales; must divide n"`
	Classes    int     `mapstructure:"classes" doc:"C detector stripes (the columns split in C equal ranges)"`
	Gain       float64 `mapstructure:"gain" doc:"score = gain·power on the stripe"`
	Seed       uint64  `mapstructure:"seed" doc:"block choice, aberration and noise"`

	// MacroPixel drives the SLM in blocks of MacroPixel×MacroPixel pixels
	// that share one phase, as wavefront-shaping practice does: θ is then
	// (n/MacroPixel)² phases. It must divide n; 0 or 1: one per pixel.
	MacroPixel int `mapstructure:"macro_pixel" doc:"SLM driven in blocks of macro_pixel² pixels sharing one phase: θ is (n/macro_pixel)² phases"`

	// Reality gap, off by default. Eta, Crosstalk, Aberration and
	// DetectorShift change the system (VJP includes them); InputNoise is
	// fresh Gaussian noise on u at every query (VJP ignores it).
	Eta           float64 `mapstructure:"eta" doc:"reality gap: applied phase (1+η)·φ (a miscalibrated SLM)"`
	Crosstalk     float64 `mapstructure:"crosstalk" doc:"reality gap: κ, φ_i += κ·Σ over the 4 neighbours of (φ_j − φ_i)"`
	Aberration    float64 `mapstructure:"aberration" unit:"rad" doc:"reality gap: std of a fixed seeded phase error"`
	DetectorShift int     `mapstructure:"detector_shift" doc:"reality gap: detector stripes moved by this many columns"`
	InputNoise    float64 `mapstructure:"input_noise" doc:"std of Gaussian noise on u, every query"`
}

// DefaultOpticalConfig returns the ideal twin: 16×16 pixels of 20 µm,
// λ = 700 nm, z = 2 cm (alias-free bound 17.1 mm), waist 100 µm, 2 inputs
// on 4×4-pixel blocks, 2 classes (left/right halves), gain 10, seed 1.
func DefaultOpticalConfig() OpticalConfig {
	return OpticalConfig{N: 16, Pitch: 20e-6, Wavelength: 700e-9, Distance: 0.02, Waist: 100e-6,
		Inputs: 2, Block: 4, Classes: 2, Gain: 10, Seed: 1}
}

// Ideal returns c without its reality gap.
func (c OpticalConfig) Ideal() OpticalConfig {
	c.Eta, c.Crosstalk, c.Aberration, c.DetectorShift, c.InputNoise = 0, 0, 0, 0, 0
	return c
}

// MinDistance is the shortest z at which the sampled RS kernel does not
// alias: its local frequency at the largest displacement (n−1)·pitch stays
// below Nyquist, z ≥ (n−1)p·√((2p/λ)² − 1).
func (c OpticalConfig) MinDistance() float64 {
	r := 2 * c.Pitch / c.Wavelength
	if r <= 1 {
		return 0
	}
	return float64(c.N-1) * c.Pitch * math.Sqrt(r*r-1)
}

func (c OpticalConfig) problems() *insitu.Problems {
	p := &insitu.Problems{Kind: "pnn-optical"}
	nOK := c.N >= 2 && c.N <= 256
	if !nOK {
		p.Add("n", "must be in [2, 256], got %d", c.N)
	}
	for _, f := range []struct {
		k string
		v float64
	}{{"pitch", c.Pitch}, {"wavelength", c.Wavelength}, {"distance", c.Distance}, {"waist", c.Waist}, {"gain", c.Gain}} {
		if !finite(f.v) || f.v <= 0 {
			p.Add(f.k, "must be positive and finite, got %v", f.v)
		}
	}
	if nOK && finite(c.Distance) && c.Distance > 0 && c.Pitch > 0 && c.Wavelength > 0 && c.Distance < c.MinDistance() {
		p.Add("distance", "%v m is below the alias-free bound %v m for n = %d, pitch %v m, wavelength %v m", c.Distance, c.MinDistance(), c.N, c.Pitch, c.Wavelength)
	}
	blockOK := c.Block >= 1 && nOK && c.N%c.Block == 0
	if !blockOK {
		p.Add("block", "must be ≥ 1 and divide n = %d, got %d", c.N, c.Block)
	}
	if c.Inputs < 1 || (blockOK && c.Inputs > (c.N/c.Block)*(c.N/c.Block)) {
		p.Add("inputs", "must be in [1, (n/block)²], got %d", c.Inputs)
	}
	if c.MacroPixel < 0 || (nOK && c.MacroPixel > 0 && c.N%c.MacroPixel != 0) {
		p.Add("macro_pixel", "must divide n = %d (0 or 1: one phase per pixel), got %d", c.N, c.MacroPixel)
	}
	if c.Classes < 1 || (nOK && c.Classes > c.N) {
		p.Add("classes", "must be in [1, n = %d], got %d", c.N, c.Classes)
	}
	if !finite(c.Eta) || c.Eta <= -1 {
		p.Add("eta", "must be finite and > −1, got %v", c.Eta)
	}
	if !finite(c.Crosstalk) || c.Crosstalk < 0 || c.Crosstalk > 0.25 {
		p.Add("crosstalk", "must be in [0, 0.25], got %v", c.Crosstalk)
	}
	if !finite(c.Aberration) || c.Aberration < 0 {
		p.Add("aberration", "must be a finite standard deviation ≥ 0 (rad), got %v", c.Aberration)
	}
	if nOK && (c.DetectorShift <= -c.N || c.DetectorShift >= c.N) {
		p.Add("detector_shift", "must be in (−n, n) = (−%d, %d) pixels, got %d", c.N, c.N, c.DetectorShift)
	}
	if !finite(c.InputNoise) || c.InputNoise < 0 {
		p.Add("input_noise", "must be a finite standard deviation ≥ 0, got %v", c.InputNoise)
	}
	return p
}

// Validate reports every problem, each a *ConfigError naming its key.
func (c OpticalConfig) Validate() error { return c.problems().Err() }

// OpticalTwin is the pnn-optical twin. It is safe for concurrent use.
type OpticalTwin struct {
	cfg      OpticalConfig
	n, du, m int
	mp, nc   int // macro-pixel side, phases per side (n/mp)
	dA       float64
	uin      []complex128 // input Gaussian, from optics.Twin
	block    []int        // pixel → input index, −1 outside every block
	det      []int        // pixel → class, −1 outside every stripe
	aber     []float64    // fixed phase error
	fft      *optics.FFT2
	spec     []complex128 // RS kernel transform (not scaled: FFT2.Inverse normalizes)
	space    insitu.Space
	out      []string
	next     atomic.Uint64
	pool     sync.Pool // *owork
}

type owork struct {
	u           []float64
	phi         []float64 // n×n pixel phases, expanded from the macro-pixels
	psi, gp, gt []float64
	u1, u2, g   []complex128
	buf         []complex128
}

// NewOptical builds a pnn-optical twin.
func NewOptical(cfg OpticalConfig) (*OpticalTwin, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	n := cfg.N
	oc := optics.DefaultConfig()
	oc.N, oc.Pitch, oc.Wavelength, oc.Distance, oc.Waist = n, cfg.Pitch, cfg.Wavelength, cfg.Distance, cfg.Waist
	oc.Method, oc.Output, oc.Pad = optics.MethodRS, optics.OutputField, 0
	oc.TargetOffset, oc.TargetWaist = 0, cfg.Waist
	ot, err := optics.New(oc)
	if err != nil {
		return nil, fmt.Errorf("pnn-optical: %w", err)
	}
	m := ot.FFTSize()
	f, err := optics.NewFFT2(m)
	if err != nil {
		return nil, fmt.Errorf("pnn-optical: %w", err)
	}
	mp := max(1, cfg.MacroPixel)
	t := &OpticalTwin{cfg: cfg, n: n, du: cfg.Inputs, m: m, mp: mp, nc: n / mp, dA: cfg.Pitch * cfg.Pitch,
		uin: ot.InputField(), block: make([]int, n*n), det: make([]int, n*n), aber: make([]float64, n*n),
		fft: f, spec: make([]complex128, m*m)}

	// RS kernel h·dA on every displacement, as in package optics.
	k := 2 * math.Pi / cfg.Wavelength
	for i := -(n - 1); i <= n-1; i++ {
		for j := -(n - 1); j <= n-1; j++ {
			dx, dy, z := float64(j)*cfg.Pitch, float64(i)*cfg.Pitch, cfg.Distance
			r2 := dx*dx + dy*dy + z*z
			r := math.Sqrt(r2)
			s, c := math.Sincos(k * r)
			h := complex(z/(2*math.Pi*r2), 0) * complex(1/r, -k) * complex(c, s)
			t.spec[((i%m+m)%m)*m+(j%m+m)%m] = h * complex(t.dA, 0)
		}
	}
	f.Forward(t.spec)

	// Input blocks: the blocks nearest the axis (at least half of them, at
	// least du), shuffled by the seed; the first du carry u.
	b := cfg.Block
	nb := n / b
	type blk struct{ r, c int }
	all := make([]blk, 0, nb*nb)
	for r := range nb {
		for c := range nb {
			all = append(all, blk{r, c})
		}
	}
	rad := func(x blk) float64 {
		cy, cx := float64(x.r*b)+float64(b-1)/2-float64(n-1)/2, float64(x.c*b)+float64(b-1)/2-float64(n-1)/2
		return cx*cx + cy*cy
	}
	sort.SliceStable(all, func(i, j int) bool { return rad(all[i]) < rad(all[j]) })
	cand := all[:min(len(all), max(cfg.Inputs, (len(all)+1)/2))]
	rng := splitmix.Stream(cfg.Seed, saltOptBlocks)
	rng.Shuffle(len(cand), func(i, j int) { cand[i], cand[j] = cand[j], cand[i] })
	for i := range t.block {
		t.block[i] = -1
	}
	for j, bk := range cand[:cfg.Inputs] {
		for r := bk.r * b; r < (bk.r+1)*b; r++ {
			for c := bk.c * b; c < (bk.c+1)*b; c++ {
				t.block[r*n+c] = j
			}
		}
	}
	for r := range n {
		for c := range n {
			cd := c - cfg.DetectorShift
			t.det[r*n+c] = -1
			if cd >= 0 && cd < n {
				t.det[r*n+c] = cd * cfg.Classes / n
			}
		}
	}
	if cfg.Aberration > 0 {
		rng := splitmix.Stream(cfg.Seed, saltOptAberration)
		for i := range t.aber {
			t.aber[i] = cfg.Aberration * rng.NormFloat64()
		}
	}
	t.space = space(cfg.Inputs, t.nc*t.nc, 0, 2*math.Pi, "rad", true)
	t.out = outNames(cfg.Classes)
	t.pool.New = func() any {
		return &owork{u: make([]float64, cfg.Inputs), phi: make([]float64, n*n), psi: make([]float64, n*n), gp: make([]float64, n*n), gt: make([]float64, n*n),
			u1: make([]complex128, n*n), u2: make([]complex128, n*n), g: make([]complex128, n*n), buf: make([]complex128, m*m)}
	}
	return t, nil
}

// Config returns the configuration.
func (t *OpticalTwin) Config() OpticalConfig { return t.cfg }

// Ideal returns the twin built from the same configuration without the
// reality gap (same blocks and detector layout, unshifted).
func (t *OpticalTwin) Ideal() *OpticalTwin {
	it, err := NewOptical(t.cfg.Ideal())
	if err != nil {
		panic("pnn-optical: ideal config invalid: " + err.Error()) // cannot happen
	}
	return it
}

// Split returns du and dθ = (n/macro_pixel)².
func (t *OpticalTwin) Split() (du, dtheta int) { return t.du, t.nc * t.nc }

// Classes returns C.
func (t *OpticalTwin) Classes() int { return t.cfg.Classes }

// Blocks returns, per pixel (row-major), the index of the input that scales
// it, or −1.
func (t *OpticalTwin) Blocks() []int { return append([]int(nil), t.block...) }

// Detectors returns, per pixel, the class whose stripe collects it, or −1.
func (t *OpticalTwin) Detectors() []int { return append([]int(nil), t.det...) }

// Spec: inputs u0… ∈ [−1,1], theta0… = SLM phases in [0, 2π]; outputs c0….
func (t *OpticalTwin) Spec() insitu.Spec { return copySpec("pnn-optical", t.space, t.out) }

// Skip moves the query counter, which indexes the noise streams, on by n
// (insitu.Sequenced): a resumed run's next query gets the noise it had in
// the uninterrupted run.
func (t *OpticalTwin) Skip(n uint64) { t.next.Add(n) }

// Query returns the class scores of x = [u; θ] (with input noise, when on).
func (t *OpticalTwin) Query(ctx context.Context, x []float64) ([]float64, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("pnn-optical: %w", err)
	}
	if err := t.space.Contains(x); err != nil {
		return nil, fmt.Errorf("pnn-optical: %w", err)
	}
	k := t.next.Add(1) - 1
	return t.eval(x, k, true), nil
}

// QueryBatch answers xs in parallel, bit-identical to Query in order.
func (t *OpticalTwin) QueryBatch(ctx context.Context, xs [][]float64) ([][]float64, error) {
	ys := make([][]float64, len(xs))
	if err := batch.Run(ctx, "pnn-optical", t.space, &t.next, xs, 0, func(_ context.Context, i int, k uint64) error {
		ys[i] = t.eval(xs[i], k, true)
		return nil
	}); err != nil {
		return nil, err
	}
	return ys, nil
}

// Noiseless returns the scores of x without input noise: the map VJP
// differentiates. x need not lie in the box.
func (t *OpticalTwin) Noiseless(x []float64) []float64 {
	if len(x) != t.space.Dim() {
		panic(fmt.Sprintf("pnn-optical: Noiseless: input of length %d, want %d", len(x), t.space.Dim()))
	}
	return t.eval(x, 0, false)
}

// Field returns the noiseless detector-plane field of x (n×n row-major).
func (t *OpticalTwin) Field(x []float64) []complex128 {
	if len(x) != t.space.Dim() {
		panic(fmt.Sprintf("pnn-optical: Field: input of length %d, want %d", len(x), t.space.Dim()))
	}
	w := t.pool.Get().(*owork)
	defer t.pool.Put(w)
	t.forward(w, x, 0, false)
	return append([]complex128(nil), w.u2...)
}

func (t *OpticalTwin) eval(x []float64, k uint64, noisy bool) []float64 {
	w := t.pool.Get().(*owork)
	defer t.pool.Put(w)
	t.forward(w, x, k, noisy)
	y := make([]float64, t.cfg.Classes)
	for i, v := range w.u2 {
		if c := t.det[i]; c >= 0 {
			y[c] += real(v)*real(v) + imag(v)*imag(v)
		}
	}
	for c := range y {
		y[c] *= t.dA * t.cfg.Gain
	}
	return y
}

// phases sets ψ = (1+η)·(φ + κ·Lφ) + aberration, L the 4-neighbour
// Laplacian (symmetric, so it is its own adjoint).
func (t *OpticalTwin) phases(phi, psi []float64) {
	a, kap := 1+t.cfg.Eta, t.cfg.Crosstalk
	if kap == 0 {
		for i, p := range phi {
			psi[i] = a*p + t.aber[i]
		}
		return
	}
	t.laplace(phi, psi)
	for i, p := range phi {
		psi[i] = a*(p+kap*psi[i]) + t.aber[i]
	}
}

// laplace sets out = L·in: Σ_{4 neighbours}(in_j − in_i).
func (t *OpticalTwin) laplace(in, out []float64) {
	n := t.n
	for r := range n {
		for c := range n {
			i := r*n + c
			var s float64
			if r > 0 {
				s += in[i-n] - in[i]
			}
			if r < n-1 {
				s += in[i+n] - in[i]
			}
			if c > 0 {
				s += in[i-1] - in[i]
			}
			if c < n-1 {
				s += in[i+1] - in[i]
			}
			out[i] = s
		}
	}
}

// forward computes U_1 = U_in·A(u)·e^{iψ(θ)} and U_2 = P·U_1 into w.
func (t *OpticalTwin) forward(w *owork, x []float64, k uint64, noisy bool) {
	copy(w.u, x[:t.du])
	if noisy && t.cfg.InputNoise > 0 {
		rng := splitmix.Query(t.cfg.Seed, saltOptNoise, k)
		for j := range w.u {
			w.u[j] += t.cfg.InputNoise * rng.NormFloat64()
		}
	}
	phi := x[t.du:]
	if t.mp > 1 {
		t.expand(phi, w.phi)
		phi = w.phi
	}
	t.phases(phi, w.psi)
	for i, p := range w.psi {
		s, c := math.Sincos(p)
		a := 1.0
		if j := t.block[i]; j >= 0 {
			a = (1 + w.u[j]) / 2
		}
		w.u1[i] = t.uin[i] * complex(a*c, a*s)
	}
	t.propagate(w.buf, w.u1, w.u2, false)
}

// expand sets the n×n pixel phases phi from the (n/mp)² controls th.
func (t *OpticalTwin) expand(th, phi []float64) {
	for r := range t.n {
		row := th[(r/t.mp)*t.nc : (r/t.mp+1)*t.nc]
		for c := range t.n {
			phi[r*t.n+c] = row[c/t.mp]
		}
	}
}

// propagate runs the RS convolution (or its adjoint, with the conjugate
// spectrum) from in to out through the padded buffer.
func (t *OpticalTwin) propagate(buf, in, out []complex128, adjoint bool) {
	n, m := t.n, t.m
	clear(buf)
	for r := range n {
		copy(buf[r*m:r*m+n], in[r*n:(r+1)*n])
	}
	t.fft.Forward(buf)
	for i, s := range t.spec {
		if adjoint {
			s = cmplx.Conj(s)
		}
		buf[i] *= s
	}
	t.fft.Inverse(buf)
	for r := range n {
		copy(out[r*n:(r+1)*n], buf[r*m:r*m+n])
	}
}

// VJP returns J(x)ᵀ·v of the noiseless map x = [u; θ] ↦ scores (every
// system-changing reality-gap option included). The field is linear in
// U_1, so one forward and one adjoint propagation give it exactly.
func (t *OpticalTwin) VJP(ctx context.Context, x, v []float64) ([]float64, error) {
	if err := checkVJP(ctx, "pnn-optical", t.space, t.out, x, v); err != nil {
		return nil, err
	}
	w := t.pool.Get().(*owork)
	defer t.pool.Put(w)
	t.forward(w, x, 0, false)
	// Σ v·dy = Re Σ conj(g)·dU_2 with g = 2·dA·gain·v_c·U_2.
	s := 2 * t.dA * t.cfg.Gain
	for i, u := range w.u2 {
		w.g[i] = 0
		if c := t.det[i]; c >= 0 {
			w.g[i] = complex(s*v[c], 0) * u
		}
	}
	t.propagate(w.buf, w.g, w.g, true)
	gr := make([]float64, t.du+t.n*t.n) // pixel θ-gradient first; summed over macro-pixels below
	for i, u := range w.u1 {
		w.gp[i] = imag(cmplx.Conj(u) * w.g[i]) // ∂/∂ψ
		if j := t.block[i]; j >= 0 {
			// U_1 = U_in·e^{iψ}·(1+u_j)/2: ∂/∂u_j = ½·Re(conj(g)·U_in·e^{iψ}).
			sn, cs := math.Sincos(w.psi[i])
			gr[j] += 0.5 * real(cmplx.Conj(w.g[i])*t.uin[i]*complex(cs, sn))
		}
	}
	a := 1 + t.cfg.Eta
	th := gr[t.du:]
	if kap := t.cfg.Crosstalk; kap > 0 {
		t.laplace(w.gp, w.gt)
		for i, g := range w.gp {
			th[i] = a * (g + kap*w.gt[i])
		}
	} else {
		for i, g := range w.gp {
			th[i] = a * g
		}
	}
	if t.mp == 1 {
		return gr, nil
	}
	// A macro-pixel's phase moves all its pixels: its derivative is the sum.
	out := make([]float64, t.space.Dim())
	copy(out, gr[:t.du])
	for r := range t.n {
		for c := range t.n {
			out[t.du+(r/t.mp)*t.nc+c/t.mp] += th[r*t.n+c]
		}
	}
	return out, nil
}

func init() {
	insitu.RegisterKeys("pnn-optical", func() any { c := DefaultOpticalConfig(); return &c })
	insitu.Register("pnn-optical", func(_ context.Context, p insitu.Params) (insitu.BlackBox, error) {
		cfg := DefaultOpticalConfig()
		if err := p.Decode(&cfg); err != nil {
			return nil, err
		}
		if err := cfg.problems().In(p); err != nil {
			return nil, err
		}
		return NewOptical(cfg)
	})
}
