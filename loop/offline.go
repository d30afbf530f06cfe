package loop

import (
	"context"
	"fmt"
	"math"

	"github.com/insitu-lab/insitu/loop/journal"
)

// offline is Algorithm A1: train the surrogate once on a dataset (a
// previous run's journal, or random queries made now), freeze it, and
// descend from the K best points of that dataset, each slot following its
// own Adam trajectory with one query per step. Local samples are not used.
func (r *runner) offline(ctx context.Context) error {
	r.beginIteration(0)
	var ext []Sample // measured by another run: training data, not queries of this one
	if path := r.cfg.Offline.Journal; path != "" {
		src, err := journal.OpenReadOnly(path)
		if err != nil {
			return fmt.Errorf("offline.journal: %w", err)
		}
		xs, ys, err := src.Dataset(ctx)
		src.Close()
		if err != nil {
			return fmt.Errorf("offline.journal: %w", err)
		}
		if len(xs) < 2 {
			return fmt.Errorf("offline.journal: %s has %d measured queries, want ≥ 2", path, len(xs))
		}
		dim := r.space.Dim()
		for i := range xs {
			if len(xs[i]) != dim || len(ys[i]) != len(r.p.Box.Spec().Out) {
				return fmt.Errorf("offline.journal: %s: query %d has shape %d→%d, this black box is %d→%d",
					path, i, len(xs[i]), len(ys[i]), dim, len(r.p.Box.Spec().Out))
			}
			ext = append(ext, Sample{X: xs[i], Y: ys[i], F: r.p.Objective.Value(ys[i])})
		}
	} else if _, err := r.ev.eval(ctx, journal.RoleInit, journal.NoSlot, r.uniform(r.rng(saltOffline), r.cfg.Offline.Points)); err != nil {
		return err
	}
	saved := r.ev.samples
	r.ev.samples = append(append([]Sample(nil), ext...), saved...)
	tr, data, err := r.newSurrogate()
	starts := r.topK(r.cfg.TopK)
	cur := make([]Sample, len(starts))
	for slot, i := range starts {
		cur[slot] = r.ev.samples[i]
	}
	r.ev.samples = saved
	if err != nil {
		return err
	}
	loss, err := tr.Fit(ctx, data, r.cfg.Offline.Epochs, nil)
	if err != nil {
		return err
	}
	if err := r.endIteration(ctx, math.NaN(), loss); err != nil {
		return err
	}
	states := make([]adamX, len(cur))
	for t := 1; t <= r.cfg.Iterations; t++ {
		r.beginIteration(t)
		steps := make([][]float64, len(cur))
		for slot, s := range cur {
			g, err := r.gradient(ctx, s)
			if err != nil {
				return err
			}
			x, clipped := r.fromUnit(states[slot].step(r.toUnit(s.X), g, r.cfg.StepRate(t)))
			if clipped {
				r.projected++
			}
			steps[slot] = x
		}
		stepF := math.NaN()
		for slot, x := range steps {
			idx, err := r.ev.eval(ctx, journal.RoleStep, slot, [][]float64{x})
			for _, i := range idx {
				cur[slot] = r.ev.samples[i]
				if f := cur[slot].F; math.IsNaN(stepF) || r.ev.better(f, stepF) {
					stepF = f
				}
			}
			if err != nil {
				return r.finishPartial(ctx, err, stepF, loss)
			}
		}
		if err := r.endIteration(ctx, stepF, loss); err != nil {
			return err
		}
	}
	return nil
}
