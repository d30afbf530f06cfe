package cameraslm_test

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/insitu-lab/insitu/instruments/cameraslm"
)

// The settle time recovered on the twin panel (a first-order liquid
// crystal of time constant 12 ms, no dead time), in real time: the rig
// waits each delay, the twin reads its panel when the camera exposes, and
// the delays are read from the query marks. The truth: 5 % after
// τ·ln 20 = 35.9 ms, 1 % after τ·ln 100 = 55.3 ms.
func TestSettleOnTheTwin(t *testing.T) {
	if testing.Short() {
		t.Skip("waits about 4 s of settles")
	}
	const tau = 12 * time.Millisecond
	b := newRigBench(t, fourierRig(32, 1, 64, 48, "{read_noise: 1, background: 5}", ", response: 12ms"))
	res, err := cameraslm.CalibrateSettle(context.Background(), b, cameraslm.SettleOptions{
		Grid: cameraslm.Grid{N: 32}, MaxDelay: 100 * time.Millisecond, MinDelay: time.Millisecond, Delays: 12,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []struct {
		name string
		r    cameraslm.Response
	}{{"rise", res.Rise}, {"fall", res.Fall}} {
		t.Logf("%s: τ %v, dead time %v, 5 %% %v, 1 %% %v, fit RMS %.4f", r.name, r.r.Tau, r.r.DeadTime, r.r.Within5, r.r.Within1, r.r.RMS)
		want5, want1 := tau.Seconds()*math.Log(20), tau.Seconds()*math.Log(100)
		if e := math.Abs(r.r.Within5.Seconds()-want5) / want5; e > 0.1 {
			t.Errorf("%s: 5 %% time %v, the twin's %.1f ms: %.0f %% off", r.name, r.r.Within5, want5*1e3, 100*e)
		}
		if e := math.Abs(r.r.Within1.Seconds()-want1) / want1; e > 0.1 {
			t.Errorf("%s: 1 %% time %v, the twin's %.1f ms: %.0f %% off", r.name, r.r.Within1, want1*1e3, 100*e)
		}
	}
	measured := 0
	for _, s := range res.Samples {
		if s.Measured {
			measured++
		}
	}
	if measured != len(res.Samples) {
		t.Errorf("%d of %d delays read from the marks", measured, len(res.Samples))
	}
	t.Logf("recommended settle %v", res.Settle)
}
