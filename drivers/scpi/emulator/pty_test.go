//go:build linux

package emulator

import (
	"bufio"
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestOverrunOnPTY sends a line longer than MaxLine through a real
// pseudo-terminal: a serial line cannot hang up, so the twin queues −363,
// discards the line without answering it and serves the next one.
func TestOverrunOnPTY(t *testing.T) {
	logs := &logLines{}
	in := newTestTwin(t, logs)
	p, err := OpenPTY()
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	defer p.Close()
	port, err := os.OpenFile(p.Path, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer port.Close()
	tio, err := unix.IoctlGetTermios(int(port.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	cfmakeraw(tio)
	if err := unix.IoctlSetTermios(int(port.Fd()), unix.TCSETS, tio); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = in.Serve(ctx, p.Master) })
	defer func() { cancel(); wg.Wait() }()

	go port.WriteString("ECHO? " + strings.Repeat("A", 3*MaxLine) + "\n*IDN?\nSYST:ERR?\n")
	r := bufio.NewReader(port)
	port.SetReadDeadline(time.Now().Add(5 * time.Second)) // pty fds are pollable
	for _, want := range []string{"insitu,TWIN-X,0,1", `-363,"Input buffer overrun"`} {
		got, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("reading %q: %v", want, err)
		}
		if got = strings.TrimRight(got, "\r\n"); got != want {
			t.Fatalf("got %.60q, want %q", got, want)
		}
	}
	if st := in.Stats(); st.Overruns != 1 {
		t.Errorf("stats: %+v", st)
	}
	if !logs.has("input buffer overrun, discarding it") {
		t.Errorf("overrun not logged: %q", logs.lines)
	}
}

// cfmakeraw is cfmakeraw(3).
func cfmakeraw(t *unix.Termios) {
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB
	t.Cflag |= unix.CS8
	t.Cc[unix.VMIN], t.Cc[unix.VTIME] = 1, 0
}
