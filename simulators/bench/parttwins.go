package bench

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"strings"
	"sync"
	"time"

	"periph.io/x/conn/v3/physic"

	"github.com/insitu-lab/insitu"
	"github.com/insitu-lab/insitu/drivers/i2c/i2cemu"
	"github.com/insitu-lab/insitu/drivers/lxi"
	"github.com/insitu-lab/insitu/drivers/scpi/emulator"
	"github.com/insitu-lab/insitu/drivers/transport"
	"github.com/insitu-lab/insitu/instruments/camera"
	"github.com/insitu-lab/insitu/instruments/daq"
	"github.com/insitu-lab/insitu/instruments/powermeter"
	"github.com/insitu-lab/insitu/instruments/rig"
	"github.com/insitu-lab/insitu/instruments/slm"
	"github.com/insitu-lab/insitu/instruments/smu"
	"github.com/insitu-lab/insitu/simulators/optics"
)

// The part twins of a rig in twin mode (`twin: true`, `insitu run
// --dry-run`), registered by init with rig.RegisterPartTwin. Each is the
// part's real driver on a twin of its device, built from the part's
// hardware config:
//
//   - smu: the instruments/smu driver talking SCPI over loopback TCP to an
//     SMU twin (TwinSMU) this process serves for the part's life;
//   - powermeter: the instruments/powermeter driver, likewise, to a PM100
//     twin reading the power the OWMS twin puts on the detector
//     (TwinDetector) under the pattern the rig's SLM part shows;
//   - daq: the instruments/daq driver (MCP4728, ADS1115) on a fresh
//     emulated I²C bus at the configured addresses, wired through the
//     analog PNN layer (PNNResponse);
//   - the twin scene rig.TwinFrameSource, which twin cameras show: the
//     OWMS twin's image under the SLM part's pattern (OWMSFrames).
//
// A configured identity pattern that refuses the twin (every hardware
// config's) is replaced by the twin's exact identity, and the bill says
// so. Settle times and a ramp's step delays are reported to the rig, not
// waited.

// TwinSMU is the load and noise of the SMU part twin: those of `insitu
// twin serve smu` by default (1 kΩ ∥ diode, 1 nA current noise, seed 1).
var TwinSMU = SMUConfig{Seed: 1}

// TwinPowerMeter is the power-meter part twin's light and detector: those
// of `insitu twin serve powermeter` by default (1 mW into the SLM, a
// 70 µm detector disc at +140 µm, 0.1 % noise per sample, seed 1).
var TwinPowerMeter = PowerMeterConfig{
	Detector:   Detector{X: 140e-6, Radius: 70e-6},
	InputPower: 1e-3,
	Noise:      1e-3,
	Seed:       1,
}

// PM100Sample is a PM100's time per averaged sample, for the bill.
const PM100Sample = 3 * time.Millisecond

func init() {
	rig.RegisterFrameSource(rig.TwinFrameSource, func(built map[string]rig.Part, w, h int) (camera.FrameFunc, error) {
		return OWMSFrames(built, w, h, false)
	})
	rig.RegisterPartTwin("smu", smuTwin)
	rig.RegisterPartTwin("powermeter", powerMeterTwin)
	rig.RegisterPartTwin("daq", daqTwin)
}

// served is an emulated instrument served on a loopback port this process
// owns, until stop.
type served struct {
	addr string
	stop func()
}

func serve(ctx context.Context, in *emulator.Instrument) (served, error) {
	ln, err := emulator.Listen("127.0.0.1:0")
	if err != nil {
		return served{}, err
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = in.ServeTCP(sctx, ln)
	}()
	var once sync.Once
	return served{addr: ln.Addr().String(), stop: func() { once.Do(func() { cancel(); <-done }) }}, nil
}

// exchangeTimeout is the exchange timeout a SCPI instrument's config sets:
// its own, else its transport's (0: the driver's default).
func exchangeTimeout(own time.Duration, t transport.Config) time.Duration {
	if own > 0 {
		return own
	}
	switch t.Type {
	case "serial":
		return t.Serial.Timeout
	case "lxi":
		return t.LXI.Timeout
	case "usbtmc":
		return t.USBTMC.Timeout
	}
	return 0
}

// where names a transport's device or address.
func where(t transport.Config) string {
	switch t.Type {
	case "serial":
		if t.Serial.Port != "" {
			return "serial " + t.Serial.Port
		}
		return "serial (by USB id)"
	case "lxi":
		return "lxi " + t.LXI.Address
	case "usbtmc":
		return "usbtmc " + t.USBTMC.Path
	}
	return t.Type
}

// twinIdentity returns the identity pattern to check the twin against and
// a note when the configured one (which would refuse the twin) is replaced.
func twinIdentity(pattern, idn string) (string, []string, error) {
	re, err := regexp.Compile(pattern)
	if err != nil {
		return "", nil, fmt.Errorf("idn %q: %w", pattern, err)
	}
	if re.MatchString(idn) {
		return pattern, nil, nil
	}
	exact := "^" + regexp.QuoteMeta(idn) + "$"
	return exact, []string{fmt.Sprintf("identity check: the configured pattern %q refuses the twin (%q); *IDN? is checked against %q instead", pattern, idn, exact)}, nil
}

// smuPart is the SMU driver on the twin: Apply counts the level sets of
// each ramp, between which the bench would wait the configured step_delay.
type smuPart struct {
	*smu.SMU
	tw        *SMU
	srv       served
	step      float64 // V per level set
	stepDelay time.Duration

	mu   sync.Mutex
	busy time.Duration
}

// Apply sets the level with the driver and accounts the step delays
// between the level sets of its ramp (counted as the driver steps: the
// twin may not have read the last set yet when Apply returns).
func (p *smuPart) Apply(ctx context.Context, x []float64) error {
	from, on := p.Level(), p.OutputOn()
	err := p.SMU.Apply(ctx, x)
	to := p.Level()
	n := rampSteps(from, to, p.step)
	if !on && p.OutputOn() {
		n = rampSteps(from, 0, p.step) + rampSteps(0, to, p.step)
	}
	if n > 1 {
		p.mu.Lock()
		p.busy += time.Duration(n-1) * p.stepDelay
		p.mu.Unlock()
	}
	return err
}

func (p *smuPart) busyTime() time.Duration { p.mu.Lock(); defer p.mu.Unlock(); return p.busy }

// Close closes the driver's connection and stops serving the twin.
func (p *smuPart) Close() error {
	err := p.SMU.Close()
	p.srv.stop()
	return err
}

// rampSteps is how many level sets the driver's ramp from v to w takes,
// with the driver's arithmetic: full steps, then the remainder.
func rampSteps(v, w, step float64) int {
	n := 0
	for v != w && n < 1<<20 {
		next := w
		if d := w - v; math.Abs(d) > step {
			next = v + math.Copysign(step, d)
		}
		v = next
		n++
	}
	return n
}

// safeState says what the driver's safe state does from here.
func (p *smuPart) safeState(offMode string) string {
	v, on := p.Level(), p.OutputOn()
	ramp := "at 0 V"
	if n := rampSteps(v, 0, p.step); n > 0 {
		ramp = fmt.Sprintf("ramp %.4g V → 0 V in %d steps of ≤ %g V", v, n, p.step)
		if p.stepDelay > 0 {
			ramp += fmt.Sprintf(" at least %v apart", p.stepDelay)
		}
	}
	out := "output on"
	if !on {
		out = "output already off"
	}
	return fmt.Sprintf("%s (%s), then OUTP OFF into %s and *OPC?", ramp, out, offMode)
}

// smuTwin is the SMU part's twin: its own driver over loopback TCP to an
// SMU twin (TwinSMU) served for the part's life.
func smuTwin(ctx context.Context, p insitu.Params, _ map[string]rig.Part) (rig.Part, rig.TwinInfo, error) {
	c, err := rig.DecodeChecked[smu.Config](p)
	if err != nil {
		return nil, rig.TwinInfo{}, err
	}
	idn, notes, err := twinIdentity(c.IDN, SMUIDN)
	if err != nil {
		return nil, rig.TwinInfo{}, err
	}
	tw, err := NewSMU(TwinSMU)
	if err != nil {
		return nil, rig.TwinInfo{}, err
	}
	srv, err := serve(ctx, tw.Instrument())
	if err != nil {
		return nil, rig.TwinInfo{}, err
	}
	hw := c.Transport
	settle, stepDelay := c.Settle, c.StepDelay
	c.IDN, c.Settle, c.StepDelay = idn, 0, 0
	c.Timeout = exchangeTimeout(c.Timeout, hw)
	c.Transport = transport.Config{Type: "lxi", LXI: lxi.Config{Address: srv.addr, Timeout: c.Timeout}}
	s, err := smu.Open(ctx, c)
	if err != nil {
		srv.stop()
		return nil, rig.TwinInfo{}, err
	}
	part := &smuPart{SMU: s, tw: tw, srv: srv, step: c.Step, stepDelay: stepDelay}
	notes = append([]string{fmt.Sprintf("transport %s replaced by loopback TCP %s to the twin, served by this process", where(hw), srv.addr)}, notes...)
	return part, rig.TwinInfo{
		Device:    fmt.Sprintf("SMU driver over TCP %s to the SMU twin (Keithley 2400 command set; %g Ω ∥ diode load)", srv.addr, tw.cfg.Resistance),
		Notes:     notes,
		Settle:    settle,
		Busy:      part.busyTime,
		SafeState: func() string { return part.safeState(c.OffMode) },
		Counts: func() map[string]int {
			return map[string]int{"level sets": tw.LevelSets(), "readings": tw.Readings()}
		},
	}, nil
}

// MemoryPattern returns a function reading the N×N phase pattern an SLM
// part shows on its memory display, through the SLM's own LUT inverted
// (GrayPhases), as OWMSFrames reads it. A panel with a liquid-crystal
// response (slm.Memory.SetResponse) is read where its levels have got to
// on its clock, a fractional level taking the phase between its two
// neighbours'.
func MemoryPattern(s rig.SLM) (func() []float64, error) {
	phaseOf, err := GrayPhases(s.SLM)
	if err != nil {
		return nil, err
	}
	return panelPattern(s, phaseOf)
}

// panelPattern reads the pattern of s's memory display through phaseOf.
func panelPattern(s rig.SLM, phaseOf [256]float64) (func() []float64, error) {
	mem, ok := s.Display().(*slm.Memory)
	if !ok {
		return nil, fmt.Errorf("%v needs a memory display (display: {type: memory, ...})", s)
	}
	n := s.Side() // display pixels: a macro-pixel is a block of them
	dw, dh := mem.Size()
	x0, y0 := s.Origin()
	levels := make([]float64, dw*dh)
	var mu sync.Mutex
	return func() []float64 {
		mu.Lock()
		defer mu.Unlock()
		mem.Levels(mem.Now(), levels)
		phase := make([]float64, n*n)
		for r := range n {
			for c := range n {
				g := levels[(y0+r)*dw+x0+c]
				k := int(g)
				if f := g - float64(k); f == 0 || k >= 255 {
					phase[r*n+c] = phaseOf[min(k, 255)] // a level: its phase exactly
				} else {
					phase[r*n+c] = phaseOf[k] + f*(phaseOf[k+1]-phaseOf[k])
				}
			}
		}
		return phase
	}, nil
}

// pmPart is the power-meter driver on the twin.
type pmPart struct {
	*powermeter.PM100
	srv served
}

// Close closes the driver's connection and stops serving the twin.
func (p *pmPart) Close() error {
	err := p.PM100.Close()
	p.srv.stop()
	return err
}

// powerMeterTwin is the power meter's twin: its own driver over loopback
// TCP to a PM100 twin (TwinPowerMeter) served for the part's life, reading
// what the OWMS twin puts on the detector under the pattern of the rig's
// SLM part (one named slm, or the only one built before the meter; none:
// a flat SLM).
func powerMeterTwin(ctx context.Context, p insitu.Params, built map[string]rig.Part) (rig.Part, rig.TwinInfo, error) {
	c, err := rig.DecodeChecked[powermeter.Config](p)
	if err != nil {
		return nil, rig.TwinInfo{}, err
	}
	idn, notes, err := twinIdentity(c.IDN, PowerMeterIDN)
	if err != nil {
		return nil, rig.TwinInfo{}, err
	}
	cfg := TwinPowerMeter
	cfg.Optics = optics.DefaultConfig()
	light := "a flat SLM (no SLM part before the meter)"
	if s, err := findSLM(built); err == nil {
		pattern, err := MemoryPattern(s)
		if err != nil {
			return nil, rig.TwinInfo{}, fmt.Errorf("power meter twin: %w", err)
		}
		cfg.Optics.N = s.Side()
		cfg.Pattern = func() ([]float64, error) { return pattern(), nil }
		light = fmt.Sprintf("the pattern %v shows", s)
	}
	tw, err := NewPowerMeter(cfg)
	if err != nil {
		return nil, rig.TwinInfo{}, err
	}
	srv, err := serve(ctx, tw.Instrument())
	if err != nil {
		return nil, rig.TwinInfo{}, err
	}
	hw := c.Transport
	c.IDN = idn
	c.Timeout = exchangeTimeout(c.Timeout, hw)
	c.Transport = transport.Config{Type: "lxi", LXI: lxi.Config{Address: srv.addr, Timeout: c.Timeout}}
	pm, err := powermeter.Open(ctx, c)
	if err != nil {
		srv.stop()
		return nil, rig.TwinInfo{}, err
	}
	notes = append([]string{fmt.Sprintf("transport %s replaced by loopback TCP %s to the twin, served by this process", where(hw), srv.addr)}, notes...)
	d := cfg.Detector
	return &pmPart{PM100: pm, srv: srv}, rig.TwinInfo{
		Device: fmt.Sprintf("power-meter driver over TCP %s to the PM100 twin: %g W into the OWMS twin, a %g µm detector at (%g, %g) µm, under %s",
			srv.addr, cfg.InputPower, d.Radius*1e6, d.X*1e6, d.Y*1e6, light),
		Notes:   notes,
		Acquire: time.Duration(c.Average) * PM100Sample,
	}, nil
}

// daqTwin is the DAQ board's twin: its own driver (MCP4728, ADS1115) on a
// fresh emulated I²C bus holding one MCP4728 and one ADS1115 at the
// configured addresses, whose inputs are the analog PNN layer of the
// outputs (PNNResponse).
func daqTwin(_ context.Context, p insitu.Params, _ map[string]rig.Part) (rig.Part, rig.TwinInfo, error) {
	var c daq.Config
	if err := rig.Decode(p, &c); err != nil {
		return nil, rig.TwinInfo{}, err
	}
	if err := daq.Check(c); err != nil {
		return nil, rig.TwinInfo{}, err
	}
	dac, adc := uint16(0), uint16(0)
	one := func(have *uint16, chip string, addr uint16, def uint16, want string) error {
		if addr == 0 {
			addr = def
		}
		switch {
		case chip != want:
			return fmt.Errorf("daq twin: chip %s: the emulated bus holds one MCP4728 (outputs) and one ADS1115 (inputs)", chip)
		case *have != 0 && *have != addr:
			return fmt.Errorf("daq twin: %s at %#x and %#x: the emulated bus holds one", want, *have, addr)
		}
		*have = addr
		return nil
	}
	for _, o := range c.Outputs {
		if err := one(&dac, o.Chip, o.Addr, 0x60, "mcp4728"); err != nil {
			return nil, rig.TwinInfo{}, err
		}
	}
	for _, in := range c.Inputs {
		if err := one(&adc, in.Chip, in.Addr, 0x48, "ads1115"); err != nil {
			return nil, rig.TwinInfo{}, err
		}
	}
	bus := newPNNBus(dac, adc, physic.ElectricPotential(c.VDD*float64(physic.Volt)))
	// The bench's settle is reported, not waited. The emulated ADC is
	// noiseless, so the mean of average conversions is one conversion:
	// the twin converts once and reports the time of average.
	settle, avg := c.Settle, max(c.Average, 1)
	c.Settle, c.Average = 0, 1
	d, err := daq.New(bus, c)
	if err != nil {
		return nil, rig.TwinInfo{}, err
	}
	var acq time.Duration
	for _, in := range c.Inputs {
		rate := in.Rate
		if rate == 0 {
			rate = 860
		}
		acq += time.Duration(avg) * time.Duration(float64(time.Second)/float64(rate))
	}
	notes := []string{fmt.Sprintf("I²C bus %q replaced by an emulated bus in this process", c.Bus)}
	if avg > 1 {
		notes = append(notes, fmt.Sprintf("average %d: the emulated ADC is noiseless, so each input is converted once (the same mean); the bench time counts %d conversions", avg, avg))
	}
	if c.VDD != 5 {
		notes = append(notes, fmt.Sprintf("vdd %g V: the PNN layer twin is modelled at 5 V", c.VDD))
	}
	var chips []string
	if dac != 0 {
		chips = append(chips, fmt.Sprintf("MCP4728 at %#x", dac))
	}
	if adc != 0 {
		chips = append(chips, fmt.Sprintf("ADS1115 at %#x", adc))
	}
	return rig.DAQ{DAQ: d}, rig.TwinInfo{
		Device:  fmt.Sprintf("DAQ driver on an emulated I²C bus (%s) wired through the analog PNN layer twin", strings.Join(chips, ", ")),
		Notes:   notes,
		Settle:  settle,
		Acquire: acq,
		SafeState: func() string {
			if dac == 0 {
				return ""
			}
			return fmt.Sprintf("all DAC channels to 0 V (MCP4728 at %#x: A–D)", dac)
		},
		Counts: func() map[string]int { return map[string]int{"bus transactions": bus.Transactions()} },
	}, nil
}

// newPNNBus is an emulated bus like NewPNNBus's with the DAC and ADC at
// the given addresses (0: the chips' defaults) and supply vdd (0: 5 V).
func newPNNBus(dac, adc uint16, vdd physic.ElectricPotential) *i2cemu.Bus {
	return i2cemu.New(&i2cemu.Opts{DACAddr: dac, ADCAddr: adc, VDD: vdd, Response: pnnResponse})
}

// pnnResponse is PNNResponse on the emulated bus's potentials.
func pnnResponse(d [4]physic.ElectricPotential) [4]physic.ElectricPotential {
	var v [4]float64
	for i, x := range d {
		v[i] = float64(x) / float64(physic.Volt)
	}
	y := PNNResponse(v)
	var out [4]physic.ElectricPotential
	for i, x := range y {
		out[i] = physic.ElectricPotential(math.Round(x * float64(physic.Volt)))
	}
	return out
}
