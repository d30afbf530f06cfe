package slm

import (
	"context"
	"fmt"
	"sync"

	"github.com/insitu-lab/insitu/drivers/fbdev"
)

// Memory is an in-memory display that keeps the last frame, for twins and
// tests.
type Memory struct {
	w, h int

	mu     sync.Mutex
	last   []uint8
	frames int
}

// NewMemory returns a w×h display showing zeros.
func NewMemory(w, h int) *Memory { return &Memory{w: w, h: h, last: make([]uint8, w*h)} }

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
	Type string `mapstructure:"type"` // fbdev | memory
	// fbdev: the device (or a plain file standing in for it) and, for a
	// plain file or to check the device, its geometry.
	Path     string `mapstructure:"path"`
	SysfsDir string `mapstructure:"sysfs_dir"`
	// Width, Height: required for memory; for fbdev they must agree with
	// the device (or describe a plain file).
	Width  int `mapstructure:"width"`
	Height int `mapstructure:"height"`
	Bits   int `mapstructure:"bits"`   // fbdev bits per pixel: 8, 16, 24, 32
	Stride int `mapstructure:"stride"` // fbdev bytes per line; 0: packed
}

// Size returns the size of the display c configures without opening
// anything, after checking what OpenDisplay checks before it opens: a
// memory display's size; a framebuffer's path and the geometry fields it
// sets. A framebuffer's size is its width and height when both are set
// (the device must agree, or a plain file is that size); otherwise it comes
// from the kernel when the device is opened, and Size returns 0, 0.
func (c DisplayConfig) Size() (w, h int, err error) {
	switch c.Type {
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
	return 0, 0, fmt.Errorf("display type %q: want fbdev or memory", c.Type)
}

// OpenDisplay opens the configured backend.
func OpenDisplay(c DisplayConfig) (Display, error) {
	if _, _, err := c.Size(); err != nil {
		return nil, err
	}
	if c.Type == "memory" {
		return NewMemory(c.Width, c.Height), nil
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
