package safety

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// errDeadline marks the watchdog's own deadline, to tell it from the
// caller's.
var errDeadline = errors.New("watchdog deadline")

type result struct {
	y        []float64
	err      error
	panicked bool
	panicVal any
}

// call runs the device query, under the watchdog when there is a timeout.
// The caller has entered the gate; the device call leaves it when the
// device returns.
func (g *Guard) call(ctx context.Context, x []float64) ([]float64, string, error) {
	if g.timeout <= 0 {
		y, err := g.callDirect(ctx, x)
		if h := g.stop.Load(); h != nil { // aborted while in flight
			return nil, h.reason, h.err
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, ReasonCanceled, err
			}
			return nil, ReasonDevice, err
		}
		return y, "", nil
	}

	wctx, cancel := context.WithTimeoutCause(ctx, g.timeout, errDeadline)
	defer cancel()
	defer context.AfterFunc(g.life, cancel)() // Abort cancels the query in flight
	done := make(chan result, 1)              // buffered: an abandoned call can still finish
	gc := new(gateCall)
	go func() {
		var r result
		defer func() {
			if p := recover(); p != nil {
				r = result{panicked: true, panicVal: p}
			}
			// Out of the gate before the result is handed over, so a trip
			// on this result does not wait for its own call.
			g.gate.leave(gc)
			done <- r
		}()
		r.y, r.err = g.inner.Query(wctx, x)
	}()

	var r result
	late := false
	select {
	case r = <-done:
	case <-wctx.Done():
		// Give the device a grace period to notice the cancellation, so
		// SafeState does not race a query still talking to it.
		late = true
		t := time.NewTimer(g.grace)
		select {
		case r = <-done:
			t.Stop()
		case <-t.C:
			// Still running: the device state is unknown and a goroutine
			// may still drive it, so no further query may start. Safe
			// state does not wait for it again, but reports it.
			g.gate.abandon(gc)
			cause := fmt.Errorf("safety: %s: device query did not return within %v + %v grace: %w",
				g.name, g.timeout, g.grace, ErrWatchdog)
			if !errors.Is(context.Cause(wctx), errDeadline) {
				cause = fmt.Errorf("safety: %s: device query did not return within %v of cancellation: %w",
					g.name, g.grace, ErrWatchdog)
			}
			return nil, string(KindWatchdog), g.trip(ctx, KindWatchdog, "", g.timeout.Seconds(), cause)
		}
	}
	if r.panicked {
		g.trip(ctx, KindPanic, "", 0, fmt.Errorf("safety: %s: device panicked: %v", g.name, r.panicVal))
		panic(r.panicVal)
	}
	if (late || r.err != nil) && errors.Is(context.Cause(wctx), errDeadline) {
		cause := fmt.Errorf("safety: %s: device query overran its %v timeout: %w", g.name, g.timeout, ErrWatchdog)
		return nil, string(KindWatchdog), g.trip(ctx, KindWatchdog, "", g.timeout.Seconds(), cause)
	}
	if h := g.stop.Load(); h != nil { // aborted while in flight
		return nil, h.reason, h.err
	}
	if r.err != nil {
		if ctx.Err() != nil {
			return nil, ReasonCanceled, r.err
		}
		return nil, ReasonDevice, r.err
	}
	return r.y, "", nil
}

// callDirect queries on the caller's goroutine; a panicking device trips
// the guard before the panic goes on.
func (g *Guard) callDirect(ctx context.Context, x []float64) ([]float64, error) {
	defer func() {
		g.gate.leave(nil) // first, so a trip here does not wait for this call
		if p := recover(); p != nil {
			g.trip(ctx, KindPanic, "", 0, fmt.Errorf("safety: %s: device panicked: %v", g.name, p))
			panic(p)
		}
	}()
	return g.inner.Query(ctx, x)
}
