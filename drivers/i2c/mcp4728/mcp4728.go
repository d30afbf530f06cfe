// Package mcp4728 drives the Microchip MCP4728, a four-channel 12-bit I²C
// DAC with an internal 2.048 V reference (datasheet DS22187E).
//
// Each channel has its own reference: VDD, or the internal 2.048 V with
// gain ×1 or ×2. Vout = Vref·gain·code/4096 (gain is 1 with VDD). Set rounds
// to the nearest code (half up); values outside [0, ceiling] are refused
// before any byte reaches the bus. Halt drives all four channels to 0 V.
//
// Writes use the multi-write command, which sends each channel's reference,
// gain and power-down bits with its code, so the chip's state never has to
// be assumed. The LDAC pin is assumed tied low (UDAC = 0: outputs update at
// the end of each channel's bytes).
package mcp4728

import (
	"errors"
	"fmt"
	"sync"

	"periph.io/x/conn/v3/analog"
	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/physic"

	"github.com/insitu-lab/insitu/drivers/i2c/internal/dac12"
)

// DefaultAddr is the factory address (A2 A1 A0 = 000 in EEPROM); 0x60–0x67.
const DefaultAddr uint16 = 0x60

// Internal is the internal reference voltage.
const Internal = 2048 * physic.MilliVolt

// Channels is the number of outputs, A to D.
const Channels = 4

// Ref selects a channel's reference (VREF bit).
type Ref uint8

// References.
const (
	RefVDD      Ref = 0 // the supply; gain is ignored
	RefInternal Ref = 1 // 2.048 V, times the gain
)

// PowerDown is the PD1:PD0 field of a channel.
type PowerDown uint8

// Power-down modes (datasheet table 4-7).
const (
	Normal        PowerDown = 0 // output drives
	PowerDown1k   PowerDown = 1 // off, 1 kΩ to ground
	PowerDown100k PowerDown = 2 // off, 100 kΩ to ground
	PowerDown500k PowerDown = 3 // off, 500 kΩ to ground
)

// Config is one channel's reference, gain and power-down mode.
type Config struct {
	Ref       Ref
	Gain2     bool // gain ×2 (internal reference only)
	PowerDown PowerDown
}

// Command bytes (datasheet table 5-1).
const (
	cmdFast        = 0x00 // 00: fast write, PD and code of A..D
	cmdMultiWrite  = 0x40 // 01000 DAC1 DAC0 UDAC
	cmdSingleWrite = 0x58 // 01011 DAC1 DAC0 UDAC: input register and EEPROM
	cmdPowerDown   = 0xA0 // 101x: PD bits of all channels
)

// Opts configures a Dev.
type Opts struct {
	Addr uint16                   // 0 means DefaultAddr
	VDD  physic.ElectricPotential // supply voltage; required (the RefVDD reference)
	// Channel is each channel's reference, gain and mode used by writes.
	// The zero value is VDD reference, normal mode.
	Channel [Channels]Config
	// Max is a per-channel software ceiling (0: full scale).
	Max [Channels]physic.ElectricPotential
}

// Dev is an MCP4728 on an I²C bus. Methods are safe for concurrent use.
type Dev struct {
	c       i2c.Dev
	vdd     physic.ElectricPotential
	cfg     [Channels]Config
	ref     [Channels]physic.ElectricPotential // full-scale reference per channel
	maxCode [Channels]uint16
	mu      sync.Mutex
}

// New returns a driver for the MCP4728 at opts.Addr. It does not touch the
// bus: every write carries the channel configuration.
func New(b i2c.Bus, opts *Opts) (*Dev, error) {
	if opts == nil || opts.VDD <= 0 {
		return nil, errors.New("mcp4728: Opts.VDD (the supply voltage) is required")
	}
	addr := opts.Addr
	if addr == 0 {
		addr = DefaultAddr
	}
	if addr < 0x60 || addr > 0x67 {
		return nil, fmt.Errorf("mcp4728: address %#x outside 0x60–0x67", addr)
	}
	d := &Dev{c: i2c.Dev{Bus: b, Addr: addr}, vdd: opts.VDD, cfg: opts.Channel}
	for ch, c := range opts.Channel {
		if c.Ref > RefInternal || c.PowerDown > PowerDown500k {
			return nil, fmt.Errorf("mcp4728: channel %c: invalid config %+v", 'A'+ch, c)
		}
		d.ref[ch] = reference(c, opts.VDD)
		d.maxCode[ch] = dac12.MaxFor(opts.Max[ch], d.ref[ch])
		if d.ref[ch] > opts.VDD {
			// The output cannot exceed VDD: 2×2.048 V on a 3.3 V supply clips.
			d.maxCode[ch] = min(d.maxCode[ch], dac12.MaxFor(opts.VDD, d.ref[ch]))
		}
	}
	return d, nil
}

func reference(c Config, vdd physic.ElectricPotential) physic.ElectricPotential {
	switch {
	case c.Ref == RefVDD:
		return vdd
	case c.Gain2:
		return 2 * Internal
	}
	return Internal
}

// String implements conn.Resource.
func (d *Dev) String() string { return fmt.Sprintf("MCP4728(%s@%#x)", d.c.Bus, d.c.Addr) }

// Halt implements conn.Resource: a fast write of code 0, normal mode, to all
// four channels in one transaction. Code 0 is 0 V whatever reference the
// chip holds, so Halt works without knowing the chip's state.
func (d *Dev) Halt() error {
	var w [2 * Channels]byte // 0 0 PD1 PD0 D11..D8, D7..D0 per channel, all zero
	return d.tx("halt", w[:], nil)
}

// Range returns the lowest and highest output of channel ch.
func (d *Dev) Range(ch int) (analog.Sample, analog.Sample) {
	if ch < 0 || ch >= Channels {
		return analog.Sample{}, analog.Sample{}
	}
	return analog.Sample{}, analog.Sample{Raw: int32(d.maxCode[ch]), V: dac12.Volts(d.maxCode[ch], d.ref[ch])}
}

// Volts is the ideal output of code on channel ch.
func (d *Dev) Volts(ch int, code uint16) physic.ElectricPotential {
	return dac12.Volts(code, d.ref[ch%Channels])
}

// Set drives channel ch to the code nearest v.
func (d *Dev) Set(ch int, v physic.ElectricPotential) error {
	if err := checkChannel(ch); err != nil {
		return fmt.Errorf("%s: set: %w", d, err)
	}
	code, err := dac12.Code(v, d.ref[ch], d.maxCode[ch])
	if err != nil {
		return fmt.Errorf("%s: set %c: %w", d, 'A'+ch, err)
	}
	return d.SetCodes(map[int]uint16{ch: code})
}

// SetAll drives the four channels to the codes nearest v in one multi-write
// transaction; if any value is out of range nothing is sent.
func (d *Dev) SetAll(v [Channels]physic.ElectricPotential) error {
	codes := make(map[int]uint16, Channels)
	for ch := range Channels {
		code, err := dac12.Code(v[ch], d.ref[ch], d.maxCode[ch])
		if err != nil {
			return fmt.Errorf("%s: set %c: %w", d, 'A'+ch, err)
		}
		codes[ch] = code
	}
	return d.SetCodes(codes)
}

// SetCodes writes the given channels' codes with their configuration in one
// multi-write transaction (datasheet figure 5-8), channels in order A..D.
// All codes are checked before anything is sent.
func (d *Dev) SetCodes(codes map[int]uint16) error {
	w := make([]byte, 0, 3*Channels)
	for ch := range Channels {
		code, ok := codes[ch]
		if !ok {
			continue
		}
		if code > d.maxCode[ch] {
			return fmt.Errorf("%s: multi-write: channel %c code %d outside [0, %d]", d, 'A'+ch, code, d.maxCode[ch])
		}
		w = append(w, d.frame(cmdMultiWrite, ch, code)...)
	}
	if len(w) != 3*len(codes) {
		return fmt.Errorf("%s: multi-write: channels must be 0..3, got %v", d, codes)
	}
	return d.tx("multi-write", w, nil)
}

// WriteEEPROM writes channel ch's code and configuration to its input
// register and EEPROM with the single-write command, making them the
// power-on state. It wears the EEPROM and keeps the chip busy for up to
// 50 ms: for commissioning, not per query.
func (d *Dev) WriteEEPROM(ch int, code uint16) error {
	if err := checkChannel(ch); err != nil {
		return fmt.Errorf("%s: single write: %w", d, err)
	}
	if code > d.maxCode[ch] {
		return fmt.Errorf("%s: single write: channel %c code %d outside [0, %d]", d, 'A'+ch, code, d.maxCode[ch])
	}
	return d.tx("single write", d.frame(cmdSingleWrite, ch, code), nil)
}

// SetPowerDown sets the four channels' power-down bits in one command
// (datasheet figure 5-10) without changing codes. Normal wakes a channel.
func (d *Dev) SetPowerDown(pd [Channels]PowerDown) error {
	for ch, p := range pd {
		if p > PowerDown500k {
			return fmt.Errorf("%s: power down: channel %c: invalid mode %d", d, 'A'+ch, p)
		}
	}
	w := []byte{
		cmdPowerDown | byte(pd[0])<<2 | byte(pd[1]),
		byte(pd[2])<<6 | byte(pd[3])<<4,
	}
	if err := d.tx("power down", w, nil); err != nil {
		return err
	}
	d.mu.Lock()
	for ch := range Channels {
		d.cfg[ch].PowerDown = pd[ch]
	}
	d.mu.Unlock()
	return nil
}

// frame is the 3-byte channel frame of multi-write and single write:
// cmd DAC1 DAC0 UDAC=0 | VREF PD1 PD0 Gx D11..D8 | D7..D0.
func (d *Dev) frame(cmd byte, ch int, code uint16) []byte {
	d.mu.Lock()
	c := d.cfg[ch]
	d.mu.Unlock()
	b1 := byte(c.Ref)<<7 | byte(c.PowerDown)<<5 | byte(code>>8)
	if c.Gain2 {
		b1 |= 1 << 4
	}
	return []byte{cmd | byte(ch)<<1, b1, byte(code)}
}

func checkChannel(ch int) error {
	if ch < 0 || ch >= Channels {
		return fmt.Errorf("channel %d outside 0..3", ch)
	}
	return nil
}

func (d *Dev) tx(op string, w, r []byte) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.c.Tx(w, r); err != nil {
		return fmt.Errorf("%s: %s: %w", d, op, err)
	}
	return nil
}

// Register is one channel's DAC input register or EEPROM as read back.
type Register struct {
	Config
	Code uint16
}

// State is one channel's read-back.
type State struct {
	Ready      bool   // RDY/BSY: false while EEPROM is being written
	PowerOnRst bool   // POR bit
	Addr       uint16 // address bits A2 A1 A0 reported by the chip
	Input      Register
	EEPROM     Register
}

// Read reads back all four channels (24 bytes, datasheet figure 5-15).
func (d *Dev) Read() ([Channels]State, error) {
	var r [24]byte
	if err := d.tx("read", nil, r[:]); err != nil {
		return [Channels]State{}, err
	}
	s, err := ParseRead(r[:])
	if err != nil {
		return s, fmt.Errorf("%s: read: %w", d, err)
	}
	return s, nil
}

// ParseRead decodes a 24-byte read: for channels A..D, the DAC input
// register then the EEPROM, three bytes each:
//
//	RDY POR DAC1 DAC0 0 A2 A1 A0 | VREF PD1 PD0 Gx D11..D8 | D7..D0
//
// The channel bits must match the position, which catches a misaligned or
// garbled read.
func ParseRead(b []byte) ([Channels]State, error) {
	var s [Channels]State
	if len(b) != 24 {
		return s, fmt.Errorf("read-back of %d bytes, want 24", len(b))
	}
	for ch := range Channels {
		in, ee := b[6*ch:6*ch+3], b[6*ch+3:6*ch+6]
		for _, f := range [][]byte{in, ee} {
			if got := int(f[0] >> 4 & 3); got != ch {
				return s, fmt.Errorf("channel %c frame reports channel %c", 'A'+ch, 'A'+got)
			}
		}
		s[ch] = State{
			Ready:      in[0]&0x80 != 0,
			PowerOnRst: in[0]&0x40 != 0,
			Addr:       uint16(in[0] & 7),
			Input:      parseRegister(in),
			EEPROM:     parseRegister(ee),
		}
	}
	return s, nil
}

func parseRegister(f []byte) Register {
	return Register{
		Config: Config{Ref: Ref(f[1] >> 7), PowerDown: PowerDown(f[1] >> 5 & 3), Gain2: f[1]&0x10 != 0},
		Code:   uint16(f[1]&0x0F)<<8 | uint16(f[2]),
	}
}
