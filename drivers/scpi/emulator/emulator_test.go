package emulator

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/iotest"
	"time"
	"unsafe"

	"github.com/insitu-lab/insitu/drivers/lxi"
	"github.com/insitu-lab/insitu/drivers/scpi"
)

func TestNewRefusesNonTwin(t *testing.T) {
	if _, err := New("KEITHLEY INSTRUMENTS INC.,MODEL 2400,1,C30", nil); err == nil {
		t.Fatal("an identity that does not say twin was accepted")
	}
	if _, err := New("a,b,c", nil); err == nil {
		t.Fatal("a malformed identity was accepted")
	}
	if _, err := New("insitu,TWIN-X,0,1", Table{"SOUR[:VOLT": nil}); err == nil {
		t.Fatal("a malformed pattern was accepted")
	}
}

func TestListenLoopbackOnly(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "192.0.2.1:0", "[::]:0"} {
		if ln, err := Listen(addr); err == nil {
			ln.Close()
			t.Errorf("Listen(%q) accepted a non-loopback address", addr)
		}
	}
	ln, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
}

func TestMatch(t *testing.T) {
	hit := func(string) (string, error) { return "hit", nil }
	in, err := New("insitu,TWIN-X,0,1", Table{"SOURce:VOLTage[:LEVel][:IMMediate]?": hit, "*RST": func(string) (string, error) { return "", nil }})
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"SOUR:VOLT?", ":source:voltage:level?", "SOUR:VOLT:IMM?", "sour:volt:lev:imm?"} {
		if in.lookup(h) == nil {
			t.Errorf("%q did not match", h)
		}
	}
	for _, h := range []string{"SOUR:VOLT", "SOURC:VOLT?", "SOUR?", "SOUR:VOLT:LEV:IMM:X?", "VOLT?"} {
		if in.lookup(h) != nil {
			t.Errorf("%q matched", h)
		}
	}
	if in.lookup("*rst") == nil {
		t.Error("*RST override not found")
	}
}

// A session over a real TCP connection: compound commands, quoted
// semicolons, random faults from a seed.
func TestServeTCP(t *testing.T) {
	in, err := New("insitu,TWIN-X,0,1", Table{"ECHO?": func(a string) (string, error) { return a, nil }})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- in.ServeTCP(ctx, ln) }()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	ask := func(line string) string {
		t.Helper()
		c.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Write([]byte(line + "\n")); err != nil {
			t.Fatal(err)
		}
		s, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		return strings.TrimSuffix(s, "\n")
	}
	if got := ask(`*IDN?;ECHO? "a;b";*OPC?`); got != `insitu,TWIN-X,0,1;"a;b";1` {
		t.Fatalf("compound: %q", got)
	}
	if got := ask("NOPE?;SYST:ERR?;SYST:ERR?"); got != `-113,"Undefined header";0,"No error"` {
		t.Fatalf("error queue: %q", got)
	}
	in.SetFaults(Faults{ErrorRate: 1, Seed: 1})
	ask("*OPC?")
	in.SetFaults(Faults{})
	if got := ask("SYST:ERR?"); !strings.HasPrefix(got, "-300,") {
		t.Fatalf("injected error: %q", got)
	}
	if cmds := in.Commands(); len(cmds) == 0 || cmds[0] != "*IDN?" {
		t.Fatalf("Commands = %v", cmds)
	}
	in.SetFaults(Faults{HangUpAfter: 1}) // counted per connection
	c, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	r = bufio.NewReader(c)
	c.Write([]byte("*OPC?\n*OPC?\n"))
	if _, err := r.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ReadString('\n'); err == nil {
		t.Fatal("no hang-up after HangUpAfter lines")
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("ServeTCP returned %v", err)
	}
}

// The twin parses whatever a client sends: no input may panic it.
func FuzzHandleLine(f *testing.F) {
	for _, s := range []string{`*IDN?;SOUR:VOLT 1;VOLT?`, `ECHO? "a;b`, `;;:`, `SYST:ERR?`, `'`, `:`} {
		f.Add(s)
	}
	in, err := New("insitu,TWIN-X,0,1", Table{
		"SOURce:VOLTage[:LEVel]":  func(string) (string, error) { return "", nil },
		"SOURce:VOLTage[:LEVel]?": func(string) (string, error) { return "1", nil },
		"ECHO?":                   func(a string) (string, error) { return a, nil },
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, line string) {
		in.handleLine(context.Background(), line, 1)
	})
}

func FuzzCompile(f *testing.F) {
	for _, s := range []string{"SOURce:VOLTage[:LEVel]?", "[", "[:A]", "a:b", "*IDN?", "?"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, pattern string) {
		e, err := compile(pattern)
		if err == nil && len(e.nodes) == 0 {
			t.Fatalf("compile(%q) gave no nodes", pattern)
		}
	})
}

// logLines collects what an instrument logs; safe for concurrent use.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

func (l *logLines) has(sub string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.lines {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// serveTCP serves in on a loopback port until the test ends and returns
// the address.
func serveTCP(t *testing.T, in *Instrument, ln net.Listener) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.ServeTCP(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("ServeTCP returned %v", err)
		}
	})
	return ln.Addr().String()
}

func newTestTwin(t *testing.T, logs *logLines) *Instrument {
	t.Helper()
	in, err := New("insitu,TWIN-X,0,1", Table{
		"ECHO?": func(a string) (string, error) { return a, nil },
		"SET":   func(string) (string, error) { return "", nil },
	}, WithLogf(logs.logf))
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// client is one loopback connection with line-oriented helpers.
type client struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dial(t *testing.T, addr string) *client {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &client{t, c, bufio.NewReader(c)}
}

// ask sends line and returns the reply line, or the read error.
func (c *client) ask(line string) (string, error) {
	c.c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.WriteString(c.c, line+"\n"); err != nil {
		return "", err
	}
	s, err := c.r.ReadString('\n')
	return strings.TrimSuffix(s, "\n"), err
}

func (c *client) mustAsk(line string) string {
	c.t.Helper()
	s, err := c.ask(line)
	if err != nil {
		c.t.Fatalf("%.40s: %v", line, err)
	}
	return s
}

// eventually polls cond for up to 2 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("not within 2 s: %s", what)
		}
	}
}

// TestOverrunOverTCP sends one 10 MB line: the twin must answer −363, hang
// up, and never hold more than one read buffer and MaxLine for it, where an
// unbounded line reader would grow by the whole line.
func TestOverrunOverTCP(t *testing.T) {
	logs := &logLines{}
	in := newTestTwin(t, logs)
	addr := serveTCP(t, in, listen(t))
	c := dial(t, addr)
	if got := c.mustAsk("*IDN?"); got != "insitu,TWIN-X,0,1" {
		t.Fatalf("*IDN? = %q", got)
	}
	line := []byte("ECHO? " + strings.Repeat("A", 10<<20) + "\n")

	var peak atomic.Int64
	sampling, sampled := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			if b := in.Stats().BufferBytes; b > peak.Load() {
				peak.Store(b)
			}
			select {
			case <-sampling:
				return
			case <-time.After(100 * time.Microsecond):
			}
		}
	}()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)

	c.c.SetDeadline(time.Now().Add(5 * time.Second))
	go c.c.Write(line) // fails once the twin hangs up
	reply, err := c.r.ReadString('\n')
	if err != nil || reply != `-363,"Input buffer overrun"`+"\n" {
		t.Fatalf("reply to a 10 MB line: %.60q (%d bytes), %v", reply, len(reply), err)
	}
	if rest, err := c.r.ReadString('\n'); err == nil {
		t.Fatalf("connection still open after the overrun; read %q", rest)
	}
	c.c.Close() // ends the twin's wait for the peer to stop sending
	eventually(t, "connection released", func() bool { return in.Stats().Conns == 0 })
	runtime.ReadMemStats(&after)
	close(sampling)
	<-sampled

	// One connection: a read buffer and at most MaxLine+2 bytes of line
	// (the line, its "\r\n").
	if limit := int64(readBufSize + MaxLine + 2); peak.Load() > limit {
		t.Errorf("buffers peaked at %d bytes, want at most %d", peak.Load(), limit)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4<<20 {
		t.Errorf("serving a 10 MB line allocated %d bytes", alloc)
	}
	st := in.Stats()
	if st.Overruns != 1 || st.BufferBytes != 0 {
		t.Errorf("stats after the overrun: %+v", st)
	}
	if !logs.has("input buffer overrun, hanging up") {
		t.Errorf("overrun not logged: %q", logs.lines)
	}
	// The instrument goes on serving, with the overrun in its error queue.
	c = dial(t, addr)
	if got := c.mustAsk("SYST:ERR?;*OPC?"); got != `-363,"Input buffer overrun";1` {
		t.Errorf("after the overrun: %q", got)
	}
	// A line of exactly MaxLine bytes is accepted, whichever terminator
	// ends it; one more byte is not.
	long := "ECHO? " + strings.Repeat("B", MaxLine-6)
	for _, end := range []string{"", "\r"} {
		if got := c.mustAsk(long + end); got != long[6:] {
			t.Errorf("a MaxLine line ending %q: reply of %d bytes %.30q, want %d", end+"\n", len(got), got, MaxLine-6)
		}
	}
	if got, err := c.ask(long + "B"); got != `-363,"Input buffer overrun"` {
		t.Errorf("a line of MaxLine+1 bytes: %.30q, %v", got, err)
	}
}

// TestCommandLogBoundedByBytes sends 40 commands of 60 KiB, 2.4 MB in all:
// the log keeps the newest that fit in MaxLogBytes and counts the rest.
func TestCommandLogBoundedByBytes(t *testing.T) {
	in := newTestTwin(t, &logLines{})
	c := dial(t, serveTCP(t, in, listen(t)))
	const n, size = 40, 60 << 10
	for i := range n {
		cmd := fmt.Sprintf("SET %02d%s", i, strings.Repeat("x", size))
		if _, err := io.WriteString(c.c, cmd+"\n"); err != nil {
			t.Fatal(err)
		}
	}
	if got := c.mustAsk("*OPC?"); got != "1" {
		t.Fatalf("*OPC? = %q", got)
	}
	cmds := in.Commands()
	total := 0
	for _, s := range cmds {
		total += len(s)
	}
	st := in.Stats()
	if total > MaxLogBytes || st.LogBytes != total {
		t.Errorf("log holds %d bytes (Stats says %d), want at most %d", total, st.LogBytes, MaxLogBytes)
	}
	if kept := len(cmds); kept < 2 || st.LogDropped != uint64(n+1-kept) {
		t.Fatalf("kept %d of %d commands, %d counted as dropped", kept, n+1, st.LogDropped)
	}
	if cmds[len(cmds)-1] != "*OPC?" || !strings.HasPrefix(cmds[len(cmds)-2], fmt.Sprintf("SET %02d", n-1)) {
		t.Errorf("the newest commands were not kept: last two begin %.8q, %.8q", cmds[len(cmds)-2], cmds[len(cmds)-1])
	}
}

func TestCommandLogEntries(t *testing.T) {
	in := newTestTwin(t, &logLines{})
	for i := range MaxLogEntries + 100 {
		in.handleLine(context.Background(), fmt.Sprintf("SET %d", i), 1)
	}
	cmds := in.Commands()
	if len(cmds) != MaxLogEntries || cmds[0] != "SET 100" || in.Stats().LogDropped != 100 {
		t.Errorf("kept %d commands from %q, dropped %d", len(cmds), cmds[0], in.Stats().LogDropped)
	}

	var l cmdLog
	for i := range 1000 {
		l.add(strings.Repeat("c", i%7), 20, 5)
	}
	if got := strings.Join(l.list(), ","); got != "c,cc,ccc,cccc,ccccc" || l.bytes != 15 || l.dropped != 995 {
		t.Errorf("cmdLog: %q, %d bytes, %d dropped", got, l.bytes, l.dropped)
	}
	if len(l.ents) > 2*64 {
		t.Errorf("cmdLog not compacted: %d slots for 5 entries", len(l.ents))
	}
	l.add(strings.Repeat("c", 21), 20, 5)
	if len(l.list()) != 5 || l.dropped != 996 {
		t.Errorf("a command over the whole budget was kept")
	}
}

// A logged command is a copy: a substring would keep its whole line alive.
func TestCommandLogDoesNotPinLines(t *testing.T) {
	in := newTestTwin(t, &logLines{})
	line := "SET 1;" + strings.Repeat("x", 1<<16)
	in.handleLine(context.Background(), line, 1)
	first := in.Commands()[0]
	p, lo := uintptr(unsafe.Pointer(unsafe.StringData(first))), uintptr(unsafe.Pointer(unsafe.StringData(line)))
	if first != "SET 1" || p >= lo && p < lo+uintptr(len(line)) {
		t.Errorf("log entry %q points into the received line", first)
	}
}

// TestConnectionCap opens MaxConns connections and one more: that one is
// closed at once and logged, and a slot freed is served again.
func TestConnectionCap(t *testing.T) {
	logs := &logLines{}
	in := newTestTwin(t, logs)
	addr := serveTCP(t, in, listen(t))
	var cs []*client
	for i := range MaxConns {
		c := dial(t, addr)
		if got := c.mustAsk("*OPC?"); got != "1" {
			t.Fatalf("connection %d: %q", i, got)
		}
		cs = append(cs, c)
	}
	extra := dial(t, addr)
	if got, err := extra.ask("*OPC?"); err == nil {
		t.Fatalf("connection %d answered %q", MaxConns+1, got)
	}
	if st := in.Stats(); st.Conns != MaxConns || st.Refused != 1 {
		t.Errorf("stats: %+v", st)
	}
	if !logs.has(fmt.Sprintf("%d connections open, refusing", MaxConns)) {
		t.Errorf("refusal not logged: %q", logs.lines)
	}
	for _, c := range cs {
		if got := c.mustAsk("*OPC?"); got != "1" {
			t.Fatalf("served connection after the refusal: %q", got)
		}
	}
	cs[0].c.Close()
	eventually(t, "a freed slot served", func() bool {
		got, err := dial(t, addr).ask("*OPC?")
		return err == nil && got == "1"
	})
}

// flakyListener fails Accept with EMFILE, as a process out of file
// descriptors sees it, fails times before accepting.
type flakyListener struct {
	net.Listener
	fails atomic.Int32
	err   error
}

func (l *flakyListener) Accept() (net.Conn, error) {
	if l.fails.Add(-1) >= 0 {
		return nil, l.err
	}
	return l.Listener.Accept()
}

func TestAcceptErrorsRetried(t *testing.T) {
	logs := &logLines{}
	in := newTestTwin(t, logs)
	emfile := &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	ln := &flakyListener{Listener: listen(t), err: emfile}
	ln.fails.Store(4) // 5+10+20+40 ms of backoff
	addr := serveTCP(t, in, ln)
	if got := dial(t, addr).mustAsk("*OPC?"); got != "1" {
		t.Fatalf("*OPC? = %q", got)
	}
	if st := in.Stats(); st.AcceptErrors != 4 {
		t.Errorf("AcceptErrors = %d, want 4", st.AcceptErrors)
	}
	if !logs.has("too many open files; retrying in 40ms") {
		t.Errorf("backoff not logged as doubling: %q", logs.lines)
	}

	// An error that is not temporary ends ServeTCP.
	perm := &flakyListener{Listener: listen(t), err: errors.New("listener broken")}
	perm.fails.Store(1)
	if err := in.ServeTCP(context.Background(), perm); err == nil || err.Error() != "listener broken" {
		t.Errorf("ServeTCP with a broken listener: %v", err)
	}
	perm.Close()

	if d := nextDelay(0); d != minAcceptDelay {
		t.Errorf("first delay %v", d)
	}
	if d := nextDelay(800 * time.Millisecond); d != maxAcceptDelay {
		t.Errorf("delay past the cap: %v", d)
	}
}

// FuzzLineReader checks lineReader, with a read buffer smaller than a line
// and one-byte reads, against splitting the whole input at once.
func FuzzLineReader(f *testing.F) {
	for _, s := range []string{"a\nb\r\n", strings.Repeat("x", 40) + "\r\nok\n", strings.Repeat("y", 41) + "\n\n", strings.Repeat("z", 100), "\r\r\n" + strings.Repeat("w", 39) + "\r\r\n"} {
		f.Add(s, false)
		f.Add(s, true)
	}
	const limit = 40
	f.Fuzz(func(t *testing.T, in string, oneByte bool) {
		var want []string
		rest := in
		for {
			line, tail, ok := strings.Cut(rest, "\n")
			if !ok {
				if len(rest) > limit+1 {
					want = append(want, "overrun")
				}
				break
			}
			if line = strings.TrimSuffix(line, "\r"); len(line) > limit {
				want = append(want, "overrun")
			} else {
				want = append(want, line)
			}
			rest = tail
		}

		var r io.Reader = strings.NewReader(in)
		if oneByte {
			r = iotest.OneByteReader(r)
		}
		var held atomic.Int64
		lr := &lineReader{r: bufio.NewReaderSize(r, 16), max: limit, held: &held}
		lr.account()
		var got []string
		for {
			line, err := lr.next()
			if errors.Is(err, errLineTooLong) {
				got = append(got, "overrun")
				if lr.skip() != nil {
					break
				}
				continue
			}
			if err != nil {
				break
			}
			got = append(got, strings.TrimSuffix(strings.TrimSuffix(string(line), "\n"), "\r"))
			if cap(lr.line) > limit+2 {
				t.Fatalf("line buffer grew to %d", cap(lr.line))
			}
		}
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Fatalf("got  %q\nwant %q", got, want)
		}
		lr.release()
		if held.Load() != 0 {
			t.Fatalf("held %d after release", held.Load())
		}
	})
}

// TestIdleConnectionsClosed: MaxConns peers that connect and then send
// nothing hold every place only until IdleTimeout: then they are closed
// (and logged), and the next client is served. A peer that keeps talking
// is never closed, however long it stays.
func TestIdleConnectionsClosed(t *testing.T) {
	logs := &logLines{}
	in := newTestTwin(t, logs)
	in.idle = 300 * time.Millisecond
	addr := serveTCP(t, in, listen(t))
	busy := dial(t, addr)
	var idle []*client
	for range MaxConns - 1 {
		idle = append(idle, dial(t, addr))
	}
	eventually(t, "every connection served", func() bool { return in.Stats().Conns == MaxConns })
	if got, err := dial(t, addr).ask("*OPC?"); err == nil {
		t.Fatalf("connection %d answered %q with every place taken", MaxConns+1, got)
	}
	// busy talks every 50 ms for three idle timeouts.
	for end := time.Now().Add(3 * in.idle); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if got := busy.mustAsk("ECHO? still here"); got != "still here" {
			t.Fatalf("busy connection: %q", got)
		}
	}
	if st := in.Stats(); st.Conns != 1 || st.Idle != MaxConns-1 {
		t.Errorf("after the idle timeout: %+v; want the busy connection only, %d closed idle", st, MaxConns-1)
	}
	for i, c := range idle {
		c.c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.r.ReadByte(); !errors.Is(err, io.EOF) {
			t.Errorf("idle connection %d: %v, want it closed (EOF)", i, err)
		}
	}
	if got := dial(t, addr).mustAsk("*OPC?"); got != "1" {
		t.Errorf("a new client after the idle ones were closed: %q", got)
	}
	if !logs.has("closing the idle connection") {
		t.Errorf("idle close not logged: %q", logs.lines)
	}
}

// TestIdleCloseCostsNoQuery: the LXI driver finds the connection the twin
// closed while it was idle and redials before its next command.
func TestIdleCloseCostsNoQuery(t *testing.T) {
	in := newTestTwin(t, &logLines{})
	in.idle = 100 * time.Millisecond
	addr := serveTCP(t, in, listen(t))
	ctx := context.Background()
	conn, err := lxi.Dial(ctx, lxi.Config{Address: addr, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	c := scpi.NewClient(conn)
	defer c.Close()
	for i := range 3 {
		if got, err := c.Query(ctx, "ECHO? x"); err != nil || got != "x" {
			t.Fatalf("query %d: %q, %v", i, got, err)
		}
		eventually(t, "the idle connection closed", func() bool { return in.Stats().Idle == uint64(i+1) })
	}
	if n := conn.Reconnects(); n < 2 {
		t.Errorf("%d redials, want one after each idle close", n)
	}
}
