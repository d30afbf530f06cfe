package safety

import (
	"context"
	"time"

	"github.com/insitu-lab/insitu/internal/sleep"
)

// Clock is the time source of the rate limit and of event times. Tests
// inject a fake whose Sleep advances its Now, so rate limits are checked in
// fake time; the watchdog always uses real time, since it must catch a
// device that really hangs. Implementations must be safe for concurrent
// use (events are stamped from Abort's goroutine too).
type Clock interface {
	Now() time.Time
	// Sleep waits for d or until ctx is done, whichever is first, and
	// returns ctx's error in the second case.
	Sleep(ctx context.Context, d time.Duration) error
}

// RealClock is the wall clock.
type RealClock struct{}

// Now returns time.Now().
func (RealClock) Now() time.Time { return time.Now() }

// Sleep waits for d or ctx.
func (RealClock) Sleep(ctx context.Context, d time.Duration) error {
	return sleep.For(ctx, d)
}
