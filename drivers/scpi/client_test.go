package scpi_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/insitu-lab/insitu/drivers/lxi"
	"github.com/insitu-lab/insitu/drivers/scpi"
	"github.com/insitu-lab/insitu/drivers/scpi/emulator"
	"github.com/insitu-lab/insitu/drivers/serial"
)

const twinIDN = "insitu,TWIN-SMU2400,0001,1.0"

// newSMU is a small emulated source-measure unit.
func newSMU(t testing.TB) *emulator.Instrument {
	var mu sync.Mutex
	volt := 0.0
	inst, err := emulator.New(twinIDN, emulator.Table{
		"SOURce:VOLTage[:LEVel]": func(args string) (string, error) {
			var v float64
			if _, err := fmt.Sscan(args, &v); err != nil {
				return "", emulator.Err(-104, "Data type error")
			}
			if v < -20 || v > 20 {
				return "", emulator.Err(-222, "Data out of range")
			}
			mu.Lock()
			volt = v
			mu.Unlock()
			return "", nil
		},
		"SOURce:VOLTage[:LEVel]?": func(string) (string, error) {
			mu.Lock()
			defer mu.Unlock()
			return fmt.Sprint(volt), nil
		},
		"ECHO?":       func(args string) (string, error) { return args, nil },
		"OVERload?":   func(string) (string, error) { return "+9.9E37", nil },
		"READ?":       func(string) (string, error) { return "+1.000000E+00,-2.500000E-03", nil },
		"TRACe:DATA?": func(string) (string, error) { return "#210ab\ncd\nefgh", nil },
	}, emulator.WithReplyTerminator("\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	return inst
}

type transport struct {
	name string
	open func(t testing.TB, inst *emulator.Instrument) scpi.Conn
	// reconnects: a hang-up of the peer is survivable (TCP redials; a pty
	// whose master closed is gone for good).
	reconnects bool
}

var transports = []transport{
	{"tcp", openTCP, true},
	{"pty", openPTY, false},
}

func openTCP(t testing.TB, inst *emulator.Instrument) scpi.Conn {
	ln, err := emulator.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { inst.ServeTCP(ctx, ln); close(done) }()
	c, err := lxi.Dial(ctx, lxi.Config{Address: ln.Addr().String(), Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); cancel(); waitFor(t, done, "the emulator's ServeTCP to return") })
	return c
}

// waitFor waits for done, failing the test instead of hanging when it
// does not come within 10 s.
func waitFor(t testing.TB, done <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Errorf("gave up waiting 10 s for %s", what)
	}
}

func openPTY(t testing.TB, inst *emulator.Instrument) scpi.Conn {
	pt, err := emulator.OpenPTY()
	if err != nil {
		t.Fatal(err)
	}
	// Open the client side first: it puts the slave in raw mode, so the line
	// discipline does not echo the emulator's replies back to it.
	p, err := serial.Open(context.Background(), serial.Config{Port: pt.Path, Baud: 115200, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { inst.Serve(ctx, pt.Master); close(done) }()
	t.Cleanup(func() { cancel(); waitFor(t, done, "the emulator's Serve to return"); p.Close(); pt.Close() })
	return p
}

func forEach(t *testing.T, f func(t *testing.T, tr transport)) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) { f(t, tr) })
	}
}

func TestIdentify(t *testing.T) {
	forEach(t, func(t *testing.T, tr transport) {
		c := scpi.NewClient(tr.open(t, newSMU(t)))
		ctx := context.Background()
		id, err := c.Identify(ctx, `^insitu,TWIN-`)
		if err != nil || id.Model != "TWIN-SMU2400" || id.Serial != "0001" {
			t.Fatalf("Identify = %+v, %v", id, err)
		}
		_, err = c.Identify(ctx, `^KEITHLEY.*MODEL 2400`)
		if !errors.Is(err, scpi.ErrIdentity) || !strings.Contains(err.Error(), twinIDN) || !strings.Contains(err.Error(), "KEITHLEY") {
			t.Fatalf("mismatch error %v must wrap ErrIdentity and name both", err)
		}
	})
}

func TestCompoundAndErrorQueue(t *testing.T) {
	forEach(t, func(t *testing.T, tr transport) {
		inst := newSMU(t)
		c := scpi.NewClient(tr.open(t, inst))
		ctx := context.Background()
		got, err := c.Query(ctx, "*RST;:SOUR:VOLT 1.5;:SOURCE:VOLTAGE:LEVEL?")
		if err != nil || got != "1.5" {
			t.Fatalf("compound query = %q, %v", got, err)
		}
		if v, err := c.QueryFloat(ctx, "sour:volt 2;volt?"); err != nil || v != 2 { // relative path
			t.Fatalf("relative compound = %v, %v", v, err)
		}
		if err := c.Write(ctx, "SOUR:VOLT 300"); err != nil {
			t.Fatal(err)
		}
		if err := c.Write(ctx, "BOGUS:HEADER"); err != nil {
			t.Fatal(err)
		}
		if err := c.OPC(ctx); err != nil { // writes are asynchronous: let them land
			t.Fatal(err)
		}
		inst.PushError(-300, `Device-specific error; "hot"`)
		errs, err := c.Errors(ctx)
		want := []scpi.DeviceError{{-222, "Data out of range"}, {-113, "Undefined header"}, {-300, `Device-specific error; "hot"`}}
		if err != nil || fmt.Sprint(errs) != fmt.Sprint(want) {
			t.Fatalf("Errors = %v, %v; want %v", errs, err, want)
		}
		if errs, err := c.Errors(ctx); err != nil || len(errs) != 0 {
			t.Fatalf("second drain = %v, %v", errs, err)
		}
		inst.PushError(-100, "x")
		if err := c.Clear(ctx); err != nil {
			t.Fatal(err)
		}
		if errs, err := c.Errors(ctx); err != nil || len(errs) != 0 {
			t.Fatalf("after *CLS = %v, %v", errs, err)
		}
		if err := c.OPC(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

func TestErrorQueueBounded(t *testing.T) {
	inst, err := emulator.New(twinIDN, emulator.Table{
		"SYSTem:ERRor[:NEXT]?": func(string) (string, error) { return `-100,"Command error"`, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	c := scpi.NewClient(openTCP(t, inst), scpi.WithMaxErrors(5))
	errs, err := c.Errors(context.Background())
	if !errors.Is(err, scpi.ErrErrorQueue) || len(errs) != 5 {
		t.Fatalf("Errors = %d entries, %v; want 5 and ErrErrorQueue", len(errs), err)
	}
}

func TestNumbersAndBlocks(t *testing.T) {
	forEach(t, func(t *testing.T, tr transport) {
		c := scpi.NewClient(tr.open(t, newSMU(t)))
		ctx := context.Background()
		if vs, err := c.QueryFloats(ctx, "READ?"); err != nil || len(vs) != 2 || vs[1] != -2.5e-3 {
			t.Fatalf("QueryFloats = %v, %v", vs, err)
		}
		if _, err := c.QueryFloat(ctx, "OVER?"); !errors.Is(err, scpi.ErrOverflow) || !strings.Contains(err.Error(), "OVER?") {
			t.Fatalf("overflow: %v", err)
		}
		b, err := c.QueryBlock(ctx, "TRAC:DATA?")
		if err != nil || string(b) != "ab\ncd\nefgh" {
			t.Fatalf("QueryBlock = %q, %v", b, err)
		}
		if got, err := c.Query(ctx, "ECHO? after-block"); err != nil || got != "after-block" {
			t.Fatalf("after block: %q, %v", got, err)
		}
	})
}

func TestFaults(t *testing.T) {
	forEach(t, func(t *testing.T, tr transport) {
		inst := newSMU(t)
		c := scpi.NewClient(tr.open(t, inst), scpi.WithName("smu"), scpi.WithTimeout(300*time.Millisecond))
		ctx := context.Background()

		inst.DropNext(1)
		start := time.Now()
		_, err := c.Query(ctx, "ECHO? lost")
		var oe *scpi.OpError
		if !errors.Is(err, scpi.ErrTimeout) || !errors.As(err, &oe) || !oe.Timeout() || oe.Command != "ECHO? lost" || oe.Instrument != "smu" {
			t.Fatalf("dropped reply: %v; want an *OpError timeout naming smu and the command", err)
		}
		if d := time.Since(start); d > 1500*time.Millisecond {
			t.Fatalf("timeout took %v", d)
		}
		if got, err := c.Query(ctx, "ECHO? next"); err != nil || got != "next" {
			t.Fatalf("after a timeout: %q, %v", got, err)
		}

		inst.GarbleNext(1)
		if _, err := c.Query(ctx, "ECHO? noise"); !errors.Is(err, scpi.ErrGarbled) {
			t.Fatalf("garbled: %v", err)
		}
		if got, err := c.Query(ctx, "ECHO? clean"); err != nil || got != "clean" {
			t.Fatalf("after garbage: %q, %v", got, err)
		}

		inst.HangUpNext()
		start = time.Now()
		_, err = c.Query(ctx, "ECHO? bye")
		if err == nil || errors.Is(err, scpi.ErrTimeout) || !strings.Contains(err.Error(), "ECHO? bye") {
			t.Fatalf("hang-up: %v; want a prompt non-timeout error naming the command", err)
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("hang-up noticed after %v", d)
		}
		got, err := c.Query(ctx, "ECHO? again")
		if tr.reconnects && (err != nil || got != "again") {
			t.Fatalf("after hang-up: %q, %v; want a reconnect", got, err)
		}
		if !tr.reconnects && !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("after hang-up: %v; want io.ErrUnexpectedEOF", err)
		}
	})
}

func TestConcurrentCallersSerialized(t *testing.T) {
	forEach(t, func(t *testing.T, tr transport) {
		c := scpi.NewClient(tr.open(t, newSMU(t)))
		ctx := context.Background()
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for g := range 8 {
			wg.Go(func() {
				for i := range 20 {
					want := fmt.Sprintf("g%d-%d", g, i)
					got, err := c.Query(ctx, "ECHO? "+want)
					if err != nil || got != want {
						errs <- fmt.Errorf("query %s: got %q, %v", want, got, err)
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})
}

// TestWaitHonoursContext: a caller waiting for an instrument another call
// holds gives up when its context ends, without sending anything. The I/O
// timeout is long and the holder keeps the instrument well past the
// caller's deadline, so only a lock wait that honours the context returns
// in time, with the context's error rather than a transport timeout.
func TestWaitHonoursContext(t *testing.T) {
	held, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	inst, err := emulator.New(twinIDN, emulator.Table{
		"HOLD?": func(string) (string, error) {
			once.Do(func() { close(held) })
			select { // bounded, so a lock wait that ignores ctx still ends
			case <-release:
			case <-time.After(3 * time.Second):
			}
			return "held", nil
		},
		"ECHO?": func(args string) (string, error) { return args, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	c := scpi.NewClient(openTCP(t, inst), scpi.WithTimeout(10*time.Second))
	var wg sync.WaitGroup
	var holdReply string
	var holdErr error
	wg.Go(func() { holdReply, holdErr = c.Query(context.Background(), "HOLD?") })
	defer func() {
		close(release)
		wg.Wait()
		if holdErr != nil || holdReply != "held" {
			t.Errorf("holding call: %q, %v", holdReply, holdErr)
		}
		for _, cmd := range inst.Commands() {
			if strings.Contains(cmd, "impatient") {
				t.Errorf("the waiting caller's command reached the instrument: %v", inst.Commands())
			}
		}
	}()
	// The instrument is busy with HOLD? and the client is held.
	select {
	case <-held:
	case <-time.After(10 * time.Second):
		t.Fatal("HOLD? never reached the instrument")
	}

	const wait = 100 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	start := time.Now()
	_, err = c.Query(ctx, "ECHO? impatient")
	elapsed := time.Since(start)
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, scpi.ErrTimeout) || !strings.Contains(err.Error(), "waiting for the instrument") {
		t.Errorf("waiting caller: %v; want the context's deadline while waiting for the instrument", err)
	}
	if elapsed > wait+400*time.Millisecond {
		t.Errorf("waiting caller returned after %v; its context ended after %v", elapsed, wait)
	}
}

func TestBadCommand(t *testing.T) {
	c := scpi.NewClient(openTCP(t, newSMU(t)))
	if err := c.Write(context.Background(), "A\nB"); !errors.Is(err, scpi.ErrSyntax) {
		t.Fatalf("embedded newline: %v", err)
	}
}

func benchQuery(b *testing.B, open func(testing.TB, *emulator.Instrument) scpi.Conn) {
	c := scpi.NewClient(open(b, newSMU(b)))
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		if _, err := c.Query(ctx, "SOUR:VOLT?"); err != nil {
			b.Fatal(err)
		}
	}
}

// Round trip of one query through the client, the transport and the
// emulator: the ceiling on a twin bench's query rate.
func BenchmarkQueryTCP(b *testing.B) { benchQuery(b, openTCP) }
func BenchmarkQueryPTY(b *testing.B) { benchQuery(b, openPTY) }

func TestStartAndCheckErrors(t *testing.T) {
	forEach(t, func(t *testing.T, tr transport) {
		ctx := context.Background()
		inst := newSMU(t)
		inst.PushError(-100, "left from before")
		c, id, port, err := scpi.Start(ctx, tr.open(t, inst), "smu", `^insitu,TWIN-`, true)
		if err != nil || id.Model != "TWIN-SMU2400" || port == "?" || c.Name() != "smu "+port {
			t.Fatalf("Start = %v %+v %q, %v", c, id, port, err)
		}
		// *CLS emptied the queue; *RST ran (the level is back to 0).
		if err := c.CheckErrors(ctx, "start"); err != nil {
			t.Fatalf("queue after Start: %v", err)
		}
		if err := c.Write(ctx, "SOUR:VOLT 300"); err != nil {
			t.Fatal(err)
		}
		err = c.CheckErrors(ctx, "SOUR:VOLT 300")
		if err == nil || !strings.Contains(err.Error(), "smu "+port+": error queue after SOUR:VOLT 300") || !strings.Contains(err.Error(), "-222") {
			t.Fatalf("CheckErrors = %v", err)
		}
	})
	// A wrong identity fails and closes the connection.
	conn := openTCP(t, newSMU(t))
	if _, _, _, err := scpi.Start(context.Background(), conn, "meter", `^thorlabs`, false); !errors.Is(err, scpi.ErrIdentity) {
		t.Fatalf("wrong identity: %v", err)
	}
	if err := conn.Write(context.Background(), []byte("*IDN?\n")); err == nil {
		t.Error("connection still open after a failed Start")
	}
}

// newSilent is an instrument whose READ? queues +803 and sends no reply, as
// a 2400 does with its output off, and whose SLOW? answers after 400 ms.
func newSilent(t testing.TB, opts ...emulator.Option) *emulator.Instrument {
	inst, err := emulator.New(twinIDN, emulator.Table{
		"READ?": func(string) (string, error) { return "", emulator.Err(803, "Output disabled") },
		"SLOW?": func(string) (string, error) { time.Sleep(400 * time.Millisecond); return "slow", nil },
		"ECHO?": func(args string) (string, error) { return args, nil },
	}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return inst
}

// TestTimeoutDrainsErrorQueue: a query the instrument never answers fails
// after the timeout with an error naming the instrument, the command and
// the time allowed, followed by the instrument's error queue, which is
// read then (and so left empty).
func TestTimeoutDrainsErrorQueue(t *testing.T) {
	forEach(t, func(t *testing.T, tr transport) {
		inst := newSilent(t, emulator.WithReplyTerminator("\r\n"))
		c := scpi.NewClient(tr.open(t, inst), scpi.WithName("smu port"), scpi.WithTimeout(300*time.Millisecond))
		ctx := context.Background()
		inst.PushError(-113, "Undefined header")
		start := time.Now()
		_, err := c.QueryFloats(ctx, ":READ?")
		elapsed := time.Since(start)
		want := `smu port: :READ?: no reply within 300ms; instrument error queue: -113,"Undefined header"; +803,"Output disabled"`
		if err == nil || err.Error() != want {
			t.Fatalf("error %v\nwant     %s", err, want)
		}
		var op *scpi.OpError
		if !errors.Is(err, scpi.ErrTimeout) || !errors.As(err, &op) || !op.Timeout() || !op.Drained || len(op.Queue) != 2 || op.Queue[1].Code != 803 || op.Waited != 300*time.Millisecond {
			t.Errorf("error %#v", op)
		}
		if elapsed > 300*time.Millisecond+scpi.DefaultDrainTimeout+300*time.Millisecond {
			t.Errorf("timeout and drain took %v", elapsed)
		}
		if errs, err := c.Errors(ctx); err != nil || len(errs) != 0 {
			t.Errorf("queue after the timeout: %v, %v; want it drained", errs, err)
		}
		if got, err := c.Query(ctx, "ECHO? next"); err != nil || got != "next" {
			t.Errorf("after the timeout: %q, %v", got, err)
		}
	})
}

// TestTimeoutDrainBounded: the drain after a timeout stops after a few
// entries, and within its own short timeout when the instrument answers
// nothing at all.
func TestTimeoutDrainBounded(t *testing.T) {
	inst := newSilent(t)
	c := scpi.NewClient(openTCP(t, inst), scpi.WithTimeout(200*time.Millisecond), scpi.WithErrorDrain(300*time.Millisecond, 3))
	ctx := context.Background()
	for i := range 10 {
		inst.PushError(-300-i, "busy")
	}
	_, err := c.Query(ctx, "READ?")
	var op *scpi.OpError
	if !errors.As(err, &op) || len(op.Queue) != 3 || !errors.Is(op.QueueErr, scpi.ErrErrorQueue) || !strings.Contains(err.Error(), "not read further") {
		t.Errorf("long queue: %v", err)
	}

	inst.SetFaults(emulator.Faults{DropRate: 1}) // no reply to anything
	start := time.Now()
	_, err = c.Query(ctx, "ECHO? lost")
	elapsed := time.Since(start)
	if !errors.As(err, &op) || !op.Drained || len(op.Queue) != 0 || !errors.Is(op.QueueErr, scpi.ErrTimeout) || !strings.Contains(err.Error(), "instrument error queue: not read") {
		t.Errorf("dead instrument: %v", err)
	}
	if elapsed > 200*time.Millisecond+300*time.Millisecond+300*time.Millisecond {
		t.Errorf("timeout and bounded drain took %v", elapsed)
	}
	// A failing SYST:ERR? is not drained again; a cancelled call is not drained.
	if _, err := c.Errors(ctx); !errors.As(err, &op) || op.Drained {
		t.Errorf("SYST:ERR? timeout: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	time.AfterFunc(50*time.Millisecond, cancel)
	if _, err := c.Query(cctx, "ECHO? cancelled"); !errors.As(err, &op) || op.Drained || !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled call: %v", err)
	}
}

// hidden hides a transport's Timeout.
type hidden struct{ scpi.Conn }

// TestTimeoutPrecedence: the exchange timeout is the most specific one
// configured — the client's (an instrument's timeout key), else the
// transport's, else DefaultTimeout — and it holds under a caller's later
// deadline (a watchdog's), which used to replace it.
func TestTimeoutPrecedence(t *testing.T) {
	inst := newSilent(t)
	ln, err := emulator.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { inst.ServeTCP(sctx, ln) })
	defer func() { stop(); wg.Wait() }()
	dial := func(timeout time.Duration) scpi.Conn {
		c, err := lxi.Dial(context.Background(), lxi.Config{Address: ln.Addr().String(), Timeout: timeout})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	watchdog, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, c := range []struct {
		name string
		c    *scpi.Client
		want time.Duration
	}{
		{"transport", scpi.NewClient(dial(300 * time.Millisecond)), 300 * time.Millisecond},
		{"instrument over transport", scpi.NewClient(dial(2*time.Second), scpi.WithTimeout(200*time.Millisecond)), 200 * time.Millisecond},
		{"transport default", scpi.NewClient(dial(0)), scpi.DefaultTimeout},
		{"no transport timeout", scpi.NewClient(hidden{dial(300 * time.Millisecond)}), scpi.DefaultTimeout},
	} {
		if got := c.c.Timeout(); got != c.want {
			t.Errorf("%s: timeout %v, want %v", c.name, got, c.want)
		}
		if c.want >= time.Second {
			continue
		}
		start := time.Now()
		_, err := c.c.Query(watchdog, "READ?")
		elapsed := time.Since(start)
		if !errors.Is(err, scpi.ErrTimeout) || !strings.Contains(err.Error(), fmt.Sprintf("no reply within %v", c.want)) {
			t.Errorf("%s: %v; want no reply within %v", c.name, err, c.want)
		}
		if elapsed > c.want+scpi.DefaultDrainTimeout+300*time.Millisecond {
			t.Errorf("%s: failed after %v under a 5 s context: the configured %v did not hold", c.name, elapsed, c.want)
		}
	}
	// An earlier context deadline wins; WithCallTimeout lengthens one call.
	c := scpi.NewClient(dial(300 * time.Millisecond))
	short, cancel2 := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel2()
	if _, err := c.Query(short, "READ?"); !errors.Is(err, scpi.ErrTimeout) || !strings.Contains(err.Error(), "no reply within 100ms") {
		t.Errorf("earlier context deadline: %v", err)
	}
	if got, err := c.Query(scpi.WithCallTimeout(context.Background(), 2*time.Second), "SLOW?"); err != nil || got != "slow" {
		t.Errorf("WithCallTimeout: %q, %v", got, err)
	}
	if _, err := c.Query(context.Background(), "SLOW?"); !errors.Is(err, scpi.ErrTimeout) {
		t.Errorf("slow reply under the 300 ms timeout: %v", err)
	}
}

// notifyWrites passes the emulator's replies to the pseudo-terminal and
// tells the test each one once it is written.
type notifyWrites struct {
	io.ReadWriteCloser
	wrote chan string
}

func (n notifyWrites) Write(p []byte) (int, error) {
	k, err := n.ReadWriteCloser.Write(p)
	n.wrote <- string(p)
	return k, err
}

// TestLateReplyNeverAnswersTheNextQuery over a serial line (a
// pseudo-terminal): a query times out, its reply arrives afterwards and
// waits in the port's input buffer; the next query must get its own reply,
// because a timed-out exchange leaves the client to discard its input
// before the next command. The error-queue drain, which would also clear
// the line, is off.
func TestLateReplyNeverAnswersTheNextQuery(t *testing.T) {
	release := make(chan struct{})
	inst, err := emulator.New(twinIDN, emulator.Table{
		"SLOW?": func(string) (string, error) {
			select {
			case <-release:
			case <-time.After(10 * time.Second):
			}
			return "late", nil
		},
		"ECHO?": func(args string) (string, error) { return args, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	pt, err := emulator.OpenPTY()
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	p, err := serial.Open(context.Background(), serial.Config{Port: pt.Path, Baud: 115200, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	wrote := make(chan string, 16)
	go func() { inst.Serve(ctx, notifyWrites{pt.Master, wrote}); close(done) }()
	t.Cleanup(func() { cancel(); waitFor(t, done, "the emulator's Serve to return"); p.Close(); pt.Close() })

	c := scpi.NewClient(p, scpi.WithTimeout(100*time.Millisecond), scpi.WithErrorDrain(0, 0))
	if _, err := c.Query(context.Background(), "SLOW?"); !errors.Is(err, scpi.ErrTimeout) {
		t.Fatalf("SLOW?: %v, want a timeout", err)
	}
	close(release)
	for reply := ""; !strings.HasPrefix(reply, "late"); {
		select {
		case reply = <-wrote:
		case <-time.After(10 * time.Second):
			t.Fatal("the late reply was never sent")
		}
	}
	if got, err := c.Query(context.Background(), "ECHO? next"); err != nil || got != "next" {
		t.Errorf("the query after a timeout got %q, %v; want its own reply, next", got, err)
	}
}
