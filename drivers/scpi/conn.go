// Package scpi is a SCPI (IEEE 488.2) client over any byte transport: serial
// ports, raw TCP sockets (LXI), USBTMC character devices.
//
// The client sends one command at a time per instrument, bounds every
// exchange by a timeout, and reports failures as *OpError values naming the
// instrument and the command. Timeouts satisfy errors.Is(err, ErrTimeout),
// and their message ends with the instrument's error queue, read right
// after the timeout (bounded in entries and time).
//
// Timeout precedence: the most specific configured timeout wins. An
// instrument's own timeout (WithTimeout, from its config's timeout key)
// over the transport's (its timeout key: lxi, serial or usbtmc; Timed) over
// DefaultTimeout (5 s). The timeout bounds each exchange even when the
// caller's context has a later deadline (a watchdog's); an earlier context
// deadline wins. WithCallTimeout lengthens it for one call.
//
// Transports do not import this package: they satisfy Conn structurally and
// report an expired deadline with os.ErrDeadlineExceeded, the convention of
// net.Conn and os.File.
package scpi

import (
	"context"
	"time"
)

// Conn is a byte transport to one instrument.
//
// Write sends p as one message. ReadUntil returns the bytes up to and
// including the first delim; bytes after it stay buffered for the next call.
// Both honour ctx's deadline and cancellation; an expired deadline is reported
// with an error that satisfies errors.Is(err, os.ErrDeadlineExceeded).
type Conn interface {
	Write(ctx context.Context, p []byte) error
	ReadUntil(ctx context.Context, delim byte) ([]byte, error)
	Close() error
}

// Resetter is a Conn that can throw away input still in flight, so that a late
// reply to a timed-out query is not taken as the reply to the next one. The
// client calls it before the next command after a timeout or a bad reply.
// A serial port flushes its input buffer; a TCP connection reconnects.
type Resetter interface {
	Reset(ctx context.Context) error
}

// Terminated is a Conn that knows the instrument's line terminators from its
// configuration (a serial instrument's are selectable on its front panel).
// NewClient uses them unless WithTerminators overrides them.
type Terminated interface {
	Terminators() (read, write string)
}

// Timed is a Conn whose configuration says how long one operation may take
// (a transport's timeout key). NewClient uses it as the exchange timeout
// unless WithTimeout sets a more specific one.
type Timed interface {
	Timeout() time.Duration
}
