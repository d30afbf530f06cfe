package x11

import (
	"context"
	"fmt"
	"image"
	"sync"
	"time"

	"github.com/jezek/xgb/randr"
	"github.com/jezek/xgb/xproto"
)

// state is what the server has told about the window, from the event
// goroutine and from generic (Present) events; frames wait on it.
type state struct {
	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every change
	done    chan struct{} // closed at the first loss

	// What the event goroutines need of the window, set once it is known:
	// they run from the connection's start, so they read it here, under mu.
	mon     Monitor
	present byte // the Present extension's opcode; 0: no Present events expected

	win      uint32
	mapped   bool
	obscured bool
	closing  bool // Close is destroying the window: its events are expected

	err         error // the first loss, kept: the window never counts as usable again
	last        error // the latest loss
	connLost    error
	unmapped    bool
	destroyed   bool
	moved       bool
	monitorGone bool

	idle     map[uint32]bool // pixmap → idle (not scanned out nor pending)
	complete map[uint32]presentEvent
	current  uint32 // the pixmap on screen
}

func (s *state) init() {
	s.changed = make(chan struct{})
	s.done = make(chan struct{})
	s.idle = map[uint32]bool{}
	s.complete = map[uint32]presentEvent{}
}

// broadcast wakes every waiter. s.mu is held.
func (s *state) broadcast() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// wait waits until ok (called under s.mu) holds, the connection or the
// window is gone (nothing more will come), or ctx is done. An unmapped or
// covered window is waited on: Blank restores it.
func (s *state) wait(ctx context.Context, ok func() bool) error {
	for {
		s.mu.Lock()
		if ok() {
			s.mu.Unlock()
			return nil
		}
		if s.connLost != nil || s.destroyed || s.monitorGone {
			err := s.err
			s.mu.Unlock()
			return err
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}

// reset starts tracking a new window.
func (s *state) reset(win uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.win, s.mapped, s.obscured = win, false, false
	s.unmapped, s.destroyed, s.moved = false, false, false
	clear(s.idle)
	clear(s.complete)
	s.current = 0
}

// lose records a loss; the first one is kept as the window's error.
func (s *state) lose(err error, mark func(*state)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if mark != nil {
		mark(s)
	}
	s.last = err
	if s.err == nil {
		s.err = err
		close(s.done)
	}
	s.broadcast()
}

// failure is the first loss, nil if none.
func (s *state) failure() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// latest is the latest loss, nil if none.
func (s *state) latest() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

// condition describes what is wrong with the window now (nil: nothing),
// whatever happened before.
func (s *state) condition(mon string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.connLost != nil:
		return s.connLost
	case s.monitorGone || s.destroyed || s.unmapped || s.moved:
		return s.last
	case s.obscured:
		return fmt.Errorf("another window covers part of monitor %s: %w", mon, ErrObscured)
	}
	return nil
}

// restored clears the flags of an unmapped or moved window that is back
// in place; the loss itself stays recorded.
func (s *state) restored() {
	s.mu.Lock()
	s.unmapped, s.moved = false, false
	s.mu.Unlock()
}

// snapshot is a copy of the loss flags.
type snapshot struct {
	err                                  error
	connLost                             error
	unmapped, destroyed, moved, obscured bool
	monitorGone                          bool
}

func (s *state) snapshot() snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return snapshot{err: s.err, connLost: s.connLost, unmapped: s.unmapped, destroyed: s.destroyed,
		moved: s.moved, obscured: s.obscured, monitorGone: s.monitorGone}
}

func (s *state) isObscured() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.obscured
}

func (s *state) closingNow() {
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
}

func (s *state) clearMapped() {
	s.mu.Lock()
	s.mapped = false
	s.mu.Unlock()
}

func (s *state) waitMapped(ctx context.Context, d time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	if err := s.wait(ctx, func() bool { return s.mapped }); err != nil {
		return fmt.Errorf("waiting for the window to be mapped: %w", err)
	}
	return nil
}

func (s *state) setIdle(pix uint32) {
	s.mu.Lock()
	s.idle[pix] = true
	s.broadcast()
	s.mu.Unlock()
}

func (s *state) setBusy(pix uint32) {
	s.mu.Lock()
	s.idle[pix] = false
	s.mu.Unlock()
}

func (s *state) setCurrent(pix uint32) {
	s.mu.Lock()
	s.current = pix
	s.mu.Unlock()
}

func (s *state) waitIdle(ctx context.Context, pix uint32) error {
	return s.wait(ctx, func() bool { return s.idle[pix] })
}

// waitComplete waits for the CompleteNotify of serial and forgets it and
// any older one.
func (s *state) waitComplete(ctx context.Context, serial uint32) (presentEvent, error) {
	var ev presentEvent
	err := s.wait(ctx, func() bool {
		e, ok := s.complete[serial]
		if ok {
			ev = e
			for k := range s.complete {
				if k-serial > 1<<31 || k == serial { // k ≤ serial, modulo 2³²
					delete(s.complete, k)
				}
			}
		}
		return ok
	})
	return ev, err
}

// onGE takes the Present events of the window; it runs on xgb's reader
// goroutine and must not block.
func (w *Window) onGE(b []byte) {
	s := &w.st
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.present == 0 {
		return
	}
	ev, ok := parsePresentEvent(b, s.present)
	if !ok || ev.window != s.win {
		return
	}
	switch ev.evtype {
	case presentEvCompleteNotify:
		s.complete[ev.serial] = ev
	case presentEvIdleNotify:
		s.idle[ev.pixmap] = true
	}
	s.broadcast()
}

// events reads the core events, errors and the end of the connection.
func (w *Window) events() {
	defer w.done.Done()
	s := &w.st
	for {
		ev, xerr := w.c.WaitForEvent()
		if ev == nil && xerr == nil {
			err := fmt.Errorf("connection to the X server %s closed: %w", w.addr, ErrLost)
			s.lose(err, func(s *state) { s.connLost = err })
			return
		}
		if xerr != nil {
			s.lose(fmt.Errorf("X error %v: %w", xerr, ErrLost), nil)
			continue
		}
		s.mu.Lock()
		win, closing, mon := xproto.Window(s.win), s.closing, s.mon
		s.mu.Unlock()
		switch e := ev.(type) {
		case xproto.MapNotifyEvent:
			if e.Window == win {
				s.mu.Lock()
				s.mapped = true
				s.broadcast()
				s.mu.Unlock()
			}
		case xproto.UnmapNotifyEvent:
			if e.Window == win && !closing {
				s.lose(fmt.Errorf("the window on monitor %s was unmapped: %w", mon.Name, ErrLost),
					func(s *state) { s.unmapped, s.mapped = true, false })
			}
		case xproto.DestroyNotifyEvent:
			if e.Window == win && !closing {
				s.lose(fmt.Errorf("the window on monitor %s was destroyed: %w", mon.Name, ErrLost),
					func(s *state) { s.destroyed, s.mapped = true, false })
			}
		case xproto.ConfigureNotifyEvent:
			r := image.Rect(int(e.X), int(e.Y), int(e.X)+int(e.Width), int(e.Y)+int(e.Height))
			if e.Window == win && !closing && (r != mon.Rect || e.BorderWidth != 0) {
				s.lose(fmt.Errorf("the window was moved to %s, off monitor %s: %w", FormatGeometry(r), mon, ErrLost),
					func(s *state) { s.moved = true })
			}
		case xproto.VisibilityNotifyEvent:
			if e.Window == win {
				s.mu.Lock()
				s.obscured = e.State != xproto.VisibilityUnobscured
				s.broadcast()
				s.mu.Unlock()
			}
		case randr.ScreenChangeNotifyEvent, randr.NotifyEvent:
			w.done.Add(1)
			go w.recheckMonitor()
		}
	}
}

// recheckMonitor looks for the window's monitor after a RandR change: a
// monitor unplugged or reconfigured leaves the window showing nothing, or
// showing somewhere else.
func (w *Window) recheckMonitor() {
	defer w.done.Done()
	w.st.mu.Lock()
	mon := w.st.mon
	w.st.mu.Unlock()
	ms, err := listMonitors(w.c, w.scr, w.rrMinor, w.hasRandR)
	if err != nil {
		return // the connection is going; events() reports it
	}
	for _, m := range ms {
		if m.Name == mon.Name && m.Rect == mon.Rect {
			return
		}
	}
	w.st.lose(fmt.Errorf("monitor %s is gone or changed (the monitors are now %v): %w", mon, ms, ErrLost),
		func(s *state) { s.monitorGone = true })
}
