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
