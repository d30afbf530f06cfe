// Package powermeter drives a Thorlabs PM100 optical power meter (PM100D,
// PM100USB, PM100A and relatives) over SCPI: the calibration wavelength,
// averaging, auto-ranging and power reads.
//
// Commands are sent in their long forms: a public driver found the
// abbreviated forms unreliable on a PM101. Every error names the instrument, its port and the command.
//
// Each exchange with the meter is bounded by the most specific configured
// timeout: the meter's own timeout key, else the transport's, else 5 s,
// even under a caller's later deadline. A timeout error ends with the
// meter's error queue, read right after it (see drivers/scpi).
//
// A power meter is a sensor only: its safe state is to do nothing, and
// SafeState is a documented no-op so that a rig can treat every part alike.
//
// *PM100 has the shape of a rig sensor (Outputs, Measure, SafeState), so
// instruments/rig can use it directly without this package importing rig.
package powermeter

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/insitu-lab/insitu"
	"github.com/insitu-lab/insitu/drivers/scpi"
	"github.com/insitu-lab/insitu/drivers/transport"
)

// DefaultIDN is the identity a real PM100-family meter answers with
// (manufacturer "Thorlabs", model PM100D, PM100USB, PM101, …). A twin does
// not match it: twin configs set idn to "twin".
const DefaultIDN = `(?i)^thorlabs,PM10`

// Config is the power meter section of a bench config.
type Config struct {
	Name      string           `mapstructure:"name" doc:"the meter's name in errors (set by the rig to the part's name)"`
	Transport transport.Config `mapstructure:"transport" doc:"how the instrument is reached: serial, lxi (raw SCPI over TCP) or usbtmc"`
	// IDN is a regular expression *IDN? must match; default DefaultIDN.
	IDN string `mapstructure:"idn" doc:"regular expression the *IDN? reply must match; default: a Thorlabs PM10x"`
	// Wavelength is the calibration wavelength in nm. It is required:
	// a silicon head read at the wrong wavelength is off by tens of percent.
	Wavelength float64 `mapstructure:"wavelength" unit:"nm" doc:"calibration wavelength (SENS:CORR:WAV); 0: leave the meter's"`
	// Average is the number of internal samples per reading (SENS:AVER:COUN);
	// each takes about 3 ms on a PM100D. Default 1.
	Average int `mapstructure:"average" doc:"internal samples per reading (SENS:AVER:COUN)"`
	// Range is a fixed upper range in W; 0 selects auto-ranging.
	Range float64 `mapstructure:"range" unit:"W" doc:"fixed upper range; 0: auto-ranging"`
	// Read is how a reading is taken: "measure" (MEAS:POW?, default: one
	// command, configures and reads) or "read" (CONF:POW once, then READ?).
	Read string `mapstructure:"read" doc:"measure (MEAS:POW?, one command) or read (CONF:POW once, then READ?)"`
	// Reset sends *RST at open. Off by default: startup reads the state
	// rather than assuming it, and *RST also resets the head's settings.
	Reset bool `mapstructure:"reset" doc:"send *RST at open"`
	// Timeout bounds each exchange with the meter. Unset, the transport's
	// timeout applies (transport.usbtmc.timeout, …), else 5 s: the most
	// specific configured timeout wins.
	Timeout time.Duration `mapstructure:"timeout" doc:"bound on each exchange; unset: the transport's timeout, else 5s"`
}

// Defaults fills unset fields.
func (c *Config) Defaults() {
	if c.Name == "" {
		c.Name = "powermeter"
	}
	if c.IDN == "" {
		c.IDN = DefaultIDN
	}
	if c.Average == 0 {
		c.Average = 1
	}
	if c.Read == "" {
		c.Read = "measure"
	}
}

// Validate checks a defaulted config. It reports every problem, each an
// *insitu.FieldError at its key (joined), so a rig config names the file
// and line of each.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, insitu.FieldErrorf(key, format, args...))
	}
	if !(c.Wavelength > 0) || math.IsInf(c.Wavelength, 0) {
		bad("wavelength", "%v nm: must be positive (always set the calibration wavelength)", c.Wavelength)
	}
	if c.Average < 1 {
		bad("average", "%d: must be at least 1", c.Average)
	}
	if c.Range < 0 || math.IsNaN(c.Range) || math.IsInf(c.Range, 0) {
		bad("range", "%v W: must be positive, or 0 for auto-range", c.Range)
	}
	if c.Read != "measure" && c.Read != "read" {
		bad("read", "%q: want measure or read", c.Read)
	}
	if c.Timeout < 0 {
		bad("timeout", "%v: must not be negative", c.Timeout)
	}
	return errors.Join(errs...)
}

// PM100 is an open, configured power meter. Its methods are safe for
// concurrent use (the SCPI client serializes calls).
type PM100 struct {
	cfg    Config
	client *scpi.Client
	port   string
	id     scpi.IDN

	mu         sync.Mutex
	wavelength float64
}

// Open dials the configured transport and configures the meter.
func Open(ctx context.Context, cfg Config) (*PM100, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%s: config: %w", cfg.Name, err)
	}
	c, err := transport.Dial(ctx, cfg.Transport)
	if err != nil {
		return nil, fmt.Errorf("%s: open %s transport: %w", cfg.Name, cfg.Transport.Type, err)
	}
	return New(ctx, c, cfg)
}

// New configures a meter on an open connection, which it takes over (also on
// error: it is closed then). conn's String, when it has one, names the port
// in errors. Startup order: identity, clear status, optional reset,
// wavelength, unit, averaging, range, then the error queue must be empty.
func New(ctx context.Context, conn scpi.Conn, cfg Config) (*PM100, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		conn.Close()
		return nil, fmt.Errorf("%s: config: %w", cfg.Name, err)
	}
	client, id, port, err := scpi.Start(ctx, conn, cfg.Name, cfg.IDN, cfg.Reset, scpi.WithTimeout(cfg.Timeout))
	if err != nil {
		return nil, err
	}
	pm := &PM100{cfg: cfg, port: port, client: client, id: id}
	if err := pm.configure(ctx); err != nil {
		pm.client.Close()
		return nil, err
	}
	return pm, nil
}

func (pm *PM100) configure(ctx context.Context) error {
	if err := pm.SetWavelength(ctx, pm.cfg.Wavelength); err != nil {
		return err
	}
	if err := pm.client.Write(ctx, "SENSE:POWER:DC:UNIT W"); err != nil {
		return err
	}
	if err := pm.SetAverage(ctx, pm.cfg.Average); err != nil {
		return err
	}
	var err error
	if pm.cfg.Range == 0 {
		err = pm.SetAutoRange(ctx, true)
	} else {
		err = pm.client.Write(ctx, "SENSE:POWER:DC:RANGE:UPPER "+fmtFloat(pm.cfg.Range))
	}
	if err != nil {
		return err
	}
	if pm.cfg.Read == "read" {
		if err := pm.client.Write(ctx, "CONFIGURE:POWER"); err != nil {
			return err
		}
	}
	return pm.client.CheckErrors(ctx, "configuration")
}

// Identity returns the *IDN? reply read at open.
func (pm *PM100) Identity() scpi.IDN { return pm.id }

// Identify implements insitu.Identifier: the *IDN? reply read at open.
func (pm *PM100) Identify(context.Context) (string, error) { return pm.id.String(), nil }

// String names the meter and its port, as errors do.
func (pm *PM100) String() string { return pm.cfg.Name + " " + pm.port }

// SetWavelength sets the calibration wavelength in nm and reads it back:
// the head clamps a wavelength outside its range rather than refusing it.
func (pm *PM100) SetWavelength(ctx context.Context, nm float64) error {
	cmd := "SENSE:CORRECTION:WAVELENGTH " + fmtFloat(nm)
	if err := pm.client.Write(ctx, cmd); err != nil {
		return err
	}
	got, err := pm.client.QueryFloat(ctx, "SENSE:CORRECTION:WAVELENGTH?")
	if err != nil {
		return err
	}
	if math.Abs(got-nm) > 1e-6*math.Max(1, nm) {
		return fmt.Errorf("%s %s: %s: meter reports %v nm (outside the head's range?)", pm.cfg.Name, pm.port, cmd, got)
	}
	pm.mu.Lock()
	pm.wavelength = got
	pm.mu.Unlock()
	return nil
}

// Wavelength returns the calibration wavelength last read back, in nm.
func (pm *PM100) Wavelength() float64 {
	pm.mu.Lock()
	defer pm.mu.Unlock()
	return pm.wavelength
}

// SetAverage sets the number of samples averaged per reading.
func (pm *PM100) SetAverage(ctx context.Context, n int) error {
	if n < 1 {
		return fmt.Errorf("%s %s: average %d: must be at least 1", pm.cfg.Name, pm.port, n)
	}
	return pm.client.Write(ctx, "SENSE:AVERAGE:COUNT "+strconv.Itoa(n))
}

// SetAutoRange turns auto-ranging on or off.
func (pm *PM100) SetAutoRange(ctx context.Context, on bool) error {
	v := "OFF"
	if on {
		v = "ON"
	}
	return pm.client.Write(ctx, "SENSE:POWER:DC:RANGE:AUTO "+v)
}

// Power takes one reading in watts. An over-range reading (SCPI 9.9E37)
// is an error wrapping scpi.ErrOverflow.
func (pm *PM100) Power(ctx context.Context) (float64, error) {
	cmd := "MEASURE:POWER?"
	if pm.cfg.Read == "read" {
		cmd = "READ?"
	}
	return pm.client.QueryFloat(ctx, cmd)
}

// Outputs names the sensor's one output (rig Sensor).
func (pm *PM100) Outputs() []string { return []string{"power"} }

// OutputUnits implements the rig's SensorUnits: the power is in watts.
func (pm *PM100) OutputUnits() []string { return []string{"W"} }

// Measure returns the power in watts (rig Sensor).
func (pm *PM100) Measure(ctx context.Context) ([]float64, error) {
	p, err := pm.Power(ctx)
	if err != nil {
		return nil, err
	}
	return []float64{p}, nil
}

// SafeState does nothing: a power meter emits nothing and holds no state
// that could harm the bench. It exists so that a rig treats every part alike.
func (pm *PM100) SafeState(context.Context) error { return nil }

// Errors drains the meter's error queue.
func (pm *PM100) Errors(ctx context.Context) ([]scpi.DeviceError, error) {
	return pm.client.Errors(ctx)
}

// Close closes the transport.
func (pm *PM100) Close() error { return pm.client.Close() }

// fmtFloat formats a number the way SCPI parsers accept: no exponent
// surprises, shortest exact form.
func fmtFloat(v float64) string {
	return strings.ToUpper(strconv.FormatFloat(v, 'g', -1, 64))
}
