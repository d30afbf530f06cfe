package safety

import (
	"context"
	"errors"
	"fmt"
	"slices"
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
	suspenders bool // an interlock suspends
	funcs      []namedFunc
	fid        *fidelity // nil: no model-fidelity interlock

	clock Clock
	sink  func(Event)
	evMu  sync.Mutex

	run atomic.Pointer[context.Context] // Do's context: ends a suspension when the run is interrupted

	mu        sync.Mutex // serializes queries; guards the fields below
	initial   []float64  // the device's state before the first query, if known: last after a suspension in safe state
	last      []float64  // last input sent to the device; nil before the first
	lastStart time.Time  // start of the last device query, on clock
	used      int        // device queries made, earlier sessions' included
	prior     int        // device queries made by earlier sessions of the run

	stop atomic.Pointer[stopReason] // set once, with gate closed; queries then fail with its error
	life context.Context            // cancelled when stop is set: interrupts waits and device calls
	kill context.CancelFunc
	gate gate // device calls in flight; closed when stop is set

	ssOnce sync.Once
	ssErr  error

	cmu sync.Mutex
	c   Counters
}

// stopReason is why a guard stopped: the error every later query fails
// with, and the reason its events report.
type stopReason struct {
	err    error
	reason string
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
	for i, il := range g.interlocks {
		if il.suspend == nil {
			continue
		}
		if _, ok := inner.(insitu.Reader); !ok {
			return nil, &ConfigError{Kind: configKind, Key: fmt.Sprintf("interlocks[%d].action", i),
				Msg: fmt.Sprintf("suspend reads the outputs while the run is held, without applying an input; %s cannot (a rig can)", g.name)}
		}
		if _, ok := inner.(insitu.SafeStater); il.suspend.safe && !ok {
			return nil, &ConfigError{Kind: configKind, Key: fmt.Sprintf("interlocks[%d].hold", i),
				Msg: fmt.Sprintf("safe: %s has no safe state", g.name)}
		}
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
//
// A query whose outputs a suspender finds out of range is held (see
// Interlock) and made again once the output is back in range: the caller
// gets the outputs of the valid measurement.
func (g *Guard) Query(ctx context.Context, x []float64) (y []float64, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	reason := ReasonPanic // kept if the device panics through us
	defer func() { g.finish(reason) }()
	if !g.suspenders {
		y, reason, err = g.query(ctx, x)
		return y, err
	}
	// Each try marks a trace of its own: the query's trace gets the marks
	// of the try that counts, not those of a held one or of the readings
	// while suspended.
	for {
		try := new(insitu.QueryTrace)
		y, reason, err = g.query(insitu.WithQueryTrace(ctx, try), x)
		s, ok := err.(*suspension)
		if !ok {
			for _, m := range try.Marks() {
				insitu.MarkQuery(ctx, m.Part, m.Event, m.At)
			}
			return y, err
		}
		if err = g.suspend(insitu.WithQueryTrace(ctx, nil), s); err != nil {
			reason = string(KindSuspend)
			return nil, err
		}
	}
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
