package safety

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/insitu-lab/insitu"
)

// SafeState puts the device in its safe state, once over the guard's life,
// and closes the guard: every later query fails with ErrClosed (or
// ErrTripped if it had tripped). Every call returns the outcome of that one
// safe-state call, waiting for it if it is running. ctx may already be
// cancelled: the device gets a context without its cancellation, bounded
// by safe_state_timeout.
func (g *Guard) SafeState(ctx context.Context) error {
	g.halt(&halt{err: fmt.Errorf("safety: %s: %w", g.name, ErrClosed), reason: ReasonClosed})
	return g.runSafeState(ctx)
}

// Close is SafeState, for defer at the end of a run.
func (g *Guard) Close(ctx context.Context) error { return g.SafeState(ctx) }

// Abort is the second Ctrl-C: refuse every query from now on, cancel the
// device query in flight (under the watchdog) or the rate wait, and run
// SafeState now without waiting for the query lock. SafeState still runs
// once; if it is already running Abort waits for it. The device may see
// SafeState while a cancelled query is still returning: its driver's own
// lock orders the two.
func (g *Guard) Abort() error {
	cause := fmt.Errorf("safety: %s: %w", g.name, ErrAborted)
	g.emit(KindAbort, "", 0, "abort: refusing queries, safe state now")
	if g.halt(tripped(g.name, cause)) {
		g.count(func(c *Counters) { c.Trips++ })
	}
	return g.runSafeState(context.Background())
}

// Do runs fn and always ends with SafeState: when fn returns (nil, an
// error, or after ctx is cancelled) and when it panics, in which case the
// panic continues after SafeState, as with a deferred Close. Do waits for
// fn to return; for a fn that does not honour ctx, call Abort.
func (g *Guard) Do(ctx context.Context, fn func(context.Context) error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			_ = g.SafeState(ctx) // reported by the safestate event; the panic is the news
			panic(p)
		}
		if serr := g.SafeState(ctx); serr != nil {
			err = errors.Join(err, serr)
		}
	}()
	return fn(ctx)
}

func tripped(name string, cause error) *halt {
	return &halt{err: fmt.Errorf("safety: %s: refusing query: %w; cause: %w", name, ErrTripped, cause), reason: ReasonTripped}
}

// halt makes every later query fail with h.err; the first call wins.
func (g *Guard) halt(h *halt) bool {
	if !g.stop.CompareAndSwap(nil, h) {
		return false
	}
	g.kill()
	return true
}

// trip reports cause, stops the guard and puts the device in its safe
// state. It returns cause, joined with a safe-state failure if any.
func (g *Guard) trip(ctx context.Context, kind Kind, name string, value float64, cause error) error {
	g.emit(kind, name, value, cause.Error())
	if g.halt(tripped(g.name, cause)) {
		g.count(func(c *Counters) { c.Trips++ })
	}
	if err := g.runSafeState(ctx); err != nil {
		return errors.Join(cause, err)
	}
	return cause
}

// runSafeState calls the device's SafeState exactly once. It runs on a
// goroutine so that a device that ignores its context cannot hold the
// caller past safe_state_timeout + grace.
func (g *Guard) runSafeState(ctx context.Context) error {
	g.ssOnce.Do(func() {
		ss, ok := g.inner.(insitu.SafeStater)
		if !ok {
			g.emit(KindSafeState, "", 0, "device has no safe state")
			return
		}
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), g.ssTimeout)
		defer cancel()
		g.count(func(c *Counters) { c.SafeStates++ })
		done := make(chan error, 1)
		go func() {
			defer func() {
				if p := recover(); p != nil {
					done <- fmt.Errorf("panic: %v", p)
				}
			}()
			done <- ss.SafeState(sctx)
		}()
		var err error
		select {
		case err = <-done:
		case <-sctx.Done():
			t := time.NewTimer(g.grace)
			select {
			case err = <-done:
				t.Stop()
			case <-t.C:
				err = fmt.Errorf("did not return within %v + %v grace", g.ssTimeout, g.grace)
			}
		}
		if err != nil {
			g.ssErr = fmt.Errorf("safety: %s: safe state: %w", g.name, err)
			g.emit(KindSafeState, "", 0, g.ssErr.Error())
			return
		}
		g.emit(KindSafeState, "", 0, "device in safe state")
	})
	return g.ssErr
}
