package surrogate

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/insitu-lab/insitu/surrogate/internal/adam"
)

// Adam is the Adam optimizer (Kingma & Ba) with bias correction, in the
// form PyTorch uses: p −= LR·m̂/(√v̂ + Eps). The hyperparameters may be
// changed between steps. Its moments have the precision of the network it
// trains: Step updates float64 parameters, Step32 float32 ones.
type Adam struct {
	LR, Beta1, Beta2, Eps float64

	m, v     []float64
	m32, v32 []float32
	f32      bool
	t        int
}

// NewAdam returns an optimizer for n float64 parameters with β₁ = 0.9,
// β₂ = 0.999, ε = 1e-8.
func NewAdam(n int, lr float64) *Adam { return newAdam(n, lr, Float64) }

// NewAdam32 is NewAdam for n float32 parameters.
func NewAdam32(n int, lr float64) *Adam { return newAdam(n, lr, Float32) }

func newAdam(n int, lr float64, p Precision) *Adam {
	a := &Adam{LR: lr, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}
	if p == Float32 {
		a.f32, a.m32, a.v32 = true, make([]float32, n), make([]float32, n)
	} else {
		a.m, a.v = make([]float64, n), make([]float64, n)
	}
	return a
}

// Len returns the number of parameters the optimizer is sized for.
func (a *Adam) Len() int { return max(len(a.m), len(a.m32)) }

// Precision returns the precision of the moments and of the parameters
// the optimizer updates.
func (a *Adam) Precision() Precision {
	if a.f32 {
		return Float32
	}
	return Float64
}

// Steps returns the number of steps taken since creation or the last Reset.
func (a *Adam) Steps() int { return a.t }

// Reset clears the moments and the step count, as for a fresh optimizer.
func (a *Adam) Reset() {
	clear(a.m)
	clear(a.v)
	clear(a.m32)
	clear(a.v32)
	a.t = 0
}

// Step updates float64 params in place from grads. It panics if either
// length differs from the optimizer's or the optimizer is float32.
func (a *Adam) Step(params, grads []float64) {
	if a.f32 {
		panic("surrogate: Adam.Step on a float32 optimizer (use Step32)")
	}
	adamStep(a, a.m, a.v, params, grads)
}

// Step32 is Step for a float32 optimizer and parameters.
func (a *Adam) Step32(params, grads []float32) {
	if !a.f32 {
		panic("surrogate: Adam.Step32 on a float64 optimizer (use Step)")
	}
	adamStep(a, a.m32, a.v32, params, grads)
}

func (m *net[T]) adamStep(a *Adam) {
	switch p := any(m.params).(type) {
	case []float64:
		a.Step(p, any(m.grads).([]float64))
	case []float32:
		a.Step32(p, any(m.grads).([]float32))
	}
}

// adamStep is one step in T: the bias corrections are taken in float64
// and rounded once, the update of each element is in T (package
// internal/adam: vector assembly where the CPU has it, the same bits as
// its Go loop).
func adamStep[T Float](a *Adam, m, v, params, grads []T) {
	if len(params) != len(m) || len(grads) != len(m) {
		panic(fmt.Sprintf("surrogate: Adam.Step: %d params and %d grads for an optimizer of %d", len(params), len(grads), len(m)))
	}
	a.t++
	c := adam.Coef[T]{
		B1: T(a.Beta1), C1: T(1 - a.Beta1), B2: T(a.Beta2), C2: T(1 - a.Beta2),
		Step: T(a.LR / (1 - math.Pow(a.Beta1, float64(a.t)))),
		RBC2: T(1 / math.Sqrt(1-math.Pow(a.Beta2, float64(a.t)))),
		Eps:  T(a.Eps),
	}
	update := func(lo, hi int) { adam.Update(m[lo:hi], v[lo:hi], params[lo:hi], grads[lo:hi], c) }
	// Elementwise, so splitting across goroutines cannot change the result.
	if parallel(len(params), 1) {
		parallelRows(len(params), update)
	} else {
		update(0, len(params))
	}
}

// Adam state versions: 1 holds float64 moments, 2 float32 ones; the header
// is the same.
const (
	adamMagic     = "ADAM"
	adamVersion   = 1
	adamVersion32 = 2
	adamHeader    = 4 + 4 + 8 + 8 + 4*8
)

// MarshalBinary encodes the hyperparameters, the step count and both
// moment vectors (little-endian, in the optimizer's precision), for
// checkpoints. A float64 optimizer writes version 1, as before float32
// existed.
func (a *Adam) MarshalBinary() ([]byte, error) {
	n, width, version := a.Len(), 8, uint32(adamVersion)
	if a.f32 {
		width, version = 4, adamVersion32
	}
	b := make([]byte, 0, adamHeader+2*width*n)
	b = append(b, adamMagic...)
	b = binary.LittleEndian.AppendUint32(b, version)
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
	for _, s := range [][]float32{a.m32, a.v32} {
		for _, f := range s {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(f))
		}
	}
	return b, nil
}

// UnmarshalBinary replaces the whole state, precision included, with one
// written by MarshalBinary.
func (a *Adam) UnmarshalBinary(data []byte) error {
	if len(data) < 8 || string(data[:4]) != adamMagic {
		return errors.New("surrogate: not an Adam state")
	}
	width := 8
	switch v := binary.LittleEndian.Uint32(data[4:]); v {
	case adamVersion:
	case adamVersion32:
		width = 4
	default:
		return fmt.Errorf("surrogate: Adam state version %d, this build reads versions %d and %d", v, adamVersion, adamVersion32)
	}
	if len(data) < adamHeader {
		return errors.New("surrogate: Adam state truncated")
	}
	n64 := binary.LittleEndian.Uint64(data[8:])
	if n64 > uint64(len(data)) || uint64(len(data)) != adamHeader+2*uint64(width)*n64 {
		return fmt.Errorf("surrogate: Adam state is %d bytes, %d parameters need %d", len(data), n64, adamHeader+2*uint64(width)*n64)
	}
	n := int(n64)
	t := binary.LittleEndian.Uint64(data[16:])
	if t > math.MaxInt32 {
		return fmt.Errorf("surrogate: Adam state has step count %d", t)
	}
	f := func(off int) float64 { return math.Float64frombits(binary.LittleEndian.Uint64(data[off:])) }
	a.LR, a.Beta1, a.Beta2, a.Eps = f(24), f(32), f(40), f(48)
	a.t = int(t)
	a.m, a.v, a.m32, a.v32 = nil, nil, nil, nil
	a.f32 = width == 4
	diverged := func(i int, m, v float64) error {
		if finite(m) && finite(v) && v >= 0 {
			return nil
		}
		return fmt.Errorf("surrogate: Adam state of parameter %d is m = %v, v = %v: the training diverged before it was saved", i, m, v)
	}
	if a.f32 {
		g := func(off int) float32 { return math.Float32frombits(binary.LittleEndian.Uint32(data[off:])) }
		a.m32, a.v32 = make([]float32, n), make([]float32, n)
		for i := range n {
			a.m32[i] = g(adamHeader + 4*i)
			a.v32[i] = g(adamHeader + 4*(n+i))
			if err := diverged(i, float64(a.m32[i]), float64(a.v32[i])); err != nil {
				return err
			}
		}
	} else {
		a.m, a.v = make([]float64, n), make([]float64, n)
		for i := range n {
			a.m[i] = f(adamHeader + 8*i)
			a.v[i] = f(adamHeader + 8*(n+i))
			if err := diverged(i, a.m[i], a.v[i]); err != nil {
				return err
			}
		}
	}
	for _, h := range []float64{a.LR, a.Beta1, a.Beta2, a.Eps} {
		if !finite(h) {
			return fmt.Errorf("surrogate: Adam state has hyperparameters %v, %v, %v, %v", a.LR, a.Beta1, a.Beta2, a.Eps)
		}
	}
	return nil
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
