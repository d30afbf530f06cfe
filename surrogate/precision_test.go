package surrogate

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/insitu-lab/insitu"
)

// A float32 network starts from the float64 network's weights rounded, so
// the two compute the same function to float32's precision: every output,
// input gradient, Jacobian and parameter gradient of the float32 network
// is checked against the float64 one, itself checked against finite
// differences (TestMLPGradients). The widths and batch reach the packed
// GEMM, the goroutine split and the parallel elementwise passes.
func TestFloat32MatchesFloat64(t *testing.T) {
	archs := testArchs()
	archs["wide"] = Arch{Hidden: []int{300, 200}, LayerNorm: true}
	for name, arch := range archs {
		t.Run(name, func(t *testing.T) {
			const in, out, rows = 7, 3, 48
			a64, a32 := arch, arch
			a32.Precision = Float32
			m64, err := NewMLP(in, out, a64, 5)
			if err != nil {
				t.Fatal(err)
			}
			m32, err := NewMLP(in, out, a32, 5)
			if err != nil {
				t.Fatal(err)
			}
			if m32.Precision() != Float32 || m64.Precision() != Float64 {
				t.Fatalf("precisions %s and %s", m32.Precision(), m64.Precision())
			}
			rng := newRand(6)
			// Move LayerNorm off γ=1, β=0; then make the float64 weights
			// exactly the float32 ones.
			for i := range m64.Params() {
				m64.Params()[i] += 0.1 * rng.NormFloat64()
				m32.Params32()[i] = float32(m64.Params()[i])
				m64.Params()[i] = float64(m32.Params32()[i])
			}
			x := randVec(rng, rows*in, 1)
			c := randVec(rng, rows*out, 1)
			const tol = 2e-5
			near := func(what string, got, want []float64) {
				t.Helper()
				if e := relErr(got, want); !(e <= tol) {
					t.Errorf("%s: float32 relative error %.3g > %g\nfloat32 %v\nfloat64 %v", what, e, tol, head(got), head(want))
				}
			}
			y64 := slices.Clone(m64.Forward(x, rows))
			y32 := slices.Clone(m32.Forward(x, rows))
			near("Forward", y32, y64)
			near("Predict", m32.Predict(x, rows), y64)
			m64.ZeroGrad()
			m32.ZeroGrad()
			near("Backward dx", slices.Clone(m32.Backward(c)), m64.Backward(c))
			g32 := make([]float64, m32.NumParams())
			for i, g := range m32.Grads32() {
				g32[i] = float64(g)
			}
			near("parameter gradients", g32, m64.Grads())
			x1, v := x[:in], c[:out]
			near("VJP", m32.VJP(x1, v), m64.VJP(x1, v))
			near("Jacobian", m32.Jacobian(x1), m64.Jacobian(x1))
		})
	}
}

// TestParamsAccessorsPanicOnOtherPrecision: Params and Grads are float64
// views and Params32 and Grads32 float32 ones; asking the wrong network is
// a programming error, not a silent nil.
func TestParamsAccessorsPanicOnOtherPrecision(t *testing.T) {
	m64, _ := NewMLP(2, 1, Arch{Hidden: []int{3}}, 1)
	m32, _ := NewMLP(2, 1, Arch{Hidden: []int{3}, Precision: Float32}, 1)
	for name, f := range map[string]func(){
		"Params32 of float64": func() { m64.Params32() },
		"Grads32 of float64":  func() { m64.Grads32() },
		"Params of float32":   func() { m32.Params() },
		"Grads of float32":    func() { m32.Grads() },
		"Step on float32":     func() { NewAdam32(3, 1e-3).Step(make([]float64, 3), make([]float64, 3)) },
		"Step32 on float64":   func() { NewAdam(3, 1e-3).Step32(make([]float32, 3), make([]float32, 3)) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
	if err := (Arch{Precision: "float16"}).Validate(); err == nil || !strings.Contains(err.Error(), `precision "float16"`) {
		t.Errorf("Validate of precision float16: %v", err)
	}
	if _, err := NewMLP(2, 1, Arch{Precision: "half"}, 1); err == nil {
		t.Error("NewMLP accepted precision half")
	}
}

// TestBackwardOverwriteEqualsZeroGradAdd: the training step stores the
// parameter gradients instead of clearing and adding; the result must be
// the same bits, whatever the gradients held before.
func TestBackwardOverwriteEqualsZeroGradAdd(t *testing.T) {
	for _, p := range []Precision{Float64, Float32} {
		for name, arch := range testArchs() {
			arch.Precision = p
			m, _ := NewMLP(4, 2, arch, 3)
			rng := newRand(4)
			x, c := randVec(rng, 9*4, 1), randVec(rng, 9*2, 1)
			m.Forward(x, 9)
			m.ZeroGrad()
			m.net.backwardTrain(c, false, false)
			want := gradBits(m)
			m.net.backwardTrain(c, false, false) // stale gradients: twice the values
			m.net.backwardTrain(c, true, false)
			if got := gradBits(m); !slices.Equal(got, want) {
				t.Errorf("%s %s: overwritten gradients differ from ZeroGrad + accumulate", p, name)
			}
		}
	}
}

func gradBits(m *MLP) []uint64 {
	var b []uint64
	if m.Precision() == Float32 {
		for _, g := range m.Grads32() {
			b = append(b, uint64(math.Float32bits(g)))
		}
		return b
	}
	for _, g := range m.Grads() {
		b = append(b, math.Float64bits(g))
	}
	return b
}

func paramBits(m *MLP) []uint64 {
	var b []uint64
	if m.Precision() == Float32 {
		for _, g := range m.Params32() {
			b = append(b, uint64(math.Float32bits(g)))
		}
		return b
	}
	for _, g := range m.Params() {
		b = append(b, math.Float64bits(g))
	}
	return b
}

// TestFloat32SaveLoad: a float32 model is saved as version 3 with float32
// parameters and loads as the same float32 model; a float64 model is
// still written as version 2.
func TestFloat32SaveLoad(t *testing.T) {
	s := oddSpace()
	m, err := NewModel(s, 2, Arch{Hidden: []int{7, 5}, LayerNorm: true, Precision: Float32}, 3)
	if err != nil {
		t.Fatal(err)
	}
	m.SetOutputScale([][]float64{{1, 0.1}, {2, 0.3}, {-4, 1e-3}})
	var b bytes.Buffer
	if err := m.Save(&b); err != nil {
		t.Fatal(err)
	}
	data := b.Bytes()
	if v := data[len(fileMagic)]; v != fileVersionV3 {
		t.Errorf("float32 model saved as version %d, want %d", v, fileVersionV3)
	}
	if want := m.MLP().NumParams() * 4; len(data) > filePrefix+want+4+1000 {
		t.Errorf("file of %d bytes for %d float32 parameters", len(data), m.MLP().NumParams())
	}
	m2, err := Load(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if m2.MLP().Precision() != Float32 || m2.Arch().Precision != Float32 {
		t.Fatalf("loaded as %s", m2.MLP().Precision())
	}
	if !slices.Equal(paramBits(m.MLP()), paramBits(m2.MLP())) {
		t.Error("parameters differ")
	}
	x := []float64{0.5, 0.25, 1, 17}
	if !slices.Equal(m.Predict(x), m2.Predict(x)) || !slices.Equal(m.VJP(x, []float64{1, 2}), m2.VJP(x, []float64{1, 2})) {
		t.Error("Predict or VJP differ after the round trip")
	}
	checkRoundTrip(t, m2)
	if c := m.Clone(); c.MLP().Precision() != Float32 || !slices.Equal(paramBits(c.MLP()), paramBits(m.MLP())) {
		t.Error("Clone lost the precision or the weights")
	}

	// Each precision refuses the other's parameter width.
	bad := bytes.Replace(data, []byte(`"precision":"float32"`), []byte(`"precision":"float64"`), 1)
	if _, err := Load(bytes.NewReader(bad)); err == nil {
		t.Error("loaded a version 3 file whose header says float64")
	}
	m64, _ := savedModel(t)
	var b64 bytes.Buffer
	m64.Save(&b64)
	if v := b64.Bytes()[len(fileMagic)]; v != fileVersion {
		t.Errorf("float64 model saved as version %d, want %d", v, fileVersion)
	}
	if strings.Contains(b64.String(), "precision") {
		t.Error("a float64 file names a precision")
	}
}

// v2Golden holds Predict and VJP(x, [1, −0.5]) of testdata/model-v2.bin
// (LayerNorm, zscore inputs, scale outputs), as written and computed by the
// float64 code before float32 existed.
var v2Golden = []struct {
	x    []float64
	y, g []uint64
}{
	{[]float64{-2, 0, 1, 10}, []uint64{0xbfe61464a43ea4ef, 0x3fe8f7b94373f19c},
		[]uint64{0x3fc02d9a52d72a7f, 0xbfe110d84f0033f7, 0x0, 0xbf997f7301d4b46a}},
	{[]float64{0.5, 0.25, 1, 17}, []uint64{0xbfec688dedc4d7f0, 0xbfc1b0575868f890},
		[]uint64{0xbf97cdbc12e611f4, 0x3fd5b72b23893166, 0x8000000000000000, 0x3f992fa7e7184db9}},
	{[]float64{3, 0.5, 1, 20}, []uint64{0xbfe92ff05bb9ea98, 0x3fd3d4b90fd6c67a},
		[]uint64{0x3f9fc5e9a2a20347, 0xbff44dbcf275621b, 0x0, 0x3f99c75cb6d0b3e8}},
}

// TestLoadVersion2: a model saved before float32 existed loads as the same
// float64 model, and is saved again byte for byte.
func TestLoadVersion2(t *testing.T) {
	data, err := os.ReadFile("testdata/model-v2.bin")
	if err != nil {
		t.Fatal(err)
	}
	m, err := Load(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if m.MLP().Precision() != Float64 {
		t.Errorf("loaded as %s", m.MLP().Precision())
	}
	// The matrix products sum in another order than gonum's did: last bits.
	near := func(got []float64, want []uint64) bool {
		for i, g := range got {
			if w := math.Float64frombits(want[i]); !(math.Abs(g-w) <= 1e-13*max(1, math.Abs(w))) {
				return false
			}
		}
		return len(got) == len(want)
	}
	for _, c := range v2Golden {
		if y := m.Predict(c.x); !near(y, c.y) {
			t.Errorf("Predict(%v) = %v, want %x", c.x, y, c.y)
		}
		if g := m.VJP(c.x, []float64{1, -0.5}); !near(g, c.g) {
			t.Errorf("VJP(%v) = %v, want %x", c.x, g, c.g)
		}
	}
	var b bytes.Buffer
	if err := m.Save(&b); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b.Bytes(), data) {
		t.Error("re-saved file differs from the version 2 original")
	}
}

// TestResumeBitIdenticalPerPrecision: a trainer saved mid-run and restored
// into fresh objects continues bit for bit in both precisions; a float32
// trainer state does not restore into a float64 model.
func TestResumeBitIdenticalPerPrecision(t *testing.T) {
	for _, p := range []Precision{Float64, Float32} {
		t.Run(string(p), func(t *testing.T) {
			cfg := TrainConfig{Loss: LossGradPIE, K: 3, Batch: 32}
			m := newSinModel(t, Arch{Hidden: []int{16, 8}, LayerNorm: true, Precision: p}, 1)
			d := sinData(t, m, 120, 1)
			tr, _ := NewTrainer(m, cfg, 7)
			if tr.Adam().Precision() != p {
				t.Fatalf("trainer's Adam is %s", tr.Adam().Precision())
			}
			if _, err := tr.Steps(t.Context(), d, 6, Focus{Recent: 8}); err != nil {
				t.Fatal(err)
			}
			var model bytes.Buffer
			if err := m.Save(&model); err != nil {
				t.Fatal(err)
			}
			state, err := tr.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tr.Steps(t.Context(), d, 6, Focus{Recent: 8}); err != nil {
				t.Fatal(err)
			}
			m2, err := Load(&model)
			if err != nil {
				t.Fatal(err)
			}
			tr2, _ := NewTrainer(m2, cfg, 99)
			if err := tr2.UnmarshalBinary(state); err != nil {
				t.Fatal(err)
			}
			d2 := NewDataset(m2)
			for i := range d.Len() {
				d2.Append(d.X(i), d.Y(i))
			}
			if _, err := tr2.Steps(t.Context(), d2, 6, Focus{Recent: 8}); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(paramBits(m.MLP()), paramBits(m2.MLP())) {
				t.Error("resumed training diverged from uninterrupted training")
			}
			other := Float32
			if p == Float32 {
				other = Float64
			}
			tr3, _ := NewTrainer(newSinModel(t, Arch{Hidden: []int{16, 8}, LayerNorm: true, Precision: other}, 1), cfg, 1)
			if err := tr3.UnmarshalBinary(state); err == nil || !strings.Contains(err.Error(), string(p)) {
				t.Errorf("restored a %s trainer state into a %s model: %v", p, other, err)
			}
		})
	}
}

// TestAdam32: the float32 optimizer follows the float64 one on the same
// gradients to float32 precision, and its state round-trips.
func TestAdam32(t *testing.T) {
	const n = 1 << 14 // above parMinElems: the split path
	rng := newRand(9)
	p64 := randVec(rng, n, 1)
	p32 := make([]float32, n)
	for i, v := range p64 {
		p32[i] = float32(v)
		p64[i] = float64(p32[i])
	}
	a64, a32 := NewAdam(n, 1e-2), NewAdam32(n, 1e-2)
	for range 20 {
		g := randVec(rng, n, 1)
		g32 := make([]float32, n)
		for i, v := range g {
			g32[i] = float32(v)
			g[i] = float64(g32[i])
		}
		a64.Step(p64, g)
		a32.Step32(p32, g32)
	}
	var worst float64
	for i := range p64 {
		worst = max(worst, math.Abs(float64(p32[i])-p64[i]))
	}
	if worst > 1e-5 {
		t.Errorf("float32 Adam drifted %g from float64 Adam after 20 steps", worst)
	}
	b, err := a32.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var r Adam
	if err := r.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if r.Precision() != Float32 || r.Steps() != 20 || !slices.Equal(r.m32, a32.m32) || !slices.Equal(r.v32, a32.v32) {
		t.Error("float32 Adam state did not round-trip")
	}
	if err := r.UnmarshalBinary(b[:len(b)-1]); err == nil {
		t.Error("accepted a truncated float32 Adam state")
	}
	b64, _ := a64.MarshalBinary()
	if v := b64[4]; v != adamVersion {
		t.Errorf("float64 Adam state written as version %d, want %d (readable by older builds)", v, adamVersion)
	}
}

// TestPrecisionGuard: a float32 trainer warns, once, when neighbours are
// closer than float32 resolves, in their outputs or their inputs; it stays
// quiet on ordinary data and for float64.
func TestPrecisionGuard(t *testing.T) {
	train := func(p Precision, gap float64) []string {
		t.Helper()
		s := insitu.Box(2, 0, 1)
		m, err := NewModel(s, 1, Arch{Hidden: []int{8}, Precision: p}, 1)
		if err != nil {
			t.Fatal(err)
		}
		d := NewDataset(m)
		rng := newRand(11)
		// Pairs of points gap apart, the pairs spread over the box; the
		// output is a plane, so output differences are gap-sized too.
		for range 200 {
			x := []float64{0.1 + 0.8*rng.Float64(), 0.1 + 0.8*rng.Float64()}
			for _, dx := range []float64{0, gap} {
				x2 := []float64{x[0] + dx, x[1]}
				d.Append(x2, []float64{3*x2[0] + x2[1]})
			}
		}
		tr, _ := NewTrainer(m, TrainConfig{Loss: LossGradPIE, K: 1, Batch: 64}, 1)
		var msgs []string
		tr.guard.warn = func(msg string, args ...any) { msgs = append(msgs, fmt.Sprint(msg, args)) }
		for range 3 {
			if _, err := tr.Steps(t.Context(), d, 2, Focus{}); err != nil {
				t.Fatal(err)
			}
		}
		return msgs
	}
	if msgs := train(Float32, 1e-9); len(msgs) != 1 || !strings.Contains(msgs[0], "surrogate.precision: float64") {
		t.Errorf("float32, neighbours 1e-9 apart: warnings %q, want one", msgs)
	}
	if msgs := train(Float64, 1e-9); len(msgs) != 0 {
		t.Errorf("float64: warnings %q", msgs)
	}
	if msgs := train(Float32, 1e-3); len(msgs) != 0 {
		t.Errorf("float32, neighbours 1e-3 apart: warnings %q", msgs)
	}
}
