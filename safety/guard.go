package safety

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/insitu-lab/insitu"
)

// Default durations for the zero Config.
const (
	DefaultGrace            = time.Second
	DefaultSafeStateTimeout = 10 * time.Second
)

// InterlockFunc is a programmatic interlock: it sees the input just applied
// and the output measured (neither may be retained or modified) and returns
// a non-nil error to trip the guard.
type InterlockFunc func(x, y []float64) error

// Option configures what a Config cannot hold.
type Option func(*options)

type options struct {
	clock   Clock
	sink    func(Event)
	funcs   []namedFunc
	initial []float64
	used    int
}

type namedFunc struct {
	name string
	fn   InterlockFunc
}

// WithClock sets the clock of the rate limit and of event times (default
// RealClock).
func WithClock(c Clock) Option { return func(o *options) { o.clock = c } }

// WithEvents sets the sink that receives every event. Calls are serialized,
// so the sink need not be safe for concurrent use, but it must not call the
// guard.
func WithEvents(sink func(Event)) Option { return func(o *options) { o.sink = sink } }

// WithInterlockFunc adds a programmatic interlock, checked after the
// configured ones.
func WithInterlockFunc(name string, f InterlockFunc) Option {
	return func(o *options) { o.funcs = append(o.funcs, namedFunc{name, f}) }
}

// WithInitialState gives the device's state before the first query, e.g.
// read back from the instrument, so the first query is slew-limited too.
// It takes precedence over Config.Initial.
func WithInitialState(x []float64) Option {
	return func(o *options) { o.initial = slices.Clone(x) }
}

// WithDeviceQueriesUsed tells the guard that earlier processes of the same
// run (before a resume) already made n device queries, so that
// Config.Budget holds for the run rather than for each process: the guard
// starts with n of its budget used. The run's total after this process is
// n + Counters().Inner. n must be ≥ 0.
func WithDeviceQueriesUsed(n int) Option { return func(o *options) { o.used = n } }

// Guard wraps a black box and is the only way the loop reaches it. Each
// query is checked, in order: finite input, bounds (reject or clamp), slew
// (reject or ramp), budget, rate limit, then the device call under a
// watchdog, then the outputs (finite, interlocks, saturation, ranges).
// Queries reach the device one at a time. Non-finite or out-of-bounds
// input never reaches the device, and the device gets its own copy of the
// input.
//
// The device's SafeState runs exactly once over the guard's life: on
// SafeState/Close, at the end of Do, on a trip (watchdog, interlock,
// non-finite output with check_outputs: trip, a panicking device) or on
// Abort. After it the guard refuses every query.
//
// Guard implements insitu.BlackBox, insitu.Batcher and insitu.SafeStater.
// It does not implement insitu.Differentiable, so a type assertion on it
// does not claim a gradient the device lacks; use Differentiable.
type Guard struct {
	inner insitu.BlackBox
	spec  insitu.Spec
	name  string
	outs  []string // output names for messages

	lo, hi []float64
	clamp  bool
	step   []float64 // +Inf where there is no slew limit
	slew   bool
	ramp   bool

	limiter     *rate.Limiter // nil: no rate limit
	minInterval time.Duration
	budget      int // < 0: none

	timeout, grace, ssTimeout time.Duration

	outMode    string
	outLo      []float64
	outHi      []float64
	ranges     bool
	sat        []float64 // +Inf where there is no saturation level
	saturation bool
	interlocks []interlock
	funcs      []namedFunc
	fid        *fidelity // nil: no model-fidelity interlock

	clock Clock
	sink  func(Event)
	evMu  sync.Mutex

	mu        sync.Mutex // serializes queries; guards the fields below
	last      []float64  // last input sent to the device; nil before the first
	lastStart time.Time  // start of the last device query, on clock
	used      int        // device queries made, earlier sessions' included
	prior     int        // device queries made by earlier sessions of the run

	stop atomic.Pointer[halt] // set once, with gate closed; queries then fail with its error
	life context.Context      // cancelled when stop is set: interrupts waits and device calls
	kill context.CancelFunc
	gate gate // device calls in flight; closed when stop is set

	ssOnce sync.Once
	ssErr  error

	cmu sync.Mutex
	c   Counters
}

type halt struct {
	err    error
	reason string
}

type interlock struct {
	label        string
	out          int
	above, below float64 // ±Inf when unset
}

// New wraps inner. It checks inner's Spec and cfg, resolves every name in
// cfg against the Spec (an unknown name is an error naming the key; exact
// match first, then a unique case-insensitive one, since viper lower-cases
// keys), and intersects the device space with cfg's bounds.
func New(inner insitu.BlackBox, cfg Config, opts ...Option) (*Guard, error) {
	if inner == nil {
		return nil, errors.New("safety: nil black box")
	}
	o := options{clock: RealClock{}}
	for _, opt := range opts {
		opt(&o)
	}
	if o.clock == nil {
		return nil, errors.New("safety: nil clock")
	}
	g, err := compile(inner.Spec(), cfg, o)
	if err != nil {
		return nil, err
	}
	g.inner = inner
	g.life, g.kill = context.WithCancel(context.Background())
	return g, nil
}

// Check runs every check New makes of cfg against a device with this Spec
// (names, bounds, max_step, initial, output_ranges, saturation,
// interlocks, and Config.Validate), without the device, so a rig's safety
// section can be checked before its hardware is opened. It returns the
// errors New would.
func Check(spec insitu.Spec, cfg Config) error {
	_, err := compile(spec, cfg, options{clock: RealClock{}})
	return err
}

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
		grace:     cmp0(cfg.Grace, DefaultGrace),
		ssTimeout: cmp0(cfg.SafeStateTimeout, DefaultSafeStateTimeout),
		outMode:   cmpS(cfg.CheckOutputs, ModeError),
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

	// Bounds: the strictest of device and config wins.
	g.lo, g.hi = slices.Clone(spec.In.Lower), slices.Clone(spec.In.Upper)
	loKey := make([]string, n) // the key that narrowed each bound, for errors
	for _, k := range sortedKeys(cfg.Lower) {
		if i, ok := resolve(coords, "lower", k, "coordinate"); ok {
			g.lo[i], loKey[i] = max(g.lo[i], cfg.Lower[k]), "lower."+k
		}
	}
	for _, k := range sortedKeys(cfg.Upper) {
		if i, ok := resolve(coords, "upper", k, "coordinate"); ok {
			g.hi[i] = min(g.hi[i], cfg.Upper[k])
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
	g.step = fill(n, math.Inf(1))
	if v, ok := cfg.MaxStep[AnyKey]; ok {
		g.step = fill(n, v)
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
	g.outLo, g.outHi = fill(m, math.Inf(-1)), fill(m, math.Inf(1))
	for _, k := range sortedKeys(cfg.OutputRanges) {
		if j, ok := resolve(outs, "output_ranges", k, "output"); ok {
			g.outLo[j], g.outHi[j] = cfg.OutputRanges[k].Lo, cfg.OutputRanges[k].Hi
			g.ranges = true
		}
	}
	g.sat = fill(m, math.Inf(1))
	if v, ok := cfg.Saturation[AnyKey]; ok {
		g.sat, g.saturation = fill(m, v), true
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
		Name: spec.Name,
		In:   spec.In.Narrowed(g.lo, g.hi),
		Out:  slices.Clone(spec.Out),
	}
	return g, nil
}

// Spec returns the device's Spec with the intersected input space. The
// slices are shared: do not modify them.
func (g *Guard) Spec() insitu.Spec { return g.spec }

// Counters returns a snapshot of the counters.
func (g *Guard) Counters() Counters {
	g.cmu.Lock()
	defer g.cmu.Unlock()
	return g.c.clone()
}

// Err returns nil while the guard accepts queries, and otherwise the error
// every query gets: ErrTripped (wrapping the cause) or ErrClosed.
func (g *Guard) Err() error {
	if h := g.stop.Load(); h != nil {
		return h.err
	}
	return nil
}

// Query checks x, sends a copy to the device (several, when ramping) and
// checks the output. When an output check fails the measured output is
// returned with the ErrOutput or ErrInterlock error, so it can be
// journaled.
func (g *Guard) Query(ctx context.Context, x []float64) (y []float64, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	reason := ReasonPanic // kept if the device panics through us
	defer func() { g.finish(reason) }()
	y, reason, err = g.query(ctx, x)
	return y, err
}

// QueryBatch answers xs one at a time through all the checks, stopping at
// the first error; it returns the outputs of the queries before it.
func (g *Guard) QueryBatch(ctx context.Context, xs [][]float64) ([][]float64, error) {
	ys := make([][]float64, 0, len(xs))
	for i, x := range xs {
		y, err := g.Query(ctx, x)
		if err != nil {
			return ys, fmt.Errorf("query %d: %w", i, err)
		}
		ys = append(ys, y)
	}
	return ys, nil
}

func (g *Guard) finish(reason string) {
	g.cmu.Lock()
	g.c.Attempted++
	if reason == "" {
		g.c.Passed++
	} else {
		g.c.Rejected[reason]++
	}
	g.cmu.Unlock()
}

func (g *Guard) count(f func(c *Counters)) {
	g.cmu.Lock()
	f(&g.c)
	g.cmu.Unlock()
}

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

// errDeadline marks the watchdog's own deadline, to tell it from the
// caller's.
var errDeadline = errors.New("watchdog deadline")

type result struct {
	y        []float64
	err      error
	panicked bool
	panicVal any
}

// call runs the device query, under the watchdog when there is a timeout.
// The caller has entered the gate; the device call leaves it when the
// device returns.
func (g *Guard) call(ctx context.Context, x []float64) ([]float64, string, error) {
	if g.timeout <= 0 {
		y, err := g.callDirect(ctx, x)
		if h := g.stop.Load(); h != nil { // aborted while in flight
			return nil, h.reason, h.err
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, ReasonCanceled, err
			}
			return nil, ReasonDevice, err
		}
		return y, "", nil
	}

	wctx, cancel := context.WithTimeoutCause(ctx, g.timeout, errDeadline)
	defer cancel()
	defer context.AfterFunc(g.life, cancel)() // Abort cancels the query in flight
	done := make(chan result, 1)              // buffered: an abandoned call can still finish
	gc := new(gateCall)
	go func() {
		var r result
		defer func() {
			if p := recover(); p != nil {
				r = result{panicked: true, panicVal: p}
			}
			// Out of the gate before the result is handed over, so a trip
			// on this result does not wait for its own call.
			g.gate.leave(gc)
			done <- r
		}()
		r.y, r.err = g.inner.Query(wctx, x)
	}()

	var r result
	late := false
	select {
	case r = <-done:
	case <-wctx.Done():
		// Give the device a grace period to notice the cancellation, so
		// SafeState does not race a query still talking to it.
		late = true
		t := time.NewTimer(g.grace)
		select {
		case r = <-done:
			t.Stop()
		case <-t.C:
			// Still running: the device state is unknown and a goroutine
			// may still drive it, so no further query may start. Safe
			// state does not wait for it again, but reports it.
			g.gate.abandon(gc)
			cause := fmt.Errorf("safety: %s: device query did not return within %v + %v grace: %w",
				g.name, g.timeout, g.grace, ErrWatchdog)
			if !errors.Is(context.Cause(wctx), errDeadline) {
				cause = fmt.Errorf("safety: %s: device query did not return within %v of cancellation: %w",
					g.name, g.grace, ErrWatchdog)
			}
			return nil, string(KindWatchdog), g.trip(ctx, KindWatchdog, "", g.timeout.Seconds(), cause)
		}
	}
	if r.panicked {
		g.trip(ctx, KindPanic, "", 0, fmt.Errorf("safety: %s: device panicked: %v", g.name, r.panicVal))
		panic(r.panicVal)
	}
	if (late || r.err != nil) && errors.Is(context.Cause(wctx), errDeadline) {
		cause := fmt.Errorf("safety: %s: device query overran its %v timeout: %w", g.name, g.timeout, ErrWatchdog)
		return nil, string(KindWatchdog), g.trip(ctx, KindWatchdog, "", g.timeout.Seconds(), cause)
	}
	if h := g.stop.Load(); h != nil { // aborted while in flight
		return nil, h.reason, h.err
	}
	if r.err != nil {
		if ctx.Err() != nil {
			return nil, ReasonCanceled, r.err
		}
		return nil, ReasonDevice, r.err
	}
	return r.y, "", nil
}

// callDirect queries on the caller's goroutine; a panicking device trips
// the guard before the panic goes on.
func (g *Guard) callDirect(ctx context.Context, x []float64) ([]float64, error) {
	defer func() {
		g.gate.leave(nil) // first, so a trip here does not wait for this call
		if p := recover(); p != nil {
			g.trip(ctx, KindPanic, "", 0, fmt.Errorf("safety: %s: device panicked: %v", g.name, p))
			panic(p)
		}
	}()
	return g.inner.Query(ctx, x)
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

// emit delivers one event to the sink, one at a time.
func (g *Guard) emit(kind Kind, name string, value float64, detail string) {
	if g.sink == nil {
		return
	}
	e := Event{Time: g.clock.Now(), Kind: kind, Detail: detail, Name: name, Value: value}
	g.evMu.Lock()
	defer g.evMu.Unlock()
	g.sink(e)
}

// Skip passes Skip on to a Sequenced device (a seeded twin) and does
// nothing for any other: see insitu.Sequenced.
func (g *Guard) Skip(n uint64) {
	if s, ok := g.inner.(insitu.Sequenced); ok {
		s.Skip(n)
	}
}

// Differentiable returns the device's exact VJP behind the guard's input
// checks (finite, inside the bounds, finite cotangent), or false when the
// device has none. VJP does not drive the device, so it is not rate
// limited, budgeted, slew limited or counted, and it runs concurrently
// with queries under the device's own rules. It is a device call all the
// same: it is refused once the guard has stopped, and safe state waits for
// one in flight as for a query.
func (g *Guard) Differentiable() (insitu.Differentiable, bool) {
	d, ok := g.inner.(insitu.Differentiable)
	if !ok {
		return nil, false
	}
	return vjp{g, d}, true
}

type vjp struct {
	g *Guard
	d insitu.Differentiable
}

func (v vjp) VJP(ctx context.Context, x, w []float64) ([]float64, error) {
	g := v.g
	if err := g.Err(); err != nil {
		return nil, err
	}
	if len(x) != len(g.lo) {
		return nil, fmt.Errorf("safety: %s: VJP input has %d coordinates, want %d: %w", g.name, len(x), len(g.lo), ErrOutOfBounds)
	}
	for i, xi := range x {
		switch {
		case !finite(xi):
			return nil, fmt.Errorf("safety: %s: VJP input %s = %v: %w", g.name, g.spec.In.Name(i), xi, ErrNonFinite)
		case xi < g.lo[i] || xi > g.hi[i]:
			return nil, fmt.Errorf("safety: %s: VJP input %s = %v outside [%v, %v]: %w", g.name, g.spec.In.Name(i), xi, g.lo[i], g.hi[i], ErrOutOfBounds)
		}
	}
	if len(w) != len(g.outs) {
		return nil, fmt.Errorf("safety: %s: VJP cotangent has %d components, want %d", g.name, len(w), len(g.outs))
	}
	for j, wj := range w {
		if !finite(wj) {
			return nil, fmt.Errorf("safety: %s: VJP cotangent %s = %v: %w", g.name, g.outs[j], wj, ErrNonFinite)
		}
	}
	if !g.gate.enter() {
		return nil, g.Err()
	}
	defer g.gate.leave(nil)
	return v.d.VJP(ctx, slices.Clone(x), slices.Clone(w))
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

func fill(n int, v float64) []float64 {
	s := make([]float64, n)
	for i := range s {
		s[i] = v
	}
	return s
}

func cmp0(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

func cmpS(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
