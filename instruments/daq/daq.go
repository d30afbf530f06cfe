// Package daq drives the analog I/O of physical-neural-network hardware:
// DAC outputs (MCP4728, MCP4725) that set the network's inputs or weights,
// and ADC inputs (ADS1115) that read its outputs, all on one I²C bus opened
// by name through periph's i2creg, so a bus emulated by drivers/i2c/i2cemu
// and registered under a name is used exactly like /dev/i2c-1.
//
// Every output has a range in volts (the config's, which must lie within
// what the chip can drive); a value outside it is refused before any byte
// reaches the bus. Inputs are read Average times and averaged. The safe
// state is every DAC chip at 0 V (the drivers' Halt).
package daq

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/i2c/i2creg"
	"periph.io/x/conn/v3/physic"

	"github.com/insitu-lab/insitu/drivers/i2c/ads1115"
	"github.com/insitu-lab/insitu/drivers/i2c/mcp4725"
	"github.com/insitu-lab/insitu/drivers/i2c/mcp4728"
)

// Output is one DAC channel.
type Output struct {
	Name    string  `mapstructure:"name" doc:"the coordinate's name"`
	Chip    string  `mapstructure:"chip" doc:"mcp4728 or mcp4725"`
	Addr    uint16  `mapstructure:"addr" doc:"I²C address; 0: the chip's default"`
	Channel int     `mapstructure:"channel" doc:"channel 0..3 (A..D) of an MCP4728"`
	Ref     string  `mapstructure:"ref" doc:"MCP4728 reference: vdd (default) or internal (2.048 V)"`
	Gain2   bool    `mapstructure:"gain2" doc:"MCP4728 internal reference ×2"`
	Min     float64 `mapstructure:"min" unit:"V" doc:"lowest voltage accepted"`
	Max     float64 `mapstructure:"max" unit:"V" doc:"highest voltage accepted, within the chip's range"`
}

// Input is one ADC channel.
type Input struct {
	Name      string  `mapstructure:"name" doc:"the output's name"`
	Chip      string  `mapstructure:"chip" doc:"ads1115"`
	Addr      uint16  `mapstructure:"addr" doc:"I²C address; 0: 0x48"`
	Input     string  `mapstructure:"input" doc:"ain0..ain3 (single-ended) or diff01, diff03, diff13, diff23"`
	FullScale float64 `mapstructure:"full_scale" unit:"V" doc:"programmable range: 6.144, 4.096, 2.048, 1.024, 0.512 or 0.256"`
	Rate      int     `mapstructure:"rate" doc:"samples per second; 0: 860"`
}

// Config describes the board. The mapstructure tags are the keys of a rig
// config's daq part.
type Config struct {
	Bus     string        `mapstructure:"bus" doc:"I²C bus: '1', '/dev/i2c-1', or an emulator's name"`
	VDD     float64       `mapstructure:"vdd" unit:"V" doc:"supply voltage of the DAC chips"`
	Outputs []Output      `mapstructure:"outputs" doc:"DAC channels: the part's inputs"`
	Inputs  []Input       `mapstructure:"inputs" doc:"ADC channels: the part's outputs"`
	Settle  time.Duration `mapstructure:"settle" doc:"wait after the outputs change, before reading"`
	Average int           `mapstructure:"average" doc:"ADC readings averaged per input; 0: 1"`
}

type chipKey struct {
	chip string
	addr uint16
}

// dacChip is a DAC driver behind one interface.
type dacChip interface {
	set(ch int, v physic.ElectricPotential) error
	maxV(ch int) physic.ElectricPotential
	Halt() error
	String() string
}

type m4728 struct{ *mcp4728.Dev }

func (m m4728) set(ch int, v physic.ElectricPotential) error { return m.Set(ch, v) }
func (m m4728) maxV(ch int) physic.ElectricPotential {
	_, hi := m.Range(ch)
	return hi.V
}

type m4725 struct{ *mcp4725.Dev }

func (m m4725) set(_ int, v physic.ElectricPotential) error { return m.Set(v) }
func (m m4725) maxV(int) physic.ElectricPotential {
	_, hi := m.Range()
	return hi.V
}

// DAQ is the board. Methods are safe for concurrent use and run one at a
// time.
type DAQ struct {
	cfg    Config
	bus    i2c.Bus
	closer func() error
	dacs   []dacChip // distinct chips, in config order
	outs   []dacChip // per output
	pins   []*ads1115.Pin
	avg    int

	mu sync.Mutex
}

// Open opens cfg.Bus through i2creg and builds the board on it.
func Open(ctx context.Context, cfg Config) (*DAQ, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b, err := i2creg.Open(cfg.Bus)
	if err != nil {
		return nil, fmt.Errorf("daq: open I²C bus %q: %w", cfg.Bus, err)
	}
	d, err := New(b, cfg)
	if err != nil {
		b.Close()
		return nil, err
	}
	d.closer = b.Close
	return d, nil
}

// Check validates cfg as Open does, without opening the bus: it runs New
// on a stand-in bus named cfg.Bus that refuses every transaction (New
// sends none), so every check of the outputs, inputs and chips is made,
// with New's errors. Whether the bus exists is only known to Open.
func Check(cfg Config) error {
	_, err := New(refusingBus(cfg.Bus), cfg)
	return err
}

// refusingBus is an I²C bus on which no transaction happens.
type refusingBus string

func (b refusingBus) String() string { return string(b) }

func (b refusingBus) Tx(addr uint16, _, _ []byte) error {
	return fmt.Errorf("daq: bus %q is not open (transaction with %#x refused)", string(b), addr)
}

func (b refusingBus) SetSpeed(physic.Frequency) error {
	return fmt.Errorf("daq: bus %q is not open", string(b))
}

// New builds the board on an open bus. It does not touch the bus.
func New(b i2c.Bus, cfg Config) (*DAQ, error) {
	if cfg.Average == 0 {
		cfg.Average = 1
	}
	if cfg.Average < 0 || cfg.Settle < 0 {
		return nil, fmt.Errorf("daq(%s): average %d and settle %v must not be negative", b, cfg.Average, cfg.Settle)
	}
	if len(cfg.Outputs) == 0 && len(cfg.Inputs) == 0 {
		return nil, fmt.Errorf("daq(%s): no outputs and no inputs", b)
	}
	d := &DAQ{cfg: cfg, bus: b, avg: cfg.Average}
	vdd := physic.ElectricPotential(cfg.VDD * float64(physic.Volt))
	names := map[string]bool{}
	// An MCP4728's four channel configurations go to its constructor, so
	// gather them per chip first.
	type m28 struct {
		opts mcp4728.Opts
		dev  dacChip
	}
	chips := map[chipKey]*m28{}
	var order []chipKey
	addrChip := map[uint16]string{}    // one chip per bus address
	used := map[chipKey]map[int]bool{} // channels taken per chip
	for i, o := range cfg.Outputs {
		where := fmt.Sprintf("daq(%s): outputs[%d] %q", b, i, o.Name)
		if o.Name == "" || names[o.Name] {
			return nil, fmt.Errorf("%s: names must be present and distinct", where)
		}
		names[o.Name] = true
		if cfg.VDD <= 0 {
			return nil, fmt.Errorf("%s: vdd (the DAC supply, volts) is required", where)
		}
		k := chipKey{strings.ToLower(o.Chip), o.Addr}
		if k.addr == 0 {
			k.addr = 0x60
		}
		if other, ok := addrChip[k.addr]; ok && other != k.chip {
			return nil, fmt.Errorf("%s: address %#x already holds an %s", where, k.addr, other)
		}
		addrChip[k.addr] = k.chip
		if used[k] == nil {
			used[k] = map[int]bool{}
		}
		if used[k][o.Channel] {
			return nil, fmt.Errorf("%s: %s@%#x channel %d is used twice", where, k.chip, k.addr, o.Channel)
		}
		used[k][o.Channel] = true
		c, ok := chips[k]
		if !ok {
			c = &m28{opts: mcp4728.Opts{Addr: k.addr, VDD: vdd}}
			chips[k] = c
			order = append(order, k)
		}
		switch k.chip {
		case "mcp4728":
			if o.Channel < 0 || o.Channel >= mcp4728.Channels {
				return nil, fmt.Errorf("%s: channel %d outside 0..3", where, o.Channel)
			}
			cc := &c.opts.Channel[o.Channel]
			switch strings.ToLower(o.Ref) {
			case "", "vdd":
			case "internal":
				cc.Ref, cc.Gain2 = mcp4728.RefInternal, o.Gain2
			default:
				return nil, fmt.Errorf("%s: ref %q: want vdd or internal", where, o.Ref)
			}
		case "mcp4725":
			if o.Channel != 0 || o.Ref != "" || o.Gain2 {
				return nil, fmt.Errorf("%s: an MCP4725 has one channel (0) and VDD as reference", where)
			}
		default:
			return nil, fmt.Errorf("%s: chip %q: want mcp4728 or mcp4725", where, o.Chip)
		}
	}
	devs := map[chipKey]dacChip{}
	for _, k := range order {
		var dc dacChip
		switch k.chip {
		case "mcp4728":
			dv, err := mcp4728.New(b, &chips[k].opts)
			if err != nil {
				return nil, fmt.Errorf("daq(%s): %w", b, err)
			}
			dc = m4728{dv}
		case "mcp4725":
			dv, err := mcp4725.New(b, &mcp4725.Opts{Addr: k.addr, Vref: vdd})
			if err != nil {
				return nil, fmt.Errorf("daq(%s): %w", b, err)
			}
			dc = m4725{dv}
		}
		devs[k] = dc
		d.dacs = append(d.dacs, dc)
	}
	for i, o := range cfg.Outputs {
		k := chipKey{strings.ToLower(o.Chip), o.Addr}
		if k.addr == 0 {
			k.addr = 0x60
		}
		dc := devs[k]
		top := float64(dc.maxV(o.Channel)) / float64(physic.Volt)
		if !(o.Min >= 0 && o.Max > o.Min && o.Max <= top+1e-12) {
			return nil, fmt.Errorf("daq(%s): outputs[%d] %q: range [%g, %g] V must satisfy 0 ≤ min < max ≤ %g (the %s's full scale)",
				b, i, o.Name, o.Min, o.Max, top, dc)
		}
		d.outs = append(d.outs, dc)
	}
	adcs := map[uint16]*ads1115.Dev{}
	for i, in := range cfg.Inputs {
		where := fmt.Sprintf("daq(%s): inputs[%d] %q", b, i, in.Name)
		if in.Name == "" || names[in.Name] {
			return nil, fmt.Errorf("%s: names must be present and distinct", where)
		}
		names[in.Name] = true
		if c := strings.ToLower(in.Chip); c != "ads1115" && c != "" {
			return nil, fmt.Errorf("%s: chip %q: want ads1115", where, in.Chip)
		}
		ch, ok := inputs[strings.ToLower(in.Input)]
		if !ok {
			return nil, fmt.Errorf("%s: input %q: want ain0..ain3, diff01, diff03, diff13 or diff23", where, in.Input)
		}
		addr := in.Addr
		if addr == 0 {
			addr = ads1115.DefaultAddr
		}
		adc, ok := adcs[addr]
		if !ok {
			var err error
			if adc, err = ads1115.New(b, &ads1115.Opts{Addr: addr}); err != nil {
				return nil, fmt.Errorf("%s: %w", where, err)
			}
			adcs[addr] = adc
		}
		rate := in.Rate
		if rate == 0 {
			rate = 860
		}
		fs := physic.ElectricPotential(math.Round(in.FullScale*1000)) * physic.MilliVolt
		p, err := adc.Open(ch, fs, rate)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		d.pins = append(d.pins, p)
	}
	return d, nil
}

var inputs = map[string]ads1115.Channel{
	"ain0": ads1115.AIN0, "ain1": ads1115.AIN1, "ain2": ads1115.AIN2, "ain3": ads1115.AIN3,
	"diff01": ads1115.Diff01, "diff03": ads1115.Diff03, "diff13": ads1115.Diff13, "diff23": ads1115.Diff23,
}

// String names the board by its bus.
func (d *DAQ) String() string { return fmt.Sprintf("daq(%s)", d.bus) }

// OutputNames names the outputs, in config order.
func (d *DAQ) OutputNames() []string { return d.cfg.OutputNames() }

// Range returns the configured volts of every output.
func (d *DAQ) Range() (lower, upper []float64) { return d.cfg.Range() }

// InputNames names the inputs, in config order.
func (d *DAQ) InputNames() []string { return d.cfg.InputNames() }

// OutputNames names the outputs, in config order.
func (c Config) OutputNames() []string {
	n := make([]string, len(c.Outputs))
	for i, o := range c.Outputs {
		n[i] = o.Name
	}
	return n
}

// Range returns the configured volts of every output, in config order.
func (c Config) Range() (lower, upper []float64) {
	for _, o := range c.Outputs {
		lower, upper = append(lower, o.Min), append(upper, o.Max)
	}
	return lower, upper
}

// InputNames names the inputs, in config order.
func (c Config) InputNames() []string {
	n := make([]string, len(c.Inputs))
	for i, in := range c.Inputs {
		n[i] = in.Name
	}
	return n
}

// Settle is the wait after the outputs change.
func (d *DAQ) Settle() time.Duration { return d.cfg.Settle }

// Set drives every output to volts[i]. All values are checked against
// their ranges before the first byte is sent.
func (d *DAQ) Set(ctx context.Context, volts []float64) error {
	if len(volts) != len(d.outs) {
		return fmt.Errorf("%s: set: %d values for %d outputs", d, len(volts), len(d.outs))
	}
	for i, v := range volts {
		o := d.cfg.Outputs[i]
		if !(v >= o.Min && v <= o.Max) {
			return fmt.Errorf("%s: set %s: %v V outside [%g, %g]", d, o.Name, v, o.Min, o.Max)
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for i, v := range volts {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("%s: set %s: %w", d, d.cfg.Outputs[i].Name, err)
		}
		pv := physic.ElectricPotential(math.Round(v * float64(physic.Volt)))
		if err := d.outs[i].set(d.cfg.Outputs[i].Channel, pv); err != nil {
			return fmt.Errorf("%s: set %s: %w", d, d.cfg.Outputs[i].Name, err)
		}
	}
	return nil
}

// Read returns every input in volts, each the mean of Average conversions.
func (d *DAQ) Read(ctx context.Context) ([]float64, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]float64, len(d.pins))
	for i, p := range d.pins {
		var sum float64
		for range d.avg {
			v, err := p.Volts(ctx)
			if err != nil {
				return nil, fmt.Errorf("%s: read %s: %w", d, d.cfg.Inputs[i].Name, err)
			}
			sum += float64(v) / float64(physic.Volt)
		}
		out[i] = sum / float64(d.avg)
	}
	return out, nil
}

// SafeState drives every DAC chip to 0 V. Every chip is attempted even if
// one fails.
func (d *DAQ) SafeState(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	var errs []error
	for _, c := range d.dacs {
		if err := c.Halt(); err != nil {
			errs = append(errs, fmt.Errorf("%s: safe state: %w", d, err))
		}
	}
	return errors.Join(errs...)
}

// Close releases the bus if Open opened it.
func (d *DAQ) Close() error {
	if d.closer == nil {
		return nil
	}
	if err := d.closer(); err != nil {
		return fmt.Errorf("%s: close: %w", d, err)
	}
	return nil
}
