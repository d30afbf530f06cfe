package safety

import "slices"

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
