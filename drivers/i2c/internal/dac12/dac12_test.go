package dac12

import (
	"testing"

	"periph.io/x/conn/v3/physic"
)

func TestCode(t *testing.T) {
	ref := 4096 * physic.MilliVolt // 1 mV per code
	half := 500 * physic.MicroVolt
	for _, tc := range []struct {
		v    physic.ElectricPotential
		max  uint16
		code uint16
		ok   bool
	}{
		{0, MaxCode, 0, true},
		{half - 1, MaxCode, 0, true},
		{half, MaxCode, 1, true}, // half rounds up
		{1500 * physic.MilliVolt, MaxCode, 1500, true},
		{4095*physic.MilliVolt + half - 1, MaxCode, 4095, true},
		{4095*physic.MilliVolt + half, MaxCode, 0, false}, // would be 4096
		{ref, MaxCode, 0, false},
		{-1, MaxCode, 0, false},
		{physic.GigaVolt, MaxCode, 0, false},
		{2000 * physic.MilliVolt, 2000, 2000, true},
		{2001 * physic.MilliVolt, 2000, 0, false},
	} {
		code, err := Code(tc.v, ref, tc.max)
		if (err == nil) != tc.ok || code != tc.code {
			t.Errorf("Code(%s, max %d) = %d, %v; want %d, ok=%v", tc.v, tc.max, code, err, tc.code, tc.ok)
		}
	}
	if _, err := Code(0, 0, MaxCode); err == nil {
		t.Error("zero reference accepted")
	}
	if got := MaxFor(2*physic.Volt, ref); got != 2000 {
		t.Errorf("MaxFor(2 V) = %d", got)
	}
	if got := MaxFor(0, ref); got != MaxCode {
		t.Errorf("MaxFor(0) = %d", got)
	}
}

func FuzzCode(f *testing.F) {
	f.Add(int64(1e9), int64(2048e6), uint16(4095))
	f.Add(int64(-1), int64(5e9), uint16(10))
	f.Fuzz(func(t *testing.T, v, ref int64, max uint16) {
		max = min(max, MaxCode)
		if ref <= 0 || ref > int64(100*physic.Volt) {
			return
		}
		code, err := Code(physic.ElectricPotential(v), physic.ElectricPotential(ref), max)
		if err != nil {
			return
		}
		if code > max || v < 0 {
			t.Fatalf("Code(%d, %d, %d) = %d", v, ref, max, code)
		}
		// Nearest code: within half an LSB of the request.
		if d := v*4096 - int64(code)*ref; 2*d >= ref || -2*d > ref {
			t.Fatalf("Code(%d, %d) = %d is not the nearest", v, ref, code)
		}
	})
}
