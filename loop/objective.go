package loop

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

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
	insitu.RegisterObjective("fraction", newFraction)
	insitu.RegisterObjective("overlap", newOverlap)
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
	return selectNames("objective.outputs", c.Outputs, s)
}

// selectNames finds the named outputs of s (all of them when names is
// empty); key names the config key in errors.
func selectNames(key string, names []string, s insitu.Spec) (selection, error) {
	if len(names) == 0 {
		idx := make([]int, len(s.Out))
		for i := range idx {
			idx[i] = i
		}
		return selection{idx}, nil
	}
	var sel selection
	for _, name := range names {
		i := slices.Index(s.Out, name)
		if i < 0 {
			return selection{}, fmt.Errorf("%s: %s has no output %q (it has %s)", key, s.Name, name, someNames(s.Out))
		}
		sel.idx = append(sel.idx, i)
	}
	return sel, nil
}

// someNames lists names for an error message: all of a short list, the
// first few and the count of a long one (a field output has thousands).
func someNames(names []string) string {
	const show = 8
	if len(names) <= show {
		return "[" + strings.Join(names, " ") + "]"
	}
	return fmt.Sprintf("[%s … %s], %d in all", strings.Join(names[:show-1], " "), names[len(names)-1], len(names))
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

// fraction is Σ_S y / Σ_T y: the share of the measured power that falls
// in the spots S (outputs, or the twin's Spots), of the total over T
// (total, or every output). It is what a camera or a pair of detectors can
// tell, whatever the exposure or the laser's drift.
type fraction struct {
	in, of []bool // output i counts in the spots, in the total
}

func newFraction(_ context.Context, c ObjectiveConfig, b insitu.BlackBox) (Objective, Direction, error) {
	spec := b.Spec()
	if c.Target != nil {
		return nil, "", errors.New("objective.target: fraction takes no target (it measures the share in objective.outputs)")
	}
	o := fraction{in: make([]bool, len(spec.Out)), of: make([]bool, len(spec.Out))}
	if len(c.Outputs) > 0 {
		sel, err := selectOutputs(c, spec)
		if err != nil {
			return nil, "", err
		}
		for _, i := range sel.idx {
			o.in[i] = true
		}
	} else {
		sp, ok := b.(insitu.Spotter)
		var spots []int
		if ok {
			spots = sp.Spots()
		}
		if len(spots) == 0 {
			return nil, "", errors.New("objective.outputs: " + spec.Name + " cannot name its target spots: list the outputs inside them")
		}
		for _, i := range spots {
			o.in[i] = true
		}
	}
	if len(c.Total) == 0 {
		for i := range o.of {
			o.of[i] = true
		}
	} else {
		sel, err := selectNames("objective.total", c.Total, spec)
		if err != nil {
			return nil, "", err
		}
		for _, i := range sel.idx {
			o.of[i] = true
		}
	}
	return o, Maximize, nil
}

func (o fraction) sums(y []float64) (spot, total float64) {
	for i, v := range y {
		if o.in[i] {
			spot += v
		}
		if o.of[i] {
			total += v
		}
	}
	return spot, total
}

// Value is 0 when nothing was measured: a dark frame has no share.
func (o fraction) Value(y []float64) float64 {
	s, t := o.sums(y)
	if !(t > 0) {
		return 0
	}
	return s / t
}

// Grad is (1[i ∈ S] − f·1[i ∈ T]) / Σ_T y.
func (o fraction) Grad(y []float64) []float64 {
	g := make([]float64, len(y))
	s, t := o.sums(y)
	if !(t > 0) {
		return g
	}
	f := s / t
	for i := range g {
		if o.in[i] {
			g[i] += 1 / t
		}
		if o.of[i] {
			g[i] -= f / t
		}
	}
	return g
}

// overlap is the cosine similarity ⟨y_S, t⟩/(‖y_S‖·‖t‖) of the selected
// outputs with the target: for an image, how well the pattern's shape
// matches the target's whatever its brightness.
type overlap struct {
	idx    []int
	target []float64 // unit length
	m      int
}

func newOverlap(_ context.Context, c ObjectiveConfig, b insitu.BlackBox) (Objective, Direction, error) {
	t, _, err := newTargetObjective(c, b, false)
	if err != nil {
		return nil, "", err
	}
	d := t.(*targetObjective)
	var n float64
	for _, v := range d.target {
		n += v * v
	}
	if !(n > 0) {
		return nil, "", errors.New("objective.target: overlap needs a target that is not all zero")
	}
	u := make([]float64, len(d.target))
	for i, v := range d.target {
		u[i] = v / math.Sqrt(n)
	}
	return overlap{idx: d.idx, target: u, m: d.m}, Maximize, nil
}

func (o overlap) dots(y []float64) (yt, yy float64) {
	for k, i := range o.idx {
		yt += y[i] * o.target[k]
		yy += y[i] * y[i]
	}
	return yt, yy
}

func (o overlap) Value(y []float64) float64 {
	yt, yy := o.dots(y)
	if !(yy > 0) {
		return 0
	}
	return yt / math.Sqrt(yy)
}

// Grad is t/‖y‖ − f·y/‖y‖² (t of unit length).
func (o overlap) Grad(y []float64) []float64 {
	g := make([]float64, o.m)
	yt, yy := o.dots(y)
	if !(yy > 0) {
		return g
	}
	ny := math.Sqrt(yy)
	f := yt / ny
	for k, i := range o.idx {
		g[i] = o.target[k]/ny - f*y[i]/yy
	}
	return g
}

func (o identity) Grad(y []float64) []float64 {
	g := make([]float64, o.m)
	g[o.i] = 1
	return g
}
