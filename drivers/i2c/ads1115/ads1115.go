// Package ads1115 is a thin wrapper over periph.io/x/devices/v3/ads1x15
// (v3.7.4) for the TI ADS1115 16-bit ADC: explicit full-scale range and data
// rate instead of periph's "best fit" search, volts read with a context, and
// errors that name the chip, the bus and the channel.
//
// Context support is partial because ads1x15's Read blocks for the whole
// conversion (it sleeps 1/rate, up to 125 ms at 8 SPS) and takes no
// context: Read checks the context before starting and refuses to start a
// conversion that cannot finish before the deadline, but a started
// conversion runs to its end.
package ads1115

import (
	"context"
	"fmt"
	"slices"
	"time"

	"periph.io/x/conn/v3/analog"
	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/devices/v3/ads1x15"
)

// DefaultAddr is the address with ADDR tied to GND; 0x48–0x4B.
const DefaultAddr uint16 = 0x48

// Channel selects the input multiplexer: single-ended against GND or
// differential.
type Channel = ads1x15.Channel

// Inputs.
const (
	AIN0   = ads1x15.Channel0 // AIN0 against GND
	AIN1   = ads1x15.Channel1
	AIN2   = ads1x15.Channel2
	AIN3   = ads1x15.Channel3
	Diff01 = ads1x15.Channel0Minus1 // AIN0 − AIN1
	Diff03 = ads1x15.Channel0Minus3 // AIN0 − AIN3
	Diff13 = ads1x15.Channel1Minus3 // AIN1 − AIN3
	Diff23 = ads1x15.Channel2Minus3 // AIN2 − AIN3
)

// FullScales are the PGA ranges (±FS); a reading saturates at ±FS.
var FullScales = []physic.ElectricPotential{
	6144 * physic.MilliVolt, 4096 * physic.MilliVolt, 2048 * physic.MilliVolt,
	1024 * physic.MilliVolt, 512 * physic.MilliVolt, 256 * physic.MilliVolt,
}

// DataRates are the conversion rates in samples per second.
var DataRates = []int{8, 16, 32, 64, 128, 250, 475, 860}

// Opts configures a Dev.
type Opts struct {
	Addr uint16 // 0 means DefaultAddr
}

// Dev is an ADS1115. ads1x15 serializes conversions, so pins of one Dev may
// be read from several goroutines.
type Dev struct {
	adc  *ads1x15.Dev
	name string
}

// New returns a driver for the ADS1115 at opts.Addr (opts may be nil). It
// does not touch the bus.
func New(b i2c.Bus, opts *Opts) (*Dev, error) {
	addr := DefaultAddr
	if opts != nil && opts.Addr != 0 {
		addr = opts.Addr
	}
	if addr < 0x48 || addr > 0x4B {
		return nil, fmt.Errorf("ads1115: address %#x outside 0x48–0x4B", addr)
	}
	adc, err := ads1x15.NewADS1115(b, &ads1x15.Opts{I2cAddress: addr})
	if err != nil {
		return nil, fmt.Errorf("ads1115(%s@%#x): %w", b, addr, err)
	}
	return &Dev{adc: adc, name: fmt.Sprintf("ADS1115(%s@%#x)", b, addr)}, nil
}

// String implements conn.Resource.
func (d *Dev) String() string { return d.name }

// Halt implements conn.Resource. The ADS1115 has no output to make safe and
// powers down by itself after each single-shot conversion.
func (d *Dev) Halt() error { return nil }

// Pin is one configured input.
type Pin struct {
	p    ads1x15.PinADC
	conv time.Duration
	name string
}

// Open configures an input: channel, full-scale range (one of FullScales)
// and data rate (one of DataRates). Readings are single-shot.
func (d *Dev) Open(ch Channel, fullScale physic.ElectricPotential, rate int) (*Pin, error) {
	name := fmt.Sprintf("%s: AIN%s", d, ch)
	if ch.String() == "Invalid" {
		return nil, fmt.Errorf("%s: invalid channel %d", d, int(ch))
	}
	if !slices.Contains(FullScales, fullScale) {
		return nil, fmt.Errorf("%s: full scale %s not one of %v", name, fullScale, FullScales)
	}
	if !slices.Contains(DataRates, rate) {
		return nil, fmt.Errorf("%s: data rate %d SPS not one of %v", name, rate, DataRates)
	}
	// With BestQuality, ads1x15 picks the slowest rate ≥ f and the smallest
	// range ≥ maxVoltage: given exact values it picks exactly them.
	p, err := d.adc.PinForChannel(ch, fullScale, physic.Frequency(rate)*physic.Hertz, ads1x15.BestQuality)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &Pin{p: p, conv: time.Second / time.Duration(rate), name: name}, nil
}

// String names the chip, bus and channel.
func (p *Pin) String() string { return p.name }

// ConversionTime is how long one Read blocks at least.
func (p *Pin) ConversionTime() time.Duration { return p.conv }

// Range returns the lowest and highest reading.
func (p *Pin) Range() (analog.Sample, analog.Sample) { return p.p.Range() }

// Read starts a conversion and returns the volts and raw code. See the
// package comment for what the context can and cannot stop.
func (p *Pin) Read(ctx context.Context) (analog.Sample, error) {
	if err := ctx.Err(); err != nil {
		return analog.Sample{}, fmt.Errorf("%s: read: %w", p, err)
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < p.conv {
		return analog.Sample{}, fmt.Errorf("%s: read: %v left, conversion takes %v: %w",
			p, time.Until(dl).Round(time.Microsecond), p.conv, context.DeadlineExceeded)
	}
	s, err := p.p.Read()
	if err != nil {
		return s, fmt.Errorf("%s: read: %w", p, err)
	}
	return s, nil
}

// Volts reads the input in volts.
func (p *Pin) Volts(ctx context.Context) (physic.ElectricPotential, error) {
	s, err := p.Read(ctx)
	return s.V, err
}
