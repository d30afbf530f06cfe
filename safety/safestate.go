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
//
// No device call starts once safe state has begun, and the device's
// SafeState waits up to the grace for a call already in flight (a query,
// possibly cancelled by Abort, or a VJP). A call still running after that,
// or one the watchdog had already abandoned, does not hold safe state back:
// SafeState runs anyway and the outcome is an ErrQueryInFlight error,
// since the device may act on that call after its safe state.
func (g *Guard) SafeState(ctx context.Context) error {
	g.halt(&stopReason{err: fmt.Errorf("safety: %s: %w", g.name, ErrClosed), reason: ReasonClosed})
	return g.runSafeState(ctx)
}

// Close is SafeState, for defer at the end of a run.
func (g *Guard) Close(ctx context.Context) error { return g.SafeState(ctx) }

// Abort is the second Ctrl-C: refuse every query from now on, cancel the
// device query in flight (under the watchdog) or the rate wait, and run
// SafeState now without waiting for the query lock. SafeState still runs once; if it is already
// running Abort waits for it. As always, SafeState first waits up to the
// grace for the cancelled query to return (see SafeState).
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
	g.run.Store(&ctx)
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

func tripped(name string, cause error) *stopReason {
	return &stopReason{err: fmt.Errorf("safety: %s: refusing query: %w; cause: %w", name, ErrTripped, cause), reason: ReasonTripped}
}

// halt makes every later query fail with h.err and closes the gate to the
// device, in one step under the gate's lock; the first call wins.
func (g *Guard) halt(h *stopReason) bool {
	g.gate.mu.Lock()
	won := g.stop.CompareAndSwap(nil, h)
	g.gate.closed = true
	g.gate.mu.Unlock()
	if won {
		g.kill()
	}
	return won
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

// runSafeState calls the device's SafeState exactly once, after waiting
// for the device calls in flight. The guard must already be halted (the
// gate closed), so no call starts meanwhile.
func (g *Guard) runSafeState(ctx context.Context) error {
	g.ssOnce.Do(func() {
		overlap := g.settle()
		var err error
		outcome := "device has no safe state"
		if ss, ok := g.inner.(insitu.SafeStater); ok {
			outcome = "device in safe state"
			if err = g.callSafeState(ctx, ss); err != nil {
				err = fmt.Errorf("safety: %s: safe state: %w", g.name, err)
				outcome = err.Error()
			}
		}
		if overlap != nil {
			outcome = overlap.Error() + "; " + outcome
		}
		g.ssErr = errors.Join(overlap, err)
		g.emit(KindSafeState, "", 0, outcome)
	})
	return g.ssErr
}

// settle waits up to the grace for the device calls in flight, except
// those the watchdog has already abandoned after their own grace, and
// describes any still running.
func (g *Guard) settle() error {
	n, abandoned := g.gate.wait(g.grace)
	if n == 0 {
		return nil
	}
	what := "device query"
	if n > 1 {
		what = fmt.Sprintf("%d device calls", n)
	}
	if n == abandoned {
		return fmt.Errorf("safety: %s: %s abandoned by the watchdog still in flight; safe state ran anyway: %w", g.name, what, ErrQueryInFlight)
	}
	return fmt.Errorf("safety: %s: %s still in flight after %v grace; safe state ran anyway: %w", g.name, what, g.grace, ErrQueryInFlight)
}

// callSafeState runs the device's SafeState on a goroutine, so that a
// device that ignores its context cannot hold the caller past
// safe_state_timeout + grace.
func (g *Guard) callSafeState(ctx context.Context, ss insitu.SafeStater) error {
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
	select {
	case err := <-done:
		return err
	case <-sctx.Done():
		t := time.NewTimer(g.grace)
		defer t.Stop()
		select {
		case err := <-done:
			return err
		case <-t.C:
			return fmt.Errorf("did not return within %v + %v grace", g.ssTimeout, g.grace)
		}
	}
}
