package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"

	"periph.io/x/conn/v3/physic"

	"github.com/insitu-lab/insitu/drivers/i2c/i2cemu"
	"github.com/insitu-lab/insitu/instruments/camera"
	"github.com/insitu-lab/insitu/instruments/rig"
	"github.com/insitu-lab/insitu/instruments/slm"
	"github.com/insitu-lab/insitu/simulators/optics"
)

// In-process twins of the two other benches, registered by init so a rig
// config can name them (configs/bench-slm-camera-twin.yaml,
// configs/bench-analog-pnn-twin.yaml):
//
//   - frame sources "owms" and "owms-noisy" for a memory camera
//     (`backend: {type: memory, source: owms, width: 60, height: 60}`);
//   - the emulated I²C bus "twin-pnn" for a daq part (`bus: twin-pnn`).

// Names under which init registers the twins.
const (
	OWMSSource      = "owms"       // noiseless camera image of the OWMS twin
	OWMSNoisySource = "owms-noisy" // the same with the optics twin's shot and read noise
	PNNBusName      = "twin-pnn"   // emulated MCP4728 (0x60) + ADS1115 (0x48) bus
)

// OWMSScale is the camera's ADU per unit of pixel power at the memory
// camera's reference exposure: the optics twin's default camera gain ×
// exposure (4095/20000 ADU/e⁻ × 1e6 e⁻), so the brightest pixel of the
// unmodulated beam (≈1.3 % of the power) reads ≈2700 ADU at the reference
// exposure, and a frame's total is ≈2.05e5 ADU.
var OWMSScale = func() float64 { c := optics.DefaultConfig().Camera; return c.Gain * c.Exposure }()

func init() {
	rig.RegisterFrameSource(OWMSSource, func(built map[string]rig.Part, w, h int) (camera.FrameFunc, error) {
		return OWMSFrames(built, w, h, false)
	})
	rig.RegisterFrameSource(OWMSNoisySource, func(built map[string]rig.Part, w, h int) (camera.FrameFunc, error) {
		return OWMSFrames(built, w, h, true)
	})
	pnnBus = NewPNNBus()
	if err := pnnBus.Register(PNNBusName); err != nil {
		panic(fmt.Sprintf("bench: registering the emulated I²C bus %q: %v", PNNBusName, err))
	}
}

// OWMSFrames is the frame source "owms" (noise false) and "owms-noisy"
// (noise true): the camera looks at the output plane of the OWMS twin
// (simulators/optics with its default optics — pitch 10 µm, λ 700 nm,
// z 2 cm, waist 70 µm, target spots at ±140 µm — on an N×N grid, N the
// SLM's pattern side, 60 in the configs) lit through the phase pattern the
// in-memory SLM shows. The camera must be N×N: camera pixel (r, c) is grid
// pixel (r, c), at ((c−(N−1)/2)·10 µm, (r−(N−1)/2)·10 µm).
//
// The SLM is the part named "slm" if it is an SLM, otherwise the only SLM
// part built before the camera; its display must be memory. Each frame reads
// the N×N pattern from the display's last frame at the SLM's origin and
// maps every gray level g back to the phase the panel applies, the SLM's
// own LUT inverted: the lowest phase the SLM renders as g (a level's phase
// on the LUT, at the working wavelength). With the default linear LUT
// (two_pi_gray 256, no wavelength scaling) that is exactly 2π·g/256, as the
// power-meter twin reads a framebuffer (GrayToPhase); with two_pi_gray 218
// it is 2π·g/218; with a measured lut, its curve. Levels the SLM never
// renders (above its 2π level) read as the highest level it does. An SLM
// with a per-pixel correction is refused: this twin's panel is flat, so the
// correction would appear as an aberration.
//
// A frame is the twin's intensity (power per pixel, unit input power) ×
// OWMSScale ADU at the reference exposure; the memory camera scales it by
// exposure/reference_exposure and clips at its saturation. With noise, the
// optics twin's camera model adds shot and read noise (seeded, a fresh
// stream per frame) without rounding or clipping.
func OWMSFrames(built map[string]rig.Part, w, h int, noise bool) (camera.FrameFunc, error) {
	s, err := findSLM(built)
	if err != nil {
		return nil, err
	}
	n := s.Side()
	if w != n || h != n {
		return nil, fmt.Errorf("owms frame source: the camera is %d×%d, the twin's grid is the SLM pattern's %d×%d display pixels", w, h, n, n)
	}
	if _, ok := s.Display().(*slm.Memory); !ok {
		return nil, fmt.Errorf("owms frame source: %v needs a memory display (display: {type: memory, ...})", s)
	}
	pattern, err := MemoryPattern(s) // its errors name the frame source
	if err != nil {
		return nil, err
	}
	cfg := optics.DefaultConfig()
	cfg.N, cfg.Output = n, optics.OutputIntensity
	if noise {
		cfg.Output = optics.OutputCamera
		cfg.Camera.BitDepth, cfg.Camera.Saturation = 0, 0
	}
	tw, err := optics.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("owms frame source: %w", err)
	}
	return func(ctx context.Context, dst []float64) error {
		y, err := tw.Query(ctx, pattern())
		if err != nil {
			return err
		}
		k := OWMSScale
		if noise {
			k = 1 // the camera model is already in ADU
		}
		for i, v := range y {
			dst[i] = k * v
		}
		return nil
	}, nil
}

func findSLM(built map[string]rig.Part) (rig.SLM, error) {
	if s, ok := built["slm"].(rig.SLM); ok {
		return s, nil
	}
	var names []string
	var found rig.SLM
	for name, p := range built {
		if s, ok := p.(rig.SLM); ok {
			names, found = append(names, name), s
		}
	}
	sort.Strings(names)
	if len(names) != 1 {
		return rig.SLM{}, fmt.Errorf("owms frame source: want an SLM part named slm, or exactly one SLM part, before the camera; have %v", names)
	}
	return found, nil
}

// GrayPhases inverts s's phase → gray mapping through its public Gray: for
// each level g, the lowest phase in [0, 2π) the SLM renders as g (found by
// bisection; Gray is monotone there for an SLM without correction). Levels
// it never renders take the phase of the next lower one it does. When every
// level sits within 1e-6 rad of 2π·g/256 the exact values are used.
func GrayPhases(s *slm.SLM) ([256]float64, error) {
	var ph [256]float64
	n := s.Side()
	// Monotone on a scan and the same at every pixel: no correction.
	const scan = 4096
	prev := -1
	for k := range scan {
		phi := 2 * math.Pi * float64(k) / scan
		g := int(s.Gray(0, phi))
		if g < prev {
			return ph, fmt.Errorf("owms frame source: %v maps phase to gray non-monotonically (a correction?): the twin needs an SLM without correction", s)
		}
		prev = g
		if k%(scan/16) != 0 {
			continue
		}
		for i := range n * n {
			if s.Gray(i, phi) != uint8(g) {
				return ph, fmt.Errorf("owms frame source: %v has a per-pixel correction; the twin's panel is flat, give the twin SLM none", s)
			}
		}
	}
	top := int(s.Gray(0, math.Nextafter(2*math.Pi, 0)))
	if s.Gray(0, 0) != 0 {
		return ph, errors.New("owms frame source: the SLM does not render phase 0 as gray 0")
	}
	linear := true
	for g := 1; g <= top; g++ {
		lo, hi := 0.0, 2*math.Pi
		if int(s.Gray(0, math.Nextafter(hi, 0))) < g {
			continue
		}
		for range 80 {
			mid := (lo + hi) / 2
			if int(s.Gray(0, mid)) >= g {
				hi = mid
			} else {
				lo = mid
			}
		}
		ph[g] = hi
		if math.Abs(hi-2*math.Pi*float64(g)/256) > 1e-6 {
			linear = false
		}
	}
	for g := 1; g < 256; g++ {
		if ph[g] == 0 { // never rendered: hold the level below
			ph[g] = ph[g-1]
		}
	}
	if linear && top == 255 {
		for g := range ph {
			ph[g] = GrayToPhase(uint8(g))
		}
	}
	return ph, nil
}

// The analog PNN twin.

// PNN defaults: VDD 5 V, gain 3, W drawn with seed PNNSeed.
const (
	PNNSeed = 5
	PNNGain = 3.0
)

// PNNWeights is the twin's fixed 4×4 weight matrix W: standard normal
// entries from a PCG seeded with (PNNSeed, 0x9e3779b97f4a7c15), row-major,
// W[i][j] the weight of DAC output j on ADC input i.
var PNNWeights = func() [4][4]float64 {
	rng := rand.New(rand.NewPCG(PNNSeed, 0x9e3779b97f4a7c15))
	var w [4][4]float64
	for i := range w {
		for j := range w[i] {
			w[i][j] = rng.NormFloat64()
		}
	}
	return w
}()

// PNNResponse is the analog physical-neural-network layer between the
// DAC's outputs v (A..D) and the ADC's inputs y (AIN0..AIN3):
//
//	y_i = VDD/2 · (1 + tanh(g · Σ_j W_ij (v_j − VDD/2)/VDD))
//
// with VDD 5 V, g = PNNGain and W = PNNWeights: smooth, nonlinear, and
// strictly inside (0, VDD), so an ADS1115 at ±6.144 V full scale never
// saturates. All DACs at mid-supply give VDD/2 on every input; all at 0 V
// give VDD/2·(1 + tanh(−g/2·Σ_j W_ij)).
func PNNResponse(v [4]float64) [4]float64 {
	const vdd = 5.0
	var y [4]float64
	for i := range y {
		var s float64
		for j, vj := range v {
			s += PNNWeights[i][j] * (vj - vdd/2) / vdd
		}
		y[i] = vdd / 2 * (1 + math.Tanh(PNNGain*s))
	}
	return y
}

// NewPNNBus returns a fresh emulated bus (MCP4728 at 0x60, ADS1115 at 0x48,
// VDD 5 V) whose ADC inputs are PNNResponse of the DAC outputs. It is not
// registered; the one registered as "twin-pnn" is PNNBus.
func NewPNNBus() *i2cemu.Bus { return newPNNBus(0x60, 0x48, 5*physic.Volt) }

var pnnBus *i2cemu.Bus

// PNNBus is the bus registered with periph's i2creg as "twin-pnn" for the
// life of the process (tests read its DAC outputs after a run). Its chips
// keep their state between opens, as a real board does between runs.
func PNNBus() *i2cemu.Bus { return pnnBus }
