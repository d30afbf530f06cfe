package surrogate

import (
	"fmt"
	"math"
	"slices"

	"github.com/insitu-lab/insitu"
)

// Model is an MLP with the normalizations the surrogate trains under:
// inputs mapped from the Space's box to [0,1], outputs z-scored per
// component. Its Predict, VJP and Jacobian work in raw units.
type Model struct {
	space    insitu.Space
	lo, invW []float64 // u = (x − lo)·invW; invW = 0 on zero-width coordinates
	mlp      *MLP
	mean     []float64
	std      []float64
	scaleSet bool
}

// NewModel returns a model from the box in to out outputs. The output scale
// starts as mean 0, std 1 until SetOutputScale (or the Trainer's first Fit)
// sets it.
func NewModel(in insitu.Space, out int, arch Arch, seed uint64) (*Model, error) {
	if err := in.Validate(); err != nil {
		return nil, fmt.Errorf("surrogate: input space: %w", err)
	}
	mlp, err := NewMLP(in.Dim(), out, arch, seed)
	if err != nil {
		return nil, err
	}
	return newModel(in, mlp), nil
}

func newModel(s insitu.Space, mlp *MLP) *Model {
	m := &Model{space: cloneSpace(s), mlp: mlp, mean: make([]float64, mlp.out), std: make([]float64, mlp.out)}
	m.lo, m.invW = inputScale(m.space)
	for i := range m.std {
		m.std[i] = 1
	}
	return m
}

func cloneSpace(s insitu.Space) insitu.Space { return s.Clone() }

func inputScale(s insitu.Space) (lo, invW []float64) {
	lo = slices.Clone(s.Lower)
	invW = make([]float64, len(lo))
	for i := range lo {
		if w := s.Upper[i] - s.Lower[i]; w > 0 {
			invW[i] = 1 / w
		}
	}
	return lo, invW
}

// normalizeInto writes the [0,1] image of x into u.
func normalizeInto(u, x, lo, invW []float64) {
	for i, v := range x {
		u[i] = (v - lo[i]) * invW[i]
	}
}

// Space returns a copy of the input space.
func (m *Model) Space() insitu.Space { return cloneSpace(m.space) }

// MLP returns the underlying network (shared, not a copy).
func (m *Model) MLP() *MLP { return m.mlp }

// In returns the input dimension.
func (m *Model) In() int { return m.mlp.in }

// Out returns the output dimension.
func (m *Model) Out() int { return m.mlp.out }

// NormalizeInput maps x from the box to [0,1] per coordinate; a zero-width
// coordinate maps to 0. Points outside the box map outside [0,1].
func (m *Model) NormalizeInput(x []float64) []float64 {
	m.checkX("NormalizeInput", x)
	u := make([]float64, len(x))
	normalizeInto(u, x, m.lo, m.invW)
	return u
}

// SetOutputScale sets the per-component mean and (population) standard
// deviation of the outputs from the samples ys. A constant component gets
// std 1; a tiny one is floored at 1e-12·|mean| so standardizing stays finite.
// An empty ys leaves the scale unchanged.
func (m *Model) SetOutputScale(ys [][]float64) {
	if len(ys) == 0 {
		return
	}
	m.mean, m.std = outputScale(ys, m.mlp.out)
	m.scaleSet = true
}

func outputScale(ys [][]float64, out int) (mean, std []float64) {
	mean, std = make([]float64, out), make([]float64, out)
	for i, y := range ys {
		if len(y) != out {
			panic(fmt.Sprintf("surrogate: Model.SetOutputScale: sample %d has %d values, want %d", i, len(y), out))
		}
		for o, v := range y {
			mean[o] += v
		}
	}
	inv := 1 / float64(len(ys))
	for o := range mean {
		mean[o] *= inv
	}
	for _, y := range ys {
		for o, v := range y {
			d := v - mean[o]
			std[o] += d * d
		}
	}
	for o := range std {
		std[o] = floorStd(math.Sqrt(std[o]*inv), mean[o])
	}
	return mean, std
}

func floorStd(s, mean float64) float64 {
	if s == 0 {
		return 1
	}
	return max(s, 1e-12*math.Abs(mean))
}

// OutputScale returns copies of the per-component output mean and std.
func (m *Model) OutputScale() (mean, std []float64) {
	return slices.Clone(m.mean), slices.Clone(m.std)
}

// HasOutputScale reports whether SetOutputScale (or a Fit) has set the scale.
func (m *Model) HasOutputScale() bool { return m.scaleSet }

// Predict returns the model's output for x, both in raw units. Safe for
// concurrent use with VJP and Jacobian, not with training.
func (m *Model) Predict(x []float64) []float64 {
	m.checkX("Predict", x)
	u := make([]float64, len(x))
	normalizeInto(u, x, m.lo, m.invW)
	y := m.mlp.Predict(u, 1)
	for o := range y {
		y[o] = m.mean[o] + m.std[o]*y[o]
	}
	return y
}

// VJP returns vᵀ·∂f_raw/∂x_raw at x: the cotangent is scaled by the output
// std, sent through the network and scaled by the input box's 1/width.
// Zero-width coordinates get gradient 0.
func (m *Model) VJP(x, v []float64) []float64 {
	m.checkX("VJP", x)
	if len(v) != m.mlp.out {
		panic(fmt.Sprintf("surrogate: Model.VJP: cotangent has %d values, want %d", len(v), m.mlp.out))
	}
	u := make([]float64, len(x))
	normalizeInto(u, x, m.lo, m.invW)
	vs := make([]float64, len(v))
	for o := range v {
		vs[o] = v[o] * m.std[o]
	}
	g := m.mlp.VJP(u, vs)
	for i := range g {
		g[i] *= m.invW[i]
	}
	return g
}

// Jacobian returns ∂f_raw/∂x_raw at x as an Out×In row-major matrix.
func (m *Model) Jacobian(x []float64) []float64 {
	m.checkX("Jacobian", x)
	u := make([]float64, len(x))
	normalizeInto(u, x, m.lo, m.invW)
	j := m.mlp.Jacobian(u)
	in := m.mlp.in
	for o := range m.mlp.out {
		row := j[o*in : (o+1)*in]
		for i := range row {
			row[i] *= m.std[o] * m.invW[i]
		}
	}
	return j
}

func (m *Model) checkX(op string, x []float64) {
	if len(x) != m.mlp.in {
		panic(fmt.Sprintf("surrogate: Model.%s: x has %d values, want %d", op, len(x), m.mlp.in))
	}
}
