package lxi

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// brokenWriter sends the first three bytes of a write and then fails, as a
// connection reset in the middle of a command does.
type brokenWriter struct{ net.Conn }

func (b brokenWriter) Write(p []byte) (int, error) {
	return min(3, len(p)), errors.New("connection reset by peer")
}

// A write that failed after part of the command went out is not sent again
// on a new connection: the instrument may have acted on the part it got,
// and a resend would give it the command twice.
func TestPartialWriteIsNotRetried(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var accepted atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			defer c.Close()
		}
	}()
	a, b := net.Pipe()
	defer b.Close()
	c := &Conn{cfg: Config{Address: ln.Addr().String(), Timeout: time.Second, DialTimeout: time.Second}}
	var nc net.Conn = brokenWriter{a}
	c.c = nc
	c.live.Store(&nc)
	defer c.Close()

	err = c.Write(context.Background(), []byte(":SOUR:VOLT 1\n"))
	if err == nil || !strings.Contains(err.Error(), "3 of 13 bytes sent") {
		t.Errorf("Write = %v, want the error naming the 3 of 13 bytes sent", err)
	}
	time.Sleep(50 * time.Millisecond)
	if n := accepted.Load(); n != 0 {
		t.Errorf("the command was resent on %d new connection(s)", n)
	}
}
