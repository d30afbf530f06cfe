//go:build linux

package fbdev

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"unsafe"
)

// Kernel ABI from <linux/fb.h>. The syscall package is used instead of
// golang.org/x/sys/unix because the module does not require x/sys directly.
const (
	ioctlGetVScreenInfo = 0x4600 // FBIOGET_VSCREENINFO
	ioctlGetFScreenInfo = 0x4602 // FBIOGET_FSCREENINFO
)

type fbBitfield struct{ Offset, Length, MSBRight uint32 }

// fbVarScreeninfo is struct fb_var_screeninfo (160 bytes).
type fbVarScreeninfo struct {
	Xres, Yres, XresVirtual, YresVirtual uint32
	Xoffset, Yoffset                     uint32
	BitsPerPixel, Grayscale              uint32
	Red, Green, Blue, Transp             fbBitfield
	Nonstd, Activate, Height, Width      uint32
	AccelFlags, Pixclock                 uint32
	LeftMargin, RightMargin              uint32
	UpperMargin, LowerMargin             uint32
	HsyncLen, VsyncLen, Sync, Vmode      uint32
	Rotate, Colorspace                   uint32
	Reserved                             [4]uint32
}

// fbFixScreeninfo is struct fb_fix_screeninfo (80 bytes on 64-bit, 68 on
// 32-bit: unsigned long is uintptr).
type fbFixScreeninfo struct {
	ID                             [16]byte
	SmemStart                      uintptr
	SmemLen, Type, TypeAux, Visual uint32
	Xpanstep, Ypanstep, Ywrapstep  uint16
	LineLength                     uint32
	MmioStart                      uintptr
	MmioLen, Accel                 uint32
	Capabilities                   uint16
	Reserved                       [2]uint16
}

func ioctl(fd uintptr, req uintptr, arg unsafe.Pointer) error {
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, fd, req, uintptr(arg)); errno != 0 {
		return errno
	}
	return nil
}

// Open opens the framebuffer at path: a framebuffer device such as
// "/dev/fb1", which is mapped, or a regular file standing in for one, which
// is written with pwrite (see Dev). opts may be nil.
//
// Anything else is refused, a character device that does not answer
// FBIOGET_VSCREENINFO included: /dev/zero or /dev/null would accept every
// frame and show nothing.
func Open(path string, opts *Opts) (*Dev, error) {
	if opts == nil {
		opts = &Opts{}
	}
	// O_NOCTTY: a terminal opened by mistake must not become the
	// process's controlling terminal before it is refused below.
	f, err := os.OpenFile(path, os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, fmt.Errorf("fbdev: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("fbdev: %w", err)
	}
	switch mode := st.Mode(); {
	case mode.IsRegular():
		d, err := openFile(f, path, st.Size(), opts)
		if err != nil {
			f.Close()
			return nil, err
		}
		return d, nil
	case mode&os.ModeCharDevice != 0:
		// The mapping outlives the descriptor, so the file is closed on return.
		defer f.Close()
		return openDevice(f, path, opts)
	default:
		f.Close()
		return nil, fmt.Errorf("fbdev: %s is %s, neither a framebuffer device nor a regular file", path, kind(mode))
	}
}

// kind names a file type for an error message.
func kind(m os.FileMode) string {
	switch {
	case m&os.ModeDevice != 0:
		return "a block device"
	case m&os.ModeNamedPipe != 0:
		return "a named pipe"
	case m&os.ModeSocket != 0:
		return "a socket"
	case m.IsDir():
		return "a directory"
	}
	return "a file of type " + m.Type().String()
}

// openDevice maps a framebuffer device, whose geometry comes from the
// ioctls; a character device that does not answer them is refused.
func openDevice(f *os.File, path string, opts *Opts) (*Dev, error) {
	g, limit, err := fromIoctl(f.Fd())
	if err != nil {
		return nil, fmt.Errorf("fbdev: %s is a character device but not a framebuffer (%w)", path, err)
	}
	if err := agree(g, opts.Geometry, "ioctl", true); err != nil {
		return nil, fmt.Errorf("fbdev(%s): %w", path, err)
	}
	if limit >= 0 && int64(g.Size()) > limit {
		// Touching a mapping past the device memory is SIGBUS, not an error.
		return nil, fmt.Errorf("fbdev(%s): %s needs %d bytes, the device has %d", path, g, g.Size(), limit)
	}
	mem, err := syscall.Mmap(int(f.Fd()), 0, g.Size(), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("fbdev(%s): mmap %d bytes: %w", path, g.Size(), err)
	}
	d := &Dev{name: path, geo: g, mem: mem}
	d.unmap = func() error { return syscall.Munmap(mem) }
	d.sync = func() error {
		_, _, errno := syscall.Syscall(syscall.SYS_MSYNC, uintptr(unsafe.Pointer(&mem[0])), uintptr(len(mem)), syscall.MS_SYNC)
		if errno != 0 {
			return errno
		}
		return nil
	}
	return d, nil
}

// openFile returns a Dev writing into the regular file f of size bytes,
// with the geometry from sysfs or opts. It takes f on success.
func openFile(f *os.File, path string, size int64, opts *Opts) (*Dev, error) {
	g, err := fileGeometry(path, opts)
	if err != nil {
		return nil, fmt.Errorf("fbdev(%s): %w", path, err)
	}
	if int64(g.Size()) > size {
		return nil, fmt.Errorf("fbdev(%s): %s needs %d bytes, the file has %d", path, g, g.Size(), size)
	}
	return &Dev{name: path, geo: g, file: f, buf: make([]byte, min(ctxRows, g.Height)*g.Stride)}, nil
}

// fileGeometry asks sysfs, then opts, for the geometry of a regular file.
func fileGeometry(path string, opts *Opts) (Geometry, error) {
	dir := opts.SysfsDir
	if dir == "" {
		dir = filepath.Join("/sys/class/graphics", filepath.Base(path))
	}
	g, err := fromSysfs(dir)
	switch {
	case err == nil:
		if err := agree(g, opts.Geometry, dir, false); err != nil {
			return g, err
		}
		return restrict(g, opts.Geometry), nil
	case !errors.Is(err, os.ErrNotExist):
		return g, err
	}
	g, err = opts.Geometry.normalize()
	if err != nil {
		return g, fmt.Errorf("a regular file, no sysfs in %s, and the configured geometry is invalid: %w", dir, err)
	}
	return g, nil
}

// restrict narrows a sysfs (virtual) geometry to the configured visible size.
func restrict(virtual, want Geometry) Geometry {
	if want.Width > 0 {
		virtual.Width = want.Width
	}
	if want.Height > 0 {
		virtual.Height = want.Height
	}
	return virtual
}

// agree checks that the set fields of want match what the device reports;
// with exact false, a smaller width or height is allowed (visible part of a
// larger virtual screen).
func agree(got, want Geometry, src string, exact bool) error {
	bad := func(field string, g, w int) error {
		return fmt.Errorf("configured %s %d disagrees with %s (%d)", field, w, src, g)
	}
	size := func(g, w int) bool { return w == 0 || w == g || (!exact && w < g) }
	switch {
	case !size(got.Width, want.Width):
		return bad("width", got.Width, want.Width)
	case !size(got.Height, want.Height):
		return bad("height", got.Height, want.Height)
	case want.Format != 0 && want.Format != got.Format:
		return bad("bits per pixel", int(got.Format), int(want.Format))
	case want.Stride != 0 && want.Stride != got.Stride:
		return bad("stride", got.Stride, want.Stride)
	}
	return nil
}

func fromIoctl(fd uintptr) (Geometry, int64, error) {
	var v fbVarScreeninfo
	var fx fbFixScreeninfo
	if err := ioctl(fd, ioctlGetVScreenInfo, unsafe.Pointer(&v)); err != nil {
		return Geometry{}, 0, fmt.Errorf("FBIOGET_VSCREENINFO: %w", err)
	}
	if err := ioctl(fd, ioctlGetFScreenInfo, unsafe.Pointer(&fx)); err != nil {
		return Geometry{}, 0, fmt.Errorf("FBIOGET_FSCREENINFO: %w", err)
	}
	return fromScreeninfo(&v, &fx)
}

// fromScreeninfo turns the kernel structs into a Geometry; split out so the
// checks are tested without a device.
func fromScreeninfo(v *fbVarScreeninfo, fx *fbFixScreeninfo) (Geometry, int64, error) {
	g := Geometry{
		Width:  int(v.Xres),
		Height: int(v.Yres),
		Format: Format(v.BitsPerPixel),
		Stride: int(fx.LineLength),
	}
	rgb := func(r, gr, b uint32) bool { return v.Red.Length == r && v.Green.Length == gr && v.Blue.Length == b }
	switch g.Format {
	case RGB565:
		if !rgb(5, 6, 5) {
			return g, 0, fmt.Errorf("16 bpp with %d-%d-%d bits is not RGB565", v.Red.Length, v.Green.Length, v.Blue.Length)
		}
	case RGB888, XRGB8888:
		if !rgb(8, 8, 8) {
			return g, 0, fmt.Errorf("%d bpp with %d-%d-%d bits is not 8-8-8", v.BitsPerPixel, v.Red.Length, v.Green.Length, v.Blue.Length)
		}
	}
	if v.Xoffset > maxSide || v.Yoffset > maxSide {
		return g, 0, fmt.Errorf("panning offset %d,%d out of range", v.Xoffset, v.Yoffset)
	}
	g.Offset = int(v.Yoffset)*g.Stride + int(v.Xoffset)*g.Format.BytesPerPixel()
	g, err := g.normalize()
	if err != nil {
		return g, 0, err
	}
	limit := int64(-1)
	if fx.SmemLen > 0 {
		limit = int64(fx.SmemLen)
	}
	return g, limit, nil
}

func fromSysfs(dir string) (Geometry, error) {
	read := func(name string, must bool) (string, error) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil && !must && errors.Is(err, os.ErrNotExist) {
			return "", nil
		}
		return string(b), err
	}
	vs, err := read("virtual_size", true)
	if err != nil {
		return Geometry{}, err
	}
	bpp, err := read("bits_per_pixel", true)
	if err != nil {
		return Geometry{}, err
	}
	stride, err := read("stride", false)
	if err != nil {
		return Geometry{}, err
	}
	g, err := ParseSysfs(vs, bpp, stride)
	if err != nil {
		return g, fmt.Errorf("sysfs %s: %w", dir, err)
	}
	return g, nil
}
