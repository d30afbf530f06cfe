// Package sleep waits for a duration or a context, whichever ends first:
// the settle, ramp and retry waits of drivers, instruments and the guard.
package sleep

import (
	"context"
	"time"
)

// For waits d, or until ctx is done, whichever is first. It returns nil
// after d, and context.Cause(ctx) when ctx ended first (at once if it is
// already done). d ≤ 0 does not wait.
func For(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return context.Cause(ctx)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
