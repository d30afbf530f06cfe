package bench

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"

	"github.com/insitu-lab/insitu"
	"github.com/insitu-lab/insitu/instruments/camera"
	"github.com/insitu-lab/insitu/instruments/rig"
	"github.com/insitu-lab/insitu/instruments/slm"
	"github.com/insitu-lab/insitu/simulators/optics"
)

// FourierSource is the frame source of a camera in the Fourier plane of a
// lens behind the SLM, the usual holography bench (slmsuite's FourierSLM):
// `backend: {type: memory, source: fourier, width: W, height: H, scene:
// {...}}` with the keys of FourierConfig.
const FourierSource = "fourier"

func init() {
	rig.RegisterScene(FourierSource, rig.Scene{
		Check: func(p insitu.Params) error { _, err := DecodeFourier(p); return err },
		Open: func(built map[string]rig.Part, w, h int, p insitu.Params) (camera.FrameFunc, error) {
			c, err := DecodeFourier(p)
			if err != nil {
				return nil, err
			}
			s, err := findSLM(built)
			if err != nil {
				return nil, fmt.Errorf("fourier frame source: %w", err)
			}
			f, err := NewFourier(c, s, w, h)
			if err != nil {
				return nil, err
			}
			return f.Frame, nil
		},
	})
}

// FourierConfig is the geometry, light and noise of the Fourier-plane
// scene; the keys of a memory camera's scene section. The camera sees the
// far field of the SLM pattern: the light a grating of spatial frequency
// k (cycles per SLM pixel, x along the SLM's columns) sends off lands at
// camera pixel
//
//	[u, v] = offset + S·R(rotation)·F·k,  S = focal_length·wavelength / (slm_pitch·pixel_pitch)
//
// (F mirrors x when flip is set): Map gives it. Lengths are in metres.
type FourierConfig struct {
	SLMPitch    float64   `mapstructure:"slm_pitch"`    // the SLM's pixel pitch (8 µm)
	Wavelength  float64   `mapstructure:"wavelength"`   // 633 nm
	FocalLength float64   `mapstructure:"focal_length"` // the Fourier lens (10 mm)
	PixelPitch  float64   `mapstructure:"pixel_pitch"`  // the camera's (5.5 µm)
	Rotation    float64   `mapstructure:"rotation"`     // of the camera about the optical axis, degrees
	Offset      []float64 `mapstructure:"offset"`       // camera pixel (x, y) of the optical axis; default the sensor's centre
	Flip        bool      `mapstructure:"flip"`         // a mirror in the path: x reversed

	// The light: a Gaussian beam of 1/e² radius Waist SLM pixels (0: a
	// quarter of the pattern's side) centred on the pattern, whose whole power reads
	// Power ADU at the camera's reference exposure. Every pixel gets
	// Background ADU of stray light on top.
	Waist      float64 `mapstructure:"waist"`
	Power      float64 `mapstructure:"power"`
	Background float64 `mapstructure:"background"`

	// Noise: shot noise (Poisson in Gain⁻¹ electrons per ADU) and Gaussian
	// read noise of ReadNoise ADU, a fresh seeded stream per frame.
	ShotNoise bool    `mapstructure:"shot_noise"`
	Gain      float64 `mapstructure:"gain"` // ADU per electron (1)
	ReadNoise float64 `mapstructure:"read_noise"`
	Seed      uint64  `mapstructure:"seed"`

	// Aberration is the SLM's own phase error: Zernike terms over the
	// disc inscribed in the pattern (optics.Zernike). What a wavefront
	// calibration measures.
	Aberration []optics.Zernike `mapstructure:"aberration"`
}

// DefaultFourier returns the defaults of the scene's keys.
func DefaultFourier() FourierConfig {
	return FourierConfig{SLMPitch: 8e-6, Wavelength: 633e-9, FocalLength: 0.01, PixelPitch: 5.5e-6, Power: 1e6, Gain: 1, Seed: 1}
}

// DecodeFourier decodes a scene section onto the defaults and checks it.
func DecodeFourier(p insitu.Params) (FourierConfig, error) {
	c := DefaultFourier()
	if err := p.Decode(&c); err != nil {
		return c, err
	}
	return c, c.problems().In(p)
}

func (c FourierConfig) problems() *insitu.Problems {
	ps := &insitu.Problems{Kind: "fourier"}
	bad := ps.Add
	for _, f := range []struct {
		key string
		v   float64
	}{{"slm_pitch", c.SLMPitch}, {"wavelength", c.Wavelength}, {"focal_length", c.FocalLength}, {"pixel_pitch", c.PixelPitch}, {"power", c.Power}, {"gain", c.Gain}} {
		if !(f.v > 0) || math.IsInf(f.v, 0) {
			bad(f.key, "must be positive and finite, got %v", f.v)
		}
	}
	for _, f := range []struct {
		key string
		v   float64
	}{{"waist", c.Waist}, {"background", c.Background}, {"read_noise", c.ReadNoise}} {
		if !(f.v >= 0) || math.IsInf(f.v, 0) {
			bad(f.key, "must be finite and ≥ 0, got %v", f.v)
		}
	}
	if math.IsNaN(c.Rotation) || math.IsInf(c.Rotation, 0) {
		bad("rotation", "must be finite (degrees), got %v", c.Rotation)
	}
	if len(c.Offset) != 0 && len(c.Offset) != 2 {
		bad("offset", "want [x, y] camera pixels, got %v", c.Offset)
	}
	for _, v := range c.Offset {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			bad("offset", "must be finite, got %v", c.Offset)
		}
	}
	if err := optics.CheckZernike(c.Aberration); err != nil {
		bad("aberration", "%v", err)
	}
	return ps
}

// Scale is S, camera pixels per cycle per SLM pixel.
func (c FourierConfig) Scale() float64 {
	return c.FocalLength * c.Wavelength / (c.SLMPitch * c.PixelPitch)
}

// Map is the scene's geometry on a w×h camera: the affine map of spatial
// frequency k (cycles per SLM pixel) to camera pixel A·k + b.
func (c FourierConfig) Map(w, h int) (A [2][2]float64, b [2]float64) {
	s, th := c.Scale(), c.Rotation*math.Pi/180
	sin, cos := math.Sincos(th)
	fx := 1.0
	if c.Flip {
		fx = -1
	}
	A = [2][2]float64{{s * cos * fx, -s * sin}, {s * sin * fx, s * cos}}
	b = [2]float64{float64(w-1) / 2, float64(h-1) / 2}
	if len(c.Offset) == 2 {
		b = [2]float64{c.Offset[0], c.Offset[1]}
	}
	return A, b
}

// Fourier is the scene: the far field of the pattern an SLM part shows on
// its memory display, sampled by a w×h camera.
//
// The far field F(k) = Σ U(x)·e^{−2πik·x} (unit power: Σ|U|² = 1, so
// ∫|F|²dk = 1 over one period) is computed by a separable matrix DFT on a
// grid of k aligned with the SLM's axes that covers what the camera sees,
// at a camera pixel and a quarter of the pattern's resolution 1/N,
// whichever is finer; each camera pixel interpolates |F|² there (bilinear).
type Fourier struct {
	cfg     FourierConfig
	w, h    int
	n       int // pattern side
	pattern func() []float64
	amp     []float64 // the beam's amplitude on the pattern, unit power
	ab      []float64 // aberration phase; nil: none
	gx, gy  int       // the k grid
	ex, ey  []complex128
	pos     [][2]float64 // each camera pixel's place on the k grid, in grid steps
	env     []float64    // each camera pixel's ADU per unit intensity density (pixel envelope and Jacobian included)
	frames  atomic.Uint64
	pool    sync.Pool
}

// maxGrid bounds the k grid's side: a camera seeing more of k-space than
// this samples is a configuration to reconsider (the scale is far too
// small for the sensor).
const maxGrid = 2048

// NewFourier builds the scene for SLM part s and a w×h camera. The SLM's
// own correction is applied, as the panel would (the panel is read
// through its LUT without the correction), so a wavefront correction can
// be tried on the scene's aberration.
func NewFourier(c FourierConfig, s rig.SLM, w, h int) (*Fourier, error) {
	if err := c.problems().Err(); err != nil {
		return nil, err
	}
	if _, ok := s.Display().(*slm.Memory); !ok {
		return nil, fmt.Errorf("fourier frame source: %v needs a memory display (display: {type: memory, ...})", s)
	}
	flat := s.Config()
	flat.Correction = nil
	dw, dh := s.Display().Size()
	ref, err := slm.New(slm.NewMemory(dw, dh), flat)
	if err != nil {
		return nil, fmt.Errorf("fourier frame source: %w", err)
	}
	phaseOf, err := GrayPhases(ref)
	if err != nil {
		return nil, err
	}
	pattern, err := panelPattern(s, phaseOf)
	if err != nil {
		return nil, fmt.Errorf("fourier frame source: %w", err)
	}
	n := s.Side()
	f := &Fourier{cfg: c, w: w, h: h, n: n, pattern: pattern}
	waist := c.Waist
	if waist == 0 {
		waist = float64(n) / 4
	}
	f.amp = make([]float64, n*n)
	var p float64
	half := float64(n-1) / 2
	for r := range n {
		for col := range n {
			x, y := float64(col)-half, float64(r)-half
			a := math.Exp(-(x*x + y*y) / (waist * waist))
			f.amp[r*n+col] = a
			p += a * a
		}
	}
	for i := range f.amp {
		f.amp[i] /= math.Sqrt(p)
	}
	f.ab = optics.Aberration(c.Aberration, n, float64(n)/2)

	// Each camera pixel looks at k = A⁻¹(u − b). Its share of the power is
	// |F(k)|² times its k-area |det A⁻¹|, times sinc²(kx)·sinc²(ky) for the
	// SLM pixels' square aperture.
	A, b := c.Map(w, h)
	det := A[0][0]*A[1][1] - A[0][1]*A[1][0]
	inv := [2][2]float64{{A[1][1] / det, -A[0][1] / det}, {-A[1][0] / det, A[0][0] / det}}
	ks := make([][2]float64, w*h)
	lo, hi := [2]float64{math.Inf(1), math.Inf(1)}, [2]float64{math.Inf(-1), math.Inf(-1)}
	for v := range h {
		for u := range w {
			du, dv := float64(u)-b[0], float64(v)-b[1]
			k := [2]float64{inv[0][0]*du + inv[0][1]*dv, inv[1][0]*du + inv[1][1]*dv}
			ks[v*w+u] = k
			for a := range 2 {
				lo[a], hi[a] = min(lo[a], k[a]), max(hi[a], k[a])
			}
		}
	}
	step := min(1/c.Scale(), 1/(4*float64(n)))
	f.gx = int(math.Ceil((hi[0]-lo[0])/step)) + 2
	f.gy = int(math.Ceil((hi[1]-lo[1])/step)) + 2
	if f.gx > maxGrid || f.gy > maxGrid {
		return nil, fmt.Errorf("fourier frame source: the %d×%d camera sees k from %.3g to %.3g cycles per SLM pixel: more than a %d² grid at %.3g resolves (scale %.4g px per cycle per pixel is too small, or the pattern too large)",
			w, h, lo, hi, maxGrid, step, c.Scale())
	}
	axis := func(g int, k0 float64) []complex128 {
		e := make([]complex128, g*n)
		for i := range g {
			k := k0 + float64(i)*step
			for x := range n {
				s, co := math.Sincos(-2 * math.Pi * k * (float64(x) - half))
				e[i*n+x] = complex(co, s)
			}
		}
		return e
	}
	f.ex, f.ey = axis(f.gx, lo[0]), axis(f.gy, lo[1])
	f.pos, f.env = make([][2]float64, w*h), make([]float64, w*h)
	for i, k := range ks {
		f.pos[i] = [2]float64{(k[0] - lo[0]) / step, (k[1] - lo[1]) / step}
		sx, sy := sinc(k[0]), sinc(k[1])
		f.env[i] = c.Power * sx * sx * sy * sy / math.Abs(det)
	}
	f.pool.New = func() any {
		return &work{t: make([]complex128, n*f.gx), f: make([]complex128, f.gx), d: make([]float64, f.gx*f.gy), u: make([]complex128, n*n)}
	}
	return f, nil
}

type work struct {
	u []complex128 // the field on the pattern
	t []complex128 // rows transformed along x: n × gx
	f []complex128 // one row of the far field: gx
	d []float64    // |F|² on the grid
}

func sinc(x float64) float64 {
	if x == 0 {
		return 1
	}
	return math.Sin(math.Pi*x) / (math.Pi * x)
}

// Frame renders the camera frame (ADU at the reference exposure) of the
// pattern the panel shows now.
func (f *Fourier) Frame(ctx context.Context, dst []float64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(dst) != f.w*f.h {
		return fmt.Errorf("fourier frame source: %d pixels, want %d×%d", len(dst), f.w, f.h)
	}
	phase := f.pattern()
	wk := f.pool.Get().(*work)
	defer f.pool.Put(wk)
	n, gx, gy := f.n, f.gx, f.gy
	for i, ph := range phase {
		if f.ab != nil {
			ph += f.ab[i]
		}
		s, co := math.Sincos(ph)
		wk.u[i] = complex(f.amp[i]*co, f.amp[i]*s)
	}
	// T = U·Exᵀ (n × gx), then |F|² = |Ey·T|² (gy × gx). Plain loops: gonum's
	// complex GEMM is pure Go and measured slower here (BenchmarkFourierFrame).
	for y := range n {
		row := wk.u[y*n : (y+1)*n]
		for i := range gx {
			e := f.ex[i*n : (i+1)*n]
			var acc complex128
			for x, v := range row {
				acc += v * e[x]
			}
			wk.t[y*gx+i] = acc
		}
	}
	acc := wk.f
	for j := range gy {
		clear(acc)
		e := f.ey[j*n : (j+1)*n]
		for y, ey := range e {
			t := wk.t[y*gx : (y+1)*gx]
			for i, v := range t {
				acc[i] += ey * v
			}
		}
		for i, v := range acc {
			wk.d[j*gx+i] = real(v)*real(v) + imag(v)*imag(v)
		}
	}
	cfg := f.cfg
	var rng *rand.Rand
	if cfg.ShotNoise || cfg.ReadNoise > 0 {
		k := f.frames.Add(1)
		rng = rand.New(rand.NewPCG(cfg.Seed, 0x666f7572_00000000^k))
	}
	for i, p := range f.pos {
		v := f.env[i]*bilinear(wk.d, gx, p[0], p[1]) + cfg.Background
		if cfg.ShotNoise {
			v = cfg.Gain * poissonADU(rng, v/cfg.Gain)
		}
		if cfg.ReadNoise > 0 {
			v += cfg.ReadNoise * rng.NormFloat64()
		}
		dst[i] = v
	}
	return nil
}

// bilinear interpolates the gx-wide grid d at (x, y), inside it.
func bilinear(d []float64, gx int, x, y float64) float64 {
	i, j := int(x), int(y)
	fx, fy := x-float64(i), y-float64(j)
	at := func(i, j int) float64 { return d[j*gx+i] }
	return (1-fy)*((1-fx)*at(i, j)+fx*at(i+1, j)) + fy*((1-fx)*at(i, j+1)+fx*at(i+1, j+1))
}

// poissonADU draws a Poisson count of mean mu (electrons): exactly below
// 30, from the rounded Gaussian above.
func poissonADU(rng *rand.Rand, mu float64) float64 {
	if mu <= 0 {
		return 0
	}
	if mu < 30 {
		l, k, p := math.Exp(-mu), 0, rng.Float64()
		for p > l {
			k++
			p *= rng.Float64()
		}
		return float64(k)
	}
	return max(0, math.Round(mu+math.Sqrt(mu)*rng.NormFloat64()))
}

// Aberration returns the scene's aberration phase on the pattern (N·macro
// pixels square, row-major), nil when it has none: the truth a wavefront
// calibration is checked against.
func (f *Fourier) Aberration() []float64 { return append([]float64(nil), f.ab...) }
