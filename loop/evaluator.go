package loop

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/insitu-lab/insitu"
	"github.com/insitu-lab/insitu/loop/journal"
	"github.com/insitu-lab/insitu/safety"
)

// ErrBudget ends a run whose query budget is spent; Run treats it as a
// normal end.
var ErrBudget = errors.New("loop: query budget spent")

// ErrDiverged means a resumed run asked for a different query than the
// journal recorded under the same key: the config or the code changed.
var ErrDiverged = errors.New("loop: the resumed run diverged from its journal")

// RejectedError ends a run whose query the guard refused before any device
// was touched (safety.IsRefusal): a non-finite or out-of-bounds input, a
// step over the slew limit, the device budget spent. The refusal is
// journaled as such (journal.Query.Rejected); Run and Train return their
// result with Stop saying why, and no error: the run is over, and a resume
// would be refused the same query again.
type RejectedError struct {
	Key string // the refused query's journal key
	Err error  // the guard's refusal
}

func (e *RejectedError) Error() string {
	return fmt.Sprintf("the guard refused query %s: %v", e.Key, e.Err)
}
func (e *RejectedError) Unwrap() error { return e.Err }

// attemptKey is the journal key of the attempt-th try of the query key: a
// device fault (an instrument killed, a refused connection) fails one try,
// and a resume tries again under the next key, so every try stays in the
// journal and counts as a device query.
func attemptKey(key string, attempt int) string {
	if attempt <= 1 {
		return key
	}
	return fmt.Sprintf("%s#%d", key, attempt)
}

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
	// marks are the last query's, made or served from the journal (nil
	// when a journal older than version 3 holds none).
	marks []journal.Mark

	replayed, remeasured int
	retried              int    // queries a device fault failed in an earlier session, tried again
	unskipped            uint64 // queries served from the journal that the box has not been told of

	// predict, when set, is the surrogate's prediction of a query's
	// outputs, and spread their scale: a new query's prediction error is
	// journaled and given to fidelity.
	predict  func(x []float64) []float64
	spread   []float64
	fidelity FidelityObserver
}

// observe sets the observer of prediction errors (nil: none).
func (e *evaluator) observe(f FidelityObserver) *evaluator {
	e.fidelity = f
	return e
}

// setPredictor makes every new query predicted before it is made, with the
// error measured in units of each output's spread over ys (the data the
// model was trained on; a constant output counts in its own units).
func (e *evaluator) setPredictor(predict func([]float64) []float64, ys [][]float64) {
	e.predict = predict
	if len(ys) == 0 {
		e.spread = nil
		return
	}
	m := len(ys[0])
	mean, sq := make([]float64, m), make([]float64, m)
	for _, y := range ys {
		for k, v := range y {
			mean[k] += v
		}
	}
	for k := range mean {
		mean[k] /= float64(len(ys))
	}
	for _, y := range ys {
		for k, v := range y {
			sq[k] += (v - mean[k]) * (v - mean[k])
		}
	}
	e.spread = make([]float64, m)
	for k := range sq {
		e.spread[k] = math.Sqrt(sq[k] / float64(len(ys)))
		if !(e.spread[k] > 0) {
			e.spread[k] = 1
		}
	}
}

// predictionError is the mean absolute error of yhat in units of spread.
func (e *evaluator) predictionError(yhat, y []float64) float64 {
	if len(yhat) != len(y) || len(y) == 0 {
		return math.NaN()
	}
	s := 0.0
	for k := range y {
		d := math.Abs(yhat[k] - y[k])
		if k < len(e.spread) {
			d /= e.spread[k]
		}
		s += d
	}
	return s / float64(len(y))
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

// lookup finds the latest try of the query key in the journal (see
// attemptKey): ok is false when there is none, and attempt is its number.
// Only a try that a device fault failed is followed by another.
func (e *evaluator) lookup(ctx context.Context, key string) (q journal.Query, attempt int, ok bool, err error) {
	for n := 1; ; n++ {
		next, found, err := e.j.Lookup(ctx, attemptKey(key, n))
		if err != nil {
			return q, 0, false, err
		}
		if !found {
			return q, n - 1, ok, nil
		}
		q, attempt, ok = next, n, true
		if q.Status != journal.StatusFailed || q.Rejected {
			return q, attempt, true, nil
		}
	}
}

func (e *evaluator) one(ctx context.Context, role journal.Role, slot int, x []float64) (int, error) {
	key := fmt.Sprintf("q%07d", len(e.samples))
	var (
		id        int64
		remeasure bool
	)
	e.marks = nil
	if e.j != nil {
		q, attempt, ok, err := e.lookup(ctx, key)
		if err != nil {
			return 0, err
		}
		if ok && !sameBits(q.X, x) {
			return 0, fmt.Errorf("%w: query %s (id %d) was made at a different x", ErrDiverged, q.Key, q.ID)
		}
		switch {
		case !ok:
			attempt = 0
		case q.Status == journal.StatusDone || q.Status == journal.StatusRemeasured:
			e.served()
			e.marks = q.Marks
			return e.record(x, q.Y)
		case q.Status == journal.StatusFailed && q.Rejected:
			// The guard refused it before the device: it would again.
			return 0, &RejectedError{Key: q.Key, Err: errors.New(q.Err)}
		case q.Status == journal.StatusFailed:
			// A device fault failed the last try; the fault may be
			// cleared now. The failed try stays journaled, and counted.
			e.retried++
		default: // started: the result was lost in a crash
			id, remeasure = q.ID, true
		}
		if !remeasure {
			key = attemptKey(key, attempt+1)
			id, err = e.j.Begin(ctx, journal.Intent{Iteration: e.iteration, Slot: slot, Role: role, Key: key, X: x})
			if err != nil {
				return 0, err
			}
		} else {
			key = q.Key
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
	var yhat []float64
	if e.predict != nil {
		yhat = e.predict(x) // before the query: what the model expects
	}
	// A fresh trace for every query: a call the watchdog abandoned may
	// still mark the trace it was given.
	trace := new(insitu.QueryTrace)
	qctx := insitu.WithQueryTrace(context.WithoutCancel(ctx), trace)
	start := time.Now()
	y, qerr := e.box.Query(qctx, x)
	end := time.Now()
	e.boxTime += end.Sub(start)
	e.marks = queryMarks(start, end, trace)
	rejected := qerr != nil && safety.IsRefusal(qerr)
	f := math.NaN()
	if qerr == nil {
		f = e.obj.Value(y)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			qerr = fmt.Errorf("objective of query %s is %v", key, f)
		}
	}
	if e.j != nil {
		finish := e.j.FinishOutcome
		if remeasure {
			finish = e.j.RemeasureOutcome
			e.remeasured++
		}
		o := journal.Outcome{Y: y, Objective: f, Err: qerr, Rejected: rejected, Marks: e.marks}
		if err := finish(ctx, id, o); err != nil {
			return 0, errors.Join(qerr, err)
		}
	}
	if rejected {
		return 0, &RejectedError{Key: key, Err: qerr}
	}
	if qerr != nil {
		return 0, fmt.Errorf("query %s: %w", key, qerr)
	}
	i, err := e.record(x, y)
	if err != nil || yhat == nil {
		return i, err
	}
	pe := e.predictionError(yhat, y)
	if e.j != nil {
		if err := e.j.Prediction(ctx, id, pe); err != nil {
			return i, err
		}
	}
	if e.fidelity != nil {
		if err := e.fidelity.ObservePrediction(context.WithoutCancel(ctx), pe); err != nil {
			return i, fmt.Errorf("after query %s: %w", key, err)
		}
	}
	return i, nil
}

// queryMarks is what the journal keeps of a query's timing: the loop's
// start and end around the marks the black box made.
func queryMarks(start, end time.Time, t *insitu.QueryTrace) []journal.Mark {
	inner := t.Marks()
	ms := make([]journal.Mark, 0, len(inner)+2)
	ms = append(ms, journal.Mark{Event: journal.MarkStart, At: start})
	for _, m := range inner {
		ms = append(ms, journal.Mark{Part: m.Part, Event: m.Event, At: m.At})
	}
	return append(ms, journal.Mark{Event: journal.MarkEnd, At: end})
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
