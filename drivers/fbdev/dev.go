package fbdev

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
)

// ErrClosed is returned by every method of a closed Dev.
var ErrClosed = errors.New("fbdev: closed")

// Opts configures Open. The zero value asks the device for everything.
type Opts struct {
	// Geometry is used when the path is a regular file standing in for a
	// framebuffer and no sysfs directory describes it. Set fields must
	// agree with what the device or sysfs reports; a set Height below the
	// sysfs virtual height selects the visible part of a double-buffered
	// framebuffer.
	Geometry Geometry
	// SysfsDir overrides /sys/class/graphics/<base name of path>; it is
	// read for regular files only (a framebuffer device answers ioctls).
	SysfsDir string
}

// Dev is a framebuffer: the mapped memory of a framebuffer device, or a
// regular file standing in for one. Its methods are safe for concurrent
// use; a frame is written under one lock so two frames never interleave.
//
// A regular file is written with pwrite, never mapped: a mapped file that
// someone truncates turns the next store past its new end into SIGBUS,
// which kills the process before any safe state is reached. Before each
// frame the file's size is checked, so a file that shrank is reported as
// an error; a truncation racing that check only makes the write extend the
// file again.
type Dev struct {
	name string
	geo  Geometry

	mu     sync.Mutex
	mem    []byte       // the device mapping or the caller's memory; nil once closed
	file   *os.File     // a regular file written with pwrite; nil otherwise
	buf    []byte       // staging for file writes: up to ctxRows rows
	sync   func() error // msync, nil when the memory is not a mapping
	unmap  func() error
	closed bool
}

// New returns a Dev drawing into mem, which must hold g.Size() bytes. It is
// for tests and for a framebuffer mapped elsewhere; Open is the usual way.
func New(mem []byte, g Geometry) (*Dev, error) {
	g, err := g.normalize()
	if err != nil {
		return nil, fmt.Errorf("fbdev: %w", err)
	}
	if len(mem) < g.Size() {
		return nil, fmt.Errorf("fbdev: memory of %d bytes is smaller than %s needs (%d)", len(mem), g, g.Size())
	}
	return &Dev{name: "mem", geo: g, mem: mem}, nil
}

// String implements conn.Resource: the path and geometry.
func (d *Dev) String() string { return "fbdev(" + d.name + " " + d.geo.String() + ")" }

// Geometry returns the layout in use.
func (d *Dev) Geometry() Geometry { return d.geo }

// Size returns the visible width and height in pixels.
func (d *Dev) Size() (w, h int) { return d.geo.Width, d.geo.Height }

// ctxRows is how many rows are written between context checks: often enough
// to stop a 4K frame early, rarely enough to cost nothing.
const ctxRows = 64

// Show writes a row-major Width×Height gray image. A cancelled context stops
// it between rows, leaving a partly written frame (the caller's safe state
// is Blank).
func (d *Dev) Show(ctx context.Context, gray []uint8) error {
	w, h := d.geo.Width, d.geo.Height
	if len(gray) != w*h {
		return fmt.Errorf("%s: show: image has %d pixels, want %d×%d=%d", d, len(gray), w, h, w*h)
	}
	return d.rows(ctx, "show", func(y int, row []byte) {
		packRow(d.geo.Format, row, gray[y*w:(y+1)*w])
	})
}

// ShowFunc writes the gray level at(x, y) for every visible pixel.
func (d *Dev) ShowFunc(ctx context.Context, at func(x, y int) uint8) error {
	line := make([]uint8, d.geo.Width)
	return d.rows(ctx, "show", func(y int, row []byte) {
		for x := range line {
			line[x] = at(x, y)
		}
		packRow(d.geo.Format, row, line)
	})
}

// Blank writes zero to every byte of every visible row: gray level 0, the
// SLM's safe state (no phase pattern steering the beam). Stride padding is
// left alone as the kernel may use it.
func (d *Dev) Blank(ctx context.Context) error {
	n := d.geo.Width * d.geo.Format.BytesPerPixel()
	return d.rows(ctx, "blank", func(_ int, row []byte) { clear(row[:n]) })
}

// Halt implements conn.Resource: it blanks the screen without a deadline.
func (d *Dev) Halt() error { return d.Blank(context.Background()) }

// rows calls fill with every visible row, whole stride included; only the
// first Width pixels of a row reach the framebuffer.
func (d *Dev) rows(ctx context.Context, op string, fill func(y int, row []byte)) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return fmt.Errorf("%s: %s: %w", d, op, ErrClosed)
	}
	if d.file != nil {
		return d.fileRows(ctx, op, fill)
	}
	g := d.geo
	for y := range g.Height {
		if y%ctxRows == 0 {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("%s: %s: row %d: %w", d, op, y, err)
			}
		}
		off := g.Offset + y*g.Stride
		fill(y, d.mem[off:off+g.Stride])
	}
	return nil
}

// fileRows is rows for a regular file: ctxRows rows at a time are filled in
// d.buf and written with pwrite, as one write when rows are packed, else
// one per row so that stride padding in the file is left alone.
func (d *Dev) fileRows(ctx context.Context, op string, fill func(y int, row []byte)) error {
	g := d.geo
	st, err := d.file.Stat()
	if err != nil {
		return fmt.Errorf("%s: %s: %w", d, op, err)
	}
	if st.Size() < int64(g.Size()) {
		return fmt.Errorf("%s: %s: file shrank to %d bytes, frame needs %d: refusing to draw", d, op, st.Size(), g.Size())
	}
	n := g.Width * g.Format.BytesPerPixel()
	for y0 := 0; y0 < g.Height; y0 += ctxRows {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("%s: %s: row %d: %w", d, op, y0, err)
		}
		k := min(ctxRows, g.Height-y0)
		chunk := d.buf[:k*g.Stride]
		for i := range k {
			fill(y0+i, chunk[i*g.Stride:(i+1)*g.Stride])
		}
		off := int64(g.Offset + y0*g.Stride)
		if n == g.Stride {
			if _, err := d.file.WriteAt(chunk, off); err != nil {
				return fmt.Errorf("%s: %s: rows %d-%d: %w", d, op, y0, y0+k-1, err)
			}
			continue
		}
		for i := range k {
			if _, err := d.file.WriteAt(chunk[i*g.Stride:i*g.Stride+n], off+int64(i*g.Stride)); err != nil {
				return fmt.Errorf("%s: %s: row %d: %w", d, op, y0+i, err)
			}
		}
	}
	return nil
}

// Sync flushes a device mapping with msync(MS_SYNC). A real framebuffer
// scans memory directly and needs no flush, and neither does a regular file:
// it is written with pwrite, so a twin reading the file sees each frame once
// Show returns, and Sync does nothing more.
func (d *Dev) Sync() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return fmt.Errorf("%s: sync: %w", d, ErrClosed)
	}
	if d.sync == nil {
		return nil
	}
	if err := d.sync(); err != nil {
		return fmt.Errorf("%s: msync: %w", d, err)
	}
	return nil
}

// Close unmaps or closes the device. It does not blank: the safe state is
// the guard's decision (Halt/Blank), and a closed SLM keeps its last image.
// Closing twice is not an error.
func (d *Dev) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	d.mem, d.buf = nil, nil
	if d.file != nil {
		if err := d.file.Close(); err != nil {
			return fmt.Errorf("%s: close: %w", d, err)
		}
		return nil
	}
	if d.unmap == nil {
		return nil
	}
	if err := d.unmap(); err != nil {
		return fmt.Errorf("%s: close: %w", d, err)
	}
	return nil
}
