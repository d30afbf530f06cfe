package journal

import (
	"bytes"
	"testing"
)

// The header is padded so the data starts on a 64-byte boundary and ends in
// a newline, whatever the length of its dictionary: shapes of growing rank
// and digit counts make the dictionary take every length modulo 64,
// including the one where it fills the block exactly.
func TestWriteNPYHeaderEveryLength(t *testing.T) {
	for rank := 1; rank <= 26; rank++ {
		for _, last := range []int{1, 10, 100} {
			shape := make([]int, rank)
			for i := range shape {
				shape[i] = 1
			}
			shape[rank-1] = last
			data := make([]float64, last)
			for i := range data {
				data[i] = float64(i) + 0.5
			}
			var buf bytes.Buffer
			if err := WriteNPY(&buf, shape, data); err != nil {
				t.Fatal(err)
			}
			b := buf.Bytes()
			hlen := int(b[8]) | int(b[9])<<8
			if 10+hlen <= len(b) && b[10+hlen-1] != '\n' {
				t.Errorf("shape %v: header does not end in a newline", shape)
			}
			gotShape, got, err := readNPY(b)
			if err != nil {
				t.Errorf("shape %v: %v", shape, err)
				continue
			}
			if !equalInts(gotShape, shape) || !sameBits(got, data) {
				t.Errorf("shape %v: read back %v %v", shape, gotShape, got)
			}
		}
	}
}
