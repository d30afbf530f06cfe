package loop

import (
	"context"
	"encoding/json"
	"fmt"
	"math"

	"github.com/insitu-lab/insitu/loop/bayes"
	"github.com/insitu-lab/insitu/loop/journal"
)

// Random streams of the Bayesian methods (apart from the iota salts, so
// that restart r's saltRestart + r never meets them).
const (
	saltBayOpt uint64 = 0xba7e5_0001
	saltTuRBO  uint64 = 0xba7e5_0002
)

// sign turns the objective into the value the GP minimizes.
func (r *runner) sign() float64 {
	if r.p.Direction == Maximize {
		return -1
	}
	return 1
}

// periodic lists the box's periodic coordinates.
func (r *runner) periodic() []bool {
	p := make([]bool, r.space.Dim())
	for i := range p {
		p[i] = r.space.IsPeriodic(i)
	}
	return p
}

// unitSamples returns samples[from:] in unit coordinates with the values
// the GP minimizes.
func (r *runner) unitSamples(from int) ([][]float64, []float64) {
	s := r.ev.samples[from:]
	us, ys := make([][]float64, len(s)), make([]float64, len(s))
	for i, smp := range s {
		us[i], ys[i] = r.toUnit(smp.X), r.sign()*smp.F
	}
	return us, ys
}

// bayopt is sequential Bayesian optimization: after the initial design,
// every query is the maximizer of expected improvement under a GP of
// everything measured (loop/bayes). Iterations are blocks of K·(1+M)
// queries, as for every baseline.
func (r *runner) bayopt(ctx context.Context) error {
	if _, err := r.initial(ctx); err != nil {
		return err
	}
	bo := bayes.NewBO(r.space.Dim(), r.periodic(), r.cfg.Bayes.options(r.space.Dim()), r.cfg.Seed, saltBayOpt)
	c, parts, _, err := r.resume(ctx)
	if err != nil {
		return err
	}
	us, ys := r.unitSamples(0)
	if c > 0 {
		if err := bo.Restore(parts["bayes"], us, ys); err != nil {
			return fmt.Errorf("checkpoint of iteration %d: %w", c, err)
		}
	} else {
		for i := range us {
			if err := bo.Observe(us[i], ys[i]); err != nil {
				return err
			}
		}
	}
	for t := c + 1; t <= r.cfg.Iterations; t++ {
		r.beginIteration(t)
		stepF := math.NaN()
		for range r.cfg.QueriesPerIteration() {
			u, err := bo.Suggest()
			if err != nil {
				return r.finishPartial(ctx, fmt.Errorf("bayopt: %w", err), stepF, math.NaN())
			}
			x, _ := r.fromUnit(u)
			idx, err := r.ev.eval(ctx, journal.RoleBaseline, journal.NoSlot, [][]float64{x})
			for _, i := range idx {
				s := r.ev.samples[i]
				if oerr := bo.Observe(r.toUnit(s.X), r.sign()*s.F); oerr != nil {
					return oerr
				}
				if math.IsNaN(stepF) || r.ev.better(s.F, stepF) {
					stepF = s.F
				}
			}
			if err != nil {
				return r.finishPartial(ctx, err, stepF, math.NaN())
			}
		}
		if err := r.endIteration(ctx, stepF, math.NaN()); err != nil {
			return err
		}
		state, err := bo.MarshalState()
		if err != nil {
			return err
		}
		if err := r.saveState(ctx, t, loopState{}, map[string][]byte{"bayes": state}); err != nil {
			return err
		}
	}
	return nil
}

// turboState is turbo's checkpoint besides the package's own.
type turboState struct {
	Floor   int             `json:"floor"`   // first sample of the current trust region
	Restart bool            `json:"restart"` // the region collapsed: the next iteration starts afresh
	State   json.RawMessage `json:"state"`
}

// turbo is TuRBO-1: each iteration proposes a batch of K·(1+M) points by
// Thompson sampling in a trust region around the best point since the
// last restart; when the region collapses the next iteration measures a
// fresh design of restart.points (0: init.points) uniform points, as the
// restart rule does, and the region starts again around its best.
func (r *runner) turbo(ctx context.Context) error {
	if _, err := r.initial(ctx); err != nil {
		return err
	}
	q := r.cfg.QueriesPerIteration()
	tr := bayes.NewTurbo(r.space.Dim(), r.periodic(), q, r.cfg.Bayes.options(r.space.Dim()), r.cfg.Bayes.Turbo, r.cfg.Seed, saltTuRBO)
	c, parts, _, err := r.resume(ctx)
	if err != nil {
		return err
	}
	var ts turboState
	if c > 0 {
		if err := json.Unmarshal(parts["bayes"], &ts); err != nil {
			return fmt.Errorf("checkpoint of iteration %d: %w", c, err)
		}
		if err := tr.Restore(ts.State); err != nil {
			return fmt.Errorf("checkpoint of iteration %d: %w", c, err)
		}
	}
	for t := c + 1; t <= r.cfg.Iterations; t++ {
		r.beginIteration(t)
		if ts.Restart {
			n := r.cfg.Restart.Points
			if n == 0 {
				n = r.cfg.InitPoints()
			}
			from := r.ev.n()
			xs := r.uniform(r.rng(saltRestart+uint64(tr.Restarts())), n)
			tr.Restart()
			ts.Floor, ts.Restart = from, false
			if _, err := r.ev.eval(ctx, journal.RoleInit, journal.NoSlot, xs); err != nil {
				return r.finishPartial(ctx, err, math.NaN(), math.NaN())
			}
		}
		us, ys := r.unitSamples(ts.Floor)
		prev := math.Inf(1)
		for _, y := range ys {
			prev = min(prev, y)
		}
		batch, err := tr.Suggest(us, ys)
		if err != nil {
			return r.finishPartial(ctx, fmt.Errorf("turbo: %w", err), math.NaN(), math.NaN())
		}
		xs := make([][]float64, len(batch))
		for i, u := range batch {
			xs[i], _ = r.fromUnit(u)
		}
		idx, err := r.ev.eval(ctx, journal.RoleBaseline, journal.NoSlot, xs)
		stepF := math.NaN()
		vals := make([]float64, 0, len(idx))
		for _, i := range idx {
			f := r.ev.samples[i].F
			vals = append(vals, r.sign()*f)
			if math.IsNaN(stepF) || r.ev.better(f, stepF) {
				stepF = f
			}
		}
		if err != nil {
			return r.finishPartial(ctx, err, stepF, math.NaN())
		}
		ts.Restart = tr.Update(prev, vals)
		if err := r.endIteration(ctx, stepF, math.NaN()); err != nil {
			return err
		}
		state, err := tr.MarshalState()
		if err != nil {
			return err
		}
		ts.State = state
		js, err := json.Marshal(ts)
		if err != nil {
			return err
		}
		if err := r.saveState(ctx, t, loopState{}, map[string][]byte{"bayes": js}); err != nil {
			return err
		}
	}
	return nil
}
