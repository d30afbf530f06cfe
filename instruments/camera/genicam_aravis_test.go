//go:build aravis && cgo

package camera

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/insitu-lab/insitu/instruments/camera/genicamtest"
)

// These tests drive Aravis' fake GigE Vision camera (arv-fake-gv-camera-0.8)
// over loopback UDP: the real protocol stack, GVCP for features and GVSP
// for frames.

// fakePixel is the image of arvfakecamera.c (Aravis 0.8.26,
// arv_fake_camera_diagonal_ramp): Mono8 (x + y + id) mod 255, Mono16
// 256·(x + y + id) mod 65535, times 1 + gain + log10(exposure_µs/10⁴),
// clamped to the format's range and truncated. log10 is passed in so that
// the tests use exposures whose logarithm is exact.
func fakePixel(x, y int, id uint64, gain int, log10exp float64, mono16 bool) float64 {
	scale := 1 + float64(gain) + log10exp
	if mono16 {
		v := float64((256*uint64(x) + 256*id + 256*uint64(y)) % 65535)
		return math.Trunc(math.Min(v*scale, 65535))
	}
	v := float64((uint64(x) + id + uint64(y)) % 255)
	return math.Trunc(math.Min(v*scale, 255))
}

// checkPattern compares a w×h frame with the fake camera's image of frame
// id; it reports the first difference.
func checkPattern(t *testing.T, what string, dst []float64, w, h int, id uint64, gain int, log10exp float64, mono16 bool) {
	t.Helper()
	for y := range h {
		for x := range w {
			if want := fakePixel(x, y, id, gain, log10exp, mono16); dst[y*w+x] != want {
				t.Fatalf("%s: pixel (%d, %d) of frame %d = %v, want %v", what, x, y, id, dst[y*w+x], want)
			}
		}
	}
}

func open(t *testing.T, o GenICamOpts) *GenICam {
	t.Helper()
	g, err := OpenGenICam(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return g
}

// Features are written and read back over GVCP; the frames are the fake
// camera's known image for the frame ID the stream reports.
func TestGenICamFeaturesAndPattern(t *testing.T) {
	genicamtest.Start(t, "FEAT")
	ctx := context.Background()
	gain := 2.0
	g := open(t, GenICamOpts{Device: genicamtest.Address, Width: 320, Height: 240, OffsetX: 16, OffsetY: 8, Binning: []int{2, 3},
		Exposure: 100 * time.Millisecond, Gain: &gain, PacketSize: 1000, Buffers: 3})
	if g.Clock() != "host" {
		t.Errorf("clock mode %s: the fake camera stamps frames with the host's clock", g.Clock())
	}
	for f, want := range map[string]int64{"Width": 320, "Height": 240, "OffsetX": 16, "OffsetY": 8,
		"BinningHorizontal": 2, "BinningVertical": 3, "GainRaw": 2} {
		if got, err := g.cam.getInt(f); err != nil || got != want {
			t.Errorf("%s reads back %d, %v; want %d", f, got, err, want)
		}
	}
	for f, want := range map[string]string{"PixelFormat": "Mono8", "TriggerSelector": "FrameStart",
		"TriggerMode": "On", "TriggerSource": "Software", "AcquisitionMode": "Continuous"} {
		if got, err := g.cam.getString(f); err != nil || got != want {
			t.Errorf("%s reads back %q, %v; want %q", f, got, err, want)
		}
	}
	if us, err := g.cam.getFloat("ExposureTimeAbs"); err != nil || us != 1e5 || g.Exposure() != 100*time.Millisecond {
		t.Errorf("ExposureTimeAbs %v µs, %v; Exposure() %v", us, err, g.Exposure())
	}
	if n, err := g.cam.packetSize(); err != nil || n != 1000 {
		t.Errorf("packet size %d, %v", n, err)
	}
	if w, h := g.Size(); w != 320 || h != 240 {
		t.Fatalf("size %d×%d", w, h)
	}
	dst := make([]float64, 320*240)
	for range 3 {
		if err := g.Grab(ctx, dst); err != nil {
			t.Fatal(err)
		}
		// Gain 2, exposure 10⁵ µs: scale 1 + 2 + 1.
		checkPattern(t, "Mono8, gain 2, 100 ms", dst, 320, 240, g.LastFrame().ID, 2, 1, false)
	}
	// A new exposure is read back and changes the image.
	if err := g.SetExposure(ctx, 10*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if us, _ := g.cam.getFloat("ExposureTimeAbs"); us != 1e4 || g.Exposure() != 10*time.Millisecond {
		t.Errorf("exposure reads back %v µs, Exposure() %v", us, g.Exposure())
	}
	if err := g.Grab(ctx, dst); err != nil {
		t.Fatal(err)
	}
	checkPattern(t, "Mono8, gain 2, 10 ms", dst, 320, 240, g.LastFrame().ID, 2, 0, false)
	if err := g.SetExposure(ctx, time.Microsecond); err == nil || !strings.Contains(err.Error(), "ExposureTimeAbs [10, 1e+07]") {
		t.Errorf("exposure below the camera's range: %v", err)
	}
}

// Without width and height the region is the whole sensor (2048×2048 on
// the fake camera).
func TestGenICamFullSensor(t *testing.T) {
	genicamtest.Start(t, "FULL")
	g := open(t, GenICamOpts{Device: genicamtest.Address, FrameTimeout: 5 * time.Second})
	if w, h := g.Size(); w != 2048 || h != 2048 {
		t.Fatalf("default region %d×%d, want the 2048×2048 sensor", w, h)
	}
	dst := make([]float64, 2048*2048)
	if err := g.Grab(context.Background(), dst); err != nil {
		t.Fatal(err)
	}
	checkPattern(t, "full sensor", dst, 2048, 2048, g.LastFrame().ID, 0, 0, false)
}

// Mono16 frames of the fake camera's 16-bit image, free-running.
func TestGenICamMono16FreeRun(t *testing.T) {
	genicamtest.Start(t, "M16")
	g := open(t, GenICamOpts{Device: genicamtest.Address, PixelFormat: "Mono16", Width: 512, Height: 256,
		Exposure: 10 * time.Millisecond, Trigger: TriggerFreeRun})
	if mode, _ := g.cam.getString("TriggerMode"); mode != "Off" {
		t.Errorf("free run: TriggerMode %s", mode)
	}
	if g.FullScale() != 65535 {
		t.Errorf("full scale %v", g.FullScale())
	}
	dst := make([]float64, 512*256)
	for range 3 {
		if err := g.Grab(context.Background(), dst); err != nil {
			t.Fatal(err)
		}
		checkPattern(t, "Mono16", dst, 512, 256, g.LastFrame().ID, 0, 0, true)
	}
}

// Settings the camera cannot take are errors naming the camera and the
// GenICam feature, with what it allows.
func TestGenICamRefusals(t *testing.T) {
	genicamtest.Start(t, "REFUSE")
	ctx := context.Background()
	half := 1.5
	for _, c := range []struct {
		o    GenICamOpts
		want []string
	}{
		{GenICamOpts{PixelFormat: "Mono12"}, []string{"genicam(127.0.0.1)", "PixelFormat Mono12 not offered", "Mono8", "Mono16"}},
		{GenICamOpts{Width: 4096, Height: 64}, []string{"genicam(127.0.0.1)", "Width 4096 outside the camera's [1, 2048]"}},
		{GenICamOpts{Binning: []int{17}}, []string{"BinningHorizontal 17 outside the camera's [1, 16]"}},
		{GenICamOpts{OffsetX: 8, Height: 64}, []string{"offset_x 8 needs width"}},
		{GenICamOpts{Gain: &half}, []string{"gain 1.5: the camera has only GainRaw"}},
		{GenICamOpts{Exposure: 20 * time.Second}, []string{"exposure 20s outside ExposureTimeAbs"}},
		{GenICamOpts{Device: "NOSUCH"}, []string{"genicam(NOSUCH)", `device "NOSUCH" not found`, "Aravis-Fake-REFUSE"}},
	} {
		if c.o.Device == "" {
			c.o.Device = genicamtest.Address
		}
		g, err := OpenGenICam(ctx, c.o)
		if err == nil {
			g.Close()
			t.Errorf("%+v opened", c.o)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%+v: %v\nwant it to name %q", c.o, err, w)
			}
		}
	}
	// The camera is usable after the refusals.
	g := open(t, GenICamOpts{Device: "REFUSE", Width: 64, Height: 32}) // by serial
	if err := g.Grab(ctx, make([]float64, 64*32)); err != nil {
		t.Fatal(err)
	}
}

// Free run: frames stream at 25 Hz, starting on multiples of 40 ms of the
// host's clock. A Grab that begins just after one started (while it is
// being filled and sent, after the queue was emptied) must not return it:
// every frame returned was exposed after its Grab began, and is the image
// of the frame ID it carries. In clock mode none (forced here) the rule is
// the third frame after the queue was emptied.
func TestGenICamNoStaleFrameFreeRun(t *testing.T) {
	genicamtest.Start(t, "STALE")
	for _, clock := range []clockMode{clockHost, clockNone} {
		t.Run(clock.String(), func(t *testing.T) {
			g := open(t, GenICamOpts{Device: genicamtest.Address, Width: 1024, Height: 1024, Exposure: 10 * time.Millisecond, Trigger: TriggerFreeRun})
			g.clock = clock
			dst := make([]float64, 1024*1024)
			stale := 0
			for i := range 6 {
				// 0.5 ms after a frame began: it is in flight.
				const period = 40 * time.Millisecond
				now := time.Now()
				time.Sleep(period - time.Duration(now.UnixNano())%period + 500*time.Microsecond)
				began := time.Now()
				if err := g.Grab(context.Background(), dst); err != nil {
					t.Fatal(err)
				}
				f := g.LastFrame()
				if f.Timestamp < uint64(began.UnixNano()) {
					t.Fatalf("grab %d began %v, returned frame %d exposed at %v", i, began.Format(time.StampMicro),
						f.ID, time.Unix(0, int64(f.Timestamp)).Format(time.StampMicro))
				}
				if clock == clockHost && f.Start.Before(began) {
					t.Fatalf("grab %d: exposure start %v before the grab", i, f.Start)
				}
				checkPattern(t, fmt.Sprintf("grab %d", i), dst, 1024, 1024, f.ID, 0, 0, false)
				stale += f.Stale
			}
			if stale == 0 {
				t.Error("no grab met a frame in flight: the test did not test the stale-frame rule")
			}
			t.Logf("%d stale frames dropped in 6 grabs", stale)
		})
	}
}

// Software trigger: a Grab cancelled while its frame is being sent (the
// fake camera serves a trigger at its next 40 ms tick and takes a few ms
// to fill and send a 1024×1024 frame) leaves that frame on its way; the
// next Grab, begun at once, must not take it. In clock mode none (forced
// here: no timestamps to compare) only the stream restart prevents it.
func TestGenICamLateFrameAfterCancel(t *testing.T) {
	genicamtest.Start(t, "LATE")
	for _, clock := range []clockMode{clockHost, clockNone} {
		t.Run(clock.String(), func(t *testing.T) {
			g := open(t, GenICamOpts{Device: genicamtest.Address, Width: 1024, Height: 1024, Exposure: 10 * time.Millisecond})
			g.clock = clock
			dst := make([]float64, 1024*1024)
			// A round counts when its grab was cancelled before the frame
			// came; on a loaded machine the trigger can land so that the
			// frame beats the deadline, and that round tests nothing.
			cancelled := 0
			for i := 0; cancelled < 4; i++ {
				if i == 40 {
					t.Fatalf("only %d of 40 grabs were cancelled before their frame came", cancelled)
				}
				const period = 40 * time.Millisecond
				now := time.Now()
				tick := now.Add(period - time.Duration(now.UnixNano())%period)
				time.Sleep(time.Until(tick.Add(-5 * time.Millisecond)))
				// Triggered 5 ms before the tick, cancelled 0.5 ms after it.
				ctx, cancel := context.WithDeadline(context.Background(), tick.Add(500*time.Microsecond))
				err := g.Grab(ctx, dst)
				cancel()
				if err == nil {
					continue
				}
				if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "genicam(127.0.0.1)") {
					t.Fatalf("cancelled grab: %v", err)
				}
				cancelled++
				began := time.Now()
				if err := g.Grab(context.Background(), dst); err != nil {
					t.Fatal(err)
				}
				f := g.LastFrame()
				if f.Timestamp < uint64(began.UnixNano()) {
					t.Fatalf("round %d: the grab began at %v and returned frame %d stamped %v: the late frame of the cancelled trigger",
						i, began.Format(time.StampMicro), f.ID, time.Unix(0, int64(f.Timestamp)).Format(time.StampMicro))
				}
				checkPattern(t, "after the late frame", dst, 1024, 1024, f.ID, 0, 0, false)
			}
		})
	}
}

// frame_timeout bounds the wait; the camera works again afterwards.
func TestGenICamFrameTimeout(t *testing.T) {
	genicamtest.Start(t, "TIMEOUT")
	g := open(t, GenICamOpts{Device: genicamtest.Address, Width: 64, Height: 64, FrameTimeout: 2 * time.Millisecond})
	dst := make([]float64, 64*64)
	t0 := time.Now()
	err := g.Grab(context.Background(), dst)
	if err == nil || !strings.Contains(err.Error(), "genicam(127.0.0.1): no frame within frame_timeout 2ms") {
		t.Fatalf("grab with a 2 ms frame timeout: %v", err)
	}
	if d := time.Since(t0); d > 500*time.Millisecond {
		t.Errorf("the timeout took %v", d)
	}
	g.opts.FrameTimeout = time.Second
	began := time.Now()
	if err := g.Grab(context.Background(), dst); err != nil {
		t.Fatal(err)
	}
	if f := g.LastFrame(); f.Start.Before(began) {
		t.Errorf("after the timeout: frame %d exposed before the grab", f.ID)
	}
}

// The camera killed: the next Grab fails naming the camera and the
// feature, and Close does not wait for the dead camera.
func TestGenICamKilled(t *testing.T) {
	fake := genicamtest.Start(t, "KILL")
	g := open(t, GenICamOpts{Device: genicamtest.Address, Width: 64, Height: 64})
	dst := make([]float64, 64*64)
	if err := g.Grab(context.Background(), dst); err != nil {
		t.Fatal(err)
	}
	fake.Kill()
	err := g.Grab(context.Background(), dst)
	if err == nil || !strings.Contains(err.Error(), "genicam(127.0.0.1): execute TriggerSoftware") || !errors.Is(err, errSilent) {
		t.Fatalf("grab from a killed camera: %v", err)
	}
	t0 := time.Now()
	if err := g.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	if d := time.Since(t0); d > 100*time.Millisecond {
		t.Errorf("close of a dead camera took %v", d)
	}
	// Back again: a new open works.
	fake.Restart(t)
	g2 := open(t, GenICamOpts{Device: genicamtest.Address, Width: 64, Height: 64})
	if err := g2.Grab(context.Background(), dst); err != nil {
		t.Fatal(err)
	}
}

// Through Device: frames with gain 10 (scale 11) saturate; the count is
// the fake image's pixels at 255 within the ROI; exposure times come from
// the camera's timestamps.
func TestGenICamDeviceSaturationAndTimes(t *testing.T) {
	genicamtest.Start(t, "SAT")
	ctx := context.Background()
	gain := 10.0
	g := open(t, GenICamOpts{Device: genicamtest.Address, Width: 256, Height: 128, Gain: &gain, Exposure: 10 * time.Millisecond})
	cam, err := New(ctx, g, Config{ROI: []int{10, 20, 100, 50}})
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	img, err := cam.Capture(ctx)
	if err != nil {
		t.Fatal(err)
	}
	id := g.LastFrame().ID
	want := 0
	for y := 20; y < 70; y++ {
		for x := 10; x < 110; x++ {
			if fakePixel(x, y, id, 10, 0, false) >= 255 {
				want++
			}
		}
	}
	if img.Saturated != want || want == 0 {
		t.Errorf("saturated %d, want %d", img.Saturated, want)
	}
	if img.Start.Before(began) || img.End.Sub(img.Start) != 10*time.Millisecond || img.End.After(time.Now().Add(10*time.Millisecond)) {
		t.Errorf("exposure %v – %v, capture began %v", img.Start, img.End, began)
	}
}

// ListGenICam finds the fake camera with its identity.
func TestListGenICam(t *testing.T) {
	fake := genicamtest.Start(t, "LIST")
	devs, err := ListGenICam(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var found *GenICamDevice
	for i, d := range devs {
		if d.Serial == fake.Serial {
			found = &devs[i]
		}
	}
	if found == nil {
		t.Fatalf("fake camera %s not in %+v", fake.Serial, devs)
	}
	want := GenICamDevice{ID: fake.ID(), Vendor: "Aravis", Model: "Fake", Serial: "LIST", Address: "127.0.0.1", Physical: found.Physical, Protocol: "GigEVision"}
	if *found != want {
		t.Errorf("found %+v, want %+v", *found, want)
	}
	if len(devs) == 1 {
		g := open(t, GenICamOpts{Device: "", Width: 8, Height: 8}) // the only camera
		if g.String() != "genicam("+fake.ID()+")" {
			t.Errorf("the only camera opened as %s", g)
		}
	}
}

// BenchmarkGrab: trigger → buffer on the fake camera (512×512 Mono8 over
// loopback), against the memory camera's grab of a frame of the same size
// as the reference. The fake camera serves a trigger, or sends a frame, on
// its next 40 ms tick, which dominates ns/op; stamp-to-return-ns is the
// rest: from the frame's timestamp (the fake stamps it, then fills and
// sends it) to Grab returning the converted frame.
func BenchmarkGrab(b *testing.B) {
	b.Run("memory", func(b *testing.B) {
		m, err := NewMemory(512, 512, time.Millisecond, 255, func(_ context.Context, dst []float64) error {
			for i := range dst {
				dst[i] = float64(i % 255)
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		dst := make([]float64, 512*512)
		for b.Loop() {
			if err := m.Grab(context.Background(), dst); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, trig := range []string{TriggerSoftware, TriggerFreeRun} {
		b.Run("fake-gige-"+trig, func(b *testing.B) {
			genicamtest.Start(b, "BENCH")
			g, err := OpenGenICam(context.Background(), GenICamOpts{Device: genicamtest.Address, Width: 512, Height: 512, Trigger: trig})
			if err != nil {
				b.Fatal(err)
			}
			defer g.Close()
			dst := make([]float64, 512*512)
			var after time.Duration
			for b.Loop() {
				if err := g.Grab(context.Background(), dst); err != nil {
					b.Fatal(err)
				}
				after += time.Since(time.Unix(0, int64(g.LastFrame().Timestamp)))
			}
			b.ReportMetric(float64(after.Nanoseconds())/float64(b.N), "stamp-to-return-ns/op")
		})
	}
}
