package loop

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/insitu-lab/insitu"
	"github.com/insitu-lab/insitu/simulators/cnon"
)

// cnonProblem builds an unguarded CNON twin problem with a reachable target.
func cnonProblem(t testing.TB, n int, horizon float64) Problem {
	t.Helper()
	c := cnon.DefaultConfig()
	c.N, c.Horizon, c.Steps = n, horizon, int(math.Round(horizon/0.1))
	return cnonProblemOf(t, c)
}

// cnonProblemOf is the distance-to-a-reachable-target problem on a twin
// built from c.
func cnonProblemOf(t testing.TB, c cnon.Config) Problem {
	t.Helper()
	tw, err := cnon.New(c)
	if err != nil {
		t.Fatal(err)
	}
	obj, dir, err := NewObjective(context.Background(), ObjectiveConfig{Kind: "distance", TargetSeed: 3}, tw)
	if err != nil {
		t.Fatal(err)
	}
	return Problem{Box: tw, Objective: obj, Direction: dir, Exact: tw}
}

func smallConfig(method string) Config {
	c := DefaultConfig()
	c.Method = method
	c.Iterations = 8
	c.Init.Points = 20
	c.TopK = 3
	c.Local.Samples = 1
	c.Surrogate.Hidden = []int{16, 16}
	c.Surrogate.InitialEpochs = 5
	c.Surrogate.Epochs = 2
	c.Surrogate.Batch = 32
	return c
}

func TestProjectWrapsPeriodicCoordinates(t *testing.T) {
	s := insitu.Space{Lower: make([]float64, 5), Upper: []float64{1, 1, 1, 1, 1}, Periodic: []bool{true, true, false, true, true}}
	u := []float64{1.25, -0.25, 1.5, 0.5, math.NaN()}
	clipped := project(u, s)
	// 1.25 and −0.25 wrap to 0.25 and 0.75, 1.5 is clipped, NaN stays NaN.
	if !clipped || u[0] != 0.25 || u[1] != 0.75 || u[2] != 1 || u[3] != 0.5 || !math.IsNaN(u[4]) {
		t.Errorf("project = %v, clipped %v", u, clipped)
	}
	u = []float64{3.5, -2, 0, 1, 0.5}
	if project(u, s) || u[0] != 0.5 || u[1] != 0 {
		t.Errorf("wrapping counted as a projection or wrong: %v", u)
	}
}

func TestEveryMethodKeepsTheAccounting(t *testing.T) {
	p := cnonProblem(t, 4, 2)
	for _, m := range Methods() {
		t.Run(m, func(t *testing.T) {
			cfg := smallConfig(m)
			var seen []Progress
			res, err := Run(context.Background(), cfg, p, nil, func(pr Progress) { seen = append(seen, pr) })
			if err != nil {
				t.Fatal(err)
			}
			budget := cfg.EffectiveBudget()
			if res.Queries > budget {
				t.Errorf("%d queries, budget %d", res.Queries, budget)
			}
			if len(res.Iterations) != cfg.Iterations+1 || len(seen) != len(res.Iterations) {
				t.Fatalf("%d iteration records and %d progress reports, want %d", len(res.Iterations), len(seen), cfg.Iterations+1)
			}
			q := cfg.QueriesPerIteration()
			for i, it := range res.Iterations {
				if it.Iteration != i {
					t.Errorf("record %d is iteration %d", i, it.Iteration)
				}
				// Every method pays the same number of queries per iteration
				// (a baseline's step may overrun its block by a few).
				if want := cfg.InitPoints() + i*q; it.Queries < want || it.Queries > want+len(p.Box.Spec().In.Lower)+1 {
					t.Errorf("iteration %d: %d queries, want about %d", i, it.Queries, want)
				}
				if i > 0 && it.Best > res.Iterations[i-1].Best {
					t.Errorf("best so far rose from %v to %v", res.Iterations[i-1].Best, it.Best)
				}
			}
			if res.Best.F != res.Iterations[len(res.Iterations)-1].Best {
				t.Errorf("result best %v, last iteration's best %v", res.Best.F, res.Iterations[len(res.Iterations)-1].Best)
			}
			if got := p.Objective.Value(p.Box.(*cnon.Twin).Noiseless(res.Best.X)); got != res.Best.F {
				t.Errorf("best objective %v, the twin says %v at the best x", res.Best.F, got)
			}
		})
	}
}

func TestExactDescendsBelowRandom(t *testing.T) {
	// A sanity check that the loop descends: with the twin's exact
	// gradient it must beat random search at the same budget, on every seed.
	p := cnonProblem(t, 10, 5)
	for seed := uint64(1); seed <= 3; seed++ {
		best := map[string]float64{}
		for _, m := range []string{MethodExact, MethodRandom} {
			cfg := smallConfig(m)
			cfg.Seed, cfg.Iterations, cfg.Local.Samples = seed, 40, 0
			res, err := Run(context.Background(), cfg, p, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			best[m] = res.Best.F
		}
		t.Logf("seed %d: exact %.4f, random %.4f", seed, best[MethodExact], best[MethodRandom])
		if !(best[MethodExact] < 0.8*best[MethodRandom]) {
			t.Errorf("seed %d: exact reached %.4f, random %.4f: the loop does not descend", seed, best[MethodExact], best[MethodRandom])
		}
	}
}

func TestExactNeedsDifferentiable(t *testing.T) {
	p := cnonProblem(t, 3, 1)
	p.Exact = nil
	_, err := Run(context.Background(), smallConfig(MethodExact), p, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "Differentiable") {
		t.Fatalf("want an error naming Differentiable, got %v", err)
	}
}

func TestBudgetEndsTheRun(t *testing.T) {
	p := cnonProblem(t, 4, 2)
	for _, m := range Methods() {
		cfg := smallConfig(m)
		cfg.Budget = cfg.InitPoints() + 7
		res, err := Run(context.Background(), cfg, p, nil, nil)
		if err != nil {
			t.Fatalf("%s: %v", m, err)
		}
		if res.Queries != cfg.Budget || res.Stop != "budget" {
			t.Errorf("%s: %d queries, stop %q; want %d, budget", m, res.Queries, res.Stop, cfg.Budget)
		}
	}
}

func TestPatienceStopsEarly(t *testing.T) {
	p := cnonProblem(t, 4, 2)
	cfg := smallConfig(MethodRandom)
	cfg.Iterations, cfg.Patience, cfg.Tolerance = 200, 3, 10 // nothing improves by 10
	res, err := Run(context.Background(), cfg, p, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Stop != "patience" || len(res.Iterations) != 4 {
		t.Errorf("stop %q after %d records, want patience after 4", res.Stop, len(res.Iterations))
	}
}

func TestCancelStopsAfterTheQueryInFlight(t *testing.T) {
	p := cnonProblem(t, 4, 2)
	ctx, cancel := context.WithCancel(context.Background())
	cfg := smallConfig(MethodGradPIE)
	res, err := Run(ctx, cfg, p, nil, func(pr Progress) {
		if pr.Iteration == 2 {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
	if res == nil || res.Queries != cfg.InitPoints()+2*cfg.QueriesPerIteration() {
		t.Fatalf("result %+v", res)
	}
}

func TestConfigValidateNamesKeys(t *testing.T) {
	c := DefaultConfig()
	c.Method = "newton"
	c.TopK = 0
	c.Local.Sigma = math.NaN()
	c.Surrogate.Hidden = []int{4, 0}
	c.Surrogate.Norm = "l7"
	c.FD.Step = 2
	err := c.Validate()
	for _, key := range []string{"method:", "top_k:", "local.sigma:", "surrogate.hidden[1]:", "surrogate.norm:", "fd.step:"} {
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("error does not name %s: %v", key, err)
		}
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Errorf("default config invalid: %v", err)
	}
}

func TestObjectiveGradientsMatchFiniteDifferences(t *testing.T) {
	box := staticBox{out: []string{"a", "b", "c"}}
	y := []float64{0.3, -1.2, 2.5}
	for _, c := range []ObjectiveConfig{
		{Kind: "distance", Target: []float64{1, 2, 3}},
		{Kind: "mse", Target: []float64{1, 2, 3}},
		{Kind: "distance", Outputs: []string{"c", "a"}, Target: []float64{1, 2}},
		{Kind: "identity", Outputs: []string{"b"}, Direction: Maximize},
	} {
		obj, dir, err := NewObjective(context.Background(), c, box)
		if err != nil {
			t.Fatalf("%+v: %v", c, err)
		}
		if c.Direction != "" && dir != c.Direction {
			t.Errorf("%+v: direction %q", c, dir)
		}
		g := obj.Grad(y)
		for i := range y {
			const h = 1e-6
			yp, ym := append([]float64(nil), y...), append([]float64(nil), y...)
			yp[i] += h
			ym[i] -= h
			fd := (obj.Value(yp) - obj.Value(ym)) / (2 * h)
			if math.Abs(fd-g[i]) > 1e-7 {
				t.Errorf("%+v: ∂/∂y%d = %v, finite difference %v", c, i, g[i], fd)
			}
		}
	}
	if v := (&targetObjective{idx: []int{0, 2}, target: []float64{1, 2}, m: 3}).Value(y); math.Abs(v-math.Hypot(0.3-1, 2.5-2)) > 1e-15 {
		t.Errorf("distance on outputs a, c = %v", v)
	}
	for _, c := range []ObjectiveConfig{
		{Kind: "nope"},
		{Kind: "distance"}, // no target, and the box cannot name one
		{Kind: "distance", Target: []float64{1}},
		{Kind: "distance", Outputs: []string{"z"}, Target: []float64{1}},
		{Kind: "identity"},
		{Kind: "mse", Target: []float64{1, 2, 3}, Direction: "up"},
	} {
		if _, _, err := NewObjective(context.Background(), c, box); err == nil || !strings.Contains(err.Error(), "objective.") {
			t.Errorf("%+v: want an error naming an objective key, got %v", c, err)
		}
	}
}

type staticBox struct{ out []string }

func (b staticBox) Spec() insitu.Spec {
	return insitu.Spec{Name: "static", In: insitu.Box(1, 0, 1), Out: b.out}
}

func (b staticBox) Query(context.Context, []float64) ([]float64, error) {
	return make([]float64, len(b.out)), nil
}

func TestOfflineTrainsOnceThenDescends(t *testing.T) {
	p := cnonProblem(t, 4, 2)
	cfg := smallConfig(MethodGradPIE)
	cfg.Mode = ModeOffline
	cfg.Offline.Points, cfg.Offline.Epochs = 60, 20
	res, err := Run(context.Background(), cfg, p, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The dataset, then one query per slot and iteration; no local samples.
	if want := 60 + cfg.Iterations*cfg.TopK; res.Queries != want {
		t.Errorf("%d queries, want %d", res.Queries, want)
	}
	for _, it := range res.Iterations[1:] {
		if it.TrainLoss != res.Iterations[0].TrainLoss {
			t.Fatalf("the surrogate changed after training: loss %v then %v", res.Iterations[0].TrainLoss, it.TrainLoss)
		}
	}
	if !(res.Best.F < res.Iterations[0].Best) {
		t.Errorf("offline descent did not improve on its dataset: %v → %v", res.Iterations[0].Best, res.Best.F)
	}

	// Trained on a previous run's journal instead: no dataset queries.
	dir := t.TempDir()
	j := createJournal(t, dir, MethodRandom)
	if _, err := Run(context.Background(), smallConfig(MethodRandom), p, j, nil); err != nil {
		t.Fatal(err)
	}
	j.Close()
	cfg.Offline.Journal = dir
	res, err = Run(context.Background(), cfg, p, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := cfg.Iterations * cfg.TopK; res.Queries != want {
		t.Errorf("offline from a journal: %d queries, want %d", res.Queries, want)
	}
}

func TestBaselinesImproveOnTheirStart(t *testing.T) {
	// Each local baseline starts from the best initial point: after its
	// budget it must have found a strictly better one (CMA-ES once did not,
	// because gonum's first generation ignored the configured sigma).
	p := cnonProblem(t, 10, 5)
	for _, m := range []string{MethodCMAES, MethodSPSA, MethodFD} {
		cfg := smallConfig(m)
		cfg.Iterations = 30
		res, err := Run(context.Background(), cfg, p, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		start := res.Iterations[0].Best
		t.Logf("%s: %.4f → %.4f", m, start, res.Best.F)
		if !(res.Best.F < 0.95*start) {
			t.Errorf("%s: best %.4f, initial best %.4f: no progress", m, res.Best.F, start)
		}
	}
}
