package main

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/insitu-lab/insitu/instruments/cameraslm"
	"github.com/insitu-lab/insitu/safety"
)

// calibrationConfig is a config's calibration section: how `insitu
// calibrate` draws on the rig's SLM part and reads its camera part. Every
// key is optional; `insitu run` ignores the section.
type calibrationConfig struct {
	SLM        string             `mapstructure:"slm" yaml:"slm,omitempty" doc:"the SLM part the calibrations draw on; default: the only one"`
	Camera     string             `mapstructure:"camera" yaml:"camera,omitempty" doc:"the camera part the calibrations read; default: the only one"`
	ROI        []int              `mapstructure:"roi" yaml:"roi,omitempty" unit:"px" doc:"the camera window the calibrations read, [x, y, w, h] in sensor pixels; default: the camera part's roi, else its whole frame"`
	Saturation float64            `mapstructure:"saturation" yaml:"saturation,omitempty" unit:"ADU" doc:"what a saturated pixel reads; default: the camera backend's full scale (a memory camera's saturation, 255 for grey, 65535 for y16)"`
	Hold       map[string]float64 `mapstructure:"hold" yaml:"hold,omitempty" doc:"the rig's other inputs during a calibration, by name; default: safety.initial"`

	Fourier   fourierCalibration   `mapstructure:"fourier" yaml:"fourier,omitempty" doc:"insitu calibrate fourier: the gratings shown and how their spots are found"`
	Settle    settleCalibration    `mapstructure:"settle" yaml:"settle,omitempty" doc:"insitu calibrate settle: the patterns stepped between and the delays sampled"`
	Wavefront wavefrontCalibration `mapstructure:"wavefront" yaml:"wavefront,omitempty" doc:"insitu calibrate wavefront: the superpixels and where they interfere"`
}

// fourierCalibration: see cameraslm.FourierOptions.
type fourierCalibration struct {
	Periods          []float64 `mapstructure:"periods" yaml:"periods,omitempty" doc:"grating periods in controls (each ≥ 2); default [4, 8]"`
	Directions       int       `mapstructure:"directions" yaml:"directions,omitempty" doc:"grating vectors per period, evenly spaced in angle (≥ 3); default 8: both signs of x, y and the diagonals"`
	MinSNR           float64   `mapstructure:"min_snr" yaml:"min_snr,omitempty" doc:"a spot's least peak over the background noise, else it is missing; default 10"`
	Window           float64   `mapstructure:"window" yaml:"window,omitempty" unit:"px" doc:"radius of the centroid window around a spot; 0: from the spot's size"`
	ExcludeZeroOrder bool      `mapstructure:"exclude_zero_order" yaml:"exclude_zero_order,omitempty" doc:"leave the flat pattern's spot out of the search for each grating's (an SLM whose zero order outshines the first)"`
}

// settleCalibration: see cameraslm.SettleOptions.
type settleCalibration struct {
	K        []float64     `mapstructure:"k" yaml:"k,omitempty" unit:"cycles/px" doc:"the blazed grating [kx, ky] whose depth the two patterns scale; default a period of four controls along x"`
	Depth    []float64     `mapstructure:"depth" yaml:"depth,omitempty" doc:"the grating's depths in patterns A and B, as fractions of 2π; default [0.2, 0.8]"`
	Levels   int           `mapstructure:"levels" yaml:"levels,omitempty" doc:"settled patterns between A and B (both included) that trace the image curve; default 11"`
	MinDelay time.Duration `mapstructure:"min_delay" yaml:"min_delay,omitempty" doc:"shortest delay after a step at which the camera is sampled; default max_delay/100"`
	MaxDelay time.Duration `mapstructure:"max_delay" yaml:"max_delay,omitempty" doc:"longest delay after a step at which the camera is sampled; default 1s"`
	Hold     time.Duration `mapstructure:"hold" yaml:"hold,omitempty" doc:"time the panel is left to settle before each step; default max_delay"`
	Delays   int           `mapstructure:"delays" yaml:"delays,omitempty" doc:"delays sampled after each step, spaced geometrically from min_delay to max_delay; default 12"`
	Repeats  int           `mapstructure:"repeats" yaml:"repeats,omitempty" doc:"passes through the delays; default 1"`
}

// wavefrontCalibration: see cameraslm.WavefrontOptions.
type wavefrontCalibration struct {
	Fourier       string    `mapstructure:"fourier" yaml:"fourier,omitempty" doc:"the Fourier calibration file (insitu calibrate fourier) that places the point on the camera; the --fourier flag overrides it"`
	Point         []float64 `mapstructure:"point" yaml:"point,omitempty" unit:"cycles/px" doc:"spatial frequency [kx, ky] where both superpixels of a measurement interfere; default a period of four controls along x"`
	Field         []float64 `mapstructure:"field" yaml:"field,omitempty" unit:"cycles/px" doc:"spatial frequency the rest of the pattern sends its light to, out of the way; default two superpixel spot widths from the point toward the axis"`
	Superpixel    int       `mapstructure:"superpixel" yaml:"superpixel,omitempty" doc:"side of a superpixel in controls; default N/8, at least 2"`
	Reference     []int     `mapstructure:"reference" yaml:"reference,omitempty" doc:"the superpixel [column, row] every other one is measured against; default the centre one"`
	Steps         int       `mapstructure:"steps" yaml:"steps,omitempty" doc:"phases each superpixel steps through (≥ 3); default 8"`
	Window        int       `mapstructure:"window" yaml:"window,omitempty" unit:"px" doc:"half side of the square around the point whose sum is the interference signal; default 1 (3×3)"`
	MinModulation float64   `mapstructure:"min_modulation" yaml:"min_modulation,omitempty" doc:"least interference modulation, as a fraction of the strongest superpixel's, for a superpixel to count as lit (dark ones take their neighbours' phase); default 0.1"`
	ROI           []int     `mapstructure:"roi" yaml:"roi,omitempty" unit:"px" doc:"the camera window the wavefront calibration reads, [x, y, w, h]; default a 31 px square around the point"`
}

// validate reports the section's problems that need no rig, each naming
// its key.
func (c calibrationConfig) validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("calibration.%s: %s", key, fmt.Sprintf(format, args...)))
	}
	roi := func(key string, r []int) {
		if len(r) != 0 && (len(r) != 4 || r[0] < 0 || r[1] < 0 || r[2] < 3 || r[3] < 3) {
			bad(key, "%v: want [x, y, w, h], at least 3×3 pixels", r)
		}
	}
	roi("roi", c.ROI)
	roi("wavefront.roi", c.Wavefront.ROI)
	if !(c.Saturation >= 0) || math.IsInf(c.Saturation, 0) {
		bad("saturation", "%v: want ADU ≥ 0 (0: the camera's full scale)", c.Saturation)
	}
	for _, k := range slices.Sorted(maps.Keys(c.Hold)) {
		if v := c.Hold[k]; math.IsNaN(v) || math.IsInf(v, 0) {
			bad("hold."+k, "%v is not finite", v)
		}
	}
	f := c.Fourier
	for _, p := range f.Periods {
		if !(p >= 2) || math.IsInf(p, 0) {
			bad("fourier.periods", "%v: a grating needs 2 or more controls per period", p)
		}
	}
	if f.Directions != 0 && f.Directions < 3 {
		bad("fourier.directions", "%d: want 3 or more (vectors off a line)", f.Directions)
	}
	if f.MinSNR < 0 || f.Window < 0 {
		bad("fourier", "min_snr %v and window %v must not be negative", f.MinSNR, f.Window)
	}
	s := c.Settle
	if len(s.K) != 0 && len(s.K) != 2 {
		bad("settle.k", "%v: want [kx, ky] cycles per display pixel", s.K)
	}
	if len(s.Depth) != 0 && (len(s.Depth) != 2 || !(s.Depth[0] >= 0 && s.Depth[1] <= 1 && s.Depth[1]-s.Depth[0] >= 0.1)) {
		bad("settle.depth", "%v: want [a, b], fractions of the grating's depth in [0, 1], b ≥ a + 0.1", s.Depth)
	}
	if s.Levels != 0 && s.Levels < 3 {
		bad("settle.levels", "%d: want 3 or more", s.Levels)
	}
	if s.MinDelay < 0 || s.MaxDelay < 0 || s.Hold < 0 || s.MaxDelay != 0 && s.MinDelay >= s.MaxDelay {
		bad("settle", "min_delay %v, max_delay %v and hold %v: want 0 < min_delay < max_delay, hold ≥ 0", s.MinDelay, s.MaxDelay, s.Hold)
	}
	if s.Delays != 0 && s.Delays < 4 || s.Repeats < 0 {
		bad("settle", "delays %d (4 or more) and repeats %d (1 or more)", s.Delays, s.Repeats)
	}
	w := c.Wavefront
	for _, kv := range []struct {
		key string
		v   []float64
	}{{"point", w.Point}, {"field", w.Field}} {
		if len(kv.v) != 0 && len(kv.v) != 2 {
			bad("wavefront."+kv.key, "%v: want [kx, ky] cycles per display pixel", kv.v)
		}
	}
	if len(w.Reference) != 0 && len(w.Reference) != 2 {
		bad("wavefront.reference", "%v: want [column, row] of a superpixel", w.Reference)
	}
	if w.Superpixel < 0 || w.Steps != 0 && w.Steps < 3 || w.Window < 0 || w.MinModulation < 0 || w.MinModulation >= 1 {
		bad("wavefront", "superpixel %d (≥ 1), steps %d (≥ 3), window %d (≥ 0), min_modulation %v (in [0, 1))", w.Superpixel, w.Steps, w.Window, w.MinModulation)
	}
	return errors.Join(errs...)
}

func pair(v []float64) [2]float64 {
	if len(v) != 2 {
		return [2]float64{}
	}
	return [2]float64{v[0], v[1]}
}

// fourierOptions are the Fourier calibration's options on grid.
func (c calibrationConfig) fourierOptions(grid cameraslm.Grid, saturation float64) cameraslm.FourierOptions {
	f := c.Fourier
	return cameraslm.FourierOptions{Grid: grid, Periods: f.Periods, Directions: f.Directions, ExcludeZeroOrder: f.ExcludeZeroOrder,
		Spot: cameraslm.SpotOptions{Saturation: saturation, MinSNR: f.MinSNR, Radius: f.Window}}
}

// settleOptions are the settle calibration's options on grid.
func (c calibrationConfig) settleOptions(grid cameraslm.Grid) cameraslm.SettleOptions {
	s := c.Settle
	return cameraslm.SettleOptions{Grid: grid, K: pair(s.K), Depth: pair(s.Depth), Levels: s.Levels, MinDelay: s.MinDelay, MaxDelay: s.MaxDelay,
		Hold: s.Hold, Delays: s.Delays, Repeats: s.Repeats}
}

// wavefrontOptions are the wavefront calibration's options on grid with
// the Fourier map m.
func (c calibrationConfig) wavefrontOptions(grid cameraslm.Grid, m cameraslm.Map) cameraslm.WavefrontOptions {
	w := c.Wavefront
	o := cameraslm.WavefrontOptions{Grid: grid, Map: m, Point: pair(w.Point), Field: pair(w.Field), Superpixel: w.Superpixel,
		Steps: w.Steps, Window: w.Window, MinModulation: w.MinModulation}
	if len(w.Reference) == 2 {
		o.Reference = [2]int{w.Reference[0], w.Reference[1]}
	}
	return o
}

// calibrationSafety is the run's safety section for a calibration rig of
// Spec out: the entries about outputs the calibration rig does not have
// (a camera's regions, measured as its image during a calibration) are
// left out, and said so; the rest (bounds, steps, rate, budget, the
// interlocks on other sensors) holds.
func calibrationSafety(sc safety.Config, outs []string) (safety.Config, []string) {
	have := map[string]bool{}
	for _, o := range outs {
		have[o] = true
	}
	var notes []string
	drop := func(key, name string) {
		notes = append(notes, fmt.Sprintf("safety.%s.%s left out: the calibration reads the camera's image, not its regions (the calibration checks the spots for saturation itself)", key, name))
	}
	out := sc
	if len(sc.OutputRanges) > 0 {
		out.OutputRanges = map[string]safety.Range{}
		for _, k := range slices.Sorted(maps.Keys(sc.OutputRanges)) {
			if have[k] {
				out.OutputRanges[k] = sc.OutputRanges[k]
			} else {
				drop("output_ranges", k)
			}
		}
	}
	if len(sc.Saturation) > 0 {
		out.Saturation = safety.PerName{}
		for _, k := range slices.Sorted(maps.Keys(sc.Saturation)) {
			if have[k] || k == safety.AnyKey {
				out.Saturation[k] = sc.Saturation[k]
			} else {
				drop("saturation", k)
			}
		}
	}
	out.Interlocks = nil
	for _, il := range sc.Interlocks {
		if have[il.Output] {
			out.Interlocks = append(out.Interlocks, il)
		} else {
			notes = append(notes, fmt.Sprintf("safety interlock %q on %s left out: the calibration reads the camera's image, not its regions", il.Name, il.Output))
		}
	}
	// A model-fidelity interlock watches a surrogate; a calibration has none.
	out.ModelFidelity = nil
	return out, notes
}
