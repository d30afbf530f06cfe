// Package emulator serves an emulated SCPI instrument over any byte stream:
// the master side of a pseudo-terminal, a loopback TCP connection, a pipe.
// Tests drive the real transports against it, and `insitu twin serve` exposes
// the software twins through it.
//
// An Instrument answers the IEEE 488.2 common commands itself (*IDN?, *CLS,
// *RST, *OPC?, SYST:ERR?) and everything else from a Table of handlers keyed
// by SCPI header patterns in the usual long/short notation
// ("SOURce:VOLTage[:LEVel]"). Faults — latency, dropped or garbled replies,
// error-queue entries, hang-ups — are injected by rate (Faults) or one at a
// time (DropNext, GarbleNext, HangUpNext, PushError).
//
// A twin must not pass for hardware: New refuses an identity whose
// manufacturer or model does not contain "twin", and Listen binds loopback
// addresses only.
//
// A served twin holds bounded memory and connections whatever its peers
// send: lines are at most MaxLine bytes (longer is −363 "Input buffer
// overrun"), the command log at most MaxLogBytes, and ServeTCP serves at
// most MaxConns connections at once, closes a connection idle for
// IdleTimeout, and rides out temporary accept errors such as EMFILE. Stats
// reports the counters.
package emulator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/insitu-lab/insitu/drivers/scpi"
	"github.com/insitu-lab/insitu/internal/sleep"
)

// Handler executes one command. args is the text after the header, trimmed.
// A query returns its reply; a command returns "". An error is queued for
// SYST:ERR? (as a scpi.DeviceError if it is one, else −200 execution error),
// and a failed query sends no reply, as real instruments do.
type Handler func(args string) (reply string, err error)

// Table maps header patterns to handlers. A pattern is a SCPI header in
// long/short notation: upper case is the short form, the whole mnemonic the
// long form, [:NODE] is optional, a trailing ? marks a query
// ("MEASure:POWer?", "SOURce:VOLTage[:LEVel]"). Matching ignores case and a
// leading colon.
type Table map[string]Handler

// Faults are injected at random, each draw from a generator seeded by Seed.
type Faults struct {
	Latency     time.Duration // before each reply
	DropRate    float64       // probability a reply is never sent
	GarbleRate  float64       // probability a reply's bytes are corrupted
	ErrorRate   float64       // probability a command also queues −300 "Device-specific error"
	HangUpAfter int           // close each connection after this many lines (0: never)
	Seed        uint64
}

// ErrHangUp is returned by Serve when it closed the connection on purpose.
var ErrHangUp = errors.New("emulator: hung up (injected fault)")

// Instrument is an emulated SCPI instrument. It is one device: connections
// served concurrently share its state and take turns.
type Instrument struct {
	idn     string
	entries []entry
	term    string
	onReset func()
	logf    func(format string, args ...any)

	// Limits, set from the exported constants; package tests lower them.
	maxLine, maxConns          int
	maxLogBytes, maxLogEntries int
	idle                       time.Duration

	// Connection counters, atomic so that accepting never waits for mu,
	// which a reply's injected latency holds.
	conns                           atomic.Int64
	refused, acceptErrors, overruns atomic.Uint64
	idleClosed                      atomic.Uint64
	bufBytes                        atomic.Int64

	mu          sync.Mutex
	faults      Faults
	rng         *rand.Rand
	queue       []scpi.DeviceError
	dropNext    int
	garbleNext  int
	hangUpNext  bool
	log         cmdLog
	maxQueueLen int
}

type entry struct {
	pattern string
	nodes   []node
	query   bool
	h       Handler
}

type node struct {
	short, long string
	optional    bool
}

// Option configures an Instrument.
type Option func(*Instrument)

// WithReplyTerminator sets the terminator after each reply (default "\n").
func WithReplyTerminator(t string) Option { return func(in *Instrument) { in.term = t } }

// WithFaults sets the random faults.
func WithFaults(f Faults) Option { return func(in *Instrument) { in.faults = f } }

// WithReset sets what *RST does besides clearing the error queue.
func WithReset(f func()) Option { return func(in *Instrument) { in.onReset = f } }

// WithLogf sets where Serve and ServeTCP report a peer they cut off or an
// accept error they retry (default log.Printf). f may be called from
// several goroutines at once.
func WithLogf(f func(format string, args ...any)) Option {
	return func(in *Instrument) { in.logf = f }
}

// New returns an instrument that answers *IDN? with idn. The identity must
// name the instrument as a twin (in its manufacturer or model field) so that
// an identity check configured for real hardware refuses it.
func New(idn string, table Table, opts ...Option) (*Instrument, error) {
	id, err := scpi.ParseIDN(idn)
	if err != nil {
		return nil, fmt.Errorf("emulator: identity: %w", err)
	}
	if !strings.Contains(strings.ToLower(id.Manufacturer+id.Model), "twin") {
		return nil, fmt.Errorf("emulator: identity %q must say \"twin\" in its manufacturer or model", idn)
	}
	in := &Instrument{
		idn: idn, term: "\n", maxQueueLen: 32, logf: log.Printf,
		maxLine: MaxLine, maxConns: MaxConns, maxLogBytes: MaxLogBytes, maxLogEntries: MaxLogEntries,
		idle: IdleTimeout,
	}
	keys := make([]string, 0, len(table))
	for k := range table {
		keys = append(keys, k)
	}
	slices.Sort(keys) // deterministic precedence
	for _, k := range keys {
		e, err := compile(k)
		if err != nil {
			return nil, err
		}
		e.h = table[k]
		in.entries = append(in.entries, e)
	}
	for _, o := range opts {
		o(in)
	}
	in.rng = rand.New(rand.NewPCG(in.faults.Seed, 0x5c91))
	return in, nil
}

// SetFaults replaces the random faults (the generator is reseeded).
func (in *Instrument) SetFaults(f Faults) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.faults = f
	in.rng = rand.New(rand.NewPCG(f.Seed, 0x5c91))
}

// PushError queues an error for SYST:ERR?.
func (in *Instrument) PushError(code int, msg string) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.push(scpi.DeviceError{Code: code, Message: msg})
}

// DropNext makes the next n replies go unsent.
func (in *Instrument) DropNext(n int) { in.mu.Lock(); in.dropNext += n; in.mu.Unlock() }

// GarbleNext corrupts the next n replies.
func (in *Instrument) GarbleNext(n int) { in.mu.Lock(); in.garbleNext += n; in.mu.Unlock() }

// HangUpNext makes the connection that receives the next line close instead
// of answering it.
func (in *Instrument) HangUpNext() { in.mu.Lock(); in.hangUpNext = true; in.mu.Unlock() }

// Commands returns the commands received so far (compound lines split),
// oldest first: the newest that fit in MaxLogBytes of text and
// MaxLogEntries entries. Stats().LogDropped counts the older ones dropped.
func (in *Instrument) Commands() []string {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.log.list()
}

// Err returns an error for a Handler that queues code and message.
func Err(code int, msg string) error { return scpi.DeviceError{Code: code, Message: msg} }

// Serve answers the lines read from rw until rw reports EOF (returns nil),
// ctx ends (returns ctx.Err()), or a hang-up is injected (returns ErrHangUp).
// If rw is an io.Closer, Serve closes it on return so the peer sees a hang-up.
//
// A line longer than MaxLine queues −363 "Input buffer overrun". On a
// net.Conn, Serve then sends that error as a last line, hangs up and
// returns ErrOverrun; on any other stream (a pseudo-terminal standing in
// for a serial port, which cannot hang up) it discards the line through its
// terminator and goes on, as a serial instrument does.
//
// A net.Conn that sends no complete line for IdleTimeout is closed (and
// logged), and Serve returns nil: an idle peer does not hold its place.
func (in *Instrument) Serve(ctx context.Context, rw io.ReadWriter) error {
	closer, _ := rw.(io.Closer)
	if closer != nil {
		stop := context.AfterFunc(ctx, func() { closer.Close() })
		defer stop()
		defer closer.Close()
	}
	lr := newLineReader(rw, in.maxLine, &in.bufBytes)
	defer lr.release()
	conn, _ := rw.(net.Conn)
	readErr := func(err error) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
			return nil
		}
		return err
	}
	for lines := 1; ; lines++ {
		if conn != nil && in.idle > 0 {
			_ = conn.SetReadDeadline(time.Now().Add(in.idle))
		}
		line, err := lr.next()
		if conn != nil && errors.Is(err, os.ErrDeadlineExceeded) && ctx.Err() == nil {
			in.idleClosed.Add(1)
			in.logf("emulator: %s sent no line for %v: closing the idle connection", conn.RemoteAddr(), in.idle)
			return nil
		}
		if errors.Is(err, errLineTooLong) {
			in.overrun(conn)
			if conn != nil {
				in.hangUpOverrun(conn)
				return ErrOverrun
			}
			if err := lr.skip(); err != nil {
				return readErr(err)
			}
			continue
		}
		if err != nil {
			return readErr(err)
		}
		reply, hangUp := in.handleLine(ctx, strings.TrimRight(string(line), "\r\n"), lines)
		if hangUp {
			return ErrHangUp
		}
		if reply == nil {
			continue
		}
		if _, err := rw.Write(reply); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
	}
}

// overrun queues −363 for a line longer than maxLine and logs it; conn is
// the peer, nil if the stream is not a connection.
func (in *Instrument) overrun(conn net.Conn) {
	in.overruns.Add(1)
	in.mu.Lock()
	in.push(overrunError)
	in.mu.Unlock()
	peer, then := "stream", "discarding it"
	if conn != nil {
		peer, then = conn.RemoteAddr().String(), "hanging up"
	}
	in.logf("emulator: %s sent a line longer than %d bytes: input buffer overrun, %s", peer, in.maxLine, then)
}

var overrunError = scpi.DeviceError{Code: -363, Message: "Input buffer overrun"}

// hangUpOverrun sends the overrun error, closes the sending side and
// discards input for a while, bounded in time and memory, so the peer can
// read the error before Serve closes the connection.
func (in *Instrument) hangUpOverrun(c net.Conn) {
	_ = c.SetDeadline(time.Now().Add(overrunLinger))
	if _, err := io.WriteString(c, overrunError.String()+in.term); err != nil {
		return
	}
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	_, _ = io.Copy(io.Discard, c)
}

// Listen listens on a loopback TCP address ("127.0.0.1:0" for any free
// port). Any other address is refused: twins are never reachable from the
// network, where they could be mistaken for the bench.
func Listen(addr string) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("emulator: listen %q: %w", addr, err)
	}
	ips, err := net.DefaultResolver.LookupIPAddr(context.Background(), host)
	if host == "" || err != nil || len(ips) == 0 {
		return nil, fmt.Errorf("emulator: listen %q: host must be a loopback address", addr)
	}
	for _, ip := range ips {
		if !ip.IP.IsLoopback() {
			return nil, fmt.Errorf("emulator: listen %q: %s is not a loopback address", addr, ip.IP)
		}
	}
	return net.Listen("tcp", net.JoinHostPort(ips[0].IP.String(), portOf(addr)))
}

func portOf(addr string) string { _, p, _ := net.SplitHostPort(addr); return p }

// ServeTCP accepts connections on ln and serves each until ctx ends, then
// closes ln and every connection and returns ctx.Err(). Use Listen for ln.
//
// At most MaxConns connections are served at once: one more is closed as
// soon as it is accepted, and logged. A temporary accept error (EMFILE when
// out of file descriptors, ECONNABORTED) is logged and retried after a pause
// doubling from 5 ms to 1 s; any other accept error closes every
// connection and is returned.
func (in *Instrument) ServeTCP(ctx context.Context, ln net.Listener) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // before wg.Wait: the connections end with ServeTCP
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	slots := make(chan struct{}, in.maxConns)
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if !temporary(err) {
				return err
			}
			in.acceptErrors.Add(1)
			delay = nextDelay(delay)
			in.logf("emulator: accept: %v; retrying in %v", err, delay)
			if sleep.For(ctx, delay) != nil {
				return ctx.Err()
			}
			continue
		}
		delay = 0
		select {
		case slots <- struct{}{}:
		default:
			in.refused.Add(1)
			in.logf("emulator: %d connections open, refusing %s", in.maxConns, c.RemoteAddr())
			c.Close()
			continue
		}
		in.conns.Add(1)
		wg.Go(func() {
			defer func() { in.conns.Add(-1); <-slots }()
			_ = in.Serve(ctx, c)
		})
	}
}

// handleLine runs one line of (possibly compound) commands and returns the
// bytes to send, nil for none. n counts the connection's lines.
func (in *Instrument) handleLine(ctx context.Context, line string, n int) ([]byte, bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.hangUpNext || (in.faults.HangUpAfter > 0 && n > in.faults.HangUpAfter) {
		in.hangUpNext = false
		return nil, true
	}
	var replies []string
	prev := ""
	for _, cmd := range splitCompound(line) {
		cmd = strings.TrimSpace(cmd)
		if cmd == "" {
			continue
		}
		in.log.add(cmd, in.maxLogBytes, in.maxLogEntries)
		header, args, _ := strings.Cut(cmd, " ")
		args = strings.TrimSpace(args)
		reply, isQuery, err := in.exec(header, args, prev)
		if !strings.HasPrefix(header, "*") {
			prev = header
		}
		if err != nil {
			var de scpi.DeviceError
			if !errors.As(err, &de) {
				de = scpi.DeviceError{Code: -200, Message: "Execution error; " + err.Error()}
			}
			in.push(de)
			continue
		}
		if in.faults.ErrorRate > 0 && in.rng.Float64() < in.faults.ErrorRate {
			in.push(scpi.DeviceError{Code: -300, Message: "Device-specific error; injected"})
		}
		if isQuery {
			replies = append(replies, reply)
		}
	}
	if len(replies) == 0 {
		return nil, false
	}
	_ = sleep.For(ctx, in.faults.Latency) // cut short only when Serve is ending
	if in.dropNext > 0 || (in.faults.DropRate > 0 && in.rng.Float64() < in.faults.DropRate) {
		if in.dropNext > 0 {
			in.dropNext--
		}
		return nil, false
	}
	out := []byte(strings.Join(replies, ";"))
	if in.garbleNext > 0 || (in.faults.GarbleRate > 0 && in.rng.Float64() < in.faults.GarbleRate) {
		if in.garbleNext > 0 {
			in.garbleNext--
		}
		for i := range out {
			if i%2 == 0 {
				out[i] ^= 0x80 // high bit set: what a wrong baud rate looks like
			}
		}
	}
	return append(out, in.term...), false
}

func (in *Instrument) push(e scpi.DeviceError) {
	if len(in.queue) >= in.maxQueueLen {
		// SCPI: a full queue replaces its last entry with −350 overflow.
		in.queue[len(in.queue)-1] = scpi.DeviceError{Code: -350, Message: "Queue overflow"}
		return
	}
	in.queue = append(in.queue, e)
}

// exec runs one command. prev is the previous header of the line, for
// SCPI's relative paths in compound commands ("SOUR:VOLT 1;CURR 2").
func (in *Instrument) exec(header, args, prev string) (reply string, isQuery bool, err error) {
	isQuery = strings.HasSuffix(header, "?")
	if h := in.lookup(header); h != nil {
		reply, err = h(args)
		return reply, isQuery, err
	}
	if !strings.HasPrefix(header, ":") && !strings.HasPrefix(header, "*") && strings.Contains(prev, ":") {
		base := prev[:strings.LastIndex(prev, ":")+1]
		if h := in.lookup(base + header); h != nil {
			reply, err = h(args)
			return reply, isQuery, err
		}
	}
	switch strings.ToUpper(strings.TrimPrefix(header, ":")) {
	case "*IDN?":
		return in.idn, true, nil
	case "*CLS":
		in.queue = in.queue[:0]
		return "", false, nil
	case "*RST":
		in.queue = in.queue[:0]
		if in.onReset != nil {
			in.onReset()
		}
		return "", false, nil
	case "*OPC?":
		return "1", true, nil
	case "*OPC", "*WAI":
		return "", false, nil
	case "*ESR?", "*STB?":
		return "0", true, nil
	case "SYST:ERR?", "SYSTEM:ERROR?", "SYST:ERR:NEXT?", "SYSTEM:ERROR:NEXT?":
		if len(in.queue) == 0 {
			return `0,"No error"`, true, nil
		}
		e := in.queue[0]
		in.queue = in.queue[1:]
		return e.String(), true, nil
	case "SYST:ERR:COUN?", "SYSTEM:ERROR:COUNT?":
		return fmt.Sprint(len(in.queue)), true, nil
	}
	return "", isQuery, scpi.DeviceError{Code: -113, Message: "Undefined header"}
}

func (in *Instrument) lookup(header string) Handler {
	query := strings.HasSuffix(header, "?")
	h := strings.TrimSuffix(strings.TrimPrefix(header, ":"), "?")
	if h == "" {
		return nil
	}
	parts := strings.Split(strings.ToUpper(h), ":")
	for _, e := range in.entries {
		if e.query == query && match(e.nodes, parts) {
			return e.h
		}
	}
	return nil
}

func match(p []node, h []string) bool {
	if len(p) == 0 {
		return len(h) == 0
	}
	if p[0].optional && match(p[1:], h) {
		return true
	}
	return len(h) > 0 && (h[0] == p[0].short || h[0] == p[0].long) && match(p[1:], h[1:])
}

func compile(pattern string) (entry, error) {
	e := entry{pattern: pattern}
	s := strings.TrimPrefix(pattern, ":")
	if strings.HasSuffix(s, "?") {
		e.query, s = true, s[:len(s)-1]
	}
	for s != "" {
		opt := false
		var tok string
		switch {
		case s[0] == '[':
			end := strings.IndexByte(s, ']')
			if end < 0 {
				return e, fmt.Errorf("emulator: pattern %q: unclosed [", pattern)
			}
			tok, s, opt = s[1:end], s[end+1:], true
		default:
			end := strings.IndexAny(s[1:], ":[")
			if end < 0 {
				tok, s = s, ""
			} else {
				tok, s = s[:end+1], s[end+1:]
			}
		}
		for m := range strings.SplitSeq(strings.TrimPrefix(tok, ":"), ":") {
			if m == "" {
				return e, fmt.Errorf("emulator: pattern %q: empty node", pattern)
			}
			i := 0
			for i < len(m) && (m[i] < 'a' || m[i] > 'z') {
				i++
			}
			e.nodes = append(e.nodes, node{short: m[:i], long: strings.ToUpper(m), optional: opt})
		}
	}
	if len(e.nodes) == 0 {
		return e, fmt.Errorf("emulator: empty pattern %q", pattern)
	}
	return e, nil
}

// splitCompound splits a line at semicolons outside quoted strings.
func splitCompound(line string) []string {
	var out []string
	start, quote := 0, byte(0)
	for i := 0; i < len(line); i++ {
		switch c := line[i]; {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == ';':
			out = append(out, line[start:i])
			start = i + 1
		}
	}
	return append(out, line[start:])
}
