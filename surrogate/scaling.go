package surrogate

import (
	"fmt"
	"math"
	"slices"

	"github.com/insitu-lab/insitu"
)

// InputScaling names the map from raw inputs x to the network's inputs u:
// an affine map u = (x − shift)·inv per coordinate, except that circle
// gives each periodic coordinate two inputs, the point on the unit circle
// of its phase. Every map is fixed by the input Space alone, so a model
// needs no data to build it and reloads identically. A zero-width
// coordinate always maps to u = 0 and gets gradient 0.
type InputScaling string

// Input scalings. With c the box centre and w its width per coordinate:
const (
	InputNone   InputScaling = "none"   // u = x
	InputBox    InputScaling = "box"    // u = (x − c)/(w/2): the box onto [−1, 1]
	InputZScore InputScaling = "zscore" // u = (x − c)/(w/√12): mean 0, variance 1 for x uniform in the box
	InputUnit   InputScaling = "unit"   // u = (x − lower)/w: the box onto [0, 1]
	// InputCircle maps a periodic coordinate to (cos θ, sin θ), θ =
	// 2π(x − lower)/w, and every other coordinate as box does. The two
	// ends of a phase's range are then the same input, as they are the same
	// setting, and an interference term cos(φ_i − φ_j) is a product of the
	// network's inputs instead of a function it must build from a line.
	InputCircle InputScaling = "circle"
)

// OutputScaling names the map y' = (y − mean_o)/std_o from raw outputs to
// the targets the network is trained on. The statistics come from the data
// the first Fit (or SetOutputScale) sees.
type OutputScaling string

// Output scalings.
const (
	OutputNone   OutputScaling = "none"   // y' = y (mean 0, std 1)
	OutputZScore OutputScaling = "zscore" // per component: its own mean and population std
	OutputScale  OutputScaling = "scale"  // per-component mean, one std for all: √(mean_o var_o)
)

// Defaults taken when an Arch leaves a scaling empty: the pair with the
// best measured GradPIE gradients on the CNON gradient study
// (docs/results/scaling-ablation.md). The box onto [−1, 1] gives the input
// the spread PyTorch's default initialization is sized for; [0, 1] halves
// the first layer's pre-activation spread and leaves the network too close
// to linear in x for the training budgets insitu uses.
const (
	DefaultInputScaling  = InputBox
	DefaultOutputScaling = OutputZScore
)

// InputScalings and OutputScalings list the valid names.
var (
	InputScalings  = []InputScaling{InputNone, InputBox, InputZScore, InputUnit, InputCircle}
	OutputScalings = []OutputScaling{OutputNone, OutputZScore, OutputScale}
)

// Validate reports an unknown name; the empty name (the default) is valid.
func (s InputScaling) Validate() error {
	switch s {
	case "", InputNone, InputBox, InputZScore, InputUnit, InputCircle:
		return nil
	}
	return fmt.Errorf("input scaling %q: want %q, %q, %q, %q or %q", string(s), InputNone, InputBox, InputZScore, InputUnit, InputCircle)
}

// Validate reports an unknown name; the empty name (the default) is valid.
func (s OutputScaling) Validate() error {
	switch s {
	case "", OutputNone, OutputZScore, OutputScale:
		return nil
	}
	return fmt.Errorf("output scaling %q: want %q, %q or %q", string(s), OutputNone, OutputZScore, OutputScale)
}

func (s InputScaling) orDefault() InputScaling {
	if s == "" {
		return DefaultInputScaling
	}
	return s
}

func (s OutputScaling) orDefault() OutputScaling {
	if s == "" {
		return DefaultOutputScaling
	}
	return s
}

// encoder is an input map: coordinate i becomes u[i] = (x_i − shift_i)·inv_i,
// or, when circ[i], the pair (cos θ, sin θ) at u[pos_i], θ = (x_i −
// shift_i)·inv_i. pos is nil when no coordinate is on a circle (u has x's
// length and coordinate i is u[i]).
type encoder struct {
	shift, inv []float64
	circ       []bool
	pos        []int
	nin        int // len(u)
}

// newEncoder returns the map s for the space's box (and, for circle, its
// periodic coordinates).
func newEncoder(s InputScaling, sp insitu.Space) encoder {
	lower, upper := sp.Lower, sp.Upper
	e := encoder{shift: make([]float64, len(lower)), inv: make([]float64, len(lower)), nin: len(lower)}
	for i, lo := range lower {
		w := upper[i] - lo
		if !(w > 0) {
			e.shift[i] = lo // inv 0: the coordinate maps to 0
			continue
		}
		c := lo + w/2
		switch s {
		case InputNone:
			e.shift[i], e.inv[i] = 0, 1
		case InputBox:
			e.shift[i], e.inv[i] = c, 2/w
		case InputZScore:
			e.shift[i], e.inv[i] = c, math.Sqrt(12)/w
		case InputUnit:
			e.shift[i], e.inv[i] = lo, 1/w
		case InputCircle:
			if !sp.IsPeriodic(i) {
				e.shift[i], e.inv[i] = c, 2/w
				continue
			}
			if e.circ == nil {
				e.circ = make([]bool, len(lower))
			}
			e.circ[i] = true
			e.shift[i], e.inv[i] = lo, 2*math.Pi/w
		default:
			panic(fmt.Sprintf("surrogate: input scaling %q", string(s)))
		}
	}
	if e.circ != nil {
		e.pos = make([]int, len(lower))
		k := 0
		for i := range lower {
			e.pos[i] = k
			k++
			if e.circ[i] {
				k++
			}
		}
		e.nin = k
	}
	return e
}

func (e encoder) equal(o encoder) bool {
	return e.nin == o.nin && slices.Equal(e.shift, o.shift) && slices.Equal(e.inv, o.inv) && slices.Equal(e.circ, o.circ)
}

// encode writes the network input of x into u (length nin).
func (e encoder) encode(u, x []float64) {
	if e.pos == nil {
		for i, v := range x {
			u[i] = (v - e.shift[i]) * e.inv[i]
		}
		return
	}
	for i, v := range x {
		t := (v - e.shift[i]) * e.inv[i]
		if !e.circ[i] {
			u[e.pos[i]] = t
			continue
		}
		s, c := math.Sincos(t)
		u[e.pos[i]], u[e.pos[i]+1] = c, s
	}
}

// pull writes gx = (∂u/∂x)ᵀ·gu, the chain rule through encode at x. gx
// and gu may be the same slice only when pos is nil.
func (e encoder) pull(gx, gu, x []float64) {
	if e.pos == nil {
		for i := range gx {
			gx[i] = gu[i] * e.inv[i]
		}
		return
	}
	for i := range gx {
		p := e.pos[i]
		if !e.circ[i] {
			gx[i] = gu[p] * e.inv[i]
			continue
		}
		s, c := math.Sincos((x[i] - e.shift[i]) * e.inv[i])
		gx[i] = (c*gu[p+1] - s*gu[p]) * e.inv[i]
	}
}

// outputMap returns the mean and std of the map s for the samples ys (at
// least one). A constant component gets std 1; a tiny one is floored at
// 1e-12·|mean| so standardizing stays finite.
func outputMap(s OutputScaling, ys [][]float64, out int) (mean, std []float64) {
	mean, std = make([]float64, out), make([]float64, out)
	if s == OutputNone {
		for o := range std {
			std[o] = 1
		}
		return mean, std
	}
	for i, y := range ys {
		if len(y) != out {
			panic(fmt.Sprintf("surrogate: output scale: sample %d has %d values, want %d", i, len(y), out))
		}
		for o, v := range y {
			mean[o] += v
		}
	}
	n := 1 / float64(len(ys))
	for o := range mean {
		mean[o] *= n
	}
	for _, y := range ys {
		for o, v := range y {
			d := v - mean[o]
			std[o] += d * d
		}
	}
	switch s {
	case OutputZScore:
		for o := range std {
			std[o] = floorStd(math.Sqrt(std[o]*n), mean[o])
		}
	case OutputScale:
		var v, am float64
		for o := range std {
			v += std[o] * n
			am = max(am, math.Abs(mean[o]))
		}
		sd := floorStd(math.Sqrt(v/float64(out)), am)
		for o := range std {
			std[o] = sd
		}
	default:
		panic(fmt.Sprintf("surrogate: output scaling %q", string(s)))
	}
	return mean, std
}

func floorStd(s, mean float64) float64 {
	if s == 0 {
		return 1
	}
	return max(s, 1e-12*math.Abs(mean))
}
