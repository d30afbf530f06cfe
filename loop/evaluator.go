package loop

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/insitu-lab/insitu"
	"github.com/insitu-lab/insitu/loop/journal"
)

// ErrBudget ends a run whose query budget is spent; Run treats it as a
// normal end.
var ErrBudget = errors.New("loop: query budget spent")

// ErrDiverged means a resumed run asked for a different query than the
// journal recorded under the same key: the config or the code changed.
var ErrDiverged = errors.New("loop: the resumed run diverged from its journal")

// Sample is one measured query.
type Sample struct {
	X, Y []float64
	F    float64 // objective
}

// evaluator is the only way a method reaches the black box, so every method
// is accounted the same way: each query is journaled before the device is
// touched, scored, recorded, and synced before the method sees it. On a
// resumed run the same sequence of queries is replayed: a query whose
// result the journal holds is served from it (never repeated), and one that
// was started but not recorded is measured again and marked remeasured.
type evaluator struct {
	box    insitu.BlackBox
	obj    Objective
	dir    Direction
	j      *journal.Journal // nil: no journal (tests, studies)
	budget int

	samples []Sample
	best    int // index into samples; -1 before the first

	iteration int
	boxTime   time.Duration // total time inside box.Query

	replayed, remeasured int
	unskipped            uint64 // queries served from the journal that the box has not been told of
}

func newEvaluator(box insitu.BlackBox, obj Objective, dir Direction, j *journal.Journal, budget int) *evaluator {
	return &evaluator{box: box, obj: obj, dir: dir, j: j, budget: budget, best: -1}
}

// better reports whether objective a beats b in the run's direction; NaN
// never wins.
func (e *evaluator) better(a, b float64) bool {
	if e.dir == Maximize {
		return a > b
	}
	return a < b
}

func (e *evaluator) n() int         { return len(e.samples) }
func (e *evaluator) remaining() int { return e.budget - len(e.samples) }

// Best returns the best sample so far; ok is false before the first.
func (e *evaluator) Best() (Sample, bool) {
	if e.best < 0 {
		return Sample{}, false
	}
	return e.samples[e.best], true
}

// bestF is the best objective so far, NaN before the first query.
func (e *evaluator) bestF() float64 {
	if s, ok := e.Best(); ok {
		return s.F
	}
	return math.NaN()
}

// eval measures xs in order. When the budget cannot cover all of them it
// measures what it can and returns those samples with ErrBudget. A cancelled
// ctx starts no new query but lets a started one finish: its result is paid
// for and is journaled. indices are the samples' positions in e.samples.
func (e *evaluator) eval(ctx context.Context, role journal.Role, slot int, xs [][]float64) (indices []int, err error) {
	if e.remaining() < len(xs) {
		xs = xs[:max(e.remaining(), 0)]
		err = ErrBudget
	}
	for _, x := range xs {
		if cerr := ctx.Err(); cerr != nil {
			return indices, cerr
		}
		i, qerr := e.one(ctx, role, slot, x)
		if qerr != nil {
			if e.j != nil {
				qerr = errors.Join(qerr, e.j.Sync(ctx))
			}
			return indices, qerr
		}
		indices = append(indices, i)
	}
	if e.j != nil {
		if serr := e.j.Sync(ctx); serr != nil {
			return indices, serr
		}
	}
	return indices, err
}

func (e *evaluator) one(ctx context.Context, role journal.Role, slot int, x []float64) (int, error) {
	key := fmt.Sprintf("q%07d", len(e.samples))
	var (
		id        int64
		remeasure bool
	)
	if e.j != nil {
		q, ok, err := e.j.Lookup(ctx, key)
		if err != nil {
			return 0, err
		}
		if ok {
			if !sameBits(q.X, x) {
				return 0, fmt.Errorf("%w: query %s (id %d) was made at a different x", ErrDiverged, key, q.ID)
			}
			switch q.Status {
			case journal.StatusDone, journal.StatusRemeasured:
				e.served()
				return e.record(x, q.Y)
			case journal.StatusFailed:
				return 0, fmt.Errorf("query %s failed in the journaled run: %s", key, q.Err)
			}
			id, remeasure = q.ID, true
		} else {
			id, err = e.j.Begin(ctx, journal.Intent{Iteration: e.iteration, Slot: slot, Role: role, Key: key, X: x})
			if err != nil {
				return 0, err
			}
		}
	}
	if e.unskipped > 0 {
		if sq, ok := e.box.(insitu.Sequenced); ok {
			sq.Skip(e.unskipped)
		}
		e.unskipped = 0
	}
	// The query itself is not cancelled by ctx: the first Ctrl-C lets the
	// device finish and the result be journaled. The guard's watchdog and
	// Abort bound it.
	start := time.Now()
	y, qerr := e.box.Query(context.WithoutCancel(ctx), x)
	e.boxTime += time.Since(start)
	f := math.NaN()
	if qerr == nil {
		f = e.obj.Value(y)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			qerr = fmt.Errorf("objective of query %s is %v", key, f)
		}
	}
	if e.j != nil {
		finish := e.j.Finish
		if remeasure {
			finish = e.j.Remeasure
			e.remeasured++
		}
		if err := finish(ctx, id, y, f, qerr); err != nil {
			return 0, errors.Join(qerr, err)
		}
	}
	if qerr != nil {
		return 0, fmt.Errorf("query %s: %w", key, qerr)
	}
	return e.record(x, y)
}

// served counts a query served from the journal: the device did answer it,
// in the run that journaled it, so a Sequenced box is moved on past it
// before the next live query.
func (e *evaluator) served() {
	e.replayed++
	e.unskipped++
}

func (e *evaluator) record(x, y []float64) (int, error) {
	f := e.obj.Value(y)
	s := Sample{X: append([]float64(nil), x...), Y: y, F: f}
	e.samples = append(e.samples, s)
	i := len(e.samples) - 1
	if e.best < 0 || e.better(f, e.samples[e.best].F) {
		e.best = i
	}
	return i, nil
}

func sameBits(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float64bits(a[i]) != math.Float64bits(b[i]) {
			return false
		}
	}
	return true
}
