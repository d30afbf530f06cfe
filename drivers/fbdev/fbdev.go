// Package fbdev drives a spatial light modulator that the host sees as a
// Linux framebuffer (/dev/fbN): the SLM is, electrically, a monitor showing
// an 8-bit grayscale image, so this package only puts gray levels into the
// framebuffer memory. It knows nothing of phase, LUTs or settle time;
// instruments/slm does.
//
// Open accepts two kinds of path. A framebuffer device (a character device
// answering the FBIOGET_VSCREENINFO / FBIOGET_FSCREENINFO ioctls) is mapped
// and its geometry comes from the ioctls. A regular file of the right size
// stands in for the device, which is how the tests and the twins run: its
// geometry comes from sysfs
// (/sys/class/graphics/fbN/{virtual_size,bits_per_pixel,stride}), else from
// the explicit Opts.Geometry, and it is written with pwrite, not mapped, so
// that a file truncated under a running display is an error, not SIGBUS.
// Any other path, such as /dev/zero, is refused.
//
// Supported layouts (all gray, so R=G=B and channel order does not matter):
// 32 bpp XRGB8888, 24 bpp RGB888, 16 bpp RGB565 and 8 bpp (a gray palette is
// assumed). Pixels are stored in host byte order, as the kernel expects.
package fbdev

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Format is the pixel layout of a framebuffer.
type Format int

// Pixel layouts.
const (
	Gray8    Format = 8  // one byte per pixel, gray palette assumed
	RGB565   Format = 16 // 5-6-5 bits, host byte order
	RGB888   Format = 24 // three bytes per pixel
	XRGB8888 Format = 32 // 32-bit word 0x00RRGGBB in host byte order (B,G,R,X on little-endian)
)

func (f Format) String() string {
	switch f {
	case Gray8:
		return "gray8"
	case RGB565:
		return "rgb565"
	case RGB888:
		return "rgb888"
	case XRGB8888:
		return "xrgb8888"
	}
	return "format(" + strconv.Itoa(int(f)) + ")"
}

// BytesPerPixel is the size of one pixel in memory.
func (f Format) BytesPerPixel() int { return int(f) / 8 }

// Limits on accepted geometry: far above any SLM (GAEA is 4160×2464) but low
// enough that Stride×Height cannot overflow and a typo cannot map gigabytes.
const (
	maxSide   = 1 << 14
	maxStride = 1 << 17
)

// Geometry is the visible size and memory layout of a framebuffer.
type Geometry struct {
	Width, Height int    // visible pixels
	Format        Format // from bits per pixel
	Stride        int    // bytes per line (line_length); 0 means Width×BytesPerPixel
	Offset        int    // byte offset of the visible pixel (0,0) in the mapping (panning)
}

// Size is the number of bytes the framebuffer memory or file must hold.
func (g Geometry) Size() int { return g.Offset + g.Stride*g.Height }

// normalize fills a zero Stride and checks g.
func (g Geometry) normalize() (Geometry, error) {
	if g.Stride == 0 {
		g.Stride = g.Width * g.Format.BytesPerPixel()
	}
	return g, g.Validate()
}

// Validate checks that g describes a layout this package can draw into.
func (g Geometry) Validate() error {
	switch g.Format {
	case Gray8, RGB565, RGB888, XRGB8888:
	default:
		return fmt.Errorf("unsupported bits per pixel %d (want 8, 16, 24 or 32)", int(g.Format))
	}
	if g.Width <= 0 || g.Height <= 0 || g.Width > maxSide || g.Height > maxSide {
		return fmt.Errorf("size %dx%d out of range (1..%d)", g.Width, g.Height, maxSide)
	}
	if g.Stride < g.Width*g.Format.BytesPerPixel() || g.Stride > maxStride {
		return fmt.Errorf("stride %d too small for %d pixels of %d bytes, or above %d",
			g.Stride, g.Width, g.Format.BytesPerPixel(), maxStride)
	}
	if g.Offset < 0 || g.Offset > maxStride*maxSide {
		return fmt.Errorf("offset %d out of range", g.Offset)
	}
	return nil
}

func (g Geometry) String() string {
	return fmt.Sprintf("%dx%d %s stride %d", g.Width, g.Height, g.Format, g.Stride)
}

// ParseSysfs builds a geometry from the text of the sysfs attributes
// virtual_size ("1920,1080"), bits_per_pixel ("32") and stride ("7680"),
// each possibly ending in a newline. An empty stride means tightly packed.
//
// virtual_size is the virtual resolution; on a double-buffered driver it is
// taller than the visible one, so callers pass Opts.Geometry.Height to
// restrict it.
func ParseSysfs(virtualSize, bitsPerPixel, stride string) (Geometry, error) {
	var g Geometry
	w, h, ok := strings.Cut(strings.TrimSpace(virtualSize), ",")
	if !ok {
		return g, fmt.Errorf("virtual_size %q: want WIDTH,HEIGHT", virtualSize)
	}
	var err error
	if g.Width, err = atoi(w); err != nil {
		return g, fmt.Errorf("virtual_size %q: %w", virtualSize, err)
	}
	if g.Height, err = atoi(h); err != nil {
		return g, fmt.Errorf("virtual_size %q: %w", virtualSize, err)
	}
	bpp, err := atoi(strings.TrimSpace(bitsPerPixel))
	if err != nil {
		return g, fmt.Errorf("bits_per_pixel %q: %w", bitsPerPixel, err)
	}
	g.Format = Format(bpp)
	if s := strings.TrimSpace(stride); s != "" {
		if g.Stride, err = atoi(s); err != nil {
			return g, fmt.Errorf("stride %q: %w", stride, err)
		}
	}
	return g.normalize()
}

// atoi accepts only plain non-negative decimal numbers that fit the limits,
// so absurd sysfs text fails here instead of overflowing later.
func atoi(s string) (int, error) {
	if s == "" || len(s) > 9 || strings.TrimLeft(s, "0123456789") != "" {
		return 0, errors.New("not a small non-negative decimal number")
	}
	return strconv.Atoi(s)
}
