package safety

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestAdversarial throws 1e5 hostile inputs at guards in every bounds and
// slew mode and checks what the device saw, not what the guard said.
func TestAdversarial(t *testing.T) {
	const total = 100_000
	step := []float64{0.3, 0.05, 0.5, 1}
	modes := []struct{ bounds, slew string }{
		{ModeReject, ModeReject}, {ModeClamp, ModeReject}, {ModeReject, ModeRamp}, {ModeClamp, ModeRamp},
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, mode := range modes {
		t.Run(mode.bounds+"/"+mode.slew, func(t *testing.T) {
			rec := newRecorder()
			fails := 0
			rec.fn = func(_ context.Context, x []float64) ([]float64, error) {
				if rng.IntN(100) == 0 { // a flaky device: the input still counts as applied
					fails++
					return nil, errors.New("device hiccup")
				}
				return []float64{x[0], 0}, nil
			}
			cfg := Config{
				BoundsMode: mode.bounds,
				SlewMode:   mode.slew,
				Lower:      map[string]float64{"x0": -1, "x2": 0},
				Upper:      map[string]float64{"x0": 1, "x3": 0.5, "x1": 2}, // x1: the device's own bound
				MaxStep:    PerName{"x0": step[0], "x1": step[1], "x2": step[2], "x3": step[3]},
				Rate:       new(1000.0),
				Burst:      3,
			}
			var ev events
			clock := newFakeClock()
			g := mustNew(t, rec, cfg, WithClock(clock), WithEvents(ev.sink))
			sp := g.Spec().In
			wantLo, wantHi := []float64{-1, -2, 0, -2}, []float64{1, 2, 2, 0.5}
			if !slices.Equal(sp.Lower, wantLo) || !slices.Equal(sp.Upper, wantHi) {
				t.Fatalf("intersected space [%v, %v], want [%v, %v]", sp.Lower, sp.Upper, wantLo, wantHi)
			}

			n := total / len(modes)
			ref := []float64{0, 0, 0.5, 0} // where the device probably is, to aim slews at
			for range n {
				x := make([]float64, 4)
				for i := range x {
					x[i] = hostile(rng, ref[i], sp.Lower[i], sp.Upper[i], step[i])
				}
				orig := slices.Clone(x)
				y, err := g.Query(context.Background(), x)
				if !sameBits(x, orig) {
					t.Fatalf("guard modified the caller's input: %v → %v", orig, x)
				}
				if err == nil {
					if len(y) != 2 {
						t.Fatalf("output %v", y)
					}
					last := rec.last()
					if mode.bounds == ModeReject && !slices.Equal(last, orig) {
						t.Fatalf("device got %v for a query of %v", last, orig)
					}
					copy(ref, last)
				}
				for i := range x { // caller reuses its buffer: the device must not see it
					x[i] = math.NaN()
				}
			}

			got := rec.inputs()
			for k, x := range got {
				if err := sp.Contains(x); err != nil {
					t.Fatalf("device input %d %v: %v", k, x, err)
				}
				if k == 0 {
					continue
				}
				for i := range x {
					if d := math.Abs(x[i] - got[k-1][i]); d > step[i] {
						t.Fatalf("device inputs %d→%d: %s moved %v > max step %v (%v → %v)",
							k-1, k, sp.Name(i), d, step[i], got[k-1][i], x[i])
					}
				}
			}

			c := g.Counters()
			t.Logf("%+v fails=%d events=%d", c, fails, len(ev.ev))
			if c.Attempted != uint64(n) || c.Passed+c.RejectedTotal() != c.Attempted {
				t.Errorf("attempted %d, passed %d + rejected %d, want %d", c.Attempted, c.Passed, c.RejectedTotal(), n)
			}
			if c.Inner != uint64(len(got)) {
				t.Errorf("Inner = %d, device saw %d", c.Inner, len(got))
			}
			// Every device query is a passed query's last step, a failed
			// one's, or an intermediate ramp step.
			if want := c.Passed + c.Rejected[ReasonDevice] + c.RampSteps; c.Inner != want {
				t.Errorf("Inner = %d, want passed + device errors + ramp steps = %d", c.Inner, want)
			}
			if uint64(fails) != c.Rejected[ReasonDevice] {
				t.Errorf("device failed %d times, counted %d", fails, c.Rejected[ReasonDevice])
			}
			if c.Passed < uint64(n/20) {
				t.Errorf("only %d of %d passed: the test is not exercising the device", c.Passed, n)
			}
			if c.Rejected[string(KindNonFinite)] == 0 || (mode.bounds == ModeReject && c.Rejected[string(KindBounds)] == 0) {
				t.Errorf("no non-finite or bounds rejections: %v", c.Rejected)
			}
			if mode.bounds == ModeClamp && (c.Clamped == 0 || c.Rejected[string(KindBounds)] != 0) {
				t.Errorf("clamp mode: clamped %d, bounds rejections %d", c.Clamped, c.Rejected[string(KindBounds)])
			}
			if mode.slew == ModeRamp && (c.RampSteps == 0 || c.Rejected[string(KindSlew)] != 0) {
				t.Errorf("ramp mode: ramp steps %d, slew rejections %d", c.RampSteps, c.Rejected[string(KindSlew)])
			}
			if mode.slew == ModeReject && c.Rejected[string(KindSlew)] == 0 {
				t.Errorf("reject mode: no slew rejections")
			}
			// Rate: each device query after the burst waited 1 ms of fake time.
			if want := time.Duration(c.Inner-3) * time.Millisecond; absDur(clock.slept-want) > want/100 {
				t.Errorf("slept %v for %d device queries, want %v", clock.slept, c.Inner, want)
			}
			if ev.count(KindNonFinite) != int(c.Rejected[string(KindNonFinite)]) {
				t.Errorf("%d nonfinite events, %d rejections", ev.count(KindNonFinite), c.Rejected[string(KindNonFinite)])
			}
		})
	}
}

// hostile draws one coordinate: mostly plausible moves around ref, often
// something nasty.
func hostile(rng *rand.Rand, ref, lo, hi, step float64) float64 {
	switch p := rng.IntN(100); {
	case p < 2:
		return math.NaN()
	case p < 3:
		return math.Inf(1)
	case p < 4:
		return math.Inf(-1)
	case p < 5:
		return math.Copysign(math.MaxFloat64, rng.NormFloat64())
	case p < 6:
		return rng.NormFloat64() * 1e300
	case p < 8:
		return math.Nextafter(lo, math.Inf(-1))
	case p < 10:
		return math.Nextafter(hi, math.Inf(1))
	case p < 11:
		return lo
	case p < 12:
		return hi
	case p < 13:
		return ref + math.Nextafter(step, math.Inf(1)) // just over the slew limit
	case p < 14:
		return ref - step
	case p < 20:
		return lo - 1 + rng.Float64()*(hi-lo+2)
	default:
		return min(max(ref+(rng.Float64()*2.4-1.2)*step, lo), hi)
	}
}

func sameBits(a, b []float64) bool {
	return slices.EqualFunc(a, b, func(u, v float64) bool { return math.Float64bits(u) == math.Float64bits(v) })
}

func absDur(d time.Duration) time.Duration { return max(d, -d) }

func TestErrorMessages(t *testing.T) {
	g := mustNew(t, newRecorder(), Config{Upper: map[string]float64{"x2": 1}, MaxStep: PerName{"x1": 0.5}})
	ctx := context.Background()
	_, err := g.Query(ctx, []float64{0, 0, 0, math.NaN()})
	if want := "safety: cnon: input x3 = NaN: non-finite input"; err == nil || err.Error() != want || !errors.Is(err, ErrNonFinite) {
		t.Errorf("NaN: %v, want %q", err, want)
	}
	_, err = g.Query(ctx, []float64{0, 0, 1.5, 0})
	if want := "safety: cnon: input x2 = 1.5 outside [-2, 1]: input out of bounds"; err == nil || err.Error() != want || !errors.Is(err, ErrOutOfBounds) {
		t.Errorf("bounds: %v, want %q", err, want)
	}
	_, err = g.Query(ctx, []float64{0, 0})
	if !errors.Is(err, ErrOutOfBounds) {
		t.Errorf("short input: %v", err)
	}
	if _, err := g.Query(ctx, []float64{0, 0, 0, 0}); err != nil {
		t.Fatal(err)
	}
	_, err = g.Query(ctx, []float64{0, 0.75, 0, 0})
	if want := "safety: cnon: input x1 = 0.75 is 0.75 from the last applied 0, max step 0.5: slew limit exceeded"; err == nil || err.Error() != want || !errors.Is(err, ErrSlew) {
		t.Errorf("slew: %v, want %q", err, want)
	}
}

func TestInputIsCopied(t *testing.T) {
	rec := newRecorder()
	rec.fn = func(_ context.Context, x []float64) ([]float64, error) {
		y := []float64{x[0], 0}
		x[0] = 99 // a misbehaving device scribbles on its input
		return y, nil
	}
	g := mustNew(t, rec, Config{MaxStep: All(0.5)})
	x := []float64{0.1, 0.2, 0.3, 0.4}
	if _, err := g.Query(context.Background(), x); err != nil {
		t.Fatal(err)
	}
	if x[0] != 0.1 {
		t.Errorf("caller saw the device's write: %v", x)
	}
	x[1] = 7
	if got := rec.inputs()[0]; got[1] != 0.2 {
		t.Errorf("device saw the caller's write: %v", got)
	}
	// The slew limit runs from what was sent (0.1), not the scribble (99).
	if _, err := g.Query(context.Background(), []float64{0.5, 0.2, 0.3, 0.4}); err != nil {
		t.Errorf("slew from the applied value: %v", err)
	}

	// Ramp steps too: each step starts from what was sent.
	rec = newRecorder()
	rec.fn = func(_ context.Context, x []float64) ([]float64, error) {
		x[0] = -2
		return []float64{0, 0}, nil
	}
	g = mustNew(t, rec, Config{SlewMode: ModeRamp, MaxStep: All(0.5)}, WithInitialState([]float64{0, 0, 0, 0}))
	if _, err := g.Query(context.Background(), []float64{1.5, 0, 0, 0}); err != nil {
		t.Fatal(err)
	}
	if n := len(rec.inputs()); n != 3 { // the scribbled values were overwritten by the device; count the calls
		t.Errorf("%d ramp steps, want 3", n)
	}
}

func TestClamp(t *testing.T) {
	rec := newRecorder()
	var ev events
	g := mustNew(t, rec, Config{BoundsMode: ModeClamp, Upper: map[string]float64{"x0": 1}}, WithEvents(ev.sink))
	y, err := g.Query(context.Background(), []float64{1.5, -3, math.Nextafter(2, 3), 0.25})
	if err != nil {
		t.Fatal(err)
	}
	want := []float64{1, -2, 2, 0.25}
	if got := rec.inputs()[0]; !slices.Equal(got, want) {
		t.Errorf("device got %v, want %v", got, want)
	}
	if y[0] != 1.25 {
		t.Errorf("output %v from the clamped input", y)
	}
	c := g.Counters()
	if c.Clamped != 1 || c.Passed != 1 || ev.count(KindClamp) != 3 {
		t.Errorf("clamped %d, passed %d, clamp events %d; want 1, 1, 3", c.Clamped, c.Passed, ev.count(KindClamp))
	}
	// Clamping never hides a non-finite input.
	for _, v := range []float64{math.Inf(1), math.Inf(-1), math.NaN()} {
		if _, err := g.Query(context.Background(), []float64{v, 0, 0, 0}); !errors.Is(err, ErrNonFinite) {
			t.Errorf("%v in clamp mode: %v", v, err)
		}
	}
	if n := len(rec.inputs()); n != 1 {
		t.Errorf("device saw %d queries, want 1", n)
	}
}

func TestRamp(t *testing.T) {
	rec := newRecorder()
	var ev events
	g := mustNew(t, rec, Config{
		SlewMode: ModeRamp,
		MaxStep:  PerName{"*": 0.25, "x1": 0.125},
		Initial:  map[string]float64{"x0": 0, "x1": 0, "x2": 0, "x3": 1},
	}, WithEvents(ev.sink))
	y, err := g.Query(context.Background(), []float64{1, -0.3, 0.9, 1})
	if err != nil {
		t.Fatal(err)
	}
	// x0 needs ceil(1/0.25) = 4 steps, x1 ceil(0.3/0.125) = 3, x2 4; all
	// move together, each by its full step and then the remainder.
	want := [][]float64{
		{0.25, -0.125, 0.25, 1},
		{0.5, -0.25, 0.5, 1},
		{0.75, -0.3, 0.75, 1},
		{1, -0.3, 0.9, 1},
	}
	got := rec.inputs()
	if len(got) != len(want) {
		t.Fatalf("%d steps %v, want %d", len(got), got, len(want))
	}
	for k := range want {
		if !slices.Equal(got[k], want[k]) {
			t.Errorf("step %d = %v, want %v", k, got[k], want[k])
		}
	}
	if y[0] != 1-0.3+0.9+1 {
		t.Errorf("output %v is not the final step's", y)
	}
	c := g.Counters()
	if c.Inner != 4 || c.RampSteps != 3 || c.Ramped != 1 || c.Passed != 1 || ev.count(KindRamp) != 1 {
		t.Errorf("counters %+v, ramp events %d", c, ev.count(KindRamp))
	}

	// A small move does not ramp.
	if _, err := g.Query(context.Background(), []float64{0.8, -0.3, 0.9, 1}); err != nil {
		t.Fatal(err)
	}
	if n := len(rec.inputs()); n != 5 {
		t.Errorf("%d device queries, want 5", n)
	}
}

func TestRampStopsOnDeviceError(t *testing.T) {
	rec := newRecorder()
	calls := 0
	rec.fn = func(_ context.Context, x []float64) ([]float64, error) {
		calls++
		if calls == 2 {
			return nil, errors.New("compliance")
		}
		return []float64{0, 0}, nil
	}
	g := mustNew(t, rec, Config{SlewMode: ModeRamp, MaxStep: All(0.25)}, WithInitialState([]float64{0, 0, 0, 0}))
	if _, err := g.Query(context.Background(), []float64{1, 0, 0, 0}); err == nil || err.Error() != "compliance" {
		t.Fatalf("err = %v", err)
	}
	// The ramp stopped at the second step; the next ramp starts from it.
	rec.fn = nil
	if _, err := g.Query(context.Background(), []float64{1, 0, 0, 0}); err != nil {
		t.Fatal(err)
	}
	var x0 []float64
	for _, x := range rec.inputs() {
		x0 = append(x0, x[0])
	}
	if want := []float64{0.25, 0.5, 0.75, 1}; !slices.Equal(x0, want) {
		t.Errorf("x0 sequence %v, want %v", x0, want)
	}
}

func TestRampBudget(t *testing.T) {
	rec := newRecorder()
	var ev events
	g := mustNew(t, rec, Config{SlewMode: ModeRamp, MaxStep: All(0.25), Budget: new(6)},
		WithInitialState([]float64{0, 0, 0, 0}), WithEvents(ev.sink))
	ctx := context.Background()
	if _, err := g.Query(ctx, []float64{1, 0, 0, 0}); err != nil { // 4 steps, 2 left
		t.Fatal(err)
	}
	// Needs 3 steps: refused before the device moves at all.
	_, err := g.Query(ctx, []float64{1, 0.75, 0, 0})
	if !errors.Is(err, ErrBudget) {
		t.Fatalf("ramp over budget: %v", err)
	}
	if n := len(rec.inputs()); n != 4 {
		t.Fatalf("device saw %d queries, want 4 (a refused ramp must not start)", n)
	}
	if _, err := g.Query(ctx, []float64{1, 0.5, 0, 0}); err != nil { // 2 steps: fits exactly
		t.Fatal(err)
	}
	if _, err := g.Query(ctx, []float64{1, 0.5, 0, 0}); !errors.Is(err, ErrBudget) {
		t.Fatalf("query after the budget: %v", err)
	}
	c := g.Counters()
	if c.Inner != 6 || c.Rejected[string(KindBudget)] != 2 || c.Passed != 2 || ev.count(KindBudget) != 2 {
		t.Errorf("counters %+v, budget events %d", c, ev.count(KindBudget))
	}
}

func TestRampCancelMidway(t *testing.T) {
	rec := newRecorder()
	ctx, cancel := context.WithCancel(context.Background())
	rec.fn = func(_ context.Context, x []float64) ([]float64, error) {
		if x[0] == 0.5 {
			cancel()
		}
		return []float64{0, 0}, nil
	}
	g := mustNew(t, rec, Config{SlewMode: ModeRamp, MaxStep: All(0.25)}, WithInitialState([]float64{0, 0, 0, 0}))
	if _, err := g.Query(ctx, []float64{1, 0, 0, 0}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	if n := len(rec.inputs()); n != 2 {
		t.Errorf("device saw %d steps after cancel at the second, want 2", n)
	}
	if c := g.Counters(); c.Rejected[ReasonCanceled] != 1 {
		t.Errorf("rejected %v", c.Rejected)
	}
}

func TestRate(t *testing.T) {
	const n, r, b = 1000, 100.0, 10
	rec := newRecorder()
	clock := newFakeClock()
	g := mustNew(t, rec, Config{Rate: new(r), Burst: b}, WithClock(clock))
	start := clock.Now()
	for range n {
		if _, err := g.Query(context.Background(), []float64{0, 0, 0, 0}); err != nil {
			t.Fatal(err)
		}
	}
	got := clock.Now().Sub(start).Seconds()
	want := (n - b) / r
	if math.Abs(got-want) > want/100 {
		t.Errorf("%d queries took %v s of fake time, want %v", n, got, want)
	}
	if c := g.Counters(); c.RateWaits != n-b {
		t.Errorf("RateWaits = %d, want %d", c.RateWaits, n-b)
	}
}

func TestMinInterval(t *testing.T) {
	rec := newRecorder()
	clock := newFakeClock()
	rec.clock = clock
	g := mustNew(t, rec, Config{MinInterval: 50 * time.Millisecond, SlewMode: ModeRamp, MaxStep: All(0.5)},
		WithClock(clock), WithInitialState([]float64{0, 0, 0, 0}))
	for _, x0 := range []float64{0, 0.5, 2, 0} { // the ramps' steps are spaced too
		if _, err := g.Query(context.Background(), []float64{x0, 0, 0, 0}); err != nil {
			t.Fatal(err)
		}
	}
	times := rec.times
	if len(times) != 1+1+3+4 {
		t.Fatalf("%d device queries", len(times))
	}
	for k := 1; k < len(times); k++ {
		if d := times[k].Sub(times[k-1]); d < 50*time.Millisecond {
			t.Errorf("queries %d and %d %v apart", k-1, k, d)
		}
	}
	if clock.slept != time.Duration(len(times)-1)*50*time.Millisecond {
		t.Errorf("slept %v", clock.slept)
	}
}

func TestRateWaitCancel(t *testing.T) {
	g := mustNew(t, newRecorder(), Config{Rate: new(0.1)}) // real clock: 10 s per query
	ctx := context.Background()
	if _, err := g.Query(ctx, []float64{0, 0, 0, 0}); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	t0 := time.Now()
	_, err := g.Query(cctx, []float64{0, 0, 0, 0})
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(t0) > 2*time.Second {
		t.Fatalf("err = %v after %v", err, time.Since(t0))
	}
	if c := g.Counters(); c.Rejected[string(KindRate)] != 1 || c.Inner != 1 {
		t.Errorf("counters %+v", c)
	}

	// Abort interrupts a wait too.
	done := make(chan error, 1)
	go func() {
		_, err := g.Query(ctx, []float64{0, 0, 0, 0})
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	if err := g.Abort(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, ErrTripped) || !errors.Is(err, ErrAborted) {
			t.Errorf("query during Abort: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Abort did not interrupt the rate wait")
	}
}

// The budget holds across the sessions of a resumed run.
func TestDeviceQueriesUsed(t *testing.T) {
	ctx := context.Background()
	x := []float64{0, 0, 0, 0}

	rec := newRecorder()
	var ev events
	g := mustNew(t, rec, Config{Budget: new(5)}, WithDeviceQueriesUsed(3), WithEvents(ev.sink))
	for range 2 {
		if _, err := g.Query(ctx, x); err != nil {
			t.Fatal(err)
		}
	}
	_, err := g.Query(ctx, x)
	if want := "safety: cnon: all 5 device queries used, 3 of them by earlier sessions of this run: query budget exhausted"; !errors.Is(err, ErrBudget) || err.Error() != want {
		t.Errorf("after the rest of the budget: %v, want %q", err, want)
	}
	if n := len(rec.inputs()); n != 2 || g.Counters().Inner != 2 || ev.count(KindBudget) != 1 {
		t.Errorf("device saw %d queries, counters %+v, budget events %d; want 2, Inner 2, 1", n, g.Counters(), ev.count(KindBudget))
	}

	// A budget the earlier sessions used up refuses the first query, ramps
	// included.
	for _, used := range []int{5, 7} {
		rec := newRecorder()
		g := mustNew(t, rec, Config{Budget: new(5), SlewMode: ModeRamp, MaxStep: All(0.25)},
			WithDeviceQueriesUsed(used), WithInitialState(x))
		want := fmt.Sprintf("safety: cnon: %d of budget 5 device queries used by earlier sessions of this run: query budget exhausted", used)
		for _, q := range [][]float64{x, {1, 0, 0, 0}} {
			if _, err := g.Query(ctx, q); !errors.Is(err, ErrBudget) || err.Error() != want {
				t.Errorf("used %d, query %v: %v, want %q", used, q, err, want)
			}
		}
		if n := len(rec.inputs()); n != 0 {
			t.Errorf("used %d: device saw %d queries", used, n)
		}
	}

	// A ramp that fits the fresh budget does not fit what is left of it.
	rec = newRecorder()
	g = mustNew(t, rec, Config{Budget: new(5), SlewMode: ModeRamp, MaxStep: All(0.25)},
		WithDeviceQueriesUsed(2), WithInitialState(x))
	if _, err := g.Query(ctx, []float64{1, 0, 0, 0}); !errors.Is(err, ErrBudget) || len(rec.inputs()) != 0 {
		t.Errorf("4-step ramp with 3 left: %v, device saw %d", err, len(rec.inputs()))
	}
	if _, err := g.Query(ctx, []float64{0.75, 0, 0, 0}); err != nil || len(rec.inputs()) != 3 {
		t.Errorf("3-step ramp with 3 left: %v, device saw %d", err, len(rec.inputs()))
	}

	// Without a budget the count changes nothing.
	if _, err := mustNew(t, newRecorder(), Config{}, WithDeviceQueriesUsed(1e6)).Query(ctx, x); err != nil {
		t.Errorf("no budget: %v", err)
	}

	_, err = New(newRecorder(), Config{Budget: new(5)}, WithDeviceQueriesUsed(-1))
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Key != "WithDeviceQueriesUsed" {
		t.Errorf("negative count: %v", err)
	}
}
