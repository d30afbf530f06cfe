package main

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"periph.io/x/conn/v3/physic"

	"github.com/insitu-lab/insitu/instruments/camera"
	"github.com/insitu-lab/insitu/instruments/rig"
	"github.com/insitu-lab/insitu/instruments/slm"
	"github.com/insitu-lab/insitu/loop/journal"
	"github.com/insitu-lab/insitu/simulators/bench"
)

// The in-process bench twins: configs/bench-slm-camera-twin.yaml (memory
// SLM, memory camera rendered by the OWMS twin) and
// configs/bench-analog-pnn-twin.yaml (the real DAC/ADC drivers on the
// emulated I²C bus "twin-pnn").

var (
	probeOnce sync.Once
	probeMu   sync.Mutex
	probeSLM  *slm.Memory // the display of the last SLM the probe source saw
)

// probeSource registers the frame source "owms-probe": bench.OWMSFrames,
// remembering the SLM's memory display so the test can look at it after
// the run.
func probeSource() {
	probeOnce.Do(func() {
		rig.RegisterFrameSource("owms-probe", func(built map[string]rig.Part, w, h int) (camera.FrameFunc, error) {
			if s, ok := built["slm"].(rig.SLM); ok {
				if m, ok := s.Display().(*slm.Memory); ok {
					probeMu.Lock()
					probeSLM = m
					probeMu.Unlock()
				}
			}
			return bench.OWMSFrames(built, w, h, false)
		})
	})
}

func readConfig(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("../../configs", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func doneOnly(t *testing.T, dir string, want int) {
	t.Helper()
	if st := statuses(t, dir); st[journal.StatusDone] != want || len(st) != 1 {
		t.Errorf("journal statuses %v, want %d done", st, want)
	}
}

// TestBenchCameraTwin optimizes the share of the light in the OWMS twin's
// two spots through a macro-pixel SLM and the camera instruments; at the
// end the SLM is blank.
func TestBenchCameraTwin(t *testing.T) {
	probeSource()
	src := readConfig(t, "bench-slm-camera-twin.yaml")
	if !strings.Contains(src, "source: owms,") {
		t.Fatal("the config no longer uses frame source owms")
	}
	cfg := writeFile(t, "camera.yaml", strings.Replace(src, "source: owms,", "source: owms-probe,", 1))
	dir := filepath.Join(t.TempDir(), "run")
	start := time.Now()
	stdout, stderr, err := run(t, "run", cfg, "--out", dir, "-q", "--iterations", "5")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	t.Logf("camera twin: 100 queries in %v", time.Since(start))
	// 50 initial patterns + 5 iterations × 5 steps × (1 + 1 local sample).
	if !strings.Contains(stdout, "100 queries") || !strings.Contains(stdout, "1 safe-state calls") || !strings.Contains(stdout, "0 trips") {
		t.Errorf("summary:\n%s", stdout)
	}
	doneOnly(t, dir, 100)
	probeMu.Lock()
	m := probeSLM
	probeMu.Unlock()
	if m == nil {
		t.Fatal("the probe source never saw the SLM")
	}
	if m.Frames() < 100 {
		t.Errorf("the SLM showed %d frames, want ≥ 100", m.Frames())
	}
	for i, g := range m.Last() {
		if g != 0 {
			t.Fatalf("SLM pixel %d = %d after the run: not blanked", i, g)
		}
	}
}

// TestBenchPNNTwin optimizes the drive voltages of the analog PNN twin to
// its reachable target; the guard ramps in 0.5 V steps, and at the end the
// emulated DAC outputs are 0 V.
func TestBenchPNNTwin(t *testing.T) {
	cfg := filepath.Join("../../configs", "bench-analog-pnn-twin.yaml")
	dir := filepath.Join(t.TempDir(), "run")
	start := time.Now()
	stdout, stderr, err := run(t, "run", cfg, "--out", dir, "-q", "--iterations", "5")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	t.Logf("PNN twin: 45 queries in %v", time.Since(start))
	if !strings.Contains(stdout, "45 queries") || !strings.Contains(stdout, "1 safe-state calls") || !strings.Contains(stdout, "0 trips") {
		t.Errorf("summary:\n%s", stdout)
	}
	if strings.Contains(stdout, " 0 ramp steps") {
		t.Errorf("no ramp steps from 0 V with max_step 0.5 V:\n%s", stdout)
	}
	doneOnly(t, dir, 45)
	if out := bench.PNNBus().Outputs(); out != [4]physic.ElectricPotential{} {
		t.Errorf("DAC outputs after the run: %v, want 0 V", out)
	}
}

// TestBenchConfigsCheck: `insitu config check` builds the black box, so it
// passes on the twin configs as they are. A hardware config cannot be built
// without its devices; it is checked by decoding and validating it, and by
// `config check` with only its device paths swapped for the twins', so
// every other key of its parts is built as written.
func TestBenchConfigsCheck(t *testing.T) {
	probeSource()
	for _, name := range []string{"bench-slm-camera-twin.yaml", "bench-analog-pnn-twin.yaml"} {
		stdout, stderr, err := run(t, "config", "check", filepath.Join("../../configs", name))
		if err != nil || !strings.Contains(stdout, "valid") {
			t.Errorf("config check %s: %v\n%s%s", name, err, stdout, stderr)
		}
	}
	swaps := map[string][]string{
		"bench-slm-camera.yaml": {
			"display: {type: x11, output: HDMI-1, width: 1920, height: 1152}", "display: {type: memory, width: 60, height: 60}",
			"backend: {type: genicam, device: \"\", pixel_format: Mono12, width: 640, height: 480, trigger: software, frame_timeout: 1s}",
			"backend: {type: memory, source: owms, width: 60, height: 60, reference_exposure: 1ms}",
			"roi: [290, 210, 60, 60]", "roi: [0, 0, 60, 60]",
		},
		"bench-slm-camera-fbdev.yaml": {
			"display: {type: fbdev, path: /dev/fb1}", "display: {type: memory, width: 60, height: 60}",
			"backend: {type: v4l2, path: /dev/video0, width: 640, height: 480, format: y16, skip: 1}",
			"backend: {type: memory, source: owms, width: 60, height: 60, reference_exposure: 1ms}",
			"roi: [290, 210, 60, 60]", "roi: [0, 0, 60, 60]",
		},
		"bench-analog-pnn.yaml": {`bus: "1"`, "bus: twin-pnn"},
	}
	for name, swap := range swaps {
		file := filepath.Join("../../configs", name)
		cfg := defaultRunConfig()
		if err := loadConfig(file, nil, nil, nil, &cfg); err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if err := cfg.validate(); err != nil {
			t.Errorf("%s: %v", name, prefixFile(file, err))
		}
		src := readConfig(t, name)
		for i := 0; i < len(swap); i += 2 {
			if !strings.Contains(src, swap[i]) {
				t.Fatalf("%s no longer contains %q", name, swap[i])
			}
			src = strings.Replace(src, swap[i], swap[i+1], 1)
		}
		stdout, stderr, err := run(t, "config", "check", writeFile(t, name, src))
		if err != nil || !strings.Contains(stdout, "valid") {
			t.Errorf("config check %s with twin devices: %v\n%s", name, err, stderr)
		}
		// As written, building needs the device: the error names it.
		_, _, err = run(t, "config", "check", file)
		if err == nil {
			t.Logf("%s: config check passed (the device is present)", name)
		} else if msg := err.Error(); !strings.Contains(msg, "/dev/fb1") && !strings.Contains(msg, `"1"`) && !strings.Contains(msg, "genicam") && !strings.Contains(msg, "x11") {
			t.Errorf("config check %s without the device: %v", name, err)
		}
	}
}
