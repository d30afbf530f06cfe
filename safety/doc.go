// Package safety holds the guard every query to a device passes through.
//
// A Guard wraps any insitu.BlackBox and is itself one. Before a query
// reaches the device it checks, in order:
//
//  1. every input coordinate is finite (always; the error names it);
//  2. the input lies in the intersection of the device's space and the
//     configured bounds — rejected (default) or clamped (counted, reported);
//  3. no coordinate moves by more than max_step from the last input sent to
//     the device — rejected (default) or ramped: split into device queries
//     that move every coordinate together by at most its step, QCoDeS style
//     (full steps, then the remainder), the output being the last step's;
//  4. the query budget (ramp steps count; a ramp that cannot finish inside
//     the budget is refused before it starts);
//  5. the rate limit (golang.org/x/time/rate, on an injectable Clock) and
//     the minimum interval between device queries; waits honour ctx.
//
// The device query then runs under a watchdog: if it overruns the timeout
// the device state is unknown, so the guard puts the device in its safe
// state and trips. Outputs are checked afterwards: finite, interlocks
// (which trip), suspenders (interlocks with action suspend, which hold the
// query until their output has been back in range for a while, reading
// the outputs without applying an input meanwhile, then make it again),
// saturation (flagged), plausible ranges.
//
// The device's SafeState runs exactly once over the guard's life, whichever
// comes first: SafeState or Close, the end of Do (success, error, panic,
// cancelled context), a trip, or Abort (the second Ctrl-C). It always gets
// a fresh context with its own timeout, since the run's context is often
// already cancelled by then. From the moment it begins no device call
// starts, and it first waits up to the grace for a call in flight; one
// still running after that is reported (ErrQueryInFlight). Afterwards the
// guard refuses every query.
//
// Every rejection, clamp, ramp, trip and safe state is counted (Counters)
// and reported as an Event to an optional sink, so the run journal records
// what the optimizer attempted and what the device actually got. Errors
// wrap sentinel values (ErrNonFinite, ErrOutOfBounds, ErrSlew, ErrBudget,
// ErrTripped, ErrInterlock, ErrWatchdog, ErrOutput) for errors.Is.
//
// A typical run:
//
//	g, err := safety.New(device, cfg.Safety, safety.WithEvents(journalEvent))
//	if err != nil { ... }
//	go func() { <-secondInterrupt; g.Abort() }()
//	err = g.Do(ctx, func(ctx context.Context) error { return loop.Run(ctx, g, ...) })
package safety
