package safety

import (
	"context"
	"fmt"
	"math"
)

type interlock struct {
	label        string
	out          int
	above, below float64 // ±Inf when unset
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
	for _, il := range g.interlocks {
		v := y[il.out]
		var err error
		switch {
		case v > il.above:
			err = fmt.Errorf("safety: %s: interlock %s: output %s = %v above %v: %w", g.name, il.label, g.outs[il.out], v, il.above, ErrInterlock)
		case v < il.below:
			err = fmt.Errorf("safety: %s: interlock %s: output %s = %v below %v: %w", g.name, il.label, g.outs[il.out], v, il.below, ErrInterlock)
		default:
			continue
		}
		return y, string(KindInterlock), g.trip(ctx, KindInterlock, g.outs[il.out], v, err)
	}
	for _, f := range g.funcs {
		if ferr := f.fn(g.last, y); ferr != nil {
			err := fmt.Errorf("safety: %s: interlock %s: %w: %w", g.name, f.name, ferr, ErrInterlock)
			return y, string(KindInterlock), g.trip(ctx, KindInterlock, f.name, 0, err)
		}
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
