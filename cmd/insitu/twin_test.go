package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// serveInProcess runs `insitu twin serve args...` in a goroutine until the
// test ends and returns the first line it prints: the address or pty path.
func serveInProcess(t *testing.T, args ...string) string {
	t.Helper()
	addr, _ := startTwin(t, args...)
	return addr
}

// lockedBuffer is a bytes.Buffer safe to read while the twin writes it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// startTwin is serveInProcess that also returns the command's stderr.
func startTwin(t *testing.T, args ...string) (string, *lockedBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	root := newRoot()
	stderr := &lockedBuffer{}
	root.SetOut(pw)
	root.SetErr(stderr)
	root.SetArgs(append([]string{"twin", "serve"}, args...))
	var wg sync.WaitGroup
	var err error
	wg.Go(func() {
		err = root.ExecuteContext(ctx)
		pw.CloseWithError(io.EOF)
	})
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		if err != nil {
			t.Errorf("twin serve %v: %v\n%s", args, err, stderr.String())
		}
	})
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(pr).ReadString('\n')
		line <- strings.TrimSpace(s)
		io.Copy(io.Discard, pr)
	}()
	select {
	case l := <-line:
		if l == "" {
			t.Fatalf("twin serve %v printed nothing", args)
		}
		return l, stderr
	case <-time.After(5 * time.Second):
		t.Fatalf("twin serve %v: no address within 5 s", args)
	}
	return "", nil
}

func TestTwinServeSMUOverTCPAnswersProbe(t *testing.T) {
	addr := serveInProcess(t, "smu", "--tcp", "127.0.0.1:0")
	if !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Fatalf("address %q", addr)
	}
	out, _, err := run(t, "probe", "--tcp", addr, "--timeout", "2s")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"manufacturer: insitu", "model:        MODEL 2400 twin", "serial:       TWIN-SMU-0001", "port:         " + addr} {
		if !strings.Contains(out, want) {
			t.Errorf("probe output lacks %q:\n%s", want, out)
		}
	}
}

func TestTwinServePowerMeterOverPTYAnswersProbe(t *testing.T) {
	fb := filepath.Join(t.TempDir(), "fb")
	path := serveInProcess(t, "powermeter", "--pty", "--fb", fb, "--fb-size", "64x62", "--seed", "3")
	if !strings.HasPrefix(path, "/dev/") {
		t.Fatalf("pty path %q", path)
	}
	out, _, err := run(t, "probe", "--serial", path, "--timeout", "2s")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "model:        PM100D twin") {
		t.Errorf("probe output:\n%s", out)
	}
}

func TestTwinServeRefusals(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"daq"}, "in-process"},
		{[]string{"scope"}, "unknown kind"},
		{[]string{"smu", "--tcp", "0.0.0.0:0"}, "loopback"},
		{[]string{"smu", "--drop", "2"}, "--drop"},
		{[]string{"powermeter", "--fb-size", "10x10"}, "--fb-size needs --fb"},
	} {
		_, _, err := run(t, append([]string{"twin", "serve"}, c.args...)...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("twin serve %v: %v, want an error about %q", c.args, err, c.want)
		}
	}
}

// TestTwinServeTCPPortOnly: --tcp :0, as the help offers, binds a free
// loopback port and prints it for a script to read.
func TestTwinServeTCPPortOnly(t *testing.T) {
	addr := serveInProcess(t, "smu", "--tcp", ":0")
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host != "127.0.0.1" || port == "0" {
		t.Fatalf("printed address %q: want 127.0.0.1 and the bound port", addr)
	}
	if out, _, err := run(t, "probe", "--tcp", addr, "--timeout", "2s"); err != nil || !strings.Contains(out, "MODEL 2400 twin") {
		t.Fatalf("probe %s: %v\n%s", addr, err, out)
	}
}

func TestTwinTCPAddr(t *testing.T) {
	for flag, want := range map[string]string{
		"":               "127.0.0.1:5025",
		":0":             "127.0.0.1:0",
		":5025":          "127.0.0.1:5025",
		"127.0.0.1:0":    "127.0.0.1:0",
		"[::1]:0":        "[::1]:0",
		"localhost:5025": "localhost:5025",
		"0.0.0.0:0":      "0.0.0.0:0", // refused by emulator.Listen
	} {
		if got := tcpAddr(flag); got != want {
			t.Errorf("tcpAddr(%q) = %q, want %q", flag, got, want)
		}
	}
}

// TestTwinServeLineOverrun sends a served twin a 1 MiB line: it answers
// −363, hangs up, says so on stderr, and goes on serving.
func TestTwinServeLineOverrun(t *testing.T) {
	addr, stderr := startTwin(t, "smu", "--tcp", "127.0.0.1:0")
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	go c.Write([]byte(":SOUR:VOLT " + strings.Repeat("1", 1<<20) + "\n"))
	r := bufio.NewReader(c)
	if reply, err := r.ReadString('\n'); err != nil || reply != `-363,"Input buffer overrun"`+"\n" {
		t.Fatalf("reply to a 1 MiB line: %.60q, %v", reply, err)
	}
	if _, err := r.ReadString('\n'); err == nil {
		t.Fatal("connection still open after the overrun")
	}
	if want := "insitu: smu twin: emulator: " + c.LocalAddr().String() + " sent a line longer than 65536 bytes"; !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
	}
	if out, _, err := run(t, "probe", "--tcp", addr, "--timeout", "2s"); err != nil || !strings.Contains(out, "MODEL 2400 twin") {
		t.Fatalf("probe after the overrun: %v\n%s", err, out)
	}
}
