package surrogate

import (
	"fmt"
	"slices"

	"github.com/insitu-lab/insitu"
)

// Model is an MLP with the scalings the surrogate trains under: inputs
// mapped by its InputScaling, outputs by its OutputScaling (see Arch). Its
// Predict, VJP and Jacobian work in raw units.
type Model struct {
	space    insitu.Space
	inScale  InputScaling
	outScale OutputScaling
	enc      encoder // x → the network's input u
	mlp      *MLP
	mean     []float64
	std      []float64
	scaleSet bool
}

// NewModel returns a model from the box in to out outputs, with arch's
// hidden layers and scalings (empty scalings take the defaults). The output
// scale starts as mean 0, std 1 until SetOutputScale (or the Trainer's first
// Fit) sets it.
func NewModel(in insitu.Space, out int, arch Arch, seed uint64) (*Model, error) {
	if err := in.Validate(); err != nil {
		return nil, fmt.Errorf("surrogate: input space: %w", err)
	}
	if err := arch.Validate(); err != nil {
		return nil, fmt.Errorf("surrogate: %w", err)
	}
	is := arch.InputScaling.orDefault()
	mlp, err := NewMLP(newEncoder(is, in).nin, out, arch, seed)
	if err != nil {
		return nil, err
	}
	return newModel(in, mlp, is, arch.OutputScaling.orDefault()), nil
}

// newModel wraps mlp, whose input must be the encoding's; the scalings
// must be valid and not empty.
func newModel(s insitu.Space, mlp *MLP, in InputScaling, out OutputScaling) *Model {
	m := &Model{space: cloneSpace(s), inScale: in, outScale: out, mlp: mlp,
		mean: make([]float64, mlp.out), std: make([]float64, mlp.out)}
	m.enc = newEncoder(in, m.space)
	if m.enc.nin != mlp.in {
		panic(fmt.Sprintf("surrogate: input scaling %q of a %d-dimensional space gives %d network inputs, the network has %d", in, s.Dim(), m.enc.nin, mlp.in))
	}
	for i := range m.std {
		m.std[i] = 1
	}
	return m
}

func cloneSpace(s insitu.Space) insitu.Space { return s.Clone() }

// Space returns a copy of the input space.
func (m *Model) Space() insitu.Space { return cloneSpace(m.space) }

// Arch returns the architecture with the model's (resolved) scalings.
func (m *Model) Arch() Arch {
	a := m.mlp.Arch()
	a.InputScaling, a.OutputScaling = m.inScale, m.outScale
	return a
}

// InputScaling returns the model's input map.
func (m *Model) InputScaling() InputScaling { return m.inScale }

// OutputScaling returns the model's output map.
func (m *Model) OutputScaling() OutputScaling { return m.outScale }

// MLP returns the underlying network (shared, not a copy).
func (m *Model) MLP() *MLP { return m.mlp }

// In returns the input dimension (of x, not of the network's input).
func (m *Model) In() int { return len(m.enc.shift) }

// Out returns the output dimension.
func (m *Model) Out() int { return m.mlp.out }

// NormalizeInput returns the network's input for x under the model's
// InputScaling (longer than x when circle encodes periodic coordinates);
// a zero-width coordinate maps to 0.
func (m *Model) NormalizeInput(x []float64) []float64 {
	m.checkX("NormalizeInput", x)
	u := make([]float64, m.enc.nin)
	m.enc.encode(u, x)
	return u
}

// SetOutputScale sets the output map's statistics from the samples ys:
// per-component mean and (population) std for OutputZScore, the same with
// one pooled std for OutputScale, mean 0 and std 1 for OutputNone. An empty
// ys leaves the scale unchanged.
func (m *Model) SetOutputScale(ys [][]float64) {
	if len(ys) == 0 {
		return
	}
	m.mean, m.std = outputMap(m.outScale, ys, m.mlp.out)
	m.scaleSet = true
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
	y := m.mlp.Predict(m.NormalizeInput(x), 1)
	for o := range y {
		y[o] = m.mean[o] + m.std[o]*y[o]
	}
	return y
}

// VJP returns vᵀ·∂f_raw/∂x_raw at x: the cotangent is scaled by the output
// std, sent through the network and scaled by the input map's slope.
// Zero-width coordinates get gradient 0.
func (m *Model) VJP(x, v []float64) []float64 {
	m.checkX("VJP", x)
	if len(v) != m.mlp.out {
		panic(fmt.Sprintf("surrogate: Model.VJP: cotangent has %d values, want %d", len(v), m.mlp.out))
	}
	vs := make([]float64, len(v))
	for o := range v {
		vs[o] = v[o] * m.std[o]
	}
	gu := m.mlp.VJP(m.NormalizeInput(x), vs)
	g := make([]float64, len(x))
	m.enc.pull(g, gu, x)
	return g
}

// Jacobian returns ∂f_raw/∂x_raw at x as an Out×In row-major matrix.
func (m *Model) Jacobian(x []float64) []float64 {
	m.checkX("Jacobian", x)
	ju := m.mlp.Jacobian(m.NormalizeInput(x))
	nin, in := m.mlp.in, len(x)
	j := make([]float64, m.mlp.out*in)
	for o := range m.mlp.out {
		row := j[o*in : (o+1)*in]
		m.enc.pull(row, ju[o*nin:(o+1)*nin], x)
		for i := range row {
			row[i] *= m.std[o]
		}
	}
	return j
}

func (m *Model) checkX(op string, x []float64) {
	if in := len(m.enc.shift); len(x) != in {
		panic(fmt.Sprintf("surrogate: Model.%s: x has %d values, want %d", op, len(x), in))
	}
}

// Clone returns an independent copy of the model: the same weights, input
// map and output scale. A clone can predict while the original trains.
func (m *Model) Clone() *Model { return m.CloneInto(nil) }

// CloneInto is Clone reusing dst's storage when dst is an earlier clone of
// m (same network shape and input map); otherwise it allocates a new one.
func (m *Model) CloneInto(dst *Model) *Model {
	if dst == nil || dst.mlp.in != m.mlp.in || dst.mlp.out != m.mlp.out || dst.mlp.NumParams() != m.mlp.NumParams() ||
		!slices.Equal(dst.mlp.arch.Hidden, m.mlp.arch.Hidden) || dst.mlp.arch.LayerNorm != m.mlp.arch.LayerNorm ||
		dst.mlp.arch.Precision != m.mlp.arch.Precision ||
		dst.inScale != m.inScale || dst.outScale != m.outScale || !dst.enc.equal(m.enc) {
		dst = newModel(m.space, newMLPShape(m.mlp.in, m.mlp.out, m.mlp.arch), m.inScale, m.outScale)
	}
	m.mlp.net.copyParams(dst.mlp.net)
	copy(dst.mean, m.mean)
	copy(dst.std, m.std)
	dst.scaleSet = m.scaleSet
	return dst
}
