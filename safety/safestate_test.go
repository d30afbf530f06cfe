package safety

import (
	"context"
	"errors"
	"math"
	"sync"
	"testing"
	"time"
)

// blockingRecorder's queries block until release is closed, ignoring ctx,
// like a driver stuck in a read without a deadline.
func blockingRecorder(release <-chan struct{}) *recorder {
	rec := newRecorder()
	rec.fn = func(context.Context, []float64) ([]float64, error) {
		<-release
		return []float64{0, 0}, nil
	}
	return rec
}

func TestWatchdog(t *testing.T) {
	const timeout, grace = 50 * time.Millisecond, 50 * time.Millisecond
	release := make(chan struct{})
	defer close(release)
	rec := blockingRecorder(release)
	var ev events
	g := mustNew(t, rec, Config{Timeout: timeout, Grace: grace}, WithEvents(ev.sink))

	t0 := time.Now()
	_, err := g.Query(context.Background(), []float64{0, 0, 0, 0})
	elapsed := time.Since(t0)
	if !errors.Is(err, ErrWatchdog) {
		t.Fatalf("err = %v, want ErrWatchdog", err)
	}
	if elapsed < timeout+grace || elapsed > timeout+grace+500*time.Millisecond {
		t.Errorf("returned after %v, want about %v", elapsed, timeout+grace)
	}
	if n := rec.safe.Load(); n != 1 {
		t.Errorf("SafeState called %d times, want 1", n)
	}
	_, err = g.Query(context.Background(), []float64{0, 0, 0, 0})
	if !errors.Is(err, ErrTripped) || !errors.Is(err, ErrWatchdog) {
		t.Errorf("query after the trip: %v", err)
	}
	if n := len(rec.inputs()); n != 1 {
		t.Errorf("device saw %d queries after a trip, want 1", n)
	}
	c := g.Counters()
	if c.Trips != 1 || c.SafeStates != 1 || c.Rejected[string(KindWatchdog)] != 1 || c.Rejected[ReasonTripped] != 1 {
		t.Errorf("counters %+v", c)
	}
	if ev.count(KindWatchdog) != 1 || ev.count(KindSafeState) != 1 {
		t.Errorf("events %+v", ev.ev)
	}
}

// A device that honours ctx returns at the timeout, and the guard still
// trips: the query overran.
func TestWatchdogHonouredContext(t *testing.T) {
	rec := newRecorder()
	rec.fn = func(ctx context.Context, _ []float64) ([]float64, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	g := mustNew(t, rec, Config{Timeout: 30 * time.Millisecond, Grace: 5 * time.Second})
	t0 := time.Now()
	_, err := g.Query(context.Background(), []float64{0, 0, 0, 0})
	if !errors.Is(err, ErrWatchdog) || time.Since(t0) > 2*time.Second {
		t.Fatalf("err = %v after %v", err, time.Since(t0))
	}
	if rec.safe.Load() != 1 || !errors.Is(g.Err(), ErrTripped) {
		t.Errorf("safe %d, Err %v", rec.safe.Load(), g.Err())
	}
}

// Under the watchdog a fast device passes, and a cancelled caller is not a
// trip when the device returns in time.
func TestWatchdogFastAndCancelled(t *testing.T) {
	rec := newRecorder()
	g := mustNew(t, rec, Config{Timeout: time.Second})
	if _, err := g.Query(context.Background(), []float64{0, 0, 0, 0}); err != nil {
		t.Fatal(err)
	}
	rec.setFn(func(ctx context.Context, _ []float64) ([]float64, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := g.Query(ctx, []float64{0, 0, 0, 0}); !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrWatchdog) {
		t.Fatalf("err = %v", err)
	}
	if g.Err() != nil || rec.safe.Load() != 0 {
		t.Errorf("caller's cancellation tripped the guard: %v", g.Err())
	}
}

func TestSafeStateExactlyOnce(t *testing.T) {
	boom := errors.New("boom")
	hot := new(0.1)
	type scenario struct {
		name string
		cfg  Config
		run  func(t *testing.T, g *Guard, rec *recorder) error
		want error // errors.Is target for run's error; nil for none
	}
	query := func(g *Guard) error {
		_, err := g.Query(context.Background(), []float64{0, 0, 0, 0})
		return err
	}
	scenarios := []scenario{
		{name: "success", run: func(t *testing.T, g *Guard, _ *recorder) error {
			return g.Do(context.Background(), func(ctx context.Context) error {
				_, err := g.Query(ctx, []float64{0, 0, 0, 0})
				return err
			})
		}},
		{name: "error", want: boom, run: func(t *testing.T, g *Guard, _ *recorder) error {
			return g.Do(context.Background(), func(context.Context) error { return boom })
		}},
		{name: "panic", run: func(t *testing.T, g *Guard, rec *recorder) (err error) {
			defer func() {
				if p := recover(); p != boom {
					t.Errorf("recovered %v, want the original panic", p)
				}
				if rec.safe.Load() != 1 {
					t.Errorf("SafeState not run before the panic went on")
				}
			}()
			return g.Do(context.Background(), func(context.Context) error { panic(boom) })
		}},
		{name: "cancel", want: context.Canceled, run: func(t *testing.T, g *Guard, _ *recorder) error {
			ctx, cancel := context.WithCancel(context.Background())
			return g.Do(ctx, func(ctx context.Context) error {
				cancel()
				<-ctx.Done()
				return ctx.Err()
			})
		}},
		{name: "interlock", want: ErrInterlock,
			cfg: Config{Interlocks: []Interlock{{Name: "overcurrent", Output: "I", Above: hot}}},
			run: func(t *testing.T, g *Guard, rec *recorder) error {
				rec.setFn(func(context.Context, []float64) ([]float64, error) { return []float64{0, 0.2}, nil })
				return query(g)
			}},
		{name: "watchdog", want: ErrWatchdog, cfg: Config{Timeout: 10 * time.Millisecond, Grace: 10 * time.Millisecond},
			run: func(t *testing.T, g *Guard, rec *recorder) error {
				release := make(chan struct{})
				t.Cleanup(func() { close(release) })
				rec.setFn(blockingRecorder(release).fn)
				return query(g)
			}},
		{name: "output-trip", want: ErrOutput, cfg: Config{CheckOutputs: ModeTrip},
			run: func(t *testing.T, g *Guard, rec *recorder) error {
				rec.setFn(func(context.Context, []float64) ([]float64, error) { return []float64{math.NaN(), 0}, nil })
				return query(g)
			}},
		{name: "device-panic", run: func(t *testing.T, g *Guard, rec *recorder) error {
			rec.setFn(func(context.Context, []float64) ([]float64, error) { panic(boom) })
			defer func() {
				if p := recover(); p != boom {
					t.Errorf("recovered %v", p)
				}
			}()
			return query(g)
		}},
		{name: "device-panic-watchdog", cfg: Config{Timeout: time.Second}, run: func(t *testing.T, g *Guard, rec *recorder) error {
			rec.setFn(func(context.Context, []float64) ([]float64, error) { panic(boom) })
			defer func() {
				if p := recover(); p != boom {
					t.Errorf("recovered %v", p)
				}
			}()
			return query(g)
		}},
		{name: "abort", run: func(t *testing.T, g *Guard, _ *recorder) error { return g.Abort() }},
		{name: "abort-twice-close", run: func(t *testing.T, g *Guard, _ *recorder) error {
			return errors.Join(g.Abort(), g.Abort(), g.Close(context.Background()))
		}},
		{name: "close-cancelled-ctx", run: func(t *testing.T, g *Guard, _ *recorder) error {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return g.Close(ctx)
		}},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			rec := newRecorder()
			g := mustNew(t, rec, sc.cfg)
			err := sc.run(t, g, rec)
			if sc.want == nil && err != nil || sc.want != nil && !errors.Is(err, sc.want) {
				t.Errorf("err = %v, want %v", err, sc.want)
			}
			if n := rec.safe.Load(); n != 1 {
				t.Fatalf("SafeState called %d times after %s, want 1", n, sc.name)
			}
			// Every later path is a no-op for the device.
			_ = g.SafeState(context.Background())
			_ = g.Abort()
			_ = g.Close(context.Background())
			_ = g.Do(context.Background(), func(context.Context) error { return nil })
			if n := rec.safe.Load(); n != 1 {
				t.Errorf("SafeState called %d times in all, want 1", n)
			}
			if rec.safeCtxErr != nil || !rec.safeHasDL {
				t.Errorf("SafeState context: err %v, deadline %v; want live with a deadline", rec.safeCtxErr, rec.safeHasDL)
			}
			before := len(rec.inputs())
			if err := query(g); !errors.Is(err, ErrTripped) && !errors.Is(err, ErrClosed) {
				t.Errorf("query after safe state: %v", err)
			}
			if len(rec.inputs()) != before {
				t.Errorf("a query reached the device after SafeState")
			}
			if c := g.Counters(); c.SafeStates != 1 {
				t.Errorf("SafeStates = %d", c.SafeStates)
			}
		})
	}
}

func TestSafeStateErrorReportedToAll(t *testing.T) {
	rec := newRecorder()
	rec.safeErr = errors.New("OUTP OFF timed out")
	g := mustNew(t, rec, Config{})
	e1 := g.Close(context.Background())
	e2 := g.Abort()
	if e1 == nil || e2 == nil || e1.Error() != e2.Error() || !errors.Is(e1, rec.safeErr) {
		t.Errorf("errors %v / %v", e1, e2)
	}
	if rec.safe.Load() != 1 {
		t.Errorf("SafeState %d times", rec.safe.Load())
	}
}

func TestConcurrentCallers(t *testing.T) {
	rec := newRecorder()
	inFlight := 0
	var mu sync.Mutex
	rec.fn = func(context.Context, []float64) ([]float64, error) {
		mu.Lock()
		inFlight++
		n := inFlight
		mu.Unlock()
		if n > 1 {
			t.Errorf("%d queries in the device at once", n)
		}
		time.Sleep(10 * time.Microsecond)
		mu.Lock()
		inFlight--
		mu.Unlock()
		return []float64{0, 0}, nil
	}
	g := mustNew(t, rec, Config{MaxStep: All(1), Timeout: time.Second})
	var wg sync.WaitGroup
	start := make(chan struct{})
	for w := range 16 {
		wg.Go(func() {
			<-start
			for k := range 200 {
				_, _ = g.Query(context.Background(), []float64{float64(k%3) * 0.5, 0, 0, 0})
				_ = g.Counters()
				if w < 4 && k == 100+w*10 {
					switch w {
					case 0:
						_ = g.Abort()
					case 1:
						_ = g.SafeState(context.Background())
					case 2:
						_ = g.Close(context.Background())
					case 3:
						_ = g.Do(context.Background(), func(context.Context) error { return nil })
					}
				}
			}
		})
	}
	close(start)
	wg.Wait()
	if n := rec.safe.Load(); n != 1 {
		t.Errorf("SafeState called %d times, want 1", n)
	}
	c := g.Counters()
	if c.Attempted != 16*200 || c.Passed+c.RejectedTotal() != c.Attempted || c.Inner != uint64(len(rec.inputs())) {
		t.Errorf("counters %+v, device saw %d", c, len(rec.inputs()))
	}
}

func TestOutputs(t *testing.T) {
	ctx := context.Background()
	x := []float64{0, 0, 0, 0}
	answer := func(rec *recorder, y ...float64) {
		rec.setFn(func(context.Context, []float64) ([]float64, error) { return y, nil })
	}

	t.Run("nonfinite", func(t *testing.T) {
		rec := newRecorder()
		var ev events
		g := mustNew(t, rec, Config{}, WithEvents(ev.sink))
		answer(rec, math.NaN(), 0)
		y, err := g.Query(ctx, x)
		if !errors.Is(err, ErrOutput) || err.Error() != "safety: cnon: output y = NaN is not finite: output check failed" {
			t.Errorf("err = %v", err)
		}
		if len(y) != 2 {
			t.Errorf("the measured output is returned for the journal: %v", y)
		}
		answer(rec, 1, 0)
		if _, err := g.Query(ctx, x); err != nil { // error mode does not trip
			t.Errorf("after a NaN output: %v", err)
		}
		c := g.Counters()
		if c.OutputViolations != 1 || ev.count(KindOutput) != 1 || rec.safe.Load() != 0 {
			t.Errorf("counters %+v", c)
		}
	})
	t.Run("off", func(t *testing.T) {
		rec := newRecorder()
		g := mustNew(t, rec, Config{CheckOutputs: ModeOff})
		answer(rec, math.Inf(1), 0)
		if _, err := g.Query(ctx, x); err != nil {
			t.Errorf("check_outputs off: %v", err)
		}
	})
	t.Run("length", func(t *testing.T) {
		rec := newRecorder()
		g := mustNew(t, rec, Config{})
		answer(rec, 1)
		if _, err := g.Query(ctx, x); !errors.Is(err, ErrOutput) {
			t.Errorf("short output: %v", err)
		}
	})
	t.Run("range", func(t *testing.T) {
		rec := newRecorder()
		var ev events
		g := mustNew(t, rec, Config{OutputRanges: map[string]Range{"y": {Lo: -1, Hi: 1}}}, WithEvents(ev.sink))
		answer(rec, 1.5, 0)
		_, err := g.Query(ctx, x)
		if !errors.Is(err, ErrOutput) || err.Error() != "safety: cnon: output y = 1.5 outside [-1, 1]: output check failed" {
			t.Errorf("err = %v", err)
		}
		answer(rec, 1, 0)
		if _, err := g.Query(ctx, x); err != nil {
			t.Errorf("in range: %v", err)
		}
		if c := g.Counters(); c.OutputViolations != 1 || c.Rejected[string(KindOutput)] != 1 || ev.count(KindOutput) != 1 {
			t.Errorf("counters %+v", c)
		}
	})
	t.Run("saturation", func(t *testing.T) {
		rec := newRecorder()
		var ev events
		g := mustNew(t, rec, Config{Saturation: PerName{"y": 1}}, WithEvents(ev.sink))
		answer(rec, -1, 5) // I has no level
		if _, err := g.Query(ctx, x); err != nil {
			t.Fatal(err)
		}
		answer(rec, 0.5, 5)
		if _, err := g.Query(ctx, x); err != nil {
			t.Fatal(err)
		}
		if c := g.Counters(); c.Saturated != 1 || ev.count(KindSaturation) != 1 || c.Passed != 2 {
			t.Errorf("counters %+v", c)
		}
	})
	t.Run("interlock", func(t *testing.T) {
		rec := newRecorder()
		var ev events
		g := mustNew(t, rec, Config{Interlocks: []Interlock{
			{Name: "overcurrent", Output: "I", Above: new(0.1)},
			{Output: "y", Below: new(-3.0)},
		}}, WithEvents(ev.sink))
		answer(rec, 0, 0.1) // at the limit: fine
		if _, err := g.Query(ctx, x); err != nil {
			t.Fatal(err)
		}
		answer(rec, 0, 0.2)
		_, err := g.Query(ctx, x)
		if !errors.Is(err, ErrInterlock) || err.Error() != "safety: cnon: interlock overcurrent: output I = 0.2 above 0.1: interlock tripped" {
			t.Errorf("err = %v", err)
		}
		_, err = g.Query(ctx, x)
		if !errors.Is(err, ErrTripped) || !errors.Is(err, ErrInterlock) {
			t.Errorf("after the interlock: %v", err)
		}
		if rec.safe.Load() != 1 || ev.count(KindInterlock) != 1 || len(rec.inputs()) != 2 {
			t.Errorf("safe %d, interlock events %d, device queries %d", rec.safe.Load(), ev.count(KindInterlock), len(rec.inputs()))
		}
	})
	t.Run("interlock-below", func(t *testing.T) {
		rec := newRecorder()
		g := mustNew(t, rec, Config{Interlocks: []Interlock{{Output: "y", Below: new(-3.0)}}})
		answer(rec, -3.5, 0)
		if _, err := g.Query(ctx, x); !errors.Is(err, ErrInterlock) || !errors.Is(g.Err(), ErrTripped) {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("interlock-func", func(t *testing.T) {
		rec := newRecorder()
		tooHot := errors.New("x0·I too large")
		g := mustNew(t, rec, Config{}, WithInterlockFunc("power", func(x, y []float64) error {
			if x[0]*y[1] > 0.5 {
				return tooHot
			}
			return nil
		}))
		answer(rec, 0, 1)
		if _, err := g.Query(ctx, []float64{0.25, 0, 0, 0}); err != nil {
			t.Fatal(err)
		}
		_, err := g.Query(ctx, []float64{1, 0, 0, 0})
		if !errors.Is(err, ErrInterlock) || !errors.Is(err, tooHot) || rec.safe.Load() != 1 {
			t.Errorf("err = %v, safe %d", err, rec.safe.Load())
		}
	})
}
