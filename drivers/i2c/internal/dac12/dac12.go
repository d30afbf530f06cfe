// Package dac12 converts between volts and 12-bit DAC codes, shared by the
// MCP4725 and MCP4728 drivers.
package dac12

import (
	"fmt"

	"periph.io/x/conn/v3/physic"
)

// MaxCode is the largest 12-bit code.
const MaxCode = 4095

// Code returns the code whose output is nearest to v for a full-scale
// reference ref (Vout = ref·code/4096), rounding half up. It refuses v < 0 and
// any v that rounds above max, which is at most MaxCode.
func Code(v, ref physic.ElectricPotential, max uint16) (uint16, error) {
	if ref <= 0 {
		return 0, fmt.Errorf("reference %s is not positive", ref)
	}
	top := Volts(max, ref)
	// Compare before multiplying so a huge v cannot overflow.
	if v < 0 || v > ref {
		return 0, fmt.Errorf("%s outside [0 V, %s]", v, top)
	}
	code := (int64(v)*4096 + int64(ref)/2) / int64(ref)
	if code > int64(max) {
		return 0, fmt.Errorf("%s outside [0 V, %s]", v, top)
	}
	return uint16(code), nil
}

// Volts is the ideal output of code for reference ref, truncated to 1 nV.
func Volts(code uint16, ref physic.ElectricPotential) physic.ElectricPotential {
	return ref * physic.ElectricPotential(code) / 4096
}

// MaxFor returns the largest code whose ideal output does not exceed limit,
// or MaxCode if limit is 0 or above full scale.
func MaxFor(limit, ref physic.ElectricPotential) uint16 {
	if limit <= 0 || ref <= 0 || limit >= ref {
		return MaxCode
	}
	return uint16(min(int64(limit)*4096/int64(ref), MaxCode))
}
