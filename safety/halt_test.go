package safety

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// haltingClock is a fake clock whose first rate-limit wait runs stop, as a
// Ctrl-C or a tripped interlock on another goroutine would land while a
// query waits for its turn, and then returns as if its time had passed.
type haltingClock struct {
	*fakeClock
	once sync.Once
	stop func()
}

func (c *haltingClock) Sleep(ctx context.Context, d time.Duration) error {
	c.once.Do(c.stop)
	return c.fakeClock.Sleep(context.WithoutCancel(ctx), d)
}

// TestHaltClosesTheGate goes through halt: SafeState runs while a query
// waits for the rate limit, after the query's last stop check. The query
// must be refused at the gate, so the device sees nothing after its safe
// state. A halt that set the stop reason but left the gate open would let
// the query through to a device already in its safe state.
func TestHaltClosesTheGate(t *testing.T) {
	for _, how := range []string{"SafeState", "Abort"} {
		t.Run(how, func(t *testing.T) {
			dev := newRecorder()
			var g *Guard
			var ssErr error
			clock := &haltingClock{fakeClock: newFakeClock()}
			clock.stop = func() {
				if how == "Abort" {
					ssErr = g.Abort()
				} else {
					ssErr = g.SafeState(context.Background())
				}
			}
			rate := 1.0
			g = mustNew(t, dev, Config{Rate: &rate}, WithClock(clock))
			ctx := context.Background()
			if _, err := g.Query(ctx, []float64{0, 0, 0, 0}); err != nil {
				t.Fatal(err)
			}
			// The second query waits a second for the rate limit; safe
			// state comes during that wait.
			_, err := g.Query(ctx, []float64{0.5, 0, 0, 0})
			if err == nil || (!errors.Is(err, ErrClosed) && !errors.Is(err, ErrTripped)) {
				t.Errorf("query during safe state: %v, want it refused", err)
			}
			if ssErr != nil {
				t.Errorf("%s: %v", how, ssErr)
			}
			if n := len(dev.inputs()); n != 1 || dev.safe.Load() != 1 {
				t.Errorf("device got %d queries and %d safe states, want 1 and 1: a query reached it after its safe state", n, dev.safe.Load())
			}
		})
	}
}
