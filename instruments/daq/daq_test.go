package daq

import (
	"context"
	"fmt"
	"math"
	"strings"
	"sync/atomic"
	"testing"

	"periph.io/x/conn/v3/i2c/i2creg"
	"periph.io/x/conn/v3/physic"

	"github.com/insitu-lab/insitu/drivers/i2c/i2cemu"
)

var busN atomic.Int64

// emulated registers an i2cemu bus under a fresh name.
func emulated(t testing.TB, resp i2cemu.Response) (*i2cemu.Bus, string) {
	t.Helper()
	b := i2cemu.New(&i2cemu.Opts{Response: resp})
	name := fmt.Sprintf("EMU-daq-%d", busN.Add(1))
	if err := b.Register(name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { i2creg.Unregister(name) })
	return b, name
}

func config(bus string) Config {
	return Config{
		Bus: bus, VDD: 5,
		Outputs: []Output{
			{Name: "w0", Chip: "mcp4728", Channel: 0, Ref: "internal", Min: 0, Max: 2},
			{Name: "w1", Chip: "mcp4728", Channel: 1, Min: 0, Max: 4},
		},
		Inputs: []Input{
			{Name: "y0", Input: "ain0", FullScale: 4.096},
			{Name: "y1", Input: "ain1", FullScale: 4.096},
		},
		Average: 2,
	}
}

func TestEndToEnd(t *testing.T) {
	// The "network": AIN0 = DAC A / 2, AIN1 = DAC A + DAC B / 4.
	emu, bus := emulated(t, func(d [4]physic.ElectricPotential) [4]physic.ElectricPotential {
		return [4]physic.ElectricPotential{d[0] / 2, d[0] + d[1]/4}
	})
	ctx := context.Background()
	d, err := Open(ctx, config(bus))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Set(ctx, []float64{1.5, 2}); err != nil {
		t.Fatal(err)
	}
	got, err := d.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// 4.096 V full scale: one LSB is 125 µV; the DAC steps are 0.5 mV
	// (internal) and 1.22 mV (VDD).
	want := []float64{0.75, 2}
	for i := range want {
		if math.Abs(got[i]-want[i]) > 2e-3 {
			t.Errorf("input %d = %v V, want %v", i, got[i], want[i])
		}
	}
	// Range errors never reach the bus.
	n := emu.Transactions()
	for _, bad := range [][]float64{{2.1, 0}, {1, -0.1}, {math.NaN(), 0}, {1}} {
		if err := d.Set(ctx, bad); err == nil {
			t.Errorf("Set(%v) accepted", bad)
		}
	}
	if emu.Transactions() != n {
		t.Errorf("refused values reached the bus: %d transactions", emu.Transactions()-n)
	}
	if err := d.SafeState(ctx); err != nil {
		t.Fatal(err)
	}
	if out := emu.Outputs(); out != [4]physic.ElectricPotential{} {
		t.Errorf("outputs after safe state: %v", out)
	}
}

func TestConfigErrors(t *testing.T) {
	_, bus := emulated(t, nil)
	mut := []func(*Config){
		func(c *Config) { c.Outputs[0].Max = 2.1 }, // internal ref ×1 tops out at 2.0475 V
		func(c *Config) { c.Outputs[1].Name = "w0" },
		func(c *Config) { c.Outputs[0].Chip = "ad5686" },
		func(c *Config) { c.Outputs[0].Channel = 4 },
		func(c *Config) { c.Inputs[0].FullScale = 3 },
		func(c *Config) { c.Inputs[0].Input = "ain7" },
		func(c *Config) { c.VDD = 0 },
		func(c *Config) { c.Bus = "no-such-bus" },
		func(c *Config) { c.Outputs[1].Channel = 0 },
		func(c *Config) { c.Outputs[1].Chip = "mcp4725"; c.Outputs[1].Channel = 0; c.Outputs[1].Ref = "" },
	}
	for i, m := range mut {
		c := config(bus)
		m(&c)
		if _, err := Open(context.Background(), c); err == nil {
			t.Errorf("mutation %d accepted", i)
		}
	}
}

func BenchmarkSetRead(b *testing.B) {
	_, bus := emulated(b, nil)
	c := config(bus)
	c.Average = 1
	d, err := Open(context.Background(), c)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for b.Loop() {
		if err := d.Set(ctx, []float64{1, 1}); err != nil {
			b.Fatal(err)
		}
		if _, err := d.Read(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

func TestCheckIsNewWithoutTheBus(t *testing.T) {
	emu, bus := emulated(t, nil)
	if err := Check(config(bus)); err != nil {
		t.Fatal(err)
	}
	unopened := config("no-such-bus")
	if err := Check(unopened); err != nil {
		t.Errorf("Check looked for the bus: %v", err)
	}
	mut := []func(*Config){
		func(c *Config) { c.Outputs[0].Max = 2.1 },
		func(c *Config) { c.Outputs[1].Name = "w0" },
		func(c *Config) { c.Outputs[0].Chip = "ad5686" },
		func(c *Config) { c.Outputs[0].Channel = 4 },
		func(c *Config) { c.Inputs[0].FullScale = 3 },
		func(c *Config) { c.Inputs[0].Input = "ain7" },
		func(c *Config) { c.Inputs[0].Rate = 100 },
		func(c *Config) { c.VDD = 0 },
		func(c *Config) { c.Average = -1 },
		func(c *Config) { c.Outputs[1].Channel = 0 },
		func(c *Config) { c.Outputs[1].Chip = "mcp4725"; c.Outputs[1].Channel = 0; c.Outputs[1].Ref = "" },
	}
	for i, m := range mut {
		c := config(bus)
		m(&c)
		checked := Check(c)
		_, opened := Open(context.Background(), c)
		if checked == nil || opened == nil {
			t.Errorf("mutation %d: Check %v, Open %v; want both to refuse", i, checked, opened)
			continue
		}
		// The same error but for the bus's name: Open's bus is the emulator.
		if got := strings.ReplaceAll(checked.Error(), bus, emu.String()); got != opened.Error() {
			t.Errorf("mutation %d: Check says\n%s\nOpen says\n%s", i, got, opened)
		}
	}
	if n := emu.Transactions(); n != 0 {
		t.Errorf("%d bus transactions", n)
	}
	c := config(bus)
	if got, want := fmt.Sprint(c.OutputNames(), c.InputNames()), "[w0 w1] [y0 y1]"; got != want {
		t.Errorf("names %s, want %s", got, want)
	}
	if lo, hi := c.Range(); fmt.Sprint(lo, hi) != "[0 0] [2 4]" {
		t.Errorf("range %v %v", lo, hi)
	}
}
