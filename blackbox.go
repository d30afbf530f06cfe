package insitu

import (
	"context"
	"fmt"
)

// Spec describes a black box: the box its inputs must lie in and the names
// of its output components.
type Spec struct {
	Name string   // kind or instrument name, used in errors and journals
	In   Space    // every query must lie inside
	Out  []string // names of the output components; len(Out) = m
	// OutUnits are the outputs' units, one per output ("" where
	// dimensionless or unknown), or empty when the box knows none.
	OutUnits []string
}

// Validate checks the input space and that there is at least one output.
func (s Spec) Validate() error {
	if err := s.In.Validate(); err != nil {
		return fmt.Errorf("%s: input space: %w", s.Name, err)
	}
	if len(s.Out) == 0 {
		return fmt.Errorf("%s: no outputs", s.Name)
	}
	if len(s.OutUnits) != 0 && len(s.OutUnits) != len(s.Out) {
		return fmt.Errorf("%s: %d output units for %d outputs", s.Name, len(s.OutUnits), len(s.Out))
	}
	return nil
}

// OutUnit returns the unit of output k, "" when the box knows none.
func (s Spec) OutUnit(k int) string {
	if k < len(s.OutUnits) {
		return s.OutUnits[k]
	}
	return ""
}

// BlackBox is anything that maps an input vector to a measured output vector.
// One call is one query: apply, settle, measure. Implementations must not
// retain x, and must return a fresh output slice.
type BlackBox interface {
	Spec() Spec
	Query(ctx context.Context, x []float64) ([]float64, error)
}

// Differentiable is a black box that knows its exact Jacobian: VJP returns
// J(x)ᵀ·v for an output cotangent v. Twins offer it for the exact-gradient
// baseline and for measuring how good a surrogate's gradient is.
type Differentiable interface {
	VJP(ctx context.Context, x, v []float64) ([]float64, error)
}

// Batcher is a black box that can answer several queries at once, for
// example by running independent simulations on every core.
type Batcher interface {
	QueryBatch(ctx context.Context, xs [][]float64) ([][]float64, error)
}

// SafeStater is a black box with a state it can always be left in: outputs
// off, SLM blanked, DAC at 0 V. Hardware must implement it.
type SafeStater interface {
	SafeState(ctx context.Context) error
}

// Reader is a black box that can read its outputs without applying an
// input: a rig measures its sensors and leaves its actuators as they are.
// The guard polls it while a suspender holds the run, when no query may
// reach the device.
type Reader interface {
	Read(ctx context.Context) ([]float64, error)
}

// Sequenced is a black box whose answers depend on how many queries it has
// answered, as a seeded twin's noise streams do. Skip(n) moves it on as if
// it had answered n more queries: a resumed run calls it for the queries it
// serves from its journal, so that its next live query gets the noise it
// had in the uninterrupted run.
type Sequenced interface {
	Skip(n uint64)
}

// QueryBatch answers xs with b's own QueryBatch when it has one, and one
// query at a time otherwise.
func QueryBatch(ctx context.Context, b BlackBox, xs [][]float64) ([][]float64, error) {
	if bb, ok := b.(Batcher); ok {
		return bb.QueryBatch(ctx, xs)
	}
	ys := make([][]float64, len(xs))
	for i, x := range xs {
		y, err := b.Query(ctx, x)
		if err != nil {
			return ys[:i], fmt.Errorf("%s: query %d: %w", b.Spec().Name, i, err)
		}
		ys[i] = y
	}
	return ys, nil
}
