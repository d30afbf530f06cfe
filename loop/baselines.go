package loop

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"

	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/optimize"

	"github.com/insitu-lab/insitu/loop/journal"
)

// The baselines are accounted in blocks of K·(1+M) queries, the cost of
// one iteration of Algorithm 1, so that "iteration t" means the same
// number of queries for every method.

// blocks closes every iteration whose block of queries is complete. It is
// called after each step of a baseline; a step that crosses several
// boundaries closes several iterations.
func (r *runner) blocks(ctx context.Context, n0 int) error {
	q := r.cfg.QueriesPerIteration()
	for r.ev.iteration <= r.cfg.Iterations && r.ev.n() >= n0+r.ev.iteration*q {
		if err := r.endIteration(ctx, math.NaN(), math.NaN()); err != nil {
			return err
		}
		if r.ev.iteration == r.cfg.Iterations {
			return errStop
		}
		r.beginIteration(r.ev.iteration + 1)
	}
	return nil
}

// baseline runs the initial design, then step until the iterations, the
// budget or ctx end the run.
func (r *runner) baseline(ctx context.Context, step func(ctx context.Context) error) error {
	idx, err := r.initial(ctx)
	if err != nil {
		return err
	}
	n0 := len(idx)
	r.beginIteration(1)
	for {
		err := step(ctx)
		if berr := r.blocks(ctx, n0); berr != nil {
			if errors.Is(berr, errStop) && r.stop == "" {
				r.stop = "iterations"
			}
			return berr
		}
		if err != nil {
			if errors.Is(err, ErrBudget) || ctx.Err() != nil {
				return r.finishPartial(ctx, err, math.NaN(), math.NaN())
			}
			return err
		}
	}
}

// random is uniform random search.
func (r *runner) random(ctx context.Context) error {
	rng := r.rng(saltRandom)
	return r.baseline(ctx, func(ctx context.Context) error {
		_, err := r.ev.eval(ctx, journal.RoleBaseline, journal.NoSlot, r.uniform(rng, 1))
		return err
	})
}

// spsa is Spall's simultaneous-perturbation stochastic approximation from
// the best initial point: two queries per gradient estimate.
func (r *runner) spsa(ctx context.Context) error {
	rng := r.rng(saltSPSA)
	var u []float64
	k := 0
	sign := 1.0
	if r.p.Direction == Maximize {
		sign = -1
	}
	c := r.cfg.SPSA
	return r.baseline(ctx, func(ctx context.Context) error {
		if u == nil {
			u = r.toUnit(r.ev.samples[r.topK(1)[0]].X)
		}
		ak := c.A / math.Pow(float64(k+1)+c.Stability, 0.602)
		ck := c.C / math.Pow(float64(k+1), 0.101)
		k++
		delta := make([]float64, len(u))
		up, um := make([]float64, len(u)), make([]float64, len(u))
		for i := range delta {
			delta[i] = float64(2*rng.IntN(2) - 1)
			up[i], um[i] = u[i]+ck*delta[i], u[i]-ck*delta[i]
		}
		xp, _ := r.fromUnit(up)
		xm, _ := r.fromUnit(um)
		idx, err := r.ev.eval(ctx, journal.RoleBaseline, journal.NoSlot, [][]float64{xp, xm})
		if err != nil {
			return err
		}
		df := sign * (r.ev.samples[idx[0]].F - r.ev.samples[idx[1]].F) / (2 * ck)
		for i := range u {
			u[i] -= ak * df / delta[i]
		}
		project(u, r.space)
		return nil
	})
}

// fd is gradient descent with forward finite differences (d queries per
// gradient) and Adam on x, from the best initial point; each step's new
// point is measured, which gives the next gradient's base value.
func (r *runner) fd(ctx context.Context) error {
	var (
		cur = -1
		st  adamX
	)
	sign := 1.0
	if r.p.Direction == Maximize {
		sign = -1
	}
	h := r.cfg.FD.Step
	return r.baseline(ctx, func(ctx context.Context) error {
		if cur < 0 {
			cur = r.topK(1)[0]
		}
		base := r.ev.samples[cur]
		u := r.toUnit(base.X)
		xs := make([][]float64, len(u))
		steps := make([]float64, len(u))
		for i := range u {
			v := append([]float64(nil), u...)
			steps[i] = h
			if v[i]+h > 1 { // stay in the box: difference backwards
				steps[i] = -h
			}
			v[i] += steps[i]
			xs[i], _ = r.fromUnit(v)
		}
		idx, err := r.ev.eval(ctx, journal.RoleBaseline, journal.NoSlot, xs)
		if err != nil {
			return err
		}
		g := make([]float64, len(u))
		for i, j := range idx {
			g[i] = sign * (r.ev.samples[j].F - base.F) / steps[i]
		}
		x, clipped := r.fromUnit(st.step(u, g, r.cfg.StepRate(r.ev.iteration)))
		if clipped {
			r.projected++
		}
		idx, err = r.ev.eval(ctx, journal.RoleBaseline, journal.NoSlot, [][]float64{x})
		if err != nil {
			return err
		}
		cur = idx[0]
		return nil
	})
}

// cmaes runs gonum's CMA-ES (Cholesky form) in normalized coordinates
// from the best initial point. A candidate outside [0,1]^d is measured at
// its projection and pays a quadratic penalty, so the search is pulled
// back into the box without the device ever seeing an outside point.
func (r *runner) cmaes(ctx context.Context) error {
	idx, err := r.initial(ctx)
	if err != nil {
		return err
	}
	n0 := len(idx)
	r.beginIteration(1)
	sign := 1.0
	if r.p.Direction == Maximize {
		sign = -1
	}
	var stopErr error
	f := func(u []float64) float64 {
		if stopErr != nil {
			return math.Inf(1) // winding down: no more queries
		}
		x, _ := r.fromUnit(u)
		var pen float64
		for i, v := range u {
			if !r.space.IsPeriodic(i) { // a periodic coordinate wraps: no wall to push back from
				d := v - min(max(v, 0), 1)
				pen += d * d
			}
		}
		idx, err := r.ev.eval(ctx, journal.RoleBaseline, journal.NoSlot, [][]float64{x})
		if err == nil {
			err = r.blocks(ctx, n0)
		}
		if len(idx) == 0 {
			stopErr = err
			return math.Inf(1)
		}
		if err != nil {
			stopErr = err
		}
		return sign*r.ev.samples[idx[0]].F + pen
	}
	// gonum samples the first generation from N(x0, InitCholesky), identity
	// by default, whatever InitStepSize says: set the covariance to σ²I so
	// that sigma really is the initial spread.
	dim := r.space.Dim()
	var chol mat.Cholesky
	if !chol.Factorize(mat.NewDiagDense(dim, slices.Repeat([]float64{r.cfg.CMAES.Sigma * r.cfg.CMAES.Sigma}, dim))) {
		return fmt.Errorf("cmaes.sigma: %v gives no covariance", r.cfg.CMAES.Sigma)
	}
	method := &optimize.CmaEsChol{
		InitCholesky: &chol,
		InitStepSize: r.cfg.CMAES.Sigma,
		Population:   r.cfg.CMAES.Population,
		StopLogDet:   math.NaN(), // the budget ends the run, not a collapsed distribution
		Src:          rand.NewPCG(r.cfg.Seed, saltCMAES),
	}
	u0 := r.toUnit(r.ev.samples[r.topK(1)[0]].X)
	// CMA-ES may converge before the budget is spent; restart it from the
	// best point so far until the run ends.
	for stopErr == nil {
		_, err := optimize.Minimize(optimize.Problem{Func: f}, u0, &optimize.Settings{
			FuncEvaluations: r.ev.remaining() + 1,
			Converger:       stopOn{&optimize.FunctionConverge{Absolute: 1e-12, Iterations: 50 * r.cfg.QueriesPerIteration()}, &stopErr},
		}, method)
		if err != nil && stopErr == nil {
			stopErr = err
		}
		if b, ok := r.ev.Best(); ok {
			u0 = r.toUnit(b.X)
		}
	}
	if errors.Is(stopErr, errStop) && r.stop == "" {
		r.stop = "iterations"
	}
	if errors.Is(stopErr, ErrBudget) || ctx.Err() != nil {
		return r.finishPartial(ctx, stopErr, math.NaN(), math.NaN())
	}
	return stopErr
}

// stopOn ends a gonum run at its next generation once the loop has
// stopped (budget, iterations, Ctrl-C): without it CMA-ES would go on
// updating its distribution on the infinite values f returns until its
// evaluation limit — minutes in thousands of dimensions, with the device
// not yet in its safe state.
type stopOn struct {
	optimize.Converger
	stop *error
}

func (s stopOn) Converged(l *optimize.Location) optimize.Status {
	if *s.stop != nil {
		return optimize.MethodConverge
	}
	return s.Converger.Converged(l)
}

// sortStable sorts idx by less, keeping equal elements in order.
func sortStable(idx []int, less func(a, b int) bool) {
	sort.SliceStable(idx, func(i, j int) bool { return less(idx[i], idx[j]) })
}
