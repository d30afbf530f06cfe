package scpi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"
)

// Errors reported inside an *OpError; test with errors.Is.
var (
	// ErrTimeout: the instrument did not answer (or accept a command) in time.
	ErrTimeout = errors.New("timeout")
	// ErrGarbled: a reply held bytes no SCPI reply contains (control bytes,
	// invalid UTF-8), a sign of a baud/parity mismatch or line noise.
	ErrGarbled = errors.New("garbled reply")
	// ErrIdentity: *IDN? did not match the configured pattern.
	ErrIdentity = errors.New("unexpected instrument identity")
	// ErrErrorQueue: SYST:ERR? still reported errors after the drain bound.
	ErrErrorQueue = errors.New("error queue not drained")
	// ErrTooLong: a reply exceeded the client's size limit.
	ErrTooLong = errors.New("reply too long")
)

// OpError is the error of one client call: which instrument, which command.
//
// After an exchange timed out, the client reads the instrument's error
// queue (see WithErrorDrain), which usually says why it did not answer
// (e.g. a 2400's +803 "Output disabled" after READ? with the output off),
// and the message ends with it:
//
//	smu 127.0.0.1:5025: :READ?: no reply within 2s; instrument error queue: +803,"Output disabled"
type OpError struct {
	Instrument string // WithName, or the transport's String()
	Command    string // the SCPI command or query sent
	Err        error
	// Waited is the time the exchange was allowed when it timed out: the
	// client's timeout, or less if the context's deadline came first.
	Waited time.Duration
	// Drained reports that the error queue was read after a timeout; Queue
	// holds its entries (empty: the queue was empty), QueueErr why the
	// drain stopped early (its own timeout, a malformed reply, the bound).
	Drained  bool
	Queue    []DeviceError
	QueueErr error

	sending bool // the timeout came while sending the command
}

func (e *OpError) Error() string {
	var b strings.Builder
	b.WriteString(e.Instrument + ": " + e.Command + ": ")
	switch {
	case e.Timeout() && e.Waited > 0 && e.sending:
		fmt.Fprintf(&b, "not sent within %v (%v)", e.Waited, e.Err)
	case e.Timeout() && e.Waited > 0:
		fmt.Fprintf(&b, "no reply within %v", e.Waited)
	default:
		b.WriteString(e.Err.Error())
	}
	if e.Drained {
		b.WriteString("; instrument error queue: ")
		for i, q := range e.Queue {
			if i > 0 {
				b.WriteString("; ")
			}
			b.WriteString(formatEntry(q))
		}
		switch {
		case e.QueueErr != nil && len(e.Queue) > 0:
			fmt.Fprintf(&b, "; not read further: %v", e.QueueErr)
		case e.QueueErr != nil:
			fmt.Fprintf(&b, "not read: %v", e.QueueErr)
		case len(e.Queue) == 0:
			b.WriteString("empty")
		}
	}
	return b.String()
}

// formatEntry writes a queue entry as instruments send it, with the sign
// of positive (instrument-specific) codes: +803,"Output disabled".
func formatEntry(e DeviceError) string {
	if e.Code > 0 {
		return "+" + e.String()
	}
	return e.String()
}

func (e *OpError) Unwrap() error { return e.Err }

// Timeout reports whether the call timed out, like net.Error.
func (e *OpError) Timeout() bool { return errors.Is(e.Err, ErrTimeout) }

// DefaultTimeout bounds one exchange when neither WithTimeout nor the
// transport (Timed) sets a timeout.
const DefaultTimeout = 5 * time.Second

// Defaults of WithErrorDrain.
const (
	DefaultDrainTimeout = 500 * time.Millisecond
	DefaultDrainEntries = 4
)

// Client talks SCPI to one instrument over a Conn. Its methods are safe for
// concurrent use: calls are serialized, so a query's reply is never read by
// another caller, and waiting for the instrument honours the context.
//
// Timeouts. Every exchange (sending a command and reading its reply) is
// bounded by the client's timeout, counted once the call has the
// instrument; a context deadline that comes earlier wins, a later one does
// not extend it (use WithCallTimeout for one long call). The timeout is,
// most specific first: WithTimeout (an instrument's own timeout key), the
// transport's configured timeout (Timed), DefaultTimeout. Waiting for the
// instrument while another call holds it is bounded by the context only.
type Client struct {
	conn         Conn
	name         string
	rterm, wterm string
	timeout      time.Duration
	maxErrors    int
	maxReply     int
	drainTimeout time.Duration
	drainEntries int

	sem   chan struct{} // one command at a time; a channel so waiting honours ctx
	dirty bool          // a reply may still be in flight: reset before the next command
}

// Option configures a Client.
type Option func(*Client)

// WithName names the instrument in errors (e.g. "smu /dev/ttyUSB0").
func WithName(name string) Option { return func(c *Client) { c.name = name } }

// WithTimeout sets the timeout of one exchange, overriding the transport's
// (see Client). d ≤ 0 leaves the transport's or the default.
func WithTimeout(d time.Duration) Option {
	return func(c *Client) {
		if d > 0 {
			c.timeout = d
		}
	}
}

// WithErrorDrain bounds the error-queue read after a timeout: at most
// entries SYST:ERR? queries, all within d (defaults DefaultDrainTimeout,
// DefaultDrainEntries). entries ≤ 0 turns it off, for an instrument
// without an error queue.
func WithErrorDrain(d time.Duration, entries int) Option {
	return func(c *Client) {
		if d > 0 {
			c.drainTimeout = d
		}
		c.drainEntries = entries
	}
}

type callTimeoutKey struct{}

// WithCallTimeout returns a context under which each client call's exchange
// may take up to d instead of the client's timeout: a *OPC? after a long
// sweep, a large trace transfer. The context's own deadline still applies.
func WithCallTimeout(ctx context.Context, d time.Duration) context.Context {
	return context.WithValue(ctx, callTimeoutKey{}, d)
}

// WithTerminators sets the reply and command terminators (default "\n" and
// "\n"). Only the last byte of read is used to find the end of a reply;
// trailing CR and LF are stripped from every reply.
func WithTerminators(read, write string) Option {
	return func(c *Client) { c.rterm, c.wterm = read, write }
}

// WithMaxErrors bounds the SYST:ERR? drain (default 32 reads).
func WithMaxErrors(n int) Option { return func(c *Client) { c.maxErrors = n } }

// WithMaxReply bounds the size of one reply, blocks included (default 16 MiB).
func WithMaxReply(n int) Option { return func(c *Client) { c.maxReply = n } }

// NewClient returns a client over conn. It takes ownership of conn: Close
// closes it.
func NewClient(conn Conn, opts ...Option) *Client {
	c := &Client{conn: conn, rterm: "\n", wterm: "\n", timeout: DefaultTimeout,
		maxErrors: 32, maxReply: 16 << 20, sem: make(chan struct{}, 1),
		drainTimeout: DefaultDrainTimeout, drainEntries: DefaultDrainEntries}
	if t, ok := conn.(Timed); ok && t.Timeout() > 0 {
		c.timeout = t.Timeout()
	}
	if t, ok := conn.(Terminated); ok {
		r, w := t.Terminators()
		if r != "" {
			c.rterm = r
		}
		if w != "" {
			c.wterm = w
		}
	}
	if s, ok := conn.(fmt.Stringer); ok {
		c.name = s.String()
	}
	for _, o := range opts {
		o(c)
	}
	if c.rterm == "" {
		c.rterm = "\n"
	}
	return c
}

// Name is the instrument's name used in errors.
func (c *Client) Name() string { return c.name }

// Timeout is the timeout of one exchange in effect (see Client).
func (c *Client) Timeout() time.Duration { return c.timeout }

// Close closes the transport.
func (c *Client) Close() error { return c.conn.Close() }

// Write sends a command that has no reply.
func (c *Client) Write(ctx context.Context, cmd string) error {
	return c.do(ctx, cmd, func(ctx context.Context) error { return c.send(ctx, cmd) })
}

// Query sends a query and returns its reply without the terminator.
func (c *Client) Query(ctx context.Context, cmd string) (string, error) {
	var reply string
	err := c.do(ctx, cmd, func(ctx context.Context) error {
		if err := c.send(ctx, cmd); err != nil {
			return err
		}
		b, err := c.readLine(ctx)
		if err != nil {
			return err
		}
		reply = string(b)
		return nil
	})
	return reply, err
}

// QueryFloat sends a query whose reply is one number. SCPI's overflow and
// not-a-number values are errors (ErrOverflow, ErrNotANumber).
func (c *Client) QueryFloat(ctx context.Context, cmd string) (float64, error) {
	s, err := c.Query(ctx, cmd)
	if err != nil {
		return 0, err
	}
	v, err := ParseFloat(s)
	if err != nil {
		return v, &OpError{Instrument: c.name, Command: cmd, Err: err}
	}
	return v, nil
}

// QueryFloats sends a query whose reply is a comma-separated list of numbers.
func (c *Client) QueryFloats(ctx context.Context, cmd string) ([]float64, error) {
	s, err := c.Query(ctx, cmd)
	if err != nil {
		return nil, err
	}
	vs, err := ParseFloats(s)
	if err != nil {
		return vs, &OpError{Instrument: c.name, Command: cmd, Err: err}
	}
	return vs, nil
}

// QueryBlock sends a query whose reply is a definite-length arbitrary block
// (#<n><len><data>) and returns the data. The block may contain terminator
// bytes; its header says how much to read.
func (c *Client) QueryBlock(ctx context.Context, cmd string) ([]byte, error) {
	var data []byte
	err := c.do(ctx, cmd, func(ctx context.Context) error {
		if err := c.send(ctx, cmd); err != nil {
			return err
		}
		delim := c.rterm[len(c.rterm)-1]
		var buf []byte
		for {
			b, err := c.conn.ReadUntil(ctx, delim)
			buf = append(buf, b...)
			if err != nil {
				return err
			}
			if len(buf) > c.maxReply {
				return fmt.Errorf("%w: over %d bytes", ErrTooLong, c.maxReply)
			}
			d, rest, need, err := ParseBlock(buf)
			if errors.Is(err, ErrShortBlock) {
				if need > c.maxReply {
					return fmt.Errorf("%w: block of %d bytes, limit %d", ErrTooLong, need, c.maxReply)
				}
				continue // the data held a terminator byte: read on
			}
			if err != nil {
				return err
			}
			if len(bytes.TrimRight(rest, "\r\n")) != 0 {
				return fmt.Errorf("%w: %d bytes after the block", ErrSyntax, len(rest))
			}
			data = d
			return nil
		}
	})
	return data, err
}

// Identify sends *IDN? and parses the reply. If pattern is not empty, the
// reply must match it (a regular expression, unanchored, e.g.
// "^KEITHLEY INSTRUMENTS.*,MODEL 2400,"); otherwise the error wraps
// ErrIdentity and names both.
func (c *Client) Identify(ctx context.Context, pattern string) (IDN, error) {
	var re *regexp.Regexp
	if pattern != "" {
		var err error
		if re, err = regexp.Compile(pattern); err != nil {
			return IDN{}, &OpError{Instrument: c.name, Command: "*IDN?", Err: fmt.Errorf("expected identity pattern: %w", err)}
		}
	}
	s, err := c.Query(ctx, "*IDN?")
	if err != nil {
		return IDN{}, err
	}
	id, err := ParseIDN(s)
	if err != nil {
		return IDN{}, &OpError{Instrument: c.name, Command: "*IDN?", Err: err}
	}
	if re != nil && !re.MatchString(s) {
		return id, &OpError{Instrument: c.name, Command: "*IDN?", Err: fmt.Errorf("%w: got %q, want a match for %q", ErrIdentity, s, pattern)}
	}
	return id, nil
}

// Clear sends *CLS: clears the status registers and the error queue.
func (c *Client) Clear(ctx context.Context) error { return c.Write(ctx, "*CLS") }

// OPC waits until the instrument has finished all pending operations
// (*OPC? answers 1 then). For an operation slower than the client's
// timeout, pass a context from WithCallTimeout.
func (c *Client) OPC(ctx context.Context) error {
	s, err := c.Query(ctx, "*OPC?")
	if err != nil {
		return err
	}
	if v, err := ParseFloat(s); err != nil || v != 1 {
		return &OpError{Instrument: c.name, Command: "*OPC?", Err: fmt.Errorf("%w: want 1, got %q", ErrSyntax, s)}
	}
	return nil
}

// Errors drains the error queue: SYST:ERR? until it answers 0 (no error), at
// most WithMaxErrors times. It returns the entries read; if the queue is
// still not empty after the bound (an instrument that keeps adding errors,
// or one that does not answer 0), the error wraps ErrErrorQueue.
func (c *Client) Errors(ctx context.Context) ([]DeviceError, error) {
	var errs []DeviceError
	for range c.maxErrors {
		s, err := c.Query(ctx, "SYST:ERR?")
		if err != nil {
			return errs, err
		}
		e, err := ParseError(s)
		if err != nil {
			return errs, &OpError{Instrument: c.name, Command: "SYST:ERR?", Err: err}
		}
		if e.Code == 0 {
			return errs, nil
		}
		errs = append(errs, e)
	}
	return errs, &OpError{Instrument: c.name, Command: "SYST:ERR?", Err: fmt.Errorf("%w after %d reads", ErrErrorQueue, c.maxErrors)}
}

// do runs op holding the instrument, under the exchange timeout, and wraps
// its error. After a timeout it reads the error queue into the error.
func (c *Client) do(ctx context.Context, cmd string, op func(context.Context) error) error {
	if cmd == "" || strings.ContainsAny(cmd, "\r\n") {
		return &OpError{Instrument: c.name, Command: cmd, Err: fmt.Errorf("%w: a command must be one non-empty line", ErrSyntax)}
	}
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return &OpError{Instrument: c.name, Command: cmd, Err: fmt.Errorf("waiting for the instrument: %w", c.ctxErr(ctx.Err()))}
	}
	defer func() { <-c.sem }()
	limit := c.timeout
	if d, ok := ctx.Value(callTimeoutKey{}).(time.Duration); ok && d > 0 {
		limit = d
	}
	start := time.Now()
	xctx, cancel := context.WithTimeout(ctx, limit) // an earlier ctx deadline stays
	defer cancel()
	if c.dirty {
		if r, ok := c.conn.(Resetter); ok {
			if err := r.Reset(xctx); err != nil {
				return &OpError{Instrument: c.name, Command: cmd, Err: fmt.Errorf("reset after a failed exchange: %w", c.ctxErr(err))}
			}
		}
		c.dirty = false
	}
	err := op(xctx)
	if err == nil {
		return nil
	}
	// After a timeout, a bad reply or a broken link the stream may be out
	// of step: a late reply must not answer the next query.
	c.dirty = true
	var se sendError
	e := &OpError{Instrument: c.name, Command: cmd, Err: c.ctxErr(err), sending: errors.As(err, &se)}
	if !e.Timeout() {
		return e
	}
	if dl, ok := xctx.Deadline(); ok {
		e.Waited = max(dl.Sub(start).Round(time.Millisecond), time.Millisecond)
	}
	if c.drainEntries > 0 && !isErrorQuery(cmd) && !errors.Is(ctx.Err(), context.Canceled) {
		e.Drained = true
		e.Queue, e.QueueErr = c.drain(ctx)
	}
	return e
}

// drain reads the error queue after a timeout, holding the instrument: at
// most drainEntries entries within drainTimeout. Its deadline is its own,
// as the caller's has usually passed; cancelling ctx still stops it.
func (c *Client) drain(ctx context.Context) ([]DeviceError, error) {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.drainTimeout)
	defer cancel()
	defer context.AfterFunc(ctx, func() {
		if errors.Is(ctx.Err(), context.Canceled) {
			cancel()
		}
	})()
	if r, ok := c.conn.(Resetter); ok {
		if err := r.Reset(dctx); err != nil {
			return nil, c.ctxErr(err)
		}
	}
	var errs []DeviceError
	for range c.drainEntries {
		if err := c.send(dctx, "SYST:ERR?"); err != nil {
			return errs, c.ctxErr(err)
		}
		b, err := c.readLine(dctx)
		if err != nil {
			return errs, c.ctxErr(err)
		}
		e, err := ParseError(string(b))
		if err != nil {
			return errs, err
		}
		if e.Code == 0 {
			// c.dirty stays set: a late reply to the timed-out command
			// may still arrive, and the next call resets first.
			return errs, nil
		}
		errs = append(errs, e)
	}
	return errs, fmt.Errorf("%w after %d entries", ErrErrorQueue, c.drainEntries)
}

// isErrorQuery reports whether cmd reads the error queue, which a timeout
// of its own does not drain again.
func isErrorQuery(cmd string) bool {
	u := strings.ToUpper(cmd)
	return strings.Contains(u, "SYST:ERR") || strings.Contains(u, "SYSTEM:ERR")
}

// sendError marks an error from sending a command (rather than reading its
// reply), so a timeout message can say which.
type sendError struct{ err error }

func (e sendError) Error() string { return e.err.Error() }
func (e sendError) Unwrap() error { return e.err }

// ctxErr marks deadline errors from the transport or the context as ErrTimeout
// while keeping the cause.
func (c *Client) ctxErr(err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
		if errors.Is(err, ErrTimeout) {
			return err
		}
		return fmt.Errorf("%w: %w", ErrTimeout, err)
	}
	return err
}

func (c *Client) send(ctx context.Context, cmd string) error {
	msg := make([]byte, 0, len(cmd)+len(c.wterm))
	msg = append(append(msg, cmd...), c.wterm...)
	if err := c.conn.Write(ctx, msg); err != nil {
		return sendError{err}
	}
	return nil
}

func (c *Client) readLine(ctx context.Context) ([]byte, error) {
	b, err := c.conn.ReadUntil(ctx, c.rterm[len(c.rterm)-1])
	if err != nil {
		return nil, err
	}
	b = bytes.TrimRight(b, "\r\n")
	if len(b) > c.maxReply {
		return nil, fmt.Errorf("%w: %d bytes", ErrTooLong, len(b))
	}
	// Replies are text: control bytes or invalid UTF-8 (what a baud or
	// parity mismatch produces) mean the line is corrupt.
	bad := !utf8.Valid(b)
	for _, ch := range b {
		bad = bad || (ch < 0x20 && ch != '\t') || ch == 0x7f
	}
	if bad {
		return nil, fmt.Errorf("%w: %q", ErrGarbled, prefix(b))
	}
	return b, nil
}
