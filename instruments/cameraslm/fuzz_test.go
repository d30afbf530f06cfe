package cameraslm

import (
	"math"
	"os"
	"path/filepath"
	"testing"
)

// ParseFourier reads files people edit and copy around: whatever the
// bytes, it returns an error or a map that is finite and invertible, and a
// file it accepts reads back the same after it is written.
func FuzzParseFourier(f *testing.F) {
	good := FourierFile{Map: Map{A: [2][2]float64{{140, 2}, {-3, 139}}, B: [2]float64{29.5, 30}}, RMS: 0.01,
		Points: []FourierPoint{{Kx: 0.1, X: 43.5, Y: 29.7}}}
	dir := f.TempDir()
	p := filepath.Join(dir, "good.yaml")
	if err := good.Write(p); err != nil {
		f.Fatal(err)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Add([]byte("kind: fourier\nmap: {a: [[0, 0], [0, 0]], b: [1, 2]}\n"))
	f.Add([]byte("kind: fourier\nmap: {a: [[.nan, 1], [1, 1]]}\n"))
	f.Add([]byte("kind: settle\n"))
	f.Add([]byte("{"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ff, err := ParseFourier(data, "fuzz.yaml")
		if err != nil {
			return
		}
		m := ff.Map
		for _, v := range []float64{m.A[0][0], m.A[0][1], m.A[1][0], m.A[1][1], m.B[0], m.B[1], m.Det()} {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				t.Fatalf("accepted a map with %v: %+v", v, m)
			}
		}
		if m.Det() == 0 {
			t.Fatalf("accepted a singular map %+v", m)
		}
		out, err := ff.marshal()
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseFourier(out, "again.yaml")
		if err != nil || again.Map != ff.Map {
			t.Fatalf("written and read back: %+v, %v; was %+v", again.Map, err, ff.Map)
		}
	})
}
