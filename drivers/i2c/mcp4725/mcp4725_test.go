package mcp4725

import (
	"strings"
	"testing"

	"periph.io/x/conn/v3/i2c/i2ctest"
	"periph.io/x/conn/v3/physic"
)

// The expected transactions below are written from the datasheet (DS22039D
// figures 6-1, 6-2, 6-3), not from the code.
const addr = 0x60

func playback(ops ...i2ctest.IO) *i2ctest.Playback {
	return &i2ctest.Playback{Ops: ops, DontPanic: true}
}

func newDev(t *testing.T, b *i2ctest.Playback, o Opts) *Dev {
	t.Helper()
	if o.Vref == 0 {
		o.Vref = 4096 * physic.MilliVolt // 1 mV per code: easy arithmetic
	}
	d, err := New(b, &o)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func done(t *testing.T, b *i2ctest.Playback) {
	t.Helper()
	if err := b.Close(); err != nil {
		t.Error(err)
	}
}

func TestWrites(t *testing.T) {
	b := playback(
		// Fast write 0xABC, normal: 0 0 PD1 PD0 D11..D8 = 0x0A, D7..D0 = 0xBC.
		i2ctest.IO{Addr: addr, W: []byte{0x0A, 0xBC}},
		// Set(1.5 V) at Vref 4.096 V → code 1500 = 0x5DC.
		i2ctest.IO{Addr: addr, W: []byte{0x05, 0xDC}},
		// Set(1.0005 V) → 1000.5 codes, rounds half up to 1001 = 0x3E9.
		i2ctest.IO{Addr: addr, W: []byte{0x03, 0xE9}},
		// Write DAC register 0xABC, PD=11: 010 x x 1 1 x = 0x46, 0xAB, 0xC0.
		i2ctest.IO{Addr: addr, W: []byte{0x46, 0xAB, 0xC0}},
		// Write DAC register + EEPROM 0x123 normal: 0x60, 0x12, 0x30.
		i2ctest.IO{Addr: addr, W: []byte{0x60, 0x12, 0x30}},
		// Power down 100 kΩ at code 0: 0x20, 0x00.
		i2ctest.IO{Addr: addr, W: []byte{0x20, 0x00}},
		// Out(4095).
		i2ctest.IO{Addr: addr, W: []byte{0x0F, 0xFF}},
	)
	d := newDev(t, b, Opts{})
	steps := []func() error{
		func() error { return d.SetCode(0xABC) },
		func() error { return d.Set(1500 * physic.MilliVolt) },
		func() error { return d.Set(1000*physic.MilliVolt + 500*physic.MicroVolt) },
		func() error { return d.WriteDAC(0xABC, PowerDown500k) },
		func() error { return d.WriteDACEEPROM(0x123, Normal) },
		func() error { return d.PowerDown(PowerDown100k) },
		func() error { return d.Out(4095) },
	}
	for i, f := range steps {
		if err := f(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	done(t, b)
}

// Range errors never reach the bus: an empty Playback fails on any Tx.
func TestRangeRefusedBeforeBus(t *testing.T) {
	b := playback()
	d := newDev(t, b, Opts{Max: 2 * physic.Volt}) // ceiling: code 2000
	for name, f := range map[string]func() error{
		"negative":      func() error { return d.Set(-physic.MilliVolt) },
		"above ceiling": func() error { return d.Set(2001 * physic.MilliVolt) },
		"huge":          func() error { return d.Set(physic.MegaVolt) },
		"code":          func() error { return d.SetCode(2001) },
		"out":           func() error { return d.Out(-1) },
		"out high":      func() error { return d.Out(4096) },
		"write":         func() error { return d.WriteDAC(4096, Normal) },
		"mode":          func() error { return d.WriteDAC(0, 4) },
	} {
		if err := f(); err == nil || !strings.Contains(err.Error(), "MCP4725(playback@0x60)") {
			t.Errorf("%s: err = %v, want a range error naming the device", name, err)
		}
	}
	done(t, b)
	if _, hi := d.Range(); hi.Raw != 2000 || hi.V != 2*physic.Volt {
		t.Errorf("Range high = %+v", hi)
	}
	// At full range the top is code 4095: Vref·4095/4096, and Vref itself is refused.
	d = newDev(t, b, Opts{})
	if err := d.Set(4096 * physic.MilliVolt); err == nil || !strings.Contains(err.Error(), "outside") {
		t.Errorf("Set(Vref): %v, want a range error", err)
	}
}

func TestHalt(t *testing.T) {
	for _, tc := range []struct {
		mode PowerDown
		w    []byte
	}{
		{Normal, []byte{0x00, 0x00}},
		{PowerDown1k, []byte{0x10, 0x00}},
		{PowerDown500k, []byte{0x30, 0x00}},
	} {
		b := playback(i2ctest.IO{Addr: 0x63, W: tc.w})
		d := newDev(t, b, Opts{Addr: 0x63, HaltMode: tc.mode})
		if err := d.Halt(); err != nil {
			t.Fatal(err)
		}
		done(t, b)
	}
}

func TestReadBack(t *testing.T) {
	// Ready, POR, DAC register PD=01 code 0xABC; EEPROM PD=10 code 0x123.
	// Byte 0: 1 1 x x x 0 1 x = 0xC2; bytes 1-2: 0xAB, 0xC0;
	// byte 3: x 1 0 x 0001 = 0x41; byte 4: 0x23.
	b := playback(i2ctest.IO{Addr: addr, R: []byte{0xC2, 0xAB, 0xC0, 0x41, 0x23}})
	d := newDev(t, b, Opts{})
	s, err := d.Read()
	if err != nil {
		t.Fatal(err)
	}
	want := State{Ready: true, PowerOnRst: true, Mode: PowerDown1k, Code: 0xABC, EEPROMMode: PowerDown100k, EEPROMCode: 0x123}
	if s != want {
		t.Errorf("got %+v, want %+v", s, want)
	}
	done(t, b)
}

func TestBusErrorNamesCommand(t *testing.T) {
	b := playback(i2ctest.IO{Addr: addr, W: []byte{0x00, 0x01}}) // expects code 1, gets 2
	d := newDev(t, b, Opts{})
	err := d.SetCode(2)
	if err == nil || !strings.Contains(err.Error(), "set code") || !strings.Contains(err.Error(), "0x60") {
		t.Errorf("err = %v", err)
	}
}

func TestNew(t *testing.T) {
	if _, err := New(playback(), &Opts{}); err == nil {
		t.Error("missing Vref accepted")
	}
	if _, err := New(playback(), &Opts{Vref: physic.Volt, Addr: 0x48}); err == nil {
		t.Error("address 0x48 accepted")
	}
}

func FuzzParseState(f *testing.F) {
	f.Add([]byte{0xC2, 0xAB, 0xC0, 0x41, 0x23})
	f.Add([]byte{0xFF, 0xFF, 0xFF, 0xFF, 0xFF})
	f.Add([]byte{1, 2})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseState(b)
		if err != nil {
			return
		}
		if s.Code > 4095 || s.EEPROMCode > 4095 || s.Mode > 3 || s.EEPROMMode > 3 {
			t.Fatalf("out of range: %+v", s)
		}
		// The bits that matter round-trip.
		if uint16(b[1])<<4|uint16(b[2]>>4) != s.Code || b[4] != byte(s.EEPROMCode) {
			t.Fatalf("%x → %+v", b, s)
		}
	})
}
