package live

import (
	"context"
	"sync"

	"github.com/insitu-lab/insitu"
)

// Hold pauses a run before its next query. Wrap puts it between the loop
// and the guard: while paused, the wrapper's Query blocks before it calls
// the guard, so the device receives nothing and stays in the state the
// last query left it in. Pausing is hold-only: the device is not put in its
// safe state, because the guard's safe state is final (it refuses every
// query after it) and a paused run must be able to continue.
//
// The loop journals a query's intent before it calls Query, so the query a
// pause holds is journaled as started and nothing more is journaled until
// Resume. When the run's context (done) ends while paused, the hold lets
// that one query through instead of failing it: a failed query would be a
// recorded failure that a resume cannot replay, whereas a query that
// finishes is exactly what one Ctrl-C does with the query in flight. The
// loop then sees its cancelled context and stops before the next one.
type Hold struct {
	done <-chan struct{}

	mu      sync.Mutex
	paused  bool
	resumed chan struct{} // closed by Resume; replaced by Pause
	waiting int           // queries blocked in the hold
	changed func()        // called after Pause and Resume, and when a query starts or stops waiting
}

// NewHold returns a hold that releases its queries when done is closed (the
// run's context ends). done may be nil.
func NewHold(done <-chan struct{}) *Hold {
	return &Hold{done: done}
}

// Pause holds every later query until Resume. It reports whether the hold
// changed (false if it was already paused).
func (h *Hold) Pause() bool {
	h.mu.Lock()
	if h.paused {
		h.mu.Unlock()
		return false
	}
	h.paused = true
	h.resumed = make(chan struct{})
	f := h.changed
	h.mu.Unlock()
	if f != nil {
		f()
	}
	return true
}

// Resume lets held and later queries through. It reports whether the hold
// changed (false if it was not paused).
func (h *Hold) Resume() bool {
	h.mu.Lock()
	if !h.paused {
		h.mu.Unlock()
		return false
	}
	h.paused = false
	close(h.resumed)
	f := h.changed
	h.mu.Unlock()
	if f != nil {
		f()
	}
	return true
}

// Paused reports whether the hold is paused, and whether a query is
// waiting in it (the run has reached the hold).
func (h *Hold) Paused() (paused, holding bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.paused, h.waiting > 0
}

// onChange sets a function called after every change of Paused; it must
// not block.
func (h *Hold) onChange(f func()) {
	h.mu.Lock()
	h.changed = f
	h.mu.Unlock()
}

// Wait returns at once unless the hold is paused; then it blocks until
// Resume, until the run's context ends (nil: the query goes ahead, see
// Hold), or until ctx is done (ctx's error).
func (h *Hold) Wait(ctx context.Context) error {
	h.mu.Lock()
	if !h.paused {
		h.mu.Unlock()
		return nil
	}
	h.waiting++
	f := h.changed
	h.mu.Unlock()
	if f != nil {
		f()
	}
	defer func() {
		h.mu.Lock()
		h.waiting--
		f := h.changed
		h.mu.Unlock()
		if f != nil {
			f()
		}
	}()
	for {
		h.mu.Lock()
		if !h.paused {
			h.mu.Unlock()
			return nil
		}
		resumed := h.resumed
		h.mu.Unlock()
		select {
		case <-resumed:
		case <-h.done:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Wrap returns box behind the hold. The wrapper has box's Spec, answers
// QueryBatch (box's own when it has one) and passes Skip on to a Sequenced
// box, so that a resumed run replays a seeded twin's noise as without the
// hold. It does not offer SafeState or a VJP: the guard's own are used for
// those.
func (h *Hold) Wrap(box insitu.BlackBox) insitu.BlackBox {
	return &held{h: h, box: box}
}

type held struct {
	h   *Hold
	box insitu.BlackBox
}

func (b *held) Spec() insitu.Spec { return b.box.Spec() }

func (b *held) Query(ctx context.Context, x []float64) ([]float64, error) {
	if err := b.h.Wait(ctx); err != nil {
		return nil, err
	}
	return b.box.Query(ctx, x)
}

func (b *held) QueryBatch(ctx context.Context, xs [][]float64) ([][]float64, error) {
	if err := b.h.Wait(ctx); err != nil {
		return nil, err
	}
	return insitu.QueryBatch(ctx, b.box, xs)
}

func (b *held) Skip(n uint64) {
	if s, ok := b.box.(insitu.Sequenced); ok {
		s.Skip(n)
	}
}
