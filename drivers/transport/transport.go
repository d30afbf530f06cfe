// Package transport opens the link to a SCPI instrument from a config
// section, whichever of the three wires it uses, so every instrument's
// config reads the same:
//
//	transport:
//	  type: lxi                 # serial | lxi | usbtmc
//	  lxi: {address: 192.168.1.20:5025, timeout: 2s}
//
// The section's timeout (default 5 s) bounds each exchange with the
// instrument, unless the instrument's own config has a timeout key, which
// wins (see drivers/scpi).
package transport

import (
	"context"
	"fmt"
	"time"

	"github.com/insitu-lab/insitu/drivers/lxi"
	"github.com/insitu-lab/insitu/drivers/scpi"
	"github.com/insitu-lab/insitu/drivers/serial"
	"github.com/insitu-lab/insitu/drivers/usbtmc"
)

// Config selects how the instrument is reached; exactly the section named
// by Type is used.
type Config struct {
	Type   string        `mapstructure:"type" doc:"serial, lxi or usbtmc"`
	Serial serial.Config `mapstructure:"serial" doc:"a serial port (RS-232, USB-serial)"`
	LXI    lxi.Config    `mapstructure:"lxi" doc:"raw SCPI over TCP (port 5025)"`
	USBTMC usbtmc.Config `mapstructure:"usbtmc" doc:"a USBTMC device node"`
}

// Conn is an open transport that can name its port in errors and says its
// configured timeout (scpi.Timed), which the SCPI client uses unless the
// instrument's config sets its own.
type Conn interface {
	scpi.Conn
	String() string
	Timeout() time.Duration
}

// Dial opens the configured transport.
func Dial(ctx context.Context, t Config) (Conn, error) {
	// Each branch returns its own nil on error: a typed nil pointer in the
	// interface would look like an open connection.
	switch t.Type {
	case "serial":
		c, err := serial.Open(ctx, t.Serial)
		if err != nil {
			return nil, err
		}
		return c, nil
	case "lxi":
		c, err := lxi.Dial(ctx, t.LXI)
		if err != nil {
			return nil, err
		}
		return c, nil
	case "usbtmc":
		c, err := usbtmc.Open(ctx, t.USBTMC)
		if err != nil {
			return nil, err
		}
		return c, nil
	}
	return nil, fmt.Errorf("transport.type %q: want serial, lxi or usbtmc", t.Type)
}
