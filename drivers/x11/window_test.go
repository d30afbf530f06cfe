package x11_test

import (
	"bytes"
	"context"
	"errors"
	"image"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/insitu-lab/insitu/drivers/x11"
	"github.com/insitu-lab/insitu/drivers/x11/x11test"
)

var (
	deskRect = image.Rect(0, 0, 1920, 1200)
	slmRect  = image.Rect(1920, 0, 1920+1920, 1152)
)

// bench starts a 3840×1200 Xvfb with a primary desktop monitor on the left
// and an SLM monitor on the right, as a lab PC with an HDMI SLM has.
func bench(t testing.TB, args ...string) *x11test.Server {
	s := x11test.Start(t, 3840, 1200, args...)
	s.AddMonitor(t, "DESK", deskRect, true)
	s.AddMonitor(t, "SLM-1", slmRect, false)
	return s
}

func open(t testing.TB, s *x11test.Server, sel x11.Selector) *x11.Window {
	t.Helper()
	return openConfig(t, x11.Config{Display: s.Display, Selector: sel})
}

func openConfig(t testing.TB, c x11.Config) *x11.Window {
	t.Helper()
	w, err := x11.Open(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

func randomGray(n int, seed uint64) []uint8 {
	r := rand.New(rand.NewPCG(seed, 1))
	g := make([]uint8, n)
	for i := range g {
		g[i] = uint8(r.IntN(256))
	}
	return g
}

func TestWindowCoversMonitorAndReadsBack(t *testing.T) {
	for _, tc := range []struct {
		name    string
		present bool
	}{
		{"present", true},
		{"round-trip", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := bench(t)
			c := x11.Config{Display: s.Display, Selector: x11.Selector{Output: "SLM-1"}}
			if !tc.present {
				c = x11.WithoutPresent(c)
			}
			w := openConfig(t, c)
			if w.HasPresent() != tc.present {
				t.Fatalf("HasPresent = %v, want %v", w.HasPresent(), tc.present)
			}
			if gw, gh := w.Size(); gw != 1920 || gh != 1152 {
				t.Fatalf("Size = %d×%d, want 1920×1152", gw, gh)
			}
			r, border, err := s.Geometry(w.ID())
			if err != nil {
				t.Fatal(err)
			}
			if r != slmRect || border != 0 {
				t.Fatalf("window at %v border %d, want exactly %v, no border", r, border, slmRect)
			}
			viewable, override, err := s.Attributes(w.ID())
			if err != nil || !viewable || !override {
				t.Fatalf("viewable %v, override-redirect %v (%v)", viewable, override, err)
			}
			var lastMSC uint64
			for k := range 3 {
				gray := randomGray(1920*1152, uint64(k))
				t0 := time.Now()
				f, err := w.ShowFrame(context.Background(), gray)
				if err != nil {
					t.Fatal(err)
				}
				// What the monitor shows, read from the root window by another
				// client right after Show returned.
				got, err := s.Gray(slmRect)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, gray) {
					t.Fatalf("frame %d: screen differs from the frame at %d", k, firstDiff(got, gray))
				}
				if f.Written.Before(t0) || f.Shown.Before(f.Written) {
					t.Fatalf("frame %d: t0 %v written %v shown %v out of order", k, t0, f.Written, f.Shown)
				}
				if f.Present != tc.present || tc.present && f.MSC <= lastMSC {
					t.Fatalf("frame %d: %+v after MSC %d", k, f, lastMSC)
				}
				lastMSC = f.MSC
			}
			// The desktop monitor is untouched.
			desk, err := s.Gray(image.Rect(0, 0, 64, 64))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(desk, make([]uint8, len(desk))) {
				t.Fatal("the desktop monitor changed")
			}
			if err := w.Blank(context.Background()); err != nil {
				t.Fatal(err)
			}
			got, err := s.Gray(slmRect)
			if err != nil {
				t.Fatal(err)
			}
			if i := firstDiff(got, make([]uint8, len(got))); i >= 0 {
				t.Fatalf("after Blank, pixel %d is %d", i, got[i])
			}
		})
	}
}

func firstDiff(a, b []uint8) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	if len(a) != len(b) {
		return min(len(a), len(b))
	}
	return -1
}

func TestSelectMonitor(t *testing.T) {
	s := bench(t)
	ctx := context.Background()
	ms, err := x11.Monitors(ctx, s.Display)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]x11.Monitor{}
	for _, m := range ms {
		names[m.Name] = m
	}
	if m := names["SLM-1"]; m.Rect != slmRect || m.Primary || m.Desktop {
		t.Fatalf("SLM-1: %+v", m)
	}
	if m := names["DESK"]; !m.Primary || !m.Desktop || m.Rect != deskRect {
		t.Fatalf("DESK: %+v", m)
	}

	_, err = x11.Open(ctx, x11.Config{Display: s.Display, Selector: x11.Selector{Output: "HDMI-9"}})
	if err == nil || !strings.Contains(err.Error(), "HDMI-9") {
		t.Fatalf("unknown output: %v", err)
	}
	for _, want := range []string{"DESK 1920x1200+0+0 primary", "SLM-1 1920x1152+1920+0", "screen 3840x1200+0+0"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("unknown output error does not list %q:\n%v", want, err)
		}
	}
	for _, sel := range []x11.Selector{{Output: "DESK"}, {Output: "screen"}, {Geometry: "1920x1200+0+0"}} {
		_, err := x11.Open(ctx, x11.Config{Display: s.Display, Selector: sel})
		if err == nil || !strings.Contains(err.Error(), "allow_primary") {
			t.Errorf("%+v: a window over the desktop was not refused: %v", sel, err)
		}
	}
	// By geometry, and with nothing named: the one monitor clear of the desktop.
	for _, sel := range []x11.Selector{{Geometry: "1920x1152+1920+0"}, {}} {
		w := open(t, s, sel)
		if w.Monitor().Name != "SLM-1" {
			t.Errorf("%+v chose %v", sel, w.Monitor())
		}
		w.Close()
	}
	w := open(t, s, x11.Selector{Output: "DESK", AllowPrimary: true})
	if r, _, _ := s.Geometry(w.ID()); r != deskRect {
		t.Fatalf("allowed primary: window at %v", r)
	}
	_, err = x11.Open(ctx, x11.Config{Display: s.Display, Selector: x11.Selector{Output: "SLM-1"}, Width: 1920, Height: 1080})
	if err == nil || !strings.Contains(err.Error(), "1920x1152") {
		t.Fatalf("size mismatch: %v", err)
	}
}

func TestOnlyMonitorIsTheDesktop(t *testing.T) {
	s := x11test.Start(t, 640, 480)
	_, err := x11.Open(context.Background(), x11.Config{Display: s.Display})
	if err == nil || !strings.Contains(err.Error(), "allow_primary") {
		t.Fatalf("the only monitor was not refused: %v", err)
	}
	w := open(t, s, x11.Selector{AllowPrimary: true})
	if gw, gh := w.Size(); gw != 640 || gh != 480 {
		t.Fatalf("size %d×%d", gw, gh)
	}
}

func TestWindowLost(t *testing.T) {
	ctx := context.Background()
	s := bench(t)
	w := open(t, s, x11.Selector{Output: "SLM-1"})
	gray := randomGray(1920*1152, 7)
	if err := w.Show(ctx, gray); err != nil {
		t.Fatal(err)
	}
	if err := s.Unmap(w.ID()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-w.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("unmapping the window did not mark it lost")
	}
	err := w.Show(ctx, gray)
	if !errors.Is(err, x11.ErrLost) || !strings.Contains(err.Error(), "unmapped") {
		t.Fatalf("Show on an unmapped window: %v", err)
	}
	// Blank, the safe state, maps the window again and draws black.
	if err := w.Blank(ctx); err != nil {
		t.Fatal(err)
	}
	if v, _, _ := s.Attributes(w.ID()); !v {
		t.Fatal("Blank did not map the window again")
	}
	got, _ := s.Gray(slmRect)
	if i := firstDiff(got, make([]uint8, len(got))); i >= 0 {
		t.Fatalf("after Blank, pixel %d is %d", i, got[i])
	}
	// The loss is kept: Show still refuses.
	if err := w.Show(ctx, gray); !errors.Is(err, x11.ErrLost) {
		t.Fatalf("Show after a loss and a Blank: %v", err)
	}

	// Destroyed: Blank makes a new window.
	old := w.ID()
	if err := s.Destroy(old); err != nil {
		t.Fatal(err)
	}
	if err := x11test.WaitFor(ctx, 5*time.Second, func() bool {
		err := w.Show(ctx, gray)
		return errors.Is(err, x11.ErrLost) && strings.Contains(err.Error(), "destroyed")
	}); err != nil {
		t.Fatal("Show did not report the window destroyed")
	}
	if err := w.Blank(ctx); err != nil {
		t.Fatal(err)
	}
	if w.ID() == old {
		t.Fatal("Blank did not recreate the destroyed window")
	}
	if r, _, _ := s.Geometry(w.ID()); r != slmRect {
		t.Fatalf("recreated window at %v", r)
	}

	// The server dies: every call fails with ErrLost and says so.
	s.Kill()
	if err := x11test.WaitFor(ctx, 5*time.Second, func() bool {
		err := w.Show(ctx, gray)
		return errors.Is(err, x11.ErrLost) && strings.Contains(err.Error(), "connection")
	}); err != nil {
		t.Fatalf("Show after the server died: %v", w.Show(ctx, gray))
	}
	err = w.Blank(ctx)
	if !errors.Is(err, x11.ErrLost) || !strings.Contains(err.Error(), "connection") {
		t.Fatalf("Blank after the server died: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestWindowObscured(t *testing.T) {
	ctx := context.Background()
	s := bench(t)
	w := open(t, s, x11.Selector{Output: "SLM-1"})
	gray := randomGray(1920*1152, 3)
	if err := w.Show(ctx, gray); err != nil {
		t.Fatal(err)
	}
	uncover := s.Cover(t, image.Rect(2000, 100, 2300, 300))
	err := x11test.WaitFor(ctx, 5*time.Second, func() bool { return errors.Is(w.Show(ctx, gray), x11.ErrObscured) })
	if err != nil {
		t.Fatal("a window over the SLM did not make Show fail")
	}
	uncover()
	if err := x11test.WaitFor(ctx, 5*time.Second, func() bool { return w.Show(ctx, gray) == nil }); err != nil {
		t.Fatal("Show still fails after the cover went away")
	}
	got, _ := s.Gray(slmRect)
	if i := firstDiff(got, gray); i >= 0 {
		t.Fatalf("after the cover went, pixel %d differs", i)
	}
}

// A server without BIG-REQUESTS takes at most 256 KiB a request; a small
// limit makes a frame go up in many strips, which must still read back
// exactly.
func TestUploadInStrips(t *testing.T) {
	s := bench(t)
	w := open(t, s, x11.Selector{Output: "SLM-1"})
	for _, n := range []int{1 << 16, 262140} {
		x11.SetMaxRequest(w, n)
		gray := randomGray(1920*1152, uint64(n))
		if err := w.Show(context.Background(), gray); err != nil {
			t.Fatal(err)
		}
		got, err := s.Gray(slmRect)
		if err != nil {
			t.Fatal(err)
		}
		if i := firstDiff(got, gray); i >= 0 {
			t.Fatalf("max request %d: pixel %d differs", n, i)
		}
	}
}

// Unplugging the SLM (its monitor disappears) loses the window.
func TestMonitorGone(t *testing.T) {
	s := bench(t)
	w := open(t, s, x11.Selector{Output: "SLM-1"})
	s.DeleteMonitor(t, "SLM-1")
	s.Replug(t)
	select {
	case <-w.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("deleting the monitor did not lose the window")
	}
	err := w.Show(context.Background(), make([]uint8, 1920*1152))
	if !errors.Is(err, x11.ErrLost) || !strings.Contains(err.Error(), "SLM-1") {
		t.Fatalf("Show after the monitor went: %v", err)
	}
	if err := w.Blank(context.Background()); !errors.Is(err, x11.ErrLost) {
		t.Fatalf("Blank after the monitor went: %v", err)
	}
}

// A desktop session's server wants the cookie of its Xauthority file: the
// window finds it for the display it dials, and without it is refused.
func TestAuthority(t *testing.T) {
	s, file := x11test.StartAuth(t, 800, 600)
	w := open(t, s, x11.Selector{AllowPrimary: true})
	if err := w.Show(context.Background(), randomGray(800*600, 1)); err != nil {
		t.Fatal(err)
	}
	w.Close()
	t.Setenv("XAUTHORITY", file+".missing")
	_, err := x11.Open(context.Background(), x11.Config{Display: s.Display, Selector: x11.Selector{AllowPrimary: true}})
	if err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("without the cookie: %v", err)
	}
}

// Before RandR 1.5 a monitor is an output with a CRTC; Xvfb's one output
// "screen" covers the screen, as its automatic 1.5 monitor does.
func TestMonitorsRandR12(t *testing.T) {
	s := x11test.Start(t, 1024, 768)
	ms, err := x11.MonitorsRandR12(s.Display)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 1 || ms[0].Name != "screen" || ms[0].Rect != image.Rect(0, 0, 1024, 768) || !ms[0].Desktop {
		t.Fatalf("RandR 1.2 monitors: %+v", ms)
	}
	m15, err := x11.Monitors(context.Background(), s.Display)
	if err != nil {
		t.Fatal(err)
	}
	if len(m15) != 1 || m15[0].Name != ms[0].Name || m15[0].Rect != ms[0].Rect {
		t.Fatalf("RandR 1.5 says %+v, 1.2 says %+v", m15, ms)
	}
}
