// Package serial is a line-oriented transport over a serial port
// (go.bug.st/serial): RS-232 instruments, USB-serial cables, pseudo-terminals.
//
// A port is chosen by path or by USB VID/PID/serial number. Reads honour the
// context's deadline even though the library's read timeout reports itself
// as (0, nil) rather than as an error: Port loops on short timeouts and
// returns an error wrapping os.ErrDeadlineExceeded when the deadline passes.
// *Port satisfies scpi.Conn.
package serial

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	bug "go.bug.st/serial"
	"go.bug.st/serial/enumerator"
)

// Config selects and configures a port. Either Port, or VID and PID
// (optionally narrowed by Serial), or Serial alone must be given.
type Config struct {
	Port     string  `mapstructure:"port" doc:"the port, e.g. /dev/ttyUSB0 or a pseudo-terminal; or find it by vid, pid, serial"`
	VID      string  `mapstructure:"vid" doc:"USB vendor ID, hex, e.g. 0403"`
	PID      string  `mapstructure:"pid" doc:"USB product ID, hex, e.g. 6001"`
	Serial   string  `mapstructure:"serial" doc:"USB serial number"`
	Baud     int     `mapstructure:"baud" doc:"baud rate; 0: 9600 (a Keithley 2400's factory setting)"`
	DataBits int     `mapstructure:"data_bits" doc:"data bits, 5 to 8; 0: 8"`
	Parity   string  `mapstructure:"parity" doc:"none (default), odd, even, mark or space"`
	StopBits float64 `mapstructure:"stop_bits" doc:"stop bits: 1 (default), 1.5 or 2"`

	// Terminators as names (LF, CR, CRLF, LFCR) or literal strings ("\r\n").
	ReadTerminator  string `mapstructure:"read_terminator" doc:"end of a reply: LF (default), CR, CRLF"`
	WriteTerminator string `mapstructure:"write_terminator" doc:"end of a command: LF (default), CR, CRLF"`

	// Timeout bounds an operation whose context has no deadline (default 5 s).
	Timeout time.Duration `mapstructure:"timeout" doc:"bound on an exchange without a deadline of its own; 0: 5s"`
}

// Defaults fills unset fields with their defaults.
func (c *Config) Defaults() {
	if c.Baud == 0 {
		c.Baud = 9600
	}
	if c.DataBits == 0 {
		c.DataBits = 8
	}
	if c.Parity == "" {
		c.Parity = "none"
	}
	if c.StopBits == 0 {
		c.StopBits = 1
	}
	if c.ReadTerminator == "" {
		c.ReadTerminator = "LF"
	}
	if c.WriteTerminator == "" {
		c.WriteTerminator = "LF"
	}
	if c.Timeout == 0 {
		c.Timeout = 5 * time.Second
	}
}

// Validate checks a defaulted config; errors name the offending key.
func (c Config) Validate() error {
	var errs []error
	switch {
	case c.Port == "" && c.VID == "" && c.PID == "" && c.Serial == "":
		errs = append(errs, errors.New("port: set port, or vid and pid, or serial"))
	case c.Port != "" && (c.VID != "" || c.PID != "" || c.Serial != ""):
		errs = append(errs, errors.New("port: give either port or vid/pid/serial, not both"))
	case (c.VID == "") != (c.PID == ""):
		errs = append(errs, errors.New("vid, pid: give both or neither"))
	}
	for key, v := range map[string]string{"vid": c.VID, "pid": c.PID} {
		if v != "" && !isHex4(v) {
			errs = append(errs, fmt.Errorf("%s: %q is not a 4-digit hex USB ID", key, v))
		}
	}
	if c.Baud <= 0 {
		errs = append(errs, fmt.Errorf("baud: %d must be positive", c.Baud))
	}
	if _, err := c.Mode(); err != nil {
		errs = append(errs, err)
	}
	if _, err := Terminator(c.ReadTerminator); err != nil {
		errs = append(errs, fmt.Errorf("read_terminator: %w", err))
	}
	if _, err := Terminator(c.WriteTerminator); err != nil {
		errs = append(errs, fmt.Errorf("write_terminator: %w", err))
	}
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("timeout: %v must not be negative", c.Timeout))
	}
	return errors.Join(errs...)
}

// Mode is the go.bug.st/serial mode for c. Ptys force 8 data bits and no
// parity whatever is asked, so this is where framing is tested.
func (c Config) Mode() (*bug.Mode, error) {
	m := &bug.Mode{BaudRate: c.Baud, DataBits: c.DataBits}
	if c.DataBits < 5 || c.DataBits > 8 {
		return nil, fmt.Errorf("data_bits: %d not in 5..8", c.DataBits)
	}
	switch strings.ToLower(c.Parity) {
	case "none", "n":
		m.Parity = bug.NoParity
	case "odd", "o":
		m.Parity = bug.OddParity
	case "even", "e":
		m.Parity = bug.EvenParity
	case "mark", "m":
		m.Parity = bug.MarkParity
	case "space", "s":
		m.Parity = bug.SpaceParity
	default:
		return nil, fmt.Errorf("parity: %q is not none, odd, even, mark or space", c.Parity)
	}
	switch c.StopBits {
	case 1:
		m.StopBits = bug.OneStopBit
	case 1.5:
		m.StopBits = bug.OnePointFiveStopBits
	case 2:
		m.StopBits = bug.TwoStopBits
	default:
		return nil, fmt.Errorf("stop_bits: %v is not 1, 1.5 or 2", c.StopBits)
	}
	// InitialStatusBits stays nil: setting modem lines fails on ptys and on
	// cables without them.
	return m, nil
}

// Terminator resolves a terminator name (LF, CR, CRLF, LFCR, case
// insensitive) or returns a literal one unchanged. It must end in CR or LF.
func Terminator(s string) (string, error) {
	switch strings.ToUpper(s) {
	case "LF":
		return "\n", nil
	case "CR":
		return "\r", nil
	case "CRLF", "CR+LF":
		return "\r\n", nil
	case "LFCR", "LF+CR":
		return "\n\r", nil
	}
	if s == "" || (s[len(s)-1] != '\n' && s[len(s)-1] != '\r') {
		return "", fmt.Errorf("%q is not LF, CR, CRLF, LFCR or a literal ending in CR or LF", s)
	}
	return s, nil
}

func isHex4(s string) bool {
	if len(s) != 4 {
		return false
	}
	for _, c := range strings.ToLower(s) {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// PortInfo describes a serial port found on the machine.
type PortInfo struct {
	Path                  string
	IsUSB                 bool
	VID, PID, Serial      string
	Manufacturer, Product string
}

func (p PortInfo) String() string {
	if !p.IsUSB {
		return p.Path
	}
	return fmt.Sprintf("%s usb %s:%s serial=%q %s %s", p.Path, p.VID, p.PID, p.Serial, p.Manufacturer, p.Product)
}

// List returns the machine's serial ports with USB details where known, for
// `insitu probe`. Pseudo-terminals are not listed (the library skips
// /dev/pts); open them by path.
func List() ([]PortInfo, error) {
	ds, err := enumerator.GetDetailedPortsList()
	if err != nil {
		return nil, fmt.Errorf("serial: list ports: %w", err)
	}
	out := make([]PortInfo, 0, len(ds))
	for _, d := range ds {
		out = append(out, PortInfo{Path: d.Name, IsUSB: d.IsUSB, VID: d.VID, PID: d.PID,
			Serial: d.SerialNumber, Manufacturer: d.Manufacturer, Product: d.Product})
	}
	return out, nil
}

// Find returns the path of the one port matching c's VID/PID/Serial among
// ports, or an error naming the keys if none or several match.
func Find(ports []PortInfo, c Config) (string, error) {
	var hits []string
	for _, p := range ports {
		if !p.IsUSB ||
			(c.VID != "" && !strings.EqualFold(p.VID, c.VID)) ||
			(c.PID != "" && !strings.EqualFold(p.PID, c.PID)) ||
			(c.Serial != "" && p.Serial != c.Serial) {
			continue
		}
		hits = append(hits, p.Path)
	}
	want := fmt.Sprintf("vid=%q pid=%q serial=%q", c.VID, c.PID, c.Serial)
	switch len(hits) {
	case 0:
		return "", fmt.Errorf("serial: no USB port with %s", want)
	case 1:
		return hits[0], nil
	default:
		return "", fmt.Errorf("serial: %d USB ports match %s (%v): set serial to choose one", len(hits), want, hits)
	}
}

// MaxMessage bounds one ReadUntil, so a stream that never sends the
// terminator (wrong terminator setting, noise) ends in an error, not in
// unbounded memory.
const MaxMessage = 64 << 20

// poll is the longest single blocking read, so that cancellation of a
// context without a deadline is noticed.
const poll = 50 * time.Millisecond

// Port is an open serial port. Its methods may be called from several
// goroutines, but one exchange at a time is the caller's business (the
// scpi.Client serializes).
type Port struct {
	p            bug.Port
	path         string
	rterm, wterm string
	timeout      time.Duration

	mu    sync.Mutex
	buf   []byte // bytes read past the last delimiter
	chunk [4096]byte
	err   error // sticky: the port is gone
}

// Open resolves and opens the port described by c (after Defaults and
// Validate).
func Open(ctx context.Context, c Config) (*Port, error) {
	c.Defaults()
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("serial: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	path := c.Port
	if path == "" {
		ports, err := List()
		if err != nil {
			return nil, err
		}
		if path, err = Find(ports, c); err != nil {
			return nil, err
		}
	}
	mode, _ := c.Mode()
	p, err := bug.Open(path, mode)
	if err != nil {
		return nil, fmt.Errorf("serial %s: open: %w", path, err)
	}
	rt, _ := Terminator(c.ReadTerminator)
	wt, _ := Terminator(c.WriteTerminator)
	return &Port{p: p, path: path, rterm: rt, wterm: wt, timeout: c.Timeout}, nil
}

// String is the port's path.
func (p *Port) String() string { return p.path }

// Timeout is the configured operation timeout (scpi.Timed): the SCPI
// client's exchange timeout unless the instrument sets its own.
func (p *Port) Timeout() time.Duration { return p.timeout }

// Terminators returns the configured terminators (scpi.Terminated).
func (p *Port) Terminators() (read, write string) { return p.rterm, p.wterm }

// Write sends b. The serial driver's write blocks until the bytes are in the
// kernel buffer; the context is checked before, not during.
func (p *Port) Write(ctx context.Context, b []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return p.err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("serial %s: write: %w", p.path, err)
	}
	for len(b) > 0 {
		n, err := p.p.Write(b)
		if err != nil {
			return p.fail("write", err)
		}
		b = b[n:]
	}
	return nil
}

// ReadUntil reads up to and including delim. A read timeout of the library
// is (0, nil), so it reads in slices of at most poll and checks the deadline
// (ctx's, or the configured timeout) between them.
func (p *Port) ReadUntil(ctx context.Context, delim byte) ([]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return nil, p.err
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(p.timeout)
	}
	chunk := p.chunk[:]
	for {
		if i := bytes.IndexByte(p.buf, delim); i >= 0 {
			msg := bytes.Clone(p.buf[:i+1])
			p.buf = append(p.buf[:0], p.buf[i+1:]...)
			return msg, nil
		}
		if len(p.buf) > MaxMessage {
			p.buf = p.buf[:0]
			return nil, fmt.Errorf("serial %s: read: no terminator in %d bytes", p.path, MaxMessage)
		}
		if err := ctx.Err(); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("serial %s: read: %w", p.path, err)
		}
		left := time.Until(deadline)
		if left <= 0 {
			return nil, fmt.Errorf("serial %s: read: %w", p.path, os.ErrDeadlineExceeded)
		}
		if err := p.p.SetReadTimeout(min(left, poll)); err != nil {
			return nil, p.fail("set read timeout", err)
		}
		n, err := p.p.Read(chunk)
		if err != nil {
			return nil, p.fail("read", err)
		}
		p.buf = append(p.buf, chunk[:n]...) // n == 0: this slice timed out
	}
}

// Reset discards buffered and pending input (scpi.Resetter).
func (p *Port) Reset(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return p.err
	}
	p.buf = p.buf[:0]
	if err := p.p.ResetInputBuffer(); err != nil {
		return p.fail("reset input", err)
	}
	return nil
}

// Close closes the port; a read blocked in another goroutine returns.
func (p *Port) Close() error {
	if err := p.p.Close(); err != nil {
		return fmt.Errorf("serial %s: close: %w", p.path, err)
	}
	return nil
}

// fail records errors that mean the port is gone (closed, hung up,
// unplugged), so later calls fail fast instead of blocking.
func (p *Port) fail(op string, err error) error {
	var pe *bug.PortError
	// PortClosed: the port was closed or the device went away; EIO: a pty
	// whose master closed, a USB adapter unplugged.
	if errors.As(err, &pe) && pe.Code() == bug.PortClosed || errors.Is(err, syscall.EIO) {
		err = fmt.Errorf("%w (%w)", io.ErrUnexpectedEOF, err)
	}
	err = fmt.Errorf("serial %s: %s: %w", p.path, op, err)
	if errors.Is(err, io.ErrUnexpectedEOF) {
		p.err = err
	}
	return err
}
