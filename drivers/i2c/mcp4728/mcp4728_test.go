package mcp4728

import (
	"strings"
	"testing"

	"periph.io/x/conn/v3/i2c/i2ctest"
	"periph.io/x/conn/v3/physic"
)

// Expected bytes are written from the datasheet (DS22187E section 5), not
// from the code.
const addr = 0x60

func playback(ops ...i2ctest.IO) *i2ctest.Playback {
	return &i2ctest.Playback{Ops: ops, DontPanic: true}
}

func done(t *testing.T, b *i2ctest.Playback) {
	t.Helper()
	if err := b.Close(); err != nil {
		t.Error(err)
	}
}

// mixed: A internal ×1, B internal ×2, C VDD (5 V), D internal ×1 in 1 kΩ power-down.
func mixed() *Opts {
	return &Opts{
		VDD: 5 * physic.Volt,
		Channel: [Channels]Config{
			{Ref: RefInternal},
			{Ref: RefInternal, Gain2: true},
			{Ref: RefVDD},
			{Ref: RefInternal, PowerDown: PowerDown1k},
		},
	}
}

func TestMultiWrite(t *testing.T) {
	b := playback(
		// Set(B, 1 V): internal ×2 → 4.096 V full scale, 1 mV/code → 1000 = 0x3E8.
		// 01000 DAC=01 UDAC=0 = 0x42; VREF=1 PD=00 G=1 D11..D8=3 → 0x93; 0xE8.
		i2ctest.IO{Addr: addr, W: []byte{0x42, 0x93, 0xE8}},
		// SetAll(0.5 mV·…): A 1.024 V ×1 → 2048 = 0x800: 0x40, 0x88, 0x00.
		// B 2.048 V ×2 → 2048: 0x42, 0x98, 0x00. C 2.5 V of 5 V → 2048: 0x44, 0x08, 0x00.
		// D 0 V, PD=01: 0x46, 1 01 0 0000 = 0xA0, 0x00.
		i2ctest.IO{Addr: addr, W: []byte{
			0x40, 0x88, 0x00,
			0x42, 0x98, 0x00,
			0x44, 0x08, 0x00,
			0x46, 0xA0, 0x00,
		}},
		// Single write (EEPROM) C, code 0xFFF: 01011 10 0 = 0x5C, 0x0F, 0xFF.
		i2ctest.IO{Addr: addr, W: []byte{0x5C, 0x0F, 0xFF}},
		// Power-down select A=00 B=01 C=10 D=11: 101x 00 01 = 0xA1; 10 11 0000 = 0xB0.
		i2ctest.IO{Addr: addr, W: []byte{0xA1, 0xB0}},
		// After that, writes to B carry its new PD bits: VREF=1 PD=01 G=1 → 0xB0, code 5.
		i2ctest.IO{Addr: addr, W: []byte{0x42, 0xB0, 0x05}},
		// Halt: fast write, zero code and PD for A..D.
		i2ctest.IO{Addr: addr, W: make([]byte, 8)},
	)
	d, err := New(b, mixed())
	if err != nil {
		t.Fatal(err)
	}
	steps := []func() error{
		func() error { return d.Set(1, physic.Volt) },
		func() error {
			return d.SetAll([Channels]physic.ElectricPotential{1024 * physic.MilliVolt, 2048 * physic.MilliVolt, 2500 * physic.MilliVolt, 0})
		},
		func() error { return d.WriteEEPROM(2, 0xFFF) },
		func() error {
			return d.SetPowerDown([Channels]PowerDown{Normal, PowerDown1k, PowerDown100k, PowerDown500k})
		},
		func() error { return d.SetCodes(map[int]uint16{1: 5}) },
		d.Halt,
	}
	for i, f := range steps {
		if err := f(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	done(t, b)
}

func TestRangeRefusedBeforeBus(t *testing.T) {
	b := playback() // any Tx fails
	o := mixed()
	o.VDD = 3300 * physic.MilliVolt // B (2×2.048 V) clips at VDD
	o.Max[0] = physic.Volt
	d, err := New(b, o)
	if err != nil {
		t.Fatal(err)
	}
	for name, f := range map[string]func() error{
		"A above ceiling": func() error { return d.Set(0, 1001*physic.MilliVolt) },
		"B above VDD":     func() error { return d.Set(1, 3301*physic.MilliVolt) },
		"negative":        func() error { return d.Set(2, -1) },
		"bad channel":     func() error { return d.Set(4, 0) },
		"all, one bad": func() error {
			return d.SetAll([Channels]physic.ElectricPotential{0, 0, 0, 2049 * physic.MilliVolt})
		},
		"code":          func() error { return d.SetCodes(map[int]uint16{2: 4096}) },
		"codes channel": func() error { return d.SetCodes(map[int]uint16{5: 1}) },
		"eeprom":        func() error { return d.WriteEEPROM(0, 2001) },
		"pd":            func() error { return d.SetPowerDown([Channels]PowerDown{4}) },
	} {
		if err := f(); err == nil || strings.Contains(err.Error(), "i2ctest") {
			t.Errorf("%s: err = %v, want a range error before the bus", name, err)
		}
	}
	done(t, b)
	if _, hi := d.Range(1); hi.V > 3300*physic.MilliVolt || hi.Raw != 3300 {
		t.Errorf("B range top %+v, want 3300 codes (3.3 V)", hi)
	}
}

func TestReadBack(t *testing.T) {
	// A: ready, POR, addr 000; input VREF=1 PD=00 G=0 0x123; EEPROM VDD PD=00 0.
	// B: input VREF=1 G=1 0xFFF; EEPROM same.  C: input PD=10 code 0x800.
	// D: busy (RDY=0), input 0; EEPROM PD=11.
	r := []byte{
		0xC0, 0x81, 0x23, 0xC0, 0x00, 0x00,
		0xD0, 0x9F, 0xFF, 0xD0, 0x9F, 0xFF,
		0xE0, 0x48, 0x00, 0xE0, 0x00, 0x00,
		0x70, 0x00, 0x00, 0x70, 0x60, 0x00,
	}
	b := playback(i2ctest.IO{Addr: addr, R: r})
	d, _ := New(b, mixed())
	s, err := d.Read()
	if err != nil {
		t.Fatal(err)
	}
	want := [Channels]State{
		{Ready: true, PowerOnRst: true, Input: Register{Config{Ref: RefInternal}, 0x123}},
		{Ready: true, PowerOnRst: true, Input: Register{Config{Ref: RefInternal, Gain2: true}, 0xFFF}, EEPROM: Register{Config{Ref: RefInternal, Gain2: true}, 0xFFF}},
		{Ready: true, PowerOnRst: true, Input: Register{Config{PowerDown: PowerDown100k}, 0x800}},
		{Ready: false, PowerOnRst: true, EEPROM: Register{Config{PowerDown: PowerDown500k}, 0}},
	}
	if s != want {
		t.Errorf("got  %+v\nwant %+v", s, want)
	}
	done(t, b)

	r[6] = 0xC0 // channel B frame claiming to be A
	if _, err := ParseRead(r); err == nil {
		t.Error("misaligned read accepted")
	}
}

func FuzzParseRead(f *testing.F) {
	f.Add(make([]byte, 24))
	f.Add([]byte{
		0xC0, 0x81, 0x23, 0xC0, 0x00, 0x00, 0xD0, 0x9F, 0xFF, 0xD0, 0x9F, 0xFF,
		0xE0, 0x48, 0x00, 0xE0, 0x00, 0x00, 0x70, 0x00, 0x00, 0x70, 0x60, 0x00,
	})
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseRead(b)
		if err != nil {
			return
		}
		for ch, c := range s {
			if c.Input.Code > 4095 || c.EEPROM.Code > 4095 || c.Addr > 7 || c.Input.PowerDown > 3 {
				t.Fatalf("channel %d out of range: %+v", ch, c)
			}
			if byte(c.Input.Code) != b[6*ch+2] {
				t.Fatalf("channel %d code %#x from % x", ch, c.Input.Code, b)
			}
		}
	})
}
