package rig

import (
	"context"
	"errors"
	"fmt"
	"image"
	"math"
	"time"

	"github.com/insitu-lab/insitu"
	"github.com/insitu-lab/insitu/instruments/camera"
	"github.com/insitu-lab/insitu/instruments/cameraslm"
	"github.com/insitu-lab/insitu/instruments/daq"
	"github.com/insitu-lab/insitu/instruments/slm"
)

// SLM is an SLM as an actuator: N² phases in [0, 2π] radians, named
// phi_<row>_<col> like the OWMS twin's inputs.
type SLM struct{ *slm.SLM }

// Coordinates implements Actuator.
func (s SLM) Coordinates() insitu.Space { return slmSpace(s.N()) }

// slmSpace is the space of an N×N phase pattern.
func slmSpace(n int) insitu.Space {
	sp := insitu.Box(n*n, 0, 2*math.Pi)
	sp.Names, sp.Units, sp.Periodic = make([]string, n*n), make([]string, n*n), make([]bool, n*n)
	for i := range n * n {
		sp.Names[i], sp.Units[i], sp.Periodic[i] = fmt.Sprintf("phi_%d_%d", i/n, i%n), "rad", true
	}
	return sp
}

// Apply implements Actuator: the frame is shown; the rig does the settling.
func (s SLM) Apply(ctx context.Context, x []float64) error { return s.Show(ctx, x) }

// DAQ is a DAQ board as actuator (its DAC outputs, volts) and sensor (its
// ADC inputs, volts).
type DAQ struct{ *daq.DAQ }

// Coordinates implements Actuator.
func (d DAQ) Coordinates() insitu.Space {
	lo, hi := d.Range()
	return daqSpace(d.OutputNames(), lo, hi)
}

// daqSpace is the space of DAC outputs in volts.
func daqSpace(names []string, lo, hi []float64) insitu.Space {
	units := make([]string, len(names))
	for i := range units {
		units[i] = "V"
	}
	return insitu.Space{Names: names, Units: units, Lower: lo, Upper: hi}
}

// Apply implements Actuator.
func (d DAQ) Apply(ctx context.Context, x []float64) error { return d.Set(ctx, x) }

// Outputs implements Sensor.
func (d DAQ) Outputs() []string { return d.InputNames() }

// OutputUnits implements SensorUnits: the ADC inputs read volts.
func (d DAQ) OutputUnits() []string { return volts(len(d.InputNames())) }

func volts(n int) []string {
	u := make([]string, n)
	for i := range u {
		u[i] = "V"
	}
	return u
}

// Measure implements Sensor.
func (d DAQ) Measure(ctx context.Context) ([]float64, error) { return d.Read(ctx) }

// Region is a named rectangle of the captured image (ROI coordinates).
type Region struct {
	Name string `mapstructure:"name" doc:"the output's name"`
	ROI  []int  `mapstructure:"roi" doc:"the rectangle [x, y, w, h], in pixels"`
}

// Measurement modes of a camera part.
const (
	MeasureSum     = "sum"     // one output: the sum of the ROI
	MeasureRegions = "regions" // one output per region: its sum
	MeasureImage   = "image"   // every ROI pixel, px_<row>_<col>
)

// SaturatedOutput is the output a camera part adds with saturated_output:
// the number of ROI pixels at full scale.
const SaturatedOutput = "saturated"

// Spot is a camera region placed in the SLM's spatial frequencies: the
// disc of radius Radius around (Kx, Ky), in cycles per SLM display pixel,
// as a Fourier calibration maps it onto the camera (an ellipse in camera
// pixels). A camera part with spots names the calibration file.
type Spot struct {
	Name   string  `mapstructure:"name" doc:"the spot's output name"`
	Kx     float64 `mapstructure:"kx" unit:"cycles/px" doc:"the spot's centre: horizontal spatial frequency on the SLM, in cycles per display pixel"`
	Ky     float64 `mapstructure:"ky" unit:"cycles/px" doc:"the spot's centre: vertical spatial frequency on the SLM, in cycles per display pixel"`
	Radius float64 `mapstructure:"radius" unit:"cycles/px" doc:"the spot's radius in spatial frequency"`
}

// Camera is a camera as a sensor. Its Measure reports the exposure's
// start and end and the measurement's arrival to the query's trace
// (insitu.MarkQuery; the rig files them under the part's name).
type Camera struct {
	cam       camera.Camera
	mode      string
	regions   []image.Rectangle
	spots     [][]int // each spot's pixels, as indices into the ROI's image
	names     []string
	saturated bool // the last output is the saturated-pixel count
}

// NewCamera makes a sensor of cam measuring in mode (MeasureSum when
// empty); regions are used by MeasureRegions and must lie in the ROI.
func NewCamera(cam camera.Camera, mode string, regions []Region) (*Camera, error) {
	return newCamera(cam, mode, regions, nil)
}

// newCamera is NewCamera with spot areas too (spotAreas), measured after
// the regions.
func newCamera(cam camera.Camera, mode string, regions []Region, spots []spotArea) (*Camera, error) {
	roi := cam.ROI()
	mode, rects, names, err := measurement(mode, regions, spots, roi.Dx(), roi.Dy())
	if err != nil {
		return nil, fmt.Errorf("camera %v: %w", cam, err)
	}
	c := &Camera{cam: cam, mode: mode, regions: rects, names: names}
	for _, s := range spots {
		c.spots = append(c.spots, s.pix)
	}
	return c, nil
}

// spotArea is a Spot on a camera window: its pixels (indices into the
// window's image, row-major).
type spotArea struct {
	name string
	pix  []int
}

// spotAreas maps spots onto the w×h window at sensor (x0, y0) through m:
// a pixel belongs to a spot when its centre maps back inside the spot's
// disc. A spot whose ellipse reaches past the window, or covers no pixel,
// is an error.
func spotAreas(spots []Spot, m cameraslm.Map, x0, y0, w, h int) ([]spotArea, error) {
	var out []spotArea
	for i, s := range spots {
		if s.Name == "" || !(s.Radius > 0) || math.IsInf(s.Radius, 0) || math.IsNaN(s.Kx+s.Ky) || math.IsInf(s.Kx+s.Ky, 0) {
			return nil, fmt.Errorf("spots[%d]: want a name, kx, ky and a radius > 0 (cycles per SLM pixel)", i)
		}
		cx, cy := m.Apply(s.Kx, s.Ky)
		ex, ey := s.Radius*math.Hypot(m.A[0][0], m.A[0][1]), s.Radius*math.Hypot(m.A[1][0], m.A[1][1])
		if cx-ex < float64(x0)-0.5 || cy-ey < float64(y0)-0.5 || cx+ex > float64(x0+w)-0.5 || cy+ey > float64(y0+h)-0.5 {
			return nil, fmt.Errorf("spot %s (k = (%g, %g), radius %g) lands at sensor (%.1f, %.1f), ±(%.1f, %.1f) px: past the %d×%d camera window at (%d, %d)",
				s.Name, s.Kx, s.Ky, s.Radius, cx, cy, ex, ey, w, h, x0, y0)
		}
		a := spotArea{name: s.Name}
		for y := range h {
			for x := range w {
				kx, ky := m.Invert(float64(x0+x), float64(y0+y))
				if math.Hypot(kx-s.Kx, ky-s.Ky) <= s.Radius {
					a.pix = append(a.pix, y*w+x)
				}
			}
		}
		if len(a.pix) == 0 {
			return nil, fmt.Errorf("spot %s (k = (%g, %g), radius %g) covers no camera pixel: make it larger", s.Name, s.Kx, s.Ky, s.Radius)
		}
		out = append(out, a)
	}
	return out, nil
}

// measurement checks a measure mode and its regions and spots for a w×h
// ROI and returns the mode, the regions' rectangles and the output names
// (the regions', then the spots'). A ROI of 0×0 is one whose size is not
// known yet: regions are then not checked against it, and image mode,
// whose outputs are its pixels, is refused.
func measurement(mode string, regions []Region, spots []spotArea, w, h int) (string, []image.Rectangle, []string, error) {
	var rects []image.Rectangle
	var names []string
	if len(spots) > 0 && mode != MeasureRegions {
		return "", nil, nil, fmt.Errorf("spots are measured as regions: measure regions, not %q", mode)
	}
	switch mode {
	case "", MeasureSum:
		return MeasureSum, nil, []string{"sum"}, nil
	case MeasureImage:
		if w <= 0 || h <= 0 {
			return "", nil, nil, errors.New("measure image: the ROI's size is not known")
		}
		for y := range h {
			for x := range w {
				names = append(names, fmt.Sprintf("px_%d_%d", y, x))
			}
		}
	case MeasureRegions:
		if len(regions) == 0 && len(spots) == 0 {
			return "", nil, nil, errors.New("measure regions but no regions or spots given")
		}
		for i, rg := range regions {
			if len(rg.ROI) != 4 || rg.Name == "" {
				return "", nil, nil, fmt.Errorf("regions[%d]: want a name and roi [x, y, w, h]", i)
			}
			r := image.Rect(rg.ROI[0], rg.ROI[1], rg.ROI[0]+rg.ROI[2], rg.ROI[1]+rg.ROI[3])
			if r.Empty() || r.Min.X < 0 || r.Min.Y < 0 || w > 0 && h > 0 && !r.In(image.Rect(0, 0, w, h)) {
				return "", nil, nil, fmt.Errorf("region %s %v is empty or outside the %d×%d ROI", rg.Name, rg.ROI, w, h)
			}
			rects, names = append(rects, r), append(names, rg.Name)
		}
		for _, sp := range spots {
			names = append(names, sp.name)
		}
		seen := map[string]bool{}
		for _, n := range names {
			if seen[n] {
				return "", nil, nil, fmt.Errorf("region or spot name %q used twice", n)
			}
			seen[n] = true
		}
	default:
		return "", nil, nil, fmt.Errorf("measure %q: want sum, regions or image", mode)
	}
	return mode, rects, names, nil
}

// String names the camera.
func (c *Camera) String() string { return fmt.Sprint(c.cam) }

// Camera returns the camera (for exposure changes and dark frames).
func (c *Camera) Camera() camera.Camera { return c.cam }

// Outputs implements Sensor.
func (c *Camera) Outputs() []string { return c.names }

// Measure implements Sensor.
func (c *Camera) Measure(ctx context.Context) ([]float64, error) {
	img, err := c.cam.Capture(ctx)
	if err != nil {
		return nil, err
	}
	if !img.Start.IsZero() {
		insitu.MarkQuery(ctx, "", insitu.MarkExposureStart, img.Start)
		insitu.MarkQuery(ctx, "", insitu.MarkExposureEnd, img.End)
	}
	insitu.MarkQuery(ctx, "", insitu.MarkMeasured, time.Now())
	var y []float64
	switch c.mode {
	case MeasureImage:
		if n := len(c.names) - btoi(c.saturated); len(img.Pix) != n {
			return nil, fmt.Errorf("camera %v: image of %d pixels, ROI has %d (changed after the rig was built?)", c.cam, len(img.Pix), n)
		}
		y = append(make([]float64, 0, len(c.names)), img.Pix...)
	case MeasureRegions:
		y = make([]float64, 0, len(c.names))
		for _, r := range c.regions {
			y = append(y, img.Sum(r))
		}
		for _, px := range c.spots {
			var s float64
			for _, i := range px {
				s += img.Pix[i]
			}
			y = append(y, s)
		}
	default:
		y = []float64{img.Sum(image.Rect(0, 0, img.Width, img.Height))}
	}
	if c.saturated {
		y = append(y, float64(img.Saturated))
	}
	return y, nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// SafeState implements Part: a camera emits nothing.
func (c *Camera) SafeState(context.Context) error { return nil }

// Close closes the camera.
func (c *Camera) Close() error { return c.cam.Close() }

var (
	_ Actuator = SLM{}
	_ Settler  = SLM{}
	_ Actuator = DAQ{}
	_ Sensor   = DAQ{}
	_ Settler  = DAQ{}
	_ Sensor   = (*Camera)(nil)
)
