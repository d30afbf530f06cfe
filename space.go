package insitu

import (
	"errors"
	"fmt"
	"math"
)

// Space is a box in Rⁿ: one entry per input coordinate. Names, Units and
// Periodic may be empty; when present they have one entry per coordinate.
//
// A periodic coordinate is an angle whose bounds are one physical setting,
// such as an SLM pixel's phase in [0, 2π]: optimizers wrap a step that
// leaves the box around to the other side instead of clipping it at the
// bound, where clipping would pin the phase for good.
type Space struct {
	Names    []string
	Units    []string
	Lower    []float64
	Upper    []float64
	Periodic []bool
}

// IsPeriodic reports whether coordinate i is periodic.
func (s Space) IsPeriodic(i int) bool { return i < len(s.Periodic) && s.Periodic[i] }

// Clone returns a deep copy: a Spec handed out can be changed by its
// receiver without touching the black box's own.
func (s Space) Clone() Space {
	return Space{Names: clone(s.Names), Units: clone(s.Units), Lower: clone(s.Lower), Upper: clone(s.Upper), Periodic: clone(s.Periodic)}
}

// Narrowed returns a copy of s with the bounds lo and hi, which a caller
// takes from inside s's. A periodic coordinate whose bounds changed is no
// longer periodic: part of a circle is an interval.
func (s Space) Narrowed(lo, hi []float64) Space {
	n := s.Clone()
	n.Lower, n.Upper = clone(lo), clone(hi)
	for i := range n.Periodic {
		n.Periodic[i] = n.Periodic[i] && lo[i] == s.Lower[i] && hi[i] == s.Upper[i]
	}
	return n
}

// clone copies a slice, keeping nil nil.
func clone[T any](s []T) []T {
	if s == nil {
		return nil
	}
	return append(make([]T, 0, len(s)), s...)
}

// Box returns an n-dimensional space with the same bounds on every coordinate.
func Box(n int, lo, hi float64) Space {
	s := Space{Lower: make([]float64, n), Upper: make([]float64, n)}
	for i := range n {
		s.Lower[i], s.Upper[i] = lo, hi
	}
	return s
}

// Dim returns the number of coordinates.
func (s Space) Dim() int { return len(s.Lower) }

// Name returns the name of coordinate i, or "x[i]" when the space has no names.
func (s Space) Name(i int) string {
	if i < len(s.Names) && s.Names[i] != "" {
		return s.Names[i]
	}
	return fmt.Sprintf("x[%d]", i)
}

// Validate reports the first problem with the space, naming the coordinate.
func (s Space) Validate() error {
	n := len(s.Lower)
	switch {
	case n == 0:
		return errors.New("space has zero dimensions")
	case len(s.Upper) != n:
		return fmt.Errorf("space has %d lower bounds but %d upper bounds", n, len(s.Upper))
	case len(s.Names) != 0 && len(s.Names) != n:
		return fmt.Errorf("space has %d coordinates but %d names", n, len(s.Names))
	case len(s.Units) != 0 && len(s.Units) != n:
		return fmt.Errorf("space has %d coordinates but %d units", n, len(s.Units))
	case len(s.Periodic) != 0 && len(s.Periodic) != n:
		return fmt.Errorf("space has %d coordinates but %d periodic flags", n, len(s.Periodic))
	}
	for i := range n {
		lo, hi := s.Lower[i], s.Upper[i]
		switch {
		case math.IsNaN(lo) || math.IsInf(lo, 0):
			return fmt.Errorf("coordinate %d (%s): lower bound %v is not finite", i, s.Name(i), lo)
		case math.IsNaN(hi) || math.IsInf(hi, 0):
			return fmt.Errorf("coordinate %d (%s): upper bound %v is not finite", i, s.Name(i), hi)
		case lo > hi:
			return fmt.Errorf("coordinate %d (%s): lower bound %v exceeds upper bound %v", i, s.Name(i), lo, hi)
		}
	}
	return nil
}

// Contains returns nil when x has the right length, is finite and lies in
// the box, and otherwise an error naming the first offending coordinate.
func (s Space) Contains(x []float64) error {
	if len(x) != len(s.Lower) {
		return fmt.Errorf("input has %d coordinates, space has %d", len(x), len(s.Lower))
	}
	for i, v := range x {
		switch {
		case math.IsNaN(v) || math.IsInf(v, 0):
			return fmt.Errorf("coordinate %d (%s): value %v is not finite", i, s.Name(i), v)
		case v < s.Lower[i] || v > s.Upper[i]:
			return fmt.Errorf("coordinate %d (%s): value %v outside [%v, %v]", i, s.Name(i), v, s.Lower[i], s.Upper[i])
		}
	}
	return nil
}

// Clamp projects x into the box in place and returns how many coordinates
// moved. NaN coordinates are left alone: clamping must not hide them.
func (s Space) Clamp(x []float64) int {
	n := 0
	for i, v := range x {
		if v < s.Lower[i] {
			x[i], n = s.Lower[i], n+1
		} else if v > s.Upper[i] {
			x[i], n = s.Upper[i], n+1
		}
	}
	return n
}
