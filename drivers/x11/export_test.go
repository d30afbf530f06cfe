package x11

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
