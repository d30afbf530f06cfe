package lxi

import (
	"context"
	"net"
	"testing"
	"time"
)

// Replies that arrive in one TCP segment, and one that arrives split over
// two, come back from ReadUntil one message at a time, none lost.
func TestReadUntilSplitsAndJoinsSegments(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.Write([]byte("one\ntwo\nthr"))
		time.Sleep(50 * time.Millisecond)
		c.Write([]byte("ee\n"))
		time.Sleep(time.Second)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := Dial(ctx, Config{Address: ln.Addr().String(), Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, want := range []string{"one\n", "two\n", "three\n"} {
		got, err := c.ReadUntil(ctx, '\n')
		if err != nil || string(got) != want {
			t.Fatalf("ReadUntil = %q, %v; want %q", got, err, want)
		}
	}
}
