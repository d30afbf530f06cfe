package journal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// npyDict matches the header dict of a float64 array as NumPy writes it.
var npyDict = regexp.MustCompile(`^\{'descr': '<f8', 'fortran_order': False, 'shape': \(((?:\d+, )*\d*,?)\), \} *\n$`)

// readNPY is a small reader written from the format description, independent
// of WriteNPY: it accepts only version 1.0, little-endian float64, C order.
func readNPY(b []byte) (shape []int, data []float64, err error) {
	if len(b) < 10 || string(b[:6]) != "\x93NUMPY" {
		return nil, nil, errors.New("bad magic")
	}
	if b[6] != 1 || b[7] != 0 {
		return nil, nil, fmt.Errorf("version %d.%d", b[6], b[7])
	}
	hlen := int(b[8]) | int(b[9])<<8
	if 10+hlen > len(b) {
		return nil, nil, errors.New("header runs past the end")
	}
	if (10+hlen)%64 != 0 {
		return nil, nil, fmt.Errorf("data starts at %d, not 64-byte aligned", 10+hlen)
	}
	m := npyDict.FindStringSubmatch(string(b[10 : 10+hlen]))
	if m == nil {
		return nil, nil, fmt.Errorf("header %q", b[10:10+hlen])
	}
	n := 1
	for _, s := range strings.Split(m[1], ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		d, err := strconv.Atoi(s)
		if err != nil {
			return nil, nil, err
		}
		shape = append(shape, d)
		n *= d
	}
	if len(shape) == 1 && !strings.HasSuffix(m[1], ",") {
		return nil, nil, errors.New("1-D shape without its trailing comma is not a tuple")
	}
	body := b[10+hlen:]
	if len(body) != 8*n {
		return nil, nil, fmt.Errorf("%d data bytes for %d values", len(body), n)
	}
	data = make([]float64, n)
	for i := range data {
		data[i] = math.Float64frombits(binary.LittleEndian.Uint64(body[8*i:]))
	}
	return shape, data, nil
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestWriteNPY(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteNPY(&buf, []int{3, 2}, []float64{1, 2, 3, 4, 5, 6}); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	// What numpy.save(f, np.arange(1., 7.).reshape(3, 2)) writes.
	wantHeader := "\x93NUMPY\x01\x00\x76\x00{'descr': '<f8', 'fortran_order': False, 'shape': (3, 2), }" + strings.Repeat(" ", 58) + "\n"
	if len(b) != 128+48 || string(b[:128]) != wantHeader {
		t.Fatalf("header %q\nwant   %q", b[:min(len(b), 128)], wantHeader)
	}
	if !bytes.Equal(b[128:], EncodeFloats([]float64{1, 2, 3, 4, 5, 6})) {
		t.Error("data bytes differ from the values")
	}
	for _, tc := range []struct {
		shape []int
		data  []float64
	}{
		{[]int{5}, []float64{1, 2, 3, 4, 5}},
		{[]int{0, 0}, nil},
		{[]int{0, 7}, nil},
		{[]int{}, []float64{42}},
		{[]int{2, 2, 2}, []float64{1, 2, 3, 4, 5, 6, 7, 8}},
		{[]int{1, len(special)}, special},
		{[]int{100000, 0}, nil},
	} {
		buf.Reset()
		if err := WriteNPY(&buf, tc.shape, tc.data); err != nil {
			t.Fatal(err)
		}
		shape, data, err := readNPY(buf.Bytes())
		if err != nil || !equalInts(shape, tc.shape) || !sameBits(data, append([]float64{}, tc.data...)) {
			t.Errorf("shape %v: read back %v %v %v", tc.shape, shape, data, err)
		}
	}
	if err := WriteNPY(&buf, []int{2, 2}, []float64{1}); err == nil {
		t.Error("WriteNPY accepted a shape that does not match the data")
	}
	if err := WriteNPY(&buf, []int{-1}, nil); err == nil {
		t.Error("WriteNPY accepted a negative dimension")
	}
}

// FuzzNPY: whatever the shape and values, the reader recovers them bit for
// bit and the data starts on a 64-byte boundary.
func FuzzNPY(f *testing.F) {
	f.Add(uint8(3), uint8(2), uint64(1), false)
	f.Add(uint8(0), uint8(0), uint64(2), false)
	f.Add(uint8(17), uint8(1), uint64(3), true)
	f.Fuzz(func(t *testing.T, rows, cols uint8, seed uint64, oneD bool) {
		shape := []int{int(rows), int(cols)}
		if oneD {
			shape = []int{int(rows)}
		}
		n := 1
		for _, d := range shape {
			n *= d
		}
		rng := rand.New(rand.NewPCG(seed, seed))
		data := make([]float64, n)
		for i := range data {
			data[i] = math.Float64frombits(rng.Uint64())
		}
		var buf bytes.Buffer
		if err := WriteNPY(&buf, shape, data); err != nil {
			t.Fatal(err)
		}
		gotShape, got, err := readNPY(buf.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		if !equalInts(gotShape, shape) || !sameBits(got, data) {
			t.Fatalf("shape %v: read back %v", shape, gotShape)
		}
	})
}
