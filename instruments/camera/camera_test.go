package camera

import (
	"context"
	"image"
	"testing"
	"time"
)

// ramp fills frame i (counting grabs) with pixel index + 10·grab.
func ramp(n *int) FrameFunc {
	return func(_ context.Context, dst []float64) error {
		for i := range dst {
			dst[i] = float64(i + 10**n)
		}
		*n++
		return nil
	}
}

func TestROIAverageDarkExposure(t *testing.T) {
	ctx := context.Background()
	var grabs int
	src, err := NewMemory(4, 3, time.Millisecond, 0, ramp(&grabs))
	if err != nil {
		t.Fatal(err)
	}
	cam, err := New(ctx, src, Config{ROI: []int{1, 1, 2, 2}, Average: 2})
	if err != nil {
		t.Fatal(err)
	}
	img, err := cam.Capture(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Grabs 0 and 1 average to index + 5; ROI rows 1..2, columns 1..2.
	want := []float64{5 + 5, 6 + 5, 9 + 5, 10 + 5}
	if img.Width != 2 || img.Height != 2 || !equal(img.Pix, want) {
		t.Errorf("capture %+v, want 2×2 %v", img, want)
	}
	if s := img.Sum(image.Rect(0, 0, 2, 1)); s != 21 {
		t.Errorf("sum of the top row = %v, want 21", s)
	}
	// Dark frame: grabs 2, 3 (index + 25); the next capture (grabs 4, 5:
	// index + 45) minus it is 20 everywhere.
	if err := cam.TakeDark(ctx); err != nil {
		t.Fatal(err)
	}
	img, _ = cam.Capture(ctx)
	if !equal(img.Pix, []float64{20, 20, 20, 20}) {
		t.Errorf("dark-subtracted %v, want 20s", img.Pix)
	}
	// Doubling the exposure doubles the signal and drops the dark frame.
	if err := cam.SetExposure(ctx, 2*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	img, _ = cam.Capture(ctx) // grabs 6, 7: 2·(index + 65)
	if want := 2 * (5 + 65.0); img.Pix[0] != want {
		t.Errorf("at double exposure pixel 0 = %v, want %v", img.Pix[0], want)
	}
	if err := cam.SetROI(image.Rect(3, 0, 5, 1)); err == nil {
		t.Error("ROI outside the sensor accepted")
	}
	if _, err := New(ctx, src, Config{ROI: []int{1, 2}}); err == nil {
		t.Error("ROI of 2 numbers accepted")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := cam.Capture(cctx); err == nil {
		t.Error("capture with a cancelled context succeeded")
	}
}

func TestSaturation(t *testing.T) {
	src, _ := NewMemory(1, 1, time.Millisecond, 100, func(_ context.Context, d []float64) error { d[0] = 80; return nil })
	cam, _ := New(context.Background(), src, Config{Exposure: 2 * time.Millisecond})
	img, err := cam.Capture(context.Background())
	if err != nil || img.Pix[0] != 100 {
		t.Errorf("saturated capture %v, %v; want 100", img.Pix, err)
	}
}

func equal(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Validate makes New's checks without a source: the same verdicts and
// messages for a known sensor size, and those that need no size when the
// size is not known.
func TestConfigValidate(t *testing.T) {
	src, err := NewMemory(4, 3, time.Millisecond, 0, func(context.Context, []float64) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	for i, cfg := range []Config{
		{},
		{ROI: []int{1, 1, 3, 2}, Average: 3, Exposure: time.Millisecond},
		{ROI: []int{1, 1, 4, 2}},
		{ROI: []int{0, 0, 0, 2}},
		{ROI: []int{-1, 0, 2, 2}},
		{ROI: []int{1, 2}},
		{Average: -1},
		{Exposure: -time.Millisecond},
	} {
		_, opened := New(context.Background(), src, cfg)
		checked := cfg.Validate(4, 3)
		switch {
		case (opened == nil) != (checked == nil):
			t.Errorf("config %d %+v: New %v, Validate %v", i, cfg, opened, checked)
		case opened != nil && opened.Error() != "camera(memory 4x3): "+checked.Error():
			t.Errorf("config %d: New says %q, Validate %q", i, opened, checked)
		}
	}
	if err := (Config{ROI: []int{290, 210, 60, 60}}).Validate(0, 0); err != nil {
		t.Errorf("a ROI for a sensor of unknown size: %v", err)
	}
	for _, cfg := range []Config{{ROI: []int{0, 0, 0, 1}}, {ROI: []int{-1, 0, 2, 2}}, {ROI: []int{1}}, {Average: -2}} {
		if err := cfg.Validate(0, 0); err == nil {
			t.Errorf("%+v accepted for a sensor of unknown size", cfg)
		}
	}
	for _, o := range []V4L2Opts{{Format: "rgb"}, {Skip: -1}, {Width: -640}, {Buffers: -1}} {
		if err := o.Validate(); err == nil {
			t.Errorf("V4L2 options %+v accepted", o)
		}
	}
	if err := (V4L2Opts{Width: 640, Height: 480, Format: "y16", Skip: 1}).Validate(); err != nil {
		t.Error(err)
	}
}
