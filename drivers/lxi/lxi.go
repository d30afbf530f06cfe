// Package lxi is raw SCPI over TCP (the LXI "socket" port, 5025): no
// framing, newline-terminated messages. *Conn satisfies scpi.Conn.
//
// Reconnect semantics. A raw socket has no device clear, so the connection
// is the unit of recovery:
//   - A read that ends in EOF, a reset or a timeout leaves the connection
//     broken (after a timeout a late reply would otherwise answer the next
//     query). The error is returned; the query is not retried, because the
//     command may already have acted.
//   - The next Write on a broken connection dials again first. So does a
//     Write on a connection the instrument closed while it was idle (found
//     with a non-blocking peek), so an idle drop costs no query.
//   - A Write that fails before any byte was sent (a connection the peer had
//     closed) is retried once on a fresh connection; one that failed after
//     sending some bytes is not, since a partial command may have acted.
package lxi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultPort is the LXI raw SCPI socket port.
const DefaultPort = "5025"

// Config configures a connection.
type Config struct {
	Address     string        `mapstructure:"address" doc:"host or host:port; the port defaults to 5025"`
	DialTimeout time.Duration `mapstructure:"dial_timeout" doc:"bound on connecting; 0: 3s"`
	Timeout     time.Duration `mapstructure:"timeout" doc:"bound on an exchange without a deadline of its own; 0: 5s"`
}

// Defaults fills unset fields and adds the default port.
func (c *Config) Defaults() {
	if c.Address != "" {
		if _, _, err := net.SplitHostPort(c.Address); err != nil {
			c.Address = net.JoinHostPort(c.Address, DefaultPort)
		}
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = 3 * time.Second
	}
	if c.Timeout == 0 {
		c.Timeout = 5 * time.Second
	}
}

// Validate checks a defaulted config; errors name the key.
func (c Config) Validate() error {
	var errs []error
	if c.Address == "" {
		errs = append(errs, errors.New("address: missing"))
	} else if _, port, err := net.SplitHostPort(c.Address); err != nil || port == "" {
		errs = append(errs, fmt.Errorf("address: %q is not host:port", c.Address))
	}
	if c.DialTimeout < 0 {
		errs = append(errs, fmt.Errorf("dial_timeout: %v must not be negative", c.DialTimeout))
	}
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("timeout: %v must not be negative", c.Timeout))
	}
	return errors.Join(errs...)
}

// MaxMessage bounds one ReadUntil.
const MaxMessage = 64 << 20

// Conn is a raw-socket connection to an instrument that redials when broken.
type Conn struct {
	cfg Config

	live atomic.Pointer[net.Conn] // c, readable without mu so Close can interrupt

	mu         sync.Mutex
	c          net.Conn // nil when broken
	buf        []byte
	reconnects int
	closed     bool
}

// Dial connects to the instrument.
func Dial(ctx context.Context, cfg Config) (*Conn, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("lxi: %w", err)
	}
	c := &Conn{cfg: cfg}
	if err := c.dial(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Conn) dial(ctx context.Context) error {
	d := net.Dialer{Timeout: c.cfg.DialTimeout}
	nc, err := d.DialContext(ctx, "tcp", c.cfg.Address)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() && !errors.Is(err, os.ErrDeadlineExceeded) {
			// The dialer's timeout is not os.ErrDeadlineExceeded; make it so,
			// the timeout convention of every transport here.
			err = fmt.Errorf("%w (%w)", os.ErrDeadlineExceeded, err)
		}
		return fmt.Errorf("lxi %s: dial: %w", c.cfg.Address, err)
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true) // small request/reply messages: no Nagle delay
	}
	c.c, c.buf = nc, c.buf[:0]
	c.live.Store(&nc)
	return nil
}

// String is the instrument's address.
func (c *Conn) String() string { return c.cfg.Address }

// Timeout is the configured operation timeout (scpi.Timed): the SCPI
// client's exchange timeout unless the instrument sets its own.
func (c *Conn) Timeout() time.Duration { return c.cfg.Timeout }

// Reconnects counts the redials since Dial, for diagnostics.
func (c *Conn) Reconnects() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reconnects
}

// Write sends p, dialling first if the connection is broken (see the package
// comment for the retry rule).
func (c *Conn) Write(ctx context.Context, p []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return fmt.Errorf("lxi %s: write: %w", c.cfg.Address, net.ErrClosed)
	}
	if c.c != nil && len(c.buf) == 0 && peerClosed(c.c) {
		c.breakConn()
	}
	for attempt := 0; ; attempt++ {
		if c.c == nil {
			if err := c.dial(ctx); err != nil {
				return err
			}
			c.reconnects++
		}
		n, err := c.io(ctx, func() (int, error) { return c.c.Write(p) })
		if err == nil {
			return nil
		}
		c.breakConn()
		if n > 0 || attempt > 0 || isTimeout(err) || ctx.Err() != nil {
			return fmt.Errorf("lxi %s: write (%d of %d bytes sent): %w", c.cfg.Address, n, len(p), err)
		}
	}
}

// ReadUntil reads up to and including delim.
func (c *Conn) ReadUntil(ctx context.Context, delim byte) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, fmt.Errorf("lxi %s: read: %w", c.cfg.Address, net.ErrClosed)
	}
	if c.c == nil {
		return nil, fmt.Errorf("lxi %s: read: connection broken by an earlier error; the next write reconnects", c.cfg.Address)
	}
	var chunk [4096]byte
	for {
		if i := bytes.IndexByte(c.buf, delim); i >= 0 {
			msg := bytes.Clone(c.buf[:i+1])
			c.buf = append(c.buf[:0], c.buf[i+1:]...)
			return msg, nil
		}
		if len(c.buf) > MaxMessage {
			c.breakConn()
			return nil, fmt.Errorf("lxi %s: read: no terminator in %d bytes", c.cfg.Address, MaxMessage)
		}
		n, err := c.io(ctx, func() (int, error) { return c.c.Read(chunk[:]) })
		c.buf = append(c.buf, chunk[:n]...)
		if err != nil {
			c.breakConn()
			return nil, fmt.Errorf("lxi %s: read: %w", c.cfg.Address, err)
		}
	}
}

// Reset drops the connection so that the next write starts a fresh stream
// (scpi.Resetter): the only device clear a raw socket has.
func (c *Conn) Reset(context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.breakConn()
	return nil
}

// Close closes the connection for good, interrupting a blocked call.
func (c *Conn) Close() error {
	if nc := c.live.Load(); nc != nil {
		(*nc).SetDeadline(time.Now()) // wake a reader holding mu
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	if c.c == nil {
		return nil
	}
	err := c.c.Close()
	c.c = nil
	c.live.Store(nil)
	return err
}

func (c *Conn) breakConn() {
	if c.c != nil {
		c.c.Close()
		c.c = nil
		c.live.Store(nil)
	}
	c.buf = c.buf[:0]
}

// io runs one read or write under ctx: the deadline is ctx's (or the
// configured timeout), and cancellation interrupts a blocked call by moving
// the deadline to now.
func (c *Conn) io(ctx context.Context, f func() (int, error)) (int, error) {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(c.cfg.Timeout)
	}
	if err := c.c.SetDeadline(deadline); err != nil {
		return 0, err
	}
	nc := c.c
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Now()) })
	n, err := f()
	if !stop() && err != nil && ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		err = ctx.Err() // cancelled, not timed out
	}
	return n, err
}

func isTimeout(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }
