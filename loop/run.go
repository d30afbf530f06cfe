package loop

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/insitu-lab/insitu"
	"github.com/insitu-lab/insitu/loop/journal"
	"github.com/insitu-lab/insitu/surrogate"
)

// Problem is what a run optimizes: the (guarded) black box, the objective
// on its outputs, and, for the exact baseline, the twin's exact VJP.
type Problem struct {
	Box       insitu.BlackBox
	Objective Objective
	Direction Direction
	Exact     insitu.Differentiable // nil unless the box is a twin that knows its Jacobian
	// Fidelity, when set, is told the surrogate's prediction error of
	// every new query (surrogate methods, once a model is trained); an
	// error it returns stops the run after that query is journaled.
	Fidelity FidelityObserver
}

// FidelityObserver takes the prediction error of each new query, in the
// surrogate's normalized output units; safety.Guard implements it.
type FidelityObserver interface {
	ObservePrediction(ctx context.Context, e float64) error
}

// Progress is reported after every iteration.
type Progress struct {
	Iteration, Iterations int
	Queries, Budget       int
	Best                  float64
	Replayed              int // queries served from the journal on resume
}

// Result is a finished (or stopped) run.
type Result struct {
	Best       Sample
	Queries    int
	Iterations []journal.Iteration
	// Stop is why the run ended: "iterations", "budget", "patience",
	// "rejected: …" (the guard refused a query, see RejectedError), or the
	// error that ended it.
	Stop       string
	Replayed   int // queries served from the journal (resume)
	Remeasured int // started-but-unrecorded queries measured again (resume)
	Retried    int // queries a device fault failed in an earlier session, tried again (resume)
	Projected  int // steps projected back into the box
	Restored   int // the checkpoint iteration a resumed run continued from; 0 if none
	Model      *surrogate.Model
}

// Run optimizes p with cfg's method. j may be nil; when it holds queries
// of an interrupted run with the same config, Run resumes it: the run is
// replayed deterministically, recorded queries are served from the journal
// and the device is queried only for what the journal lacks. Cancelling ctx
// ends the run after the query in flight; the result so far is returned
// with ctx's error.
func Run(ctx context.Context, cfg Config, p Problem, j *journal.Journal, progress func(Progress)) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	spec := p.Box.Spec()
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	if err := cfg.ValidateDims(spec.In.Dim(), len(spec.Out)); err != nil {
		return nil, err
	}
	if cfg.Method == MethodExact && p.Exact == nil {
		return nil, fmt.Errorf("method exact: %s is not Differentiable: it has no exact gradient", spec.Name)
	}
	if probs := cfg.InitProblems(spec.Name, spec.In.Dim(), 1); len(probs) > 0 {
		return nil, fmt.Errorf("%s: %s", probs[0].Key, probs[0].Msg)
	}
	r := &runner{
		cfg: cfg, p: p, space: spec.In, progress: progress,
		ev: newEvaluator(p.Box, p.Objective, p.Direction, j, cfg.EffectiveBudget()).observe(p.Fidelity),
	}
	r.lo, r.width = spec.In.Lower, make([]float64, spec.In.Dim())
	for i := range r.width {
		r.width[i] = spec.In.Upper[i] - spec.In.Lower[i]
	}
	if j != nil {
		its, err := j.Iterations(ctx)
		if err != nil {
			return nil, err
		}
		r.recorded = map[int]bool{}
		for _, it := range its {
			r.recorded[it.Iteration] = true
		}
	}
	var err error
	switch {
	case cfg.UsesSurrogate() && cfg.Mode == ModeOffline:
		err = r.offline(ctx)
	case cfg.UsesSurrogate() || cfg.Method == MethodExact:
		err = r.online(ctx)
	case cfg.Method == MethodRandom:
		err = r.random(ctx)
	case cfg.Method == MethodSPSA:
		err = r.spsa(ctx)
	case cfg.Method == MethodFD:
		err = r.fd(ctx)
	case cfg.Method == MethodCMAES:
		err = r.cmaes(ctx)
	case cfg.Method == MethodBayOpt:
		err = r.bayopt(ctx)
	case cfg.Method == MethodTuRBO:
		err = r.turbo(ctx)
	}
	res := &Result{
		Queries: r.ev.n(), Iterations: r.iters, Stop: r.stop,
		Replayed: r.ev.replayed, Remeasured: r.ev.remeasured, Retried: r.ev.retried, Projected: r.projected, Model: r.model,
		Restored: r.restored,
	}
	res.Best, _ = r.ev.Best()
	res.Stop, err = stopReason(res.Stop, err)
	return res, err
}

// stopReason is why a run or a training that ended with err stopped, and
// the error left to return: a stop rule (the budget, patience) and the
// guard's refusal of a query end it without an error; any other error is
// the reason, as it is. stop is the stop rule that fired, if any.
func stopReason(stop string, err error) (string, error) {
	var rej *RejectedError
	switch {
	case errors.Is(err, ErrBudget) || errors.Is(err, errStop):
		return cmp.Or(stop, "budget"), nil
	case errors.As(err, &rej):
		return "rejected: " + rej.Error(), nil
	case err != nil:
		return err.Error(), err
	}
	return cmp.Or(stop, "iterations"), nil
}

// errStop ends a run early (patience) without being an error.
var errStop = errors.New("loop: stopped early")

// runner holds one run's state shared by the methods.
type runner struct {
	cfg      Config
	frozen   *surrogate.Model // the iteration's copy of the surrogate while it trains in the background
	p        Problem
	space    insitu.Space
	lo       []float64
	width    []float64
	ev       *evaluator
	progress func(Progress)

	model     *surrogate.Model
	iters     []journal.Iteration
	stop      string
	projected int

	// per-iteration accounting
	iterStart   time.Time
	iterBoxTime time.Duration
	stale       int          // iterations without improvement > tolerance
	floor       int          // the slots step from samples[floor:]: the last restart's first point
	restarts    int          // restarts so far
	recorded    map[int]bool // iterations the journal already holds (resume)
	restored    int          // iteration of the checkpoint a resume started from
	lastBest    float64
}

// rng returns an independent, seeded stream for one purpose, so that
// changing how much one part draws does not shift another.
func (r *runner) rng(salt uint64) *rand.Rand {
	return rand.New(rand.NewPCG(r.cfg.Seed, salt))
}

// Salts of the random streams.
const (
	saltInit uint64 = iota + 0x1a5e
	saltLocal
	saltSurrogate
	saltRandom
	saltSPSA
	saltCMAES
	saltOffline
	saltRestart // the restart rule's points: restart r draws from saltRestart + r
)

// toUnit maps x from the box to [0,1]^d; a zero-width coordinate maps to 0.
func (r *runner) toUnit(x []float64) []float64 {
	u := make([]float64, len(x))
	for i, v := range x {
		if r.width[i] > 0 {
			u[i] = (v - r.lo[i]) / r.width[i]
		}
	}
	return u
}

// project brings u back into [0,1]^d in place: a periodic coordinate
// wraps around (its bounds are one setting), any other is clipped. It
// reports whether anything was clipped (a projected step); wrapping is not
// a projection. NaN stays NaN: the guard rejects it loudly.
func project(u []float64, s insitu.Space) (clipped bool) {
	for i, v := range u {
		switch {
		case v >= 0 && v <= 1:
		case s.IsPeriodic(i) && !math.IsNaN(v) && !math.IsInf(v, 0):
			u[i] = v - math.Floor(v)
		default:
			clipped = true
			u[i] = min(max(v, 0), 1)
		}
	}
	return clipped
}

// fromUnit maps u back into the box, projecting it first (see project);
// the bool says whether anything had to be clipped.
func (r *runner) fromUnit(u []float64) ([]float64, bool) {
	x := slices.Clone(u) // projected in place, then mapped to the box
	clipped := project(x, r.space)
	for i, v := range x {
		x[i] = r.lo[i] + v*r.width[i]
		if v == 1 { // exact upper bound despite rounding
			x[i] = r.space.Upper[i]
		}
	}
	return x, clipped
}

// uniform draws n points uniformly in the box.
func (r *runner) uniform(rng *rand.Rand, n int) [][]float64 {
	xs := make([][]float64, n)
	for k := range xs {
		u := make([]float64, len(r.lo))
		for i := range u {
			u[i] = rng.Float64()
		}
		xs[k], _ = r.fromUnit(u)
	}
	return xs
}

// initial measures the initial design (iteration 0).
func (r *runner) initial(ctx context.Context) ([]int, error) {
	r.beginIteration(0)
	xs := r.cfg.Init.X
	if len(xs) == 0 {
		xs = r.uniform(r.rng(saltInit), r.cfg.Init.Points)
	}
	idx, err := r.ev.eval(ctx, journal.RoleInit, journal.NoSlot, xs)
	if err != nil {
		return idx, err
	}
	return idx, r.endIteration(ctx, math.NaN(), math.NaN())
}

func (r *runner) beginIteration(it int) {
	r.ev.iteration = it
	r.iterStart = time.Now()
	r.iterBoxTime = r.ev.boxTime
}

// endIteration records the iteration, reports progress and applies the
// patience rule (errStop).
func (r *runner) endIteration(ctx context.Context, stepF, trainLoss float64) error {
	wall := time.Since(r.iterStart)
	box := r.ev.boxTime - r.iterBoxTime
	it := journal.Iteration{
		Iteration: r.ev.iteration, Queries: r.ev.n(), Best: r.ev.bestF(), StepObjective: stepF,
		TrainLoss: trainLoss, Controller: wall - box, Box: box, Projected: r.projected,
	}
	r.iters = append(r.iters, it)
	// A replayed iteration keeps the record its first run wrote: the timing
	// of a replay says nothing about the run.
	replayedOnly := r.ev.replayed >= r.ev.n() && r.recorded[it.Iteration]
	if r.ev.j != nil && !replayedOnly {
		if err := r.ev.j.RecordIteration(ctx, it); err != nil {
			return err
		}
	}
	if r.progress != nil {
		r.progress(Progress{Iteration: it.Iteration, Iterations: r.cfg.Iterations, Queries: it.Queries,
			Budget: r.ev.budget, Best: it.Best, Replayed: r.ev.replayed})
	}
	if it.Iteration == 0 {
		r.lastBest = it.Best
		return nil
	}
	if r.ev.better(it.Best, r.lastBest) && math.Abs(it.Best-r.lastBest) > r.cfg.Tolerance {
		r.lastBest, r.stale = it.Best, 0
	} else {
		r.stale++
	}
	if r.cfg.Patience > 0 && r.stale >= r.cfg.Patience {
		r.stop = "patience"
		return errStop
	}
	return nil
}

// restart applies the restart rule (RestartConfig) before iteration t's
// steps.
func (r *runner) restart(ctx context.Context) error {
	rs := r.cfg.Restart
	if rs.After <= 0 || r.stale < rs.After {
		return nil
	}
	n := rs.Points
	if n == 0 {
		n = r.cfg.InitPoints()
	}
	xs := r.uniform(r.rng(saltRestart+uint64(r.restarts)), n)
	r.floor, r.restarts, r.stale = r.ev.n(), r.restarts+1, 0
	_, err := r.ev.eval(ctx, journal.RoleInit, journal.NoSlot, xs)
	return err
}

// topK returns the indices of the k best samples, best first; ties go to
// the earlier sample.
func (r *runner) topK(k int) []int {
	idx := make([]int, len(r.ev.samples)-r.floor)
	for i := range idx {
		idx[i] = r.floor + i
	}
	s := r.ev.samples
	sortStable(idx, func(a, b int) bool { return r.ev.better(s[a].F, s[b].F) })
	return idx[:min(k, len(idx))]
}
