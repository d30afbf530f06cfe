//go:build linux

package transport_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/insitu-lab/insitu/drivers/lxi"
	"github.com/insitu-lab/insitu/drivers/scpi"
	"github.com/insitu-lab/insitu/drivers/scpi/emulator"
	"github.com/insitu-lab/insitu/drivers/serial"
	"github.com/insitu-lab/insitu/drivers/transport"
)

func TestDialEachTransport(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	in, err := emulator.New("insitu,TEST twin,0,1", nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := emulator.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go in.ServeTCP(ctx, ln)
	p, err := emulator.OpenPTY()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	for _, cfg := range []transport.Config{
		{Type: "lxi", LXI: lxi.Config{Address: ln.Addr().String()}},
		{Type: "serial", Serial: serial.Config{Port: p.Path, Baud: 9600}},
	} {
		c, err := transport.Dial(ctx, cfg)
		if err != nil {
			t.Fatalf("%s: %v", cfg.Type, err)
		}
		if cfg.Type == "serial" {
			// Serve only once the driver has put the slave in raw mode.
			go in.Serve(ctx, p.Master)
		}
		cl := scpi.NewClient(c, scpi.WithName(c.String()))
		id, err := cl.Identify(ctx, "(?i)twin")
		if err != nil || id.Model != "TEST twin" {
			t.Errorf("%s: identity %+v, %v", cfg.Type, id, err)
		}
		cl.Close()
	}
	if _, err := transport.Dial(ctx, transport.Config{Type: "gpib"}); err == nil || !strings.Contains(err.Error(), "transport.type") {
		t.Errorf("unknown transport: %v", err)
	}
	if _, err := transport.Dial(ctx, transport.Config{Type: "lxi", LXI: lxi.Config{Address: "127.0.0.1:1", DialTimeout: 200 * time.Millisecond}}); err == nil {
		t.Error("dialing a closed port succeeded")
	}
}
