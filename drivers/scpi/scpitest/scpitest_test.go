package scpitest

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/insitu-lab/insitu/drivers/lxi"
	"github.com/insitu-lab/insitu/drivers/scpi"
	"github.com/insitu-lab/insitu/drivers/scpi/emulator"
	"github.com/insitu-lab/insitu/drivers/serial"
)

// Each entry of Transports serves the instrument over the transport it
// names, and the connection it returns answers a query.
func TestTransportsServeWhatTheyName(t *testing.T) {
	if len(Transports) != 2 {
		t.Fatalf("%d transports, want tcp and pty", len(Transports))
	}
	for _, tr := range Transports {
		t.Run(tr.Name, func(t *testing.T) {
			in, err := emulator.New("insitu,TEST twin,0,1", nil)
			if err != nil {
				t.Fatal(err)
			}
			c, where := tr.Serve(t, in)
			switch tr.Name {
			case "tcp":
				if _, ok := c.(*lxi.Conn); !ok {
					t.Errorf("tcp transport returned %T", c)
				}
				if _, _, err := net.SplitHostPort(where); err != nil {
					t.Errorf("tcp transport at %q: %v", where, err)
				}
			case "pty":
				if _, ok := c.(*serial.Port); !ok {
					t.Errorf("pty transport returned %T", c)
				}
				if !strings.HasPrefix(where, "/dev/") {
					t.Errorf("pty transport at %q, want a /dev path", where)
				}
			default:
				t.Errorf("unknown transport %q", tr.Name)
			}
			cl := scpi.NewClient(c, scpi.WithTimeout(5*time.Second))
			defer cl.Close()
			id, err := cl.Identify(context.Background(), "")
			if err != nil || id.Model != "TEST twin" {
				t.Errorf("identity %+v, %v", id, err)
			}
		})
	}
}
