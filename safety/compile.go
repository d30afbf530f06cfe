package safety

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"golang.org/x/time/rate"

	"github.com/insitu-lab/insitu"
)

// compile checks spec and cfg and builds a Guard without a device.
func compile(spec insitu.Spec, cfg Config, o options) (*Guard, error) {
	if err := spec.Validate(); err != nil {
		return nil, fmt.Errorf("safety: %w", err)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}

	n, m := spec.In.Dim(), len(spec.Out)
	g := &Guard{
		name:      spec.Name,
		clamp:     cfg.BoundsMode == ModeClamp,
		ramp:      cfg.SlewMode == ModeRamp,
		budget:    -1,
		timeout:   cfg.Timeout,
		grace:     cmp.Or(cfg.Grace, DefaultGrace),
		ssTimeout: cmp.Or(cfg.SafeStateTimeout, DefaultSafeStateTimeout),
		outMode:   cmp.Or(cfg.CheckOutputs, ModeError),
		clock:     o.clock,
		sink:      o.sink,
		funcs:     o.funcs,
		c:         Counters{Rejected: map[string]uint64{}},
	}
	if cfg.ModelFidelity != nil {
		g.fid = &fidelity{cfg: *cfg.ModelFidelity}
	}
	if g.name == "" {
		g.name = "device"
	}
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, &ConfigError{Kind: configKind, Key: key, Msg: fmt.Sprintf(format, args...)})
	}

	in := make([]string, n)
	for i := range in {
		in[i] = spec.In.Name(i)
	}
	g.outs = make([]string, m)
	for j, s := range spec.Out {
		if s == "" {
			s = fmt.Sprintf("y[%d]", j)
		}
		g.outs[j] = s
	}
	coords, outs := newNames(in), newNames(g.outs)
	resolve := func(nm names, key, k, what string) (int, bool) {
		i, ok := nm.index(k)
		if !ok {
			bad(key+"."+k, "unknown %s %q (known: %s)", what, k, strings.Join(nm.list, ", "))
		}
		return i, ok
	}

	// Bounds narrow the device's range; one outside it is an error naming
	// both, never silently clipped.
	g.lo, g.hi = slices.Clone(spec.In.Lower), slices.Clone(spec.In.Upper)
	loKey := make([]string, n) // the key that narrowed each bound, for errors
	unit := func(i int) string {
		if i < len(spec.In.Units) && spec.In.Units[i] != "" {
			return " " + spec.In.Units[i]
		}
		return ""
	}
	for _, k := range sortedKeys(cfg.Lower) {
		if i, ok := resolve(coords, "lower", k, "coordinate"); ok {
			if v := cfg.Lower[k]; v < spec.In.Lower[i] {
				bad("lower."+k, "%v%s is below the device's range [%v, %v]%s of %s", v, unit(i), spec.In.Lower[i], spec.In.Upper[i], unit(i), in[i])
				continue
			}
			g.lo[i], loKey[i] = cfg.Lower[k], "lower."+k
		}
	}
	for _, k := range sortedKeys(cfg.Upper) {
		if i, ok := resolve(coords, "upper", k, "coordinate"); ok {
			if v := cfg.Upper[k]; v > spec.In.Upper[i] {
				bad("upper."+k, "%v%s is above the device's range [%v, %v]%s of %s", v, unit(i), spec.In.Lower[i], spec.In.Upper[i], unit(i), in[i])
				continue
			}
			g.hi[i] = cfg.Upper[k]
			if loKey[i] == "" {
				loKey[i] = "upper." + k
			}
		}
	}
	for i := range n {
		if g.lo[i] > g.hi[i] {
			bad(loKey[i], "bounds on coordinate %s do not intersect the device range [%v, %v]",
				in[i], spec.In.Lower[i], spec.In.Upper[i])
		}
	}

	// Slew limits.
	g.step = slices.Repeat([]float64{math.Inf(1)}, n)
	if v, ok := cfg.MaxStep[AnyKey]; ok {
		g.step = slices.Repeat([]float64{v}, n)
	}
	for _, k := range sortedKeys(cfg.MaxStep) {
		if k == AnyKey {
			continue
		}
		if i, ok := resolve(coords, "max_step", k, "coordinate"); ok {
			g.step[i] = cfg.MaxStep[k]
		}
	}
	for i, s := range g.step {
		if math.IsInf(s, 1) {
			continue
		}
		g.slew = true
		// A step below a few ulps would let a ramp stall.
		top := max(math.Abs(g.lo[i]), math.Abs(g.hi[i]))
		if ulp := math.Nextafter(top, math.Inf(1)) - top; s < 4*ulp {
			bad("max_step."+in[i], "%v is below the float resolution %v of the bounds", s, ulp)
		}
	}

	// Initial state.
	switch {
	case o.initial != nil:
		if len(o.initial) != n {
			bad("initial", "WithInitialState has %d coordinates, want %d", len(o.initial), n)
		} else {
			g.last = o.initial
		}
	case len(cfg.Initial) > 0:
		g.last = make([]float64, n)
		seen := make([]bool, n)
		for _, k := range sortedKeys(cfg.Initial) {
			if i, ok := resolve(coords, "initial", k, "coordinate"); ok {
				g.last[i], seen[i] = cfg.Initial[k], true
			}
		}
		var missing []string
		for i, s := range seen {
			if !s {
				missing = append(missing, in[i])
			}
		}
		if len(missing) > 0 {
			bad("initial", "missing coordinates %s: give every coordinate or none", strings.Join(missing, ", "))
		}
	}
	if len(g.last) == n {
		g.initial = slices.Clone(g.last)
	}
	if g.last != nil && len(g.last) == n {
		for i, v := range g.last {
			// Inside the bounds so every ramp stays inside (the box is convex).
			if !finite(v) || v < g.lo[i] || v > g.hi[i] {
				bad("initial."+in[i], "%v is outside the bounds [%v, %v]", v, g.lo[i], g.hi[i])
			}
		}
	}

	// Rate and budget.
	if cfg.Rate != nil {
		g.limiter = rate.NewLimiter(rate.Limit(*cfg.Rate), max(cfg.Burst, 1))
	}
	g.minInterval = cfg.MinInterval
	if cfg.Budget != nil {
		g.budget = *cfg.Budget
	}

	// Outputs.
	g.outLo, g.outHi = slices.Repeat([]float64{math.Inf(-1)}, m), slices.Repeat([]float64{math.Inf(1)}, m)
	for _, k := range sortedKeys(cfg.OutputRanges) {
		if j, ok := resolve(outs, "output_ranges", k, "output"); ok {
			g.outLo[j], g.outHi[j] = cfg.OutputRanges[k].Lo, cfg.OutputRanges[k].Hi
			g.ranges = true
		}
	}
	g.sat = slices.Repeat([]float64{math.Inf(1)}, m)
	if v, ok := cfg.Saturation[AnyKey]; ok {
		g.sat, g.saturation = slices.Repeat([]float64{v}, m), true
	}
	for _, k := range sortedKeys(cfg.Saturation) {
		if k == AnyKey {
			continue
		}
		if j, ok := resolve(outs, "saturation", k, "output"); ok {
			g.sat[j], g.saturation = cfg.Saturation[k], true
		}
	}
	for i, il := range cfg.Interlocks {
		j, ok := outs.index(il.Output)
		if !ok {
			bad(fmt.Sprintf("interlocks[%d].output", i), "unknown output %q (known: %s)", il.Output, strings.Join(g.outs, ", "))
			continue
		}
		c := interlock{label: il.label(), out: j, above: math.Inf(1), below: math.Inf(-1)}
		if il.suspends() {
			g.suspenders = true
			c.suspend = &suspender{
				safe: il.Hold == HoldSafe, poll: cmp.Or(il.Poll, DefaultPoll),
				resumeAfter: il.ResumeAfter, giveUpAfter: il.GiveUpAfter,
			}
		}
		if il.Above != nil {
			c.above = *il.Above
		}
		if il.Below != nil {
			c.below = *il.Below
		}
		g.interlocks = append(g.interlocks, c)
	}
	for i, f := range g.funcs {
		if f.fn == nil {
			bad(fmt.Sprintf("WithInterlockFunc[%d]", i), "nil function %q", f.name)
		}
	}
	if o.used < 0 {
		bad("WithDeviceQueriesUsed", "must be ≥ 0, got %d", o.used)
	}
	g.used, g.prior = o.used, o.used
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	g.spec = insitu.Spec{
		Name:     spec.Name,
		In:       spec.In.Narrowed(g.lo, g.hi),
		Out:      slices.Clone(spec.Out),
		OutUnits: slices.Clone(spec.OutUnits),
	}
	return g, nil
}

// names resolves config keys to indices: exact first, then a unique
// case-insensitive match.
type names struct {
	list  []string
	exact map[string]int
	fold  map[string]int // -1 when ambiguous
}

func newNames(list []string) names {
	nm := names{list: list, exact: map[string]int{}, fold: map[string]int{}}
	for i, s := range list {
		nm.exact[s] = i
		k := strings.ToLower(s)
		if _, dup := nm.fold[k]; dup {
			nm.fold[k] = -1
		} else {
			nm.fold[k] = i
		}
	}
	return nm
}

func (nm names) index(k string) (int, bool) {
	if i, ok := nm.exact[k]; ok {
		return i, true
	}
	i, ok := nm.fold[strings.ToLower(k)]
	return i, ok && i >= 0
}
