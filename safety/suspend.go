package safety

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/insitu-lab/insitu"
)

// ErrSuspended marks a query a suspender held that could not be made
// again: the run was interrupted while suspended, or the suspension
// lasted longer than give_up_after (then the error also wraps
// ErrInterlock). The query's measurement never validly happened.
var ErrSuspended = errors.New("run suspended by an interlock")

// suspender is an interlock's suspend action, compiled.
type suspender struct {
	safe        bool // hold the devices in their safe state
	poll        time.Duration
	resumeAfter time.Duration
	giveUpAfter time.Duration // 0: never
}

// suspension is what checkOutputs returns when a suspender's output is
// out of range: interlock il saw value, what describes how.
type suspension struct {
	il    int
	value float64
	what  string
}

func (s *suspension) Error() string { return "suspended: output " + s.what }

// runContext returns the context Do runs under (nil outside Do): a
// suspension ends when it is cancelled, since the query's own context
// does not carry the run's interruption (the loop lets a query in flight
// finish).
func (g *Guard) runContext() context.Context {
	if c := g.run.Load(); c != nil {
		return *c
	}
	return nil
}

// suspend holds the query whose output s says is out of range: no query
// reaches the device while the guard reads the outputs every poll; nil
// once the suspender's output (and every other suspender's) has been in
// range for resume_after, when the caller makes the query again. It trips
// the guard when a trip interlock fires on a reading, a reading fails, or
// the suspension outlasts give_up_after; it returns an ErrSuspended error
// when the run is interrupted meanwhile.
func (g *Guard) suspend(ctx context.Context, s *suspension) error {
	il := g.interlocks[s.il]
	sp := il.suspend
	out := g.outs[il.out]
	start := g.clock.Now()
	g.count(func(c *Counters) { c.Suspends++ })
	defer func() {
		d := g.clock.Now().Sub(start)
		g.count(func(c *Counters) { c.Suspended += d })
	}()
	hold := "the devices stay as the last query left them"
	if sp.safe {
		hold = "the devices go to their safe state"
	}
	g.emit(KindSuspend, out, s.value, fmt.Sprintf("interlock %s: output %s = %v %s: run suspended, %s; reading the outputs every %v until it has been back in range for %v",
		il.label, out, s.value, s.what, hold, sp.poll, sp.resumeAfter))
	if sp.safe {
		if err := g.holdSafe(ctx); err != nil {
			cause := fmt.Errorf("safety: %s: interlock %s: safe state while suspended: %w: %w", g.name, il.label, err, ErrInterlock)
			return g.trip(ctx, KindSuspend, out, s.value, cause)
		}
	}
	rd := g.inner.(insitu.Reader) // New checks that it is one
	var since time.Time           // first reading of the present run of in-range ones
	for {
		if err := g.pause(ctx, sp.poll, il.label); err != nil {
			return err
		}
		now := g.clock.Now()
		if sp.giveUpAfter > 0 && now.Sub(start) >= sp.giveUpAfter {
			cause := fmt.Errorf("safety: %s: interlock %s: output %s out of range for %v, longer than give_up_after %v: %w: %w",
				g.name, il.label, out, now.Sub(start).Round(time.Millisecond), sp.giveUpAfter, ErrSuspended, ErrInterlock)
			return g.trip(ctx, KindSuspend, out, now.Sub(start).Seconds(), cause)
		}
		y, err := g.read(ctx, rd)
		if err != nil {
			if h := g.stop.Load(); h != nil {
				return h.err
			}
			cause := fmt.Errorf("safety: %s: interlock %s: reading the outputs while suspended: %w", g.name, il.label, err)
			return g.trip(ctx, KindSuspend, out, 0, cause)
		}
		if len(y) != len(g.outs) {
			cause := fmt.Errorf("safety: %s: interlock %s: a reading while suspended has %d outputs, want %d: %w", g.name, il.label, len(y), len(g.outs), ErrOutput)
			return g.trip(ctx, KindSuspend, out, float64(len(y)), cause)
		}
		if err := g.checkTrips(ctx, y); err != nil {
			return err
		}
		if g.suspended(y) != nil {
			since = time.Time{}
			continue
		}
		if since.IsZero() {
			since = now
		}
		if now.Sub(since) >= sp.resumeAfter {
			break
		}
	}
	if sp.safe {
		// The devices left their state for the safe state: the next step
		// is limited from where a new run would start.
		g.last = slices.Clone(g.initial)
	}
	g.emit(KindResume, out, g.clock.Now().Sub(start).Seconds(), fmt.Sprintf("interlock %s: output %s back in range for %v: resuming after %v suspended; the held query is made again",
		il.label, out, sp.resumeAfter, g.clock.Now().Sub(start).Round(time.Millisecond)))
	return nil
}

// pause waits d on the guard's clock, unless the guard stops or the run is
// interrupted first.
func (g *Guard) pause(ctx context.Context, d time.Duration, label string) error {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(g.life, cancel)()
	run := g.runContext()
	if run != nil {
		defer context.AfterFunc(run, cancel)()
	}
	err := g.clock.Sleep(sctx, d)
	if h := g.stop.Load(); h != nil {
		return h.err
	}
	switch {
	case run != nil && run.Err() != nil:
		return fmt.Errorf("safety: %s: interlock %s: interrupted while suspended (%v): %w: %w", g.name, label, context.Cause(run), ErrSuspended, run.Err())
	case err != nil:
		return fmt.Errorf("safety: %s: interlock %s: interrupted while suspended: %w: %w", g.name, label, ErrSuspended, err)
	}
	return nil
}

// read reads the outputs without applying an input, as a device call:
// none starts once the guard has stopped, safe state waits for it, and
// the watchdog's timeout bounds it.
func (g *Guard) read(ctx context.Context, rd insitu.Reader) ([]float64, error) {
	if !g.gate.enter() {
		return nil, g.Err()
	}
	defer g.gate.leave(nil)
	if g.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, g.timeout)
		defer cancel()
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(g.life, cancel)()
	return rd.Read(rctx)
}

// holdSafe puts the device in its safe state for a suspension. It is not
// the guard's final safe state: the guard goes on accepting queries.
func (g *Guard) holdSafe(ctx context.Context) error {
	ss, ok := g.inner.(insitu.SafeStater)
	if !ok {
		return errors.New("the device has no safe state")
	}
	if !g.gate.enter() {
		return g.Err()
	}
	defer g.gate.leave(nil)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), g.ssTimeout)
	defer cancel()
	return ss.SafeState(sctx)
}
