package loop

import (
	"context"
	"math"
	"testing"

	"github.com/insitu-lab/insitu/loop/journal"
)

// TestLocalSamplesLandAroundTheStep checks where the local queries land:
// each slot's M local samples are the slot's new step plus Gaussian noise
// of standard deviation local.sigma in normalized units (width of the
// box), drawn afresh for each sample and coordinate. The offsets, scaled
// by σ·width, must have mean 0 and variance 1 (coordinates of steps near a
// bound, whose samples may be clipped, left out); at zero spread, or
// around another point, they do not.
func TestLocalSamplesLandAroundTheStep(t *testing.T) {
	for _, m := range []string{MethodGradPIE, MethodExact} {
		t.Run(m, func(t *testing.T) {
			p := cnonProblem(t, 4, 2)
			cfg := smallConfig(m)
			cfg.Iterations, cfg.Local.Samples, cfg.Local.Sigma = 10, 3, 0.05
			j := createJournal(t, t.TempDir(), m)
			defer j.Close()
			if _, err := Run(context.Background(), cfg, p, j, nil); err != nil {
				t.Fatal(err)
			}
			qs, err := j.Queries(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			in := p.Box.Spec().In
			type key struct{ it, slot int }
			steps := map[key][]float64{}
			for _, q := range qs {
				if q.Role == journal.RoleStep {
					steps[key{q.Iteration, q.Slot}] = q.X
				}
			}
			var n, locals int
			var sum, sumSq float64
			for _, q := range qs {
				if q.Role != journal.RoleLocal {
					continue
				}
				locals++
				x, ok := steps[key{q.Iteration, q.Slot}]
				if !ok {
					t.Fatalf("local query %d (iteration %d, slot %d) has no step in its slot", q.ID, q.Iteration, q.Slot)
				}
				for i := range x {
					w := in.Upper[i] - in.Lower[i]
					if x[i]-in.Lower[i] < 4*cfg.Local.Sigma*w || in.Upper[i]-x[i] < 4*cfg.Local.Sigma*w {
						continue // near a bound, where clipping would truncate the offsets
					}
					z := (q.X[i] - x[i]) / w / cfg.Local.Sigma
					sum, sumSq, n = sum+z, sumSq+z*z, n+1
				}
			}
			if want := cfg.Iterations * cfg.TopK * cfg.Local.Samples; locals != want {
				t.Errorf("%d local queries, want %d", locals, want)
			}
			mean := sum / float64(n)
			variance := sumSq/float64(n) - mean*mean
			t.Logf("%d offsets: mean %.3f, variance %.3f (in units of σ)", n, mean, variance)
			// n ≥ 200: the mean's standard error is at most 0.07, the variance's 0.1.
			if n < 200 || math.Abs(mean) > 0.25 || variance < 0.7 || variance > 1.4 {
				t.Errorf("local samples: %d offsets of mean %.3f and variance %.3f σ², want about 0 and 1", n, mean, variance)
			}
		})
	}
}
