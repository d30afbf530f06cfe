package surrogate

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"testing"
)

// scalingPairs is every input × output scaling pair.
func scalingPairs() []Arch {
	var as []Arch
	for _, in := range InputScalings {
		for _, out := range OutputScalings {
			as = append(as, Arch{InputScaling: in, OutputScaling: out})
		}
	}
	return as
}

func TestNormalizeInput(t *testing.T) {
	// oddSpace: [-2, 3], [0, 0.5], the fixed 1, [10, 20].
	x := []float64{-2, 0.25, 1, 20}
	r12 := math.Sqrt(12)
	want := map[InputScaling][]float64{
		InputNone:   {-2, 0.25, 0, 20},
		InputBox:    {-1, 0, 0, 1},
		InputZScore: {-2.5 * r12 / 5, 0, 0, 5 * r12 / 10},
		InputUnit:   {0, 0.5, 0, 1},
		InputCircle: {-1, 0, 0, 1}, // no periodic coordinate: box
	}
	for _, s := range InputScalings {
		m, err := NewModel(oddSpace(), 1, Arch{InputScaling: s}, 1)
		if err != nil {
			t.Fatal(err)
		}
		got := m.NormalizeInput(x)
		for i := range got {
			if math.Abs(got[i]-want[s][i]) > 1e-15 {
				t.Errorf("%s: NormalizeInput = %v, want %v", s, got, want[s])
				break
			}
		}
		if m.InputScaling() != s || m.Arch().InputScaling != s {
			t.Errorf("%s: model reports input scaling %q", s, m.InputScaling())
		}
	}
	// The default is resolved, not stored as "".
	m, _ := NewModel(oddSpace(), 1, Arch{}, 1)
	if m.InputScaling() != DefaultInputScaling || m.OutputScaling() != DefaultOutputScaling {
		t.Errorf("default scalings %q/%q", m.InputScaling(), m.OutputScaling())
	}
	// The model keeps its own copy of the space.
	s := m.Space()
	s.Lower[0] = 100
	if m.Space().Lower[0] != -2 {
		t.Error("Space() exposes the model's bounds")
	}
}

// TestZScoreIsBoxMoments: the zscore input map gives the uniform
// distribution on the box mean 0 and variance 1 per coordinate.
func TestZScoreIsBoxMoments(t *testing.T) {
	m, _ := NewModel(oddSpace(), 1, Arch{InputScaling: InputZScore}, 1)
	s := m.Space()
	const n = 2000 // a midpoint rule over each coordinate
	for j := range s.Dim() {
		if s.Upper[j] == s.Lower[j] {
			continue
		}
		var mean, sq float64
		x := make([]float64, s.Dim())
		for i := range n {
			x[j] = s.Lower[j] + (float64(i)+0.5)/n*(s.Upper[j]-s.Lower[j])
			u := m.NormalizeInput(x)[j]
			mean += u / n
			sq += u * u / n
		}
		if math.Abs(mean) > 1e-12 || math.Abs(sq-1) > 1e-6 {
			t.Errorf("coordinate %d: mean %v, second moment %v; want 0 and 1", j, mean, sq)
		}
	}
}

func TestScalingValidate(t *testing.T) {
	if _, err := NewModel(boxSpace(2), 1, Arch{InputScaling: "half"}, 1); err == nil || !strings.Contains(err.Error(), `"half"`) {
		t.Errorf("unknown input scaling: err %v", err)
	}
	if _, err := NewModel(boxSpace(2), 1, Arch{OutputScaling: "log"}, 1); err == nil || !strings.Contains(err.Error(), `"log"`) {
		t.Errorf("unknown output scaling: err %v", err)
	}
}

func TestSetOutputScale(t *testing.T) {
	ys := [][]float64{{1, 5, 1e9}, {3, 5, 1e9 + 1e-9}}
	m, _ := NewModel(boxSpace(1), 3, Arch{OutputScaling: OutputZScore}, 1)
	if mean, std := m.OutputScale(); !slices.Equal(mean, []float64{0, 0, 0}) || !slices.Equal(std, []float64{1, 1, 1}) || m.HasOutputScale() {
		t.Fatalf("initial scale %v %v", mean, std)
	}
	m.SetOutputScale(ys)
	mean, std := m.OutputScale()
	if mean[0] != 2 || std[0] != 1 {
		t.Errorf("component 0: mean %v std %v, want 2 and 1", mean[0], std[0])
	}
	if mean[1] != 5 || std[1] != 1 {
		t.Errorf("constant component: mean %v std %v, want 5 and 1", mean[1], std[1])
	}
	if std[2] < 1e-12*1e9 {
		t.Errorf("tiny spread: std %v below the floor", std[2])
	}
	if !m.HasOutputScale() {
		t.Error("HasOutputScale false after SetOutputScale")
	}

	m, _ = NewModel(boxSpace(1), 2, Arch{OutputScaling: OutputScale}, 1)
	m.SetOutputScale([][]float64{{1, 10}, {3, 10}, {5, 16}}) // variances 8/3 and 8
	mean, std = m.OutputScale()
	if want := math.Sqrt((8.0/3 + 8) / 2); mean[0] != 3 || mean[1] != 12 || math.Abs(std[0]-want) > 1e-15 || std[1] != std[0] {
		t.Errorf("scale: mean %v std %v, want [3 12] and %v for both", mean, std, want)
	}

	m, _ = NewModel(boxSpace(1), 3, Arch{OutputScaling: OutputNone}, 1)
	m.SetOutputScale(ys)
	if mean, std := m.OutputScale(); !slices.Equal(mean, []float64{0, 0, 0}) || !slices.Equal(std, []float64{1, 1, 1}) || !m.HasOutputScale() {
		t.Errorf("none: scale %v %v", mean, std)
	}
}

// TestScaledModelRawDerivatives checks Predict's composition and Jacobian
// and VJP against central differences of Predict, in raw units, for every
// scaling pair.
func TestScaledModelRawDerivatives(t *testing.T) {
	for _, a := range scalingPairs() {
		a.Hidden, a.LayerNorm = []int{6, 5}, true
		t.Run(fmt.Sprintf("%s/%s", a.InputScaling, a.OutputScaling), func(t *testing.T) {
			const out = 2
			m, err := NewModel(oddSpace(), out, a, 5)
			if err != nil {
				t.Fatal(err)
			}
			m.SetOutputScale([][]float64{{1, -100}, {4, 300}, {2, 50}})
			x := []float64{0.7, 0.1, 1, 13}
			in := len(x)
			y := m.Predict(x)
			f := m.MLP().Predict(m.NormalizeInput(x), 1)
			mean, std := m.OutputScale()
			for o := range out {
				if want := mean[o] + std[o]*f[o]; y[o] != want {
					t.Errorf("Predict[%d] = %v, want %v", o, y[o], want)
				}
			}
			jac := m.Jacobian(x)
			for o := range out {
				row := numGrad(x, func() float64 { return m.Predict(x)[o] })
				checkGrad(t, fmt.Sprintf("raw Jacobian row %d", o), jac[o*in:(o+1)*in], row)
				if jac[o*in+2] != 0 {
					t.Errorf("zero-width coordinate has derivative %v", jac[o*in+2])
				}
			}
			v := []float64{0.3, -1.7}
			checkGrad(t, "raw VJP", m.VJP(x, v), numGrad(x, func() float64 { return dot(v, m.Predict(x)) }))
		})
	}
}

// TestScaledSaveLoadRoundTrip: every scaling pair is saved and reloaded
// bit for bit, and a model trained under it keeps its predictions.
func TestScaledSaveLoadRoundTrip(t *testing.T) {
	for _, a := range scalingPairs() {
		a.Hidden = []int{8}
		m := newSinModel(t, a, 3)
		d := sinData(t, m, 40, 4)
		tr, _ := NewTrainer(m, TrainConfig{Loss: LossGradPIE, K: 3, Batch: 16}, 1)
		if _, err := tr.Fit(t.Context(), d, 2, nil); err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		if err := m.Save(&b); err != nil {
			t.Fatal(err)
		}
		m2, err := Load(bytes.NewReader(b.Bytes()))
		if err != nil {
			t.Fatalf("%v: %v", a, err)
		}
		if m2.Arch().InputScaling != a.InputScaling || m2.Arch().OutputScaling != a.OutputScaling {
			t.Errorf("saved %s/%s, loaded %s/%s", a.InputScaling, a.OutputScaling, m2.InputScaling(), m2.OutputScaling())
		}
		for i := range d.Len() {
			x := d.X(i)
			if !slices.Equal(m.Predict(x), m2.Predict(x)) || !slices.Equal(m.VJP(x, []float64{1, -2}), m2.VJP(x, []float64{1, -2})) {
				t.Fatalf("%s/%s: Predict or VJP differ after the round trip at %v", a.InputScaling, a.OutputScaling, x)
			}
		}
		var again bytes.Buffer
		if err := m2.Save(&again); err != nil || !bytes.Equal(again.Bytes(), b.Bytes()) {
			t.Errorf("%s/%s: re-saved file differs (err %v)", a.InputScaling, a.OutputScaling, err)
		}
		// A dataset of one scaling cannot train a model of another.
		other := Arch{Hidden: a.Hidden, InputScaling: InputBox, OutputScaling: a.OutputScaling}
		if a.InputScaling == InputBox || a.InputScaling == InputCircle { // circle is box without periodic coordinates
			other.InputScaling = InputUnit
		}
		tr2, _ := NewTrainer(newSinModel(t, other, 3), TrainConfig{Loss: LossMAE}, 1)
		if _, err := tr2.Fit(t.Context(), d, 1, nil); err == nil {
			t.Errorf("%s: a model with input scaling %s trained on its dataset", a.InputScaling, other.InputScaling)
		}
	}
}

// v1Golden holds Predict and VJP(x, [1, −0.5]) of testdata/model-v1.bin as
// written by the version 1 code (input map [0, 1], outputs z-scored), as
// float64 bits: the file must keep loading as exactly that model.
var v1Golden = []struct {
	x    []float64
	y, g []uint64
}{
	{[]float64{-2, 0, 1, 10}, []uint64{0xc003d8b9524c8ffd, 0x3facf3f4c574d370},
		[]uint64{0x3f9f71eac66a0094, 0x3fd4513adc66528e, 0x0, 0xbf6a2b2a4b1563a7}},
	{[]float64{0.5, 0.25, 1, 17}, []uint64{0xbfffce9a5dab9a45, 0x3f9e980838f9964c},
		[]uint64{0x3f9643cc067c5062, 0x400413e7f0a06691, 0x8000000000000000, 0xbf94c6bcb96b7418}},
	{[]float64{3, 0.5, 1, 20}, []uint64{0xbff992b44af1af87, 0x3f850bba02cff140},
		[]uint64{0xbfa2320f3b3679fa, 0x3ff5f21c82668a89, 0x8000000000000000, 0xbf848720abe3a26a}},
}

func TestLoadVersion1(t *testing.T) {
	data, err := os.ReadFile("testdata/model-v1.bin")
	if err != nil {
		t.Fatal(err)
	}
	m, err := Load(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if m.InputScaling() != InputUnit || m.OutputScaling() != OutputZScore || !m.HasOutputScale() {
		t.Errorf("version 1 file loaded as %s/%s (scale set %v), want unit/zscore", m.InputScaling(), m.OutputScaling(), m.HasOutputScale())
	}
	// The golden values were computed with the exact erf GELU; the table
	// GELU differs by ≤ 2e-10, far below what a format or scaling mistake
	// would change.
	near := func(got []float64, want []uint64) bool {
		if len(got) != len(want) {
			return false
		}
		for i, g := range got {
			if w := math.Float64frombits(want[i]); !(math.Abs(g-w) <= 1e-8*max(1, math.Abs(w))) {
				return false
			}
		}
		return true
	}
	for _, c := range v1Golden {
		if y := m.Predict(c.x); !near(y, c.y) {
			t.Errorf("Predict(%v) = %v, want %x", c.x, y, c.y)
		}
		if g := m.VJP(c.x, []float64{1, -0.5}); !near(g, c.g) {
			t.Errorf("VJP(%v) = %v, want %x", c.x, g, c.g)
		}
	}
	// Saved again, it becomes a version 2 file of the same model.
	var b bytes.Buffer
	if err := m.Save(&b); err != nil {
		t.Fatal(err)
	}
	if v := b.Bytes()[len(fileMagic)]; v != fileVersion {
		t.Errorf("re-saved as version %d", v)
	}
	m2, err := Load(&b)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range v1Golden {
		if !slices.Equal(m.Predict(c.x), m2.Predict(c.x)) {
			t.Errorf("the version 2 copy predicts differently at %v", c.x)
		}
	}
}

func TestLoadRejectsInconsistentScalings(t *testing.T) {
	m, _ := savedModel(t)
	base := fileHeader{
		In: 4, Out: 2, Hidden: []int{7, 5}, LayerNorm: true, InputScaling: InputBox, OutputScaling: OutputZScore,
		Lower: m.space.Lower, Upper: m.space.Upper, OutMean: m.mean, OutStd: m.std, Params: m.mlp.NumParams(),
	}
	cases := map[string]func(h *fileHeader) uint32{
		"v2 without scalings": func(h *fileHeader) uint32 { h.InputScaling, h.OutputScaling = "", ""; return fileVersion },
		"unknown input":       func(h *fileHeader) uint32 { h.InputScaling = "half"; return fileVersion },
		"unknown output":      func(h *fileHeader) uint32 { h.OutputScaling = "log"; return fileVersion },
		"v1 with scalings":    func(h *fileHeader) uint32 { return fileVersionV1 },
		"none with a mean": func(h *fileHeader) uint32 {
			h.OutputScaling = OutputNone
			return fileVersion
		},
		"scale with two stds": func(h *fileHeader) uint32 {
			h.OutputScaling, h.OutMean, h.OutStd = OutputScale, []float64{0, 0}, []float64{1, 2}
			return fileVersion
		},
	}
	for name, mutate := range cases {
		h := base
		v := mutate(&h)
		var b bytes.Buffer
		if err := writeModel(&b, v, h, m.mlp.net); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(&b); err == nil {
			t.Errorf("%s: accepted", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
	var b bytes.Buffer
	if err := writeModel(&b, fileVersion, base, m.mlp.net); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(&b); err != nil {
		t.Errorf("the unmutated header: %v", err)
	}
}
