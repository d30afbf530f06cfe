package lxi

import (
	"context"
	"errors"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/insitu-lab/insitu/drivers/scpi"
	"github.com/insitu-lab/insitu/drivers/scpi/emulator"
)

// The transport is a scpi.Conn and lets the client resync after a fault.
var (
	_ scpi.Conn     = (*Conn)(nil)
	_ scpi.Resetter = (*Conn)(nil)
)

func TestConfig(t *testing.T) {
	c := Config{Address: "10.0.0.7"}
	c.Defaults()
	if c.Address != "10.0.0.7:5025" || c.Validate() != nil {
		t.Fatalf("defaults: %+v, %v", c, c.Validate())
	}
	c = Config{}
	c.Defaults()
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "address:") {
		t.Fatalf("missing address: %v", err)
	}
}

// trackingListener records accepted connections so a test can drop them.
type trackingListener struct {
	net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.mu.Lock()
		l.conns = append(l.conns, c)
		l.mu.Unlock()
	}
	return c, err
}

func (l *trackingListener) dropAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.conns {
		c.Close()
	}
	l.conns = nil
}

func serve(t *testing.T) (*emulator.Instrument, *trackingListener) {
	inst, err := emulator.New("insitu,TWIN-LXI,0,1", emulator.Table{
		"ECHO?": func(a string) (string, error) { return a, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := emulator.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tl := &trackingListener{Listener: ln}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { inst.ServeTCP(ctx, tl); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return inst, tl
}

func query(ctx context.Context, c *Conn, q string) (string, error) {
	if err := c.Write(ctx, []byte(q+"\n")); err != nil {
		return "", err
	}
	b, err := c.ReadUntil(ctx, '\n')
	return strings.TrimSuffix(string(b), "\n"), err
}

func TestReconnect(t *testing.T) {
	inst, ln := serve(t)
	ctx := context.Background()
	c, err := Dial(ctx, Config{Address: ln.Addr().String(), Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got, err := query(ctx, c, "ECHO? 1"); err != nil || got != "1" {
		t.Fatalf("first query: %q, %v", got, err)
	}

	// The instrument drops an idle connection: the next query redials first
	// and does not fail.
	ln.dropAll()
	time.Sleep(20 * time.Millisecond) // let the FIN arrive
	if got, err := query(ctx, c, "ECHO? 2"); err != nil || got != "2" {
		t.Fatalf("after idle drop: %q, %v", got, err)
	}
	if n := c.Reconnects(); n != 1 {
		t.Fatalf("Reconnects = %d, want 1", n)
	}

	// A hang-up in the middle of a query fails that query (it may have
	// acted), and the next one reconnects.
	inst.HangUpNext()
	if _, err := query(ctx, c, "ECHO? 3"); err == nil || !strings.Contains(err.Error(), ln.Addr().String()) {
		t.Fatalf("hang-up mid-query: %v; want an error naming the address", err)
	}
	if got, err := query(ctx, c, "ECHO? 4"); err != nil || got != "4" {
		t.Fatalf("after hang-up: %q, %v", got, err)
	}
	if n := c.Reconnects(); n != 2 {
		t.Fatalf("Reconnects = %d, want 2", n)
	}
}

func TestReadTimeoutAndCancel(t *testing.T) {
	inst, ln := serve(t)
	c, err := Dial(context.Background(), Config{Address: ln.Addr().String(), Timeout: 150 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	inst.DropNext(1)
	start := time.Now()
	_, err = query(context.Background(), c, "ECHO? lost")
	if !errors.Is(err, os.ErrDeadlineExceeded) || time.Since(start) > time.Second {
		t.Fatalf("silent instrument: %v after %v", err, time.Since(start))
	}
	// The late-reply hazard: the timed-out connection is dropped, so the
	// next query gets its own reply.
	if got, err := query(context.Background(), c, "ECHO? fresh"); err != nil || got != "fresh" {
		t.Fatalf("after timeout: %q, %v", got, err)
	}
	inst.DropNext(1)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(30*time.Millisecond, cancel)
	if _, err := query(ctx, c, "ECHO? cancelled"); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancel: %v", err)
	}
}

// fullListener returns the address of a loopback socket whose accept queue is
// full, so a connect to it hangs until the dialer gives up.
func fullListener(t *testing.T) string {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Skip(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Skip(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Skip(err)
	}
	sa, _ := syscall.Getsockname(fd)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(sa.(*syscall.SockaddrInet4).Port))
	for range 8 { // fill the queue; these connects complete or stall
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err != nil {
			return addr
		}
		t.Cleanup(func() { c.Close() })
	}
	t.Skip("could not fill the accept queue")
	return ""
}

func TestDialTimeout(t *testing.T) {
	addr := fullListener(t)
	start := time.Now()
	_, err := Dial(context.Background(), Config{Address: addr, DialTimeout: 150 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), addr) || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Dial = %v; want a timeout naming %s", err, addr)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("dial gave up after %v", d)
	}
}

func TestClosed(t *testing.T) {
	_, ln := serve(t)
	c, err := Dial(context.Background(), Config{Address: ln.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if err := c.Write(context.Background(), []byte("*IDN?\n")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after Close: %v", err)
	}
}

func TestCloseInterruptsRead(t *testing.T) {
	inst, ln := serve(t)
	c, err := Dial(context.Background(), Config{Address: ln.Addr().String(), Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	inst.DropNext(1)
	if err := c.Write(context.Background(), []byte("ECHO? x\n")); err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(50*time.Millisecond, func() { c.Close() })
	start := time.Now()
	if _, err := c.ReadUntil(context.Background(), '\n'); err == nil || time.Since(start) > time.Second {
		t.Fatalf("ReadUntil = %v after %v; want Close to interrupt it", err, time.Since(start))
	}
}
