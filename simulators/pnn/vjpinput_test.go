package pnn

import (
	"math"
	"strings"
	"testing"
)

// VJP refuses a cotangent with a NaN or an infinite component, or of the
// wrong length, and an x outside the space, naming what is wrong.
func TestVJPRejectsBadCotangentsAndInputs(t *testing.T) {
	for name, b := range twins(t) {
		t.Run(name, func(t *testing.T) {
			in := b.Spec().In
			x := make([]float64, in.Dim())
			for i := range x {
				x[i] = (in.Lower[i] + in.Upper[i]) / 2
			}
			good := make([]float64, b.Classes())
			if _, err := b.VJP(ctx, x, good); err != nil {
				t.Fatalf("a valid VJP: %v", err)
			}
			for _, bad := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
				v := make([]float64, b.Classes())
				v[len(v)-1] = bad
				if _, err := b.VJP(ctx, x, v); err == nil || !strings.Contains(err.Error(), "cotangent") {
					t.Errorf("cotangent with %v: %v, want an error naming the cotangent", bad, err)
				}
			}
			if _, err := b.VJP(ctx, x, make([]float64, b.Classes()+1)); err == nil {
				t.Error("a cotangent one too long was accepted")
			}
			out := append([]float64(nil), x...)
			out[0] = in.Upper[0] + 1
			if _, err := b.VJP(ctx, out, good); err == nil {
				t.Errorf("x[0] = %v above %v was accepted", out[0], in.Upper[0])
			}
		})
	}
}
