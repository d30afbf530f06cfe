package journal

import (
	"encoding/binary"
	"fmt"
	"math"
)

// EncodeFloats returns v as little-endian IEEE 754 float64s, the layout
// numpy.frombuffer(b, dtype='<f8') reads. Every bit pattern is kept: -0,
// subnormals, ±Inf and NaN payloads. The result is never nil, so an empty
// vector is stored as an empty BLOB and not as NULL.
func EncodeFloats(v []float64) []byte {
	b := make([]byte, 8*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint64(b[8*i:], math.Float64bits(f))
	}
	return b
}

// DecodeFloats is the inverse of EncodeFloats. A length that is not a
// multiple of 8 means a truncated or foreign BLOB and is an error.
func DecodeFloats(b []byte) ([]float64, error) {
	if len(b)%8 != 0 {
		return nil, fmt.Errorf("float64 blob of %d bytes is not a multiple of 8", len(b))
	}
	v := make([]float64, len(b)/8)
	for i := range v {
		v[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:]))
	}
	return v, nil
}
