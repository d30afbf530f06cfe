package slm

import (
	"context"
	"errors"
	"image"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/insitu-lab/insitu/drivers/fbdev"
)

func TestLinearLUTWrapAndWavelength(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		phi  float64
		want uint8
	}{
		{"zero", Config{}, 0, 0},
		{"pi", Config{}, math.Pi, 128},
		{"just below 2pi", Config{}, 2*math.Pi - 1e-9, 255},
		{"2pi wraps to 0", Config{}, 2 * math.Pi, 0},
		{"wrap above", Config{}, 2*math.Pi + math.Pi/2, 64},
		{"wrap negative", Config{}, -math.Pi / 2, 192},
		{"two_pi_gray 218", Config{TwoPiGray: 218}, math.Pi, 109},
		// λ/λ_cal = 633/700: floor(128·0.904286) = 115.
		{"shorter wavelength", Config{Wavelength: 633e-9, LUTWavelength: 700e-9}, math.Pi, 115},
		// 200·(8/7)/2 = 114.29.
		{"longer wavelength", Config{TwoPiGray: 200, Wavelength: 800e-9, LUTWavelength: 700e-9}, math.Pi, 114},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.N = 1
			s, err := New(NewMemory(1, 1), tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if got := s.Gray(0, tc.phi); got != tc.want {
				t.Errorf("Gray(%v) = %d, want %d", tc.phi, got, tc.want)
			}
		})
	}
	// 2π at 800 nm needs 256·8/7 levels: refused.
	if _, err := New(NewMemory(1, 1), Config{N: 1, Wavelength: 800e-9, LUTWavelength: 700e-9}); err == nil {
		t.Error("a wavelength the panel cannot reach 2π at was accepted")
	}
}

func TestMeasuredLUT(t *testing.T) {
	lut := &LUT{Gray: []float64{0, 100, 200, 255}, Phase: []float64{0, 2, 5, 7}}
	s, err := New(NewMemory(1, 1), Config{N: 1, LUT: lut})
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range lut.Phase[:3] {
		if got := s.Gray(0, p); float64(got) != lut.Gray[i] {
			t.Errorf("calibration point %v rad: gray %d, want %v", p, got, lut.Gray[i])
		}
	}
	prev := uint8(0)
	for k := range 1000 {
		g := s.Gray(0, 2*math.Pi*float64(k)/1000)
		if g < prev {
			t.Fatalf("LUT not monotone at step %d: %d after %d", k, g, prev)
		}
		prev = g
	}
	// A LUT that does not reach 2π, or is not monotone, is refused.
	for _, bad := range []*LUT{
		{Gray: []float64{0, 255}, Phase: []float64{0, 6}},
		{Gray: []float64{0, 100, 255}, Phase: []float64{0, 5, 4}},
	} {
		if _, err := New(NewMemory(1, 1), Config{N: 1, LUT: bad}); err == nil {
			t.Errorf("LUT %+v accepted", bad)
		}
	}
}

func TestCorrectionAndPlacement(t *testing.T) {
	// 2×2 pattern in a 5×4 display at origin (2, 1), background 7; the
	// correction adds π to pixel 0 (π+π wraps to 0) and π/2 to pixel 3.
	cfg := Config{N: 2, Origin: []int{2, 1}, Background: 7,
		Correction: []float64{math.Pi, 0, 0, math.Pi / 2}}
	m := NewMemory(5, 4)
	s, err := New(m, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Show(context.Background(), []float64{math.Pi, math.Pi, 0, math.Pi}); err != nil {
		t.Fatal(err)
	}
	want := []uint8{
		7, 7, 7, 7, 7,
		7, 7, 0, 128, 7,
		7, 7, 0, 192, 7,
		7, 7, 7, 7, 7,
	}
	if got := m.Last(); string(got) != string(want) {
		t.Errorf("frame\n got %v\nwant %v", got, want)
	}
	// Centred: (5−2)/2 = 1, (4−2)/2 = 1; a display-sized correction is
	// windowed under the pattern.
	corr := make([]float64, 20)
	corr[1*5+1] = math.Pi
	s, err = New(m, Config{N: 2, Correction: corr})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Show(context.Background(), []float64{0, math.Pi, 0, 0}); err != nil {
		t.Fatal(err)
	}
	want = []uint8{0, 0, 0, 0, 0, 0, 128, 128, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	if got := m.Last(); string(got) != string(want) {
		t.Errorf("centred frame\n got %v\nwant %v", got, want)
	}
	for _, bad := range []Config{
		{N: 2, Origin: []int{4, 0}}, {N: 2, Origin: []int{1}}, {N: 5}, {N: 2, Correction: []float64{1}},
	} {
		if _, err := New(m, bad); err == nil {
			t.Errorf("config %+v accepted", bad)
		}
	}
	if err := s.Show(context.Background(), []float64{math.NaN(), 0, 0, 0}); err == nil {
		t.Error("NaN phase shown")
	}
	if err := s.SafeState(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := m.Last(); string(got) != string(make([]uint8, 20)) {
		t.Errorf("safe state frame %v, want zeros", got)
	}
}

// Macro-pixels: 2×2 controls of 2×2 pixels, centred in a 6×5 display at
// (1, 0); the correction is per display pixel of the 4×4 pattern.
func TestMacroPixel(t *testing.T) {
	corr := make([]float64, 16)
	corr[1*4+2] = math.Pi // pattern pixel (1, 2), inside control (0, 1)
	m := NewMemory(6, 5)
	s, err := New(m, Config{N: 2, MacroPixel: 2, Background: 9, Correction: corr})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Show(context.Background(), []float64{0, math.Pi / 2, math.Pi, 3 * math.Pi / 2}); err != nil {
		t.Fatal(err)
	}
	want := []uint8{
		9, 0, 0, 64, 64, 9,
		9, 0, 0, 192, 64, 9,
		9, 128, 128, 192, 192, 9,
		9, 128, 128, 192, 192, 9,
		9, 9, 9, 9, 9, 9,
	}
	if got := m.Last(); string(got) != string(want) {
		t.Errorf("frame\n got %v\nwant %v", got, want)
	}
	for _, bad := range []Config{{N: 2, MacroPixel: 3}, {N: 2, MacroPixel: -1}, {N: 2, MacroPixel: 2, Correction: make([]float64, 4)}} {
		if _, err := New(m, bad); err == nil {
			t.Errorf("config %+v accepted", bad)
		}
	}
}

// A plain file stands in for /dev/fb1 (XRGB8888, stride padded to 4 pixels).
func TestFramebufferFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "fb1")
	const stride = 4 * 4
	if err := os.WriteFile(path, make([]byte, stride*2), 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := OpenDisplay(context.Background(), DisplayConfig{Type: "fbdev", Path: path, SysfsDir: filepath.Join(dir, "none"),
		Width: 3, Height: 2, Bits: 32, Stride: stride})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(d, Config{N: 1, Origin: []int{1, 1}, Background: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Show(context.Background(), []float64{math.Pi}); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	px := func(g byte) []byte { return []byte{g, g, g, 0} } // B, G, R, X (little-endian)
	var want []byte
	for _, g := range []byte{2, 2, 2} {
		want = append(want, px(g)...)
	}
	want = append(want, 0, 0, 0, 0) // stride padding untouched
	for _, g := range []byte{2, 128, 2} {
		want = append(want, px(g)...)
	}
	want = append(want, 0, 0, 0, 0)
	if string(got) != string(want) {
		t.Errorf("file\n got % x\nwant % x", got, want)
	}
	if err := s.Blank(context.Background()); err != nil {
		t.Fatal(err)
	}
	got, _ = os.ReadFile(path)
	if string(got) != string(make([]byte, len(want))) {
		t.Errorf("blanked file % x", got)
	}
	var _ Display = (*fbdev.Dev)(nil)
}

func TestSettle(t *testing.T) {
	s, err := New(NewMemory(1, 1), Config{N: 1, Settle: 30 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := s.SetPhase(context.Background(), []float64{1}); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < 30*time.Millisecond {
		t.Errorf("SetPhase returned after %v, settle is 30ms", el)
	}
	s, _ = New(NewMemory(1, 1), Config{N: 1, Settle: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := s.SetPhase(ctx, []float64{1}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("cancelled settle: %v", err)
	}
}

func BenchmarkShow60in1080p(b *testing.B) {
	s, err := New(NewMemory(1920, 1080), Config{N: 60})
	if err != nil {
		b.Fatal(err)
	}
	phase := make([]float64, 3600)
	for i := range phase {
		phase[i] = float64(i) * 0.01
	}
	for b.Loop() {
		if err := s.Show(context.Background(), phase); err != nil {
			b.Fatal(err)
		}
	}
}

func TestLoadCorrection(t *testing.T) {
	img := image.NewGray(image.Rect(0, 0, 2, 1))
	img.Pix = []uint8{0, 128}
	path := filepath.Join(t.TempDir(), "corr.png")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
	f.Close()
	ph, w, h, err := LoadCorrection(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	if w != 2 || h != 1 || ph[0] != 0 || math.Abs(ph[1]-math.Pi) > 1e-12 {
		t.Errorf("LoadCorrection = %v %d×%d, want [0 π] 2×1", ph, w, h)
	}
	if _, _, _, err := LoadCorrection(filepath.Join(t.TempDir(), "none.png"), 0); err == nil {
		t.Error("missing file loaded")
	}
}

// Validate makes New's checks without a display: the same verdicts and
// messages for a known size, and every check that does not need the size
// when it is not known.
func TestValidateWithoutADisplay(t *testing.T) {
	const w, h = 5, 4
	m := NewMemory(w, h)
	inf := math.Inf(1)
	for i, cfg := range []Config{
		{N: 2},
		{N: 2, Origin: []int{3, 2}},
		{N: 2, Origin: []int{4, 0}},
		{N: 2, Origin: []int{-1, 0}},
		{N: 2, Origin: []int{1}},
		{N: 5},
		{N: 0},
		{N: 2, Background: 256},
		{N: 2, Settle: -time.Millisecond},
		{N: 2, Wavelength: 700e-9},
		{N: 2, Wavelength: 700e-9, LUTWavelength: 633e-9, TwoPiGray: 240},
		{N: 2, TwoPiGray: 300},
		{N: 2, LUT: &LUT{Gray: []float64{0, 255}, Phase: []float64{0, 3}}},
		{N: 2, Correction: make([]float64, 4)},
		{N: 2, Correction: make([]float64, w*h)},
		{N: 2, Correction: []float64{1}},
		{N: 2, Correction: []float64{0, 0, inf, 0}},
	} {
		_, opened := New(m, cfg)
		checked := cfg.Validate(w, h)
		switch {
		case (opened == nil) != (checked == nil):
			t.Errorf("config %d %+v: New %v, Validate %v", i, cfg, opened, checked)
		case opened != nil && opened.Error() != "slm(memory 5x4)"+strings.TrimPrefix(checked.Error(), "slm"):
			t.Errorf("config %d: New says %q, Validate %q", i, opened, checked)
		}
	}
	// Size unknown: placement is New's to check, the rest is checked now.
	for _, cfg := range []Config{
		{N: 60, Origin: []int{930, 510}},
		{N: 60},
		{N: 2, Correction: make([]float64, 1920*1080)},
	} {
		if err := cfg.Validate(0, 0); err != nil {
			t.Errorf("%+v for a display of unknown size: %v", cfg.Origin, err)
		}
	}
	for _, cfg := range []Config{
		{N: 0}, {N: 2, Origin: []int{-1, 0}}, {N: 2, Origin: []int{1}}, {N: 2, Background: -1},
		{N: 2, TwoPiGray: 300}, {N: 2, Correction: []float64{inf}},
	} {
		if err := cfg.Validate(0, 0); err == nil {
			t.Errorf("%+v accepted for a display of unknown size", cfg)
		}
	}
}

func TestDisplayConfigSize(t *testing.T) {
	for _, tc := range []struct {
		c    DisplayConfig
		w, h int
		bad  bool
	}{
		{c: DisplayConfig{Type: "memory", Width: 6, Height: 4}, w: 6, h: 4},
		{c: DisplayConfig{Type: "memory", Width: 6}, bad: true},
		{c: DisplayConfig{Type: "fbdev", Path: "/dev/fb1"}},
		{c: DisplayConfig{Type: "fbdev", Path: "/dev/fb1", Width: 1920}},
		{c: DisplayConfig{Type: "fbdev", Path: "/dev/fb1", Width: 1920, Height: 1080}, w: 1920, h: 1080},
		{c: DisplayConfig{Type: "fbdev", Path: "/dev/fb1", Width: 1920, Height: 1080, Bits: 32, Stride: 7680}, w: 1920, h: 1080},
		{c: DisplayConfig{Type: "fbdev", Path: "/dev/fb1", Width: 1920, Height: 1080, Bits: 32, Stride: 100}, bad: true},
		{c: DisplayConfig{Type: "fbdev", Path: "/dev/fb1", Bits: 12}, bad: true},
		{c: DisplayConfig{Type: "fbdev", Path: "/dev/fb1", Width: -1}, bad: true},
		{c: DisplayConfig{Type: "fbdev"}, bad: true},
		{c: DisplayConfig{Type: "hdmi"}, bad: true},
	} {
		w, h, err := tc.c.Size()
		if (err != nil) != tc.bad || w != tc.w || h != tc.h {
			t.Errorf("%+v: %d×%d, %v", tc.c, w, h, err)
		}
		if tc.bad {
			// OpenDisplay refuses it with the same error, before opening.
			if _, oerr := OpenDisplay(context.Background(), tc.c); oerr == nil || oerr.Error() != err.Error() {
				t.Errorf("%+v: OpenDisplay %v, Size %v", tc.c, oerr, err)
			}
		}
	}
	// A missing framebuffer is not Size's business.
	if _, _, err := (DisplayConfig{Type: "fbdev", Path: filepath.Join(t.TempDir(), "none"), Width: 4, Height: 4}).Size(); err != nil {
		t.Error(err)
	}
}

// A memory panel with a response relaxes toward each frame as a
// first-order system, from wherever the previous frame had left it.
func TestMemoryResponse(t *testing.T) {
	now := time.Unix(100, 0)
	clock := func() time.Time { return now }
	m := NewMemory(2, 1)
	m.SetResponse(20*time.Millisecond, clock)
	lv := make([]float64, 2)
	m.Levels(now, lv)
	if lv[0] != 0 || lv[1] != 0 {
		t.Fatalf("levels before any frame: %v", lv)
	}
	if err := m.Show(context.Background(), []uint8{200, 100}); err != nil {
		t.Fatal(err)
	}
	t0 := now
	for _, d := range []time.Duration{0, 5 * time.Millisecond, 20 * time.Millisecond, time.Second} {
		m.Levels(t0.Add(d), lv)
		k := 1 - math.Exp(-d.Seconds()/0.02)
		if math.Abs(lv[0]-200*k) > 1e-9 || math.Abs(lv[1]-100*k) > 1e-9 {
			t.Errorf("after %v: %v, want %v", d, lv, []float64{200 * k, 100 * k})
		}
	}
	// Back to 0 after 10 ms: from 200·(1 − e^−½), decaying.
	now = t0.Add(10 * time.Millisecond)
	s := 200 * (1 - math.Exp(-0.5))
	if err := m.Blank(context.Background()); err != nil {
		t.Fatal(err)
	}
	m.Levels(now.Add(30*time.Millisecond), lv)
	if want := s * math.Exp(-1.5); math.Abs(lv[0]-want) > 1e-9 {
		t.Errorf("decay: %v, want %v", lv[0], want)
	}
	// Without a response the levels are the frame's.
	m2 := NewMemory(1, 1)
	_ = m2.Show(context.Background(), []uint8{7})
	m2.Levels(time.Time{}, lv[:1])
	if lv[0] != 7 {
		t.Errorf("a panel without response: %v", lv[0])
	}
	if _, _, err := (DisplayConfig{Type: "fbdev", Path: "/dev/fb0", Response: time.Millisecond}).Size(); err == nil {
		t.Error("a response on a framebuffer was accepted")
	}
	d, err := OpenDisplay(context.Background(), DisplayConfig{Type: "memory", Width: 1, Height: 1, Response: 3 * time.Millisecond})
	if err != nil || d.(*Memory).Response() != 3*time.Millisecond {
		t.Errorf("OpenDisplay: %v, %v", d, err)
	}
}
