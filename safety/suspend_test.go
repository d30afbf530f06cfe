package safety

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/insitu-lab/insitu"
)

// beam is a test device behind a suspender: y = x0 + x1, and a beam output
// that is 1 while the light is on. The light goes off when query number
// offAt (counting from 1) is made and comes back at fake time onAt; a
// flicker puts it on for [flickerOn, flickerOff) in between. Every device
// call is recorded with its fake time.
type beam struct {
	clock *fakeClock
	offAt int
	onAt  time.Time
	// flicker, when set, is an interval inside the outage with the light on.
	flickerOn, flickerOff time.Time

	mu      sync.Mutex
	queries []call
	reads   []call
	safe    []time.Time
	off     bool
	onRead  func(n int) // called with the number of reads so far
}

type call struct {
	at time.Time
	x  []float64
	on bool
}

func (b *beam) Spec() insitu.Spec {
	in := insitu.Box(2, -5, 5)
	in.Names = []string{"x0", "x1"}
	return insitu.Spec{Name: "bench", In: in, Out: []string{"y", "beam"}}
}

// lit says whether the light is on now; b.mu is held.
func (b *beam) lit(now time.Time) bool {
	if !b.off {
		return true
	}
	if !b.flickerOn.IsZero() && !now.Before(b.flickerOn) && now.Before(b.flickerOff) {
		return true
	}
	if !now.Before(b.onAt) {
		b.off = false
		return true
	}
	return false
}

func (b *beam) Query(ctx context.Context, x []float64) ([]float64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.clock.Now()
	insitu.MarkQuery(ctx, "", insitu.MarkMeasured, now)
	if len(b.queries)+1 == b.offAt {
		b.off = true
	}
	on := b.lit(now)
	b.queries = append(b.queries, call{now, append([]float64(nil), x...), on})
	y := x[0] + x[1]
	if !on {
		y = 0 // what a camera sees in the dark
	}
	return []float64{y, map[bool]float64{true: 1, false: 0}[on]}, nil
}

func (b *beam) Read(ctx context.Context) ([]float64, error) {
	b.mu.Lock()
	now := b.clock.Now()
	insitu.MarkQuery(ctx, "", insitu.MarkMeasured, now)
	on := b.lit(now)
	b.reads = append(b.reads, call{at: now, on: on})
	n, f := len(b.reads), b.onRead
	b.mu.Unlock()
	if f != nil {
		f(n)
	}
	return []float64{0, map[bool]float64{true: 1, false: 0}[on]}, nil
}

func (b *beam) SafeState(context.Context) error {
	b.mu.Lock()
	b.safe = append(b.safe, b.clock.Now())
	b.mu.Unlock()
	return nil
}

func suspendConfig(il Interlock) Config {
	il.Output, il.Below, il.Action = "beam", new(0.5), ActionSuspend
	return Config{Interlocks: []Interlock{il}}
}

func points(n int) [][]float64 {
	xs := make([][]float64, n)
	for i := range xs {
		xs[i] = []float64{float64(i) / 4, 1}
	}
	return xs
}

// A suspender holds the query that saw the beam off: nothing reaches the
// device but readings until the beam has been back for resume_after, then
// that query is made again, and every query's result is a valid one.
func TestSuspendHoldsAndResumes(t *testing.T) {
	clock := newFakeClock()
	t0 := clock.Now()
	dev := &beam{clock: clock, offAt: 5, onAt: t0.Add(1050 * time.Millisecond)}
	var ev events
	g := mustNew(t, dev, suspendConfig(Interlock{Name: "laser", Poll: 100 * time.Millisecond, ResumeAfter: 300 * time.Millisecond}),
		WithClock(clock), WithEvents(ev.sink))
	xs := points(10)
	traces := make([]insitu.QueryTrace, len(xs))
	for i, x := range xs {
		y, err := g.Query(insitu.WithQueryTrace(context.Background(), &traces[i]), x)
		if err != nil {
			t.Fatalf("query %d: %v", i, err)
		}
		if y[1] != 1 || y[0] != x[0]+x[1] {
			t.Fatalf("query %d returned %v, a measurement in the dark", i, y)
		}
	}
	// The device got the ten queries in order, the fifth twice: once in
	// the dark, once after the resume.
	if len(dev.queries) != 11 {
		t.Fatalf("%d device queries, want 11", len(dev.queries))
	}
	for i, q := range dev.queries {
		want := min(i, 4)
		if i > 4 {
			want = i - 1
		}
		if !sameBits(q.x, xs[want]) {
			t.Errorf("device query %d was %v, want %v", i, q.x, xs[want])
		}
	}
	held, remade := dev.queries[4], dev.queries[5]
	if held.on || !remade.on {
		t.Fatalf("the held query saw the light %v, the remade one %v", held.on, remade.on)
	}
	// The held query's trace has the marks of the try that counted only:
	// not the held one's, nor the readings'.
	if ms := traces[4].Marks(); len(ms) != 1 || !ms[0].At.Equal(remade.at) {
		t.Errorf("the held query's marks %+v, want the remade query's only (at %v)", ms, remade.at.Sub(t0))
	}
	if ms := traces[3].Marks(); len(ms) != 1 || !ms[0].At.Equal(dev.queries[3].at) {
		t.Errorf("query 3's marks %+v", ms)
	}
	// Readings only while suspended, every poll; the resume only once the
	// beam had been on for resume_after, at the first reading that says so.
	if len(dev.reads) == 0 {
		t.Fatal("no reading while suspended")
	}
	var firstOn time.Time
	for i, r := range dev.reads {
		if !r.at.After(held.at) || r.at.After(remade.at) {
			t.Errorf("reading %d at %v, outside the suspension [%v, %v]", i, r.at.Sub(t0), held.at.Sub(t0), remade.at.Sub(t0))
		}
		if i > 0 && r.at.Sub(dev.reads[i-1].at) != 100*time.Millisecond {
			t.Errorf("readings %d and %d %v apart, want the poll 100ms", i-1, i, r.at.Sub(dev.reads[i-1].at))
		}
		if r.on && firstOn.IsZero() {
			firstOn = r.at
		}
	}
	if firstOn.IsZero() || remade.at.Before(firstOn.Add(300*time.Millisecond)) {
		t.Errorf("resumed at %v, the beam back at %v: before resume_after", remade.at.Sub(t0), firstOn.Sub(t0))
	}
	if last := dev.reads[len(dev.reads)-1]; !last.at.Equal(firstOn.Add(300 * time.Millisecond)) {
		t.Errorf("resumed on the reading at %v, want the first at resume_after (%v)", last.at.Sub(t0), firstOn.Add(300*time.Millisecond).Sub(t0))
	}
	c := g.Counters()
	if c.Passed != 10 || c.RejectedTotal() != 0 || c.Inner != 11 || c.Suspends != 1 || c.Suspended != remade.at.Sub(held.at) || c.Trips != 0 {
		t.Errorf("counters %+v", c)
	}
	if ev.count(KindSuspend) != 1 || ev.count(KindResume) != 1 || len(dev.safe) != 0 {
		t.Errorf("%d suspend and %d resume events, %d safe states", ev.count(KindSuspend), ev.count(KindResume), len(dev.safe))
	}
	for _, e := range ev.ev {
		if e.Kind == KindSuspend && (e.Name != "beam" || !strings.Contains(e.Detail, "laser") || !strings.Contains(e.Detail, "stay as the last query")) {
			t.Errorf("suspend event %+v", e)
		}
	}
}

// A flicker shorter than resume_after does not resume the run.
func TestSuspendNeedsResumeAfterInRange(t *testing.T) {
	clock := newFakeClock()
	t0 := clock.Now()
	dev := &beam{clock: clock, offAt: 2, onAt: t0.Add(2 * time.Second),
		flickerOn: t0.Add(500 * time.Millisecond), flickerOff: t0.Add(700 * time.Millisecond)}
	g := mustNew(t, dev, suspendConfig(Interlock{Poll: 100 * time.Millisecond, ResumeAfter: 300 * time.Millisecond}), WithClock(clock))
	for i, x := range points(3) {
		if _, err := g.Query(context.Background(), x); err != nil {
			t.Fatalf("query %d: %v", i, err)
		}
	}
	flick := 0
	for _, r := range dev.reads {
		if r.on && r.at.Before(t0.Add(time.Second)) {
			flick++
		}
	}
	if flick == 0 {
		t.Fatal("no reading saw the flicker: the test does not test it")
	}
	if remade := dev.queries[2]; remade.at.Before(t0.Add(2300 * time.Millisecond)) {
		t.Errorf("resumed at %v: the 200ms flicker counted as back in range", remade.at.Sub(t0))
	}
}

// hold: safe puts the devices in their safe state while suspended; the
// held query is then made from the safe state, ramped from the initial
// state under max_step.
func TestSuspendHoldSafe(t *testing.T) {
	clock := newFakeClock()
	dev := &beam{clock: clock, offAt: 3, onAt: clock.Now().Add(time.Second)}
	cfg := suspendConfig(Interlock{Hold: HoldSafe, Poll: 200 * time.Millisecond})
	cfg.MaxStep, cfg.SlewMode = All(0.5), ModeRamp
	cfg.Initial = map[string]float64{"x0": 0, "x1": 0}
	g := mustNew(t, dev, cfg, WithClock(clock))
	xs := [][]float64{{0.5, 0}, {0.5, 0.5}, {1, 0.5}, {1, 1}}
	for i, x := range xs {
		if _, err := g.Query(context.Background(), x); err != nil {
			t.Fatalf("query %d: %v", i, err)
		}
	}
	if len(dev.safe) != 1 || !dev.safe[0].After(dev.queries[2].at.Add(-time.Nanosecond)) {
		t.Fatalf("safe states at %v", dev.safe)
	}
	// After the safe state, (1, 0.5) is more than 0.5 from the initial
	// (0, 0): it is ramped, (0.5, 0.5) then (1, 0.5).
	got := dev.queries[3:]
	want := [][]float64{{0.5, 0.5}, {1, 0.5}, {1, 1}}
	if len(got) != len(want) {
		t.Fatalf("after the suspension the device got %d queries, want %d", len(got), len(want))
	}
	for i := range want {
		if !sameBits(got[i].x, want[i]) || got[i].at.Before(dev.safe[0]) {
			t.Errorf("query %d after the suspension: %v at %v", i, got[i].x, got[i].at)
		}
	}
	if g.Err() != nil || g.Counters().SafeStates != 0 {
		t.Errorf("the suspension's safe state closed the guard: %v, %+v", g.Err(), g.Counters())
	}
}

// A suspension longer than give_up_after trips the guard into its safe
// state: the run ends, interrupted.
func TestSuspendGivesUp(t *testing.T) {
	clock := newFakeClock()
	dev := &beam{clock: clock, offAt: 2, onAt: clock.Now().Add(time.Hour)}
	var ev events
	g := mustNew(t, dev, suspendConfig(Interlock{Poll: time.Second, ResumeAfter: 5 * time.Second, GiveUpAfter: time.Minute}),
		WithClock(clock), WithEvents(ev.sink))
	err := g.Do(context.Background(), func(ctx context.Context) error {
		for _, x := range points(5) {
			if _, err := g.Query(ctx, x); err != nil {
				return err
			}
		}
		return nil
	})
	if !errors.Is(err, ErrSuspended) || !errors.Is(err, ErrInterlock) || !strings.Contains(err.Error(), "give_up_after 1m0s") {
		t.Fatalf("err = %v", err)
	}
	if len(dev.queries) != 2 || len(dev.safe) != 1 || g.Counters().Trips != 1 {
		t.Errorf("%d queries, %d safe states, counters %+v", len(dev.queries), len(dev.safe), g.Counters())
	}
	if n := len(dev.reads); n != 59 {
		t.Errorf("%d readings before giving up at a minute, one per second", n)
	}
	if _, err := g.Query(context.Background(), points(1)[0]); !errors.Is(err, ErrTripped) {
		t.Errorf("a query after giving up: %v", err)
	}
}

// The run's context, cancelled while suspended (Ctrl-C, STOP), ends the
// suspension; the held query has no valid result.
func TestSuspendInterrupted(t *testing.T) {
	clock := newFakeClock()
	dev := &beam{clock: clock, offAt: 1, onAt: clock.Now().Add(time.Hour)}
	g := mustNew(t, dev, suspendConfig(Interlock{Poll: time.Second}), WithClock(clock))
	ctx, cancel := context.WithCancel(context.Background())
	dev.onRead = func(n int) {
		if n == 3 {
			cancel()
		}
	}
	var qerr error
	err := g.Do(ctx, func(context.Context) error {
		// The loop makes its queries with a context the run's cancel does
		// not reach, so that a query in flight finishes.
		_, qerr = g.Query(context.WithoutCancel(ctx), points(1)[0])
		return qerr
	})
	if !errors.Is(qerr, ErrSuspended) || !errors.Is(qerr, context.Canceled) || !errors.Is(err, context.Canceled) {
		t.Fatalf("query err %v, Do err %v", qerr, err)
	}
	if len(dev.reads) != 3 || len(dev.safe) != 1 {
		t.Errorf("%d readings, %d safe states", len(dev.reads), len(dev.safe))
	}
}

// A trip interlock still trips while a suspender holds the run.
func TestSuspendStillTrips(t *testing.T) {
	clock := newFakeClock()
	dev := &beam{clock: clock, offAt: 1, onAt: clock.Now().Add(time.Hour)}
	cfg := suspendConfig(Interlock{Poll: time.Second})
	cfg.Interlocks = append(cfg.Interlocks, Interlock{Name: "hot", Output: "y", Below: new(-1.0)})
	dev.onRead = func(n int) {
		if n == 4 {
			dev.mu.Lock()
			dev.onRead = nil
			dev.mu.Unlock()
		}
	}
	// Readings report y = 0; make the fourth report -3 by wrapping Read.
	g := mustNew(t, &hot{dev, 4}, cfg, WithClock(clock))
	_, err := g.Query(context.Background(), points(1)[0])
	if !errors.Is(err, ErrInterlock) || errors.Is(err, ErrSuspended) || !strings.Contains(err.Error(), "interlock hot") {
		t.Fatalf("err = %v", err)
	}
	if len(dev.safe) != 1 {
		t.Errorf("%d safe states", len(dev.safe))
	}
}

// hot is beam whose n-th reading has y = -3.
type hot struct {
	*beam
	n int
}

func (h *hot) Read(ctx context.Context) ([]float64, error) {
	y, err := h.beam.Read(ctx)
	h.beam.mu.Lock()
	defer h.beam.mu.Unlock()
	if len(h.beam.reads) == h.n {
		y[0] = -3
	}
	return y, err
}

func TestSuspendConfigErrors(t *testing.T) {
	for _, c := range []struct {
		il   Interlock
		want string
	}{
		{Interlock{Output: "y", Above: new(1.0), Hold: HoldSafe}, "interlocks[0].hold: only an interlock with action: suspend"},
		{Interlock{Output: "y", Above: new(1.0), ResumeAfter: time.Second}, "interlocks[0].resume_after: only"},
		{Interlock{Output: "y", Above: new(1.0), Action: "pause"}, "interlocks[0].action"},
		{Interlock{Output: "y", Above: new(1.0), Action: ActionSuspend, Hold: "off"}, "interlocks[0].hold"},
		{Interlock{Output: "y", Above: new(1.0), Action: ActionSuspend, Poll: -time.Second}, "interlocks[0].poll"},
		{Interlock{Output: "y", Above: new(1.0), Action: ActionSuspend, ResumeAfter: time.Minute, GiveUpAfter: time.Second}, "give up before"},
	} {
		err := Config{Interlocks: []Interlock{c.il}}.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.il, err, c.want)
		}
	}
	// A box that cannot be read without applying an input cannot be
	// polled while suspended.
	_, err := New(newRecorder(), Config{Interlocks: []Interlock{{Output: "y", Above: new(1.0), Action: ActionSuspend}}})
	if err == nil || !strings.Contains(err.Error(), "interlocks[0].action") || !strings.Contains(err.Error(), "a rig can") {
		t.Errorf("New on a box without Read: %v", err)
	}
}
