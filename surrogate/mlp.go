package surrogate

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
)

// Arch is a surrogate architecture: an MLP (Linear → (LayerNorm) → GELU per
// hidden layer, last layer linear; no hidden layers is a plain affine map)
// and, for a Model, the scalings of its inputs and outputs. Empty scalings
// take DefaultInputScaling and DefaultOutputScaling; an MLP alone ignores
// them.
type Arch struct {
	Hidden        []int
	LayerNorm     bool
	InputScaling  InputScaling
	OutputScaling OutputScaling
}

// Validate reports a non-positive hidden width or an unknown scaling.
func (a Arch) Validate() error {
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

// mlpArch is a copy of the network part of a, without the scalings.
func (a Arch) mlpArch() Arch {
	return Arch{Hidden: slices.Clone(a.Hidden), LayerNorm: a.LayerNorm}
}

// initStream is the second PCG seed word for weight initialization; the
// Trainer uses a different one so init and minibatch order are independent.
const initStream = 0x5eed_1417_7a11_0001

// layer holds views into the MLP's flat parameter and gradient vectors.
type layer struct {
	in, out       int
	hidden        bool
	w, b, gw, gb  []float64 // w is in×out row-major: z = x·W + b
	gamma, beta   []float64 // LayerNorm gain and bias; nil without LayerNorm
	ggamma, gbeta []float64
}

// MLP is the raw network on already-normalized data. Its parameters live in
// one flat vector (per layer: W row-major in×out, b, then LayerNorm γ, β),
// so an optimizer and a checkpoint see a single slice.
//
// Forward and Backward share one cache and are not safe for concurrent use.
// Predict, VJP and Jacobian use their own scratch and may run concurrently
// with each other (but not with training, which changes the weights).
type MLP struct {
	in, out       int
	arch          Arch
	layers        []layer
	params, grads []float64

	train *workspace // cache of the last Forward
	pool  sync.Pool  // single-row workspaces for VJP and Predict

	// Counters of the training forward pass, read by tests.
	forwardCalls, forwardRows int
}

// NewMLP returns an in→out network with PyTorch's default Linear
// initialization (W and b uniform in ±1/√fan_in) drawn from a PCG seeded with
// seed, and LayerNorm gain 1, bias 0.
func NewMLP(in, out int, arch Arch, seed uint64) (*MLP, error) {
	if in < 1 || out < 1 {
		return nil, fmt.Errorf("surrogate: MLP needs at least one input and one output, got %d→%d", in, out)
	}
	if err := arch.Validate(); err != nil {
		return nil, fmt.Errorf("surrogate: %w", err)
	}
	m := newMLPShape(in, out, arch)
	rng := rand.New(rand.NewPCG(seed, initStream))
	for i := range m.layers {
		l := &m.layers[i]
		bound := 1 / math.Sqrt(float64(l.in))
		for j := range l.w {
			l.w[j] = bound * (2*rng.Float64() - 1)
		}
		for j := range l.b {
			l.b[j] = bound * (2*rng.Float64() - 1)
		}
		for j := range l.gamma {
			l.gamma[j] = 1
		}
	}
	return m, nil
}

// newMLPShape allocates a zero network; callers validate the arguments.
func newMLPShape(in, out int, arch Arch) *MLP {
	arch = arch.mlpArch()
	n := arch.NumParams(in, out)
	m := &MLP{in: in, out: out, arch: arch, params: make([]float64, n), grads: make([]float64, n)}
	off, prev := 0, in
	take := func(k int) (p, g []float64) {
		p, g = m.params[off:off+k:off+k], m.grads[off:off+k:off+k]
		off += k
		return p, g
	}
	widths := append(slices.Clone(arch.Hidden), out)
	for i, w := range widths {
		l := layer{in: prev, out: w, hidden: i < len(arch.Hidden)}
		l.w, l.gw = take(prev * w)
		l.b, l.gb = take(w)
		if l.hidden && arch.LayerNorm {
			l.gamma, l.ggamma = take(w)
			l.beta, l.gbeta = take(w)
		}
		m.layers = append(m.layers, l)
		prev = w
	}
	return m
}

// In returns the input dimension.
func (m *MLP) In() int { return m.in }

// Out returns the output dimension.
func (m *MLP) Out() int { return m.out }

// Arch returns a copy of the architecture (without scalings).
func (m *MLP) Arch() Arch { return m.arch.mlpArch() }

// NumParams returns the number of parameters.
func (m *MLP) NumParams() int { return len(m.params) }

// Params returns the flat parameter vector. It aliases the weights: writing
// to it changes the network.
func (m *MLP) Params() []float64 { return m.params }

// Grads returns the flat vector of accumulated gradients, laid out like
// Params.
func (m *MLP) Grads() []float64 { return m.grads }

// ZeroGrad clears the accumulated gradients.
func (m *MLP) ZeroGrad() { clear(m.grads) }

// Forward runs a batch of rows inputs (rows×In, row-major) and caches what
// Backward needs. The returned rows×Out slice belongs to the MLP and is
// overwritten by the next Forward. It panics if len(x) ≠ rows·In.
func (m *MLP) Forward(x []float64, rows int) []float64 {
	if rows < 1 || len(x) != rows*m.in {
		panic(fmt.Sprintf("surrogate: MLP.Forward: %d values for %d rows of %d inputs", len(x), rows, m.in))
	}
	ws := m.trainWorkspace(rows)
	ws.xcopy = growTo(ws.xcopy, len(x))
	copy(ws.xcopy, x)
	return m.trainForward(ws.xcopy, rows)
}

// trainForward is Forward without the defensive copy: x must stay unchanged
// until Backward.
func (m *MLP) trainForward(x []float64, rows int) []float64 {
	m.forwardCalls++
	m.forwardRows += rows
	return m.forward(m.trainWorkspace(rows), x, rows, true)
}

// Backward back-propagates dy (rows×Out, same rows as the last Forward),
// adds the parameter gradients to Grads and returns dL/dx (rows×In). The
// returned slice belongs to the MLP and is overwritten by the next Backward.
// It panics without a preceding Forward or on a shape mismatch.
func (m *MLP) Backward(dy []float64) []float64 {
	ws := m.train
	if ws == nil || !ws.hasGrad {
		panic("surrogate: MLP.Backward called before Forward")
	}
	if len(dy) != ws.rows*m.out {
		panic(fmt.Sprintf("surrogate: MLP.Backward: %d values, want %d rows of %d outputs", len(dy), ws.rows, m.out))
	}
	return m.backward(ws, dy, true, true)
}

// Predict returns the outputs (rows×Out) for a batch of inputs without
// touching the training cache. The result is a fresh slice.
func (m *MLP) Predict(x []float64, rows int) []float64 {
	if rows < 1 || len(x) != rows*m.in {
		panic(fmt.Sprintf("surrogate: MLP.Predict: %d values for %d rows of %d inputs", len(x), rows, m.in))
	}
	ws := m.getWorkspace(rows)
	y := slices.Clone(m.forward(ws, x, rows, false))
	m.putWorkspace(ws)
	return y
}

// VJP returns vᵀ·∂f/∂x at the single point x (length In), for an output
// cotangent v (length Out). It does not touch Grads.
func (m *MLP) VJP(x, v []float64) []float64 {
	if len(x) != m.in || len(v) != m.out {
		panic(fmt.Sprintf("surrogate: MLP.VJP: x has %d values (want %d), v has %d (want %d)", len(x), m.in, len(v), m.out))
	}
	ws := m.getWorkspace(1)
	m.forward(ws, x, 1, true)
	g := slices.Clone(m.backward(ws, v, false, true))
	m.putWorkspace(ws)
	return g
}

// Jacobian returns ∂f/∂x at x as an Out×In row-major matrix. It runs one
// forward pass, copies its cached derivatives to Out rows and back-propagates
// the identity in one batched backward pass.
func (m *MLP) Jacobian(x []float64) []float64 {
	if len(x) != m.in {
		panic(fmt.Sprintf("surrogate: MLP.Jacobian: x has %d values, want %d", len(x), m.in))
	}
	ws := newWorkspace(m, m.out)
	m.forward(ws, x, 1, true)
	for i, l := range m.layers[:len(m.layers)-1] {
		w := l.out
		for r := 1; r < m.out; r++ {
			copy(ws.dact[i][r*w:(r+1)*w], ws.dact[i][:w])
			if l.gamma != nil {
				copy(ws.xhat[i][r*w:(r+1)*w], ws.xhat[i][:w])
				ws.rstd[i][r] = ws.rstd[i][0]
			}
		}
	}
	ws.rows = m.out
	eye := make([]float64, m.out*m.out)
	for i := range m.out {
		eye[i*m.out+i] = 1
	}
	return slices.Clone(m.backward(ws, eye, false, true))
}

// workspace is the scratch of one forward/backward pass for up to cap rows.
type workspace struct {
	cap, rows int
	hasGrad   bool      // the last forward stored derivatives
	x         []float64 // input of the last forward (not owned)
	act       [][]float64
	dact      [][]float64 // GELU derivative per hidden layer
	xhat      [][]float64 // LayerNorm output before γ, β
	rstd      [][]float64
	buf       [2][]float64 // backward ping-pong
	xt        []float64    // transpose scratch for dW
	dx, xcopy []float64
}

func newWorkspace(m *MLP, rows int) *workspace {
	ws := &workspace{cap: rows}
	maxIn, maxW := 0, 0
	for _, l := range m.layers {
		maxIn = max(maxIn, l.in)
		maxW = max(maxW, l.out)
		ws.act = append(ws.act, make([]float64, rows*l.out))
		if l.hidden {
			ws.dact = append(ws.dact, make([]float64, rows*l.out))
			if l.gamma != nil {
				ws.xhat = append(ws.xhat, make([]float64, rows*l.out))
				ws.rstd = append(ws.rstd, make([]float64, rows))
			} else {
				ws.xhat = append(ws.xhat, nil)
				ws.rstd = append(ws.rstd, nil)
			}
		}
	}
	if len(m.layers) > 1 {
		ws.buf[0] = make([]float64, rows*maxW)
		ws.buf[1] = make([]float64, rows*maxW)
	}
	if rows > 1 {
		ws.xt = make([]float64, rows*maxIn)
	}
	ws.dx = make([]float64, rows*m.in)
	return ws
}

// trainWorkspace returns the training cache, grown to hold rows; it keeps
// its capacity so steady-state minibatches allocate nothing.
func (m *MLP) trainWorkspace(rows int) *workspace {
	if m.train == nil || m.train.cap < rows {
		var xcopy []float64
		if m.train != nil {
			xcopy = m.train.xcopy
		}
		m.train = newWorkspace(m, rows)
		m.train.xcopy = xcopy
	}
	return m.train
}

func (m *MLP) getWorkspace(rows int) *workspace {
	if rows == 1 {
		if ws, ok := m.pool.Get().(*workspace); ok {
			return ws
		}
	}
	return newWorkspace(m, rows)
}

func (m *MLP) putWorkspace(ws *workspace) {
	if ws.cap == 1 {
		ws.x = nil
		m.pool.Put(ws)
	}
}

// forward runs rows inputs through the network and returns the rows×Out
// output inside ws. With grad it stores the derivatives backward needs.
func (m *MLP) forward(ws *workspace, x []float64, rows int, grad bool) []float64 {
	ws.rows, ws.x, ws.hasGrad = rows, x, grad
	cur := x
	hi := 0
	for _, l := range m.layers {
		z := ws.act[hi][:rows*l.out]
		linearForward(cur, rows, l.in, l.out, l.w, l.b, z)
		if l.hidden {
			if l.gamma != nil {
				layerNormForward(z, rows, l.out, l.gamma, l.beta, ws.xhat[hi][:rows*l.out], ws.rstd[hi][:rows], z)
			}
			var dact []float64
			if grad {
				dact = ws.dact[hi][:rows*l.out]
			}
			geluForward(z, z, dact, rows, l.out)
		}
		cur = z
		hi++
	}
	return cur
}

// backward propagates dy through the cache of the last forward on ws. With
// accumulate it adds parameter gradients; with needDX it returns dL/dx (a
// slice of ws), otherwise nil: training skips the first layer's dX GEMM.
func (m *MLP) backward(ws *workspace, dy []float64, accumulate, needDX bool) []float64 {
	rows := ws.rows
	nl := len(m.layers)
	dz := dy
	for li := nl - 1; li >= 0; li-- {
		l := m.layers[li]
		xin := ws.x
		if li > 0 {
			xin = ws.act[li-1][:rows*l.in]
		}
		var gw, gb []float64
		if accumulate {
			gw, gb = l.gw, l.gb
		}
		var dx []float64
		switch {
		case li > 0:
			dx = ws.buf[(nl-1-li)%2][:rows*l.in]
		case needDX:
			dx = ws.dx[:rows*l.in]
		}
		linearBackward(xin, dz, rows, l.in, l.out, l.w, gw, gb, dx, ws.xt)
		if li > 0 {
			p := m.layers[li-1]
			hi := li - 1
			geluBackward(dx, ws.dact[hi][:rows*p.out], dx, rows, p.out)
			if p.gamma != nil {
				xhat := ws.xhat[hi][:rows*p.out]
				if accumulate {
					layerNormParamGrads(dx, xhat, rows, p.out, p.ggamma, p.gbeta)
				}
				layerNormBackward(dx, xhat, ws.rstd[hi][:rows], p.gamma, rows, p.out, dx)
			}
		}
		dz = dx
	}
	if !needDX {
		return nil
	}
	return dz
}

// growTo returns s with length n, reusing its storage when it is big enough.
func growTo(s []float64, n int) []float64 {
	if cap(s) >= n {
		return s[:n]
	}
	return make([]float64, n)
}
