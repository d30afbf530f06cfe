package loop

import (
	"context"
	"math"
	"time"

	"github.com/insitu-lab/insitu"
	"github.com/insitu-lab/insitu/loop/journal"
)

// Measurer makes a fixed sequence of queries, a calibration's patterns,
// the way a run makes its own: each journaled before the device is
// touched and recorded before the next, and on a resumed run served from
// the journal when it holds the result, measured again when it holds only
// the intent. Each call of Measure is one iteration of the journal, in
// order. The sequence must be the same on a resume: a calibration's may
// depend on what it measured, since a resume serves the same results.
type Measurer struct {
	ev *evaluator
	it int
}

// NewMeasurer measures through box (the guard) into j (nil: no journal),
// at most budget queries (≤ 0: no limit). Its queries' objective, which
// the journal and the run lists show, is the sum of their outputs: for a
// camera, the light it saw.
func NewMeasurer(box insitu.BlackBox, j *journal.Journal, budget int) *Measurer {
	if budget <= 0 {
		budget = math.MaxInt
	}
	return &Measurer{ev: newEvaluator(box, total{m: len(box.Spec().Out)}, Maximize, j, budget)}
}

// Measured is one query's outputs and the marks of its timing: the
// device's (insitu.MarkQuery) between the loop's start and end, as the
// journal keeps them, so that a resumed run serves the same ones.
type Measured struct {
	Y     []float64
	Marks []journal.Mark
}

// Measure measures xs in order as the next iteration and returns their
// outputs and marks. Each query runs under the context decorate returns
// for its index (decorate nil: ctx), which carries what the device should
// know of it, such as how long to settle. A cancelled ctx starts no new
// query; the one in flight finishes and is journaled.
func (m *Measurer) Measure(ctx context.Context, xs [][]float64, decorate func(ctx context.Context, i int) context.Context) ([]Measured, error) {
	e := m.ev
	e.iteration = m.it
	start, box, replayed := time.Now(), e.boxTime, e.replayed
	ys := make([]Measured, 0, len(xs))
	for i, x := range xs {
		qctx := ctx
		if decorate != nil {
			qctx = decorate(ctx, i)
		}
		idx, err := e.eval(qctx, journal.RoleEval, journal.NoSlot, [][]float64{x})
		for _, k := range idx {
			ys = append(ys, Measured{Y: e.samples[k].Y, Marks: e.marks})
		}
		if err != nil {
			return ys, err
		}
	}
	// An iteration served wholly from the journal keeps the record its
	// first run wrote.
	if e.j != nil && e.replayed-replayed < len(xs) {
		wall := time.Since(start)
		it := journal.Iteration{Iteration: m.it, Queries: e.n(), Best: e.bestF(), StepObjective: math.NaN(), TrainLoss: math.NaN(),
			Controller: wall - (e.boxTime - box), Box: e.boxTime - box}
		if err := e.j.RecordIteration(ctx, it); err != nil {
			return ys, err
		}
		if err := e.j.Sync(ctx); err != nil {
			return ys, err
		}
	}
	m.it++
	return ys, nil
}

// Queries is how many queries were measured or served so far.
func (m *Measurer) Queries() int { return m.ev.n() }

// Replayed is how many were served from the journal, Remeasured how many
// started-but-unrecorded ones were measured again.
func (m *Measurer) Replayed() int   { return m.ev.replayed }
func (m *Measurer) Remeasured() int { return m.ev.remeasured }

// total is the sum of the outputs.
type total struct{ m int }

func (t total) Value(y []float64) float64 {
	var s float64
	for _, v := range y {
		s += v
	}
	return s
}

func (t total) Grad(y []float64) []float64 {
	g := make([]float64, len(y))
	for i := range g {
		g[i] = 1
	}
	return g
}
