package safety

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestGate(t *testing.T) {
	const long = time.Hour // a wait that must not run out
	var gt gate
	if n, a := gt.wait(long); n != 0 || a != 0 {
		t.Errorf("empty gate: %d in flight, %d abandoned", n, a)
	}

	// wait returns as soon as the call leaves.
	if !gt.enter() {
		t.Fatal("open gate refused a call")
	}
	go func() { time.Sleep(10 * time.Millisecond); gt.leave(nil) }()
	if n, a := gt.wait(long); n != 0 || a != 0 {
		t.Errorf("after leave: %d in flight, %d abandoned", n, a)
	}

	// A call that does not leave is waited for up to the grace.
	gt.enter()
	t0 := time.Now()
	if n, a := gt.wait(20 * time.Millisecond); n != 1 || a != 0 || time.Since(t0) < 20*time.Millisecond {
		t.Errorf("stuck call: %d in flight, %d abandoned after %v", n, a, time.Since(t0))
	}
	gt.leave(nil)

	// An abandoned call is not waited for again, and leaves all the same.
	c := new(gateCall)
	gt.enter()
	gt.abandon(c)
	if n, a := gt.wait(long); n != 1 || a != 1 {
		t.Errorf("abandoned call: %d in flight, %d abandoned", n, a)
	}
	gt.leave(c)
	if n, a := gt.wait(long); n != 0 || a != 0 {
		t.Errorf("abandoned call left: %d in flight, %d abandoned", n, a)
	}
	// Abandoning a call that already left changes nothing.
	c = new(gateCall)
	gt.enter()
	gt.leave(c)
	gt.abandon(c)
	if n, a := gt.wait(long); n != 0 || a != 0 {
		t.Errorf("abandoned after leaving: %d in flight, %d abandoned", n, a)
	}

	// Abandoning the last call waited for ends the wait.
	c = new(gateCall)
	gt.enter()
	go func() { time.Sleep(10 * time.Millisecond); gt.abandon(c) }()
	if n, a := gt.wait(long); n != 1 || a != 1 {
		t.Errorf("abandoned while waiting: %d in flight, %d abandoned", n, a)
	}
	gt.leave(c)

	gt.closed = true
	if gt.enter() {
		t.Error("closed gate admitted a call")
	}
}

// Abort does not put the device in its safe state while a direct query is
// in flight: it waits for it (up to the grace).
func TestAbortWaitsForDirectQuery(t *testing.T) {
	rec := newRecorder()
	started, release := make(chan struct{}), make(chan struct{})
	rec.fn = func(context.Context, []float64) ([]float64, error) {
		close(started)
		<-release
		if rec.safe.Load() != 0 {
			t.Error("SafeState ran while the query was in flight")
		}
		return []float64{0, 0}, nil
	}
	g := mustNew(t, rec, Config{Grace: time.Minute})
	qerr := make(chan error, 1)
	go func() {
		_, err := g.Query(context.Background(), []float64{0, 0, 0, 0})
		qerr <- err
	}()
	<-started
	aerr := make(chan error, 1)
	go func() { aerr <- g.Abort() }()
	time.Sleep(20 * time.Millisecond)
	if rec.safe.Load() != 0 {
		t.Fatal("Abort ran SafeState with a query in flight")
	}
	close(release)
	if err := <-aerr; err != nil {
		t.Errorf("Abort: %v", err)
	}
	if err := <-qerr; !errors.Is(err, ErrAborted) {
		t.Errorf("the query in flight during Abort: %v", err)
	}
	if rec.safe.Load() != 1 {
		t.Errorf("SafeState %d times", rec.safe.Load())
	}
}

// A VJP is a device call: safe state waits for one in flight, reports one
// still running after the grace, and none starts afterwards.
func TestSafeStateWaitsForVJP(t *testing.T) {
	for _, stuck := range []bool{false, true} {
		dev := &blockingVJP{diffRecorder{newRecorder()}, make(chan struct{}), make(chan struct{})}
		grace := time.Minute
		if stuck {
			grace = 20 * time.Millisecond
		}
		var ev events
		g := mustNew(t, dev, Config{Grace: grace}, WithEvents(ev.sink))
		d, _ := g.Differentiable()
		verr := make(chan error, 1)
		go func() {
			_, err := d.VJP(context.Background(), []float64{0, 0, 0, 0}, []float64{1, 0})
			verr <- err
		}()
		<-dev.started
		cerr := make(chan error, 1)
		go func() { cerr <- g.Close(context.Background()) }()
		if !stuck {
			time.Sleep(20 * time.Millisecond)
			if dev.safe.Load() != 0 {
				t.Fatal("SafeState ran with a VJP in flight")
			}
			close(dev.release)
			if err := <-cerr; err != nil {
				t.Errorf("Close: %v", err)
			}
		} else {
			err := <-cerr
			if !errors.Is(err, ErrQueryInFlight) || !strings.Contains(err.Error(), "still in flight after 20ms grace; safe state ran anyway") {
				t.Errorf("Close with a VJP stuck past the grace: %v", err)
			}
			close(dev.release)
		}
		if err := <-verr; err != nil {
			t.Errorf("VJP: %v", err)
		}
		if _, err := d.VJP(context.Background(), []float64{0, 0, 0, 0}, []float64{1, 0}); !errors.Is(err, ErrClosed) {
			t.Errorf("VJP after safe state: %v", err)
		}
		if dev.safe.Load() != 1 || ev.count(KindSafeState) != 1 {
			t.Errorf("SafeState %d times, %d events", dev.safe.Load(), ev.count(KindSafeState))
		}
	}
}

type blockingVJP struct {
	diffRecorder
	started, release chan struct{}
}

func (b *blockingVJP) VJP(ctx context.Context, x, v []float64) ([]float64, error) {
	close(b.started)
	<-b.release
	return b.diffRecorder.VJP(ctx, x, v)
}

// A query the watchdog abandoned is not waited for a second time by safe
// state, which says it ran with the query still in flight.
func TestWatchdogAbandonReported(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	rec := blockingRecorder(release)
	var ev events
	g := mustNew(t, rec, Config{Timeout: 10 * time.Millisecond, Grace: 10 * time.Millisecond}, WithEvents(ev.sink))
	_, err := g.Query(context.Background(), []float64{0, 0, 0, 0})
	if !errors.Is(err, ErrWatchdog) || !errors.Is(err, ErrQueryInFlight) {
		t.Fatalf("err = %v, want ErrWatchdog and ErrQueryInFlight", err)
	}
	const want = "safety: cnon: device query abandoned by the watchdog still in flight; safe state ran anyway: " +
		"safe state overlapped a device call; device in safe state"
	ev.mu.Lock()
	defer ev.mu.Unlock()
	found := false
	for _, e := range ev.ev {
		if e.Kind == KindSafeState {
			found = true
			if e.Detail != want {
				t.Errorf("safestate event %q, want %q", e.Detail, want)
			}
		}
	}
	if !found {
		t.Error("no safestate event")
	}
}
