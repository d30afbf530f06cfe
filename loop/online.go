package loop

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/insitu-lab/insitu/loop/journal"
	"github.com/insitu-lab/insitu/surrogate"
)

// adamX is one slot's Adam state on x (normalized units).
type adamX struct {
	m, v []float64
	t    int
}

func (a *adamX) clone() *adamX {
	return &adamX{m: slices.Clone(a.m), v: slices.Clone(a.v), t: a.t}
}

// step returns u − lr·m̂/(√v̂ + ε) for the descent direction g.
func (a *adamX) step(u, g []float64, lr float64) []float64 {
	const b1, b2, eps = 0.9, 0.999, 1e-8
	if a.m == nil {
		a.m, a.v = make([]float64, len(u)), make([]float64, len(u))
	}
	a.t++
	c1, c2 := 1-math.Pow(b1, float64(a.t)), 1-math.Pow(b2, float64(a.t))
	out := make([]float64, len(u))
	for i := range u {
		a.m[i] = b1*a.m[i] + (1-b1)*g[i]
		a.v[i] = b2*a.v[i] + (1-b2)*g[i]*g[i]
		out[i] = u[i] - lr*(a.m[i]/c1)/(math.Sqrt(a.v[i]/c2)+eps)
	}
	return out
}

// newSurrogate builds the model and trainer of a surrogate method, with
// the output scale taken from the samples measured so far.
func (r *runner) newSurrogate() (*surrogate.Trainer, *surrogate.Dataset, error) {
	s := r.cfg.Surrogate
	m, err := surrogate.NewModel(r.space, len(r.p.Box.Spec().Out), s.Arch(), r.cfg.Seed^saltSurrogate)
	if err != nil {
		return nil, nil, fmt.Errorf("surrogate: %w", err)
	}
	ys := make([][]float64, len(r.ev.samples))
	for i, smp := range r.ev.samples {
		ys[i] = smp.Y
	}
	m.SetOutputScale(ys)
	tr, err := surrogate.NewTrainer(m, surrogate.TrainConfig{
		Loss: r.cfg.Loss(), Norm: s.Norm, K: s.K, Batch: s.Batch, LR: s.LR, Lambda: s.Lambda, Share: s.Share, Rows: cmp.Or(s.Rows, s.Batch),
	}, r.cfg.Seed^saltSurrogate)
	if err != nil {
		return nil, nil, fmt.Errorf("surrogate: %w", err)
	}
	d := surrogate.NewDataset(m)
	for _, smp := range r.ev.samples {
		d.Append(smp.X, smp.Y)
	}
	r.model = m
	return tr, d, nil
}

// gradient returns the descent direction at sample i in normalized units:
// ±(J(x)ᵀ ∇g(y))·width, J from the surrogate or the twin, y measured.
func (r *runner) gradient(ctx context.Context, s Sample) ([]float64, error) {
	v := r.p.Objective.Grad(s.Y)
	var g []float64
	if r.cfg.Method == MethodExact {
		var err error
		if g, err = r.p.Exact.VJP(ctx, s.X, v); err != nil {
			return nil, fmt.Errorf("exact gradient: %w", err)
		}
	} else {
		g = r.model.VJP(s.X, v)
	}
	sign := 1.0
	if r.p.Direction == Maximize {
		sign = -1
	}
	for k := range g {
		g[k] *= sign * r.width[k]
	}
	return g, nil
}

// online is Algorithm 1 (gradpie, mae, mse), and the same loop with the
// twin's exact gradient (exact).
func (r *runner) online(ctx context.Context) error {
	if _, err := r.initial(ctx); err != nil {
		return err
	}
	var (
		tr   *surrogate.Trainer
		data *surrogate.Dataset
	)
	localSrc := rand.NewPCG(r.cfg.Seed, saltLocal)
	local := rand.New(localSrc)
	// states maps a sample to the Adam state of the slot whose trajectory
	// is at it: a slot keeps its moments while it steps from the point it
	// stepped from or to last time, and starts afresh on any other point.
	states := map[int]*adamX{}
	start := 1
	if r.cfg.UsesSurrogate() {
		var err error
		if tr, data, err = r.newSurrogate(); err != nil {
			return err
		}
		// A resumed run continues from its last checkpoint instead of
		// retraining the surrogate through every iteration it replays.
		c, err := r.restore(ctx, &tr, &data, states, localSrc)
		if err != nil {
			return err
		}
		start = c + 1
		if c == 0 && r.cfg.Surrogate.InitialEpochs > 0 {
			if _, err := tr.Fit(ctx, data, r.cfg.Surrogate.InitialEpochs, nil); err != nil {
				return err
			}
		}
	}
	for t := start; t <= r.cfg.Iterations; t++ {
		r.beginIteration(t)
		if err := r.restart(ctx); err != nil {
			return r.finishPartial(ctx, err, math.NaN(), math.NaN())
		}
		trainLoss := math.NaN()
		top := r.topK(r.cfg.TopK)
		var bg *background
		if tr != nil {
			r.catchUp(data)
			var err error
			// The step budget is per query: an iteration of K·(1+M) queries
			// trains steps·K·(1+M) minibatch steps.
			s := r.cfg.Surrogate
			steps := mulSat(s.Steps, mulSat(len(top), addSat(1, r.cfg.Local.Samples)))
			switch {
			case s.Steps > 0 && s.Overlap:
				bg = &background{tr: tr, data: data, focus: r.focus(top), steps: steps, slots: len(top)}
			case s.Steps > 0:
				trainLoss, err = tr.Steps(ctx, data, steps, r.focus(top))
			default:
				trainLoss, err = tr.Fit(ctx, data, s.Epochs, nil)
			}
			if err != nil {
				return err
			}
		}
		// The surrogate is frozen from here to the end of the iteration:
		// every step uses the same model, which also predicts each query
		// before it is made (journaled, and watched by the fidelity
		// interlock). With overlap the trainer goes on training the
		// original for the next iteration, so the frozen one is a copy.
		if tr != nil {
			ys := make([][]float64, r.ev.n())
			for i := range ys {
				ys[i] = r.ev.samples[i].Y
			}
			frozen := tr.Model()
			if bg != nil {
				r.frozen = frozen.CloneInto(r.frozen)
				frozen, r.model = r.frozen, r.frozen
			}
			r.ev.setPredictor(frozen.Predict, ys)
		}
		steps := make([][]float64, len(top))
		slotState := make([]*adamX, len(top))
		for slot, p := range top {
			g, err := r.gradient(ctx, r.ev.samples[p])
			if err != nil {
				return err
			}
			st, ok := states[p]
			if !ok {
				st = &adamX{}
			} else {
				st = st.clone()
			}
			x, clipped := r.fromUnit(st.step(r.toUnit(r.ev.samples[p].X), g, r.cfg.StepRate(t)))
			if clipped {
				r.projected++
			}
			steps[slot], slotState[slot] = x, st
		}
		next := map[int]*adamX{}
		stepF := math.NaN()
		for slot, x := range steps {
			if bg != nil {
				if slot > 0 {
					r.catchUp(data)
				}
				bg.start(ctx, slot)
			}
			err := func() error {
				idx, err := r.ev.eval(ctx, journal.RoleStep, slot, [][]float64{x})
				for _, i := range idx {
					next[i], next[top[slot]] = slotState[slot], slotState[slot]
					if f := r.ev.samples[i].F; math.IsNaN(stepF) || r.ev.better(f, stepF) {
						stepF = f
					}
				}
				if err != nil {
					return err
				}
				if m := r.cfg.Local.Samples; m > 0 {
					u := r.toUnit(x)
					xs := make([][]float64, m)
					for k := range xs {
						v := make([]float64, len(u))
						for i := range v {
							v[i] = u[i] + r.cfg.Local.Sigma*local.NormFloat64()
						}
						xs[k], _ = r.fromUnit(v)
					}
					if _, err := r.ev.eval(ctx, journal.RoleLocal, slot, xs); err != nil {
						return err
					}
				}
				return nil
			}()
			if bg != nil {
				// The slot's training ends before anything else reads the
				// model or the dataset grows.
				err = errors.Join(err, bg.wait())
			}
			if err != nil {
				if bg != nil {
					trainLoss = bg.loss()
				}
				return r.finishPartial(ctx, err, stepF, trainLoss)
			}
		}
		if bg != nil {
			trainLoss = bg.loss()
			r.model = tr.Model()
		}
		states = next
		if err := r.endIteration(ctx, stepF, trainLoss); err != nil {
			return err
		}
		if err := r.checkpoint(ctx, t, tr, states, localSrc); err != nil {
			return err
		}
	}
	return nil
}

// catchUp appends the samples measured since the dataset was last grown.
func (r *runner) catchUp(data *surrogate.Dataset) {
	for n := data.Len(); n < r.ev.n(); n++ {
		data.Append(r.ev.samples[n].X, r.ev.samples[n].Y)
	}
}

// focus is what the per-iteration steps favour: the recent points and the
// neighbourhoods of the points the iteration steps from.
func (r *runner) focus(top []int) surrogate.Focus {
	return surrogate.Focus{Recent: cmp.Or(r.cfg.Surrogate.Recent, r.cfg.Surrogate.Batch), Near: top}
}

// background trains the surrogate while the black box measures an
// iteration's queries: slot s's share of the steps runs during slot s's
// queries, on the data measured before them. Which data and how many steps
// depend only on the slot, never on timing, so a resumed run trains the
// same model.
type background struct {
	tr           *surrogate.Trainer
	data         *surrogate.Dataset
	focus        surrogate.Focus
	steps, slots int

	done      chan struct{}
	err       error
	sum       float64 // Σ loss·steps over the finished slots
	trained   int
	lastLoss  float64
	slotSteps int
}

// start trains slot's share in a goroutine; wait must follow.
func (b *background) start(ctx context.Context, slot int) {
	n := b.steps*(slot+1)/b.slots - b.steps*slot/b.slots
	b.done, b.slotSteps = make(chan struct{}), n
	go func() {
		defer close(b.done)
		if n > 0 {
			b.lastLoss, b.err = b.tr.Steps(ctx, b.data, n, b.focus)
		}
	}()
}

// wait returns when the slot's training has ended, with its error.
func (b *background) wait() error {
	<-b.done
	if b.err == nil && b.slotSteps > 0 {
		b.sum += b.lastLoss * float64(b.slotSteps)
		b.trained += b.slotSteps
	}
	return b.err
}

// loss is the mean step loss so far (NaN before any step).
func (b *background) loss() float64 {
	if b.trained == 0 {
		return math.NaN()
	}
	return b.sum / float64(b.trained)
}

// finishPartial records an iteration cut short by the budget, a
// cancellation or a failed query, so that the journal shows the queries it
// made, and passes err on.
func (r *runner) finishPartial(ctx context.Context, err error, stepF, trainLoss float64) error {
	if rerr := r.endIteration(ctx, stepF, trainLoss); rerr != nil && !errors.Is(rerr, errStop) {
		return errors.Join(err, rerr)
	}
	return err
}
