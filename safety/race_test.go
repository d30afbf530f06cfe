package safety

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/insitu-lab/insitu"
)

// raceDevice is an independent witness of how device queries interleave
// with SafeState: under its own lock it records queries that start while
// SafeState runs or after it returned, SafeState beginning while a query
// is in flight, and SafeState calls.
type raceDevice struct {
	spec  insitu.Spec
	query func(ctx context.Context, k int) ([]float64, error) // behaviour of the k-th query

	mu       sync.Mutex
	n        int // queries started
	inFlight int
	ss       int       // ssBefore, ssRunning, ssDone
	ssBegin  time.Time // when SafeState first began

	startedDuring atomic.Int32 // queries started while SafeState ran
	startedAfter  atomic.Int32 // queries started after SafeState returned
	overlapped    atomic.Int32 // SafeState began with a query in flight, or a query started during it
	safeStates    atomic.Int32
}

const (
	ssBefore = iota
	ssRunning
	ssDone
)

func (d *raceDevice) Spec() insitu.Spec { return d.spec }

func (d *raceDevice) Query(ctx context.Context, _ []float64) ([]float64, error) {
	d.mu.Lock()
	k := d.n
	d.n++
	switch d.ss {
	case ssRunning:
		d.startedDuring.Add(1)
		d.overlapped.Add(1)
	case ssDone:
		d.startedAfter.Add(1)
	}
	d.inFlight++
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		d.inFlight--
		d.mu.Unlock()
	}()
	return d.query(ctx, k)
}

func (d *raceDevice) SafeState(context.Context) error {
	d.safeStates.Add(1)
	d.mu.Lock()
	if d.inFlight > 0 {
		d.overlapped.Add(1)
	}
	if d.ss == ssBefore {
		d.ssBegin = time.Now()
	}
	d.ss = ssRunning
	d.mu.Unlock()
	jitter(100 * time.Microsecond) // hold the window open
	d.mu.Lock()
	d.ss = ssDone
	d.mu.Unlock()
	return nil
}

// drain waits for abandoned queries to return, so a trial leaves nothing
// running behind it.
func (d *raceDevice) drain() {
	for range 2000 {
		d.mu.Lock()
		n := d.inFlight
		d.mu.Unlock()
		if n == 0 {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

func jitter(max time.Duration) { time.Sleep(rand.N(max + 1)) }

type raceKind int

const (
	raceAbort         raceKind = iota // Abort from another goroutine at a random moment
	raceCancel                        // the run's context cancelled at a random moment
	raceInterlock                     // an output crosses an interlock at a random query
	raceWatchdog                      // a random query overruns the timeout (it honours ctx)
	raceStuckAbort                    // Abort while a query ignores ctx until safe state is over
	raceStuckWatchdog                 // the watchdog abandons a query that ignores ctx
)

type raceMode struct {
	name    string
	kind    raceKind
	timeout time.Duration // 0: the device is called on the caller's goroutine
	grace   time.Duration
	trials  int
}

// raceStats counts trials, not events.
type raceStats struct {
	trials, queries                   int
	post, startedDuring, startedAfter int // a query started after SafeState began
	overlap, reported, unreported     int // a query was in flight during SafeState; the guard said so or not
	notOnce                           int // SafeState not called exactly once
	stuck, stuckUnreported            int // a query stuck through safe state; the guard did not say so
	early                             int // SafeState began less than the grace after Abort, a query stuck
	errMissing                        int // the guard reported an overlap in its event but not in Do's error
}

func (s raceStats) String() string {
	return fmt.Sprintf("post-safe-state starts %d/%d (during %d, after %d), overlaps %d/%d (reported %d, unreported %d), "+
		"SafeState≠1 %d/%d, stuck queries %d (unreported %d), safe state earlier than grace %d, "+
		"overlap missing from Do's error %d; %d device queries",
		s.post, s.trials, s.startedDuring, s.startedAfter, s.overlap, s.trials, s.reported, s.unreported,
		s.notOnce, s.trials, s.stuck, s.stuckUnreported, s.early, s.errMissing, s.queries)
}

func (s *raceStats) add(o raceStats) {
	s.trials += o.trials
	s.queries += o.queries
	s.post += o.post
	s.startedDuring += o.startedDuring
	s.startedAfter += o.startedAfter
	s.overlap += o.overlap
	s.reported += o.reported
	s.unreported += o.unreported
	s.notOnce += o.notOnce
	s.stuck += o.stuck
	s.stuckUnreported += o.stuckUnreported
	s.early += o.early
	s.errMissing += o.errMissing
}

// runRaceTrial runs one loop under Do that queries until an error, with
// the mode's way of ending it, and returns what the device witnessed.
func runRaceTrial(m raceMode) (raceStats, error) {
	dev := &raceDevice{spec: newRecorder().spec}
	at := rand.IntN(8) // the query that trips or sticks
	// A stuck query ignores ctx until the safe state is over: until Abort
	// returns, or Do when the watchdog abandons it.
	stuck, release := make(chan struct{}), make(chan struct{})
	var stuckOnce, releaseOnce sync.Once
	unstick := func() { releaseOnce.Do(func() { close(release) }) }
	defer unstick()
	dev.query = func(ctx context.Context, k int) ([]float64, error) {
		switch {
		case k == at && m.kind == raceInterlock:
			jitter(200 * time.Microsecond)
			return []float64{0, 1}, nil
		case k == at && m.kind == raceWatchdog:
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(10 * time.Second):
				return []float64{0, 0}, nil
			}
		case k == at && (m.kind == raceStuckAbort || m.kind == raceStuckWatchdog):
			stuckOnce.Do(func() { close(stuck) })
			<-release
			return []float64{0, 0}, nil
		}
		jitter(200 * time.Microsecond)
		return []float64{0, 0}, nil
	}
	var ev events
	g, err := New(dev, Config{
		Timeout:    m.timeout,
		Grace:      m.grace,
		Interlocks: []Interlock{{Name: "hot", Output: "I", Above: new(0.5)}},
	}, WithEvents(ev.sink))
	if err != nil {
		return raceStats{}, err
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	var abortAt time.Time
	switch m.kind {
	case raceAbort:
		wg.Go(func() { jitter(time.Millisecond); _ = g.Abort() })
	case raceCancel:
		wg.Go(func() { jitter(time.Millisecond); cancel() })
	case raceInterlock, raceWatchdog:
		if rand.IntN(2) == 0 { // half the trips race an Abort
			wg.Go(func() { jitter(2 * time.Millisecond); _ = g.Abort() })
		}
	case raceStuckAbort:
		wg.Go(func() {
			<-stuck
			jitter(200 * time.Microsecond)
			abortAt = time.Now()
			_ = g.Abort()
			unstick()
		})
	}
	doErr := g.Do(ctx, func(ctx context.Context) error {
		x := []float64{0, 0, 0, 0}
		for {
			if _, err := g.Query(ctx, x); err != nil {
				return err
			}
		}
	})
	unstick()
	wg.Wait()
	dev.drain()

	s := raceStats{trials: 1}
	dev.mu.Lock()
	s.queries = dev.n
	ssBegin := dev.ssBegin
	dev.mu.Unlock()
	if dev.startedDuring.Load() > 0 {
		s.startedDuring = 1
	}
	if dev.startedAfter.Load() > 0 {
		s.startedAfter = 1
	}
	if s.startedDuring+s.startedAfter > 0 {
		s.post = 1
	}
	if dev.safeStates.Load() != 1 {
		s.notOnce = 1
	}
	ev.mu.Lock()
	for _, e := range ev.ev {
		if e.Kind == KindSafeState && strings.Contains(e.Detail, "still in flight") {
			s.reported = 1
		}
	}
	ev.mu.Unlock()
	if dev.overlapped.Load() > 0 {
		s.overlap = 1
		if s.reported == 0 {
			s.unreported = 1
		}
	}
	if s.reported == 1 && !errors.Is(doErr, ErrQueryInFlight) {
		s.errMissing = 1
	}
	select {
	case <-stuck:
		s.stuck = 1
		if s.reported == 0 {
			s.stuckUnreported = 1
		}
		if m.kind == raceStuckAbort && ssBegin.Sub(abortAt) < m.grace {
			s.early = 1
		}
	default:
	}
	return s, nil
}

// TestNoQueryAroundSafeState races the ways a run ends against a query
// loop and checks, on a device that keeps its own record, that no device
// query starts once safe state has begun, that none is in flight while
// SafeState runs (unless it ignored its context past the grace, and then
// the guard says so), and that SafeState runs exactly once.
func TestNoQueryAroundSafeState(t *testing.T) {
	t.Parallel()
	const (
		trials      = 300
		stuckTrials = 100
		workers     = 4
		long        = time.Second // a timeout or grace that never expires here
	)
	modes := []raceMode{
		{name: "abort/direct", kind: raceAbort, grace: long, trials: trials},
		{name: "abort/watchdog", kind: raceAbort, timeout: long, grace: long, trials: trials},
		{name: "cancel/direct", kind: raceCancel, grace: long, trials: trials},
		{name: "cancel/watchdog", kind: raceCancel, timeout: long, grace: long, trials: trials},
		{name: "interlock/direct", kind: raceInterlock, grace: long, trials: trials},
		{name: "interlock/watchdog", kind: raceInterlock, timeout: long, grace: long, trials: trials},
		// A watchdog trip needs a timeout, so it has no direct variant.
		{name: "watchdog-trip", kind: raceWatchdog, timeout: 5 * time.Millisecond, grace: long, trials: trials},
		{name: "stuck-abort/direct", kind: raceStuckAbort, grace: 5 * time.Millisecond, trials: stuckTrials},
		{name: "stuck-abort/watchdog", kind: raceStuckAbort, timeout: long, grace: 5 * time.Millisecond, trials: stuckTrials},
		{name: "stuck-watchdog-trip", kind: raceStuckWatchdog, timeout: 5 * time.Millisecond, grace: 5 * time.Millisecond, trials: stuckTrials},
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			var (
				mu  sync.Mutex
				sum raceStats
				wg  sync.WaitGroup
			)
			next := atomic.Int32{}
			for range workers {
				wg.Go(func() {
					for next.Add(1) <= int32(m.trials) {
						s, err := runRaceTrial(m)
						if err != nil {
							t.Error(err)
							return
						}
						mu.Lock()
						sum.add(s)
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			stuck := m.kind == raceStuckAbort || m.kind == raceStuckWatchdog
			bad := sum.post > 0 || sum.notOnce > 0 || sum.unreported > 0 || sum.errMissing > 0 ||
				sum.stuckUnreported > 0 || sum.early > 0 ||
				!stuck && sum.overlap > 0 ||
				stuck && sum.stuck < sum.trials/2 // the abandoned path must actually be exercised
			if bad {
				t.Errorf("%s: %v", m.name, sum)
			} else {
				t.Logf("%s: %v", m.name, sum)
			}
		})
	}
}
