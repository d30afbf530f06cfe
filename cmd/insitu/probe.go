package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/insitu-lab/insitu/drivers/lxi"
	"github.com/insitu-lab/insitu/drivers/scpi"
	"github.com/insitu-lab/insitu/drivers/serial"
	"github.com/insitu-lab/insitu/drivers/usbtmc"
)

type probeFlags struct {
	ports      bool
	tcp        string
	serial     string
	usbtmc     string
	baud       int
	terminator string
	timeout    time.Duration
}

func newProbeCmd() *cobra.Command {
	var f probeFlags
	c := &cobra.Command{
		Use:   "probe",
		Short: "List serial ports and ask an instrument for its identity (*IDN?)",
		Long: `List the machine's serial ports with their USB vendor/product IDs and serial
numbers (pseudo-terminals are not listed; give their path), or ask one
instrument for its identity:

  insitu probe --ports
  insitu probe --tcp 192.168.1.20          # LXI raw socket, port 5025 by default
  insitu probe --serial /dev/ttyUSB0 --baud 9600 --terminator CR
  insitu probe --usbtmc /dev/usbtmc0

With no flag it lists the ports.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return probe(cmd.Context(), cmd.OutOrStdout(), f)
		},
	}
	fl := c.Flags()
	fl.BoolVar(&f.ports, "ports", false, "list serial ports")
	fl.StringVar(&f.tcp, "tcp", "", "ask the instrument at this LXI address (host[:port])")
	fl.StringVar(&f.serial, "serial", "", "ask the instrument on this serial port")
	fl.StringVar(&f.usbtmc, "usbtmc", "", "ask the instrument on this USBTMC device")
	fl.IntVar(&f.baud, "baud", 0, "serial: baud rate (default 9600)")
	fl.StringVar(&f.terminator, "terminator", "", "serial: terminator for commands and replies, LF (default), CR, CRLF or LFCR")
	fl.DurationVar(&f.timeout, "timeout", 3*time.Second, "how long to wait for the reply")
	return c
}

func probe(ctx context.Context, out io.Writer, f probeFlags) error {
	n := 0
	for _, s := range []string{f.tcp, f.serial, f.usbtmc} {
		if s != "" {
			n++
		}
	}
	if n > 1 {
		return errors.New("probe: give one of --tcp, --serial, --usbtmc")
	}
	if f.ports || n == 0 {
		ports, err := serial.List()
		if err != nil {
			return fmt.Errorf("probe: listing serial ports: %w", err)
		}
		if len(ports) == 0 {
			fmt.Fprintln(out, "no serial ports found (pseudo-terminals are not listed; give their path)")
		}
		for _, p := range ports {
			fmt.Fprintln(out, p)
		}
		if n == 0 {
			return nil
		}
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	var conn scpi.Conn
	var port string
	var err error
	switch {
	case f.tcp != "":
		port = f.tcp
		conn, err = dialLXI(ctx, lxi.Config{Address: f.tcp, DialTimeout: f.timeout, Timeout: f.timeout})
	case f.serial != "":
		port = f.serial
		cfg := serial.Config{Port: f.serial, Baud: f.baud, ReadTerminator: f.terminator, WriteTerminator: f.terminator, Timeout: f.timeout}
		conn, err = openSerial(ctx, cfg)
	default:
		port = f.usbtmc
		conn, err = openUSBTMC(ctx, usbtmc.Config{Path: f.usbtmc, Timeout: f.timeout})
	}
	if err != nil {
		return fmt.Errorf("probe %s: %w", port, err)
	}
	client := scpi.NewClient(conn, scpi.WithName("probe "+port), scpi.WithTimeout(f.timeout))
	defer client.Close()
	id, err := client.Identify(ctx, "")
	if err != nil {
		return err // an *scpi.OpError: names the port and *IDN?
	}
	fmt.Fprintf(out, "port:         %s\nmanufacturer: %s\nmodel:        %s\nserial:       %s\nfirmware:     %s\n",
		port, id.Manufacturer, id.Model, id.Serial, id.Firmware)
	return nil
}

// The openers return a nil interface on error, never a typed nil pointer.
func dialLXI(ctx context.Context, c lxi.Config) (scpi.Conn, error) {
	conn, err := lxi.Dial(ctx, c)
	if err != nil {
		return nil, err
	}
	return conn, nil
}

func openSerial(ctx context.Context, c serial.Config) (scpi.Conn, error) {
	p, err := serial.Open(ctx, c)
	if err != nil {
		return nil, err
	}
	return p, nil
}

func openUSBTMC(ctx context.Context, c usbtmc.Config) (scpi.Conn, error) {
	d, err := usbtmc.Open(ctx, c)
	if err != nil {
		return nil, err
	}
	return d, nil
}
