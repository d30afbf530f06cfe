package main

import (
	"net"
	"strings"
	"testing"

	"github.com/insitu-lab/insitu/drivers/serial"
)

func TestProbeErrorNamesThePort(t *testing.T) {
	// A port nobody listens on: take a free one and close it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, _, err = run(t, "probe", "--tcp", addr, "--timeout", "1s")
	if err == nil || !strings.Contains(err.Error(), addr) {
		t.Fatalf("probe of a dead port: %v, want an error naming %s", err, addr)
	}
	_, _, err = run(t, "probe", "--serial", "/nonexistent/ttyX", "--timeout", "1s")
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/ttyX") {
		t.Fatalf("probe of a missing serial port: %v", err)
	}
}

// probe --ports prints every port serial.List finds, one a line, or says
// there are none.
func TestProbeListsPorts(t *testing.T) {
	ports, lerr := serial.List()
	out, _, err := run(t, "probe", "--ports")
	if lerr != nil {
		if err == nil || !strings.Contains(err.Error(), "listing serial ports") {
			t.Fatalf("probe --ports with a failing enumeration: %v, want the listing error", err)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	var want strings.Builder
	if len(ports) == 0 {
		want.WriteString("no serial ports found (pseudo-terminals are not listed; give their path)\n")
	}
	for _, p := range ports {
		want.WriteString(p.String() + "\n")
	}
	if out != want.String() {
		t.Errorf("probe --ports printed\n%q\nwant\n%q", out, want.String())
	}
}

func TestProbeTwinDropsReply(t *testing.T) {
	addr := serveInProcess(t, "smu", "--tcp", "127.0.0.1:0", "--drop", "1")
	_, _, err := run(t, "probe", "--tcp", addr, "--timeout", "300ms")
	if err == nil || !strings.Contains(err.Error(), addr) || !strings.Contains(err.Error(), "*IDN?") {
		t.Fatalf("dropped *IDN? reply: %v, want a timeout naming %s and *IDN?", err, addr)
	}
}
