// Package slm drives a phase-only spatial light modulator that the host sees
// as a display of 8-bit gray levels.
//
// A phase pattern φ (radians, n×n, row-major) becomes a frame in four steps,
// all fixed by Config:
//
//  1. the per-unit correction (e.g. the vendor's flatness map, radians) is
//     added, before the wrap, as the vendors prescribe;
//  2. the sum is wrapped into [0, 2π);
//  3. it is scaled by λ/λ_cal: the LUT was measured at λ_cal, and a liquid
//     crystal's retardance goes as 1/λ, so reaching φ at a longer λ takes
//     the gray level that gave φ·λ/λ_cal at λ_cal;
//  4. the LUT maps phase to gray level: by default linearly, gray =
//     ⌊φ/2π·TwoPiGray⌋ (TwoPiGray is the level that gives 2π, 256 on an
//     ideal panel, 218 on some); or through a measured curve (gray, phase)
//     inverted with gonum's monotone Fritsch–Butland interpolant, so the
//     mapping stays monotone between calibration points.
//
// The pattern is placed in the display at Origin (centred by default) and
// the rest of the display shows Background. After a frame is shown the
// liquid crystal needs Settle to respond; SetPhase waits for it (context
// aware), Show does not, so a rig can settle all its parts at once.
//
// The safe state is Blank: an all-zero frame, no pattern steering the beam.
package slm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"
	"time"

	"gonum.org/v1/gonum/interp"

	"github.com/insitu-lab/insitu"
	"github.com/insitu-lab/insitu/internal/sleep"
)

// Display is where frames go: a row-major Width×Height gray image per Show.
// *fbdev.Dev implements it, as do X11 and Memory.
type Display interface {
	Size() (w, h int)
	Show(ctx context.Context, gray []uint8) error
	Blank(ctx context.Context) error
}

// ConfirmingDisplay is a Display that tells when a frame was handed over
// and when the device confirmed it, for the query's trace.
type ConfirmingDisplay interface {
	Display
	ShowConfirmed(ctx context.Context, gray []uint8) (written, shown time.Time, err error)
}

// Watcher is a display that can be lost between frames (an X window, its
// connection): Done is closed when it is, and Err then says why.
type Watcher interface {
	Done() <-chan struct{}
	Err() error
}

// LUT is a measured phase response: the phase (radians, at the config's
// LUT wavelength) produced by each listed gray level. Both lists have the
// same length ≥ 2, gray strictly increasing, phase strictly increasing.
type LUT struct {
	Gray  []float64 `mapstructure:"gray" doc:"gray levels of the LUT, increasing"`
	Phase []float64 `mapstructure:"phase" unit:"rad" doc:"the phase at each gray level"`
}

// Config is an SLM's calibration and placement. The mapstructure tags are
// the keys of a rig config's slm part.
type Config struct {
	N int `mapstructure:"n" doc:"the phase pattern is N×N controls (the part's inputs, phi_ROW_COL)"`

	// MacroPixel shows each control as a MacroPixel×MacroPixel block of
	// display pixels, as wavefront shaping does to trade resolution for
	// fewer unknowns: the pattern covers (N·MacroPixel)² pixels. 0 or 1:
	// one pixel per control.
	MacroPixel int `mapstructure:"macro_pixel" doc:"each control drives a macro_pixel² block of display pixels; 0 or 1: one pixel"`

	// TwoPiGray is the gray level giving 2π at the LUT wavelength for the
	// linear LUT; 0 means 256. Ignored when LUT is set.
	TwoPiGray float64 `mapstructure:"two_pi_gray" doc:"gray level giving 2π at the LUT wavelength, for the linear LUT; 0: 256"`
	LUT       *LUT    `mapstructure:"lut" doc:"gray-to-phase lookup table, measured; empty: linear"`

	// Wavelength is the working λ and LUTWavelength the λ the LUT was
	// calibrated at (metres). Both zero: no scaling.
	Wavelength    float64 `mapstructure:"wavelength" unit:"m" doc:"working wavelength; with lut_wavelength, phases are scaled by their ratio"`
	LUTWavelength float64 `mapstructure:"lut_wavelength" unit:"m" doc:"wavelength the LUT was calibrated at"`

	// Correction is added to the phase before the wrap (radians): N×N, or
	// display-sized, in which case the window under the pattern is used.
	Correction []float64 `mapstructure:"correction" unit:"rad" doc:"phase added before the wrap: N×N, or display-sized (the window under the pattern)"`

	// Origin is the display pixel (x, y) of the pattern's top-left corner;
	// empty means centred.
	Origin     []int `mapstructure:"origin" doc:"display pixel [x, y] of the pattern's top-left corner; empty: centred"`
	Background int   `mapstructure:"background" doc:"gray level outside the pattern, 0..255"`

	Settle time.Duration `mapstructure:"settle" doc:"liquid-crystal response time after each frame"`
}

// SLM is a display-driven SLM. Methods are safe for concurrent use; frames
// never interleave.
type SLM struct {
	d      Display
	cfg    Config
	w, h   int
	side   int // the pattern's side in display pixels, N·MacroPixel
	mp     int
	x0, y0 int
	scale  float64                   // λ/λ_cal
	gray   func(phi float64) float64 // LUT: phase in [0, 2π·scale) → gray
	corr   []float64                 // (N·MacroPixel)², nil if none
	dcorr  []float64                 // the display-sized correction, when given so
	name   string

	mu    sync.Mutex
	frame []uint8 // reused; the display copies it
}

// New checks cfg against the display's size and returns the SLM. It does
// not touch the display.
func New(d Display, cfg Config) (*SLM, error) {
	if d == nil {
		return nil, errors.New("slm: nil display")
	}
	w, h := d.Size()
	s, err := plan(cfg, w, h, true, fmt.Sprintf("slm(%v)", d))
	if err != nil {
		return nil, err
	}
	s.d = d
	s.frame = make([]uint8, w*h)
	return s, nil
}

// Validate checks c as New does for a w×h display, without one. A size of
// 0×0 stands for a display whose size only the device knows (a framebuffer
// whose geometry comes from the kernel): the checks that need it (the
// pattern and its origin fit in the display, a display-sized correction)
// are then skipped, and New makes them when the display is open.
func (c Config) Validate(w, h int) error {
	known := w > 0 && h > 0
	if !known {
		w, h = 0, 0
	}
	_, err := plan(c, w, h, known, "slm")
	return err
}

// plan checks cfg for a w×h display (known false: of a size not known yet)
// and returns the SLM without its display and frame; name is for errors.
func plan(cfg Config, w, h int, known bool, name string) (*SLM, error) {
	s := &SLM{cfg: cfg, w: w, h: h, scale: 1, name: name, mp: max(1, cfg.MacroPixel)}
	if cfg.MacroPixel < 0 || cfg.MacroPixel > 4096 {
		return nil, fmt.Errorf("%s: macro_pixel %d must be in 0..4096 (0 or 1: one pixel per control)", s.name, cfg.MacroPixel)
	}
	if cfg.N <= 0 || cfg.N > 1<<16 {
		return nil, fmt.Errorf("%s: pattern side n=%d must be positive", s.name, cfg.N)
	}
	n := cfg.N * s.mp // the pattern's side on the display
	s.side = n
	if known && (n > w || n > h) {
		if s.mp > 1 {
			return nil, fmt.Errorf("%s: n=%d controls of %d×%d pixels cover %d pixels, more than min(%d, %d)", s.name, cfg.N, s.mp, s.mp, n, w, h)
		}
		return nil, fmt.Errorf("%s: pattern side n=%d must be in 1..min(%d, %d)", s.name, n, w, h)
	}
	switch {
	case len(cfg.Origin) == 0:
		s.x0, s.y0 = (w-n)/2, (h-n)/2
	case len(cfg.Origin) == 2:
		s.x0, s.y0 = cfg.Origin[0], cfg.Origin[1]
		if s.x0 < 0 || s.y0 < 0 || known && (s.x0+n > w || s.y0+n > h) {
			return nil, fmt.Errorf("%s: origin %v puts the %d×%d pattern outside the %d×%d display", s.name, cfg.Origin, n, n, w, h)
		}
	default:
		return nil, fmt.Errorf("%s: origin %v: want [x, y] or nothing (centred)", s.name, cfg.Origin)
	}
	if cfg.Background < 0 || cfg.Background > 255 {
		return nil, fmt.Errorf("%s: background gray %d outside 0..255", s.name, cfg.Background)
	}
	if cfg.Settle < 0 {
		return nil, fmt.Errorf("%s: settle %v is negative", s.name, cfg.Settle)
	}
	if (cfg.Wavelength == 0) != (cfg.LUTWavelength == 0) || cfg.Wavelength < 0 || cfg.LUTWavelength < 0 ||
		!finite(cfg.Wavelength) || !finite(cfg.LUTWavelength) {
		return nil, fmt.Errorf("%s: wavelength %g and lut_wavelength %g: give both (positive) or neither", s.name, cfg.Wavelength, cfg.LUTWavelength)
	}
	if cfg.Wavelength > 0 {
		s.scale = cfg.Wavelength / cfg.LUTWavelength
	}
	top := 2 * math.Pi * s.scale // the largest phase the LUT must reach
	if cfg.LUT == nil {
		tp := cfg.TwoPiGray
		if tp == 0 {
			tp = 256
		}
		if !(tp > 0 && tp <= 256) {
			return nil, fmt.Errorf("%s: two_pi_gray %g outside (0, 256]", s.name, tp)
		}
		if top/(2*math.Pi)*tp > 256+1e-9 {
			return nil, fmt.Errorf("%s: 2π at λ=%g needs gray %.1f, beyond 8 bits: the panel cannot reach 2π", s.name, cfg.Wavelength, top/(2*math.Pi)*tp)
		}
		k := tp / (2 * math.Pi)
		s.gray = func(phi float64) float64 { return phi * k }
	} else {
		g, err := fitLUT(*cfg.LUT, top)
		if err != nil {
			return nil, fmt.Errorf("%s: lut: %w", s.name, err)
		}
		s.gray = g
	}
	switch c := cfg.Correction; {
	case len(c) == 0:
	case len(c) == n*n:
		s.corr = c
	case !known:
		// Display-sized, perhaps: New checks it against the display. Its
		// values are checked below all the same.
		s.corr = c
	case len(c) == w*h:
		s.dcorr = c
		s.corr = make([]float64, n*n)
		for r := range n {
			copy(s.corr[r*n:(r+1)*n], c[(s.y0+r)*w+s.x0:])
		}
	default:
		return nil, fmt.Errorf("%s: correction has %d values, want %d×%d (pattern) or %d×%d (display)", s.name, len(c), n, n, w, h)
	}
	for i, v := range s.corr {
		if !finite(v) {
			return nil, fmt.Errorf("%s: correction[%d] = %v is not finite", s.name, i, v)
		}
	}
	return s, nil
}

// fitLUT inverts a measured phase response: the returned function maps a
// phase to a fractional gray level, monotone between the points.
func fitLUT(l LUT, top float64) (func(float64) float64, error) {
	if len(l.Gray) != len(l.Phase) || len(l.Gray) < 2 {
		return nil, fmt.Errorf("gray and phase need the same length ≥ 2, have %d and %d", len(l.Gray), len(l.Phase))
	}
	for i := range l.Gray {
		if !finite(l.Gray[i]) || !finite(l.Phase[i]) || l.Gray[i] < 0 || l.Gray[i] > 255 {
			return nil, fmt.Errorf("point %d (gray %v, phase %v): gray must be in [0, 255], both finite", i, l.Gray[i], l.Phase[i])
		}
		if i > 0 && (l.Gray[i] <= l.Gray[i-1] || l.Phase[i] <= l.Phase[i-1]) {
			return nil, fmt.Errorf("point %d: gray and phase must both strictly increase", i)
		}
	}
	lo, hi := l.Phase[0], l.Phase[len(l.Phase)-1]
	if lo > 0 || hi < top-1e-9 {
		return nil, fmt.Errorf("phase range [%g, %g] does not cover [0, %g] (2π at the working wavelength)", lo, hi, top)
	}
	var p interp.Predictor
	if len(l.Gray) == 2 {
		var pl interp.PiecewiseLinear
		if err := pl.Fit(l.Phase, l.Gray); err != nil {
			return nil, err
		}
		p = &pl
	} else {
		var fb interp.FritschButland
		if err := fb.Fit(l.Phase, l.Gray); err != nil {
			return nil, err
		}
		p = &fb
	}
	return p.Predict, nil
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// String names the SLM by its display.
func (s *SLM) String() string { return s.name }

// N is the side of the phase pattern in controls.
func (s *SLM) N() int { return s.cfg.N }

// Side is the side of the pattern on the display in pixels: N·MacroPixel.
func (s *SLM) Side() int { return s.side }

// Settle is the wait after each frame.
func (s *SLM) Settle() time.Duration { return s.cfg.Settle }

// Gray is the gray level of phase phi (radians) at pattern pixel i
// (row-major in the pattern's (N·MacroPixel)² display pixels), after
// correction, wrap, wavelength scaling and LUT.
func (s *SLM) Gray(i int, phi float64) uint8 {
	if s.corr != nil {
		phi += s.corr[i]
	}
	return s.level(phi)
}

// level is the gray level of phase phi (radians, correction included):
// wrapped, scaled by λ/λ_cal and through the LUT.
func (s *SLM) level(phi float64) uint8 {
	phi = math.Mod(phi, 2*math.Pi)
	if phi < 0 {
		phi += 2 * math.Pi
	}
	// A tiny margin keeps a calibration point exactly on its own level
	// despite rounding in the interpolant.
	g := math.Floor(s.gray(phi*s.scale) + 1e-9)
	return uint8(min(max(g, 0), 255))
}

// Frame renders phase into dst, a display-sized frame: the pattern at the
// origin, each control a macro-pixel block, Background elsewhere.
func (s *SLM) Frame(phase []float64, dst []uint8) error {
	n := s.cfg.N
	if len(phase) != n*n {
		return fmt.Errorf("%s: phase has %d values, want %d×%d", s.name, len(phase), n, n)
	}
	if len(dst) != s.w*s.h {
		return fmt.Errorf("%s: frame has %d pixels, want %d×%d", s.name, len(dst), s.w, s.h)
	}
	for i, v := range phase {
		if !finite(v) {
			return fmt.Errorf("%s: phase[%d] = %v is not finite", s.name, i, v)
		}
	}
	bg := uint8(s.cfg.Background)
	for i := range dst {
		dst[i] = bg
	}
	for r := range s.side {
		row := dst[(s.y0+r)*s.w+s.x0:]
		ctl := phase[(r/s.mp)*n:]
		for c := range s.side {
			row[c] = s.Gray(r*s.side+c, ctl[c/s.mp])
		}
	}
	return nil
}

// ImageFrame renders a display-sized phase image (radians, row-major
// Width×Height) into dst through the same correction, wrap, wavelength
// scaling and LUT as Frame: every display pixel is a control. The
// correction applies where it is defined: everywhere if it was given
// display-sized, else on the pattern's square.
func (s *SLM) ImageFrame(phase []float64, dst []uint8) error {
	if len(phase) != s.w*s.h || len(dst) != s.w*s.h {
		return fmt.Errorf("%s: image has %d phases and frame %d pixels, want %d×%d", s.name, len(phase), len(dst), s.w, s.h)
	}
	for i, v := range phase {
		if !finite(v) {
			return fmt.Errorf("%s: image phase %d (x %d, y %d) = %v is not finite", s.name, i, i%s.w, i/s.w, v)
		}
	}
	for y := range s.h {
		for x := range s.w {
			i := y*s.w + x
			phi := phase[i]
			switch px, py := x-s.x0, y-s.y0; {
			case s.dcorr != nil:
				phi += s.dcorr[i]
			case s.corr != nil && px >= 0 && py >= 0 && px < s.side && py < s.side:
				phi += s.corr[py*s.side+px]
			}
			dst[i] = s.level(phi)
		}
	}
	return nil
}

// Show renders phase and puts it on the display without waiting for the
// liquid crystal; a file-backed display is flushed so a twin sees the
// whole frame. The instants the frame was written and shown are marked on
// the query's trace (insitu.MarkQuery); a rig names them after its part.
func (s *SLM) Show(ctx context.Context, phase []float64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.Frame(phase, s.frame); err != nil {
		return fmt.Errorf("show: %w", err)
	}
	return s.put(ctx)
}

// ShowImage renders a display-sized phase image (see ImageFrame) and puts
// it on the display as Show does: alignment patterns over the whole panel.
func (s *SLM) ShowImage(ctx context.Context, phase []float64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.ImageFrame(phase, s.frame); err != nil {
		return fmt.Errorf("show image: %w", err)
	}
	return s.put(ctx)
}

// put shows s.frame, confirmed as far as the display can, and marks the
// trace. s.mu is held.
func (s *SLM) put(ctx context.Context) error {
	var written, shown time.Time
	if cd, ok := s.d.(ConfirmingDisplay); ok {
		var err error
		if written, shown, err = cd.ShowConfirmed(ctx, s.frame); err != nil {
			return fmt.Errorf("%s: show: %w", s.name, err)
		}
	} else {
		if err := s.d.Show(ctx, s.frame); err != nil {
			return fmt.Errorf("%s: show: %w", s.name, err)
		}
		written = s.now()
		if err := s.sync(); err != nil {
			return err
		}
		shown = s.now()
	}
	insitu.MarkQuery(ctx, "", insitu.MarkWritten, written)
	insitu.MarkQuery(ctx, "", insitu.MarkShown, shown)
	return nil
}

// now reads the display's clock when it has one (a twin panel's may be a
// dry run's simulated clock), the wall clock otherwise.
func (s *SLM) now() time.Time {
	if c, ok := s.d.(interface{ Now() time.Time }); ok {
		return c.Now()
	}
	return time.Now()
}

// PatternCorrection returns the correction the SLM adds under its pattern
// ((N·MacroPixel)² display pixels, radians), nil when it has none.
func (s *SLM) PatternCorrection() []float64 { return append([]float64(nil), s.corr...) }

// Config returns the configuration the SLM was built with.
func (s *SLM) Config() Config {
	c := s.cfg
	c.Correction = append([]float64(nil), c.Correction...)
	c.Origin = append([]int(nil), c.Origin...)
	if c.LUT != nil {
		l := *c.LUT
		l.Gray, l.Phase = append([]float64(nil), l.Gray...), append([]float64(nil), l.Phase...)
		c.LUT = &l
	}
	return c
}

func (s *SLM) sync() error {
	if sy, ok := s.d.(interface{ Sync() error }); ok {
		if err := sy.Sync(); err != nil {
			return fmt.Errorf("%s: sync: %w", s.name, err)
		}
	}
	return nil
}

// SetPhase shows phase and waits Settle.
func (s *SLM) SetPhase(ctx context.Context, phase []float64) error {
	if err := s.Show(ctx, phase); err != nil {
		return err
	}
	if err := sleep.For(ctx, s.cfg.Settle); err != nil {
		return fmt.Errorf("%s: settle: %w", s.name, err)
	}
	insitu.MarkQuery(ctx, "", insitu.MarkSettled, time.Now())
	return nil
}

// Blank shows an all-zero frame: the safe state.
func (s *SLM) Blank(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.d.Blank(ctx); err != nil {
		return fmt.Errorf("%s: blank: %w", s.name, err)
	}
	return s.sync()
}

// SafeState blanks the display.
func (s *SLM) SafeState(ctx context.Context) error { return s.Blank(ctx) }

// Close releases the display if it holds anything. It does not blank: the
// safe state is the guard's job, and runs before Close.
func (s *SLM) Close() error {
	if c, ok := s.d.(io.Closer); ok {
		if err := c.Close(); err != nil {
			return fmt.Errorf("%s: close: %w", s.name, err)
		}
	}
	return nil
}

// Display returns the display the SLM draws on (for twins that watch it).
func (s *SLM) Display() Display { return s.d }

// Origin returns the display pixel of the pattern's top-left corner.
func (s *SLM) Origin() (x, y int) { return s.x0, s.y0 }
