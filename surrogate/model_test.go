package surrogate

import (
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/insitu-lab/insitu"
)

func boxSpace(n int) insitu.Space { return insitu.Box(n, -1, 1) }

// oddSpace has unequal widths, an offset and a zero-width coordinate.
func oddSpace() insitu.Space {
	return insitu.Space{
		Names: []string{"a", "b", "fixed", "c"},
		Lower: []float64{-2, 0, 1, 10},
		Upper: []float64{3, 0.5, 1, 20},
	}
}

func TestNewModelValidates(t *testing.T) {
	if _, err := NewModel(insitu.Space{Lower: []float64{1}, Upper: []float64{0}}, 1, Arch{}, 1); err == nil {
		t.Error("accepted lower > upper")
	}
	if _, err := NewModel(insitu.Space{}, 1, Arch{}, 1); err == nil {
		t.Error("accepted an empty space")
	}
	if _, err := NewModel(boxSpace(2), 0, Arch{}, 1); err == nil {
		t.Error("accepted 0 outputs")
	}
	if _, err := NewModel(boxSpace(2), 1, Arch{Hidden: []int{-1}}, 1); err == nil {
		t.Error("accepted a negative width")
	}
}

func TestNormalizeInput(t *testing.T) {
	m, err := NewModel(oddSpace(), 1, Arch{}, 1)
	if err != nil {
		t.Fatal(err)
	}
	got := m.NormalizeInput([]float64{-2, 0.25, 1, 20})
	if want := []float64{0, 0.5, 0, 1}; !slices.Equal(got, want) {
		t.Errorf("NormalizeInput = %v, want %v", got, want)
	}
	// The model keeps its own copy of the space.
	s := m.Space()
	s.Lower[0] = 100
	if m.Space().Lower[0] != -2 {
		t.Error("Space() exposes the model's bounds")
	}
}

func TestSetOutputScale(t *testing.T) {
	m, _ := NewModel(boxSpace(1), 3, Arch{}, 1)
	if mean, std := m.OutputScale(); !slices.Equal(mean, []float64{0, 0, 0}) || !slices.Equal(std, []float64{1, 1, 1}) || m.HasOutputScale() {
		t.Fatalf("initial scale %v %v", mean, std)
	}
	m.SetOutputScale([][]float64{{1, 5, 1e9}, {3, 5, 1e9 + 1e-9}})
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
}

func TestModelRawDerivatives(t *testing.T) {
	for name, arch := range testArchs() {
		t.Run(name, func(t *testing.T) {
			const out = 2
			m, err := NewModel(oddSpace(), out, arch, 5)
			if err != nil {
				t.Fatal(err)
			}
			m.SetOutputScale([][]float64{{1, -100}, {4, 300}, {2, 50}})
			x := []float64{0.7, 0.1, 1, 13}
			in := len(x)

			// Predict is mean + std·f(u).
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

func TestModelConcurrentInference(t *testing.T) {
	m, _ := NewModel(boxSpace(4), 2, Arch{Hidden: []int{16, 16}, LayerNorm: true}, 1)
	x, v := []float64{0.1, -0.2, 0.3, 0.4}, []float64{1, -1}
	want, wantY := m.VJP(x, v), m.Predict(x)
	done := make(chan bool)
	for range 4 {
		go func() {
			ok := true
			for range 50 {
				ok = ok && slices.Equal(m.VJP(x, v), want) && slices.Equal(m.Predict(x), wantY)
			}
			done <- ok
		}()
	}
	for range 4 {
		if !<-done {
			t.Error("concurrent VJP/Predict gave a different result")
		}
	}
}

func TestModelVJPOfZeroCotangent(t *testing.T) {
	m, _ := NewModel(boxSpace(3), 2, Arch{Hidden: []int{4}}, 1)
	for _, g := range m.VJP([]float64{0, 0, 0}, []float64{0, 0}) {
		if g != 0 || math.IsNaN(g) {
			t.Fatalf("VJP of a zero cotangent: %v", g)
		}
	}
}
