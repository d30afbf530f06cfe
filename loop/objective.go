package loop

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/insitu-lab/insitu"
)

// The objective vocabulary lives in the root package, so that a twin can
// register its figure of merit without importing the optimizer; these
// aliases keep the loop's own spelling.
type (
	Objective        = insitu.Objective
	Direction        = insitu.Direction
	ObjectiveConfig  = insitu.ObjectiveConfig
	Targeter         = insitu.Targeter
	ObjectiveFactory = insitu.ObjectiveFactory
)

const (
	Minimize = insitu.Minimize
	Maximize = insitu.Maximize
)

func init() {
	insitu.RegisterObjective("distance", func(ctx context.Context, c ObjectiveConfig, b insitu.BlackBox) (Objective, Direction, error) {
		return newTargetObjective(c, b, false)
	})
	insitu.RegisterObjective("mse", func(ctx context.Context, c ObjectiveConfig, b insitu.BlackBox) (Objective, Direction, error) {
		return newTargetObjective(c, b, true)
	})
	insitu.RegisterObjective("identity", func(ctx context.Context, c ObjectiveConfig, b insitu.BlackBox) (Objective, Direction, error) {
		sel, err := selectOutputs(c, b.Spec())
		if err != nil {
			return nil, "", err
		}
		if len(sel.idx) != 1 {
			return nil, "", fmt.Errorf("objective.outputs: identity needs exactly one output, %s has %d selected", b.Spec().Name, len(sel.idx))
		}
		return identity{i: sel.idx[0], m: len(b.Spec().Out)}, Minimize, nil
	})
}

// NewObjective builds the configured objective for the (unguarded) box and
// returns it with its direction.
func NewObjective(ctx context.Context, c ObjectiveConfig, inner insitu.BlackBox) (Objective, Direction, error) {
	kind := c.Kind
	if kind == "" {
		kind = "distance"
	}
	f, err := insitu.LookupObjective(kind)
	if err != nil {
		return nil, "", fmt.Errorf("objective.kind: %w", err)
	}
	obj, dir, err := f(ctx, c, inner)
	if err != nil {
		return nil, "", err
	}
	switch c.Direction {
	case "":
	case Minimize, Maximize:
		dir = c.Direction
	default:
		return nil, "", fmt.Errorf("objective.direction: %q: want min or max", c.Direction)
	}
	return obj, dir, nil
}

type selection struct{ idx []int }

func selectOutputs(c ObjectiveConfig, s insitu.Spec) (selection, error) {
	if len(c.Outputs) == 0 {
		idx := make([]int, len(s.Out))
		for i := range idx {
			idx[i] = i
		}
		return selection{idx}, nil
	}
	var sel selection
	for _, name := range c.Outputs {
		i := slices.Index(s.Out, name)
		if i < 0 {
			return selection{}, fmt.Errorf("objective.outputs: %s has no output %q (it has %v)", s.Name, name, s.Out)
		}
		sel.idx = append(sel.idx, i)
	}
	return sel, nil
}

// targetObjective is ‖y_S − t‖₂ or mean((y_S − t)²) over the selected
// outputs S.
type targetObjective struct {
	idx    []int
	target []float64
	m      int
	mse    bool
}

func newTargetObjective(c ObjectiveConfig, b insitu.BlackBox, mse bool) (Objective, Direction, error) {
	spec := b.Spec()
	sel, err := selectOutputs(c, spec)
	if err != nil {
		return nil, "", err
	}
	t := c.Target
	if t == nil {
		tg, ok := b.(Targeter)
		if !ok {
			return nil, "", errors.New("objective.target: " + spec.Name + " cannot name a target: give objective.target")
		}
		_, y := tg.Target(c.TargetSeed)
		for _, i := range sel.idx {
			t = append(t, y[i])
		}
	}
	if len(t) != len(sel.idx) {
		return nil, "", fmt.Errorf("objective.target: %d values for %d selected outputs", len(t), len(sel.idx))
	}
	for i, v := range t {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, "", fmt.Errorf("objective.target[%d]: %v is not finite", i, v)
		}
	}
	return &targetObjective{idx: sel.idx, target: slices.Clone(t), m: len(spec.Out), mse: mse}, Minimize, nil
}

func (o *targetObjective) Value(y []float64) float64 {
	var s float64
	for k, i := range o.idx {
		r := y[i] - o.target[k]
		s += r * r
	}
	if o.mse {
		return s / float64(len(o.idx))
	}
	return math.Sqrt(s)
}

func (o *targetObjective) Grad(y []float64) []float64 {
	g := make([]float64, o.m)
	if o.mse {
		for k, i := range o.idx {
			g[i] = 2 * (y[i] - o.target[k]) / float64(len(o.idx))
		}
		return g
	}
	r := o.Value(y)
	if r == 0 { // zero is a subgradient, and the minimum
		return g
	}
	for k, i := range o.idx {
		g[i] = (y[i] - o.target[k]) / r
	}
	return g
}

// identity is a black box that returns its own objective.
type identity struct{ i, m int }

func (o identity) Value(y []float64) float64 { return y[o.i] }

func (o identity) Grad(y []float64) []float64 {
	g := make([]float64, o.m)
	g[o.i] = 1
	return g
}
