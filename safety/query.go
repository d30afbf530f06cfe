package safety

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"golang.org/x/time/rate"
)

// query runs the checks; reason is "" on success.
func (g *Guard) query(ctx context.Context, x []float64) (y []float64, reason string, err error) {
	if h := g.stop.Load(); h != nil {
		return nil, h.reason, h.err
	}
	if ctx.Err() != nil {
		return nil, ReasonCanceled, fmt.Errorf("safety: %s: %w", g.name, context.Cause(ctx))
	}
	n := len(g.lo)
	if len(x) != n {
		err := fmt.Errorf("safety: %s: input has %d coordinates, want %d: %w", g.name, len(x), n, ErrOutOfBounds)
		g.emit(KindBounds, "", float64(len(x)), err.Error())
		return nil, string(KindBounds), err
	}

	// 1. Finite, always, before anything else looks at the values.
	for i, v := range x {
		if !finite(v) {
			name := g.spec.In.Name(i)
			err := fmt.Errorf("safety: %s: input %s = %v: %w", g.name, name, v, ErrNonFinite)
			g.emit(KindNonFinite, name, v, err.Error())
			return nil, string(KindNonFinite), err
		}
	}

	// 2. Bounds. work is the device's copy from here on.
	work := slices.Clone(x)
	clamped := false
	for i, v := range work {
		lo, hi := g.lo[i], g.hi[i]
		if v >= lo && v <= hi {
			continue
		}
		name := g.spec.In.Name(i)
		if !g.clamp {
			err := fmt.Errorf("safety: %s: input %s = %v outside [%v, %v]: %w", g.name, name, v, lo, hi, ErrOutOfBounds)
			g.emit(KindBounds, name, v, err.Error())
			return nil, string(KindBounds), err
		}
		c := min(max(v, lo), hi)
		g.emit(KindClamp, name, v, fmt.Sprintf("input %s = %v clamped to %v", name, v, c))
		work[i], clamped = c, true
	}
	if clamped {
		g.count(func(c *Counters) { c.Clamped++ })
	}

	// 3. Slew, from the last input sent to the device.
	needRamp := false
	if g.slew && g.last != nil {
		for i, v := range work {
			if d := math.Abs(v - g.last[i]); d > g.step[i] {
				if g.ramp {
					needRamp = true
					break
				}
				name := g.spec.In.Name(i)
				err := fmt.Errorf("safety: %s: input %s = %v is %v from the last applied %v, max step %v: %w",
					g.name, name, v, d, g.last[i], g.step[i], ErrSlew)
				g.emit(KindSlew, name, v, err.Error())
				return nil, string(KindSlew), err
			}
		}
	}
	if !needRamp {
		// 4.–7. Budget, rate, device, outputs.
		return g.apply(ctx, work)
	}

	// Ramp: count the steps first so a ramp the budget cannot finish
	// never starts moving the device.
	limit := math.MaxInt
	if g.budget >= 0 {
		if g.used >= g.budget {
			return nil, string(KindBudget), g.budgetSpent()
		}
		limit = g.budget - g.used + 1
	}
	steps, err := g.countSteps(work, limit)
	if err != nil {
		g.emit(KindSlew, "", 0, err.Error())
		return nil, string(KindSlew), err
	}
	if g.budget >= 0 && g.used+steps > g.budget {
		err := fmt.Errorf("safety: %s: a ramp of more than %d device queries does not fit the %d left of %d: %w",
			g.name, steps-1, g.budget-g.used, g.budget, ErrBudget)
		g.emit(KindBudget, "", float64(steps), err.Error())
		return nil, string(KindBudget), err
	}
	g.emit(KindRamp, "", float64(steps), fmt.Sprintf("ramping in %d steps", steps))
	g.count(func(c *Counters) { c.Ramped++ })
	cur := slices.Clone(g.last)
	for k := 1; ; k++ {
		next := make([]float64, n)
		final := true
		for i := range next {
			next[i] = stepToward(cur[i], work[i], g.step[i])
			final = final && next[i] == work[i]
		}
		if k == steps && !final { // cannot happen: the same steps were counted above
			return nil, string(KindSlew), fmt.Errorf("safety: %s: ramp did not reach its target in %d steps: %w", g.name, steps, ErrSlew)
		}
		y, reason, err := g.apply(ctx, next)
		if err != nil || final {
			return y, reason, err
		}
		g.count(func(c *Counters) { c.RampSteps++ })
		copy(cur, g.last) // what was sent, even if the device scribbled on next
	}
}

// countSteps simulates the ramp from g.last to target, giving up past
// limit steps.
func (g *Guard) countSteps(target []float64, limit int) (int, error) {
	cur := slices.Clone(g.last)
	for k := 1; ; k++ {
		final := true
		for i := range cur {
			next := stepToward(cur[i], target[i], g.step[i])
			if next == cur[i] && next != target[i] {
				return 0, fmt.Errorf("safety: %s: ramp of %s stalls at %v: %w", g.name, g.spec.In.Name(i), cur[i], ErrSlew)
			}
			cur[i] = next
			final = final && next == target[i]
		}
		if final || k >= limit {
			return k, nil
		}
	}
}

// stepToward moves cur toward target by at most s (QCoDeS step: full steps,
// then the remainder), correcting rounding so |next−cur| ≤ s holds in
// floating point, which is how the slew limit is checked.
func stepToward(cur, target, s float64) float64 {
	d := target - cur
	if math.Abs(d) <= s {
		return target
	}
	next := cur + math.Copysign(s, d)
	for math.Abs(next-cur) > s || (d > 0 && next >= target) || (d < 0 && next <= target) {
		next = math.Nextafter(next, cur)
	}
	return next
}

// apply sends one input to the device: budget, rate, watchdog, outputs.
func (g *Guard) apply(ctx context.Context, x []float64) ([]float64, string, error) {
	if h := g.stop.Load(); h != nil {
		return nil, h.reason, h.err
	}
	if g.budget >= 0 && g.used >= g.budget {
		return nil, string(KindBudget), g.budgetSpent()
	}
	if reason, err := g.wait(ctx); err != nil {
		return nil, reason, err
	}
	if ctx.Err() != nil {
		return nil, ReasonCanceled, fmt.Errorf("safety: %s: %w", g.name, context.Cause(ctx))
	}
	// Entering the gate is the last stop check, atomic with the start of
	// the call: once the guard has stopped no device call starts, and safe
	// state waits for one that did. call leaves the gate when the device
	// returns.
	if !g.gate.enter() {
		h := g.stop.Load() // the gate closes with stop set
		return nil, h.reason, h.err
	}

	// From here the device may act on x, so it counts as applied whether
	// or not the call succeeds: the next step is limited from it.
	if g.last == nil {
		g.last = make([]float64, len(x))
	}
	copy(g.last, x)
	if g.minInterval > 0 {
		g.lastStart = g.clock.Now()
	}
	g.used++
	g.count(func(c *Counters) { c.Inner++ })

	y, reason, err := g.call(ctx, x)
	if err != nil {
		return y, reason, err
	}
	return g.checkOutputs(ctx, y)
}

// budgetSpent reports the budget used up, naming the earlier sessions'
// share when there is one.
func (g *Guard) budgetSpent() error {
	var err error
	switch {
	case g.prior > 0 && g.used == g.prior:
		err = fmt.Errorf("safety: %s: %d of budget %d device queries used by earlier sessions of this run: %w",
			g.name, g.prior, g.budget, ErrBudget)
	case g.prior > 0:
		err = fmt.Errorf("safety: %s: all %d device queries used, %d of them by earlier sessions of this run: %w",
			g.name, g.budget, g.prior, ErrBudget)
	default:
		err = fmt.Errorf("safety: %s: all %d device queries used: %w", g.name, g.budget, ErrBudget)
	}
	g.emit(KindBudget, "", float64(g.budget), err.Error())
	return err
}

// wait honours the rate limit and the minimum interval on g.clock.
func (g *Guard) wait(ctx context.Context) (string, error) {
	if g.limiter == nil && g.minInterval <= 0 {
		return "", nil
	}
	now := g.clock.Now()
	var d time.Duration
	var res *rate.Reservation
	if g.limiter != nil {
		res = g.limiter.ReserveN(now, 1) // burst ≥ 1, so always OK
		d = res.DelayFrom(now)
	}
	if g.minInterval > 0 && !g.lastStart.IsZero() {
		d = max(d, g.lastStart.Add(g.minInterval).Sub(now))
	}
	if d <= 0 {
		return "", nil
	}
	g.count(func(c *Counters) { c.RateWaits++; c.RateWaited += d })
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(g.life, cancel)() // Abort interrupts the wait
	if err := g.clock.Sleep(sctx, d); err != nil {
		if res != nil {
			res.CancelAt(g.clock.Now())
		}
		if h := g.stop.Load(); h != nil {
			return h.reason, h.err
		}
		err := fmt.Errorf("safety: %s: gave up waiting %v for the rate limit: %w", g.name, d, err)
		g.emit(KindRate, "", d.Seconds(), err.Error())
		return string(KindRate), err
	}
	return "", nil
}
