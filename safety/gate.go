package safety

import (
	"sync"
	"time"
)

// gate admits device calls until the guard stops, and lets safe state wait
// for the calls still in flight. It is separate from Guard.mu, which a
// query holds across its checks and waits, so that Abort can close it and
// wait for the device without waiting for the query lock.
//
// A device call enters the gate just before it reaches the device and
// leaves it when the device returns, on whichever goroutine made the call.
// Closing the gate and setting Guard.stop are one step under its lock (see
// Guard.halt), so a call either entered before the stop, and safe state
// waits for it, or is refused.
type gate struct {
	mu        sync.Mutex
	closed    bool
	inFlight  int           // device calls entered and not yet returned
	abandoned int           // of those, calls the watchdog has stopped waiting for
	idle      chan struct{} // while wait runs: closed once inFlight == abandoned
}

// gateCall is a device call that the watchdog may abandon.
type gateCall struct{ left, abandoned bool }

// enter admits a device call, or returns false once the gate is closed.
func (gt *gate) enter() bool {
	gt.mu.Lock()
	defer gt.mu.Unlock()
	if gt.closed {
		return false
	}
	gt.inFlight++
	return true
}

// leave ends a device call; c is nil for a call that cannot be abandoned.
func (gt *gate) leave(c *gateCall) {
	gt.mu.Lock()
	defer gt.mu.Unlock()
	gt.inFlight--
	if c != nil {
		c.left = true
		if c.abandoned {
			gt.abandoned--
		}
	}
	gt.signal()
}

// abandon records that nobody waits for c any more (the watchdog gave it
// up after its grace), so safe state does not wait for it a second time.
func (gt *gate) abandon(c *gateCall) {
	gt.mu.Lock()
	defer gt.mu.Unlock()
	if c.left || c.abandoned {
		return
	}
	c.abandoned = true
	gt.abandoned++
	gt.signal()
}

func (gt *gate) signal() {
	if gt.idle != nil && gt.inFlight == gt.abandoned {
		close(gt.idle)
		gt.idle = nil
	}
}

// wait waits up to grace for every device call in flight that has not been
// abandoned to return. It returns how many calls are still in flight and
// how many of those the watchdog had abandoned. Only one wait may run at
// a time (safe state runs once).
func (gt *gate) wait(grace time.Duration) (inFlight, abandoned int) {
	gt.mu.Lock()
	if gt.inFlight == gt.abandoned {
		defer gt.mu.Unlock()
		return gt.inFlight, gt.abandoned
	}
	idle := make(chan struct{})
	gt.idle = idle
	gt.mu.Unlock()

	t := time.NewTimer(grace)
	select {
	case <-idle:
		t.Stop()
	case <-t.C:
	}
	gt.mu.Lock()
	defer gt.mu.Unlock()
	gt.idle = nil
	return gt.inFlight, gt.abandoned
}
