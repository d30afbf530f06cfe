package emulator

import (
	"bufio"
	"errors"
	"io"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

// Limits of a served instrument, so that no peer can make a twin hold
// memory or connections without bound.
const (
	// MaxLine is the longest line Serve accepts, in bytes, terminator
	// excluded. Real instruments buffer a few kilobytes of input; 64 KiB
	// leaves room for long list or block commands (thousands of sweep
	// points) while a connection never holds more than this plus a 4 KiB
	// read buffer. A longer line is an input buffer overrun (−363).
	MaxLine = 64 << 10
	// MaxLogBytes bounds the commands Commands keeps, in bytes of command
	// text; the oldest are dropped first. MaxLogEntries bounds their number.
	MaxLogBytes   = 1 << 20
	MaxLogEntries = 4096
	// MaxConns is how many connections ServeTCP serves at once; one more
	// is closed as soon as it is accepted.
	MaxConns = 16
	// IdleTimeout is how long a connection may send nothing before Serve
	// closes it, so that idle peers cannot hold every one of the MaxConns
	// places. Instruments drop idle connections too; the LXI driver
	// redials one dropped while idle before its next command, at no cost
	// to the query.
	IdleTimeout = 10 * time.Second
)

const (
	readBufSize = 4 << 10
	// After an overrun, Serve stops sending and discards what the peer
	// still sends for up to overrunLinger before closing, so that the
	// closing RST does not destroy the error reply before the peer reads it.
	overrunLinger = 500 * time.Millisecond
	// Temporary accept errors (EMFILE, ENFILE, ECONNABORTED) are retried
	// after a pause that doubles from minAcceptDelay up to maxAcceptDelay,
	// as net/http's Server does.
	minAcceptDelay = 5 * time.Millisecond
	maxAcceptDelay = time.Second
)

// ErrOverrun is returned by Serve when the peer sent a line longer than
// MaxLine on a connection.
var ErrOverrun = errors.New("emulator: input buffer overrun")

// Stats are an instrument's counters of served connections and of the
// memory it holds for them.
type Stats struct {
	Conns        int    // connections ServeTCP is serving
	Refused      uint64 // connections closed at once because MaxConns were open
	AcceptErrors uint64 // temporary accept errors that were retried
	Overruns     uint64 // lines longer than MaxLine
	Idle         uint64 // connections closed after IdleTimeout without a line
	BufferBytes  int64  // bytes held by the read buffers of the streams being served
	LogBytes     int    // bytes of command text held by the command log
	LogDropped   uint64 // commands dropped from the log, oldest first
}

// Stats returns the current counters.
func (in *Instrument) Stats() Stats {
	in.mu.Lock()
	logBytes, dropped := in.log.bytes, in.log.dropped
	in.mu.Unlock()
	return Stats{
		Conns:        int(in.conns.Load()),
		Refused:      in.refused.Load(),
		AcceptErrors: in.acceptErrors.Load(),
		Overruns:     in.overruns.Load(),
		Idle:         in.idleClosed.Load(),
		BufferBytes:  in.bufBytes.Load(),
		LogBytes:     logBytes,
		LogDropped:   dropped,
	}
}

// cmdLog keeps the newest commands within a byte and an entry budget.
// ents[head:] are kept, oldest first; the slice is compacted once the
// dropped prefix is as long as the kept part, so adding is amortized O(1).
type cmdLog struct {
	ents    []string
	head    int
	bytes   int
	dropped uint64
}

// add keeps a copy of cmd (never a substring of the caller's line, which
// would keep the whole line alive) and drops the oldest entries past the
// budgets. A command larger than the whole byte budget is counted as
// dropped without being kept.
func (l *cmdLog) add(cmd string, maxBytes, maxEntries int) {
	if len(cmd) > maxBytes {
		l.dropped++
		return
	}
	l.ents = append(l.ents, strings.Clone(cmd))
	l.bytes += len(cmd)
	for l.bytes > maxBytes || len(l.ents)-l.head > maxEntries {
		l.bytes -= len(l.ents[l.head])
		l.ents[l.head] = ""
		l.head++
		l.dropped++
	}
	if l.head >= 64 && 2*l.head >= len(l.ents) {
		n := copy(l.ents, l.ents[l.head:])
		clear(l.ents[n:])
		l.ents, l.head = l.ents[:n], 0
	}
}

func (l *cmdLog) list() []string { return slices.Clone(l.ents[l.head:]) }

// errLineTooLong is lineReader's overrun; Serve turns it into −363.
var errLineTooLong = errors.New("line too long")

// lineReader reads newline-terminated lines of at most max bytes with a
// fixed read buffer, and adds the bytes it holds to *held.
type lineReader struct {
	r       *bufio.Reader
	line    []byte // assembles a line longer than the read buffer; cap ≤ max+2
	max     int
	midLine bool // the last overrun stopped before the line's terminator
	held    *atomic.Int64
	counted int64 // this reader's share of *held
}

func newLineReader(r io.Reader, max int, held *atomic.Int64) *lineReader {
	lr := &lineReader{r: bufio.NewReaderSize(r, readBufSize), max: max, held: held}
	lr.account()
	return lr
}

func (lr *lineReader) account() {
	n := int64(lr.r.Size() + cap(lr.line))
	lr.held.Add(n - lr.counted)
	lr.counted = n
}

// release gives back what the reader counted in *held.
func (lr *lineReader) release() {
	lr.held.Add(-lr.counted)
	lr.counted = 0
}

// next returns the next line with its terminator, valid until the next
// call. A line longer than max, "\n" or "\r\n" excluded, is errLineTooLong,
// reported as soon as max is passed without reading on to its end (skip
// does that). Bytes after the last terminator at EOF are returned with
// io.EOF.
func (lr *lineReader) next() ([]byte, error) {
	lr.line = lr.line[:0]
	lr.midLine = false
	for {
		frag, err := lr.r.ReadSlice('\n')
		n := len(lr.line) + len(frag)
		over := n > lr.max+1 // one byte more may be the "\r" of "\r\n"
		if err == nil {
			n-- // "\n"
			if len(frag) >= 2 && frag[len(frag)-2] == '\r' || len(frag) == 1 && len(lr.line) > 0 && lr.line[len(lr.line)-1] == '\r' {
				n--
			}
			over = n > lr.max
		}
		if over {
			lr.midLine = err != nil
			return nil, errLineTooLong
		}
		if err == nil && len(lr.line) == 0 {
			return frag, nil // the whole line was in the read buffer
		}
		if need := len(lr.line) + len(frag); need > cap(lr.line) {
			grown := make([]byte, len(lr.line), min(max(2*cap(lr.line), need), lr.max+2))
			copy(grown, lr.line)
			lr.line = grown
			lr.account()
		}
		lr.line = append(lr.line, frag...)
		if !errors.Is(err, bufio.ErrBufferFull) {
			return lr.line, err
		}
	}
}

// skip discards the rest of an overrun line, through its terminator.
func (lr *lineReader) skip() error {
	for lr.midLine {
		_, err := lr.r.ReadSlice('\n')
		if !errors.Is(err, bufio.ErrBufferFull) {
			lr.midLine = false
			return err
		}
	}
	return nil
}

// temporary reports whether an accept error is worth retrying, as net/http
// decides: the error says so (EMFILE, ENFILE, ECONNABORTED, timeouts).
func temporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

// nextDelay doubles an accept retry delay within [minAcceptDelay, maxAcceptDelay].
func nextDelay(d time.Duration) time.Duration {
	return min(max(2*d, minAcceptDelay), maxAcceptDelay)
}
