package surrogate

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
)

// Float is the element type the network computes in: float64 or float32
// (see Precision).
type Float interface{ float32 | float64 }

// layer holds views into the network's flat parameter and gradient vectors.
type layer[T Float] struct {
	in, out       int
	hidden        bool
	w, b, gw, gb  []T // w is in×out row-major: z = x·W + b
	gamma, beta   []T // LayerNorm gain and bias; nil without LayerNorm
	ggamma, gbeta []T
}

// net is the network in one precision: parameters, gradients, the
// training cache and the pool of single-row workspaces. MLP wraps it behind
// the network interface, whose arguments and results are float64 whatever
// T is; net converts at that boundary (for T = float64 it passes the slices
// through).
type net[T Float] struct {
	in, out       int
	layers        []layer[T]
	params, grads []T

	train *workspace[T] // cache of the last training forward pass
	pool  sync.Pool     // single-row workspaces for VJP and Predict
}

// network is what MLP needs of a net, with float64 at the boundary.
type network interface {
	precision() Precision
	numParams() int
	// forwardTrain runs a training forward pass over rows rows of x and
	// returns the outputs. x must stay unchanged until backwardTrain; the
	// result belongs to the net.
	forwardTrain(x []float64, rows int) []float64
	// backwardTrain back-propagates dy through the last forwardTrain, adds
	// the parameter gradients to the net's (or, with overwrite, stores
	// them, which spares the caller a ZeroGrad pass over every parameter)
	// and, with needDX, returns dL/dx (the net's slice); otherwise nil.
	backwardTrain(dy []float64, overwrite, needDX bool) []float64
	trained() (rows int, ok bool) // rows of the last forwardTrain
	zeroGrad()
	adamStep(a *Adam)
	predict(x []float64, rows int) []float64 // a fresh slice
	vjp(x, v []float64) []float64            // a fresh slice
	jacobian(x []float64) []float64          // a fresh slice
	copyParams(dst network)                  // same precision and shape
	encodeParams(b []byte) []byte            // little-endian, T's width
	decodeParams(data []byte)                // the inverse
}

var (
	_ network = (*net[float64])(nil)
	_ network = (*net[float32])(nil)
)

// newNet allocates a zero network; callers validate the arguments.
func newNet[T Float](in, out int, arch Arch) *net[T] {
	n := arch.NumParams(in, out)
	m := &net[T]{in: in, out: out, params: make([]T, n), grads: make([]T, n)}
	off, prev := 0, in
	take := func(k int) (p, g []T) {
		p, g = m.params[off:off+k:off+k], m.grads[off:off+k:off+k]
		off += k
		return p, g
	}
	widths := append(slices.Clone(arch.Hidden), out)
	for i, w := range widths {
		l := layer[T]{in: prev, out: w, hidden: i < len(arch.Hidden)}
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

// initialize draws PyTorch's default Linear initialization (W and b uniform
// in ±1/√fan_in) from rng, in float64 and rounded to T, so a float32
// network starts from the float64 one's weights rounded; LayerNorm gain 1,
// bias 0.
func (m *net[T]) initialize(rng *rand.Rand) {
	for i := range m.layers {
		l := &m.layers[i]
		bound := 1 / math.Sqrt(float64(l.in))
		for j := range l.w {
			l.w[j] = T(bound * (2*rng.Float64() - 1))
		}
		for j := range l.b {
			l.b[j] = T(bound * (2*rng.Float64() - 1))
		}
		for j := range l.gamma {
			l.gamma[j] = 1
		}
	}
}

func (m *net[T]) precision() Precision {
	if isF32[T]() {
		return Float32
	}
	return Float64
}

func (m *net[T]) numParams() int { return len(m.params) }
func (m *net[T]) zeroGrad()      { clear(m.grads) }

// isF32 reports whether T is float32.
func isF32[T Float]() bool {
	_, ok := any(T(0)).(float32)
	return ok
}

// toT returns s as a []T: s itself when T is float64, else s rounded into
// *buf (grown as needed).
func toT[T Float](s []float64, buf *[]T) []T {
	if v, ok := any(s).([]T); ok {
		return v
	}
	*buf = growTo(*buf, len(s))
	d := *buf
	for i, x := range s {
		d[i] = T(x)
	}
	return d
}

// to64 returns s as a []float64: s itself when T is float64, else s
// converted into *buf (grown as needed).
func to64[T Float](s []T, buf *[]float64) []float64 {
	if v, ok := any(s).([]float64); ok {
		return v
	}
	*buf = growTo(*buf, len(s))
	d := *buf
	for i, x := range s {
		d[i] = float64(x)
	}
	return d
}

// clone64 returns a fresh float64 copy of s.
func clone64[T Float](s []T) []float64 {
	d := make([]float64, len(s))
	for i, x := range s {
		d[i] = float64(x)
	}
	return d
}

func (m *net[T]) forwardTrain(x []float64, rows int) []float64 {
	ws := m.trainWorkspace(rows)
	xt := toT(x, &ws.xin)
	return to64(m.forward(ws, xt, rows, true), &ws.out64)
}

func (m *net[T]) backwardTrain(dy []float64, overwrite, needDX bool) []float64 {
	ws := m.train
	mode := gradAdd
	if overwrite {
		mode = gradSet
	}
	dx := m.backward(ws, toT(dy, &ws.dyin), mode, needDX)
	if dx == nil {
		return nil
	}
	return to64(dx, &ws.dx64)
}

func (m *net[T]) trained() (int, bool) {
	if m.train == nil || !m.train.hasGrad {
		return 0, false
	}
	return m.train.rows, true
}

func (m *net[T]) predict(x []float64, rows int) []float64 {
	ws := m.getWorkspace(rows)
	defer m.putWorkspace(ws)
	return clone64(m.forward(ws, toT(x, &ws.xin), rows, false))
}

func (m *net[T]) vjp(x, v []float64) []float64 {
	ws := m.getWorkspace(1)
	defer m.putWorkspace(ws)
	m.forward(ws, toT(x, &ws.xin), 1, true)
	return clone64(m.backward(ws, toT(v, &ws.dyin), gradNone, true))
}

// jacobian runs one forward pass, copies its cached derivatives to Out
// rows and back-propagates the identity in one batched backward pass.
func (m *net[T]) jacobian(x []float64) []float64 {
	ws := newWorkspace(m, m.out)
	m.forward(ws, toT(x, &ws.xin), 1, true)
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
	eye := make([]T, m.out*m.out)
	for i := range m.out {
		eye[i*m.out+i] = 1
	}
	return clone64(m.backward(ws, eye, gradNone, true))
}

func (m *net[T]) copyParams(dst network) { copy(dst.(*net[T]).params, m.params) }

func (m *net[T]) encodeParams(b []byte) []byte {
	switch p := any(m.params).(type) {
	case []float64:
		for _, v := range p {
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
		}
	case []float32:
		for _, v := range p {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
		}
	}
	return b
}

func (m *net[T]) decodeParams(data []byte) {
	switch p := any(m.params).(type) {
	case []float64:
		for i := range p {
			p[i] = math.Float64frombits(binary.LittleEndian.Uint64(data[8*i:]))
		}
	case []float32:
		for i := range p {
			p[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:]))
		}
	}
}

// workspace is the scratch of one forward/backward pass for up to cap rows.
type workspace[T Float] struct {
	cap, rows int
	hasGrad   bool // the last forward stored derivatives
	x         []T  // input of the last forward (not owned)
	act       [][]T
	dact      [][]T // GELU derivative per hidden layer
	xhat      [][]T // LayerNorm output before γ, β
	rstd      [][]T
	buf       [2][]T // backward ping-pong
	dx        []T
	// Conversions at the float64 boundary (used only when T is float32).
	xin, dyin   []T
	out64, dx64 []float64
}

func newWorkspace[T Float](m *net[T], rows int) *workspace[T] {
	ws := &workspace[T]{cap: rows}
	maxW := 0
	for _, l := range m.layers {
		maxW = max(maxW, l.out)
		ws.act = append(ws.act, make([]T, rows*l.out))
		if l.hidden {
			ws.dact = append(ws.dact, make([]T, rows*l.out))
			if l.gamma != nil {
				ws.xhat = append(ws.xhat, make([]T, rows*l.out))
				ws.rstd = append(ws.rstd, make([]T, rows))
			} else {
				ws.xhat = append(ws.xhat, nil)
				ws.rstd = append(ws.rstd, nil)
			}
		}
	}
	if len(m.layers) > 1 {
		ws.buf[0] = make([]T, rows*maxW)
		ws.buf[1] = make([]T, rows*maxW)
	}
	ws.dx = make([]T, rows*m.in)
	return ws
}

// trainWorkspace returns the training cache, grown to hold rows; it keeps
// its capacity so steady-state minibatches allocate nothing.
func (m *net[T]) trainWorkspace(rows int) *workspace[T] {
	if m.train == nil || m.train.cap < rows {
		var xin []T
		if m.train != nil {
			xin = m.train.xin
		}
		m.train = newWorkspace(m, rows)
		m.train.xin = xin
	}
	return m.train
}

func (m *net[T]) getWorkspace(rows int) *workspace[T] {
	if rows == 1 {
		if ws, ok := m.pool.Get().(*workspace[T]); ok {
			return ws
		}
	}
	return newWorkspace(m, rows)
}

func (m *net[T]) putWorkspace(ws *workspace[T]) {
	if ws.cap == 1 {
		ws.x = nil
		m.pool.Put(ws)
	}
}

// forward runs rows inputs through the network and returns the rows×Out
// output inside ws. With grad it stores the derivatives backward needs.
func (m *net[T]) forward(ws *workspace[T], x []T, rows int, grad bool) []T {
	ws.rows, ws.x, ws.hasGrad = rows, x, grad
	cur := x
	for hi, l := range m.layers {
		z := ws.act[hi][:rows*l.out]
		linearForward(cur, rows, l.in, l.out, l.w, l.b, z)
		if l.hidden {
			var dact []T
			if grad {
				dact = ws.dact[hi][:rows*l.out]
			}
			if l.gamma != nil {
				layerNormGELUForward(z, rows, l.out, l.gamma, l.beta, ws.xhat[hi][:rows*l.out], ws.rstd[hi][:rows], dact)
			} else {
				geluForward(z, z, dact, rows, l.out)
			}
		}
		cur = z
	}
	return cur
}

// gradMode says what backward does with the parameter gradients.
type gradMode int

const (
	gradNone gradMode = iota // leave them (VJP, Jacobian)
	gradAdd                  // add to them
	gradSet                  // overwrite them
)

// backward propagates dy through the cache of the last forward on ws,
// treating the parameter gradients as mode says; with needDX it returns
// dL/dx (a slice of ws), otherwise nil: training skips the first layer's
// dX GEMM.
func (m *net[T]) backward(ws *workspace[T], dy []T, mode gradMode, needDX bool) []T {
	rows := ws.rows
	nl := len(m.layers)
	dz := dy
	for li := nl - 1; li >= 0; li-- {
		l := m.layers[li]
		xin := ws.x
		if li > 0 {
			xin = ws.act[li-1][:rows*l.in]
		}
		var gw, gb []T
		if mode != gradNone {
			gw, gb = l.gw, l.gb
		}
		var dx []T
		switch {
		case li > 0:
			dx = ws.buf[(nl-1-li)%2][:rows*l.in]
		case needDX:
			dx = ws.dx[:rows*l.in]
		}
		linearBackward(xin, dz, rows, l.in, l.out, l.w, gw, gb, dx, mode == gradSet)
		if li > 0 {
			p := m.layers[li-1]
			hi := li - 1
			if p.gamma != nil {
				var dgamma, dbeta []T
				if mode != gradNone {
					dgamma, dbeta = p.ggamma, p.gbeta
					if mode == gradSet {
						clear(dgamma)
						clear(dbeta)
					}
				}
				layerNormGELUBackward(dx, ws.dact[hi][:rows*p.out], ws.xhat[hi][:rows*p.out], ws.rstd[hi][:rows], p.gamma, rows, p.out, dgamma, dbeta)
			} else {
				geluBackward(dx, ws.dact[hi][:rows*p.out], dx, rows, p.out)
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
func growTo[T any](s []T, n int) []T {
	if cap(s) >= n {
		return s[:n]
	}
	return make([]T, n)
}
