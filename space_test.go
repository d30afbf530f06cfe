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
