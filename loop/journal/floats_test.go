package journal

import (
	"bytes"
	"encoding/binary"
	"math"
	"testing"
)

func TestEncodeFloats(t *testing.T) {
	b := EncodeFloats(special)
	if len(b) != 8*len(special) {
		t.Fatalf("%d bytes for %d floats", len(b), len(special))
	}
	// The layout numpy.frombuffer(b, '<f8') expects, checked byte by byte.
	for i, v := range special {
		if got := binary.LittleEndian.Uint64(b[8*i:]); got != math.Float64bits(v) {
			t.Errorf("float %d: bytes %x, want bits %x", i, got, math.Float64bits(v))
		}
	}
	if !bytes.Equal(EncodeFloats([]float64{1})[:8], []byte{0, 0, 0, 0, 0, 0, 0xf0, 0x3f}) {
		t.Error("1.0 is not little-endian IEEE 754")
	}
	back, err := DecodeFloats(b)
	if err != nil || !sameBits(back, special) {
		t.Errorf("round trip: %v %v", back, err)
	}
	if e := EncodeFloats(nil); e == nil || len(e) != 0 {
		t.Errorf("EncodeFloats(nil) = %#v, want an empty non-nil slice", e)
	}
	for _, n := range []int{1, 7, 9, 15} {
		if _, err := DecodeFloats(make([]byte, n)); err == nil {
			t.Errorf("DecodeFloats accepted %d bytes", n)
		}
	}
}

// FuzzDecodeFloats: any input either is rejected (length not a multiple of
// 8) or decodes to floats that encode back to the same bytes.
func FuzzDecodeFloats(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{1, 2, 3})
	f.Add(EncodeFloats(special))
	f.Add(append(EncodeFloats([]float64{1, 2}), 0))
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := DecodeFloats(b)
		if len(b)%8 != 0 {
			if err == nil {
				t.Fatalf("accepted %d bytes", len(b))
			}
			return
		}
		if err != nil {
			t.Fatalf("rejected %d bytes: %v", len(b), err)
		}
		if len(v) != len(b)/8 || !bytes.Equal(EncodeFloats(v), b) {
			t.Fatalf("round trip changed %x", b)
		}
	})
}
