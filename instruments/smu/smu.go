// Package smu drives a Keithley 2400-series source-measure unit as a voltage
// source with current compliance: the instrument's own limits are programmed
// and read back before the output is ever enabled, level changes are ramped
// (QCoDeS style: steps of at most Step volts, at least StepDelay apart, from
// the read-back level), and the safe state ramps to 0 V and switches the
// output off into high impedance, the usual safe state of a source on a
// lab bench.
//
// Every reading measures both the voltage at the terminals and the current,
// and carries the 2400's status word. A reading that is not what was asked
// for (the source in compliance, or another StatusLimited bit) is reported,
// not dropped: Measure's third output, compliance, is 1 then, so a rig
// exposes it as <part>/compliance for interlocks and output checks.
//
// Timeouts. Each exchange with the instrument is bounded by one timeout,
// the most specific configured: the SMU's own timeout key, else the
// transport's (transport.lxi.timeout, transport.serial.timeout,
// transport.usbtmc.timeout), else 5 s. It holds even when the caller's
// context has a later deadline (a watchdog's), so a reading that never
// comes fails after the configured time with an error naming the
// instrument, its port and the command, followed by the instrument's error
// queue, read right after the timeout:
//
//	smu 127.0.0.1:5025: :READ?: no reply within 2s; instrument error queue: +803,"Output disabled"
//
// That error (+803: the output was switched off behind the driver, at the
// front panel or by the interlock) also matches ErrOutputOff.
//
// *SMU has the shape of a rig actuator (Coordinates, Apply) and sensor
// (Outputs, Measure), with SafeState and Settle, so instruments/rig can use
// it without this package importing rig.
package smu

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/insitu-lab/insitu"
	"github.com/insitu-lab/insitu/drivers/scpi"
	"github.com/insitu-lab/insitu/drivers/transport"
	"github.com/insitu-lab/insitu/internal/sleep"
)

// DefaultIDN matches a real 2400-series unit. A twin does not match it:
// twin configs set idn to "twin".
const DefaultIDN = `(?i)^KEITHLEY INSTRUMENTS.*,MODEL 24`

// Elements is the :FORM:ELEM list the driver selects: the 2400's full
// five-value reading, so the status word (compliance) comes with every read.
const Elements = "VOLT,CURR,RES,TIME,STAT"

// Bits of the 2400's status word (the STAT element of a reading) that say
// the reading is not what was asked for.
const (
	StatusOverflow        = 1 << 0  // OFLO: the measurement was over range
	StatusCompliance      = 1 << 3  // the source is in (real) compliance
	StatusOVP             = 1 << 4  // the over-voltage protection limit was reached
	StatusRangeCompliance = 1 << 16 // in range compliance: the measure range, not the limit, capped the source
	StatusContactCheck    = 1 << 18 // contact check failed (models with contact check, when enabled)

	// StatusLimited is all of them: a reading with any of these bits set
	// reports compliance.
	StatusLimited = StatusOverflow | StatusCompliance | StatusOVP | StatusRangeCompliance | StatusContactCheck
)

// ErrAborted is returned by a ramp that SafeState interrupted.
var ErrAborted = errors.New("ramp aborted by safe state")

// ErrOutputOff is returned by Measure while the output is off: the 2400
// answers READ? then with error +803 and no reading. The error matches it
// both when the driver knows the output is off and when READ? timed out
// and the instrument's error queue held +803.
var ErrOutputOff = errors.New("output is off")

// Config is the SMU section of a bench config.
type Config struct {
	Name      string           `mapstructure:"name" doc:"the SMU's name in errors (set by the rig to the part's name)"`
	Transport transport.Config `mapstructure:"transport" doc:"how the instrument is reached: serial, lxi (raw SCPI over TCP) or usbtmc"`
	IDN       string           `mapstructure:"idn" doc:"regular expression the *IDN? reply must match; default: a Keithley MODEL 24xx"`
	Reset     bool             `mapstructure:"reset" doc:"send *RST at open (output off, defaults), then every setting"`
	// Range is the source voltage range (SOUR:VOLT:RANG), V; required.
	Range float64 `mapstructure:"range" unit:"V" doc:"source voltage range (SOUR:VOLT:RANG)"`
	// Compliance is the current limit (SENS:CURR:PROT), A; required.
	Compliance float64 `mapstructure:"compliance" unit:"A" doc:"current limit (SENS:CURR:PROT), read back before the output goes on"`
	// Min and Max bound the levels Apply accepts (the software envelope);
	// default ±Range. They must lie within ±Range.
	Min *float64 `mapstructure:"min" unit:"V" doc:"lowest level accepted; default −range"`
	Max *float64 `mapstructure:"max" unit:"V" doc:"highest level accepted; default +range; [min, max] must include 0 V"`
	// Step is the largest change per set, V (QCoDeS step); required.
	Step float64 `mapstructure:"step" unit:"V" doc:"largest change per set: every level change is ramped (QCoDeS step)"`
	// StepDelay is the least time between two sets (QCoDeS inter_delay).
	StepDelay time.Duration `mapstructure:"step_delay" doc:"least time between two sets of a ramp (QCoDeS inter_delay)"`
	// Settle is the wait after Apply before a read-back means anything.
	Settle time.Duration `mapstructure:"settle" doc:"wait after a level change before a reading means anything"`
	// OffMode is the output-off state (OUTP:SMOD): HIMP (default: opens the
	// output relay, the safest for a DUT that must float), NORM, ZERO, GUAR.
	OffMode string `mapstructure:"off_mode" doc:"output-off state (OUTP:SMOD): HIMP (opens the output relay), NORM, ZERO or GUAR"`
	// Timeout bounds each exchange with the instrument. Unset, the
	// transport's timeout applies (transport.lxi.timeout, …), else 5 s;
	// see the package doc.
	Timeout time.Duration `mapstructure:"timeout" doc:"bound on each exchange; unset: the transport's timeout, else 5s"`
}

// Defaults fills unset fields.
func (c *Config) Defaults() {
	if c.Name == "" {
		c.Name = "smu"
	}
	if c.IDN == "" {
		c.IDN = DefaultIDN
	}
	if c.OffMode == "" {
		c.OffMode = "HIMP"
	}
	c.OffMode = strings.ToUpper(c.OffMode)
	if c.Min == nil {
		v := -c.Range
		c.Min = &v
	}
	if c.Max == nil {
		v := c.Range
		c.Max = &v
	}
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// Validate checks a defaulted config. It reports every problem, each an
// *insitu.FieldError at its key (joined), so a rig config names the file
// and line of each.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, insitu.FieldErrorf(key, format, args...))
	}
	if !(c.Range > 0) || !finite(c.Range) || c.Range > 210 {
		bad("range", "%v V: want (0, 210]", c.Range)
	}
	if !(c.Compliance > 0) || !finite(c.Compliance) || c.Compliance > 1.05 {
		bad("compliance", "%v A: want (0, 1.05]", c.Compliance)
	}
	if !(c.Step > 0) || !finite(c.Step) {
		bad("step", "%v V: must be positive (ramped changes are mandatory)", c.Step)
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"step_delay", c.StepDelay}, {"settle", c.Settle}, {"timeout", c.Timeout}} {
		if d.v < 0 {
			bad(d.key, "%v: must not be negative", d.v)
		}
	}
	switch lo, hi := *c.Min, *c.Max; {
	case !finite(lo) || !finite(hi) || lo > hi:
		bad("min", "%v, max %v: want finite min ≤ max", lo, hi)
	case c.Range > 0 && (lo < -c.Range || hi > c.Range):
		key := "max"
		if lo < -c.Range {
			key = "min"
		}
		bad(key, "min %v, max %v: outside the ±%v V range", lo, hi, c.Range)
	case lo > 0 || hi < 0:
		bad("min", "%v, max %v: must include 0 V, the safe level", lo, hi)
	}
	switch c.OffMode {
	case "HIMP", "NORM", "ZERO", "GUAR":
	default:
		bad("off_mode", "%q: want HIMP, NORM, ZERO or GUAR", c.OffMode)
	}
	return errors.Join(errs...)
}

// Reading is one parsed READ? reply.
type Reading struct {
	Voltage, Current float64 // V, A
	Resistance       float64 // Ω; NaN when not measured (SCPI 9.91E37)
	Time             float64 // s, the instrument's timestamp
	Status           uint32  // the 2400's status word
}

// Compliance reports whether the reading is not what was asked for: the
// status word has a StatusLimited bit set (the source in compliance or in
// range compliance, over-voltage protection, an over-range measurement, a
// failed contact check). The other bits (terminals, functions measured,
// filter, math) describe the setup and do not count.
func (r Reading) Compliance() bool { return r.Status&StatusLimited != 0 }

// SMU is an open, configured source-measure unit.
type SMU struct {
	cfg    Config
	client *scpi.Client
	port   string
	id     scpi.IDN

	abort atomic.Bool // set by SafeState so a running ramp stops at its next step

	mu      sync.Mutex // one ramp or read at a time
	level   float64    // last level set (or read back at open)
	on      bool
	lastSet time.Time
}

// Open dials the configured transport and configures the SMU.
func Open(ctx context.Context, cfg Config) (*SMU, error) {
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

// New configures an SMU on an open connection, which it takes over (closing
// it on error). Startup: identity, *CLS, optional *RST, output-off mode,
// voltage source on the configured range, current compliance (read back),
// reading format, error queue empty; then the present level and output
// state are read, so the first ramp starts from where the source really is.
// The output is not switched on here; the first Apply does that.
func New(ctx context.Context, conn scpi.Conn, cfg Config) (*SMU, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		conn.Close()
		return nil, fmt.Errorf("%s: config: %w", cfg.Name, err)
	}
	client, id, port, err := scpi.Start(ctx, conn, cfg.Name, cfg.IDN, cfg.Reset, scpi.WithTimeout(cfg.Timeout))
	if err != nil {
		return nil, err
	}
	s := &SMU{cfg: cfg, port: port, client: client, id: id}
	if err := s.configure(ctx); err != nil {
		s.client.Close()
		return nil, err
	}
	return s, nil
}

func (s *SMU) configure(ctx context.Context) error {
	on, err := s.client.QueryFloat(ctx, ":OUTP?")
	if err != nil {
		return err
	}
	s.on = on != 0
	level, err := s.client.QueryFloat(ctx, ":SOUR:VOLT:LEV?")
	if err != nil {
		return err
	}
	if s.on && math.Abs(level) > s.cfg.Range {
		// A live output above the new range: changing the range would jump it.
		return fmt.Errorf("%s %s: output is on at %v V, outside the configured ±%v V range: switch it off first", s.cfg.Name, s.port, level, s.cfg.Range)
	}
	s.level = level
	cmds := []string{
		":OUTP:SMOD " + s.cfg.OffMode,
		":SOUR:FUNC VOLT",
		":SOUR:VOLT:MODE FIX",
		":SOUR:VOLT:RANG " + fmtFloat(s.cfg.Range),
		// Voltage is measured too: in compliance the source does not reach
		// the programmed level, and an unmeasured voltage element would
		// report the level asked for instead of the one at the terminals.
		":SENS:FUNC:CONC ON",
		`:SENS:FUNC "VOLT","CURR"`,
		":SENS:CURR:PROT " + fmtFloat(s.cfg.Compliance),
		":SENS:CURR:RANG:AUTO ON",
		":FORM:ELEM " + Elements,
	}
	for _, c := range cmds {
		if err := s.client.Write(ctx, c); err != nil {
			return err
		}
	}
	// Limits are read back before any output is enabled, so the compliance
	// in force is the one the instrument accepted.
	comp, err := s.client.QueryFloat(ctx, ":SENS:CURR:PROT?")
	if err != nil {
		return err
	}
	if math.Abs(comp-s.cfg.Compliance) > 1e-9*math.Max(1, s.cfg.Compliance) {
		return fmt.Errorf("%s %s: :SENS:CURR:PROT %v: instrument reports %v A", s.cfg.Name, s.port, s.cfg.Compliance, comp)
	}
	return s.client.CheckErrors(ctx, "configuration")
}

// Identity returns the *IDN? reply read at open.
func (s *SMU) Identity() scpi.IDN { return s.id }

// Identify implements insitu.Identifier: the *IDN? reply read at open.
func (s *SMU) Identify(context.Context) (string, error) { return s.id.String(), nil }

// String names the SMU and its port, as errors do.
func (s *SMU) String() string { return s.cfg.Name + " " + s.port }

// Timeout is the exchange timeout in effect (see the package doc).
func (s *SMU) Timeout() time.Duration { return s.client.Timeout() }

// Level returns the last level set, V.
func (s *SMU) Level() float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.level
}

// OutputOn reports whether the driver last left the output on.
func (s *SMU) OutputOn() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.on
}

// SetVoltage ramps the source to v (inside [Min, Max]) and switches the
// output on if it is off: first the level is ramped to 0 V with the output
// off, then the output goes on at 0 V and ramps up, so the load never sees
// a step larger than Step.
func (s *SMU) SetVoltage(ctx context.Context, v float64) error {
	if !finite(v) || v < *s.cfg.Min || v > *s.cfg.Max {
		return fmt.Errorf("%s %s: level %v V outside [%v, %v]", s.cfg.Name, s.port, v, *s.cfg.Min, *s.cfg.Max)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.on {
		if err := s.ramp(ctx, 0); err != nil {
			return err
		}
		if err := s.client.Write(ctx, ":OUTP ON"); err != nil {
			return err
		}
		s.on = true
	}
	return s.ramp(ctx, v)
}

// ramp moves the level to v in steps of at most Step, at least StepDelay
// apart: full steps, then the remainder. Callers hold mu.
func (s *SMU) ramp(ctx context.Context, v float64) error {
	for s.level != v {
		if s.abort.Load() {
			return fmt.Errorf("%s %s: ramp to %v V at %v V: %w", s.cfg.Name, s.port, v, s.level, ErrAborted)
		}
		next := v
		if d := v - s.level; math.Abs(d) > s.cfg.Step {
			next = s.level + math.Copysign(s.cfg.Step, d)
		}
		if wait := s.cfg.StepDelay - time.Since(s.lastSet); !s.lastSet.IsZero() && wait > 0 {
			if err := sleep.For(ctx, wait); err != nil {
				return fmt.Errorf("%s %s: ramp to %v V at %v V: %w", s.cfg.Name, s.port, v, s.level, err)
			}
		}
		if err := s.client.Write(ctx, ":SOUR:VOLT:LEV "+fmtFloat(next)); err != nil {
			return err
		}
		s.level, s.lastSet = next, time.Now()
	}
	return nil
}

// Read takes one reading (READ?) and parses the five-value reply: the
// voltage at the terminals and the current, both measured.
func (s *SMU) Read(ctx context.Context) (Reading, error) {
	s.mu.Lock()
	on := s.on
	s.mu.Unlock()
	if !on {
		return Reading{}, fmt.Errorf("%s %s: READ?: %w", s.cfg.Name, s.port, ErrOutputOff)
	}
	vals, err := s.client.QueryFloats(ctx, ":READ?")
	if err != nil && !errors.Is(err, scpi.ErrNotANumber) {
		// NaN is expected in the resistance field; overflow is not.
		if outputDisabled(err) {
			err = also{err, ErrOutputOff}
		}
		return Reading{}, err
	}
	return parseReading(vals, s.cfg.Name+" "+s.port)
}

// codeOutputDisabled is the 2400's error for READ? with the output off.
const codeOutputDisabled = 803

// outputDisabled reports whether a failed call's drained error queue says
// the output was off.
func outputDisabled(err error) bool {
	var op *scpi.OpError
	if !errors.As(err, &op) {
		return false
	}
	for _, e := range op.Queue {
		if e.Code == codeOutputDisabled {
			return true
		}
	}
	return false
}

// also is err, which also matches is (errors.Is) without changing its
// message.
type also struct{ err, is error }

func (e also) Error() string   { return e.err.Error() }
func (e also) Unwrap() []error { return []error{e.err, e.is} }

func parseReading(vals []float64, who string) (Reading, error) {
	if len(vals) != 5 {
		return Reading{}, fmt.Errorf("%s: :READ?: %d values, want 5 (%s)", who, len(vals), Elements)
	}
	r := Reading{Voltage: vals[0], Current: vals[1], Resistance: vals[2], Time: vals[3]}
	if !finite(r.Voltage) || !finite(r.Current) {
		return r, fmt.Errorf("%s: :READ?: voltage %v, current %v: %w", who, r.Voltage, r.Current, scpi.ErrNotANumber)
	}
	if vals[4] < 0 || vals[4] >= 1<<32 || vals[4] != math.Trunc(vals[4]) {
		return r, fmt.Errorf("%s: :READ?: status word %v: %w", who, vals[4], scpi.ErrSyntax)
	}
	r.Status = uint32(vals[4])
	return r, nil
}

// Coordinates is the one input: the source level (rig Actuator).
func (s *SMU) Coordinates() insitu.Space {
	return insitu.Space{Names: []string{"voltage"}, Units: []string{"V"}, Lower: []float64{*s.cfg.Min}, Upper: []float64{*s.cfg.Max}}
}

// Apply sets the level to x[0] (rig Actuator).
func (s *SMU) Apply(ctx context.Context, x []float64) error {
	if len(x) != 1 {
		return fmt.Errorf("%s %s: apply: %d values, want 1", s.cfg.Name, s.port, len(x))
	}
	return s.SetVoltage(ctx, x[0])
}

// Settle is the configured wait after Apply (rig Settler).
func (s *SMU) Settle() time.Duration { return s.cfg.Settle }

// OutputNames names the SMU's measured outputs, in the order Measure
// returns them: the read-back voltage (V), the current (A), and compliance,
// 1 when the instrument reported the reading is not what was asked for (the
// source in compliance, a measurement out of range), else 0.
func OutputNames() []string { return []string{"voltage", "current", "compliance"} }

// OutputUnits are the units of OutputNames: volts, amperes, and none for
// the compliance flag (1 when the reading hit the compliance limit).
func OutputUnits() []string { return []string{"V", "A", ""} }

// Outputs names the read-back values (rig Sensor): OutputNames.
func (s *SMU) Outputs() []string { return OutputNames() }

// OutputUnits implements the rig's SensorUnits: OutputUnits.
func (s *SMU) OutputUnits() []string { return OutputUnits() }

// Measure reads back voltage, current and the compliance flag (rig Sensor),
// in the order of OutputNames.
func (s *SMU) Measure(ctx context.Context) ([]float64, error) {
	r, err := s.Read(ctx)
	if err != nil {
		return nil, err
	}
	c := 0.0
	if r.Compliance() {
		c = 1
	}
	return []float64{r.Voltage, r.Current, c}, nil
}

// SafeState ramps the level to 0 V and switches the output off (into
// OffMode, HIMP by default). A ramp in progress is interrupted at its next
// step. If the ramp fails, the output is switched off anyway: an abrupt
// off is safer than a source left on. It is idempotent.
func (s *SMU) SafeState(ctx context.Context) error {
	s.abort.Store(true)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.abort.Store(false)
	rampErr := s.ramp(ctx, 0)
	octx := ctx
	if ctx.Err() != nil {
		// The output must go off even when the caller's time is up: two
		// exchanges, OUTP OFF and *OPC?.
		var cancel context.CancelFunc
		octx, cancel = context.WithTimeout(context.WithoutCancel(ctx), 2*s.client.Timeout())
		defer cancel()
	}
	offErr := s.client.Write(octx, ":OUTP OFF")
	if offErr == nil {
		s.on = false
		// *OPC? confirms the instrument has processed the switch-off.
		offErr = s.client.OPC(octx)
	}
	return errors.Join(rampErr, offErr)
}

// Errors drains the SMU's error queue.
func (s *SMU) Errors(ctx context.Context) ([]scpi.DeviceError, error) {
	return s.client.Errors(ctx)
}

// Close closes the transport. It does not switch the output off: the
// safe state is the guard's decision.
func (s *SMU) Close() error { return s.client.Close() }

func fmtFloat(v float64) string {
	return strings.ToUpper(strconv.FormatFloat(v, 'g', -1, 64))
}
