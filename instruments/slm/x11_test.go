package slm_test

import (
	"context"
	"image"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/insitu-lab/insitu"
	"github.com/insitu-lab/insitu/drivers/x11/x11test"
	"github.com/insitu-lab/insitu/instruments/slm"
)

// The SLM monitor of the tests: smaller than a real SLM's, so the tests
// stay quick under the race detector (the benchmark uses 1920×1152).
const W, H = 1024, 768

var slmRect = image.Rect(1024, 0, 1024+W, H)

func xbench(t *testing.T) *x11test.Server {
	s := x11test.Start(t, 2048, 1024)
	s.AddMonitor(t, "DESK", image.Rect(0, 0, 1024, 1024), true)
	s.AddMonitor(t, "SLM-1", slmRect, false)
	return s
}

func openX11(t *testing.T, s *x11test.Server) slm.Display {
	t.Helper()
	d, err := slm.OpenDisplay(context.Background(), slm.DisplayConfig{Type: "x11", X11Display: s.Display, Output: "SLM-1", Width: W, Height: H})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.(slm.X11).Close() })
	return d
}

func phases(n int, seed uint64) []float64 {
	r := rand.New(rand.NewPCG(seed, 2))
	p := make([]float64, n)
	for i := range p {
		p[i] = r.Float64() * 2 * math.Pi
	}
	return p
}

// The window shows, byte for byte, the frame the phase → LUT → gray
// pipeline makes on a memory display: macro-pixels, correction, origin,
// background, wavelength scaling, linear and measured LUTs.
func TestX11ShowsThePipelineFrame(t *testing.T) {
	s := xbench(t)
	d := openX11(t, s)
	side := 16 * 12
	for _, cfg := range []slm.Config{
		{N: 16, MacroPixel: 12, TwoPiGray: 218, Background: 17, Origin: []int{100, 50}, Correction: phases(side*side, 9)},
		{N: 16, MacroPixel: 12, Wavelength: 700e-9, LUTWavelength: 633e-9, TwoPiGray: 218},
		{N: 24, MacroPixel: 30, LUT: &slm.LUT{Gray: []float64{0, 60, 200, 255}, Phase: []float64{0, 1.5, 5.5, 7}}, Correction: phases(W*H, 4)},
	} {
		x, err := slm.New(d, cfg)
		if err != nil {
			t.Fatal(err)
		}
		m := slm.NewMemory(W, H)
		ref, err := slm.New(m, cfg)
		if err != nil {
			t.Fatal(err)
		}
		p := phases(cfg.N*cfg.N, uint64(cfg.N))
		var tr insitu.QueryTrace
		if err := x.Show(insitu.WithQueryTrace(context.Background(), &tr), p); err != nil {
			t.Fatal(err)
		}
		if err := ref.Show(context.Background(), p); err != nil {
			t.Fatal(err)
		}
		got, err := s.Gray(slmRect)
		if err != nil {
			t.Fatal(err)
		}
		want := m.Last()
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("%+v: pixel (%d, %d) is %d on screen, the pipeline makes %d", cfg, i%W, i/W, got[i], want[i])
			}
		}
		marks := tr.Marks()
		if len(marks) != 2 || marks[0].Event != insitu.MarkWritten || marks[1].Event != insitu.MarkShown || marks[1].At.Before(marks[0].At) {
			t.Fatalf("marks %+v: want written then shown", marks)
		}
	}
	// Independently of the pipeline's code: with the linear LUT and no
	// correction, gray = ⌊φ/2π·two_pi_gray⌋ on each control's block.
	x, err := slm.New(d, slm.Config{N: 4, MacroPixel: 100, TwoPiGray: 218})
	if err != nil {
		t.Fatal(err)
	}
	p := phases(16, 5)
	if err := x.Show(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	got, _ := s.Gray(slmRect)
	x0, y0 := (W-400)/2, (H-400)/2
	for i, phi := range p {
		want := uint8(math.Floor(phi / (2 * math.Pi) * 218))
		cx, cy := x0+100*(i%4)+50, y0+100*(i/4)+50
		if g := got[cy*W+cx]; g != want {
			t.Errorf("control %d: gray %d, want %d", i, g, want)
		}
	}
}

// A display-sized phase image goes through the same LUT, each pixel with
// its own correction.
func TestShowImage(t *testing.T) {
	s := xbench(t)
	d := openX11(t, s)
	corr := phases(W*H, 11)
	x, err := slm.New(d, slm.Config{N: 8, MacroPixel: 8, TwoPiGray: 200, Correction: corr})
	if err != nil {
		t.Fatal(err)
	}
	img := phases(W*H, 12)
	if err := x.ShowImage(context.Background(), img); err != nil {
		t.Fatal(err)
	}
	got, _ := s.Gray(slmRect)
	for i := range img {
		want := uint8(math.Floor(math.Mod(img[i]+corr[i], 2*math.Pi) / (2 * math.Pi) * 200))
		if got[i] != want {
			t.Fatalf("pixel %d: %d, want %d", i, got[i], want)
		}
	}
	if err := x.ShowImage(context.Background(), img[:10]); err == nil {
		t.Fatal("a short image was shown")
	}
}

// The framebuffer marks the same instants: written once the bytes are in
// the framebuffer, shown once they are synced.
func TestFramebufferMarks(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fb")
	if err := os.WriteFile(path, make([]byte, 8*8), 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := slm.OpenDisplay(context.Background(), slm.DisplayConfig{Type: "fbdev", Path: path, Width: 8, Height: 8, Bits: 8})
	if err != nil {
		t.Fatal(err)
	}
	x, err := slm.New(d, slm.Config{N: 2, MacroPixel: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	var tr insitu.QueryTrace
	if err := x.SetPhase(insitu.WithQueryTrace(context.Background(), &tr), []float64{1, 2, 3, 4}); err != nil {
		t.Fatal(err)
	}
	var events []string
	for _, m := range tr.Marks() {
		events = append(events, m.Event)
	}
	if strings.Join(events, " ") != "written shown settled" {
		t.Fatalf("marks %v", events)
	}
}

func TestX11DisplayConfig(t *testing.T) {
	for _, tc := range []struct {
		c    slm.DisplayConfig
		w, h int
		bad  string
	}{
		{c: slm.DisplayConfig{Type: "x11"}},
		{c: slm.DisplayConfig{Type: "x11", Output: "HDMI-1", Width: 1920, Height: 1152}, w: 1920, h: 1152},
		{c: slm.DisplayConfig{Type: "x11", Geometry: "1920x1152+1920+0"}, w: 1920, h: 1152},
		{c: slm.DisplayConfig{Type: "x11", Geometry: "1920x1152+1920+0", Width: 1920, Height: 1080}, bad: "disagree"},
		{c: slm.DisplayConfig{Type: "x11", Geometry: "1920x1152"}, bad: "geometry"},
		{c: slm.DisplayConfig{Type: "x11", Width: 1920}, bad: "both"},
		{c: slm.DisplayConfig{Type: "x11", X11Display: "lab:x"}, bad: "display"},
		{c: slm.DisplayConfig{Type: "x11", Path: "/dev/fb1"}, bad: "path"},
		{c: slm.DisplayConfig{Type: "fbdev", Path: "/dev/fb1", Output: "HDMI-1"}, bad: "output"},
		{c: slm.DisplayConfig{Type: "memory", Width: 4, Height: 4, AllowPrimary: true}, bad: "allow_primary"},
	} {
		w, h, err := tc.c.Size()
		if tc.bad != "" {
			if err == nil || !strings.Contains(err.Error(), tc.bad) {
				t.Errorf("%+v: %v, want an error about %s", tc.c, err, tc.bad)
			}
			continue
		}
		if err != nil || w != tc.w || h != tc.h {
			t.Errorf("%+v: %d×%d, %v", tc.c, w, h, err)
		}
	}
}

// BenchmarkShow: a phase pattern in, the frame on the display and, for
// X11, confirmed by the server (round trip and Present's vblank), on a
// 1920×1152 SLM monitor; the memory and framebuffer-file displays are the
// references. Bytes are the frame's gray pixels.
func BenchmarkShow(b *testing.B) {
	const w, h = 1920, 1152
	cfg := slm.Config{N: 128, MacroPixel: 8, TwoPiGray: 218}
	p := phases(128*128, 1)
	run := func(b *testing.B, d slm.Display) {
		s, err := slm.New(d, cfg)
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(w * h)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			p[0] = float64(i%7) / 7 // a new frame each time
			if err := s.Show(context.Background(), p); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("memory", func(b *testing.B) { run(b, slm.NewMemory(w, h)) })
	b.Run("fbdev-file", func(b *testing.B) {
		path := filepath.Join(b.TempDir(), "fb")
		if err := os.WriteFile(path, make([]byte, 4*w*h), 0o600); err != nil {
			b.Fatal(err)
		}
		d, err := slm.OpenDisplay(context.Background(), slm.DisplayConfig{Type: "fbdev", Path: path, Width: w, Height: h, Bits: 32})
		if err != nil {
			b.Fatal(err)
		}
		defer d.(interface{ Close() error }).Close()
		run(b, d)
	})
	b.Run("x11-xvfb", func(b *testing.B) {
		s := x11test.Start(b, 3840, 1200)
		s.AddMonitor(b, "DESK", image.Rect(0, 0, 1920, 1200), true)
		s.AddMonitor(b, "SLM-1", image.Rect(1920, 0, 3840, 1152), false)
		d, err := slm.OpenDisplay(context.Background(), slm.DisplayConfig{Type: "x11", X11Display: s.Display, Output: "SLM-1"})
		if err != nil {
			b.Fatal(err)
		}
		defer d.(slm.X11).Close()
		run(b, d)
	})
}
