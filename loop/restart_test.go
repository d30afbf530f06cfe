package loop

import (
	"context"
	"maps"
	"math"
	"slices"
	"testing"

	"github.com/insitu-lab/insitu/loop/journal"
)

// The restart rule: after After iterations without improvement, Points
// fresh random points are queried (journaled as init, counted in the
// budget) and the next steps start from them, not from the old best; a
// resumed run repeats the restarts bit for bit.
func TestRestartRule(t *testing.T) {
	for _, m := range []string{MethodGradPIE, MethodExact} {
		t.Run(m, func(t *testing.T) {
			cfg := smallConfig(m)
			cfg.Iterations = 12
			// A tolerance no improvement passes: every iteration is stale.
			cfg.Restart, cfg.Tolerance = RestartConfig{After: 2, Points: 4}, 1e9
			p := cnonProblem(t, 4, 2)
			j := createJournal(t, t.TempDir(), m)
			defer j.Close()
			res, err := Run(context.Background(), cfg, p, j, nil)
			if err != nil {
				t.Fatal(err)
			}
			qs, err := j.Queries(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			budget := cfg.Init.Points + cfg.Iterations*cfg.TopK*(1+cfg.Local.Samples)
			if res.Queries > budget || len(qs) != res.Queries {
				t.Errorf("%d queries (%d journaled), budget %d", res.Queries, len(qs), budget)
			}
			// Group the restart queries by iteration.
			restarts := map[int][][]float64{}
			for _, q := range qs {
				if q.Role == journal.RoleInit && q.Iteration > 0 {
					restarts[q.Iteration] = append(restarts[q.Iteration], q.X)
				}
			}
			// Every iteration is stale, so a restart comes before every
			// after-th iteration from iteration after+1 on: the rule counts
			// after stale iterations (1 and 2), restarts before iteration
			// 3 and counts afresh from there (3 and 4), and so on, until
			// the budget ends the run.
			last := res.Iterations[len(res.Iterations)-1].Iteration
			var want []int
			for it := cfg.Restart.After + 1; it <= last; it += cfg.Restart.After {
				want = append(want, it)
			}
			got := slices.Sorted(maps.Keys(restarts))
			if !slices.Equal(got, want) {
				t.Errorf("restarts before iterations %v, want %v", got, want)
			}
			for it, xs := range restarts {
				if len(xs) != cfg.Restart.Points {
					t.Errorf("iteration %d: %d restart points, want %d", it, len(xs), cfg.Restart.Points)
				}
				// Each of the iteration's steps starts from one of them: it
				// lies within a few step sizes of one (normalized units).
				for _, q := range qs {
					if q.Iteration != it || q.Role != journal.RoleStep {
						continue
					}
					near := math.Inf(1)
					for _, x := range xs {
						var d float64
						for i := range x {
							d = max(d, math.Abs(x[i]-q.X[i])/(p.Box.Spec().In.Upper[i]-p.Box.Spec().In.Lower[i]))
						}
						near = min(near, d)
					}
					if near > 5*cfg.StepLR {
						t.Errorf("iteration %d: a step %.3f (normalized) from the nearest restart point", it, near)
					}
				}
			}
			t.Logf("%s: restarts at %d iterations, best %.4g", m, len(restarts), res.Best.F)
		})
	}
	cfg := smallConfig(MethodGradPIE)
	cfg.CheckpointEvery = 3
	cfg.Restart, cfg.Tolerance, cfg.Budget = RestartConfig{After: 2, Points: 4}, 1e9, 500
	checkResume(t, cfg)

	bad := smallConfig(MethodGradPIE)
	bad.Restart = RestartConfig{After: 2, Points: 1}
	if err := bad.Validate(); err == nil {
		t.Error("restart.points below top_k accepted")
	}
}
