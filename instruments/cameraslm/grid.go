package cameraslm

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/insitu-lab/insitu"
)

// Grid is an SLM part as a calibration draws on it: N×N controls (the
// part's inputs, row-major), each a MacroPixel×MacroPixel block of display
// pixels.
type Grid struct {
	N          int
	MacroPixel int // 0 or 1: one display pixel per control
}

func (g Grid) mp() int { return max(1, g.MacroPixel) }

// Side is the pattern's side in display pixels.
func (g Grid) Side() int { return g.N * g.mp() }

// Validate checks the grid.
func (g Grid) Validate() error {
	if g.N < 2 || g.MacroPixel < 0 {
		return fmt.Errorf("slm grid: n %d (≥ 2) and macro_pixel %d (≥ 0)", g.N, g.MacroPixel)
	}
	return nil
}

// centre returns the display position of control i's centre along an
// axis, relative to the pattern's centre.
func (g Grid) centre(i int) float64 {
	mp := g.mp()
	return float64(i*mp) + float64(mp-1)/2 - float64(g.Side()-1)/2
}

// MaxK is the largest spatial frequency (cycles per display pixel) a
// blazed grating of at least minPeriod controls per period reaches.
func (g Grid) MaxK(minPeriod float64) float64 { return 1 / (minPeriod * float64(g.mp())) }

// Blaze is the blazed grating of spatial frequency k plus offset
// (radians), wrapped into [0, 2π): the phase 2π·k·x + offset at each
// control's centre x, relative to the pattern's centre, so that gratings
// drawn on parts of the pattern are parts of one grating.
func (g Grid) Blaze(kx, ky, offset float64) []float64 {
	x := make([]float64, g.N*g.N)
	for r := range g.N {
		for c := range g.N {
			x[r*g.N+c] = wrap(2*math.Pi*(kx*g.centre(c)+ky*g.centre(r)) + offset)
		}
	}
	return x
}

// wrap brings a phase into [0, 2π).
func wrap(p float64) float64 {
	p = math.Mod(p, 2*math.Pi)
	if p < 0 {
		p += 2 * math.Pi
	}
	if p >= 2*math.Pi { // -tiny + 2π rounds to 2π
		p = 0
	}
	return p
}

// Image is a camera image in ADU, row-major, W×H, whose pixel (0, 0) is
// sensor pixel (X0, Y0) (the camera's region of interest).
type Image struct {
	W, H   int
	X0, Y0 int
	Pix    []float64
}

// Shot is one query of a calibration: the pattern on the SLM part's
// controls, and how long to wait between showing it and measuring.
type Shot struct {
	Phase []float64
	// Settle is the wait after the frame is shown; RigSettle: the rig's
	// configured settle.
	Settle time.Duration
}

// RigSettle asks for the rig's own settle time.
const RigSettle time.Duration = -1

// Frame is what a shot measured: the image, and when it was exposed
// relative to when the frame was shown, as the query's marks tell
// (Measured false: they do not, and Delay is the requested settle).
type Frame struct {
	Image
	// Delay is the time from the frame shown to the middle of the
	// exposure, Exposure the exposure's length (0 when instantaneous or
	// unknown).
	Delay, Exposure time.Duration
	Measured        bool
}

// Bench makes a calibration's shots, in order, and returns their frames.
// stage names the shots for progress and the journal's iterations.
type Bench interface {
	Shoot(ctx context.Context, stage string, shots []Shot) ([]Frame, error)
}

// Delay reads a query's marks: the time from the SLM part's frame shown
// to the middle of the camera part's exposure, and the exposure's length.
// ok is false when the marks do not tell (a part that marks nothing).
func Delay(marks []insitu.Mark, slmPart, cameraPart string) (delay, exposure time.Duration, ok bool) {
	var shown, start, end time.Time
	for _, m := range marks {
		switch {
		case m.Part == slmPart && m.Event == insitu.MarkShown:
			shown = m.At
		case m.Part == cameraPart && m.Event == insitu.MarkExposureStart && start.IsZero():
			start = m.At
		case m.Part == cameraPart && m.Event == insitu.MarkExposureEnd:
			end = m.At
		}
	}
	if shown.IsZero() || start.IsZero() || end.IsZero() || end.Before(start) {
		return 0, 0, false
	}
	exposure = end.Sub(start)
	return start.Add(exposure / 2).Sub(shown), exposure, true
}
