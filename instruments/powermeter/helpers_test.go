package powermeter_test

import (
	"context"
	"sync"
	"testing"

	"github.com/insitu-lab/insitu/drivers/lxi"
	"github.com/insitu-lab/insitu/drivers/scpi"
	"github.com/insitu-lab/insitu/drivers/scpi/emulator"
	"github.com/insitu-lab/insitu/drivers/serial"
)

// serveTCP serves in on a loopback port until the test ends and returns a
// connection to it.
func serveTCP(t testing.TB, in *emulator.Instrument) (scpi.Conn, string) {
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

// servePTY serves in on a pseudo-terminal and returns the serial port
// opened on its slave (opened before serving, so the slave is raw).
func servePTY(t testing.TB, in *emulator.Instrument) (scpi.Conn, string) {
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

var transports = []struct {
	name  string
	serve func(testing.TB, *emulator.Instrument) (scpi.Conn, string)
}{{"tcp", serveTCP}, {"pty", servePTY}}
