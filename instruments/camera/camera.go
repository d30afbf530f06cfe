// Package camera reads images from a camera: exposure, region of interest,
// averaging of several frames and dark-frame subtraction, the way slmsuite's
// Camera base class layers them over a driver's raw grab.
//
// A backend (Source) only grabs full raw frames and sets the exposure;
// Device adds the rest and implements Camera. Backends: Memory (frames from
// a function, e.g. a twin's intensity, scaled by exposure), V4L2 (Linux
// video capture devices, GREY or Y16, mmap streaming; see v4l2_linux.go for
// what is and is not tested) and GenICam (GigE Vision and USB3 Vision
// cameras through Aravis, in builds with the aravis tag; see genicam.go).
package camera

import (
	"context"
	"errors"
	"fmt"
	"image"
	"sync"
	"time"
)

// Image is a gray image, row-major, in the camera's units (ADU), after
// dark subtraction.
type Image struct {
	Width, Height int
	Pix           []float64
	// Saturated is the largest number of ROI pixels at the source's full
	// scale in any one of the frames averaged (0 when the source has no
	// full scale).
	Saturated int
	// Start and End bound the exposure of the frames averaged on the
	// host's wall clock: the first frame's start, the last frame's end.
	// Zero when the source does not tell.
	Start, End time.Time
}

// At returns the pixel at column x, row y.
func (m Image) At(x, y int) float64 { return m.Pix[y*m.Width+x] }

// Sum returns the sum of the pixels inside r (clipped to the image).
func (m Image) Sum(r image.Rectangle) float64 {
	r = r.Intersect(image.Rect(0, 0, m.Width, m.Height))
	var s float64
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for _, v := range m.Pix[y*m.Width+r.Min.X : y*m.Width+r.Max.X] {
			s += v
		}
	}
	return s
}

// Camera is what an experiment uses.
type Camera interface {
	// Size is the full sensor size.
	Size() (w, h int)
	Exposure() time.Duration
	SetExposure(ctx context.Context, d time.Duration) error
	// ROI is the region Capture returns, in sensor pixels.
	ROI() image.Rectangle
	SetROI(r image.Rectangle) error
	// Capture returns the ROI of the mean of Average frames, minus the dark
	// frame if one is set. Frames exposed before the call started are never
	// returned.
	Capture(ctx context.Context) (Image, error)
	Close() error
}

// Source is a camera backend: full raw frames and the exposure.
type Source interface {
	Size() (w, h int)
	Exposure() time.Duration
	SetExposure(ctx context.Context, d time.Duration) error
	// Grab returns one full frame (w×h values) exposed after the call began.
	Grab(ctx context.Context, dst []float64) error
	Close() error
}

// FullScaler is a Source that knows the value of a saturated pixel.
type FullScaler interface {
	FullScale() float64
}

// Timed is a Source that knows when the frame its last Grab returned was
// exposed, on the host's wall clock.
type Timed interface {
	LastExposure() (start, end time.Time, ok bool)
}

// Config is the processing on top of a source; the keys of a rig config's
// camera part.
type Config struct {
	Exposure time.Duration `mapstructure:"exposure" doc:"exposure time; 0: leave the camera's"`
	ROI      []int         `mapstructure:"roi" doc:"region of interest [x, y, w, h], in pixels; empty: the full frame"`
	Average  int           `mapstructure:"average" doc:"frames averaged per measurement; 0: 1"`
}

// Device is a Source with ROI, averaging and dark subtraction. It is safe
// for concurrent use; captures run one at a time.
type Device struct {
	src  Source
	w, h int

	mu   sync.Mutex
	roi  image.Rectangle
	avg  int
	dark []float64 // full frame, nil if none
	buf  []float64
	sum  []float64
	// Of the last grabMean: saturated ROI pixels, exposure interval.
	sat        int
	start, end time.Time
}

// Validate checks c as New does for a w×h sensor, without a source. A
// size of 0×0 stands for a sensor whose size only the open device tells (a
// V4L2 driver may adjust the size asked for): whether the ROI fits in it
// is then left to New.
func (c Config) Validate(w, h int) error {
	if c.Average < 0 {
		return fmt.Errorf("average %d is negative", c.Average)
	}
	if c.Exposure < 0 {
		return fmt.Errorf("exposure %v is negative", c.Exposure)
	}
	switch len(c.ROI) {
	case 0:
	case 4:
		r := c.rect()
		if w > 0 && h > 0 {
			if r.Empty() || !r.In(image.Rect(0, 0, w, h)) {
				return fmt.Errorf("roi %v is empty or outside the %d×%d sensor", r, w, h)
			}
		} else if r.Empty() || r.Min.X < 0 || r.Min.Y < 0 {
			return fmt.Errorf("roi %v is empty or outside the sensor", r)
		}
	default:
		return fmt.Errorf("roi %v: want [x, y, w, h]", c.ROI)
	}
	return nil
}

// rect is the ROI as a rectangle; c.ROI has 4 values.
func (c Config) rect() image.Rectangle {
	return image.Rect(c.ROI[0], c.ROI[1], c.ROI[0]+c.ROI[2], c.ROI[1]+c.ROI[3])
}

// New wraps src. It sets the exposure if cfg gives one.
func New(ctx context.Context, src Source, cfg Config) (*Device, error) {
	w, h := src.Size()
	if err := cfg.Validate(w, h); err != nil {
		return nil, fmt.Errorf("camera(%v): %w", src, err)
	}
	d := &Device{src: src, w: w, h: h, avg: cfg.Average, roi: image.Rect(0, 0, w, h),
		buf: make([]float64, w*h), sum: make([]float64, w*h)}
	if d.avg == 0 {
		d.avg = 1
	}
	if len(cfg.ROI) == 4 {
		if err := d.SetROI(cfg.rect()); err != nil {
			return nil, err
		}
	}
	if cfg.Exposure != 0 {
		if err := d.SetExposure(ctx, cfg.Exposure); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// Validate checks o as OpenV4L2 does before it opens the device.
func (o V4L2Opts) Validate() error {
	switch o.Format {
	case "", "grey", "y16":
	default:
		return fmt.Errorf("format %q: want grey or y16", o.Format)
	}
	if o.Width < 0 || o.Height < 0 || o.Buffers < 0 || o.Skip < 0 {
		return fmt.Errorf("width %d, height %d, buffers %d and skip %d must not be negative", o.Width, o.Height, o.Buffers, o.Skip)
	}
	return nil
}

// String names the source.
func (d *Device) String() string { return fmt.Sprintf("camera(%v)", d.src) }

// Size implements Camera.
func (d *Device) Size() (w, h int) { return d.w, d.h }

// Exposure implements Camera.
func (d *Device) Exposure() time.Duration { return d.src.Exposure() }

// SetExposure implements Camera. The dark frame belongs to the old exposure,
// so it is dropped.
func (d *Device) SetExposure(ctx context.Context, e time.Duration) error {
	if e <= 0 {
		return fmt.Errorf("%s: set exposure: %v is not positive", d, e)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.src.SetExposure(ctx, e); err != nil {
		return fmt.Errorf("%s: set exposure %v: %w", d, e, err)
	}
	d.dark = nil
	return nil
}

// ROI implements Camera.
func (d *Device) ROI() image.Rectangle {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.roi
}

// SetROI implements Camera.
func (d *Device) SetROI(r image.Rectangle) error {
	if r.Empty() || !r.In(image.Rect(0, 0, d.w, d.h)) {
		return fmt.Errorf("%s: roi %v is empty or outside the %d×%d sensor", d, r, d.w, d.h)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.roi = r
	return nil
}

// Average sets the number of frames averaged per Capture.
func (d *Device) SetAverage(n int) error {
	if n < 1 {
		return fmt.Errorf("%s: average %d < 1", d, n)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.avg = n
	return nil
}

// TakeDark captures the dark frame (averaged like any capture) that later
// captures subtract. The caller blocks the light first (shutter, laser off,
// SLM steering away); the camera cannot know.
func (d *Device) TakeDark(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.dark = nil
	if err := d.grabMean(ctx); err != nil {
		return fmt.Errorf("%s: dark frame: %w", d, err)
	}
	d.dark = append([]float64(nil), d.sum...)
	return nil
}

// SetDark sets a full-frame dark image (w×h), e.g. loaded from a file; nil
// clears it.
func (d *Device) SetDark(dark []float64) error {
	if dark != nil && len(dark) != d.w*d.h {
		return fmt.Errorf("%s: dark frame has %d pixels, want %d×%d", d, len(dark), d.w, d.h)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.dark = append([]float64(nil), dark...)
	if dark == nil {
		d.dark = nil
	}
	return nil
}

// grabMean leaves the mean of d.avg frames in d.sum, and their saturated
// pixel count and exposure interval in d.sat, d.start and d.end; d.mu is
// held.
func (d *Device) grabMean(ctx context.Context) error {
	clear(d.sum)
	d.sat, d.start, d.end = 0, time.Time{}, time.Time{}
	full := 0.0
	if fs, ok := d.src.(FullScaler); ok {
		full = fs.FullScale()
	}
	timed, _ := d.src.(Timed)
	for k := range d.avg {
		if err := d.src.Grab(ctx, d.buf); err != nil {
			return fmt.Errorf("frame %d of %d: %w", k+1, d.avg, err)
		}
		for i, v := range d.buf {
			d.sum[i] += v
		}
		if full > 0 {
			d.sat = max(d.sat, countAtLeast(d.buf, d.w, d.roi, full))
		}
		if timed != nil {
			if s, e, ok := timed.LastExposure(); ok {
				if k == 0 {
					d.start = s
				}
				d.end = e
			}
		}
	}
	inv := 1 / float64(d.avg)
	for i := range d.sum {
		d.sum[i] *= inv
	}
	return nil
}

// Capture implements Camera.
func (d *Device) Capture(ctx context.Context) (Image, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.grabMean(ctx); err != nil {
		return Image{}, fmt.Errorf("%s: capture: %w", d, err)
	}
	r := d.roi
	img := Image{Width: r.Dx(), Height: r.Dy(), Pix: make([]float64, r.Dx()*r.Dy()),
		Saturated: d.sat, Start: d.start, End: d.end}
	for y := range img.Height {
		src := (r.Min.Y+y)*d.w + r.Min.X
		row := img.Pix[y*img.Width : (y+1)*img.Width]
		copy(row, d.sum[src:src+img.Width])
		if d.dark != nil {
			for x := range row {
				row[x] -= d.dark[src+x]
			}
		}
	}
	return img, nil
}

// countAtLeast counts the pixels of r in the frame (rows w apart) at or
// above level.
func countAtLeast(frame []float64, w int, r image.Rectangle, level float64) int {
	n := 0
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for _, v := range frame[y*w+r.Min.X : y*w+r.Max.X] {
			if v >= level {
				n++
			}
		}
	}
	return n
}

// Close closes the source.
func (d *Device) Close() error {
	if err := d.src.Close(); err != nil {
		return fmt.Errorf("%s: close: %w", d, err)
	}
	return nil
}

// FrameFunc produces a full w×h frame at the memory camera's reference
// exposure into dst.
type FrameFunc func(ctx context.Context, dst []float64) error

// Memory is an in-memory source: frames come from a function (a twin, a
// test pattern) at a reference exposure and are scaled linearly by the
// exposure, then clipped at Saturation when it is positive.
type Memory struct {
	w, h       int
	frame      FrameFunc
	ref        time.Duration
	saturation float64

	mu   sync.Mutex
	exp  time.Duration
	n    int
	now  func() time.Time
	last time.Time // the last frame's exposure
}

// NewMemory returns a w×h source whose frame function gives the image at
// exposure ref; the exposure starts at ref.
func NewMemory(w, h int, ref time.Duration, saturation float64, frame FrameFunc) (*Memory, error) {
	if w <= 0 || h <= 0 || ref <= 0 || frame == nil {
		return nil, errors.New("camera: memory source needs a positive size and reference exposure, and a frame function")
	}
	return &Memory{w: w, h: h, frame: frame, ref: ref, exp: ref, saturation: saturation, now: time.Now}, nil
}

// SetClock sets the clock the source stamps its exposures with (nil: the
// wall clock); a dry run passes its simulated one.
func (m *Memory) SetClock(now func() time.Time) {
	if now == nil {
		now = time.Now
	}
	m.mu.Lock()
	m.now = now
	m.mu.Unlock()
}

// String names the source.
func (m *Memory) String() string { return fmt.Sprintf("memory %dx%d", m.w, m.h) }

// Size implements Source.
func (m *Memory) Size() (w, h int) { return m.w, m.h }

// Exposure implements Source.
func (m *Memory) Exposure() time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.exp
}

// SetExposure implements Source.
func (m *Memory) SetExposure(_ context.Context, e time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.exp = e
	return nil
}

// Grabs is the number of frames grabbed.
func (m *Memory) Grabs() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.n
}

// Grab implements Source.
func (m *Memory) Grab(ctx context.Context, dst []float64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(dst) != m.w*m.h {
		return fmt.Errorf("memory camera: frame buffer has %d pixels, want %d×%d", len(dst), m.w, m.h)
	}
	// The frame function renders the scene at the instant it is called:
	// that is the exposure, start and end, however long it computes.
	m.mu.Lock()
	m.last = m.now()
	m.mu.Unlock()
	if err := m.frame(ctx, dst); err != nil {
		return err
	}
	m.mu.Lock()
	k := float64(m.exp) / float64(m.ref)
	m.n++
	m.mu.Unlock()
	for i, v := range dst {
		v *= k
		if m.saturation > 0 && v > m.saturation {
			v = m.saturation
		}
		dst[i] = v
	}
	return nil
}

// LastExposure implements Timed: the instant the last frame was rendered,
// on the source's clock (SetClock), as both start and end.
func (m *Memory) LastExposure() (start, end time.Time, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.last, m.last, !m.last.IsZero()
}

// FullScale implements FullScaler: the clipping level, 0 if none.
func (m *Memory) FullScale() float64 { return m.saturation }

// Close implements Source.
func (m *Memory) Close() error { return nil }
