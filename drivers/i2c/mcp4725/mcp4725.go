// Package mcp4725 drives the Microchip MCP4725, a 12-bit single-channel I²C
// DAC whose reference is its supply VDD (datasheet DS22039D).
//
// Vout = Vref·code/4096. Set rounds to the nearest code (half up) and refuses
// negative volts and volts that round above the configured ceiling without
// touching the bus. Halt writes code 0: the safe state is 0 V.
package mcp4725

import (
	"errors"
	"fmt"
	"sync"

	"periph.io/x/conn/v3/analog"
	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/physic"

	"github.com/insitu-lab/insitu/drivers/i2c/internal/dac12"
)

// DefaultAddr is the address with A2 A1 A0 = 000; parts answer at 0x60–0x67
// (A2, A1 set at the factory, A0 by a pin).
const DefaultAddr uint16 = 0x60

// PowerDown is the PD1:PD0 field: the output either drives (Normal) or is
// switched off and pulled to ground through a resistor.
type PowerDown uint8

// Power-down modes (datasheet table 5-2).
const (
	Normal        PowerDown = 0 // output drives
	PowerDown1k   PowerDown = 1 // off, 1 kΩ to ground
	PowerDown100k PowerDown = 2 // off, 100 kΩ to ground
	PowerDown500k PowerDown = 3 // off, 500 kΩ to ground
)

func (p PowerDown) String() string {
	switch p {
	case Normal:
		return "normal"
	case PowerDown1k:
		return "pd-1k"
	case PowerDown100k:
		return "pd-100k"
	case PowerDown500k:
		return "pd-500k"
	}
	return fmt.Sprintf("pd(%d)", uint8(p))
}

// Command bytes (datasheet figures 6-1 and 6-2): C2 C1 C0 in bits 7:5.
const (
	cmdWriteDAC       = 0x40 // 010: DAC register
	cmdWriteDACEEPROM = 0x60 // 011: DAC register and EEPROM
)

// Opts configures a Dev.
type Opts struct {
	Addr uint16                   // 0 means DefaultAddr
	Vref physic.ElectricPotential // the chip's VDD; required
	// Max is a software ceiling below full scale (0: none). Codes whose ideal
	// output exceeds it are refused before the bus is touched.
	Max physic.ElectricPotential
	// HaltMode is the mode Halt leaves the output in, always at code 0.
	// Normal (the default) actively drives 0 V; a power-down mode floats
	// the output onto its pull-down resistor instead.
	HaltMode PowerDown
}

// Dev is an MCP4725 on an I²C bus. Methods are safe for concurrent use.
type Dev struct {
	c       i2c.Dev
	vref    physic.ElectricPotential
	maxCode uint16
	halt    PowerDown
	mu      sync.Mutex // one command at a time
}

// New returns a driver for the MCP4725 at opts.Addr. It does not touch the
// bus: the chip keeps the output its EEPROM gave it at power-on until the
// first write.
func New(b i2c.Bus, opts *Opts) (*Dev, error) {
	if opts == nil || opts.Vref <= 0 {
		return nil, errors.New("mcp4725: Opts.Vref (the supply voltage) is required")
	}
	if opts.HaltMode > PowerDown500k {
		return nil, fmt.Errorf("mcp4725: invalid halt mode %d", opts.HaltMode)
	}
	addr := opts.Addr
	if addr == 0 {
		addr = DefaultAddr
	}
	if addr < 0x60 || addr > 0x67 {
		return nil, fmt.Errorf("mcp4725: address %#x outside 0x60–0x67", addr)
	}
	return &Dev{
		c:       i2c.Dev{Bus: b, Addr: addr},
		vref:    opts.Vref,
		maxCode: dac12.MaxFor(opts.Max, opts.Vref),
		halt:    opts.HaltMode,
	}, nil
}

// String implements conn.Resource.
func (d *Dev) String() string { return fmt.Sprintf("MCP4725(%s@%#x)", d.c.Bus, d.c.Addr) }

// Halt implements conn.Resource: code 0 in the configured halt mode, with a
// fast write so it needs nothing but the address to work.
func (d *Dev) Halt() error { return d.fast("halt", 0, d.halt) }

// Range returns the lowest and highest output Set and SetCode accept.
func (d *Dev) Range() (analog.Sample, analog.Sample) {
	return analog.Sample{}, analog.Sample{Raw: int32(d.maxCode), V: dac12.Volts(d.maxCode, d.vref)}
}

// Volts is the ideal output of code.
func (d *Dev) Volts(code uint16) physic.ElectricPotential { return dac12.Volts(code, d.vref) }

// Set drives the output to the code nearest v (rounded half up), refusing v
// outside Range without touching the bus.
func (d *Dev) Set(v physic.ElectricPotential) error {
	code, err := dac12.Code(v, d.vref, d.maxCode)
	if err != nil {
		return fmt.Errorf("%s: set: %w", d, err)
	}
	return d.fast("set "+v.String(), code, Normal)
}

// SetCode drives the output to code with a fast write.
func (d *Dev) SetCode(code uint16) error { return d.fast("set code", code, Normal) }

// Out implements analog.PinDAC.
func (d *Dev) Out(v int32) error {
	if v < 0 || v > int32(d.maxCode) {
		return fmt.Errorf("%s: out: code %d outside [0, %d]", d, v, d.maxCode)
	}
	return d.SetCode(uint16(v))
}

// PowerDown switches the output off into mode at code 0 (Normal re-enables
// it at 0 V).
func (d *Dev) PowerDown(mode PowerDown) error { return d.fast("power down", 0, mode) }

// WriteDAC writes the DAC register with the write-DAC-register command (the
// 3-byte form: same effect as a fast write, kept for parity with the
// datasheet and for chips on buses that dislike 2-byte writes).
func (d *Dev) WriteDAC(code uint16, mode PowerDown) error {
	return d.write("write DAC", cmdWriteDAC, code, mode)
}

// WriteDACEEPROM writes the DAC register and the EEPROM, making code and
// mode the power-on state. The EEPROM write takes up to 50 ms, during which
// Read reports not ready; it wears the EEPROM, so do not call it per query.
func (d *Dev) WriteDACEEPROM(code uint16, mode PowerDown) error {
	return d.write("write DAC+EEPROM", cmdWriteDACEEPROM, code, mode)
}

func (d *Dev) check(op string, code uint16, mode PowerDown) error {
	if code > d.maxCode {
		return fmt.Errorf("%s: %s: code %d outside [0, %d]", d, op, code, d.maxCode)
	}
	if mode > PowerDown500k {
		return fmt.Errorf("%s: %s: invalid power-down mode %d", d, op, mode)
	}
	return nil
}

// fast sends the fast-mode write (figure 6-1): 0 0 PD1 PD0 D11..D8, D7..D0.
func (d *Dev) fast(op string, code uint16, mode PowerDown) error {
	if err := d.check(op, code, mode); err != nil {
		return err
	}
	w := [2]byte{byte(mode)<<4 | byte(code>>8), byte(code)}
	return d.tx(op, w[:], nil)
}

// write sends a 3-byte write (figure 6-2): C2 C1 C0 x x PD1 PD0 x,
// D11..D4, D3..D0 x x x x.
func (d *Dev) write(op string, cmd byte, code uint16, mode PowerDown) error {
	if err := d.check(op, code, mode); err != nil {
		return err
	}
	w := [3]byte{cmd | byte(mode)<<1, byte(code >> 4), byte(code << 4)}
	return d.tx(op, w[:], nil)
}

func (d *Dev) tx(op string, w, r []byte) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.c.Tx(w, r); err != nil {
		return fmt.Errorf("%s: %s: %w", d, op, err)
	}
	return nil
}

// State is what the chip reports on a read.
type State struct {
	Ready      bool      // RDY/BSY: false while an EEPROM write is in progress
	PowerOnRst bool      // POR bit: set once the supply is above the reset threshold
	Mode       PowerDown // DAC register power-down bits
	Code       uint16    // DAC register
	EEPROMMode PowerDown // power-on mode stored in EEPROM
	EEPROMCode uint16    // power-on code stored in EEPROM
}

// Read reads back the DAC register and EEPROM (5 bytes, figure 6-3).
func (d *Dev) Read() (State, error) {
	var r [5]byte
	if err := d.tx("read", nil, r[:]); err != nil {
		return State{}, err
	}
	s, err := ParseState(r[:])
	if err != nil {
		return s, fmt.Errorf("%s: read: %w", d, err)
	}
	return s, nil
}

// ParseState decodes the 5 bytes of a read:
//
//	RDY POR x x x PD1 PD0 x | D11..D4 | D3..D0 x x x x | x PD1 PD0 x D11..D8 | D7..D0
//
// The bits marked x are ignored.
func ParseState(b []byte) (State, error) {
	if len(b) != 5 {
		return State{}, fmt.Errorf("read-back of %d bytes, want 5", len(b))
	}
	return State{
		Ready:      b[0]&0x80 != 0,
		PowerOnRst: b[0]&0x40 != 0,
		Mode:       PowerDown(b[0] >> 1 & 3),
		Code:       uint16(b[1])<<4 | uint16(b[2]>>4),
		EEPROMMode: PowerDown(b[3] >> 5 & 3),
		EEPROMCode: uint16(b[3]&0x0F)<<8 | uint16(b[4]),
	}, nil
}

// Name, Number and Function complete pin.Pin so a Dev is an analog.PinDAC.
func (d *Dev) Name() string     { return d.String() }
func (d *Dev) Number() int      { return 0 }
func (d *Dev) Function() string { return string(analog.DAC) }

var _ analog.PinDAC = (*Dev)(nil)
