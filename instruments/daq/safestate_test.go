package daq

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"periph.io/x/conn/v3/physic"
)

// failingBus accepts every write except those to one address, and records
// the addresses written to.
type failingBus struct {
	fail uint16
	mu   sync.Mutex
	tx   []uint16
}

func (b *failingBus) String() string { return "failing" }
func (b *failingBus) Tx(addr uint16, w, r []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.tx = append(b.tx, addr)
	if addr == b.fail {
		return fmt.Errorf("no ack from %#x", addr)
	}
	clear(r)
	return nil
}
func (b *failingBus) SetSpeed(physic.Frequency) error { return nil }

// SafeState drives every DAC chip to 0 V even when an earlier one fails,
// and reports the failure.
func TestSafeStateTriesEveryChip(t *testing.T) {
	bus := &failingBus{fail: 0x60}
	d, err := New(bus, Config{VDD: 5, Outputs: []Output{
		{Name: "a", Chip: "mcp4728", Addr: 0x60, Channel: 0, Min: 0, Max: 1},
		{Name: "b", Chip: "mcp4728", Addr: 0x61, Channel: 0, Min: 0, Max: 1},
	}})
	if err != nil {
		t.Fatal(err)
	}
	bus.mu.Lock()
	bus.tx = nil
	bus.mu.Unlock()
	err = d.SafeState(context.Background())
	if err == nil || !strings.Contains(err.Error(), "0x60") {
		t.Errorf("SafeState = %v, want the failure of the chip at 0x60", err)
	}
	bus.mu.Lock()
	defer bus.mu.Unlock()
	if !slices.Contains(bus.tx, 0x60) || !slices.Contains(bus.tx, 0x61) {
		t.Errorf("SafeState wrote to %#x, want both chips, 0x60 and 0x61", bus.tx)
	}
}
