package safety

import "errors"

// Sentinel errors. Every refusal the guard itself makes wraps one of them
// (device errors and context errors pass through as they are), with the
// device name and the offending coordinate or output in the message, e.g.
//
//	safety: cnon: input x3 = NaN: non-finite input
//
// so callers branch with errors.Is and people read the message.
var (
	ErrNonFinite   = errors.New("non-finite input")
	ErrOutOfBounds = errors.New("input out of bounds")
	ErrSlew        = errors.New("slew limit exceeded")
	ErrBudget      = errors.New("query budget exhausted")
	ErrTripped     = errors.New("guard tripped")
	ErrInterlock   = errors.New("interlock tripped")
	ErrWatchdog    = errors.New("watchdog timeout")
	ErrOutput      = errors.New("output check failed")
	ErrAborted     = errors.New("aborted")
	ErrClosed      = errors.New("guard closed after safe state")
	// ErrQueryInFlight is the outcome of a safe state that ran while a
	// device call was still in flight past its grace.
	ErrQueryInFlight = errors.New("safe state overlapped a device call")
)

// IsRefusal reports whether err is a refusal the guard made before any
// device was touched: a non-finite or out-of-bounds input, a step over the
// slew limit that it does not ramp, the budget spent. The same input gets
// the same answer again, so a journal records it as such and a resume
// does not retry it; a device error, a trip or an interruption is not a
// refusal.
func IsRefusal(err error) bool {
	for _, stopped := range []error{ErrTripped, ErrInterlock, ErrWatchdog, ErrAborted, ErrClosed, ErrQueryInFlight} {
		if errors.Is(err, stopped) { // whatever the cause it carries
			return false
		}
	}
	return errors.Is(err, ErrNonFinite) || errors.Is(err, ErrOutOfBounds) || errors.Is(err, ErrSlew) || errors.Is(err, ErrBudget)
}
