package main

import (
	"net"
	"strings"
	"testing"
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

func TestProbeListsPorts(t *testing.T) {
	out, _, err := run(t, "probe", "--ports")
	if err != nil {
		t.Fatal(err)
	}
	if out == "" {
		t.Error("probe --ports printed nothing")
	}
}

func TestProbeTwinDropsReply(t *testing.T) {
	addr := serveInProcess(t, "smu", "--tcp", "127.0.0.1:0", "--drop", "1")
	_, _, err := run(t, "probe", "--tcp", addr, "--timeout", "300ms")
	if err == nil || !strings.Contains(err.Error(), addr) || !strings.Contains(err.Error(), "*IDN?") {
		t.Fatalf("dropped *IDN? reply: %v, want a timeout naming %s and *IDN?", err, addr)
	}
}
