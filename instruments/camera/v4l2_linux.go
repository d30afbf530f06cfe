//go:build linux

package camera

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// The V4L2 backend speaks to /dev/videoN with the kernel's ioctls in pure Go
// (no cgo, unlike go4vl): QUERYCAP, S_FMT (GREY or Y16), REQBUFS with mmap
// buffers, QBUF/DQBUF and STREAMON/OFF, exposure through the
// EXPOSURE_ABSOLUTE control (units of 100 µs).
//
// UNTESTED WITHOUT HARDWARE: only the ABI (struct sizes and ioctl numbers,
// checked against <linux/videodev2.h> from kernel headers 6.1) and the
// failure on a file that is not a V4L2 device are tested. The streaming
// path follows the kernel's V4L2 capture example but has never met a
// camera; try it on the bench (or v4l2loopback) before relying on it.

// ABI from <linux/videodev2.h> (64-bit layouts; sizes asserted in tests).
type v4l2Capability struct {
	Driver       [16]byte
	Card         [32]byte
	BusInfo      [32]byte
	Version      uint32
	Capabilities uint32
	DeviceCaps   uint32
	Reserved     [3]uint32
}

type v4l2PixFormat struct {
	Width, Height, PixelFormat, Field, BytesPerLine, SizeImage uint32
	Colorspace, Priv, Flags, YcbcrEnc, Quantization, XferFunc  uint32
}

// v4l2Format: the union is 200 bytes and 8-aligned (it holds pointers).
type v4l2Format struct {
	Type uint32
	_    uint32
	Pix  v4l2PixFormat
	_    [200 - 48]byte
}

type v4l2RequestBuffers struct {
	Count, Type, Memory, Capabilities uint32
	Flags                             uint8
	_                                 [3]uint8
}

type v4l2Timecode struct {
	Type, Flags                     uint32
	Frames, Seconds, Minutes, Hours uint8
	Userbits                        [4]uint8
}

type v4l2Buffer struct {
	Index, Type, BytesUsed, Flags, Field uint32
	_                                    uint32
	Timestamp                            syscall.Timeval
	Timecode                             v4l2Timecode
	Sequence, Memory                     uint32
	Offset                               uint64 // union m: offset for MMAP
	Length, Reserved2                    uint32
	RequestFD                            int32
	_                                    uint32
}

type v4l2Control struct {
	ID    uint32
	Value int32
}

const (
	iocWrite = 1
	iocRead  = 2
)

func ioc(dir, nr, size uintptr) uintptr { return dir<<30 | size<<16 | 'V'<<8 | nr }

var (
	vidiocQueryCap  = ioc(iocRead, 0, unsafe.Sizeof(v4l2Capability{}))
	vidiocSFmt      = ioc(iocRead|iocWrite, 5, unsafe.Sizeof(v4l2Format{}))
	vidiocReqBufs   = ioc(iocRead|iocWrite, 8, unsafe.Sizeof(v4l2RequestBuffers{}))
	vidiocQueryBuf  = ioc(iocRead|iocWrite, 9, unsafe.Sizeof(v4l2Buffer{}))
	vidiocQBuf      = ioc(iocRead|iocWrite, 15, unsafe.Sizeof(v4l2Buffer{}))
	vidiocDQBuf     = ioc(iocRead|iocWrite, 17, unsafe.Sizeof(v4l2Buffer{}))
	vidiocStreamOn  = ioc(iocWrite, 18, unsafe.Sizeof(int32(0)))
	vidiocStreamOff = ioc(iocWrite, 19, unsafe.Sizeof(int32(0)))
	vidiocGCtrl     = ioc(iocRead|iocWrite, 27, unsafe.Sizeof(v4l2Control{}))
	vidiocSCtrl     = ioc(iocRead|iocWrite, 28, unsafe.Sizeof(v4l2Control{}))
)

const (
	capVideoCapture = 0x00000001
	capStreaming    = 0x04000000
	capDeviceCaps   = 0x80000000

	bufTypeVideoCapture = 1
	memoryMmap          = 1
	fieldNone           = 1

	pixGrey = 0x59455247 // 'GREY'
	pixY16  = 0x20363159 // 'Y16 '

	cidExposureAuto     = 0x009a0901
	cidExposureAbsolute = 0x009a0902 // 100 µs units
	exposureManual      = 1
)

// V4L2Opts configures OpenV4L2.
type V4L2Opts struct {
	Width, Height int    // requested; the driver may adjust (the result is used)
	Format        string // grey (default) | y16
	Buffers       int    // mmap buffers; 0 means 4
	// Skip is how many frames a Grab discards after draining the queue: a
	// frame whose exposure began before the SLM changed is stale, and a
	// driver may hold one already queued. 0 means 1.
	Skip int
}

// V4L2 is a Linux video capture device.
type V4L2 struct {
	path   string
	f      *os.File
	w, h   int
	stride int
	y16    bool
	skip   int

	mu   sync.Mutex
	bufs [][]byte
	exp  time.Duration
	on   bool
}

func (v *V4L2) ioctl(name string, req uintptr, arg unsafe.Pointer) error {
	for {
		_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, v.f.Fd(), req, uintptr(arg))
		switch errno {
		case 0:
			return nil
		case syscall.EINTR:
			continue
		}
		return fmt.Errorf("v4l2(%s): %s: %w", v.path, name, errno)
	}
}

// OpenV4L2 opens path, checks it is a streaming capture device, sets the
// format, maps the buffers and starts streaming.
func OpenV4L2(path string, o V4L2Opts) (_ *V4L2, err error) {
	if err := o.Validate(); err != nil {
		return nil, fmt.Errorf("v4l2(%s): %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("v4l2: %w", err)
	}
	v := &V4L2{path: path, f: f, skip: o.Skip}
	defer func() {
		if err != nil {
			v.Close()
		}
	}()
	var c v4l2Capability
	if err := v.ioctl("VIDIOC_QUERYCAP", vidiocQueryCap, unsafe.Pointer(&c)); err != nil {
		if errors.Is(err, syscall.ENOTTY) || errors.Is(err, syscall.EINVAL) {
			return nil, fmt.Errorf("v4l2(%s): not a V4L2 device: %w", path, err)
		}
		return nil, err
	}
	caps := c.Capabilities
	if caps&capDeviceCaps != 0 {
		caps = c.DeviceCaps
	}
	if caps&capVideoCapture == 0 || caps&capStreaming == 0 {
		return nil, fmt.Errorf("v4l2(%s): %s cannot stream video capture (caps %#x)", path, cstr(c.Card[:]), caps)
	}
	pf := uint32(pixGrey)
	switch o.Format {
	case "", "grey":
	case "y16":
		pf, v.y16 = pixY16, true
	default:
		return nil, fmt.Errorf("v4l2(%s): format %q: want grey or y16", path, o.Format)
	}
	fm := v4l2Format{Type: bufTypeVideoCapture, Pix: v4l2PixFormat{
		Width: uint32(o.Width), Height: uint32(o.Height), PixelFormat: pf, Field: fieldNone}}
	if err := v.ioctl("VIDIOC_S_FMT", vidiocSFmt, unsafe.Pointer(&fm)); err != nil {
		return nil, err
	}
	if fm.Pix.PixelFormat != pf {
		return nil, fmt.Errorf("v4l2(%s): driver refused pixel format %q (offers %#x)", path, o.Format, fm.Pix.PixelFormat)
	}
	v.w, v.h, v.stride = int(fm.Pix.Width), int(fm.Pix.Height), int(fm.Pix.BytesPerLine)
	bpp := 1
	if v.y16 {
		bpp = 2
	}
	if v.stride < v.w*bpp {
		v.stride = v.w * bpp
	}
	n := o.Buffers
	if n == 0 {
		n = 4
	}
	rb := v4l2RequestBuffers{Count: uint32(n), Type: bufTypeVideoCapture, Memory: memoryMmap}
	if err := v.ioctl("VIDIOC_REQBUFS", vidiocReqBufs, unsafe.Pointer(&rb)); err != nil {
		return nil, err
	}
	if rb.Count == 0 {
		return nil, fmt.Errorf("v4l2(%s): VIDIOC_REQBUFS: driver gave no buffers", path)
	}
	for i := range rb.Count {
		b := v4l2Buffer{Index: i, Type: bufTypeVideoCapture, Memory: memoryMmap}
		if err := v.ioctl("VIDIOC_QUERYBUF", vidiocQueryBuf, unsafe.Pointer(&b)); err != nil {
			return nil, err
		}
		m, err := syscall.Mmap(int(f.Fd()), int64(b.Offset), int(b.Length), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
		if err != nil {
			return nil, fmt.Errorf("v4l2(%s): mmap buffer %d: %w", path, i, err)
		}
		v.bufs = append(v.bufs, m)
		if err := v.ioctl("VIDIOC_QBUF", vidiocQBuf, unsafe.Pointer(&b)); err != nil {
			return nil, err
		}
	}
	typ := int32(bufTypeVideoCapture)
	if err := v.ioctl("VIDIOC_STREAMON", vidiocStreamOn, unsafe.Pointer(&typ)); err != nil {
		return nil, err
	}
	v.on = true
	return v, nil
}

func cstr(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

// String names the device.
func (v *V4L2) String() string { return "v4l2(" + v.path + ")" }

// Size implements Source.
func (v *V4L2) Size() (w, h int) { return v.w, v.h }

// FullScale implements FullScaler: 255 for GREY, 65535 for Y16 (a 10- or
// 12-bit sensor that fills Y16's low bits saturates below it: set the
// guard's saturation levels from the sensor's depth).
func (v *V4L2) FullScale() float64 {
	if v.y16 {
		return 65535
	}
	return 255
}

// Exposure implements Source: the last exposure set (0 if never set).
func (v *V4L2) Exposure() time.Duration {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.exp
}

// SetExposure implements Source: manual exposure, then the absolute
// exposure in 100 µs units.
func (v *V4L2) SetExposure(ctx context.Context, e time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.f == nil {
		return fmt.Errorf("%s: set exposure: closed", v)
	}
	// Cameras without auto exposure have no such control (EINVAL): fine.
	auto := v4l2Control{ID: cidExposureAuto, Value: exposureManual}
	if err := v.ioctl("VIDIOC_S_CTRL exposure_auto", vidiocSCtrl, unsafe.Pointer(&auto)); err != nil && !errors.Is(err, syscall.EINVAL) {
		return err
	}
	c := v4l2Control{ID: cidExposureAbsolute, Value: int32(max(1, e/(100*time.Microsecond)))}
	if err := v.ioctl("VIDIOC_S_CTRL exposure_absolute", vidiocSCtrl, unsafe.Pointer(&c)); err != nil {
		return err
	}
	if err := v.ioctl("VIDIOC_G_CTRL exposure_absolute", vidiocGCtrl, unsafe.Pointer(&c)); err != nil {
		return err
	}
	v.exp = time.Duration(c.Value) * 100 * time.Microsecond
	return nil
}

// Grab implements Source: it drains frames already queued (they may
// predate the caller's change), skips Skip more, and converts the next.
func (v *V4L2) Grab(ctx context.Context, dst []float64) error {
	if len(dst) != v.w*v.h {
		return fmt.Errorf("%s: frame buffer has %d pixels, want %d×%d", v, len(dst), v.w, v.h)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.f == nil {
		return fmt.Errorf("%s: grab: closed", v)
	}
	for {
		ok, err := v.dequeue(func([]byte) {})
		if err != nil {
			return err
		}
		if !ok {
			break
		}
	}
	skip := v.skip
	if skip == 0 {
		skip = 1
	}
	for k := 0; k <= skip; k++ {
		conv := func([]byte) {}
		if k == skip {
			conv = v.convert(dst)
		}
		for {
			ok, err := v.dequeue(conv)
			if err != nil {
				return err
			}
			if ok {
				break
			}
			if err := v.wait(ctx); err != nil {
				return err
			}
		}
	}
	return nil
}

func (v *V4L2) convert(dst []float64) func([]byte) {
	return func(b []byte) {
		for y := range v.h {
			row := b[y*v.stride:]
			out := dst[y*v.w : (y+1)*v.w]
			if v.y16 {
				for x := range out {
					out[x] = float64(binary.LittleEndian.Uint16(row[2*x:]))
				}
			} else {
				for x := range out {
					out[x] = float64(row[x])
				}
			}
		}
	}
}

// dequeue takes one filled buffer if there is one, hands it to use and
// queues it again.
func (v *V4L2) dequeue(use func([]byte)) (bool, error) {
	b := v4l2Buffer{Type: bufTypeVideoCapture, Memory: memoryMmap}
	if err := v.ioctl("VIDIOC_DQBUF", vidiocDQBuf, unsafe.Pointer(&b)); err != nil {
		if errors.Is(err, syscall.EAGAIN) {
			return false, nil
		}
		return false, err
	}
	if int(b.Index) >= len(v.bufs) {
		return false, fmt.Errorf("%s: VIDIOC_DQBUF: buffer index %d of %d", v, b.Index, len(v.bufs))
	}
	m := v.bufs[b.Index]
	if int(b.BytesUsed) < v.stride*v.h || len(m) < v.stride*v.h {
		err := fmt.Errorf("%s: short frame: %d bytes, want %d", v, b.BytesUsed, v.stride*v.h)
		return false, errors.Join(err, v.ioctl("VIDIOC_QBUF", vidiocQBuf, unsafe.Pointer(&b)))
	}
	use(m)
	return true, v.ioctl("VIDIOC_QBUF", vidiocQBuf, unsafe.Pointer(&b))
}

// wait blocks until the device is readable, in slices short enough to
// notice a cancelled context.
func (v *V4L2) wait(ctx context.Context) error {
	fd := int(v.f.Fd())
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("%s: wait for frame: %w", v, err)
		}
		var set syscall.FdSet
		set.Bits[fd/64] |= 1 << (uint(fd) % 64)
		tv := syscall.Timeval{Usec: 50_000}
		n, err := syscall.Select(fd+1, &set, nil, nil, &tv)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("%s: select: %w", v, err)
		}
		if n > 0 {
			return nil
		}
	}
}

// Close stops streaming, unmaps the buffers and closes the device.
func (v *V4L2) Close() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	var errs []error
	if v.on {
		typ := int32(bufTypeVideoCapture)
		errs = append(errs, v.ioctl("VIDIOC_STREAMOFF", vidiocStreamOff, unsafe.Pointer(&typ)))
		v.on = false
	}
	for _, m := range v.bufs {
		errs = append(errs, syscall.Munmap(m))
	}
	v.bufs = nil
	if v.f != nil {
		errs = append(errs, v.f.Close())
		v.f = nil
	}
	return errors.Join(errs...)
}
