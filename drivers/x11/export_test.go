package x11

// WithoutPresent makes a window confirm frames by round trip alone, as on a
// server without Present (Xvfb cannot turn its Present off).
func WithoutPresent(c Config) Config {
	c.noPresent = true
	return c
}
