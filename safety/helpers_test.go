package safety

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/insitu-lab/insitu"
)

// recorder is a test device: it keeps every input exactly as received (no
// copy, so a guard that reused or shared buffers would show up), answers
// with fn, and counts SafeState calls.
type recorder struct {
	spec  insitu.Spec
	clock Clock // when set, the time of every query is kept

	mu    sync.Mutex
	got   [][]float64
	times []time.Time
	fn    func(ctx context.Context, x []float64) ([]float64, error)

	safe       atomic.Int32
	safeCtxErr error
	safeHasDL  bool
	safeErr    error
}

// newRecorder has inputs x0..x3 in [-2, 2] and outputs y (the sum) and I
// (zero).
func newRecorder() *recorder {
	return &recorder{spec: insitu.Spec{
		Name: "cnon",
		In: insitu.Space{
			Names: []string{"x0", "x1", "x2", "x3"},
			Lower: []float64{-2, -2, -2, -2},
			Upper: []float64{2, 2, 2, 2},
		},
		Out: []string{"y", "I"},
	}}
}

func (r *recorder) Spec() insitu.Spec { return r.spec }

func (r *recorder) Query(ctx context.Context, x []float64) ([]float64, error) {
	r.mu.Lock()
	r.got = append(r.got, x)
	if r.clock != nil {
		r.times = append(r.times, r.clock.Now())
	}
	fn := r.fn
	r.mu.Unlock()
	if fn != nil {
		return fn(ctx, x)
	}
	s := 0.0
	for _, v := range x {
		s += v
	}
	return []float64{s, 0}, nil
}

func (r *recorder) SafeState(ctx context.Context) error {
	r.safe.Add(1)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.safeCtxErr = ctx.Err()
	_, r.safeHasDL = ctx.Deadline()
	return r.safeErr
}

func (r *recorder) inputs() [][]float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

func (r *recorder) last() []float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.got[len(r.got)-1]
}

func (r *recorder) setFn(fn func(ctx context.Context, x []float64) ([]float64, error)) {
	r.mu.Lock()
	r.fn = fn
	r.mu.Unlock()
}

// fakeClock advances only when slept on.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	slept time.Duration
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.slept += d
	c.mu.Unlock()
	return nil
}

func mustNew(t testing.TB, inner insitu.BlackBox, cfg Config, opts ...Option) *Guard {
	t.Helper()
	g, err := New(inner, cfg, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return g
}

// events collects events; safe for concurrent use.
type events struct {
	mu sync.Mutex
	ev []Event
}

func (e *events) sink(ev Event) {
	e.mu.Lock()
	e.ev = append(e.ev, ev)
	e.mu.Unlock()
}

func (e *events) count(k Kind) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, ev := range e.ev {
		if ev.Kind == k {
			n++
		}
	}
	return n
}
