// Package scpitest serves emulated SCPI instruments over real transports
// (loopback TCP, a pseudo-terminal pair) for the tests of instrument
// drivers, as net/http/httptest serves handlers.
package scpitest

import (
	"context"
	"sync"
	"testing"

	"github.com/insitu-lab/insitu/drivers/lxi"
	"github.com/insitu-lab/insitu/drivers/scpi"
	"github.com/insitu-lab/insitu/drivers/scpi/emulator"
	"github.com/insitu-lab/insitu/drivers/serial"
)

// ServeTCP serves in on a loopback port until the test ends and returns a
// connection to it.
func ServeTCP(t testing.TB, in *emulator.Instrument) (scpi.Conn, string) {
	t.Helper()
	ln, err := emulator.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = in.ServeTCP(ctx, ln) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	addr := ln.Addr().String()
	c, err := lxi.Dial(ctx, lxi.Config{Address: addr})
	if err != nil {
		t.Fatal(err)
	}
	return c, addr
}

// ServePTY serves in on a pseudo-terminal and returns the serial port
// opened on its slave (opened before serving, so the slave is raw).
func ServePTY(t testing.TB, in *emulator.Instrument) (scpi.Conn, string) {
	t.Helper()
	p, err := emulator.OpenPTY()
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	port, err := serial.Open(ctx, serial.Config{Port: p.Path})
	if err != nil {
		p.Close()
		cancel()
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() { _ = in.Serve(ctx, p.Master) })
	t.Cleanup(func() { cancel(); wg.Wait(); p.Close() })
	return port, p.Path
}

// Transports are both, for table-driven tests.
var Transports = []struct {
	Name  string
	Serve func(testing.TB, *emulator.Instrument) (scpi.Conn, string)
}{{"tcp", ServeTCP}, {"pty", ServePTY}}
