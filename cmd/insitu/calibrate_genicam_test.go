//go:build aravis && cgo

package main

import (
	"context"
	"image"
	"path/filepath"
	"strings"
	"testing"

	"github.com/insitu-lab/insitu"
	"github.com/insitu-lab/insitu/drivers/x11/x11test"
	"github.com/insitu-lab/insitu/instruments/camera/genicamtest"
	"github.com/insitu-lab/insitu/loop/journal"
)

// insitu calibrate fourier end to end on an SLM window on Xvfb and Aravis'
// fake GigE Vision camera: the path of a bench (the X round trip, the
// camera's trigger and clock, the journal), not its numbers, since the
// fake camera does not look at the SLM.
func TestCalibrateFourierX11GenICam(t *testing.T) {
	genicamtest.Start(t, "CAL")
	x := x11test.Start(t, 2048, 1024)
	x.AddMonitor(t, "DESK", image.Rect(0, 0, 1024, 1024), true)
	x.AddMonitor(t, "SLM-1", slmMonitor, false)
	cfg := writeFile(t, "x11-genicam.yaml", strings.ReplaceAll(`
name: x11-genicam
method: gradpie
seed: 1
iterations: 1
blackbox:
  kind: rig
  name: x11-genicam
  parts:
    - name: slm
      type: slm
      display: {type: x11, x11_display: "DISPLAY", output: SLM-1}
      n: 16
      macro_pixel: 8
      two_pi_gray: 218
      settle: 5ms
    - name: cam
      type: camera
      backend: {type: genicam, device: 127.0.0.1, width: 64, height: 64, frame_timeout: 1s}
      exposure: 5ms
      measure: sum
objective: {kind: identity, outputs: [cam/sum], direction: max}
safety:
  max_step: 6.2832
  timeout: 10s
journal: {sync: query}
`, "DISPLAY", x.Display))
	dir := filepath.Join(t.TempDir(), "cal")
	_, stderr, err := run(t, "calibrate", "fourier", cfg, "--out", dir, "-q")
	// The fake camera's picture does not change with the pattern: the
	// spots are missing, saturated or cut (a clear error), or a map is fitted to
	// whatever it shows.
	if err != nil && !strings.Contains(err.Error(), "fourier calibration:") {
		t.Fatalf("%v\n%s", err, stderr)
	}
	t.Logf("calibrate fourier on Xvfb and the fake camera: %v", err)
	j, jerr := journal.OpenReadOnly(dir)
	if jerr != nil {
		t.Fatal(jerr)
	}
	defer j.Close()
	qs, qerr := j.Queries(context.Background())
	if qerr != nil {
		t.Fatal(qerr)
	}
	if len(qs) != 17 {
		t.Errorf("%d queries journaled, want the 17 patterns", len(qs))
	}
	// Each pattern shown through the X server (its round trip the shown
	// mark), settled, then exposed on the camera's own clock.
	for _, q := range qs {
		at := map[string]int64{}
		for _, m := range q.Marks {
			at[m.Part+"/"+m.Event] = m.At.UnixNano()
		}
		for _, k := range []string{"slm/" + insitu.MarkShown, "slm/" + insitu.MarkSettled, "cam/" + insitu.MarkExposureStart, "cam/" + insitu.MarkExposureEnd} {
			if at[k] == 0 {
				t.Fatalf("query %s: no %s mark in %+v", q.Key, k, q.Marks)
			}
		}
		if at["cam/"+insitu.MarkExposureStart] < at["slm/"+insitu.MarkSettled] {
			t.Errorf("query %s: the exposure began %v before the pattern settled", q.Key, at["slm/"+insitu.MarkSettled]-at["cam/"+insitu.MarkExposureStart])
		}
	}
}
