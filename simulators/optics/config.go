package optics

import (
	"context"
	"math"

	"github.com/insitu-lab/insitu"
)

// Target phases.
const (
	TargetFlat   = "flat"   // real, positive target field
	TargetTilted = "tilted" // each spot tilted as a beam from the SLM's centre arrives
)

// Propagation methods.
const (
	MethodRS      = "rs"      // Rayleigh–Sommerfeld impulse response, linear convolution (default)
	MethodAngular = "angular" // angular spectrum; for short distances, where the sampled RS kernel aliases less well
)

// Output modes: what a query returns.
const (
	OutputField     = "field"     // 2·N² reals: Re and Im of U_out·√dA, interleaved per pixel
	OutputIntensity = "intensity" // N² reals: |U_out|²·dA, the power in each pixel (noiseless)
	OutputAmplitude = "amplitude" // N² reals: |U_out|·√dA, the square root of each pixel's power (noiseless)
	OutputCamera    = "camera"    // camera image in ADU: binned intensity with exposure, gain, noise, bit depth, saturation
)

// Config holds the parameters of a twin. The mapstructure tags are the keys
// of a configuration file's blackbox section. Lengths are in metres.
type Config struct {
	N          int     `mapstructure:"n" doc:"SLM and output grid side: N² phases"`
	Pitch      float64 `mapstructure:"pitch" unit:"m" doc:"pixel pitch of the SLM and output grid"`
	Wavelength float64 `mapstructure:"wavelength" unit:"m" doc:"vacuum wavelength λ"`
	Distance   float64 `mapstructure:"distance" unit:"m" doc:"propagation distance z"`
	Waist      float64 `mapstructure:"waist" unit:"m" doc:"waist w0 of the input Gaussian (unit power)"`
	Method     string  `mapstructure:"method" doc:"propagation: rs (Rayleigh–Sommerfeld, linear convolution) or angular (angular spectrum)"`
	// Pad is the FFT side: 0 picks the smallest power of two ≥ 2N−1 (RS:
	// linear convolution without wrap-around) or ≥ 2N (angular).
	Pad int `mapstructure:"pad" doc:"FFT side; 0: the smallest power of two ≥ 2N−1 (rs) or ≥ 2N (angular)"`

	// The target: two unit-power Gaussians of waist TargetWaist at
	// x = ±TargetOffset, summed and normalized to unit power on the grid.
	TargetOffset float64 `mapstructure:"target_offset" unit:"m" doc:"the target's two Gaussians are at x = ±target_offset"`
	TargetWaist  float64 `mapstructure:"target_waist" unit:"m" doc:"waist of the target's Gaussians"`
	// TargetPhase is the target field's phase: flat (a real field), or
	// tilted, each spot carrying the tilt k·x·(±TargetOffset)/Distance of
	// a beam sent to it from the SLM's centre. Only the field loss sees
	// it: intensity and amplitude outputs ignore phase.
	TargetPhase string `mapstructure:"target_phase" doc:"the target field's phase: flat, or tilted as beams sent from the SLM's centre arrive (field output only)"`

	// SLM realism, off by default. A commanded phase φ ∈ [0, 2π] becomes a
	// gray level u = φ/2π ∈ [0, 1], rounded to 2^QuantizeBits levels when
	// QuantizeBits > 0; the LUT maps u to the phase actually applied
	// (piecewise linear through LUT[i] at u = i/(len−1); none: 2πu); and
	// Crosstalk blurs that phase pattern with a Gaussian of this sigma in
	// pixels (fringing fields).
	QuantizeBits int       `mapstructure:"quantize_bits" doc:"SLM phase quantization in bits; 0: none"`
	LUT          []float64 `mapstructure:"lut" doc:"SLM gray-to-phase LUT (gray levels and phases); empty: linear"`
	Crosstalk    float64   `mapstructure:"crosstalk" doc:"SLM pixel crosstalk κ: φ_i += κ·Σ over the 4 neighbours of (φ_j − φ_i)"`

	// MacroPixel groups the SLM into blocks of MacroPixel×MacroPixel
	// pixels that share one commanded phase, as wavefront-shaping practice
	// does: the input is then (N/MacroPixel)² phases. It must divide N;
	// 0 or 1: every pixel is its own control.
	MacroPixel int `mapstructure:"macro_pixel" doc:"SLM driven in blocks of macro_pixel² pixels sharing one phase: (N/macro_pixel)² inputs"`

	// Aberration is a phase error of the SLM plane, added to the phase the
	// SLM applies: Zernike terms over a disc of radius AberrationRadius
	// (metres; 0: half the grid's width) centred on the optical axis.
	// None by default.
	Aberration       []Zernike `mapstructure:"aberration" doc:"phase error of the SLM plane, Zernike terms added to the phase the SLM applies; none by default"`
	AberrationRadius float64   `mapstructure:"aberration_radius" unit:"m" doc:"radius of the aberration's disc, centred on the optical axis; 0: half the grid's width"`

	Output string       `mapstructure:"output" doc:"what the twin returns: field (complex, re_ and im_), amplitude (|U|·√dA), intensity or camera (an image with noise)"`
	Camera CameraConfig `mapstructure:"camera" doc:"the camera, when output is camera"`

	Seed uint64 `mapstructure:"seed" doc:"draws the camera's noise streams"`
}

// CameraConfig is the camera model of output mode camera. The expected
// count of a camera pixel holding power P (of the unit input power) is
// Gain·Exposure·P ADU; shot noise is Poisson in the Exposure·P electrons,
// read noise Gaussian in electrons, then the ADC rounds to integers and
// clips to [0, Saturation].
type CameraConfig struct {
	Binning   int     `mapstructure:"binning" doc:"grid cells per camera pixel side; must divide n"`
	Exposure  float64 `mapstructure:"exposure" doc:"photoelectrons per unit of pixel power"`
	Gain      float64 `mapstructure:"gain" doc:"ADU per electron"`
	ShotNoise bool    `mapstructure:"shot_noise" doc:"Poisson photon noise"`
	ReadNoise float64 `mapstructure:"read_noise" doc:"std of the read noise, in electrons"`
	BitDepth  int     `mapstructure:"bit_depth" doc:"ADC bits; 0: no rounding and no clipping"`
	// Saturation in ADU; 0 means 2^BitDepth − 1 (no saturation when
	// BitDepth is 0 too). Clipped pixels are counted: see Twin.Saturation.
	Saturation float64 `mapstructure:"saturation" doc:"full well in ADU; 0: 2^bit_depth − 1"`
}

// DefaultConfig returns the ideal twin of the OWMS task: 60×60 phases,
// pitch 10 µm, λ = 700 nm, z = 2 cm, waist 70 µm, Rayleigh–Sommerfeld on a
// 128² FFT, target spots at ±140 µm, no SLM imperfections, field output.
// The camera defaults model a 12-bit camera with a 20 000 e⁻ full well,
// whose brightest pixel under the unmodulated beam (≈1.3 % of the power)
// collects ≈13 000 e⁻.
func DefaultConfig() Config {
	return Config{
		N:            60,
		Pitch:        10e-6,
		Wavelength:   700e-9,
		Distance:     0.02,
		Waist:        70e-6,
		Method:       MethodRS,
		TargetOffset: 140e-6,
		TargetWaist:  70e-6,
		TargetPhase:  TargetFlat,
		MacroPixel:   1,
		Output:       OutputField,
		Camera: CameraConfig{
			Binning:   1,
			Exposure:  1e6,
			Gain:      4095.0 / 20000,
			ShotNoise: true,
			ReadNoise: 5,
			BitDepth:  12,
		},
		Seed: 1,
	}
}

// Limits that catch a typo before it allocates gigabytes: a work buffer
// holds Pad² complex values (64 MiB at 2048).
const (
	MaxN        = 1024
	MaxPad      = 2048
	MaxBits     = 16
	MaxLUT      = 1 << 16
	maxSigma    = 64 // crosstalk sigma, pixels
	maxBitADC   = 32
	maxLUTPhase = 1000 // rad: far beyond any SLM, small enough that differences stay finite
)

// ConfigError is one problem with a Config, naming its key.
type ConfigError = insitu.ConfigError

// Validate reports every problem with c at once, each a *ConfigError
// naming its key, joined with errors.Join; nil when c is usable.
func (c Config) Validate() error { return c.problems().Err() }

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

func (c Config) problems() *insitu.Problems {
	ps := &insitu.Problems{Kind: "owms"}
	bad := ps.Add
	nOK := c.N >= 1 && c.N <= MaxN
	if !nOK {
		bad("n", "must be in [1, %d], got %d", MaxN, c.N)
	}
	for _, f := range []struct {
		key string
		v   float64
	}{{"pitch", c.Pitch}, {"wavelength", c.Wavelength}, {"distance", c.Distance}, {"waist", c.Waist}, {"target_waist", c.TargetWaist}} {
		if !finite(f.v) || f.v <= 0 {
			bad(f.key, "must be positive and finite (metres), got %v", f.v)
		}
	}
	if !finite(c.TargetOffset) {
		bad("target_offset", "must be finite (metres), got %v", c.TargetOffset)
	}
	if c.TargetPhase != TargetFlat && c.TargetPhase != TargetTilted {
		bad("target_phase", "%q: want %s or %s", c.TargetPhase, TargetFlat, TargetTilted)
	}
	if c.Method != MethodRS && c.Method != MethodAngular {
		bad("method", "%q: want %s or %s", c.Method, MethodRS, MethodAngular)
	}
	switch {
	case c.Pad == 0:
	case c.Pad < 0 || c.Pad > MaxPad || c.Pad&(c.Pad-1) != 0:
		bad("pad", "must be 0 (automatic) or a power of two ≤ %d, got %d", MaxPad, c.Pad)
	case nOK && c.Method == MethodRS && c.Pad < 2*c.N-1:
		bad("pad", "%d < 2n−1 = %d: the convolution would wrap around", c.Pad, 2*c.N-1)
	case nOK && c.Pad < c.N:
		bad("pad", "%d is smaller than n = %d", c.Pad, c.N)
	}
	if nOK && c.Pad == 0 && autoPad(c.N, c.Method) > MaxPad {
		bad("n", "%d needs an FFT of side %d, more than %d", c.N, autoPad(c.N, c.Method), MaxPad)
	}
	if c.QuantizeBits < 0 || c.QuantizeBits > MaxBits {
		bad("quantize_bits", "must be in [0, %d] (0: off), got %d", MaxBits, c.QuantizeBits)
	}
	if len(c.LUT) > 0 { // an empty list means no LUT
		if len(c.LUT) < 2 || len(c.LUT) > MaxLUT {
			bad("lut", "needs between 2 and %d phases (one per gray level), got %d", MaxLUT, len(c.LUT))
		}
		for i, v := range c.LUT {
			if !finite(v) || math.Abs(v) > maxLUTPhase {
				bad("lut", "entry %d is %v, want a phase within ±%v rad", i, v, maxLUTPhase)
				break
			}
			if i > 0 && v < c.LUT[i-1] {
				bad("lut", "must be non-decreasing: entry %d (%v) < entry %d (%v)", i, v, i-1, c.LUT[i-1])
				break
			}
		}
	}
	if !finite(c.Crosstalk) || c.Crosstalk < 0 || c.Crosstalk > maxSigma {
		bad("crosstalk", "must be a blur sigma in [0, %d] pixels, got %v", maxSigma, c.Crosstalk)
	}
	if c.MacroPixel < 0 || (nOK && c.MacroPixel > 0 && c.N%c.MacroPixel != 0) {
		bad("macro_pixel", "must divide n = %d (0 or 1: one control per pixel), got %d", c.N, c.MacroPixel)
	}
	if err := CheckZernike(c.Aberration); err != nil {
		bad("aberration", "%v", err)
	}
	if !finite(c.AberrationRadius) || c.AberrationRadius < 0 {
		bad("aberration_radius", "must be ≥ 0 (metres; 0: half the grid), got %v", c.AberrationRadius)
	}
	switch c.Output {
	case OutputField, OutputIntensity, OutputAmplitude, OutputCamera:
	default:
		bad("output", "%q: want %s, %s, %s or %s", c.Output, OutputField, OutputIntensity, OutputAmplitude, OutputCamera)
	}
	cam := c.Camera
	if cam.Binning < 1 || (nOK && c.N%cam.Binning != 0) {
		bad("camera.binning", "must be ≥ 1 and divide n = %d, got %d", c.N, cam.Binning)
	}
	if !finite(cam.Exposure) || cam.Exposure <= 0 {
		bad("camera.exposure", "must be positive and finite (electrons per unit power), got %v", cam.Exposure)
	}
	if !finite(cam.Gain) || cam.Gain <= 0 {
		bad("camera.gain", "must be positive and finite (ADU per electron), got %v", cam.Gain)
	}
	if !finite(cam.ReadNoise) || cam.ReadNoise < 0 {
		bad("camera.read_noise", "must be a finite standard deviation ≥ 0, got %v", cam.ReadNoise)
	}
	if cam.BitDepth < 0 || cam.BitDepth > maxBitADC {
		bad("camera.bit_depth", "must be in [0, %d] (0: no ADC), got %d", maxBitADC, cam.BitDepth)
	}
	if !finite(cam.Saturation) || cam.Saturation < 0 {
		bad("camera.saturation", "must be finite and ≥ 0 (0: full ADC range), got %v", cam.Saturation)
	}
	return ps
}

// autoPad is the smallest power of two that holds the linear convolution
// (RS) or doubles the window (angular, to keep wrap-around small).
func autoPad(n int, method string) int {
	need := 2*n - 1
	if method == MethodAngular {
		need = 2 * n
	}
	p := 1
	for p < need {
		p <<= 1
	}
	return p
}

func init() {
	insitu.Register("owms", factory)
	insitu.RegisterKeys("owms", func() any { c := DefaultConfig(); return &c })
}

// factory builds a twin from a configuration file's blackbox section: keys
// left out keep their defaults, unknown keys are errors.
func factory(_ context.Context, p insitu.Params) (insitu.BlackBox, error) {
	cfg := DefaultConfig()
	if err := p.Decode(&cfg); err != nil {
		return nil, err
	}
	if err := cfg.problems().In(p); err != nil {
		return nil, err
	}
	return New(cfg)
}
