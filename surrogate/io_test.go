package surrogate

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/insitu-lab/insitu"
)

func savedModel(t testing.TB) (*Model, []byte) {
	t.Helper()
	s := oddSpace()
	s.Units = []string{"V", "m", "", "Hz"}
	m, err := NewModel(s, 2, Arch{Hidden: []int{7, 5}, LayerNorm: true}, 3)
	if err != nil {
		t.Fatal(err)
	}
	m.SetOutputScale([][]float64{{1, 0.1}, {2, 0.3}, {-4, 1e-3}})
	var b bytes.Buffer
	if err := m.Save(&b); err != nil {
		t.Fatal(err)
	}
	return m, b.Bytes()
}

func TestSaveLoadRoundTrip(t *testing.T) {
	m, data := savedModel(t)
	m2, err := Load(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(m.MLP().Params(), m2.MLP().Params()) {
		t.Error("parameters differ")
	}
	rng := newRand(1)
	s := m.Space()
	for range 10 {
		x := make([]float64, s.Dim())
		for j := range x {
			x[j] = s.Lower[j] + rng.Float64()*(s.Upper[j]-s.Lower[j])
		}
		v := randVec(rng, 2, 1)
		if !slices.Equal(m.Predict(x), m2.Predict(x)) || !slices.Equal(m.VJP(x, v), m2.VJP(x, v)) {
			t.Fatalf("Predict or VJP differ at %v", x)
		}
	}
	s2 := m2.Space()
	if !slices.Equal(s.Names, s2.Names) || !slices.Equal(s.Units, s2.Units) || !slices.Equal(s.Lower, s2.Lower) || !slices.Equal(s.Upper, s2.Upper) {
		t.Errorf("space %+v, want %+v", s2, s)
	}
	mean, std := m.OutputScale()
	mean2, std2 := m2.OutputScale()
	if !slices.Equal(mean, mean2) || !slices.Equal(std, std2) || !m2.HasOutputScale() {
		t.Errorf("output scale %v %v, want %v %v", mean2, std2, mean, std)
	}
	if a, b := m.MLP().Arch(), m2.MLP().Arch(); !slices.Equal(a.Hidden, b.Hidden) || a.LayerNorm != b.LayerNorm {
		t.Errorf("arch %+v, want %+v", b, a)
	}
	// Saving again gives the same bytes.
	var again bytes.Buffer
	if err := m2.Save(&again); err != nil || !bytes.Equal(again.Bytes(), data) {
		t.Errorf("re-saved file differs (err %v)", err)
	}
}

func TestLoadErrors(t *testing.T) {
	_, data := savedModel(t)
	mutate := func(f func(b []byte) []byte) []byte { return f(slices.Clone(data)) }
	hlen := int(binary.LittleEndian.Uint32(data[12:]))
	cases := []struct {
		name string
		file []byte
		want error
		msg  string
	}{
		{"wrong magic", mutate(func(b []byte) []byte { b[0] = 'X'; return b }), ErrNotSurrogate, "not an insitu surrogate file"},
		{"text file", []byte("hidden: [256, 256]\nlayer_norm: false\n"), ErrNotSurrogate, "not an insitu surrogate file"},
		{"other version", mutate(func(b []byte) []byte { binary.LittleEndian.PutUint32(b[8:], 7); return b }), ErrFileVersion,
			"surrogate file version 7, this build reads versions 1 to 3"},
		{"empty", nil, ErrTruncated, "truncated"},
		{"cut in magic", data[:5], ErrTruncated, "truncated"},
		{"cut in prefix", data[:filePrefix-3], ErrTruncated, "truncated"},
		{"cut in header", data[:filePrefix+hlen/2], ErrTruncated, "truncated"},
		{"cut in params", data[:len(data)-100], ErrTruncated, "truncated"},
		{"cut in checksum", data[:len(data)-1], ErrTruncated, "truncated"},
		{"byte in header", mutate(func(b []byte) []byte { b[filePrefix+hlen/2] ^= 0x20; return b }), ErrChecksum, "checksum mismatch"},
		{"byte in params", mutate(func(b []byte) []byte { b[len(b)-50] ^= 1; return b }), ErrChecksum, "checksum mismatch"},
		{"byte in checksum", mutate(func(b []byte) []byte { b[len(b)-1] ^= 0x80; return b }), ErrChecksum, "checksum mismatch"},
		{"trailing bytes", append(slices.Clone(data), 0), ErrChecksum, "corrupt"},
	}
	for _, tc := range cases {
		_, err := Load(bytes.NewReader(tc.file))
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: err = %v, want %v containing %q", tc.name, err, tc.want, tc.msg)
		}
	}
}

func TestLoadParamCountMismatch(t *testing.T) {
	m, _ := savedModel(t)
	h := fileHeader{
		In: 4, Out: 2, Hidden: []int{7, 6}, LayerNorm: true, // one unit more than the parameters hold
		InputScaling: InputBox, OutputScaling: OutputZScore,
		Lower: m.space.Lower, Upper: m.space.Upper, OutMean: m.mean, OutStd: m.std, Params: m.mlp.NumParams(),
	}
	var b bytes.Buffer
	if err := writeModel(&b, fileVersion, h, m.mlp.net); err != nil {
		t.Fatal(err)
	}
	_, err := Load(&b)
	if !errors.Is(err, ErrParamCount) || !strings.Contains(err.Error(), "parameter count mismatch") {
		t.Errorf("err = %v, want a parameter count mismatch", err)
	}
	t.Log(err)

	// A checksummed file whose header is inconsistent in another way.
	h.Hidden = []int{7, 5}
	h.Lower = []float64{0}
	h.Upper = []float64{1}
	b.Reset()
	writeModel(&b, fileVersion, h, m.mlp.net)
	if _, err := Load(&b); err == nil {
		t.Error("Load accepted a header whose space does not match its input count")
	}
}

func TestSaveWriteError(t *testing.T) {
	m, _ := NewModel(insitu.Box(2, 0, 1), 1, Arch{Hidden: []int{3}}, 1)
	if err := m.Save(failWriter{}); err == nil {
		t.Error("Save ignored a write error")
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestAdamMarshal(t *testing.T) {
	rng := newRand(3)
	a := NewAdam(5, 0.01)
	p := randVec(rng, 5, 1)
	for range 3 {
		a.Step(p, randVec(rng, 5, 1))
	}
	state, err := a.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var b Adam
	if err := b.UnmarshalBinary(state); err != nil {
		t.Fatal(err)
	}
	if b.Steps() != 3 || b.LR != 0.01 || b.Beta2 != 0.999 {
		t.Errorf("restored step %d lr %v β₂ %v", b.Steps(), b.LR, b.Beta2)
	}
	g := randVec(rng, 5, 1)
	p2 := slices.Clone(p)
	a.Step(p, g)
	b.Step(p2, g)
	if !slices.Equal(p, p2) {
		t.Error("restored optimizer steps differently")
	}
	for name, bad := range map[string][]byte{
		"short":     state[:10],
		"truncated": state[:len(state)-8],
		"magic":     append([]byte("XXXX"), state[4:]...),
	} {
		if err := new(Adam).UnmarshalBinary(bad); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestAdamStep(t *testing.T) {
	// The first step moves every coordinate by LR against the gradient's sign
	// (m̂/√v̂ = g/|g|).
	a := NewAdam(3, 0.1)
	p := []float64{1, 1, 1}
	a.Step(p, []float64{2, -0.001, 0})
	want := []float64{0.9, 1.1, 1}
	for i := range p {
		if math.Abs(p[i]-want[i]) > 1e-6 {
			t.Errorf("p[%d] = %v, want %v", i, p[i], want[i])
		}
	}
	// It minimizes a quadratic.
	a = NewAdam(2, 0.05)
	p = []float64{3, -2}
	for range 2000 {
		a.Step(p, []float64{2 * (p[0] - 1), 4 * (p[1] + 0.5)})
	}
	if math.Abs(p[0]-1) > 1e-3 || math.Abs(p[1]+0.5) > 1e-3 {
		t.Errorf("Adam ended at %v, want [1 -0.5]", p)
	}
	a.Reset()
	if a.Steps() != 0 {
		t.Error("Reset kept the step count")
	}
}

// TestLoadRefusesNonFiniteWeights: a whole, checksummed file whose model
// diverged before it was saved (a NaN or infinite weight) is refused, and
// so is a trainer state with a non-finite moment.
func TestLoadRefusesNonFiniteWeights(t *testing.T) {
	m, _ := savedModel(t)
	for _, prec := range []Precision{"", Float32} {
		mp, err := NewModel(m.Space(), 2, Arch{Hidden: []int{7, 5}, LayerNorm: true, Precision: prec}, 3)
		if err != nil {
			t.Fatal(err)
		}
		for _, bad := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
			if prec == Float32 {
				p := mp.MLP().Params32()
				p[len(p)/2] = float32(bad)
			} else {
				p := mp.MLP().Params()
				p[len(p)/2] = bad
			}
			var b bytes.Buffer
			if err := mp.Save(&b); err != nil {
				t.Fatal(err)
			}
			_, err := Load(&b)
			if !errors.Is(err, ErrNonFinite) || !strings.Contains(err.Error(), "non-finite weight") {
				t.Errorf("%q model, weight %v: err = %v, want ErrNonFinite", prec, bad, err)
			}
		}
	}

	tr, err := NewTrainer(m, TrainConfig{Loss: LossGradPIE, K: 3, Batch: 32}, 1)
	if err != nil {
		t.Fatal(err)
	}
	state, err := tr.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckTrainerState(state, m); err != nil {
		t.Fatalf("a fresh trainer's state: %v", err)
	}
	// The Adam moments are the state's last 16·n bytes: m, then v.
	binary.LittleEndian.PutUint64(state[len(state)-8:], math.Float64bits(math.NaN()))
	if err := CheckTrainerState(state, m); err == nil || !strings.Contains(err.Error(), "diverged") {
		t.Errorf("a NaN moment: %v", err)
	}
	if err := tr.UnmarshalBinary(state); err == nil {
		t.Error("UnmarshalBinary accepted a NaN moment")
	}
}
