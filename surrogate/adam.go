package surrogate

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Adam is the Adam optimizer (Kingma & Ba) with bias correction, in the
// form PyTorch uses: p −= LR·m̂/(√v̂ + Eps). The hyperparameters may be
// changed between steps.
type Adam struct {
	LR, Beta1, Beta2, Eps float64

	m, v []float64
	t    int
}

// NewAdam returns an optimizer for n parameters with β₁ = 0.9, β₂ = 0.999,
// ε = 1e-8.
func NewAdam(n int, lr float64) *Adam {
	return &Adam{LR: lr, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, m: make([]float64, n), v: make([]float64, n)}
}

// Len returns the number of parameters the optimizer is sized for.
func (a *Adam) Len() int { return len(a.m) }

// Steps returns the number of steps taken since creation or the last Reset.
func (a *Adam) Steps() int { return a.t }

// Reset clears the moments and the step count, as for a fresh optimizer.
func (a *Adam) Reset() {
	clear(a.m)
	clear(a.v)
	a.t = 0
}

// Step updates params in place from grads. It panics if either length
// differs from the optimizer's.
func (a *Adam) Step(params, grads []float64) {
	if len(params) != len(a.m) || len(grads) != len(a.m) {
		panic(fmt.Sprintf("surrogate: Adam.Step: %d params and %d grads for an optimizer of %d", len(params), len(grads), len(a.m)))
	}
	a.t++
	b1, b2 := a.Beta1, a.Beta2
	step := a.LR / (1 - math.Pow(b1, float64(a.t)))
	rbc2 := 1 / math.Sqrt(1-math.Pow(b2, float64(a.t)))
	eps := a.Eps
	update := func(lo, hi int) {
		m, v, p, g := a.m[lo:hi], a.v[lo:hi], params[lo:hi], grads[lo:hi]
		for i, gi := range g {
			mi := b1*m[i] + (1-b1)*gi
			vi := b2*v[i] + (1-b2)*gi*gi
			m[i], v[i] = mi, vi
			p[i] -= step * mi / (math.Sqrt(vi)*rbc2 + eps)
		}
	}
	// Elementwise, so splitting across goroutines cannot change the result.
	if parallel(len(params), 1) {
		parallelRows(len(params), update)
	} else {
		update(0, len(params))
	}
}

const (
	adamMagic   = "ADAM"
	adamVersion = 1
	adamHeader  = 4 + 4 + 8 + 8 + 4*8
)

// MarshalBinary encodes the hyperparameters, the step count and both
// moment vectors (little-endian), for checkpoints.
func (a *Adam) MarshalBinary() ([]byte, error) {
	n := len(a.m)
	b := make([]byte, 0, adamHeader+16*n)
	b = append(b, adamMagic...)
	b = binary.LittleEndian.AppendUint32(b, adamVersion)
	b = binary.LittleEndian.AppendUint64(b, uint64(n))
	b = binary.LittleEndian.AppendUint64(b, uint64(a.t))
	for _, f := range []float64{a.LR, a.Beta1, a.Beta2, a.Eps} {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(f))
	}
	for _, s := range [][]float64{a.m, a.v} {
		for _, f := range s {
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(f))
		}
	}
	return b, nil
}

// UnmarshalBinary replaces the whole state with one written by
// MarshalBinary.
func (a *Adam) UnmarshalBinary(data []byte) error {
	if len(data) < 8 || string(data[:4]) != adamMagic {
		return errors.New("surrogate: not an Adam state")
	}
	if v := binary.LittleEndian.Uint32(data[4:]); v != adamVersion {
		return fmt.Errorf("surrogate: Adam state version %d, this build reads version %d", v, adamVersion)
	}
	if len(data) < adamHeader {
		return errors.New("surrogate: Adam state truncated")
	}
	n64 := binary.LittleEndian.Uint64(data[8:])
	if n64 > uint64(len(data)) || uint64(len(data)) != adamHeader+16*n64 {
		return fmt.Errorf("surrogate: Adam state is %d bytes, %d parameters need %d", len(data), n64, adamHeader+16*n64)
	}
	n := int(n64)
	t := binary.LittleEndian.Uint64(data[16:])
	if t > math.MaxInt32 {
		return fmt.Errorf("surrogate: Adam state has step count %d", t)
	}
	f := func(off int) float64 { return math.Float64frombits(binary.LittleEndian.Uint64(data[off:])) }
	a.LR, a.Beta1, a.Beta2, a.Eps = f(24), f(32), f(40), f(48)
	a.t = int(t)
	a.m, a.v = make([]float64, n), make([]float64, n)
	for i := range n {
		a.m[i] = f(adamHeader + 8*i)
		a.v[i] = f(adamHeader + 8*(n+i))
	}
	return nil
}
