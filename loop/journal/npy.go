package journal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// npyMagic starts every .npy file; version 1.0 follows it.
const npyMagic = "\x93NUMPY"

// WriteNPY writes data as a C-order float64 ('<f8') array of the given shape
// in NumPy's .npy format, version 1.0: magic, version, a little-endian
// uint16 header length, then a Python dict literal padded with spaces and a
// newline so that the data starts on a 64-byte boundary.
func WriteNPY(w io.Writer, shape []int, data []float64) error {
	n := 1
	dims := make([]string, len(shape))
	for i, d := range shape {
		if d < 0 {
			return fmt.Errorf("npy: negative dimension %d in shape %v", d, shape)
		}
		n *= d
		dims[i] = strconv.Itoa(d)
	}
	if n != len(data) {
		return fmt.Errorf("npy: shape %v holds %d values, have %d", shape, n, len(data))
	}
	tuple := "(" + strings.Join(dims, ", ") + ")"
	if len(shape) == 1 {
		tuple = "(" + dims[0] + ",)" // a 1-tuple needs its comma in Python
	}
	dict := "{'descr': '<f8', 'fortran_order': False, 'shape': " + tuple + ", }"
	const prefix = len(npyMagic) + 2 + 2 // magic, version, header length
	total := (prefix + len(dict) + 1 + 63) / 64 * 64
	hlen := total - prefix
	if hlen > math.MaxUint16 {
		return errors.New("npy: header too long for format version 1.0")
	}
	buf := make([]byte, 0, total+8*len(data))
	buf = append(buf, npyMagic...)
	buf = append(buf, 1, 0)
	buf = binary.LittleEndian.AppendUint16(buf, uint16(hlen))
	buf = append(buf, dict...)
	for len(buf) < total-1 {
		buf = append(buf, ' ')
	}
	buf = append(buf, '\n')
	for _, v := range data {
		buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(v))
	}
	_, err := w.Write(buf)
	return err
}
