package netcdf

import (
	"bufio"
	"encoding/binary"
	"io"
	"math"
	"testing"
)

// benchFile is an SLM run's shape: 1000 queries of 3600 phases and a
// camera's 3600 pixels.
func benchFile() *File {
	const n, d = 1000, 3600
	x := make([]float64, n*d)
	for i := range x {
		x[i] = math.Sin(float64(i))
	}
	return &File{
		Dims: []Dim{{"query", n}, {"input", d}, {"output", d}},
		Vars: []Var{
			{Name: "x", Dims: []string{"query", "input"}, Attrs: []Attr{{"_FillValue", math.NaN()}}, Data: x},
			{Name: "y", Dims: []string{"query", "output"}, Attrs: []Attr{{"_FillValue", math.NaN()}}, Data: x},
		},
	}
}

// BenchmarkWriteTo writes 57.6 MB of doubles; BenchmarkBigEndianCopy, the
// reference, only converts the same values to big-endian bytes through the
// same buffered writer.
func BenchmarkWriteTo(b *testing.B) {
	f := benchFile()
	b.SetBytes(int64(2 * 8 * len(f.Vars[0].Data.([]float64))))
	for b.Loop() {
		if _, err := f.WriteTo(io.Discard); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBigEndianCopy(b *testing.B) {
	f := benchFile()
	x := f.Vars[0].Data.([]float64)
	b.SetBytes(int64(2 * 8 * len(x)))
	for b.Loop() {
		w := bufio.NewWriterSize(io.Discard, 1<<16)
		for range 2 {
			if err := binary.Write(w, binary.BigEndian, x); err != nil {
				b.Fatal(err)
			}
		}
		w.Flush()
	}
}
