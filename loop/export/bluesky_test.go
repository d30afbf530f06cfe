package export

import (
	"fmt"
	"slices"
	"testing"
)

func vars(names ...string) []Variable {
	vs := make([]Variable, len(names))
	for i, n := range names {
		vs[i] = Variable{Name: n}
	}
	return vs
}

func grid(base string, rows, cols int) []string {
	var out []string
	for r := range rows {
		for c := range cols {
			out = append(out, fmt.Sprintf("%s_%d_%d", base, r, c))
		}
	}
	return out
}

func TestGroups(t *testing.T) {
	for _, tc := range []struct {
		names []string
		want  []string // key:shape
	}{
		{[]string{"q0[0]", "q0[1]", "q0[2]"}, []string{"q0:[3]"}},
		{grid("phi", 2, 3), []string{"phi:[2 3]"}},
		{[]string{"smu/voltage"}, []string{"smu_voltage:[]"}},
		{[]string{"u0", "u1", "theta0", "theta1", "theta2"}, []string{"u:[2]", "theta:[3]"}},
		{[]string{"a0", "a1", "b", "a2"}, []string{"a:[2]", "b:[]", "a2:[]"}},
		{[]string{"x1", "x2"}, []string{"x1:[]", "x2:[]"}},
		{[]string{"ch0"}, []string{"ch0:[]"}},
		{[]string{"cam/left", "cam.left"}, []string{"cam_left:[]", "cam_left_2:[]"}},
		{[]string{"phi_0_0", "phi_0_1", "phi_1_0"}, []string{"phi:[1 2]", "phi_1_0:[]"}},
		{[]string{"p0", "p2"}, []string{"p0:[]", "p2:[]"}},
		{[]string{"q0[0]", "q0[1]", "qT[0]", "qT[1]"}, []string{"q0:[2]", "qT:[2]"}},
	} {
		var got []string
		n := 0
		for _, g := range groups(vars(tc.names...), "") {
			shape := g.shape
			if shape == nil {
				shape = []int{}
			}
			got = append(got, fmt.Sprintf("%s:%v", g.key, shape))
			if g.first != n {
				t.Errorf("%v: group %s starts at %d, want %d", tc.names, g.key, g.first, n)
			}
			n += len(g.members)
		}
		if n != len(tc.names) {
			t.Errorf("%v: groups cover %d names", tc.names, n)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%v: groups %v, want %v", tc.names, got, tc.want)
		}
	}
}

// A 2-D group's value is rows of the query's values.
func TestGroupValue(t *testing.T) {
	gs := groups(vars(append([]string{"s"}, grid("phi", 2, 2)...)...), "")
	v := value(gs[1], []float64{9, 1, 2, 3, 4})
	if fmt.Sprint(v) != "[[1 2] [3 4]]" {
		t.Fatalf("value %v", v)
	}
	if v := value(gs[0], nil); v != nil {
		t.Fatalf("missing scalar %v, want nil", v)
	}
}
