package surrogate

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"math"
	"os"
	"testing"
)

// FuzzLoad feeds arbitrary bytes to Load: it must return a model or an
// error, never panic, and a model it accepts must survive a save/load round
// trip unchanged.
func FuzzLoad(f *testing.F) {
	_, good := savedModel(f)
	f.Add(good)
	f.Add(good[:len(good)/2])
	if v1, err := os.ReadFile("testdata/model-v1.bin"); err == nil {
		f.Add(v1)
	}
	f.Add([]byte(fileMagic))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Load(bytes.NewReader(data))
		if err != nil {
			return
		}
		checkRoundTrip(t, m)
	})
}

// FuzzLoadHeader fuzzes the JSON header and the version number inside an
// otherwise well-formed file (right lengths, right checksum), which random
// bytes almost never reach: every header Load accepts must describe a usable
// model, in either version.
func FuzzLoadHeader(f *testing.F) {
	_, good := savedModel(f)
	hlen := int(binary.LittleEndian.Uint32(good[12:]))
	np := binary.LittleEndian.Uint64(good[16:])
	f.Add(good[filePrefix:filePrefix+hlen], uint16(np), uint8(fileVersion))
	v1, err := os.ReadFile("testdata/model-v1.bin")
	if err != nil {
		f.Fatal(err)
	}
	h1 := int(binary.LittleEndian.Uint32(v1[12:]))
	f.Add(v1[filePrefix:filePrefix+h1], uint16(binary.LittleEndian.Uint64(v1[16:])), uint8(fileVersionV1))
	f.Add([]byte(`{"in":1,"out":1,"hidden":[],"lower":[0],"upper":[1],"out_mean":[0],"out_std":[1],"params":2}`), uint16(2), uint8(1))
	f.Add([]byte(`{"in":1,"out":1,"hidden":[],"input_scaling":"zscore","output_scaling":"none","lower":[0],"upper":[1],"out_mean":[0],"out_std":[1],"params":2}`), uint16(2), uint8(2))
	f.Add([]byte(`{"in":2,"out":2,"hidden":[],"input_scaling":"none","output_scaling":"scale","lower":[0,1],"upper":[1,1],"out_mean":[3,-1],"out_std":[2,2],"params":6}`), uint16(6), uint8(2))
	f.Add([]byte(`{"in":1,"out":1,"hidden":[-5],"lower":[0],"upper":[1],"out_mean":[0],"out_std":[0],"params":2}`), uint16(2), uint8(2))
	f.Add([]byte(`{"in":1,"out":1,"hidden":[2],"input_scaling":"box","output_scaling":"zscore","precision":"float32","lower":[0],"upper":[1],"out_mean":[0],"out_std":[1],"params":7}`), uint16(7), uint8(3))
	f.Add([]byte(`{"in":1,"out":1,"hidden":[],"input_scaling":"box","output_scaling":"zscore","precision":"float64","lower":[0],"upper":[1],"out_mean":[0],"out_std":[1],"params":2}`), uint16(2), uint8(3))
	f.Fuzz(func(t *testing.T, header []byte, nparams uint16, version uint8) {
		var b []byte
		b = append(b, fileMagic...)
		b = binary.LittleEndian.AppendUint32(b, uint32(version))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(header)))
		b = binary.LittleEndian.AppendUint64(b, uint64(nparams))
		b = append(b, header...)
		for i := range int(nparams) {
			v := float64(i%7)/7 - 0.5
			if version == fileVersionV3 { // float32 parameters
				b = binary.LittleEndian.AppendUint32(b, math.Float32bits(float32(v)))
				continue
			}
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
		}
		b = binary.LittleEndian.AppendUint32(b, crc32.ChecksumIEEE(b))
		m, err := Load(bytes.NewReader(b))
		if err != nil {
			return
		}
		if m.InputScaling() == "" || m.OutputScaling() == "" {
			t.Fatalf("loaded a model without scalings: %q/%q", m.InputScaling(), m.OutputScaling())
		}
		checkRoundTrip(t, m)
	})
}

func checkRoundTrip(t *testing.T, m *Model) {
	t.Helper()
	var buf bytes.Buffer
	if err := m.Save(&buf); err != nil {
		t.Fatalf("saving a loaded model: %v", err)
	}
	m2, err := Load(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatalf("reloading a saved model: %v", err)
	}
	x := make([]float64, m.In())
	s := m.Space()
	for i := range x {
		x[i] = (s.Lower[i] + s.Upper[i]) / 2
	}
	y1, y2 := m.Predict(x), m2.Predict(x)
	for i := range y1 {
		if math.Float64bits(y1[i]) != math.Float64bits(y2[i]) {
			t.Fatalf("output %d: %v before the round trip, %v after", i, y1[i], y2[i])
		}
	}
	if m.Arch().Precision != m2.Arch().Precision {
		t.Fatalf("precision %s before the round trip, %s after", m.Arch().Precision, m2.Arch().Precision)
	}
	if m.Arch().InputScaling != m2.Arch().InputScaling || m.Arch().OutputScaling != m2.Arch().OutputScaling {
		t.Fatalf("scalings %s/%s before the round trip, %s/%s after", m.InputScaling(), m.OutputScaling(), m2.InputScaling(), m2.OutputScaling())
	}
}
