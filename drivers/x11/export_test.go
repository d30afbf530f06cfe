package x11

import "context"

// WithoutPresent makes a window confirm frames by round trip alone, as on a
// server without Present (Xvfb cannot turn its Present off).
func WithoutPresent(c Config) Config {
	c.noPresent = true
	return c
}

// SetMaxRequest makes w split frames as if the server took requests of at
// most n bytes and had no BIG-REQUESTS.
func SetMaxRequest(w *Window, n int) {
	w.mu.Lock()
	w.maxReq, w.big = n, false
	w.mu.Unlock()
}

// MonitorsRandR12 lists display's monitors as a server with RandR 1.2 to
// 1.4 (no monitor objects) shows them: one per active output.
func MonitorsRandR12(display string) ([]Monitor, error) {
	a, err := ParseDisplay(display)
	if err != nil {
		return nil, err
	}
	w := &Window{addr: a, stop: make(chan struct{})}
	w.st.init()
	if err := w.connect(context.Background()); err != nil {
		return nil, err
	}
	defer func() {
		w.c.Close()
		w.done.Wait()
	}()
	return listMonitors(w.c, w.scr, 2, true)
}
