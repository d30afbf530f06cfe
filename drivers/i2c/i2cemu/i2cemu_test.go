package i2cemu_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/i2c/i2creg"
	"periph.io/x/conn/v3/i2c/i2ctest"
	"periph.io/x/conn/v3/physic"

	"github.com/insitu-lab/insitu/drivers/i2c/ads1115"
	"github.com/insitu-lab/insitu/drivers/i2c/i2cemu"
	"github.com/insitu-lab/insitu/drivers/i2c/mcp4728"
)

const mV = physic.MilliVolt

func abs(v physic.ElectricPotential) physic.ElectricPotential { return max(v, -v) }

func dacOpts() *mcp4728.Opts {
	return &mcp4728.Opts{VDD: 5 * physic.Volt, Channel: [4]mcp4728.Config{
		{Ref: mcp4728.RefInternal},
		{Ref: mcp4728.RefInternal, Gain2: true},
		{Ref: mcp4728.RefVDD},
		{Ref: mcp4728.RefVDD},
	}}
}

// The real drivers against the emulated chips: what the DAC driver sets is
// what the emulator outputs, what the DAC reads back, and (through the
// loopback wiring) what the ADC driver measures.
func TestDriversAgree(t *testing.T) {
	bus := i2cemu.New(nil)
	dac, err := mcp4728.New(bus, dacOpts())
	if err != nil {
		t.Fatal(err)
	}
	adc, err := ads1115.New(bus, nil)
	if err != nil {
		t.Fatal(err)
	}
	set := [4]physic.ElectricPotential{1234 * mV, 3210 * mV, 4000 * mV, 0}
	if err := dac.SetAll(set); err != nil {
		t.Fatal(err)
	}
	out := bus.Outputs()
	st, err := dac.Read()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for ch := range 4 {
		_, hi := dac.Range(ch)
		lsb := hi.V / physic.ElectricPotential(hi.Raw)
		if abs(out[ch]-set[ch]) > lsb/2+1 {
			t.Errorf("channel %d: emulator outputs %s for %s", ch, out[ch], set[ch])
		}
		if got := dac.Volts(ch, st[ch].Input.Code); got != out[ch] {
			t.Errorf("channel %d: read-back code %d = %s, emulator %s", ch, st[ch].Input.Code, got, out[ch])
		}
		if st[ch].Input.Config != dacOpts().Channel[ch] {
			t.Errorf("channel %d: read-back config %+v", ch, st[ch].Input.Config)
		}
		pin, err := adc.Open([]ads1115.Channel{ads1115.AIN0, ads1115.AIN1, ads1115.AIN2, ads1115.AIN3}[ch], 6144*mV, 860)
		if err != nil {
			t.Fatal(err)
		}
		v, err := pin.Volts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if abs(v-out[ch]) > 188*physic.MicroVolt { // one LSB at ±6.144 V
			t.Errorf("AIN%d reads %s, DAC outputs %s", ch, v, out[ch])
		}
	}

	// Halt: every channel at 0 V, and the ADC sees it.
	if err := dac.Halt(); err != nil {
		t.Fatal(err)
	}
	if out := bus.Outputs(); out != [4]physic.ElectricPotential{} {
		t.Errorf("after Halt outputs %v", out)
	}
	pin, _ := adc.Open(ads1115.AIN1, 256*mV, 860)
	if v, err := pin.Volts(ctx); err != nil || v != 0 {
		t.Errorf("after Halt AIN1 = %s, %v", v, err)
	}
}

// A pluggable response: a differential pair driven by a nonlinear "circuit".
func TestResponseDifferential(t *testing.T) {
	bus := i2cemu.New(&i2cemu.Opts{
		DACAddr: 0x61, ADCAddr: 0x4A,
		Response: func(d [4]physic.ElectricPotential) [4]physic.ElectricPotential {
			return [4]physic.ElectricPotential{d[0], d[0] / 2, d[0] * d[0] / physic.Volt, 100 * mV}
		},
	})
	dac, _ := mcp4728.New(bus, &mcp4728.Opts{Addr: 0x61, VDD: 5 * physic.Volt, Channel: [4]mcp4728.Config{{Ref: mcp4728.RefInternal}}})
	adc, _ := ads1115.New(bus, &ads1115.Opts{Addr: 0x4A})
	if err := dac.Set(0, 2000*mV); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, tc := range []struct {
		ch   ads1115.Channel
		fs   physic.ElectricPotential
		want physic.ElectricPotential
	}{
		{ads1115.Diff01, 2048 * mV, 1000 * mV},                 // 2 − 1
		{ads1115.Diff23, 4096 * mV, 3900 * mV},                 // 4 − 0.1
		{ads1115.Diff03, 1024 * mV, 1024 * mV * 32767 / 32768}, // 1.9 V saturates at code 32767
		{ads1115.Diff13, 256 * mV, 256 * mV * 32767 / 32768},
	} {
		p, err := adc.Open(tc.ch, tc.fs, 475)
		if err != nil {
			t.Fatal(err)
		}
		v, err := p.Volts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if lsb := tc.fs / 32768; abs(v-tc.want) > lsb {
			t.Errorf("%v at ±%s: %s, want %s", tc.ch, tc.fs, v, tc.want)
		}
	}
}

// Registered with periph's registry, the bus opens by name like /dev/i2c-1.
func TestRegistry(t *testing.T) {
	bus := i2cemu.New(nil)
	const name = "insitu-emu-test"
	if err := bus.Register(name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = i2creg.Unregister(name) })
	b, err := i2creg.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	dac, _ := mcp4728.New(b, dacOpts())
	if err := dac.Set(2, 2500*mV); err != nil {
		t.Fatal(err)
	}
	if out := bus.Outputs(); out[2] != 2500*mV {
		t.Errorf("output C = %s via the registry", out[2])
	}
	if err := bus.Register(name); err == nil {
		t.Error("registered twice")
	}
}

// Record the ADS1115 driver's session against the emulator, check it is the
// datasheet sequence, then replay it through Playback with the same result.
func TestRecordReplay(t *testing.T) {
	bus := i2cemu.New(nil)
	dac, _ := mcp4728.New(bus, dacOpts())
	if err := dac.Set(3, 1*physic.Volt); err != nil { // VDD 5 V: 819.2 codes → 819
		t.Fatal(err)
	}
	rec := &i2ctest.Record{Bus: bus}
	read := func(b i2c.Bus) physic.ElectricPotential {
		adc, _ := ads1115.New(b, nil)
		p, err := adc.Open(ads1115.AIN3, 2048*mV, 860)
		if err != nil {
			t.Fatal(err)
		}
		v, err := p.Volts(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	v1 := read(rec)
	// MUX=111 (AIN3), PGA=010 (±2.048 V), single-shot, DR=111, COMP_QUE=11:
	// 0x8000|0x7000|0x0400|0x0100|0x00E0|0x0003 = 0xF5E3.
	if len(rec.Ops) != 2 || string(rec.Ops[0].W) != "\x01\xF5\xE3" || string(rec.Ops[1].W) != "\x00" {
		t.Fatalf("recorded %+v", rec.Ops)
	}
	pb := &i2ctest.Playback{Ops: rec.Ops, DontPanic: true}
	if v2 := read(pb); v2 != v1 || abs(v1-819*5*physic.Volt/4096) > 63*physic.MicroVolt {
		t.Errorf("record %s, replay %s", v1, v2)
	}
	if err := pb.Close(); err != nil {
		t.Error(err)
	}
}

func TestFaultsAndNAK(t *testing.T) {
	boom := errors.New("injected")
	fail := false
	bus := i2cemu.New(&i2cemu.Opts{Fault: func(addr uint16, w []byte, nr int) error {
		if fail {
			return boom
		}
		return nil
	}})
	dac, _ := mcp4728.New(bus, dacOpts())
	fail = true
	err := dac.Set(0, mV)
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "MCP4728(i2cemu@0x60): multi-write") {
		t.Errorf("fault: %v", err)
	}
	fail = false
	if err := bus.Tx(0x50, []byte{0}, nil); !errors.Is(err, i2cemu.ErrNAK) {
		t.Errorf("absent address: %v", err)
	}
	if err := bus.Tx(0x60, []byte{0xE0}, nil); !errors.Is(err, i2cemu.ErrNAK) {
		t.Errorf("unknown command: %v", err)
	}
}

// Commands the driver does not use, checked against the datasheet layout.
func TestDACCommands(t *testing.T) {
	bus := i2cemu.New(&i2cemu.Opts{VDD: 5 * physic.Volt})
	tx := func(w ...byte) {
		t.Helper()
		if err := bus.Tx(0x60, w, nil); err != nil {
			t.Fatal(err)
		}
	}
	tx(0x08, 0x00, 0x04, 0x00, 0x02, 0x00, 0x01, 0x00) // fast write A..D = 2048, 1024, 512, 256
	tx(0x8C)                                           // VREF: A, B internal (1100)
	tx(0xC4)                                           // gain: B ×2 (0100)
	want := [4]physic.ElectricPotential{1024 * mV, 1024 * mV, 625 * mV, 3125 * mV / 10}
	if out := bus.Outputs(); out != want {
		t.Errorf("outputs %v, want %v", out, want)
	}
	tx(0xA0|0x01, 0x00) // power down B (1 kΩ)
	if out := bus.Outputs(); out[1] != 0 || out[0] != 1024*mV {
		t.Errorf("after power-down B: %v", out)
	}
	tx(0x54, 0x0F, 0xFF, 0x00, 0x01) // sequential write from C: C = 4095, D = 1 (VDD)
	if out := bus.Outputs(); out[2] != 5*physic.Volt*4095/4096 || out[3] != 5*physic.Volt/4096 {
		t.Errorf("after sequential write: %v", out)
	}
	r := make([]byte, 24)
	if err := bus.Tx(0x60, nil, r); err != nil {
		t.Fatal(err)
	}
	st, err := mcp4728.ParseRead(r)
	if err != nil {
		t.Fatal(err)
	}
	if st[2].EEPROM.Code != 4095 || st[3].EEPROM.Code != 1 || st[0].EEPROM.Code != 0 || !st[1].Input.Gain2 {
		t.Errorf("read-back %+v", st)
	}
}

func TestADCContinuous(t *testing.T) {
	bus := i2cemu.New(nil)
	// Continuous mode (MODE=0), AIN0, ±4.096 V: 0x4283 (OS=0).
	if err := bus.Tx(0x48, []byte{0x01, 0x42, 0x83}, nil); err != nil {
		t.Fatal(err)
	}
	r := make([]byte, 2)
	dac, _ := mcp4728.New(bus, dacOpts())
	for _, v := range []physic.ElectricPotential{500 * mV, 1500 * mV} {
		if err := dac.Set(0, v); err != nil {
			t.Fatal(err)
		}
		if err := bus.Tx(0x48, []byte{0x00}, r); err != nil {
			t.Fatal(err)
		}
		code := int16(r[0])<<8 | int16(r[1])
		if want := int16(v * 8 / mV); code != want { // 8 codes per mV at ±4.096 V
			t.Errorf("%s: code %d, want %d", v, code, want)
		}
	}
}

func BenchmarkDACSet(b *testing.B) {
	bus := i2cemu.New(nil)
	dac, _ := mcp4728.New(bus, dacOpts())
	i := 0
	for b.Loop() {
		i++
		if err := dac.Set(0, physic.ElectricPotential(i%2000)*mV); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDACSetAll(b *testing.B) {
	bus := i2cemu.New(nil)
	dac, _ := mcp4728.New(bus, dacOpts())
	v := [4]physic.ElectricPotential{1 * physic.Volt, 2 * physic.Volt, 3 * physic.Volt, 4 * physic.Volt}
	for b.Loop() {
		if err := dac.SetAll(v); err != nil {
			b.Fatal(err)
		}
	}
}

// The ADC read is dominated by ads1x15's sleep for one conversion period
// (1/860 s ≈ 1.16 ms at the fastest rate), not by the emulator.
func BenchmarkADCRead(b *testing.B) {
	bus := i2cemu.New(nil)
	adc, _ := ads1115.New(bus, nil)
	p, _ := adc.Open(ads1115.AIN0, 4096*mV, 860)
	ctx := context.Background()
	for b.Loop() {
		if _, err := p.Read(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// The emulator's own cost for one conversion: config write + result read.
func BenchmarkADCTxOnly(b *testing.B) {
	bus := i2cemu.New(nil)
	r := make([]byte, 2)
	for b.Loop() {
		if err := bus.Tx(0x48, []byte{0x01, 0xC3, 0xE3}, nil); err != nil {
			b.Fatal(err)
		}
		if err := bus.Tx(0x48, []byte{0x00}, r); err != nil {
			b.Fatal(err)
		}
	}
}
