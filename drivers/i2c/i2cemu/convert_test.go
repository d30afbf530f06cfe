package i2cemu

import (
	"testing"

	"periph.io/x/conn/v3/physic"
)

// convert rounds to the nearest code with halves away from zero on both
// sides of 0 V, and saturates at the ends of the 16-bit range.
func TestConvertRoundsHalvesAwayFromZero(t *testing.T) {
	const lsb = 62500 * physic.NanoVolt // ±2.048 V over 32768 codes
	for _, tc := range []struct {
		v    physic.ElectricPotential
		code int16
	}{
		{0, 0},
		{lsb / 2, 1},
		{lsb/2 - 1, 0},
		{-lsb / 2, -1},
		{-lsb/2 + 1, 0},
		{3 * lsb / 2, 2},
		{-3 * lsb / 2, -2},
		{-3*lsb/2 + 1, -1},
		{100 * lsb, 100},
		{-100 * lsb, -100},
		{5 * physic.Volt, 32767},
		{-5 * physic.Volt, -32768},
	} {
		a := &ads1115{config: 4<<12 | 2<<9} // AIN0 single-ended, ±2.048 V
		a.convert([4]physic.ElectricPotential{tc.v})
		if got := int16(a.conv); got != tc.code {
			t.Errorf("%v: code %d, want %d", tc.v, got, tc.code)
		}
	}
}
