package surrogate

import (
	"fmt"
	"math/rand/v2"
	"slices"
)

// Precision is the floating-point type an MLP computes in: its weights,
// activations, gradients and Adam moments. Inputs, outputs, datasets and
// losses stay float64 either way.
type Precision string

// Precisions.
const (
	Float64 Precision = "float64" // the default
	Float32 Precision = "float32" // half the memory traffic, twice the SIMD width; see docs/results/precision.md
)

// Validate reports a precision other than float64, float32 or empty (float64).
func (p Precision) Validate() error {
	switch p {
	case "", Float64, Float32:
		return nil
	}
	return fmt.Errorf("precision %q: want %q or %q", string(p), Float64, Float32)
}

// OrDefault is p, or Float64 when p is empty.
func (p Precision) OrDefault() Precision {
	if p == "" {
		return Float64
	}
	return p
}

// Arch is a surrogate architecture: an MLP (Linear → (LayerNorm) → GELU per
// hidden layer, last layer linear; no hidden layers is a plain affine map)
// and, for a Model, the scalings of its inputs and outputs. Empty scalings
// take DefaultInputScaling and DefaultOutputScaling; an MLP alone ignores
// them. An empty Precision is float64.
type Arch struct {
	Hidden        []int
	LayerNorm     bool
	InputScaling  InputScaling
	OutputScaling OutputScaling
	Precision     Precision
}

// Validate reports a non-positive hidden width, an unknown scaling or an
// unknown precision.
func (a Arch) Validate() error {
	if err := a.Precision.Validate(); err != nil {
		return err
	}
	for i, w := range a.Hidden {
		if w < 1 {
			return fmt.Errorf("hidden layer %d has width %d, want ≥ 1", i, w)
		}
	}
	if err := a.InputScaling.Validate(); err != nil {
		return err
	}
	return a.OutputScaling.Validate()
}

// NumParams is the number of parameters of an in→out network of this
// architecture.
func (a Arch) NumParams(in, out int) int {
	n, prev := 0, in
	for _, w := range a.Hidden {
		n += prev*w + w
		if a.LayerNorm {
			n += 2 * w
		}
		prev = w
	}
	return n + prev*out + out
}

// mlpArch is a copy of the network part of a, without the scalings, with
// the precision resolved.
func (a Arch) mlpArch() Arch {
	return Arch{Hidden: slices.Clone(a.Hidden), LayerNorm: a.LayerNorm, Precision: a.Precision.OrDefault()}
}

// initStream is the second PCG seed word for weight initialization; the
// Trainer uses a different one so init and minibatch order are independent.
const initStream = 0x5eed_1417_7a11_0001

// MLP is the raw network on already-normalized data. Its parameters live in
// one flat vector (per layer: W row-major in×out, b, then LayerNorm γ, β),
// so an optimizer and a checkpoint see a single slice. It computes in its
// Arch's Precision; its methods take and return float64 whatever the
// precision, converting at the boundary.
//
// Forward and Backward share one cache and are not safe for concurrent use.
// Predict, VJP and Jacobian use their own scratch and may run concurrently
// with each other (but not with training, which changes the weights).
type MLP struct {
	in, out int
	arch    Arch // Precision resolved
	net     network

	// Counters of the training forward pass, read by tests.
	forwardCalls, forwardRows int
}

// NewMLP returns an in→out network with PyTorch's default Linear
// initialization (W and b uniform in ±1/√fan_in) drawn from a PCG seeded with
// seed, and LayerNorm gain 1, bias 0. A float32 network starts from the
// float64 one's weights, rounded.
func NewMLP(in, out int, arch Arch, seed uint64) (*MLP, error) {
	if in < 1 || out < 1 {
		return nil, fmt.Errorf("surrogate: MLP needs at least one input and one output, got %d→%d", in, out)
	}
	if err := arch.Validate(); err != nil {
		return nil, fmt.Errorf("surrogate: %w", err)
	}
	m := newMLPShape(in, out, arch)
	rng := rand.New(rand.NewPCG(seed, initStream))
	switch n := m.net.(type) {
	case *net[float64]:
		n.initialize(rng)
	case *net[float32]:
		n.initialize(rng)
	}
	return m, nil
}

// newMLPShape allocates a zero network; callers validate the arguments.
func newMLPShape(in, out int, arch Arch) *MLP {
	arch = arch.mlpArch()
	m := &MLP{in: in, out: out, arch: arch}
	if arch.Precision == Float32 {
		m.net = newNet[float32](in, out, arch)
	} else {
		m.net = newNet[float64](in, out, arch)
	}
	return m
}

// In returns the input dimension.
func (m *MLP) In() int { return m.in }

// Out returns the output dimension.
func (m *MLP) Out() int { return m.out }

// Arch returns a copy of the architecture (without scalings).
func (m *MLP) Arch() Arch { return m.arch.mlpArch() }

// Precision returns the precision the network computes in.
func (m *MLP) Precision() Precision { return m.arch.Precision }

// NumParams returns the number of parameters.
func (m *MLP) NumParams() int { return m.net.numParams() }

// Params returns the flat parameter vector of a float64 network. It aliases
// the weights: writing to it changes the network. It panics for a float32
// network (see Params32).
func (m *MLP) Params() []float64 { return m.f64("Params").params }

// Grads returns the flat vector of accumulated gradients of a float64
// network, laid out like Params. It panics for a float32 network (see
// Grads32).
func (m *MLP) Grads() []float64 { return m.f64("Grads").grads }

// Params32 is Params for a float32 network; it panics for a float64 one.
func (m *MLP) Params32() []float32 { return m.f32("Params32").params }

// Grads32 is Grads for a float32 network; it panics for a float64 one.
func (m *MLP) Grads32() []float32 { return m.f32("Grads32").grads }

func (m *MLP) f64(op string) *net[float64] {
	n, ok := m.net.(*net[float64])
	if !ok {
		panic(fmt.Sprintf("surrogate: MLP.%s on a %s network", op, m.arch.Precision))
	}
	return n
}

func (m *MLP) f32(op string) *net[float32] {
	n, ok := m.net.(*net[float32])
	if !ok {
		panic(fmt.Sprintf("surrogate: MLP.%s on a %s network", op, m.arch.Precision))
	}
	return n
}

// ZeroGrad clears the accumulated gradients.
func (m *MLP) ZeroGrad() { m.net.zeroGrad() }

// Forward runs a batch of rows inputs (rows×In, row-major) and caches what
// Backward needs. The returned rows×Out slice belongs to the MLP and is
// overwritten by the next Forward. It panics if len(x) ≠ rows·In.
func (m *MLP) Forward(x []float64, rows int) []float64 {
	if rows < 1 || len(x) != rows*m.in {
		panic(fmt.Sprintf("surrogate: MLP.Forward: %d values for %d rows of %d inputs", len(x), rows, m.in))
	}
	return m.trainForward(slices.Clone(x), rows)
}

// trainForward is Forward without the defensive copy: x must stay unchanged
// until Backward.
func (m *MLP) trainForward(x []float64, rows int) []float64 {
	m.forwardCalls++
	m.forwardRows += rows
	return m.net.forwardTrain(x, rows)
}

// Backward back-propagates dy (rows×Out, same rows as the last Forward),
// adds the parameter gradients to Grads and returns dL/dx (rows×In). The
// returned slice belongs to the MLP and is overwritten by the next Backward.
// It panics without a preceding Forward or on a shape mismatch.
func (m *MLP) Backward(dy []float64) []float64 {
	rows, ok := m.net.trained()
	if !ok {
		panic("surrogate: MLP.Backward called before Forward")
	}
	if len(dy) != rows*m.out {
		panic(fmt.Sprintf("surrogate: MLP.Backward: %d values, want %d rows of %d outputs", len(dy), rows, m.out))
	}
	return m.net.backwardTrain(dy, false, true)
}

// Predict returns the outputs (rows×Out) for a batch of inputs without
// touching the training cache. The result is a fresh slice.
func (m *MLP) Predict(x []float64, rows int) []float64 {
	if rows < 1 || len(x) != rows*m.in {
		panic(fmt.Sprintf("surrogate: MLP.Predict: %d values for %d rows of %d inputs", len(x), rows, m.in))
	}
	return m.net.predict(x, rows)
}

// VJP returns vᵀ·∂f/∂x at the single point x (length In), for an output
// cotangent v (length Out). It does not touch Grads.
func (m *MLP) VJP(x, v []float64) []float64 {
	if len(x) != m.in || len(v) != m.out {
		panic(fmt.Sprintf("surrogate: MLP.VJP: x has %d values (want %d), v has %d (want %d)", len(x), m.in, len(v), m.out))
	}
	return m.net.vjp(x, v)
}

// Jacobian returns ∂f/∂x at x as an Out×In row-major matrix. It runs one
// forward pass, copies its cached derivatives to Out rows and back-propagates
// the identity in one batched backward pass.
func (m *MLP) Jacobian(x []float64) []float64 {
	if len(x) != m.in {
		panic(fmt.Sprintf("surrogate: MLP.Jacobian: x has %d values, want %d", len(x), m.in))
	}
	return m.net.jacobian(x)
}
