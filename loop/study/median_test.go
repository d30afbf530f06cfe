package study

import (
	"math"
	"testing"
)

// median averages the two middle values of an even-length sample and
// meanSD uses the n−1 (sample) standard deviation.
func TestMedianAndMeanSD(t *testing.T) {
	for _, tc := range []struct {
		v    []float64
		want float64
	}{
		{[]float64{3}, 3},
		{[]float64{5, 1, 3}, 3},
		{[]float64{4, 1, 3, 2}, 2.5},
		{[]float64{10, 0}, 5},
	} {
		if got := median(append([]float64(nil), tc.v...)); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.v, got, tc.want)
		}
	}
	if got := median(nil); !math.IsNaN(got) {
		t.Errorf("median of nothing = %v, want NaN", got)
	}
	if m, sd := meanSD([]float64{1, 2, 3, 4}); m != 2.5 || math.Abs(sd-math.Sqrt(5.0/3)) > 1e-15 {
		t.Errorf("meanSD(1..4) = %v, %v; want 2.5, %v", m, sd, math.Sqrt(5.0/3))
	}
	if m, sd := meanSD([]float64{7}); m != 7 || sd != 0 {
		t.Errorf("meanSD(7) = %v, %v; want 7, 0", m, sd)
	}
}
