package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
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
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	root := newRoot()
	var stderr bytes.Buffer
	root.SetOut(pw)
	root.SetErr(&stderr)
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
		return l
	case <-time.After(5 * time.Second):
		t.Fatalf("twin serve %v: no address within 5 s", args)
	}
	return ""
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
