// Package i2cemu is an emulated I²C bus for the analog twin: an MCP4728
// four-channel DAC at one address and an ADS1115 ADC at another, where the
// ADC's four inputs are a pluggable function of the DAC's four outputs (the
// wiring plus whatever analog circuit, e.g. a PNN twin, sits between them).
//
// The chips are emulated at the register level from their datasheets, so the
// real drivers (drivers/i2c/mcp4728, drivers/i2c/ads1115, periph's ads1x15)
// talk to it unchanged. Register it with periph's i2creg under a name and a
// config can point at it like at /dev/i2c-1.
//
// Simplifications: the MCP4728's LDAC pin is tied low (outputs follow the
// input registers, UDAC is ignored) and EEPROM writes complete at once; the
// ADS1115 converts instantly and its comparator is not emulated.
package i2cemu

import (
	"errors"
	"fmt"
	"sync"

	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/i2c/i2creg"
	"periph.io/x/conn/v3/physic"
)

// ErrNAK is returned for a transaction no emulated chip acknowledges, or one
// a chip would reject (unknown command, wrong length).
var ErrNAK = errors.New("i2cemu: no acknowledge")

// Response maps the DAC outputs A..D to the ADC inputs AIN0..AIN3.
type Response func(dac [4]physic.ElectricPotential) [4]physic.ElectricPotential

// Loopback wires DAC output i to ADC input i.
func Loopback(dac [4]physic.ElectricPotential) [4]physic.ElectricPotential { return dac }

// Opts configures a Bus.
type Opts struct {
	DACAddr  uint16                   // MCP4728; 0 means 0x60
	ADCAddr  uint16                   // ADS1115; 0 means 0x48
	VDD      physic.ElectricPotential // supply of both chips; 0 means 5 V
	Response Response                 // nil means Loopback
	// Fault, if set, is called before each transaction; a non-nil error is
	// returned instead of executing it (fault injection for the twin; a
	// Fault that sleeps and returns nil adds latency). It is called without
	// the bus lock, so it must be safe for concurrent use.
	Fault func(addr uint16, w []byte, nr int) error
}

// Bus is the emulated bus. It implements i2c.BusCloser and is safe for
// concurrent use; transactions are atomic as on a real bus.
type Bus struct {
	opts Opts

	mu  sync.Mutex
	dac mcp4728
	adc ads1115
	n   int // transactions served
}

// New returns a bus with both chips in their power-on state: DAC channels at
// code 0, VDD reference, normal mode; ADC config 0x8583.
func New(opts *Opts) *Bus {
	b := &Bus{}
	if opts != nil {
		b.opts = *opts
	}
	if b.opts.DACAddr == 0 {
		b.opts.DACAddr = 0x60
	}
	if b.opts.ADCAddr == 0 {
		b.opts.ADCAddr = 0x48
	}
	if b.opts.VDD == 0 {
		b.opts.VDD = 5 * physic.Volt
	}
	if b.opts.Response == nil {
		b.opts.Response = Loopback
	}
	b.dac.por()
	b.adc.config = 0x8583 // datasheet reset value
	b.adc.hi, b.adc.lo = 0x7FFF, 0x8000
	return b
}

// String implements i2c.Bus.
func (b *Bus) String() string { return "i2cemu" }

// SetSpeed implements i2c.Bus; any speed is accepted.
func (b *Bus) SetSpeed(physic.Frequency) error { return nil }

// Close implements i2c.BusCloser. The emulated chips keep their state, so a
// bus opened again through i2creg sees the same outputs.
func (b *Bus) Close() error { return nil }

// Tx implements i2c.Bus.
func (b *Bus) Tx(addr uint16, w, r []byte) error {
	if f := b.opts.Fault; f != nil {
		if err := f(addr, w, len(r)); err != nil {
			return err
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.n++
	var err error
	switch addr {
	case b.opts.DACAddr:
		err = b.dac.tx(w, r, addr)
	case b.opts.ADCAddr:
		err = b.adc.tx(w, r, b.inputs)
	default:
		err = ErrNAK
	}
	if err != nil {
		return fmt.Errorf("i2cemu: addr %#x, write % x, read %d bytes: %w", addr, w, len(r), err)
	}
	return nil
}

// Outputs returns the DAC's four output voltages.
func (b *Bus) Outputs() [4]physic.ElectricPotential {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.dac.outputs(b.opts.VDD)
}

// Inputs returns the ADC's four input voltages.
func (b *Bus) Inputs() [4]physic.ElectricPotential {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.inputs()
}

// inputs is called with b.mu held.
func (b *Bus) inputs() [4]physic.ElectricPotential {
	return b.opts.Response(b.dac.outputs(b.opts.VDD))
}

// Transactions returns the number of transactions served.
func (b *Bus) Transactions() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.n
}

// Register makes the bus available as i2creg.Open(name). Unregister it with
// i2creg.Unregister(name) when done (tests register unique names).
func (b *Bus) Register(name string) error {
	return i2creg.Register(name, nil, -1, func() (i2c.BusCloser, error) { return b, nil })
}

var _ i2c.BusCloser = (*Bus)(nil)

// ---- MCP4728 (DS22187E) ----

type dacReg struct {
	vref, gain2 bool
	pd          uint8
	code        uint16
}

type mcp4728 struct {
	in, ee [4]dacReg
}

// por loads the input registers from EEPROM (all zero from the factory).
func (m *mcp4728) por() { m.in = m.ee }

func (m *mcp4728) outputs(vdd physic.ElectricPotential) [4]physic.ElectricPotential {
	var v [4]physic.ElectricPotential
	for ch, r := range m.in {
		if r.pd != 0 {
			continue // powered down: pulled to ground
		}
		ref := vdd
		if r.vref {
			ref = 2048 * physic.MilliVolt
			if r.gain2 {
				ref *= 2
			}
		}
		v[ch] = min(ref*physic.ElectricPotential(r.code)/4096, vdd) // cannot exceed the supply
	}
	return v
}

// reg decodes the VREF PD1 PD0 Gx D11..D8 | D7..D0 pair.
func reg(b1, b2 byte) dacReg {
	return dacReg{vref: b1&0x80 != 0, pd: b1 >> 5 & 3, gain2: b1&0x10 != 0, code: uint16(b1&0x0F)<<8 | uint16(b2)}
}

func (m *mcp4728) tx(w, r []byte, addr uint16) error {
	if len(w) == 0 {
		return m.read(r, addr)
	}
	if len(r) != 0 {
		return fmt.Errorf("MCP4728 has no combined write-read: %w", ErrNAK)
	}
	switch c := w[0]; {
	case c>>6 == 0: // fast write: PD and code of A, B, … (C2 C1 = 00)
		if len(w)%2 != 0 || len(w) > 8 {
			return fmt.Errorf("fast write of %d bytes: %w", len(w), ErrNAK)
		}
		for i := 0; i < len(w); i += 2 {
			ch := i / 2
			m.in[ch].pd = w[i] >> 4 & 3
			m.in[ch].code = uint16(w[i]&0x0F)<<8 | uint16(w[i+1])
		}
	case c>>3 == 0x08: // 01000: multi-write, repeated 3-byte frames
		if len(w)%3 != 0 {
			return fmt.Errorf("multi-write of %d bytes: %w", len(w), ErrNAK)
		}
		for i := 0; i < len(w); i += 3 {
			if w[i]>>3 != 0x08 {
				return fmt.Errorf("multi-write frame %#x: %w", w[i], ErrNAK)
			}
			m.in[w[i]>>1&3] = reg(w[i+1], w[i+2])
		}
	case c>>3 == 0x0A: // 01010: sequential write from a channel to D, with EEPROM
		ch := int(c >> 1 & 3)
		if len(w) != 1+2*(4-ch) {
			return fmt.Errorf("sequential write from %d of %d bytes: %w", ch, len(w), ErrNAK)
		}
		for i := 1; i < len(w); i += 2 {
			m.in[ch] = reg(w[i], w[i+1])
			m.ee[ch] = m.in[ch]
			ch++
		}
	case c>>3 == 0x0B: // 01011: single write with EEPROM
		if len(w) != 3 {
			return fmt.Errorf("single write of %d bytes: %w", len(w), ErrNAK)
		}
		ch := c >> 1 & 3
		m.in[ch] = reg(w[1], w[2])
		m.ee[ch] = m.in[ch]
	case c>>5 == 4 && len(w) == 1: // 100x: VREF of A..D in bits 3..0
		for ch := range 4 {
			m.in[ch].vref = c>>(3-ch)&1 != 0
		}
	case c>>5 == 6 && len(w) == 1: // 110x: gain of A..D in bits 3..0
		for ch := range 4 {
			m.in[ch].gain2 = c>>(3-ch)&1 != 0
		}
	case c>>5 == 5 && len(w) == 2: // 101x: PD of A, B in byte 1; C, D in byte 2
		m.in[0].pd, m.in[1].pd = c>>2&3, c&3
		m.in[2].pd, m.in[3].pd = w[1]>>6&3, w[1]>>4&3
	default:
		return fmt.Errorf("unknown command %#x: %w", c, ErrNAK)
	}
	return nil
}

// read returns, for A..D, the input register then the EEPROM:
// RDY POR DAC1 DAC0 0 A2 A1 A0 | VREF PD1 PD0 Gx D11..D8 | D7..D0.
func (m *mcp4728) read(r []byte, addr uint16) error {
	if len(r) == 0 || len(r) > 24 {
		return fmt.Errorf("read of %d bytes: %w", len(r), ErrNAK)
	}
	var all [24]byte
	for ch := range 4 {
		for j, x := range []dacReg{m.in[ch], m.ee[ch]} {
			f := all[6*ch+3*j:]
			f[0] = 0xC0 | byte(ch)<<4 | byte(addr&7) // ready, powered
			f[1] = byte(x.pd)<<5 | byte(x.code>>8)
			if x.vref {
				f[1] |= 0x80
			}
			if x.gain2 {
				f[1] |= 0x10
			}
			f[2] = byte(x.code)
		}
	}
	copy(r, all[:]) // a shorter read stops early, as on the wire
	return nil
}

// ---- ADS1115 (SBAS444) ----

type ads1115 struct {
	ptr          byte
	config       uint16
	conv, lo, hi uint16
}

// fullScale is ±FS by PGA bits 11:9 (codes 5–7 are all 0.256 V).
var fullScale = [8]physic.ElectricPotential{6144e6, 4096e6, 2048e6, 1024e6, 512e6, 256e6, 256e6, 256e6}

func (a *ads1115) tx(w, r []byte, inputs func() [4]physic.ElectricPotential) error {
	switch len(w) {
	case 0:
	case 1:
		a.ptr = w[0]
	case 3:
		a.ptr = w[0]
		v := uint16(w[1])<<8 | uint16(w[2])
		switch a.ptr {
		case 0: // conversion register is read-only; the chip ignores the write
		case 1:
			a.config = v
			continuous := v&0x0100 == 0
			if continuous || v&0x8000 != 0 {
				a.convert(inputs())
			}
			a.config |= 0x8000 // OS reads 1: not converting (instant conversion)
		case 2:
			a.lo = v
		case 3:
			a.hi = v
		}
	default:
		return fmt.Errorf("ADS1115 write of %d bytes: %w", len(w), ErrNAK)
	}
	if a.ptr > 3 {
		return fmt.Errorf("ADS1115 pointer %#x: %w", a.ptr, ErrNAK)
	}
	if len(r) == 0 {
		return nil
	}
	if len(r) > 2 {
		return fmt.Errorf("ADS1115 read of %d bytes: %w", len(r), ErrNAK)
	}
	var v uint16
	switch a.ptr {
	case 0:
		if a.config&0x0100 == 0 { // continuous: always the latest input
			a.convert(inputs())
		}
		v = a.conv
	case 1:
		v = a.config
	case 2:
		v = a.lo
	case 3:
		v = a.hi
	}
	be := [2]byte{byte(v >> 8), byte(v)}
	copy(r, be[:])
	return nil
}

// convert applies MUX and PGA: code = round(Vin·32768/FS), saturated to
// [−32768, 32767].
func (a *ads1115) convert(in [4]physic.ElectricPotential) {
	var v physic.ElectricPotential
	switch mux := a.config >> 12 & 7; mux {
	case 0:
		v = in[0] - in[1]
	case 1:
		v = in[0] - in[3]
	case 2:
		v = in[1] - in[3]
	case 3:
		v = in[2] - in[3]
	default:
		v = in[mux-4]
	}
	fs := fullScale[a.config>>9&7]
	// Saturate before scaling so extreme twin outputs cannot overflow.
	v = max(min(v, 2*fs), -2*fs)
	num := int64(v) * 32768
	code := num / int64(fs)
	if rem := num % int64(fs); 2*rem >= int64(fs) {
		code++
	} else if -2*rem >= int64(fs) {
		code--
	}
	a.conv = uint16(int16(max(min(code, 32767), -32768)))
}
