package rig

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/insitu-lab/insitu"
	"github.com/insitu-lab/insitu/instruments/camera"
)

// ramp8 is a frame source for memory cameras: pixel i is 10·i.
const ramp8 = "rig-test-ramp"

func init() {
	RegisterFrameSource(ramp8, func(_ map[string]Part, _, _ int) (camera.FrameFunc, error) {
		return func(_ context.Context, dst []float64) error {
			for i := range dst {
				dst[i] = float64(10 * i)
			}
			return nil
		}, nil
	})
}

// saturated_output adds the count of ROI pixels at the camera's full scale
// as an output, described as built, and the camera part reports when it
// measured to the query's trace under its name.
func TestCameraSaturatedOutputAndMarks(t *testing.T) {
	src := `
kind: rig
name: sat
parts:
  - name: slm
    type: slm
    display: {type: memory, width: 4, height: 4}
    n: 2
  - name: cam
    type: camera
    backend: {type: memory, source: ` + ramp8 + `, width: 4, height: 3, saturation: 75}
    roi: [1, 0, 3, 3]
    measure: regions
    regions: [{name: top, roi: [0, 0, 3, 1]}]
    saturated_output: true
`
	r := build(t, src)
	if want := []string{"cam/top", "cam/" + SaturatedOutput}; !slices.Equal(r.Spec().Out, want) {
		t.Fatalf("outputs %v, want %v", r.Spec().Out, want)
	}
	var tr insitu.QueryTrace
	before := time.Now()
	y, err := r.Query(insitu.WithQueryTrace(context.Background(), &tr), []float64{0, 0, 0, 0})
	if err != nil {
		t.Fatal(err)
	}
	// Frame 10·i clipped at 75; ROI columns 1..3 of 3 rows: pixels 1,2,3,
	// 5,6,7, 9,10,11 → 10, 20, 30, 50, 60, 70, 75, 75, 75: three at 75.
	if y[0] != 60 || y[1] != 3 {
		t.Errorf("outputs %v, want [60 3]", y)
	}
	var marks []insitu.Mark
	for _, m := range tr.Marks() {
		if m.Part == "cam" {
			marks = append(marks, m)
		}
	}
	// A memory camera's exposure is the instant it renders the frame.
	if len(marks) != 3 || marks[0].Event != insitu.MarkExposureStart || marks[1].Event != insitu.MarkExposureEnd ||
		marks[2].Event != insitu.MarkMeasured || marks[0].At.Before(before) || !marks[1].At.Equal(marks[0].At) || marks[2].At.Before(marks[1].At) {
		t.Errorf("camera marks %+v, want exposure_start = exposure_end, then measured", marks)
	}

	// Described as built, and as the twin builds it.
	p := blackbox(t, src)
	spec, err := insitu.Describe(context.Background(), p)
	if err != nil || !slices.Equal(spec.Out, r.Spec().Out) {
		t.Errorf("described outputs %v, %v", spec.Out, err)
	}
	tw, err := NewTwin(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	defer tw.Close()
	if !slices.Equal(tw.Spec().Out, r.Spec().Out) {
		t.Errorf("twin outputs %v", tw.Spec().Out)
	}

	// Without a full scale there is nothing to count.
	bad := strings.Replace(src, ", saturation: 75", "", 1)
	if _, err := insitu.Describe(context.Background(), blackbox(t, bad)); err == nil || !strings.Contains(err.Error(), "saturated_output") {
		t.Errorf("saturated_output without a full scale: %v", err)
	}
}

// genicamRig is a bench with a GenICam camera (device and extra backend
// keys substituted).
func genicamRig(device, extra string) string {
	return `
kind: rig
name: gc
settle: 20ms
parts:
  - name: slm
    type: slm
    display: {type: memory, width: 16, height: 16}
    n: 2
    macro_pixel: 8
  - name: cam
    type: camera
    backend: {type: genicam, device: "` + device + `", width: 64, height: 48, pixel_format: Mono8` + extra + `}
    exposure: 10ms
    roi: [8, 8, 16, 16]
    measure: image
    saturated_output: true
`
}

// blackbox reads a blackbox section written in YAML, as from test.yaml.
func blackbox(t testing.TB, src string) insitu.Params {
	t.Helper()
	var v map[string]any
	if err := yaml.Unmarshal([]byte(src), &v); err != nil {
		t.Fatal(err)
	}
	kind, _ := v["kind"].(string)
	delete(v, "kind")
	return insitu.Params{Kind: kind, Values: v, File: "test.yaml", Prefix: "blackbox"}
}

// A GenICam camera's keys are checked without the camera, in any build;
// keys of other backends are refused. The twin of a GenICam bench needs no
// camera and no Aravis: the dry run works in the pure build.
func TestGenICamConfigChecks(t *testing.T) {
	for _, c := range []struct{ extra, want string }{
		{", format: y16", "format not a key of this backend type"},
		{", pixel_format: Mono12p", `pixel_format "Mono12p"`},
		{", trigger: line1", `trigger "line1"`},
		{", binning: [1, 2, 3]", "binning"},
		{", frame_timeout: -1s", "frame_timeout"},
	} {
		src := strings.Replace(genicamRig("127.0.0.1", c.extra), "parts:", "twin: true\nparts:", 1)
		src = strings.Replace(src, ", pixel_format: Mono8"+c.extra, c.extra, 1)
		_, err := insitu.Describe(context.Background(), blackbox(t, src))
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "test.yaml: blackbox.parts[1].backend") {
			t.Errorf("%s: %v, want an error naming the file, the key and %q", c.extra, err, c.want)
		}
	}
	// Image mode without a roi or a camera-side size: the outputs are
	// pixels only the camera can count.
	src := strings.Replace(genicamRig("127.0.0.1", ""), "width: 64, height: 48, ", "", 1)
	src = strings.Replace(src, "    roi: [8, 8, 16, 16]\n", "", 1)
	src = strings.Replace(src, "parts:", "twin: true\nparts:", 1)
	if _, err := insitu.Describe(context.Background(), blackbox(t, src)); !errors.Is(err, insitu.ErrNeedsDevice) || !strings.Contains(err.Error(), "genicam(127.0.0.1) only tells when it is opened") {
		t.Errorf("image mode of a camera of unknown size: %v", err)
	}
	src = strings.Replace(genicamRig("127.0.0.1", ", pixel_format: Mono12"), ", pixel_format: Mono8", "", 1)
	tw, err := NewTwin(context.Background(), blackbox(t, src))
	if err != nil {
		t.Fatal(err)
	}
	defer tw.Close()
	if n := len(tw.Spec().Out); n != 16*16+1 {
		t.Errorf("twin outputs %d, want the 16×16 ROI's pixels and saturated", n)
	}
	rep, _ := tw.TwinReport()
	if notes := strings.Join(rep.Parts[1].Notes, "; "); !strings.Contains(notes, "genicam(127.0.0.1)") || !strings.Contains(notes, "clipped at 4095 ADU") {
		t.Errorf("twin notes %q: want the camera named and Mono12's full scale", notes)
	}
}
