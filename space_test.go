package insitu

import (
	"math"
	"strings"
	"testing"
)

func TestSpaceValidateNamesCoordinate(t *testing.T) {
	nan := math.NaN()
	cases := []struct {
		name string
		s    Space
		want string // substring of the error; "" = valid
	}{
		{"valid", Space{Lower: []float64{0, -1}, Upper: []float64{1, 1}}, ""},
		{"point interval", Space{Lower: []float64{2}, Upper: []float64{2}}, ""},
		{"zero dims", Space{}, "zero dimensions"},
		{"length mismatch", Space{Lower: []float64{0, 0}, Upper: []float64{1}}, "2 lower bounds but 1 upper"},
		{"names mismatch", Space{Names: []string{"a"}, Lower: []float64{0, 0}, Upper: []float64{1, 1}}, "1 names"},
		{"units mismatch", Space{Units: []string{"V", "V", "V"}, Lower: []float64{0, 0}, Upper: []float64{1, 1}}, "3 units"},
		{"periodic mismatch", Space{Periodic: []bool{true}, Lower: []float64{0, 0}, Upper: []float64{1, 1}}, "1 periodic flags"},
		{"periodic", Space{Periodic: []bool{true, false}, Lower: []float64{0, 0}, Upper: []float64{6.28, 1}}, ""},
		{"lower > upper", Space{Names: []string{"a", "gate"}, Lower: []float64{0, 3}, Upper: []float64{1, 2}}, "coordinate 1 (gate): lower bound 3 exceeds upper bound 2"},
		{"NaN lower", Space{Lower: []float64{0, 0, nan}, Upper: []float64{1, 1, 1}}, "coordinate 2 (x[2]): lower bound NaN"},
		{"NaN upper", Space{Lower: []float64{0}, Upper: []float64{nan}}, "coordinate 0 (x[0]): upper bound NaN"},
		{"Inf upper", Space{Lower: []float64{0}, Upper: []float64{math.Inf(1)}}, "not finite"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.s.Validate()
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("valid space rejected: %v", err)
			case c.want != "" && err == nil:
				t.Fatalf("invalid space accepted, want error with %q", c.want)
			case c.want != "" && !strings.Contains(err.Error(), c.want):
				t.Fatalf("error %q does not contain %q", err, c.want)
			}
		})
	}
}

func TestSpaceCloneIsDeep(t *testing.T) {
	s := Space{Names: []string{"phi"}, Units: []string{"rad"}, Lower: []float64{0}, Upper: []float64{6.28}, Periodic: []bool{true}}
	c := s.Clone()
	c.Names[0], c.Units[0], c.Lower[0], c.Upper[0], c.Periodic[0] = "x", "V", -1, 1, false
	if s.Names[0] != "phi" || s.Units[0] != "rad" || s.Lower[0] != 0 || s.Upper[0] != 6.28 || !s.IsPeriodic(0) {
		t.Errorf("the clone shares memory with the original: %+v", s)
	}
	if b := Box(2, 0, 1).Clone(); b.Names != nil || b.Periodic != nil || b.IsPeriodic(1) {
		t.Errorf("nil slices must stay nil: %+v", b)
	}
}

func TestSpaceNarrowed(t *testing.T) {
	s := Space{Lower: []float64{0, 0}, Upper: []float64{6, 6}, Periodic: []bool{true, true}}
	n := s.Narrowed([]float64{0, 1}, []float64{6, 6})
	if !n.IsPeriodic(0) || n.IsPeriodic(1) || n.Lower[1] != 1 || !s.IsPeriodic(1) {
		t.Errorf("narrowed %+v (original %+v): a narrowed phase is an interval, the other stays periodic", n, s)
	}
}

func TestSpaceContainsAndClamp(t *testing.T) {
	s := Box(3, -1, 1)
	if err := s.Contains([]float64{-1, 0, 1}); err != nil {
		t.Fatalf("boundary point rejected: %v", err)
	}
	for _, x := range [][]float64{{0, 0}, {0, 1.0000001, 0}, {0, 0, math.NaN()}, {math.Inf(-1), 0, 0}} {
		if s.Contains(x) == nil {
			t.Errorf("Contains(%v) accepted an invalid point", x)
		}
	}
	x := []float64{-3, 0.5, 2}
	if n := s.Clamp(x); n != 2 || x[0] != -1 || x[1] != 0.5 || x[2] != 1 {
		t.Errorf("Clamp moved %d coordinates to %v", n, x)
	}
	y := []float64{math.NaN(), 0, 0}
	s.Clamp(y)
	if !math.IsNaN(y[0]) {
		t.Error("Clamp hid a NaN")
	}
}
