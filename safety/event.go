package safety

import (
	"maps"
	"time"
)

// Kind says what a safety event is about.
type Kind string

// Event kinds.
const (
	KindNonFinite  Kind = "nonfinite"  // a non-finite input was rejected
	KindBounds     Kind = "bounds"     // an input outside the bounds was rejected
	KindClamp      Kind = "clamp"      // an input coordinate was clamped (one event per coordinate)
	KindSlew       Kind = "slew"       // a step larger than max_step was rejected
	KindRamp       Kind = "ramp"       // a large step was split into Value device queries
	KindRate       Kind = "rate"       // a query gave up waiting for the rate limit
	KindBudget     Kind = "budget"     // a query was refused by the budget
	KindWatchdog   Kind = "watchdog"   // a device query overran its timeout; the guard tripped
	KindOutput     Kind = "output"     // an output was non-finite or outside its range
	KindSaturation Kind = "saturation" // an output reached its full-scale level
	KindInterlock  Kind = "interlock"  // an interlock fired; the guard tripped
	KindSafeState  Kind = "safestate"  // the device was put in its safe state (Detail has the outcome)
	KindAbort      Kind = "abort"      // Abort was called
	KindPanic      Kind = "panic"      // the device panicked; the guard tripped
	KindSuspend    Kind = "suspend"    // a suspender held the run (or gave up, tripping the guard)
	KindResume     Kind = "resume"     // a suspended run went on; Value is how long it was held, in seconds
)

// Event is one thing the guard did or refused, for the run journal. Name is
// the coordinate or output concerned (may be empty) and Value its value.
type Event struct {
	Time   time.Time
	Kind   Kind
	Detail string
	Name   string
	Value  float64
}

// Rejection reasons in Counters.Rejected, besides the event kinds that
// reject a query (nonfinite, bounds, slew, rate, budget, watchdog, output,
// interlock).
const (
	ReasonTripped  = "tripped"  // the guard had tripped or been aborted
	ReasonClosed   = "closed"   // the guard had been put in its safe state
	ReasonCanceled = "canceled" // the caller's context was done before the device was reached
	ReasonDevice   = "device"   // the device returned an error
	ReasonPanic    = "panic"    // the device panicked
)

// Counters is a snapshot of what the guard has done. Every Query call
// (each input of a QueryBatch) counts once in Attempted and then exactly
// once in Passed or Rejected.
type Counters struct {
	Attempted uint64
	Passed    uint64
	Rejected  map[string]uint64 // by reason: an event kind or a Reason constant

	Inner      uint64        // device queries made, ramp steps included
	Clamped    uint64        // queries with at least one clamped coordinate
	Ramped     uint64        // queries that needed a ramp
	RampSteps  uint64        // device queries made before the target, inside ramps
	RateWaits  uint64        // device queries that waited for the rate limit or min_interval
	RateWaited time.Duration // total time waited, on the guard's clock

	Trips            uint64 // watchdog, interlock, output trips and Abort (a guard trips at most once)
	SafeStates       uint64 // calls of the device's SafeState (at most one)
	OutputViolations uint64 // non-finite or out-of-range outputs
	Saturated        uint64 // device queries with at least one saturated output

	Suspends  uint64        // times a suspender held the run
	Suspended time.Duration // total time held, on the guard's clock
}

// RejectedTotal is the sum of Rejected.
func (c Counters) RejectedTotal() uint64 {
	var n uint64
	for _, v := range c.Rejected {
		n += v
	}
	return n
}

func (c Counters) clone() Counters {
	c.Rejected = maps.Clone(c.Rejected)
	if c.Rejected == nil {
		c.Rejected = map[string]uint64{}
	}
	return c
}
