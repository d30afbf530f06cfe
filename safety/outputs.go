package safety

import (
	"context"
	"fmt"
	"math"
)

type interlock struct {
	label        string
	out          int
	above, below float64    // ±Inf when unset
	suspend      *suspender // nil: the interlock trips
}

// violation describes output value v against the interlock's limits, or
// returns "" when v is inside them. A NaN is inside a trip interlock's
// limits (the output checks catch it unless check_outputs is off) and
// outside a suspender's: a reading that says nothing does not resume a
// run.
func (il interlock) violation(v float64) string {
	switch {
	case v > il.above:
		return fmt.Sprintf("above %v", il.above)
	case v < il.below:
		return fmt.Sprintf("below %v", il.below)
	case math.IsNaN(v) && il.suspend != nil:
		return "not a number"
	}
	return ""
}

// checkOutputs runs the output checks in order of severity.
func (g *Guard) checkOutputs(ctx context.Context, y []float64) ([]float64, string, error) {
	if len(y) != len(g.outs) {
		err := fmt.Errorf("safety: %s: device returned %d outputs, want %d: %w", g.name, len(y), len(g.outs), ErrOutput)
		g.count(func(c *Counters) { c.OutputViolations++ })
		g.emit(KindOutput, "", float64(len(y)), err.Error())
		if g.outMode == ModeTrip {
			return y, string(KindOutput), g.trip(ctx, KindOutput, "", float64(len(y)), err)
		}
		return y, string(KindOutput), err
	}
	if g.outMode != ModeOff {
		for j, v := range y {
			if finite(v) {
				continue
			}
			err := fmt.Errorf("safety: %s: output %s = %v is not finite: %w", g.name, g.outs[j], v, ErrOutput)
			g.count(func(c *Counters) { c.OutputViolations++ })
			if g.outMode == ModeTrip {
				return y, string(KindOutput), g.trip(ctx, KindOutput, g.outs[j], v, err)
			}
			g.emit(KindOutput, g.outs[j], v, err.Error())
			return y, string(KindOutput), err
		}
	}
	if err := g.checkTrips(ctx, y); err != nil {
		return y, string(KindInterlock), err
	}
	for _, f := range g.funcs {
		if ferr := f.fn(g.last, y); ferr != nil {
			err := fmt.Errorf("safety: %s: interlock %s: %w: %w", g.name, f.name, ferr, ErrInterlock)
			return y, string(KindInterlock), g.trip(ctx, KindInterlock, f.name, 0, err)
		}
	}
	// A suspender says the measurement was made in conditions it must not
	// be made in: the query is held and made again (Query), so neither
	// the saturation flags nor the ranges look at it.
	if s := g.suspended(y); s != nil {
		return y, string(KindSuspend), s
	}
	if g.saturation {
		saturated := false
		for j, v := range y {
			if math.Abs(v) >= g.sat[j] {
				saturated = true
				g.emit(KindSaturation, g.outs[j], v, fmt.Sprintf("output %s = %v at full scale %v", g.outs[j], v, g.sat[j]))
			}
		}
		if saturated {
			g.count(func(c *Counters) { c.Saturated++ })
		}
	}
	if g.ranges {
		for j, v := range y {
			if v >= g.outLo[j] && v <= g.outHi[j] {
				continue
			}
			err := fmt.Errorf("safety: %s: output %s = %v outside [%v, %v]: %w", g.name, g.outs[j], v, g.outLo[j], g.outHi[j], ErrOutput)
			g.count(func(c *Counters) { c.OutputViolations++ })
			g.emit(KindOutput, g.outs[j], v, err.Error())
			return y, string(KindOutput), err
		}
	}
	return y, "", nil
}

// checkTrips trips the guard when an interlock with action trip sees its
// output out of range.
func (g *Guard) checkTrips(ctx context.Context, y []float64) error {
	for _, il := range g.interlocks {
		if il.suspend != nil {
			continue
		}
		v := y[il.out]
		if what := il.violation(v); what != "" {
			err := fmt.Errorf("safety: %s: interlock %s: output %s = %v %s: %w", g.name, il.label, g.outs[il.out], v, what, ErrInterlock)
			return g.trip(ctx, KindInterlock, g.outs[il.out], v, err)
		}
	}
	return nil
}

// suspended returns the first suspender whose output y holds out of
// range, or nil.
func (g *Guard) suspended(y []float64) *suspension {
	for i, il := range g.interlocks {
		if il.suspend == nil {
			continue
		}
		if what := il.violation(y[il.out]); what != "" {
			return &suspension{il: i, value: y[il.out], what: what}
		}
	}
	return nil
}
