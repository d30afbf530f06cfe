//go:build aravis && cgo

package rig

import (
	"context"
	"testing"
	"time"

	"github.com/insitu-lab/insitu"
	"github.com/insitu-lab/insitu/instruments/camera/genicamtest"
)

// A rig with a GenICam camera on Aravis' fake camera: every query's frame
// is the fake camera's image, exposed after the settle that follows the
// pattern (the camera's own timestamps, reported to the query's trace).
func TestGenICamRig(t *testing.T) {
	genicamtest.Start(t, "RIG")
	r := build(t, genicamRig(genicamtest.Address, ""))
	if n := len(r.Spec().Out); n != 16*16+1 {
		t.Fatalf("%d outputs", n)
	}
	var tr insitu.QueryTrace
	for q := range 3 {
		tr.Reset()
		applied := time.Now()
		y, err := r.Query(insitu.WithQueryTrace(context.Background(), &tr), []float64{0, 1, 2, 3})
		if err != nil {
			t.Fatal(err)
		}
		// The ROI [8, 8, 16, 16] of the fake camera's (x + y + id) mod 255:
		// its pixel (0, 0) gives id mod 255, every other pixel follows.
		id := ((int(y[0])-16)%255 + 255) % 255
		for r := range 16 {
			for c := range 16 {
				if got, want := y[r*16+c], float64((16+c+r+id)%255); got != want {
					t.Fatalf("query %d: pixel (%d, %d) = %v, want %v", q, c, r, got, want)
				}
			}
		}
		// Mod 255, the image never reaches Mono8's full scale.
		if y[256] != 0 {
			t.Errorf("saturated = %v, want 0", y[256])
		}
		at := map[string]time.Time{}
		for _, m := range tr.Marks() {
			at[m.Part+" "+m.Event] = m.At
		}
		shown, settled := at["slm "+insitu.MarkShown], at["slm "+insitu.MarkSettled]
		start, end, measured := at["cam "+insitu.MarkExposureStart], at["cam "+insitu.MarkExposureEnd], at["cam "+insitu.MarkMeasured]
		if shown.IsZero() || settled.IsZero() || start.IsZero() || end.Sub(start) != 10*time.Millisecond || measured.Before(start) {
			t.Fatalf("query %d: marks %v", q, tr.Marks())
		}
		// The camera's timestamp against the host's clock: the exposure
		// began after the pattern was shown and the 20 ms settle passed.
		if start.Before(settled) || settled.Sub(shown) < 20*time.Millisecond || shown.Before(applied) {
			t.Errorf("query %d: shown %v, settled %v, exposure began %v after the query began",
				q, shown.Sub(applied), settled.Sub(applied), start.Sub(applied))
		}
	}
	if err := r.SafeState(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := insitu.Describe(context.Background(), blackbox(t, genicamRig(genicamtest.Address, ""))); err != nil {
		t.Errorf("config check with Aravis built in: %v", err)
	}
}
