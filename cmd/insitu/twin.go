package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/insitu-lab/insitu/drivers/fbdev"
	"github.com/insitu-lab/insitu/drivers/scpi/emulator"
	"github.com/insitu-lab/insitu/simulators/bench"
	"github.com/insitu-lab/insitu/simulators/optics"
)

func newTwinCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "twin",
		Short: "Serve twin instruments over real transports",
	}
	c.AddCommand(newTwinServeCmd())
	return c
}

type twinServeFlags struct {
	tcp         string
	pty         bool
	fb          string
	fbSize      string
	fbBits      int
	detX, detY  float64
	detRadius   float64
	power       float64
	noise       float64
	latency     time.Duration
	drop        float64
	garble      float64
	errRate     float64
	hangUpAfter int
	seed        uint64
}

func newTwinServeCmd() *cobra.Command {
	var f twinServeFlags
	c := &cobra.Command{
		Use:   "serve KIND",
		Short: "Serve a twin instrument (smu, powermeter) on loopback TCP or a pseudo-terminal until Ctrl-C",
		Long: fmt.Sprintf(`Serve a twin instrument over a real transport, so that the real drivers can
be dry-run against it:

  smu         a Keithley 2400 driving a 1 kΩ ∥ diode load
  powermeter  a Thorlabs PM100 reading the optical power the OWMS twin puts on
              a detector disc, under the SLM image on the framebuffer file --fb
              (gray g shown means phase 2π·g/256, instruments/slm's default LUT;
              the SLM part must use n: 60 and the default, centred origin)
  daq         not served: the DAC/ADC twin is an in-process emulated I²C bus
              (drivers/i2c/i2cemu); name its bus in the rig config instead

The first line on stdout is the address (--tcp, with the port actually bound
when :0 asked for any free one) or the pseudo-terminal's path (--pty) to
point the driver at. Twins bind loopback only and say "twin" in *IDN?, so a
config written for real hardware refuses them.

A twin's memory and connections are bounded whatever its clients send: a
line longer than %d KiB is answered with -363 "Input buffer overrun" and the
connection closed (on a pseudo-terminal the line is dropped), the command log
keeps the last %d KiB, at most %d TCP connections are served at once, and
running out of file descriptors pauses accepting instead of ending the twin.
What is refused or retried is reported on stderr.`, emulator.MaxLine>>10, emulator.MaxLogBytes>>10, emulator.MaxConns),
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return serveTwin(cmd, args[0], f)
		},
	}
	fl := c.Flags()
	fl.StringVar(&f.tcp, "tcp", "", "serve on this loopback address (default 127.0.0.1:5025, the LXI port); a port alone is on 127.0.0.1, :0 for any free port")
	fl.BoolVar(&f.pty, "pty", false, "serve on a new pseudo-terminal instead of TCP")
	fl.StringVar(&f.fb, "fb", "", "powermeter: framebuffer file the SLM draws into (created blank if missing)")
	fl.StringVar(&f.fbSize, "fb-size", "", "powermeter: framebuffer size WxH (default the OWMS pattern, 60x60)")
	fl.IntVar(&f.fbBits, "fb-bits", 32, "powermeter: framebuffer bits per pixel (8, 16, 24, 32)")
	fl.Float64Var(&f.detX, "detector-x", 140e-6, "powermeter: detector centre x in the output plane, m (default: the OWMS target's right spot)")
	fl.Float64Var(&f.detY, "detector-y", 0, "powermeter: detector centre y, m")
	fl.Float64Var(&f.detRadius, "detector-radius", 70e-6, "powermeter: detector radius, m (0: the whole output grid)")
	fl.Float64Var(&f.power, "power", 1e-3, "powermeter: laser power into the SLM, W")
	fl.Float64Var(&f.noise, "noise", 1e-3, "twin measurement noise: powermeter relative std per sample; smu current std in A is 1e-9 × noise/1e-3")
	fl.DurationVar(&f.latency, "latency", 0, "fault: delay before each reply")
	fl.Float64Var(&f.drop, "drop", 0, "fault: probability a reply is never sent")
	fl.Float64Var(&f.garble, "garble", 0, "fault: probability a reply is garbled")
	fl.Float64Var(&f.errRate, "errors", 0, "fault: probability a command also queues a −300 device error")
	fl.IntVar(&f.hangUpAfter, "hangup-after", 0, "fault: close each connection after this many lines (0: never)")
	fl.Uint64Var(&f.seed, "seed", 1, "seed of the noise and of the faults")
	return c
}

func serveTwin(cmd *cobra.Command, kind string, f twinServeFlags) error {
	ctx := cmd.Context()
	if f.pty && f.tcp != "" {
		return errors.New("twin serve: give --tcp or --pty, not both")
	}
	for _, p := range []struct {
		name string
		v    float64
	}{{"drop", f.drop}, {"garble", f.garble}, {"errors", f.errRate}} {
		if p.v < 0 || p.v > 1 {
			return fmt.Errorf("twin serve: --%s %v: a probability in [0, 1]", p.name, p.v)
		}
	}
	if f.latency < 0 || f.hangUpAfter < 0 || f.noise < 0 {
		return errors.New("twin serve: --latency, --hangup-after and --noise must not be negative")
	}
	out, errOut := cmd.OutOrStdout(), cmd.ErrOrStderr()
	var logMu sync.Mutex // connections log from their own goroutines
	opts := []emulator.Option{
		emulator.WithFaults(emulator.Faults{
			Latency: f.latency, DropRate: f.drop, GarbleRate: f.garble, ErrorRate: f.errRate,
			HangUpAfter: f.hangUpAfter, Seed: f.seed,
		}),
		emulator.WithLogf(func(format string, args ...any) {
			logMu.Lock()
			defer logMu.Unlock()
			fmt.Fprintf(errOut, "insitu: %s twin: "+format+"\n", append([]any{kind}, args...)...)
		}),
	}
	var in *emulator.Instrument
	var what string
	switch kind {
	case "smu":
		cfg := bench.SMUConfig{Seed: f.seed, Noise: 1e-9 * f.noise / 1e-3, NoNoise: f.noise == 0}
		s, err := bench.NewSMU(cfg, opts...)
		if err != nil {
			return err
		}
		in, what = s.Instrument(), bench.SMUIDN
	case "powermeter":
		pm, err := newPowerMeterTwin(f, opts...)
		if err != nil {
			return err
		}
		in, what = pm.Instrument(), bench.PowerMeterIDN
		if f.fb != "" {
			what += ", reading " + f.fb
		}
	case "daq":
		return errors.New("twin serve daq: the DAC/ADC twin is an in-process emulated I²C bus (drivers/i2c/i2cemu, registered with periph's i2creg), not served over a transport: name its bus in the rig config's daq part")
	default:
		return fmt.Errorf("twin serve: unknown kind %q (want smu or powermeter)", kind)
	}
	var err error
	if f.pty {
		err = bench.ServePTY(ctx, in, func(path string) {
			fmt.Fprintln(out, path)
			fmt.Fprintf(errOut, "insitu: %s twin (%s) on pseudo-terminal %s; Ctrl-C to stop\n", kind, what, path)
		})
	} else {
		ln, lerr := emulator.Listen(tcpAddr(f.tcp))
		if lerr != nil {
			return fmt.Errorf("twin serve %s: %w", kind, lerr)
		}
		fmt.Fprintln(out, ln.Addr())
		fmt.Fprintf(errOut, "insitu: %s twin (%s) on tcp %s; Ctrl-C to stop\n", kind, what, ln.Addr())
		err = in.ServeTCP(ctx, ln)
	}
	// What the twin was sent, so a dry run shows whether (and what) a
	// command talked to the instrument: the count always, the commands
	// with --verbose.
	cmds := in.Commands()
	fmt.Fprintf(errOut, "insitu: %s twin: stopped; %d commands kept in its log (%d dropped)\n", kind, len(cmds), in.Stats().LogDropped)
	if slog.Default().Enabled(ctx, slog.LevelDebug) {
		for _, c := range cmds {
			fmt.Fprintf(errOut, "  %s\n", c)
		}
	}
	if ctx.Err() != nil {
		return nil // Ctrl-C is how a twin is stopped
	}
	return err
}

// tcpAddr is the address --tcp asks for: the LXI port on loopback by
// default, and loopback for a port alone (":0"), which net.Listen would
// otherwise bind on every interface.
func tcpAddr(flag string) string {
	if flag == "" {
		return "127.0.0.1:5025"
	}
	if host, port, err := net.SplitHostPort(flag); err == nil && host == "" {
		return net.JoinHostPort("127.0.0.1", port)
	}
	return flag
}

func newPowerMeterTwin(f twinServeFlags, opts ...emulator.Option) (*bench.PowerMeter, error) {
	ocfg := optics.DefaultConfig()
	cfg := bench.PowerMeterConfig{
		Optics:     ocfg,
		Detector:   bench.Detector{X: f.detX, Y: f.detY, Radius: f.detRadius},
		InputPower: f.power,
		Noise:      f.noise,
		Seed:       f.seed,
	}
	if f.fb == "" {
		if f.fbSize != "" {
			return nil, errors.New("twin serve powermeter: --fb-size needs --fb")
		}
		return bench.NewPowerMeter(cfg, opts...)
	}
	w, h := ocfg.N, ocfg.N
	if f.fbSize != "" {
		ws, hs, ok := strings.Cut(strings.ToLower(f.fbSize), "x")
		var err1, err2 error
		w, err1 = strconv.Atoi(ws)
		h, err2 = strconv.Atoi(hs)
		if !ok || err1 != nil || err2 != nil {
			return nil, fmt.Errorf("twin serve powermeter: --fb-size %q: want WxH, e.g. 1920x1080", f.fbSize)
		}
	}
	format := fbdev.Format(f.fbBits)
	g := fbdev.Geometry{Width: w, Height: h, Format: format, Stride: w * format.BytesPerPixel()}
	if err := g.Validate(); err != nil {
		return nil, fmt.Errorf("twin serve powermeter: --fb-size/--fb-bits: %w", err)
	}
	if err := ensureFile(f.fb, int64(g.Size())); err != nil {
		return nil, fmt.Errorf("twin serve powermeter: --fb: %w", err)
	}
	cfg.FB = bench.Framebuffer{Path: f.fb, Geometry: g}
	return bench.NewPowerMeter(cfg, opts...)
}

// ensureFile creates a blank framebuffer file of size bytes, or checks that
// an existing one is large enough (the SLM side may have created it).
func ensureFile(path string, size int64) error {
	st, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		fh, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o644)
		if err != nil {
			return err
		}
		if err := fh.Truncate(size); err != nil {
			fh.Close()
			return err
		}
		return fh.Close()
	}
	if err != nil {
		return err
	}
	if st.Size() < size {
		return fmt.Errorf("%s holds %d bytes, the geometry needs %d", path, st.Size(), size)
	}
	return nil
}
