package surrogate

import (
	"bytes"
	"math"
	"slices"
	"testing"

	"github.com/insitu-lab/insitu"
)

// phaseSpace has a periodic phase, an ordinary coordinate, a fixed
// periodic one and a second phase of another period.
func phaseSpace() insitu.Space {
	return insitu.Space{
		Lower:    []float64{0, -1, 2, 1},
		Upper:    []float64{2 * math.Pi, 3, 2, 4},
		Periodic: []bool{true, false, true, true},
	}
}

func TestCircleEncoding(t *testing.T) {
	m, err := NewModel(phaseSpace(), 2, Arch{Hidden: []int{7}, InputScaling: InputCircle}, 3)
	if err != nil {
		t.Fatal(err)
	}
	// Two inputs per periodic coordinate of non-zero width: 2 + 1 + 1 + 2.
	if m.MLP().In() != 6 || m.In() != 4 {
		t.Fatalf("network has %d inputs for %d coordinates, want 6 for 4", m.MLP().In(), m.In())
	}
	x := []float64{math.Pi / 2, 0, 2, 1 + 3.0/4}
	want := []float64{0, 1, -0.5, 0, 0, 1} // (cos, sin)(π/2), box(0), fixed 0, (cos, sin)(2π·¼)
	got := m.NormalizeInput(x)
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-15 {
			t.Fatalf("NormalizeInput = %v, want %v", got, want)
		}
	}
	// The ends of a periodic range are the same setting.
	lo, hi := slices.Clone(x), slices.Clone(x)
	lo[0], hi[0] = 0, 2*math.Pi
	lo[3], hi[3] = 1, 4
	pl, ph := m.Predict(lo), m.Predict(hi)
	for o := range pl {
		if math.Abs(pl[o]-ph[o]) > 1e-12 {
			t.Errorf("output %d: %v at the lower ends, %v at the upper ends", o, pl[o], ph[o])
		}
	}
}

// VJP and Jacobian through the circle map against central differences of
// the raw-unit prediction, and against each other.
func TestCircleVJPAndJacobian(t *testing.T) {
	m, err := NewModel(phaseSpace(), 3, Arch{Hidden: []int{9, 5}, LayerNorm: true, InputScaling: InputCircle}, 4)
	if err != nil {
		t.Fatal(err)
	}
	m.SetOutputScale([][]float64{{1, 2, 3}, {2, 0, -1}})
	rng := newRand(5)
	for range 5 {
		x := []float64{6 * rng.Float64(), -1 + 4*rng.Float64(), 2, 1 + 3*rng.Float64()}
		v := randVec(rng, 3, 1)
		g := m.VJP(x, v)
		num := numGrad(x, func() float64 {
			y := m.Predict(x)
			var s float64
			for o := range y {
				s += v[o] * y[o]
			}
			return s
		})
		checkGrad(t, "circle VJP", g, num)
		if g[2] != 0 {
			t.Errorf("fixed coordinate gets gradient %v", g[2])
		}
		j := m.Jacobian(x)
		for i := range x {
			var s float64
			for o := range 3 {
				s += v[o] * j[o*len(x)+i]
			}
			if math.Abs(s-g[i]) > 1e-12*(1+math.Abs(g[i])) {
				t.Errorf("vᵀJ[%d] = %v, VJP %v", i, s, g[i])
			}
		}
	}
}

// A circle model trains (the dataset keeps the wider scaled rows, its
// neighbours are found among them), saves and loads to the same
// predictions, and clones.
func TestCircleTrainSaveLoad(t *testing.T) {
	sp := phaseSpace()
	m, err := NewModel(sp, 1, Arch{Hidden: []int{16}, InputScaling: InputCircle}, 6)
	if err != nil {
		t.Fatal(err)
	}
	d := NewDataset(m)
	rng := newRand(7)
	for range 60 {
		x := []float64{2 * math.Pi * rng.Float64(), -1 + 4*rng.Float64(), 2, 1 + 3*rng.Float64()}
		d.Append(x, []float64{math.Cos(x[0]) + 0.3*x[1]})
	}
	for _, loss := range []LossKind{LossMAE, LossGradPIE} {
		tr, err := NewTrainer(m, TrainConfig{Loss: loss, Batch: 16, K: 3}, 1)
		if err != nil {
			t.Fatal(err)
		}
		before, _ := tr.Loss(d)
		if _, err := tr.Fit(t.Context(), d, 5, nil); err != nil {
			t.Fatal(loss, err)
		}
		if after, _ := tr.Loss(d); !(after < before) {
			t.Errorf("%s: loss %v → %v: training did not lower it", loss, before, after)
		}
	}
	var buf bytes.Buffer
	if err := m.Save(&buf); err != nil {
		t.Fatal(err)
	}
	l, err := Load(&buf)
	if err != nil {
		t.Fatal(err)
	}
	c := m.Clone()
	for range 5 {
		x := []float64{2 * math.Pi * rng.Float64(), 0.5, 2, 2.5}
		want := m.Predict(x)
		if got := l.Predict(x); !slices.Equal(got, want) {
			t.Fatalf("loaded model predicts %v, saved one %v", got, want)
		}
		if got := c.Predict(x); !slices.Equal(got, want) {
			t.Fatalf("clone predicts %v, original %v", got, want)
		}
	}
	if l.InputScaling() != InputCircle || !slices.Equal(l.Space().Periodic, []bool{true, false, false, true}) {
		t.Errorf("loaded model: scaling %q, periodic %v", l.InputScaling(), l.Space().Periodic)
	}
}
