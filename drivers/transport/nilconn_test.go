package transport_test

import (
	"context"
	"testing"
	"time"

	"github.com/insitu-lab/insitu/drivers/lxi"
	"github.com/insitu-lab/insitu/drivers/serial"
	"github.com/insitu-lab/insitu/drivers/transport"
	"github.com/insitu-lab/insitu/drivers/usbtmc"
)

// A failed Dial returns a nil interface, not a typed nil pointer inside one,
// which a caller's c != nil check would take for an open connection.
func TestFailedDialReturnsNilConn(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, cfg := range []transport.Config{
		{Type: "lxi", LXI: lxi.Config{Address: "127.0.0.1:1", DialTimeout: 200 * time.Millisecond}},
		{Type: "serial", Serial: serial.Config{Port: "/nonexistent/ttyX", Baud: 9600}},
		{Type: "usbtmc", USBTMC: usbtmc.Config{Path: "/nonexistent/usbtmc0"}},
		{Type: "gpib"},
	} {
		c, err := transport.Dial(ctx, cfg)
		if err == nil {
			t.Errorf("%s: Dial succeeded", cfg.Type)
			continue
		}
		if c != nil {
			t.Errorf("%s: Dial failed (%v) but returned the non-nil Conn %#v", cfg.Type, err, c)
		}
	}
}
