package cameraslm_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/insitu-lab/insitu"
	"github.com/insitu-lab/insitu/instruments/cameraslm"
	"github.com/insitu-lab/insitu/instruments/rig"
	_ "github.com/insitu-lab/insitu/simulators/bench" // the fourier and owms scenes
)

// rigBench shoots on a rig whose inputs are the SLM part's and whose only
// sensor is a camera measuring its image (a w×h window at x0, y0): the
// calibrations' bench without the guard and the journal.
type rigBench struct {
	r       *rig.Rig
	w, h    int
	x0, y0  int
	shots   int
	noMarks bool // report requested delays, as for queries replayed from a journal
}

func newRigBench(t testing.TB, src string) *rigBench {
	t.Helper()
	var v map[string]any
	if err := yaml.Unmarshal([]byte(src), &v); err != nil {
		t.Fatal(err)
	}
	delete(v, "kind")
	b, err := insitu.New(context.Background(), insitu.Params{Kind: "rig", Values: v, File: "test.yaml", Prefix: "blackbox"})
	if err != nil {
		t.Fatal(err)
	}
	r := b.(*rig.Rig)
	t.Cleanup(func() { r.Close() })
	rb := &rigBench{r: r}
	for _, p := range v["parts"].([]any) {
		part := p.(map[string]any)
		if part["type"] != "camera" {
			continue
		}
		bk := part["backend"].(map[string]any)
		rb.w, rb.h = bk["width"].(int), bk["height"].(int)
		if roi, ok := part["roi"].([]any); ok {
			rb.x0, rb.y0, rb.w, rb.h = roi[0].(int), roi[1].(int), roi[2].(int), roi[3].(int)
		}
	}
	return rb
}

func (b *rigBench) Shoot(ctx context.Context, stage string, shots []cameraslm.Shot) ([]cameraslm.Frame, error) {
	frames := make([]cameraslm.Frame, len(shots))
	for i, s := range shots {
		tr := &insitu.QueryTrace{}
		qctx := insitu.WithQueryTrace(ctx, tr)
		if s.Settle != cameraslm.RigSettle {
			qctx = rig.WithSettle(qctx, s.Settle)
		}
		y, err := b.r.Query(qctx, s.Phase)
		if err != nil {
			return nil, fmt.Errorf("%s shot %d: %w", stage, i, err)
		}
		b.shots++
		f := cameraslm.Frame{Image: cameraslm.Image{W: b.w, H: b.h, X0: b.x0, Y0: b.y0, Pix: y}, Delay: max(s.Settle, 0)}
		if !b.noMarks {
			f.Delay, f.Exposure, f.Measured = cameraslm.Delay(tr.Marks(), "slm", "cam")
		}
		frames[i] = f
	}
	return frames, nil
}

// fourierRig is a rig of an n×n SLM (macro-pixels mp) on a memory display
// and a w×h camera in its Fourier plane with the given scene settings.
func fourierRig(n, mp, w, h int, scene string, extra ...string) string {
	// extra: more display keys, more camera backend keys, more slm part
	// keys (a line each).
	camExtra, slmExtra, partExtra := "", "", ""
	if len(extra) > 0 {
		slmExtra = extra[0]
	}
	if len(extra) > 1 {
		camExtra = extra[1]
	}
	if len(extra) > 2 {
		partExtra = "\n    " + extra[2]
	}
	side := n * max(mp, 1)
	return fmt.Sprintf(`
kind: rig
name: fourier-bench
parts:
  - name: slm
    type: slm
    display: {type: memory, width: %d, height: %d%s}
    n: %d
    macro_pixel: %d%s
  - name: cam
    type: camera
    backend: {type: memory, source: fourier, width: %d, height: %d, scene: %s%s}
    measure: image
`, side, side, slmExtra, n, mp, partExtra, w, h, scene, camExtra)
}

var _ = time.Second

func paramsOf(t testing.TB, src string) insitu.Params {
	t.Helper()
	var v map[string]any
	if err := yaml.Unmarshal([]byte(src), &v); err != nil {
		t.Fatal(err)
	}
	return insitu.Params{Values: v, File: "test.yaml", Prefix: "scene"}
}
