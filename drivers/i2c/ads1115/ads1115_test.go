package ads1115

import (
	"context"
	"errors"
	"testing"
	"time"

	"periph.io/x/conn/v3/i2c/i2ctest"
	"periph.io/x/conn/v3/physic"
)

// Config words from the ADS1115 datasheet (SBAS444, table 8):
// OS=1 (bit 15), MUX (14:12), PGA (11:9), MODE=1 single-shot (bit 8),
// DR (7:5), comparator disabled COMP_QUE=11 (1:0).
func TestReadByteExact(t *testing.T) {
	b := &i2ctest.Playback{DontPanic: true, Ops: []i2ctest.IO{
		// AIN0 vs GND (MUX=100), ±4.096 V (PGA=001), 128 SPS (DR=100):
		// 0x8000|0x4000|0x0200|0x0100|0x0080|0x0003 = 0xC383 to pointer 01.
		{Addr: 0x49, W: []byte{0x01, 0xC3, 0x83}},
		// Conversion register (pointer 00): 0x4000 = 16384 → 2.048 V.
		{Addr: 0x49, W: []byte{0x00}, R: []byte{0x40, 0x00}},
		// AIN2−AIN3 (MUX=011), ±0.256 V (PGA=101), 860 SPS (DR=111):
		// 0x8000|0x3000|0x0A00|0x0100|0x00E0|0x0003 = 0xBBE3.
		{Addr: 0x49, W: []byte{0x01, 0xBB, 0xE3}},
		// 0xC000 = −16384 → −0.128 V.
		{Addr: 0x49, W: []byte{0x00}, R: []byte{0xC0, 0x00}},
	}}
	d, err := New(b, &Opts{Addr: 0x49})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	p, err := d.Open(AIN0, 4096*physic.MilliVolt, 128)
	if err != nil {
		t.Fatal(err)
	}
	if s, err := p.Read(ctx); err != nil || s.Raw != 16384 || s.V != 2048*physic.MilliVolt {
		t.Fatalf("AIN0: %+v, %v", s, err)
	}
	p, err = d.Open(Diff23, 256*physic.MilliVolt, 860)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := p.Volts(ctx); err != nil || v != -128*physic.MilliVolt {
		t.Fatalf("AIN2-3: %v, %v", v, err)
	}
	if err := b.Close(); err != nil {
		t.Error(err)
	}
}

func TestContextAndConfigErrors(t *testing.T) {
	b := &i2ctest.Playback{DontPanic: true} // any Tx fails
	d, err := New(b, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Open(AIN0, 5*physic.Volt, 128); err == nil {
		t.Error("5 V full scale accepted")
	}
	if _, err := d.Open(AIN0, 2048*physic.MilliVolt, 100); err == nil {
		t.Error("100 SPS accepted")
	}
	if _, err := d.Open(Channel(9), 2048*physic.MilliVolt, 8); err == nil {
		t.Error("channel 9 accepted")
	}
	p, err := d.Open(AIN1, 2048*physic.MilliVolt, 8) // 125 ms conversion
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := p.Read(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("short deadline: %v", err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	if _, err := p.Read(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Error("the bus was touched:", err)
	}
	if _, err := New(b, &Opts{Addr: 0x60}); err == nil {
		t.Error("address 0x60 accepted")
	}
}
