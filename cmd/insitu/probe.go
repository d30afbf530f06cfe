package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/insitu-lab/insitu"
	"github.com/insitu-lab/insitu/drivers/lxi"
	"github.com/insitu-lab/insitu/drivers/scpi"
	"github.com/insitu-lab/insitu/drivers/serial"
	"github.com/insitu-lab/insitu/drivers/usbtmc"
	"github.com/insitu-lab/insitu/safety"
)

type probeFlags struct {
	config     string
	sets       []string
	ports      bool
	monitors   bool
	x11Display string
	cameras    bool
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
  insitu probe --monitors                  # the X display's monitors, for an SLM window
  insitu probe --cameras                   # GenICam cameras (builds with Aravis)

or open every device of a run or training config, as a run would, and check
it against the config:

  insitu probe --config configs/bench-smu.yaml

This is the online half of 'insitu config check' (which opens nothing): each
instrument is opened and configured (its identity checked against the
config's idn pattern), the coordinates and outputs the devices report are
compared with the ones the config describes, the safety section is checked
against them, and every device is put in its safe state and closed. Nothing
is queried. It reprograms the instruments, so do not run it against an
instrument another run is using.

With no flag it lists the ports.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.config != "" {
				return probeConfig(cmd.Context(), cmd.OutOrStdout(), f.config, f.sets)
			}
			if f.monitors {
				return probeMonitors(cmd.Context(), cmd.OutOrStdout(), f.x11Display)
			}
			if f.cameras {
				return probeCameras(cmd.Context(), cmd.OutOrStdout(), f.timeout)
			}
			return probe(cmd.Context(), cmd.OutOrStdout(), f)
		},
	}
	fl := c.Flags()
	fl.StringVar(&f.config, "config", "", "open the devices of this run or training config, check them against it, then safe state")
	fl.StringArrayVar(&f.sets, "set", nil, "with --config: override a config key: --set key=value (repeatable)")
	fl.BoolVar(&f.ports, "ports", false, "list serial ports")
	fl.BoolVar(&f.monitors, "monitors", false, "list the X display's monitors (name, geometry, primary) for an SLM's display: {type: x11}")
	fl.StringVar(&f.x11Display, "x11-display", "", "with --monitors: the X display (default $DISPLAY)")
	fl.BoolVar(&f.cameras, "cameras", false, "list GenICam cameras (GigE Vision, USB3 Vision) through Aravis")
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

// probeSections are the parts of a run or training config that probe
// --config reads; the rest is kept aside unchecked.
type probeSections struct {
	BlackBox map[string]any `mapstructure:"blackbox"`
	Safety   safety.Config  `mapstructure:"safety"`
	Rest     map[string]any `mapstructure:",remain"`
}

// probeConfig opens the black box of a config, compares its Spec with the
// one described from the config, checks the safety section against it,
// and leaves every device in its safe state.
func probeConfig(ctx context.Context, out io.Writer, file string, sets []string) error {
	var c probeSections
	if err := loadConfig(file, nil, nil, sets, &c); err != nil {
		return err
	}
	if err := c.Safety.Validate(); err != nil {
		return prefixFile(file, err)
	}
	if k, _ := c.BlackBox["kind"].(string); k == "" {
		return fmt.Errorf("%s: blackbox.kind: missing (known kinds: %v)", file, insitu.Kinds())
	}
	described, err := checkOffline(ctx, file, c.BlackBox, c.Safety, nil)
	if err != nil && !errors.Is(err, insitu.ErrNeedsDevice) {
		return err
	}
	p := params(c.BlackBox, file, "blackbox")
	box, err := insitu.New(ctx, p)
	if err != nil {
		return err
	}
	defer closeBox(box)
	spec := box.Spec()
	guard, gerr := safety.New(box, c.Safety)
	var serr error
	if guard != nil {
		serr = guard.SafeState(context.WithoutCancel(ctx))
	} else if ss, ok := box.(insitu.SafeStater); ok {
		serr = ss.SafeState(context.WithoutCancel(ctx))
	}
	fmt.Fprintf(out, "%s (%s): opened\n", spec.Name, p.Kind)
	fmt.Fprintf(out, "inputs  %d: %s\n", spec.In.Dim(), summarizeNames(spec.In.Names))
	for i := range min(spec.In.Dim(), 8) {
		unit := ""
		if i < len(spec.In.Units) {
			unit = " " + spec.In.Units[i]
		}
		fmt.Fprintf(out, "  %-20s [%g, %g]%s\n", spec.In.Name(i), spec.In.Lower[i], spec.In.Upper[i], unit)
	}
	fmt.Fprintf(out, "outputs %d: %s\n", len(spec.Out), summarizeNames(spec.Out))
	var problems []error
	if described.In.Dim() > 0 && !sameSpec(described, spec) {
		problems = append(problems, fmt.Errorf("%s: the devices report other coordinates or outputs than the config describes (described %d inputs, %d outputs; opened %d, %d)",
			file, described.In.Dim(), len(described.Out), spec.In.Dim(), len(spec.Out)))
	}
	if gerr != nil {
		problems = append(problems, prefixFile(file, gerr))
	}
	if serr != nil {
		problems = append(problems, serr)
	}
	if err := errors.Join(problems...); err != nil {
		return err
	}
	fmt.Fprintln(out, "safety section: valid against the devices; every device is in its safe state")
	return nil
}

func summarizeNames(names []string) string {
	if len(names) <= 6 {
		return strings.Join(names, ", ")
	}
	return strings.Join(names[:3], ", ") + ", …, " + strings.Join(names[len(names)-2:], ", ")
}

// sameSpec compares names, bounds and output names.
func sameSpec(a, b insitu.Spec) bool {
	if a.In.Dim() != b.In.Dim() || !slices.Equal(a.Out, b.Out) {
		return false
	}
	for i := range a.In.Dim() {
		if a.In.Name(i) != b.In.Name(i) || a.In.Lower[i] != b.In.Lower[i] || a.In.Upper[i] != b.In.Upper[i] {
			return false
		}
	}
	return true
}
