package slm

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/insitu-lab/insitu/drivers/fbdev"
	"github.com/insitu-lab/insitu/drivers/x11"
)

// X11 is a full-screen window on one monitor as a Display. Frames are
// confirmed by the X server (a round trip, then the vblank where the
// Present extension exists) before Show returns.
type X11 struct{ *x11.Window }

// ShowConfirmed implements ConfirmingDisplay.
func (d X11) ShowConfirmed(ctx context.Context, gray []uint8) (written, shown time.Time, err error) {
	f, err := d.ShowFrame(ctx, gray)
	return f.Written, f.Shown, err
}

// Memory is an in-memory display that keeps the last frame, for twins and
// tests. As the panel of a twin it may respond like a liquid crystal
// (SetResponse): each pixel's level then relaxes toward the level shown,
// and Levels tells where it is at a given time.
type Memory struct {
	w, h int

	mu     sync.Mutex
	last   []uint8
	frames int

	// The first-order response: levels relax from from, where they were
	// when the last frame was shown at shown, toward last with time
	// constant tau. tau 0: the panel follows at once.
	tau   time.Duration
	now   func() time.Time
	from  []float64
	shown time.Time
}

// NewMemory returns a w×h display showing zeros.
func NewMemory(w, h int) *Memory {
	return &Memory{w: w, h: h, last: make([]uint8, w*h), now: time.Now}
}

// SetResponse makes the panel respond to each frame as a first-order
// liquid crystal: a pixel shown level g at time t₀, from level s, is at
// g + (s − g)·exp(−(t − t₀)/tau) at time t. now is the panel's clock (nil:
// the wall clock; a dry run passes its simulated one). tau 0 makes the
// panel follow at once, as it does by default.
func (m *Memory) SetResponse(tau time.Duration, now func() time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if now == nil {
		now = time.Now
	}
	m.now, m.tau = now, tau
	if tau > 0 && m.from == nil {
		m.from = make([]float64, len(m.last))
		for i, g := range m.last {
			m.from[i] = float64(g)
		}
	}
}

// SetClock sets the panel's clock (nil: the wall clock), keeping its
// response.
func (m *Memory) SetClock(now func() time.Time) {
	m.mu.Lock()
	tau := m.tau
	m.mu.Unlock()
	m.SetResponse(tau, now)
}

// Response returns the panel's time constant (0: it follows at once).
func (m *Memory) Response() time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.tau
}

// Now reads the panel's clock.
func (m *Memory) Now() time.Time {
	m.mu.Lock()
	now := m.now
	m.mu.Unlock()
	return now()
}

// Levels writes into dst (w·h values) the level of every pixel at time
// at: the last frame's for a panel that follows at once, where the liquid
// crystal has got to for one with a response. A time before the last
// frame was shown counts as the moment it was shown.
func (m *Memory) Levels(at time.Time, dst []float64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.tau == 0 {
		for i, g := range m.last {
			dst[i] = float64(g)
		}
		return
	}
	k := math.Exp(-max(at.Sub(m.shown), 0).Seconds() / m.tau.Seconds())
	for i, g := range m.last {
		dst[i] = float64(g) + (m.from[i]-float64(g))*k
	}
}

// settleLocked moves the response's starting point to now, before a new
// frame replaces last; m.mu is held.
func (m *Memory) settleLocked() {
	if m.tau == 0 {
		return
	}
	now := m.now()
	k := math.Exp(-max(now.Sub(m.shown), 0).Seconds() / m.tau.Seconds())
	for i, g := range m.last {
		m.from[i] = float64(g) + (m.from[i]-float64(g))*k
	}
	m.shown = now
}

// String names the display.
func (m *Memory) String() string { return fmt.Sprintf("memory %dx%d", m.w, m.h) }

// Size implements Display.
func (m *Memory) Size() (w, h int) { return m.w, m.h }

// Show implements Display; it copies gray.
func (m *Memory) Show(ctx context.Context, gray []uint8) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(gray) != m.w*m.h {
		return fmt.Errorf("memory display: frame has %d pixels, want %d×%d", len(gray), m.w, m.h)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.settleLocked()
	copy(m.last, gray)
	m.frames++
	return nil
}

// Blank implements Display.
func (m *Memory) Blank(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.settleLocked()
	clear(m.last)
	m.frames++
	return nil
}

// Last returns a copy of the frame on display.
func (m *Memory) Last() []uint8 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]uint8(nil), m.last...)
}

// Frames is how many frames (blanks included) were shown.
func (m *Memory) Frames() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.frames
}

// DisplayConfig selects and opens a display backend; the keys of a rig
// config's slm part `display` section.
type DisplayConfig struct {
	Type string `mapstructure:"type" doc:"x11 (a window on one monitor of an X display), fbdev (a Linux framebuffer) or memory (in-process, for twins)"` // x11 | fbdev | memory
	// fbdev: the device (or a plain file standing in for it) and, for a
	// plain file or to check the device, its geometry.
	Path     string `mapstructure:"path" doc:"fbdev: the device, e.g. /dev/fb1 (or a plain file standing in for it)"`
	SysfsDir string `mapstructure:"sysfs_dir" doc:"fbdev: sysfs directory of the framebuffer's geometry; default /sys/class/graphics/fbN"`
	// Width, Height: required for memory; for fbdev and x11 they must
	// agree with the device or monitor (or describe a plain file).
	Width  int `mapstructure:"width" doc:"display width in pixels (memory: required; fbdev, x11: checked against the device or monitor)"`
	Height int `mapstructure:"height" doc:"display height in pixels (memory: required; fbdev, x11: checked against the device or monitor)"`
	Bits   int `mapstructure:"bits" doc:"fbdev bits per pixel: 8, 16, 24 or 32"` // fbdev bits per pixel: 8, 16, 24, 32
	Stride int `mapstructure:"stride" doc:"fbdev bytes per line; 0: packed"`     // fbdev bytes per line; 0: packed

	// x11: a full-screen window on one monitor of an X display ("" for
	// $DISPLAY), chosen by RandR monitor or output name, or by geometry
	// (WxH+X+Y). The monitor holding the desktop is refused unless
	// AllowPrimary.
	X11Display   string `mapstructure:"x11_display" doc:"x11: the X display, e.g. :0; empty: $DISPLAY"`
	Output       string `mapstructure:"output" doc:"x11: the SLM's monitor by RandR monitor or output name, e.g. HDMI-1"`
	Geometry     string `mapstructure:"geometry" doc:"x11: the SLM's monitor by geometry WxH+X+Y, instead of output"`
	AllowPrimary bool   `mapstructure:"allow_primary" doc:"x11: allow the monitor that holds the desktop (refused otherwise)"`

	// Response is a memory display's liquid-crystal time constant (see
	// Memory.SetResponse), for a twin panel that takes time to settle;
	// 0: it follows each frame at once.
	Response time.Duration `mapstructure:"response" doc:"memory: the twin panel's liquid-crystal time constant (first-order response); 0: it follows each frame at once"`
}

// String names the display the config selects: "fbdev /dev/fb1",
// "x11 :0 output HDMI-1".
func (c DisplayConfig) String() string {
	switch c.Type {
	case "fbdev":
		return "fbdev " + c.Path
	case "x11":
		s := "x11"
		if c.X11Display != "" {
			s += " " + c.X11Display
		}
		if c.Output != "" {
			s += " output " + c.Output
		}
		if c.Geometry != "" {
			s += " geometry " + c.Geometry
		}
		return s
	}
	return c.Type
}

// foreign returns the first key set in c that does not belong to its type.
func (c DisplayConfig) foreign() string {
	x11 := map[string]bool{"x11_display": c.X11Display != "", "output": c.Output != "", "geometry": c.Geometry != "", "allow_primary": c.AllowPrimary}
	fb := map[string]bool{"path": c.Path != "", "sysfs_dir": c.SysfsDir != "", "bits": c.Bits != 0, "stride": c.Stride != 0}
	var other map[string]bool
	switch c.Type {
	case "x11":
		other = fb
	case "fbdev":
		other = x11
	case "memory":
		other = maps.Clone(x11)
		maps.Copy(other, fb)
	}
	keys := slices.Sorted(maps.Keys(other))
	for _, k := range keys {
		if other[k] {
			return k
		}
	}
	return ""
}

// Size returns the size of the display c configures without opening
// anything, after checking what OpenDisplay checks before it opens: a
// memory display's size; a framebuffer's path and the geometry fields it
// sets. A framebuffer's size is its width and height when both are set
// (the device must agree, or a plain file is that size); otherwise it comes
// from the kernel when the device is opened, and Size returns 0, 0.
func (c DisplayConfig) Size() (w, h int, err error) {
	if c.Response != 0 && (c.Type != "memory" || c.Response < 0) {
		return 0, 0, fmt.Errorf("response %v: a memory display's liquid-crystal time constant, ≥ 0 (a real panel responds as it does)", c.Response)
	}
	if k := c.foreign(); k != "" {
		return 0, 0, fmt.Errorf("%s display: %s is not a key of this display type", c.Type, k)
	}
	switch c.Type {
	case "x11":
		if c.Width < 0 || c.Height < 0 || (c.Width == 0) != (c.Height == 0) {
			return 0, 0, fmt.Errorf("x11 display: width %d and height %d: give both (the monitor's size) or neither", c.Width, c.Height)
		}
		if c.Geometry != "" {
			r, err := x11.ParseGeometry(c.Geometry)
			if err != nil {
				return 0, 0, fmt.Errorf("x11 display: %w", err)
			}
			if c.Width != 0 && (c.Width != r.Dx() || c.Height != r.Dy()) {
				return 0, 0, fmt.Errorf("x11 display: width %d and height %d disagree with geometry %s", c.Width, c.Height, c.Geometry)
			}
			return r.Dx(), r.Dy(), nil
		}
		if c.X11Display != "" {
			if _, err := x11.ParseDisplay(c.X11Display); err != nil {
				return 0, 0, fmt.Errorf("x11 display: %w", err)
			}
		}
		return c.Width, c.Height, nil
	case "memory":
		if c.Width <= 0 || c.Height <= 0 {
			return 0, 0, fmt.Errorf("memory display: width and height must be positive, got %d×%d", c.Width, c.Height)
		}
		return c.Width, c.Height, nil
	case "fbdev":
		if c.Path == "" {
			return 0, 0, fmt.Errorf("fbdev display: path is required")
		}
		if c.Width < 0 || c.Height < 0 || c.Stride < 0 {
			return 0, 0, fmt.Errorf("fbdev display: width %d, height %d and stride %d must not be negative", c.Width, c.Height, c.Stride)
		}
		f := fbdev.Format(c.Bits)
		switch f {
		case 0, fbdev.Gray8, fbdev.RGB565, fbdev.RGB888, fbdev.XRGB8888:
		default:
			return 0, 0, fmt.Errorf("fbdev display: bits %d: want 8, 16, 24 or 32", c.Bits)
		}
		if c.Width == 0 || c.Height == 0 {
			return 0, 0, nil
		}
		if f != 0 {
			g := fbdev.Geometry{Width: c.Width, Height: c.Height, Format: f, Stride: c.Stride}
			if g.Stride == 0 {
				g.Stride = g.Width * f.BytesPerPixel()
			}
			if err := g.Validate(); err != nil {
				return 0, 0, fmt.Errorf("fbdev display: %w", err)
			}
		}
		return c.Width, c.Height, nil
	}
	return 0, 0, fmt.Errorf("display type %q: want x11, fbdev or memory", c.Type)
}

// OpenDisplay opens the configured backend.
func OpenDisplay(ctx context.Context, c DisplayConfig) (Display, error) {
	if _, _, err := c.Size(); err != nil {
		return nil, err
	}
	switch c.Type {
	case "memory":
		m := NewMemory(c.Width, c.Height)
		m.SetResponse(c.Response, nil)
		return m, nil
	case "x11":
		w, err := x11.Open(ctx, x11.Config{
			Display:  c.X11Display,
			Selector: x11.Selector{Output: c.Output, Geometry: c.Geometry, AllowPrimary: c.AllowPrimary},
			Width:    c.Width, Height: c.Height,
		})
		if err != nil {
			return nil, err
		}
		return X11{w}, nil
	}
	d, err := fbdev.Open(c.Path, &fbdev.Opts{
		SysfsDir: c.SysfsDir,
		Geometry: fbdev.Geometry{Width: c.Width, Height: c.Height, Format: fbdev.Format(c.Bits), Stride: c.Stride},
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}
