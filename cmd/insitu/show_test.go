package main

import (
	"bytes"
	"context"
	"image"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/insitu-lab/insitu/drivers/x11"
	"github.com/insitu-lab/insitu/drivers/x11/x11test"
	"github.com/insitu-lab/insitu/instruments/slm"
	"github.com/insitu-lab/insitu/loop/journal"
)

// The SLM monitor: smaller than a real SLM's so the tests stay quick
// under the race detector.
var slmMonitor = image.Rect(1024, 0, 1024+800, 600)

// x11Bench is a desk with a desktop monitor and an SLM monitor on Xvfb,
// and a run config driving an SLM window there and a second SLM as a
// framebuffer file, which the served power-meter twin reads.
type x11Bench struct {
	x      *x11test.Server
	fb     string
	config string
}

func newX11Bench(t *testing.T, iterations int) x11Bench {
	t.Helper()
	x := x11test.Start(t, 2048, 1024)
	x.AddMonitor(t, "DESK", image.Rect(0, 0, 1024, 1024), true)
	x.AddMonitor(t, "SLM-1", slmMonitor, false)
	fb := filepath.Join(t.TempDir(), "slm.fb")
	addr := serveInProcess(t, "powermeter", "--tcp", "127.0.0.1:0", "--fb", fb)
	cfg := strings.NewReplacer("DISPLAY", x.Display, "FB", fb, "ADDR", addr, "ITER", strconv.Itoa(iterations)).Replace(`
name: x11-bench
method: gradpie
seed: 1
iterations: ITER
blackbox:
  kind: rig
  name: x11-bench
  settle: 0s
  parts:
    - name: slm
      type: slm
      display: {type: x11, x11_display: "DISPLAY", output: SLM-1}
      n: 4
      macro_pixel: 8
      two_pi_gray: 218
      settle: 5ms
    - name: fb
      type: slm
      display: {type: fbdev, path: FB, width: 60, height: 60, bits: 32}
      n: 10
      macro_pixel: 6
      two_pi_gray: 256
    - name: pm
      type: powermeter
      idn: "(?i)twin"
      transport: {type: lxi, lxi: {address: ADDR, timeout: 2s}}
      wavelength: 700
      average: 1
objective: {kind: identity, outputs: [pm/power], direction: max}
init: {points: 10}
top_k: 2
local: {samples: 1, sigma: 0.02}
step_lr: 0.05
surrogate: {hidden: [16, 16], initial_epochs: 5, steps: 1, k: 3, batch: 16}
safety:
  rate: 1000
  timeout: 5s
  check_outputs: trip
  output_ranges: {pm/power: {lo: 0, hi: 1.5}}
journal: {sync: query}
`)
	return x11Bench{x: x, fb: fb, config: writeFile(t, "x11-bench.yaml", cfg)}
}

// dirty leaves a pattern on the framebuffer SLM, as an earlier run would
// have, so that its safe state shows.
func (b x11Bench) dirty(t *testing.T) {
	t.Helper()
	if err := os.WriteFile(b.fb, bytes.Repeat([]byte{0x55}, 60*60*4), 0o600); err != nil {
		t.Fatal(err)
	}
}

// show puts a checker on the SLM window through the guard, holds it (read
// back byte for byte meanwhile), and ends with the window blank.
func TestShowCheckerEndToEnd(t *testing.T) {
	b := newX11Bench(t, 1)
	// The frame the SLM pipeline makes of checker:8 on this part's config.
	ref, err := slm.New(slm.NewMemory(800, 600), slm.Config{N: 4, MacroPixel: 8, TwoPiGray: 218, Settle: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	p, _ := slm.ParsePattern("checker:8")
	want := make([]uint8, 800*600)
	if err := ref.ImageFrame(p.Image(800, 600), want); err != nil {
		t.Fatal(err)
	}
	// Independently: squares of 8 pixels from the centre, gray 0 and
	// ⌊π/2π·218⌋ = 109.
	for _, pt := range []image.Point{{400, 300}, {392, 300}, {400, 292}, {0, 0}, {799, 599}} {
		g := uint8(0)
		if (floorDiv(pt.X-400, 8)+floorDiv(pt.Y-300, 8))&1 != 0 {
			g = 109
		}
		if want[pt.Y*800+pt.X] != g {
			t.Fatalf("pipeline frame at %v is %d, want %d", pt, want[pt.Y*800+pt.X], g)
		}
	}

	b.dirty(t)
	type result struct {
		out string
		err error
	}
	done := make(chan result, 1)
	go func() {
		out, _, err := run(t, "show", b.config, "--part", "slm", "--pattern", "checker:8", "--for", "3s")
		done <- result{out, err}
	}()
	var got []uint8
	err = x11test.WaitFor(context.Background(), 60*time.Second, func() bool {
		got, _ = b.x.Gray(slmMonitor)
		return bytes.Equal(got, want)
	})
	if err != nil {
		t.Fatalf("the SLM monitor never showed the checker's frame (first difference at %d)", firstDiff(got, want))
	}
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	for _, s := range []string{"slm: checker:8 on x11(" + b.x.Display + " SLM-1) (800×600)", "pm/power = ", "holding for 3s", "every part in its safe state"} {
		if !strings.Contains(r.out, s) {
			t.Errorf("output lacks %q:\n%s", s, r.out)
		}
	}
	got, _ = b.x.Gray(slmMonitor)
	if !bytes.Equal(got, make([]uint8, len(got))) {
		t.Error("the SLM was not blank after show")
	}
	if !blank(t, b.fb) {
		t.Error("the other SLM part was not put in its safe state")
	}
}

func floorDiv(a, b int) int {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func firstDiff(a, b []uint8) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return -1
}

func TestShowRefuses(t *testing.T) {
	b := newX11Bench(t, 1)
	npyFile := func(rows, cols int, v float64) string {
		var buf bytes.Buffer
		data := make([]float64, rows*cols)
		for i := range data {
			data[i] = v
		}
		if err := journal.WriteNPY(&buf, []int{rows, cols}, data); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(t.TempDir(), "p.npy")
		if err := os.WriteFile(p, buf.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--part", "cam", "--pattern", "blank"}, `no part "cam"`},
		{[]string{"--part", "pm", "--pattern", "blank"}, "not an SLM"},
		{[]string{"--part", "slm", "--pattern", "checker:0"}, "checker"},
		{[]string{"--part", "slm", "--pattern", npyFile(3, 5, 1)}, "3×5"},
		{[]string{"--part", "slm", "--pattern", npyFile(600, 800, 7)}, "outside the SLM's range"},
		{[]string{"--part", "slm", "--pattern", npyFile(4, 4, -1)}, "slm/phi_0_0"},
	} {
		_, _, err := run(t, append([]string{"show", b.config}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("show %v: %v, want an error about %q", tc.args, err, tc.want)
		}
	}
	// A .npy of the controls is shown as a query is.
	if _, _, err := run(t, "show", b.config, "--part", "slm", "--pattern", npyFile(4, 4, math.Pi), "--for", "10ms"); err != nil {
		t.Fatal(err)
	}
}

// The X server dies in the middle of a run: the run ends with an error
// naming the SLM window and the lost connection, the other SLM is blank,
// and the journal holds every query answered and the one that failed.
func TestRunX11ServerKilled(t *testing.T) {
	b := newX11Bench(t, 1000)
	dir := filepath.Join(t.TempDir(), "run")
	done := make(chan error, 1)
	go func() {
		_, _, err := run(t, "run", b.config, "--out", dir, "-q")
		done <- err
	}()
	waitQueries(t, dir, 15, 3*time.Minute)
	b.x.Kill()
	var err error
	select {
	case err = <-done:
	case <-time.After(time.Minute):
		t.Fatal("the run went on after the X server died")
	}
	if err == nil {
		t.Fatal("the run survived the X server's death")
	}
	for _, s := range []string{"slm", b.x.Display, x11.ErrLost.Error()} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error does not name %q: %v", s, err)
		}
	}
	st := statuses(t, dir)
	if st[journal.StatusDone] < 10 || st[journal.StatusStarted] != 0 || st[journal.StatusFailed] != 1 {
		t.Errorf("journal statuses %v: want the answered queries done and the one that failed marked", st)
	}
	if !blank(t, b.fb) {
		t.Error("the other SLM was not blanked after the X server died")
	}
}

// The X server dies while show holds a pattern: show ends at once with an
// error naming the window's loss, and the other parts are safe.
func TestShowXKilledDuringHold(t *testing.T) {
	b := newX11Bench(t, 1)
	b.dirty(t)
	done := make(chan error, 1)
	go func() {
		_, _, err := run(t, "show", b.config, "--part", "slm", "--pattern", "grating:16:30", "--for", "60s")
		done <- err
	}()
	if err := x11test.WaitFor(context.Background(), time.Minute, func() bool {
		g, err := b.x.Gray(image.Rect(slmMonitor.Min.X, 0, slmMonitor.Min.X+1, 16))
		return err == nil && !bytes.Equal(g, make([]uint8, 16))
	}); err != nil {
		t.Fatal("the grating never showed")
	}
	b.x.Kill()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), x11.ErrLost.Error()) || !strings.Contains(err.Error(), "connection") {
			t.Fatalf("show after the X server died: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("show went on holding after the X server died")
	}
	if !blank(t, b.fb) {
		t.Error("the other SLM part was not put in its safe state")
	}
}

func TestProbeMonitors(t *testing.T) {
	b := newX11Bench(t, 1)
	out, _, err := run(t, "probe", "--monitors", "--x11-display", b.x.Display)
	if err != nil {
		t.Fatal(err)
	}
	for _, re := range []string{`(?m)^DESK\s+1024x1024\+0\+0\s+yes\s+-\s+desktop: needs allow_primary$`,
		`(?m)^SLM-1\s+800x600\+1024\+0\s+-\s+yes$`, `(?m)^screen\s+2048x1024\+0\+0\s+screen\s+desktop`,
		`display: \{type: x11, output: SLM-1\}`} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("probe --monitors output does not match %s:\n%s", re, out)
		}
	}
	// config check opens nothing: it passes with the X server gone.
	b.x.Kill()
	if _, _, err := run(t, "config", "check", b.config); err != nil {
		t.Fatalf("config check of an x11 config: %v", err)
	}
	if _, _, err := run(t, "probe", "--monitors", "--x11-display", b.x.Display); err == nil || !strings.Contains(err.Error(), b.x.Display) {
		t.Fatalf("probe --monitors of a dead display: %v", err)
	}
}
