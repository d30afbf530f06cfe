//go:build aravis && cgo

package main

import (
	"bytes"
	"image"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/insitu-lab/insitu/drivers/x11/x11test"
	"github.com/insitu-lab/insitu/instruments/camera/genicamtest"
	"github.com/insitu-lab/insitu/loop/journal"
)

// genicamBench is an SLM (a framebuffer file) in front of Aravis' fake
// GigE Vision camera.
func genicamBench(t *testing.T, fb string, iterations int) string {
	t.Helper()
	if err := os.WriteFile(fb, make([]byte, 60*60*4), 0o644); err != nil {
		t.Fatal(err)
	}
	return genicamBenchOn(t, "{type: fbdev, path: "+fb+", width: 60, height: 60, bits: 32}", iterations)
}

// genicamBenchOn is the bench with the SLM on the given display.
func genicamBenchOn(t *testing.T, display string, iterations int) string {
	t.Helper()
	return writeFile(t, "genicam-bench.yaml", `
name: genicam-bench
method: gradpie
seed: 1
iterations: `+strconv.Itoa(iterations)+`
blackbox:
  kind: rig
  name: slm-genicam
  settle: 5ms
  parts:
    - name: slm
      type: slm
      display: `+display+`
      n: 4
      macro_pixel: 6
      two_pi_gray: 256
    - name: cam
      type: camera
      backend: {type: genicam, device: 127.0.0.1, width: 64, height: 64, frame_timeout: 1s}
      exposure: 10ms
      measure: regions
      regions: [{name: left, roi: [0, 0, 32, 64]}, {name: right, roi: [32, 0, 32, 64]}]
objective: {kind: identity, outputs: [cam/right], direction: max}
init: {points: 10}
top_k: 3
local: {samples: 1, sigma: 0.02}
surrogate: {hidden: [16, 16], initial_epochs: 5, steps: 2, k: 3, batch: 16}
safety:
  max_step: 6.2832
  timeout: 10s
  check_outputs: trip
  output_ranges: {cam/left: {lo: 0, hi: 600000}, cam/right: {lo: 0, hi: 600000}}
journal: {sync: query}
`)
}

// probe --cameras lists the fake camera.
func TestProbeCamerasListsTheFakeCamera(t *testing.T) {
	fake := genicamtest.Start(t, "PROBE")
	out, _, err := run(t, "probe", "--cameras")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 2 || strings.Join(strings.Fields(lines[0]), " ") != "ID VENDOR MODEL SERIAL ADDRESS PROTOCOL" {
		t.Fatalf("probe --cameras:\n%s", out)
	}
	want := strings.Join([]string{fake.ID(), "Aravis", "Fake", "PROBE", "127.0.0.1", "GigEVision"}, " ")
	found := false
	for _, l := range lines[1:] {
		found = found || strings.Join(strings.Fields(l), " ") == want
	}
	if !found {
		t.Errorf("probe --cameras:\n%s\nwant a line %q", out, want)
	}
}

// A short run on the fake camera finishes with every frame from it and
// the SLM blank.
func TestGenICamBenchRun(t *testing.T) {
	genicamtest.Start(t, "RUN")
	fb := filepath.Join(t.TempDir(), "slm.fb")
	cfg := genicamBench(t, fb, 2)
	if out, _, err := run(t, "config", "check", cfg); err != nil {
		t.Fatalf("config check: %v\n%s", err, out)
	}
	dir := filepath.Join(t.TempDir(), "run")
	stdout, stderr, err := run(t, "run", cfg, "--out", dir, "-q")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	st := statuses(t, dir)
	if st[journal.StatusDone] < 10 || len(st) != 1 {
		t.Errorf("journal statuses %v\n%s", st, stdout)
	}
	if !blank(t, fb) {
		t.Error("the SLM was not blanked at the end of the run")
	}
}

// The camera killed mid-run: the run ends with an error naming the camera
// and the GenICam feature, the SLM goes blank, every query answered is in
// the journal and the failed one marked; with the camera back, the run
// resumes and finishes.
func TestGenICamBenchCameraKilled(t *testing.T) {
	fake := genicamtest.Start(t, "FAULT")
	fb := filepath.Join(t.TempDir(), "slm.fb")
	cfg := genicamBench(t, fb, 6)
	dir := filepath.Join(t.TempDir(), "run")
	killed := make(chan bool, 1)
	go func() {
		deadline := time.Now().Add(60 * time.Second)
		for time.Now().Before(deadline) {
			if j, err := journal.OpenReadOnly(dir); err == nil {
				s, err := j.Summary(t.Context())
				j.Close()
				if err == nil && s.Queries >= 12 {
					b, _ := os.ReadFile(fb)
					shown := bytes.Count(b, []byte{0}) != len(b)
					fake.Kill()
					killed <- shown
					return
				}
			}
			time.Sleep(10 * time.Millisecond)
		}
		killed <- false
	}()
	_, stderr, err := run(t, "run", cfg, "--out", dir, "-q")
	shown := <-killed
	if err == nil {
		t.Fatalf("the run survived the camera's death\n%s", stderr)
	}
	if !shown {
		t.Error("the SLM showed nothing when the camera was killed (or the run never got there)")
	}
	// Killed before the trigger of the query in flight (TriggerSoftware
	// unanswered), after it (no frame, and Width unanswered), or while the
	// frame was being sent (packets missing).
	msg := err.Error()
	for _, want := range []string{"measure cam", "genicam(127.0.0.1)"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not name %q: %v", want, err)
		}
	}
	if !strings.Contains(msg, "execute TriggerSoftware") && !strings.Contains(msg, "read Width") && !strings.Contains(msg, "packets missing") {
		t.Errorf("error says neither which GenICam feature went unanswered nor that the frame broke: %v", err)
	}
	if !blank(t, fb) {
		t.Error("the SLM was not blanked after the camera failed")
	}
	st := statuses(t, dir)
	if st[journal.StatusDone] < 11 || st[journal.StatusStarted] != 0 || st[journal.StatusFailed] != 1 {
		t.Errorf("journal statuses %v: want the queries answered done and the one that failed marked", st)
	}
	rows := journalRows(t, dir)

	fake.Restart(t)
	if _, stderr, err := run(t, "resume", dir, "-q"); err != nil {
		t.Fatalf("resume with the camera back: %v\n%s", err, stderr)
	}
	after := journalRows(t, dir)
	if len(after) <= len(rows) {
		t.Errorf("resume made no query: %d rows before, %d after", len(rows), len(after))
	}
	for i, r := range rows {
		if r.status == journal.StatusDone && (after[i].key != r.key || !sameFloats(after[i].y, r.y)) {
			t.Errorf("query %s changed on resume", r.key)
		}
	}
	if !blank(t, fb) {
		t.Error("the SLM was not blanked at the end of the resumed run")
	}
}

// The bench as a lab PC has it: the SLM a full-screen window on an X
// monitor (Xvfb's only one, so allow_primary), the camera Aravis' fake
// GigE Vision camera. The run finishes with every query measured by the
// camera, the window showed the patterns on the monitor while it ran, and
// the SLM was blanked before the window closed.
func TestX11GenICamBenchRun(t *testing.T) {
	genicamtest.Start(t, "X11RUN")
	x := x11test.Start(t, 640, 480)
	cfg := genicamBenchOn(t, `{type: x11, x11_display: "`+x.Display+`", allow_primary: true}`, 3)
	if out, _, err := run(t, "config", "check", cfg); err != nil {
		t.Fatalf("config check: %v\n%s", err, out)
	}
	dir := filepath.Join(t.TempDir(), "run")
	screen := image.Rect(0, 0, 640, 480)
	done := make(chan struct{})
	sawPattern := make(chan bool, 1)
	go func() {
		saw := false
		for {
			select {
			case <-done:
				sawPattern <- saw
				return
			default:
			}
			if g, err := x.Gray(screen); err == nil && bytes.Count(g, []byte{0}) != len(g) {
				saw = true
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	stdout, stderr, err := run(t, "run", cfg, "--out", dir, "-q")
	close(done)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	if !<-sawPattern {
		t.Error("the SLM's monitor never showed a pattern during the run")
	}
	st := statuses(t, dir)
	if st[journal.StatusDone] < 13 || len(st) != 1 {
		t.Errorf("journal statuses %v\n%s", st, stdout)
	}
	j, err := journal.OpenReadOnly(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	events, err := j.Events(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	safe := 0
	for _, e := range events {
		if e.Kind == "safestate" {
			safe++
		}
	}
	if safe == 0 {
		t.Error("the journal records no safe state at the end of the run")
	}
	if g, err := x.Gray(screen); err != nil || bytes.Count(g, []byte{0}) != len(g) {
		t.Errorf("the monitor is not dark after the run (%v)", err)
	}
}
