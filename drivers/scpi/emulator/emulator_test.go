package emulator

import (
	"bufio"
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"
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
