package main

import (
	"context"
	"encoding/json"
	"math"
	"math/cmplx"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/insitu-lab/insitu"
	"github.com/insitu-lab/insitu/instruments/cameraslm"
	"github.com/insitu-lab/insitu/instruments/slm"
	"github.com/insitu-lab/insitu/loop/journal"
	"github.com/insitu-lab/insitu/safety"
	"github.com/insitu-lab/insitu/simulators/bench"
	"github.com/insitu-lab/insitu/simulators/optics"
)

// mapError is the RMS distance between two maps of k to camera pixels
// over a 9×9 grid of k spanning ±kmax.
func mapError(a, b cameraslm.Map, kmax float64) float64 {
	var ss float64
	for i := range 9 {
		for j := range 9 {
			kx, ky := kmax*float64(i-4)/4, kmax*float64(j-4)/4
			x1, y1 := a.Apply(kx, ky)
			x2, y2 := b.Apply(kx, ky)
			ss += (x1-x2)*(x1-x2) + (y1-y2)*(y1-y2)
		}
	}
	return math.Sqrt(ss / 81)
}

func loadFourierFile(t *testing.T, path string) cameraslm.FourierFile {
	t.Helper()
	f, err := cameraslm.LoadFourier(path)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// owmsTruth is the map of configs/bench-slm-camera-twin.yaml's twin: the
// camera 2 cm behind the SLM, where a grating of k cycles per 10 µm pixel
// moves the beam by z·λ·k/p² = 140·k pixels, the axis at the centre of the
// 60×60 window (shifted by the window's origin).
func owmsTruth(x0, y0 float64) cameraslm.Map {
	return cameraslm.Map{A: [2][2]float64{{140, 0}, {0, 140}}, B: [2]float64{x0 + 29.5, y0 + 29.5}}
}

// insitu calibrate fourier on the SLM + camera bench twin: a journaled run
// that recovers the twin's map and writes the calibration file and plot.
func TestCalibrateFourierBenchTwin(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cal")
	stdout, stderr, err := run(t, "calibrate", "fourier", "../../configs/bench-slm-camera-twin.yaml", "--out", dir, "-q")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	for _, want := range []string{"Fourier map", "residuals", "fourier.yaml"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("summary lacks %q:\n%s", want, stdout)
		}
	}
	f := loadFourierFile(t, filepath.Join(dir, "fourier.yaml"))
	e := mapError(f.Map, owmsTruth(0, 0), 1.0/24)
	t.Logf("map error %.3f px RMS from the twin's geometry; residual RMS %.3f px", e, f.RMS)
	if e > 0.3 {
		t.Errorf("recovered map %.3f px RMS from the twin's", e)
	}
	if f.SLM.N != 10 || f.SLM.MacroPixel != 6 || f.Camera.ROI != [4]int{0, 0, 60, 60} || len(f.Points) != 17 || len(f.ConfigHash) != 64 || f.Devices["slm"] == "" {
		t.Errorf("calibration file %+v", f)
	}
	if _, err := os.Stat(filepath.Join(dir, "fourier.png")); err != nil {
		t.Error(err)
	}
	if st := statuses(t, dir); st[journal.StatusDone] != 17 || len(st) != 1 {
		t.Errorf("journal statuses %v", st)
	}
	if s := journalSummary(t, dir); s.Status != journal.RunFinished || s.Method != "calibrate-fourier" || s.Stop != "fourier calibration fitted" {
		t.Errorf("summary %+v", s)
	}
	// Every query journaled with its marks: the SLM part's frame shown and
	// settled, the camera part's exposure, inside the loop's start and end.
	j, err := journal.OpenReadOnly(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	qs, err := j.Queries(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// Described as what it measured: the SLM's 100 controls and the
	// camera's 60×60 image.
	d, err := j.Describe(context.Background())
	if err != nil || len(d.Inputs) != 100 || len(d.Outputs) != 3600 || d.Outputs[0].Name != "cam/px_0_0" || d.Objective.Kind != "sum" {
		t.Errorf("description: %d inputs, %d outputs, objective %+v, %v", len(d.Inputs), len(d.Outputs), d.Objective, err)
	}
	for _, q := range qs {
		var got []string
		for _, m := range q.Marks {
			got = append(got, strings.TrimPrefix(m.Part+"/"+m.Event, "/"))
		}
		if want := "start slm/written slm/shown slm/settled cam/exposure_start cam/exposure_end cam/measured end"; strings.Join(got, " ") != want {
			t.Fatalf("query %s: marks %v, want %s", q.Key, got, want)
		}
	}
}

// The hardware bench's config calibrated with --dry-run: its twins (the
// OWMS scene in the GenICam camera's window), no device opened, and the
// bill.
func TestCalibrateDryRunBill(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cal")
	stdout, stderr, err := run(t, "calibrate", "fourier", "../../configs/bench-slm-camera.yaml", "--dry-run", "--out", dir, "-q")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	dir += dryRunSuffix
	f := loadFourierFile(t, filepath.Join(dir, "fourier.yaml"))
	e := mapError(f.Map, owmsTruth(290, 210), 1.0/24)
	t.Logf("map error %.3f px RMS from the twin's geometry", e)
	if e > 0.3 {
		t.Errorf("recovered map %.3f px RMS from the twin's", e)
	}
	var b Bill
	data, err := os.ReadFile(filepath.Join(dir, BillFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &b); err != nil {
		t.Fatal(err)
	}
	// 17 patterns, each 300 ms of settle and 4 exposures of 5 ms.
	if b.Queries.Device != 17 || b.SLMFrames != 17 || b.Method != "calibrate-fourier" || math.Abs(b.Time.Settle-17*0.3) > 1e-9 || !strings.Contains(stdout, "hardware bill") {
		t.Errorf("bill %+v", b)
	}
}

// A calibration killed midway resumes into the run an uninterrupted one
// makes, query for query, and the same map.
func TestCalibrateKillAndResume(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	cfg := "../../configs/bench-slm-camera-twin.yaml"
	ref := filepath.Join(t.TempDir(), "ref")
	if _, stderr, err := run(t, "calibrate", "fourier", cfg, "--out", ref, "-q"); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	dir := filepath.Join(t.TempDir(), "killed")
	cmd, _ := child(t, "calibrate", "fourier", cfg, "--out", dir, "-q", "--set", "safety.rate=20")
	waitQueries(t, dir, 6, 30*time.Second)
	cmd.Process.Kill()
	cmd.Wait()
	if n := len(journalRows(t, dir)); n >= 17 {
		t.Fatalf("the run finished (%d queries) before it was killed", n)
	}
	stdout, stderr, err := run(t, "resume", dir, "-q")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	if !strings.Contains(stdout, "Fourier map") {
		t.Errorf("resume did not finish the calibration:\n%s", stdout)
	}
	sameRun(t, dir, ref)
	a, b := loadFourierFile(t, filepath.Join(dir, "fourier.yaml")), loadFourierFile(t, filepath.Join(ref, "fourier.yaml"))
	if a.Map != b.Map {
		t.Errorf("resumed map %+v, uninterrupted %+v", a.Map, b.Map)
	}
}

// fourierTwin is the scene of configs/bench-slm-fourier-twin.yaml.
func fourierTwin(t *testing.T) bench.FourierConfig {
	t.Helper()
	data, err := os.ReadFile("../../configs/bench-slm-fourier-twin.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		BlackBox struct {
			Parts []map[string]any `yaml:"parts"`
		} `yaml:"blackbox"`
	}
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	scene := cfg.BlackBox.Parts[1]["backend"].(map[string]any)["scene"].(map[string]any)
	c, err := bench.DecodeFourier(insitu.Params{Values: scene, File: "bench-slm-fourier-twin.yaml", Prefix: "scene"})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// The three calibrations on the holography bench twin, as dry runs (the
// liquid crystal settles on the dry run's clock, nothing waits): the
// settle time within 10 % of the twin's 15 ms panel, the Fourier map
// within 0.3 px of the committed calibration the config's spots use, the
// wavefront's correction correlated with the twin's aberration.
func TestCalibrateHolographyTwin(t *testing.T) {
	cfg := "../../configs/bench-slm-fourier-twin.yaml"
	tmp := t.TempDir()

	s := filepath.Join(tmp, "settle")
	if _, stderr, err := run(t, "calibrate", "settle", cfg, "--dry-run", "--out", s, "-q"); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	var sf settleFile
	data, err := os.ReadFile(filepath.Join(s+dryRunSuffix, "settle.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, &sf); err != nil {
		t.Fatal(err)
	}
	const tau = 15 * time.Millisecond
	for _, r := range []cameraslm.Response{sf.Rise, sf.Fall} {
		t.Logf("settle: τ %v, 5 %% %v, 1 %% %v", r.Tau, r.Within5, r.Within1)
		for _, c := range []struct{ got, want float64 }{{r.Within5.Seconds(), tau.Seconds() * math.Log(20)}, {r.Within1.Seconds(), tau.Seconds() * math.Log(100)}} {
			if math.Abs(c.got-c.want) > 0.1*c.want {
				t.Errorf("settle time %.1f ms, the twin's %.1f ms", c.got*1e3, c.want*1e3)
			}
		}
	}

	f := filepath.Join(tmp, "fourier")
	if _, stderr, err := run(t, "calibrate", "fourier", cfg, "--dry-run", "--out", f, "-q"); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	fourier := filepath.Join(f+dryRunSuffix, "fourier.yaml")
	got, committed := loadFourierFile(t, fourier), loadFourierFile(t, "../../configs/calibrations/bench-slm-fourier-twin.yaml")
	kmax := 1.0 / 12
	e := mapError(got.Map, committed.Map, kmax)
	A, b := fourierTwin(t).Map(128, 96)
	t.Logf("Fourier: %.3f px RMS from the committed calibration, %.3f px from the geometry without the aberration's tilt", e, mapError(got.Map, cameraslm.Map{A: A, B: b}, kmax))
	if e > 0.3 {
		t.Errorf("the twin's map is %.3f px from configs/calibrations/bench-slm-fourier-twin.yaml: make it again with insitu calibrate fourier", e)
	}

	w := filepath.Join(tmp, "wavefront")
	// One commit per stage rather than per query: 504 fsyncs are most of
	// the time of a dry run.
	stdout, stderr, err := run(t, "calibrate", "wavefront", cfg, "--fourier", fourier, "--dry-run", "--out", w, "-q", "--set", "journal.sync=iteration")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	var wf wavefrontSummary
	data, err = os.ReadFile(filepath.Join(w+dryRunSuffix, "wavefront.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, &wf); err != nil {
		t.Fatal(err)
	}
	rho := wavefrontCorrelation(t, wf, fourierTwin(t))
	t.Logf("wavefront: correlation %.3f with the twin's aberration\n%s", rho, stdout)
	if rho < 0.9 {
		t.Errorf("the correction correlates %.3f with the twin's aberration, want ≥ 0.9", rho)
	}
	if _, _, _, err := slm.LoadCorrection(filepath.Join(w+dryRunSuffix, "wavefront-correction.png"), 0); err != nil {
		t.Error(err)
	}
}

// wavefrontCorrelation is the Pearson correlation of a wavefront
// calibration's per-superpixel correction with the truth −W at the
// superpixel centres (lit ones), after the plane of their difference
// (piston, tilt) is removed and each phase taken on the branch nearest the
// truth; both are then detrended.
func wavefrontCorrelation(t *testing.T, wf wavefrontSummary, scene bench.FourierConfig) float64 {
	t.Helper()
	const side = 64 // the pattern: 16 controls of 4 pixels
	truth := optics.Aberration(scene.Aberration, side, side/2)
	n := 0
	for _, s := range wf.Superpixels {
		n = max(n, s.Column+1)
	}
	sp := side / n
	d, tr := make([]float64, n*n), make([]float64, n*n)
	lit := make([]bool, n*n)
	for _, s := range wf.Superpixels {
		i := s.Row*n + s.Column
		x, y := s.Column*sp+sp/2, s.Row*sp+sp/2
		tr[i] = -truth[y*side+x]
		d[i], lit[i] = s.Phase-tr[i], s.Lit
	}
	var zx, zy, z0 complex128
	for i := range d {
		c, r := i%n, i/n
		if c+1 < n && lit[i] && lit[i+1] {
			zx += cmplx.Rect(1, d[i+1]-d[i])
		}
		if r+1 < n && lit[i] && lit[i+n] {
			zy += cmplx.Rect(1, d[i+n]-d[i])
		}
	}
	tx, ty := cmplx.Phase(zx), cmplx.Phase(zy)
	for i := range d {
		d[i] -= tx*float64(i%n) + ty*float64(i/n)
		if lit[i] {
			z0 += cmplx.Rect(1, d[i])
		}
	}
	var cs, ts, xs, ys []float64
	for i := range d {
		if lit[i] {
			cs = append(cs, tr[i]+math.Remainder(d[i]-cmplx.Phase(z0), 2*math.Pi))
			ts, xs, ys = append(ts, tr[i]), append(xs, float64(i%n)), append(ys, float64(i/n))
		}
	}
	detrendPlane(cs, xs, ys)
	detrendPlane(ts, xs, ys)
	var sc, st, sct float64
	for i := range cs {
		sc, st, sct = sc+cs[i]*cs[i], st+ts[i]*ts[i], sct+cs[i]*ts[i]
	}
	return sct / math.Sqrt(sc*st)
}

// detrendPlane removes v's least-squares plane a + b·x + c·y.
func detrendPlane(v, x, y []float64) {
	var m [3][4]float64
	for i := range v {
		row := [3]float64{1, x[i], y[i]}
		for a := range 3 {
			for b := range 3 {
				m[a][b] += row[a] * row[b]
			}
			m[a][3] += row[a] * v[i]
		}
	}
	for p := range 3 {
		for r := range 3 {
			if r != p {
				f := m[r][p] / m[p][p]
				for c := range 4 {
					m[r][c] -= f * m[p][c]
				}
			}
		}
	}
	for i := range v {
		v[i] -= m[0][3]/m[0][0] + m[1][3]/m[1][1]*x[i] + m[2][3]/m[2][2]*y[i]
	}
}

// The holography twin's run: its camera measures the two spots placed in
// k-space through the committed calibration.
func TestRunWithKSpaceSpots(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	t.Chdir("../..") // the config names its calibration file from the repository's root
	stdout, stderr, err := run(t, "run", "configs/bench-slm-fourier-twin.yaml", "--dry-run", "--out", dir, "-q",
		"--set", "iterations=2", "--set", "init.points=10", "--set", "surrogate.initial_epochs=2")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	j, err := journal.OpenReadOnly(dir + dryRunSuffix)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	qs, err := j.Queries(t.Context())
	if err != nil || len(qs) == 0 {
		t.Fatalf("%d queries, %v\n%s", len(qs), err, stdout)
	}
	for _, q := range qs {
		// all, left, right: the spots hold some of the light, never all.
		if len(q.Y) != 3 || !(q.Y[1] > 0 && q.Y[2] > 0 && q.Y[1]+q.Y[2] < q.Y[0]) {
			t.Fatalf("query %s measured %v", q.Key, q.Y)
		}
	}
}

// A calibration names what it cannot work with.
func TestCalibrateErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"calibrate", "fourier", writeFile(t, "cnon.yaml", tinyRun)}, `blackbox.kind "cnon": a calibration needs a rig`},
		{[]string{"calibrate", "wavefront", "../../configs/bench-slm-camera-twin.yaml"}, "needs the Fourier map: give --fourier FILE"},
		{[]string{"calibrate", "fourier", "../../configs/bench-slm-camera-twin.yaml", "--set", "calibration.fourier.periods=[1.5]"}, "calibration.fourier.periods"},
		{[]string{"calibrate", "settle", "../../configs/bench-slm-camera-twin.yaml", "--set", "calibration.settle.depth=[0.5, 0.55]"}, "calibration.settle.depth"},
		{[]string{"calibrate", "fourier", "../../configs/bench-slm-camera-twin.yaml", "--set", "calibration.camera=eye"}, `calibration.camera: "eye" is not one of the rig's camera parts [cam]`},
		{[]string{"calibrate", "fourier", "../../configs/bench-analog-pnn-twin.yaml"}, "a calibration needs a slm part"},
	} {
		_, _, err := run(t, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want %q", c.args, err, c.want)
		}
	}
}

// A second wavefront calibration with the first one's correction applied
// measures what the correction leaves, which is less, and writes the sum
// of the two.
func TestWavefrontIterates(t *testing.T) {
	tmp := t.TempDir()
	cfg := "../../configs/bench-slm-fourier-twin.yaml"
	fourier := "../../configs/calibrations/bench-slm-fourier-twin.yaml"
	pass := func(cfg, out string) (float64, string) {
		t.Helper()
		if _, stderr, err := run(t, "calibrate", "wavefront", cfg, "--fourier", fourier, "--dry-run", "--out", out, "-q",
			"--set", "journal.sync=iteration", "--set", "calibration.wavefront.superpixel=4"); err != nil {
			t.Fatalf("%v\n%s", err, stderr)
		}
		var wf wavefrontSummary
		data, err := os.ReadFile(filepath.Join(out+dryRunSuffix, "wavefront.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.Unmarshal(data, &wf); err != nil {
			t.Fatal(err)
		}
		var ss float64
		n := 0
		for _, s := range wf.Superpixels {
			if s.Lit {
				ss += s.Phase * s.Phase
				n++
			}
		}
		return math.Sqrt(ss / float64(n)), filepath.Join(out+dryRunSuffix, "wavefront-correction.png")
	}
	r1, c1 := pass(cfg, filepath.Join(tmp, "first"))
	body, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	const at = "      settle: 70ms"
	if !strings.Contains(string(body), at) {
		t.Fatal("the twin's slm part has no settle line to add the correction after")
	}
	corrected := writeFile(t, "corrected.yaml", strings.Replace(string(body), at, at+"\n      correction_file: "+c1, 1))
	r2, c2 := pass(corrected, filepath.Join(tmp, "second"))
	t.Logf("phase error RMS over the lit superpixels: %.3f rad, then %.3f rad with the first correction applied", r1, r2)
	// What is left is the coarse 4×4 superpixels' sampling and the noise of
	// the weakly lit ones: 2×2 superpixels (8×8, 504 patterns a pass) go
	// from 1.54 to 0.70 rad.
	if r2 > 0.7*r1 {
		t.Errorf("with the correction applied the calibration measures %.3f rad RMS, without %.3f", r2, r1)
	}
	// The second file is the first plus what the second pass measured.
	a, _, _, err := slm.LoadCorrection(c1, 0)
	if err != nil {
		t.Fatal(err)
	}
	b, _, _, err := slm.LoadCorrection(c2, 0)
	if err != nil {
		t.Fatal(err)
	}
	var d complex128
	for i := range a {
		d += cmplx.Rect(1, b[i]-a[i])
	}
	if m := cmplx.Abs(d) / float64(len(a)); m < 0.8 {
		t.Errorf("the second correction is not the first plus a small residual: mean phasor of their difference %.2f", m)
	}
}

// A calibration keeps the run's safety section but for what names the
// camera's regions, which it measures as an image: an interlock on another
// sensor, bounds, rate and budget hold.
func TestCalibrationSafety(t *testing.T) {
	budget, rate := 100, 5.0
	sc := safety.Config{
		Budget: &budget, Rate: &rate, MaxStep: safety.All(6.3),
		OutputRanges: map[string]safety.Range{"cam/all": {Lo: 0, Hi: 1e6}, "pm/power": {Lo: 0, Hi: 1e-2}},
		Saturation:   safety.PerName{"cam/right": 4000, "pm/power": 1e-2},
		Interlocks: []safety.Interlock{
			{Name: "overexposed", Output: "cam/right", Above: new(4000.0)},
			{Name: "laser", Output: "pm/power", Below: new(1e-4), Action: safety.ActionSuspend},
		},
		ModelFidelity: &safety.FidelityConfig{MaxError: 1, Window: 5},
	}
	out, notes := calibrationSafety(sc, []string{"cam/px_0_0", "pm/power"})
	if len(out.Interlocks) != 1 || out.Interlocks[0].Name != "laser" || out.Interlocks[0].Action != safety.ActionSuspend {
		t.Errorf("interlocks %+v", out.Interlocks)
	}
	if _, ok := out.OutputRanges["pm/power"]; !ok || len(out.OutputRanges) != 1 || len(out.Saturation) != 1 || out.Saturation["pm/power"] != 1e-2 {
		t.Errorf("ranges %v, saturation %v", out.OutputRanges, out.Saturation)
	}
	if out.Budget != &budget || out.Rate != &rate || out.MaxStep[safety.AnyKey] != 6.3 || out.ModelFidelity != nil {
		t.Errorf("kept %+v", out)
	}
	if len(notes) != 3 || !strings.Contains(strings.Join(notes, "\n"), `"overexposed" on cam/right`) {
		t.Errorf("notes %q", notes)
	}
}
