package ads1115

import (
	"testing"

	"periph.io/x/conn/v3/i2c/i2ctest"
)

// The ADDR pin selects 0x48–0x4B: New accepts exactly those four.
func TestAddressRange(t *testing.T) {
	b := &i2ctest.Playback{DontPanic: true}
	for addr := uint16(0x40); addr <= 0x50; addr++ {
		_, err := New(b, &Opts{Addr: addr})
		if ok := addr >= 0x48 && addr <= 0x4B; ok != (err == nil) {
			t.Errorf("address %#x: %v", addr, err)
		}
	}
}
