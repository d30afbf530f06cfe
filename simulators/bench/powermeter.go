package bench

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/insitu-lab/insitu/drivers/fbdev"
	"github.com/insitu-lab/insitu/drivers/scpi/emulator"
	"github.com/insitu-lab/insitu/simulators/optics"
)

// PowerMeterIDN is the power-meter twin's identity (PM100 command set).
const PowerMeterIDN = "insitu,PM100D twin,TWIN-PM-0001,0.1"

// Framebuffer is the file-backed framebuffer the SLM driver draws into
// (instruments/slm with an fbdev display on a plain file).
type Framebuffer struct {
	Path     string
	Geometry fbdev.Geometry
	// Origin is the display pixel of the N×N pattern's top-left corner;
	// nil centres it, as instruments/slm does by default.
	Origin []int
}

// Detector is the power meter's sensitive area in the OWMS output plane:
// a disc, in metres, centred relative to the optical axis.
type Detector struct {
	X, Y   float64 // centre
	Radius float64 // 0: the whole output grid
}

// PowerMeterConfig configures the power-meter twin.
type PowerMeterConfig struct {
	// Optics is the OWMS twin; its output mode is forced to intensity.
	Optics optics.Config
	// FB is where the SLM image is read on every reading; an empty Path
	// means a flat SLM (all phases 0).
	FB Framebuffer
	// Pattern, when set, gives the N×N phase pattern on the SLM for every
	// reading instead of FB (an in-process SLM's display).
	Pattern  func() ([]float64, error)
	Detector Detector
	// InputPower is the laser power in W: the OWMS twin has unit input
	// power, so readings are InputPower × the detected fraction. Default 1 mW.
	InputPower float64
	// Noise is the relative std of one sample; averaging n samples
	// (SENS:AVER:COUN) divides it by √n. Default 0.
	Noise float64
	Seed  uint64
}

// PowerMeter is a Thorlabs PM100 twin reading the optical power that the
// OWMS twin delivers into the detector, under the phase pattern currently
// shown on the framebuffer.
//
// Gray levels map to phase with the default linear LUT of instruments/slm
// (two_pi_gray 256): φ = 2π·gray/256, so gray 0 is 0 and gray 255 is
// 2π·255/256. A bench whose SLM config sets another LUT sees a different
// optical response from this twin, as it would from a mis-calibrated SLM.
type PowerMeter struct {
	cfg  PowerMeterConfig
	twin *optics.Twin
	in   *emulator.Instrument
	mask []bool // pixels inside the detector
	x0   int    // pattern origin in the framebuffer
	y0   int

	mu         sync.Mutex
	rng        *rand.Rand
	wavelength float64 // nm
	average    int
	auto       bool
	upper      float64 // W
	dbm        bool
}

// NewPowerMeter builds the twin; opts (faults, terminator) go to the
// emulator.
func NewPowerMeter(cfg PowerMeterConfig, opts ...emulator.Option) (*PowerMeter, error) {
	if cfg.InputPower == 0 {
		cfg.InputPower = 1e-3
	}
	if !(cfg.InputPower > 0) || cfg.Noise < 0 || cfg.Detector.Radius < 0 {
		return nil, fmt.Errorf("powermeter twin: input power %v W, noise %v, radius %v: must be positive", cfg.InputPower, cfg.Noise, cfg.Detector.Radius)
	}
	cfg.Optics.Output = optics.OutputIntensity
	tw, err := optics.New(cfg.Optics)
	if err != nil {
		return nil, fmt.Errorf("powermeter twin: %w", err)
	}
	n := cfg.Optics.N
	pm := &PowerMeter{cfg: cfg, twin: tw, rng: rand.New(rand.NewPCG(cfg.Seed, 0x9e3)),
		mask: DetectorMask(cfg.Optics, cfg.Detector)}
	pm.reset()
	if cfg.FB.Path != "" {
		g := cfg.FB.Geometry
		if err := g.Validate(); err != nil {
			return nil, fmt.Errorf("powermeter twin: framebuffer %s: %w", cfg.FB.Path, err)
		}
		switch len(cfg.FB.Origin) {
		case 0:
			pm.x0, pm.y0 = (g.Width-n)/2, (g.Height-n)/2
		case 2:
			pm.x0, pm.y0 = cfg.FB.Origin[0], cfg.FB.Origin[1]
		default:
			return nil, fmt.Errorf("powermeter twin: framebuffer origin %v: want [x, y]", cfg.FB.Origin)
		}
		if pm.x0 < 0 || pm.y0 < 0 || pm.x0+n > g.Width || pm.y0+n > g.Height {
			return nil, fmt.Errorf("powermeter twin: the %d×%d pattern at (%d, %d) does not fit the %d×%d framebuffer %s", n, n, pm.x0, pm.y0, g.Width, g.Height, cfg.FB.Path)
		}
	}
	pm.in, err = emulator.New(PowerMeterIDN, pm.table(), append(opts, emulator.WithReset(func() {
		pm.mu.Lock()
		pm.reset()
		pm.mu.Unlock()
	}))...)
	if err != nil {
		return nil, err
	}
	return pm, nil
}

func (pm *PowerMeter) reset() {
	pm.wavelength = pm.cfg.Optics.Wavelength * 1e9
	pm.average, pm.auto, pm.upper, pm.dbm = 1, true, 0, false
}

// Instrument is the emulated instrument to serve.
func (pm *PowerMeter) Instrument() *emulator.Instrument { return pm.in }

// Optics is the OWMS twin the meter looks through.
func (pm *PowerMeter) Optics() *optics.Twin { return pm.twin }

// Wavelength returns the calibration wavelength set, nm.
func (pm *PowerMeter) Wavelength() float64 { pm.mu.Lock(); defer pm.mu.Unlock(); return pm.wavelength }

// Average returns the averaging count.
func (pm *PowerMeter) Average() int { pm.mu.Lock(); defer pm.mu.Unlock(); return pm.average }

// DetectorMask returns, for each pixel of the N×N output grid (row-major),
// whether its centre lies on the detector disc. Coordinates are the OWMS
// twin's: pixel (r, c) is at ((c−(N−1)/2)·pitch, (r−(N−1)/2)·pitch).
func DetectorMask(c optics.Config, d Detector) []bool {
	n := c.N
	m := make([]bool, n*n)
	for r := range n {
		y := (float64(r) - float64(n-1)/2) * c.Pitch
		for col := range n {
			x := (float64(col) - float64(n-1)/2) * c.Pitch
			m[r*n+col] = d.Radius == 0 || math.Hypot(x-d.X, y-d.Y) <= d.Radius
		}
	}
	return m
}

// GrayToPhase is the default LUT of instruments/slm inverted: φ = 2π·g/256.
func GrayToPhase(g uint8) float64 { return 2 * math.Pi * float64(g) / 256 }

// Phases reads the N×N pattern from the framebuffer file and maps it to
// phases (or takes it from Pattern when set). It opens the file each time,
// so a framebuffer recreated by the SLM side is followed.
func (pm *PowerMeter) Phases() ([]float64, error) {
	n := pm.cfg.Optics.N
	if pm.cfg.Pattern != nil {
		x, err := pm.cfg.Pattern()
		if err == nil && len(x) != n*n {
			err = fmt.Errorf("the SLM pattern has %d phases, the optics twin's grid %d×%d", len(x), n, n)
		}
		return x, err
	}
	x := make([]float64, n*n)
	if pm.cfg.FB.Path == "" {
		return x, nil
	}
	gray, err := ReadGray(pm.cfg.FB.Path, pm.cfg.FB.Geometry, pm.x0, pm.y0, n, n)
	if err != nil {
		return nil, err
	}
	for i, g := range gray {
		x[i] = GrayToPhase(g)
	}
	return x, nil
}

// ReadGray reads the w×h gray block at (x0, y0) from a framebuffer file of
// geometry g. For colour formats the green channel is the gray level;
// RGB565's 6-bit green is expanded back to 8 bits (the two low bits that
// RGB565 dropped are restored by bit replication, as a display would).
func ReadGray(path string, g fbdev.Geometry, x0, y0, w, h int) ([]uint8, error) {
	bpp := g.Format.BytesPerPixel()
	stride := g.Stride
	if stride == 0 {
		stride = g.Width * bpp
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("framebuffer %s: %w", path, err)
	}
	defer f.Close()
	row := make([]byte, w*bpp)
	out := make([]uint8, 0, w*h)
	for y := range h {
		off := int64(g.Offset + (y0+y)*stride + x0*bpp)
		if _, err := f.ReadAt(row, off); err != nil {
			if errors.Is(err, io.EOF) {
				err = fmt.Errorf("file shorter than the %v geometry", g)
			}
			return nil, fmt.Errorf("framebuffer %s: row %d: %w", path, y0+y, err)
		}
		for i := range w {
			p := row[i*bpp:]
			switch g.Format {
			case fbdev.Gray8:
				out = append(out, p[0])
			case fbdev.RGB565:
				g6 := uint8(binary.NativeEndian.Uint16(p) >> 5 & 0x3f)
				out = append(out, g6<<2|g6>>4)
			case fbdev.RGB888:
				out = append(out, p[1])
			case fbdev.XRGB8888:
				out = append(out, uint8(binary.NativeEndian.Uint32(p)>>8))
			default:
				return nil, fmt.Errorf("framebuffer %s: format %v not supported", path, g.Format)
			}
		}
	}
	return out, nil
}

// TruePower is the noiseless power on the detector for phases x, W.
func (pm *PowerMeter) TruePower(x []float64) float64 {
	return DetectedPower(pm.twin, pm.mask, pm.cfg.InputPower, x)
}

// DetectedPower is InputPower × Σ over the mask of the OWMS twin's
// intensity output (|U|²·dA per pixel, unit input power).
func DetectedPower(t *optics.Twin, mask []bool, inputPower float64, x []float64) float64 {
	u := t.Field(x)
	dA := t.Config().Pitch * t.Config().Pitch
	var sum float64
	for i, v := range u {
		if mask[i] {
			sum += (real(v)*real(v) + imag(v)*imag(v)) * dA
		}
	}
	return inputPower * sum
}

// reading is one MEAS:POW?/READ?. Callers hold mu.
func (pm *PowerMeter) reading() (string, error) {
	x, err := pm.Phases()
	if err != nil {
		return "", emulator.Err(-240, "Hardware error; "+err.Error())
	}
	p := pm.TruePower(x)
	if pm.cfg.Noise > 0 {
		p *= 1 + pm.cfg.Noise/math.Sqrt(float64(pm.average))*pm.rng.NormFloat64()
	}
	if !pm.auto && pm.upper > 0 && p > pm.upper {
		return "9.9E37", nil // over range
	}
	if pm.dbm {
		if p <= 0 {
			return "-9.9E37", nil
		}
		return f(10 * math.Log10(p/1e-3)), nil
	}
	return f(p), nil
}

func (pm *PowerMeter) table() emulator.Table {
	lock := func(h func(args string) (string, error)) emulator.Handler {
		return func(args string) (string, error) {
			pm.mu.Lock()
			defer pm.mu.Unlock()
			return h(args)
		}
	}
	ignore := func(string) (string, error) { return "", nil }
	read := lock(func(string) (string, error) { return pm.reading() })
	return emulator.Table{
		"SENSe:CORRection:WAVelength": lock(func(a string) (string, error) {
			v, err := parseNumber(a, 1, 1e5)
			if err != nil {
				return "", err
			}
			pm.wavelength = v
			return "", nil
		}),
		"SENSe:CORRection:WAVelength?": lock(func(string) (string, error) { return f(pm.wavelength), nil }),
		"SENSe:AVERage[:COUNt]": lock(func(a string) (string, error) {
			v, err := parseNumber(a, 1, 1e6)
			if err != nil {
				return "", err
			}
			pm.average = int(v)
			return "", nil
		}),
		"SENSe:AVERage[:COUNt]?": lock(func(string) (string, error) { return strconv.Itoa(pm.average), nil }),
		"SENSe[:POWer][:DC]:RANGe:AUTO": lock(func(a string) (string, error) {
			on, err := parseBool(a)
			pm.auto = on
			return "", err
		}),
		"SENSe[:POWer][:DC]:RANGe:AUTO?": lock(func(string) (string, error) {
			if pm.auto {
				return "1", nil
			}
			return "0", nil
		}),
		"SENSe[:POWer][:DC]:RANGe[:UPPer]": lock(func(a string) (string, error) {
			v, err := parseNumber(a, 1e-12, 1e3)
			if err != nil {
				return "", err
			}
			pm.upper, pm.auto = v, false
			return "", nil
		}),
		"SENSe[:POWer][:DC]:UNIT": lock(func(a string) (string, error) {
			switch strings.ToUpper(a) {
			case "W":
				pm.dbm = false
			case "DBM":
				pm.dbm = true
			default:
				return "", emulator.Err(-224, "Illegal parameter value")
			}
			return "", nil
		}),
		"SENSe:CORRection:COLLect:ZERO[:INITiate]": ignore,
		"CONFigure[:SCALar][:POWer]":               ignore,
		"INITiate[:IMMediate]":                     ignore,
		"MEASure[:SCALar][:POWer]?":                read,
		"READ?":                                    read,
		"FETCh?":                                   read,
		"SYSTem:SENSor:IDN?": func(string) (string, error) {
			return "S120C twin,TWIN-HEAD-0001,01-Jan-2026,1,18,289", nil
		},
	}
}
