package main

import (
	"context"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/insitu-lab/insitu"
	"github.com/insitu-lab/insitu/loop/journal"
)

// gapBox is a CNON twin whose reality gap is switched on after gapAfter
// queries: from then on the device answers 2·y + 1, as a bench does
// when a fibre moves or a camera saturates.
type gapBox struct {
	insitu.BlackBox
	gapAfter int64
	n        atomic.Int64
}

func (b *gapBox) Query(ctx context.Context, x []float64) ([]float64, error) {
	y, err := b.BlackBox.Query(ctx, x)
	if err != nil || b.n.Add(1) <= b.gapAfter {
		return y, err
	}
	for i := range y {
		y[i] = 2*y[i] + 1
	}
	return y, nil
}

func init() {
	insitu.Register("test-gap", func(ctx context.Context, p insitu.Params) (insitu.BlackBox, error) {
		var c struct {
			GapAfter int64 `mapstructure:"gap_after"`
		}
		if err := p.Decode(&c); err != nil {
			return nil, err
		}
		twin, err := insitu.New(ctx, insitu.Params{Kind: "cnon", Values: map[string]any{"n": 4, "horizon": 2, "steps": 20}})
		if err != nil {
			return nil, err
		}
		return &gapBox{BlackBox: twin, gapAfter: c.GapAfter}, nil
	})
}

const gapRun = `
method: gradpie
seed: 2
iterations: 12
blackbox: {kind: test-gap, gap_after: GAP}
objective: {kind: distance, target: [0.1, -0.2, 0.3, 0.0]}
init: {points: 60}
top_k: 3
local: {samples: 1, sigma: 0.02}
surrogate: {hidden: [64, 64], initial_epochs: 150, epochs: 10, batch: 32, k: 3}
safety:
  model_fidelity: {max_error: 2, window: 10, action: ACTION}
`

func TestFidelityInterlock(t *testing.T) {
	for _, c := range []struct {
		name, gap, action string
		want              error // nil: the run finishes
		status            journal.RunStatus
	}{
		{"unchanged twin", "100000", "trip", nil, journal.RunFinished},
		{"gap, trip", "60", "trip", nil, journal.RunInterrupted},
		{"gap, pause", "60", "pause", nil, journal.RunInterrupted},
		{"gap, warn", "60", "warn", nil, journal.RunFinished},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := writeFile(t, "gap.yaml", strings.NewReplacer("GAP", c.gap, "ACTION", c.action).Replace(gapRun))
			out := filepath.Join(t.TempDir(), "r")
			_, _, err := run(t, "run", cfg, "--out", out, "-q")
			j, jerr := journal.OpenReadOnly(out)
			if jerr != nil {
				t.Fatal(jerr)
			}
			defer j.Close()
			ctx := context.Background()
			s, _ := j.Summary(ctx)
			evs, _ := j.Events(ctx)
			var preds, fid, safe int
			var win []float64
			worst := 0.0 // the largest mean over a window of 10
			for _, e := range evs {
				switch e.Kind {
				case journal.KindPrediction:
					preds++
					win = append(win, e.Value)
					if len(win) >= 10 {
						m := 0.0
						for _, v := range win[len(win)-10:] {
							m += v
						}
						worst = max(worst, m/10)
					}
				case "fidelity":
					fid++
				case "safestate":
					safe++
				}
			}
			t.Logf("%d prediction errors, worst mean of 10: %.3g", preds, worst)
			if s.Status != c.status {
				t.Errorf("status %s, want %s (err %v)", s.Status, c.status, err)
			}
			if preds == 0 {
				t.Error("no prediction errors journaled")
			}
			switch {
			case c.gap == "100000":
				if err != nil || fid != 0 {
					t.Errorf("unchanged twin: err %v, %d fidelity events", err, fid)
				}
			case c.action == "warn":
				if err != nil || fid == 0 {
					t.Errorf("warn: err %v, %d fidelity events, want an event and a finished run", err, fid)
				}
			default:
				if err == nil || !strings.Contains(err.Error(), "model fidelity") || fid == 0 {
					t.Errorf("%s: err %v, %d fidelity events", c.action, err, fid)
				}
				if c.action == "trip" && safe == 0 {
					t.Error("a fidelity trip did not put the device in its safe state")
				}
				// It stopped soon after the gap: within the window and an
				// iteration's queries.
				if s.Done > 60+10+3*2+1 {
					t.Errorf("%d queries measured; the gap opened after 60", s.Done)
				}
			}
		})
	}
}
