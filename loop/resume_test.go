package loop

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/insitu-lab/insitu/loop/journal"
	"github.com/insitu-lab/insitu/simulators/cnon"
	"github.com/insitu-lab/insitu/surrogate"
)

func createJournal(t *testing.T, dir string, method string) *journal.Journal {
	t.Helper()
	j, err := journal.Create(dir, journal.Meta{Method: method, Kind: "cnon", Seed: 1}, []byte("method: "+method+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func journaledXs(t *testing.T, j *journal.Journal) [][]float64 {
	t.Helper()
	qs, err := j.Queries(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	xs := make([][]float64, len(qs))
	for i, q := range qs {
		if q.Status != journal.StatusDone && q.Status != journal.StatusRemeasured {
			t.Errorf("query %d (%s) has status %s", q.ID, q.Key, q.Status)
		}
		xs[i] = q.X
	}
	return xs
}

// TestResumeEqualsAnUninterruptedRun interrupts runs of every method at
// several iterations and resumes them on the same journal: nothing is
// queried twice, and the finished run equals one that was never stopped.
func TestResumeEqualsAnUninterruptedRun(t *testing.T) {
	for _, m := range Methods() {
		t.Run(m, func(t *testing.T) {
			cfg := smallConfig(m)
			cfg.CheckpointEvery = 3 // stops at 4 and 6 resume from checkpoints 3 and 6
			checkResume(t, cfg)
		})
	}
}

// TestResumeWithStepBudget: every training schedule (full epochs, the step
// budget, shared neighbourhoods, training in the background while the box
// measures) resumes to the same run.
func TestResumeWithStepBudget(t *testing.T) {
	for _, sc := range []struct {
		name           string
		steps          int
		overlap, share bool
	}{{"epochs", 0, false, false}, {"steps", 4, false, false}, {"shared", 4, false, true}, {"overlap", 4, true, false}, {"overlap-shared", 4, true, true}} {
		t.Run(sc.name, func(t *testing.T) {
			cfg := smallConfig(MethodGradPIE)
			cfg.CheckpointEvery = 3
			cfg.Surrogate.Steps, cfg.Surrogate.Recent = sc.steps, 10
			cfg.Surrogate.Overlap, cfg.Surrogate.Share = sc.overlap, sc.share
			checkResume(t, cfg)
		})
	}
}

// TestResumeFloat32: a run with a float32 surrogate resumes bit for bit
// too, its checkpoints holding float32 weights and Adam moments; a config
// that changes the precision does not resume it.
func TestResumeFloat32(t *testing.T) {
	cfg := smallConfig(MethodGradPIE)
	cfg.CheckpointEvery = 3
	cfg.Surrogate.Steps, cfg.Surrogate.Overlap = 4, true
	cfg.Surrogate.Precision = surrogate.Float32
	checkResume(t, cfg)

	j := createJournal(t, t.TempDir(), cfg.Method)
	defer j.Close()
	stopped := cfg
	stopped.Iterations = 4
	if _, err := Run(context.Background(), stopped, cnonProblem(t, 4, 2), j, nil); err != nil {
		t.Fatal(err)
	}
	changed := cfg
	changed.Surrogate.Precision = surrogate.Float64
	_, err := Run(context.Background(), changed, cnonProblem(t, 4, 2), j, nil)
	if err == nil || !strings.Contains(err.Error(), "float32 surrogate, the config says surrogate.precision: float64") {
		t.Errorf("resuming a float32 run as float64: %v", err)
	}
}

// checkResume stops cfg's run at iterations 1, 4 and 6, resumes it on the
// same journal each time, and compares the result with an uninterrupted
// run bit for bit.
func checkResume(t *testing.T, cfg Config) {
	t.Helper()
	m := cfg.Method
	ref := createJournal(t, t.TempDir(), m)
	defer ref.Close()
	want, err := Run(context.Background(), cfg, cnonProblem(t, 4, 2), ref, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantXs := journaledXs(t, ref)

	dir := t.TempDir()
	for _, stopAt := range []int{1, 4, 6} {
		j, err := journal.Open(dir)
		if stopAt == 1 {
			j = createJournal(t, dir, m)
		} else if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		res, err := Run(ctx, cfg, cnonProblem(t, 4, 2), j, func(p Progress) {
			if p.Iteration == stopAt {
				cancel()
			}
		})
		cancel()
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("stop at %d: err %v", stopAt, err)
		}
		if stopAt > 1 && res.Replayed == 0 {
			t.Errorf("stop at %d: nothing replayed from the journal", stopAt)
		}
		j.Close()
	}
	j, err := journal.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	got, err := Run(context.Background(), cfg, cnonProblem(t, 4, 2), j, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.Replayed == 0 || got.Remeasured != 0 {
		t.Errorf("final resume replayed %d, remeasured %d", got.Replayed, got.Remeasured)
	}
	if want := map[bool]int{true: 6, false: 0}[cfg.Checkpoints()]; got.Restored != want {
		t.Errorf("final resume restored the checkpoint of iteration %d, want %d", got.Restored, want)
	}
	gotXs := journaledXs(t, j)
	if len(gotXs) != len(wantXs) {
		t.Fatalf("resumed journal has %d queries, uninterrupted %d", len(gotXs), len(wantXs))
	}
	for i := range gotXs {
		if !sameBits(gotXs[i], wantXs[i]) {
			t.Fatalf("query %d differs after resume", i)
		}
	}
	if math.Float64bits(got.Best.F) != math.Float64bits(want.Best.F) || got.Queries != want.Queries {
		t.Errorf("resumed best %v after %d queries, uninterrupted %v after %d", got.Best.F, got.Queries, want.Best.F, want.Queries)
	}
	its, err := j.Iterations(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(its) != cfg.Iterations+1 {
		t.Errorf("%d iteration records, want %d", len(its), cfg.Iterations+1)
	}
}

// TestResumeOfANoisyTwin: a twin with seeded input and output noise is
// told how many queries the journal served (insitu.Sequenced), so the
// resumed run measures what the uninterrupted one measured, noise included.
func TestResumeOfANoisyTwin(t *testing.T) {
	noisy := func() Problem {
		c := cnon.DefaultConfig()
		c.N, c.Horizon, c.Steps, c.InputNoise, c.OutputNoise = 4, 2, 20, 0.01, 0.01
		return cnonProblemOf(t, c)
	}
	for _, m := range []string{MethodGradPIE, MethodRandom} {
		t.Run(m, func(t *testing.T) {
			cfg := smallConfig(m)
			cfg.CheckpointEvery = 3
			ref := createJournal(t, t.TempDir(), m)
			defer ref.Close()
			if _, err := Run(context.Background(), cfg, noisy(), ref, nil); err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			j := createJournal(t, dir, m)
			ctx, cancel := context.WithCancel(context.Background())
			_, err := Run(ctx, cfg, noisy(), j, func(p Progress) {
				if p.Iteration == 4 {
					cancel()
				}
			})
			cancel()
			j.Close()
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("stop: %v", err)
			}
			if j, err = journal.Open(dir); err != nil {
				t.Fatal(err)
			}
			defer j.Close()
			if _, err := Run(context.Background(), cfg, noisy(), j, nil); err != nil {
				t.Fatal(err)
			}
			want, err := ref.Queries(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			got, err := j.Queries(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) {
				t.Fatalf("%d queries after resume, %d uninterrupted", len(got), len(want))
			}
			for i := range got {
				if !sameBits(got[i].X, want[i].X) || !sameBits(got[i].Y, want[i].Y) {
					t.Fatalf("query %d differs after resume: y %v, uninterrupted %v", i, got[i].Y, want[i].Y)
				}
			}
		})
	}
}

// TestResumeRemeasuresAStartedQuery: an intent without a result (the
// process died while the device worked) is measured again and marked.
func TestResumeRemeasuresAStartedQuery(t *testing.T) {
	dir := t.TempDir()
	cfg := smallConfig(MethodRandom)
	j := createJournal(t, dir, cfg.Method)
	p := cnonProblem(t, 4, 2)
	// Journal the first initial point's intent by hand, as a crashed run
	// would have left it.
	x := (&runner{cfg: cfg, lo: p.Box.Spec().In.Lower, width: []float64{2, 2, 2, 2}, space: p.Box.Spec().In}).uniform((&runner{cfg: cfg}).rng(saltInit), 1)[0]
	if _, err := j.Begin(context.Background(), journal.Intent{Role: journal.RoleInit, Slot: journal.NoSlot, Key: "q0000000", X: x}); err != nil {
		t.Fatal(err)
	}
	res, err := Run(context.Background(), cfg, p, j, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Remeasured != 1 {
		t.Errorf("remeasured %d queries, want 1", res.Remeasured)
	}
	q, ok, err := j.Lookup(context.Background(), "q0000000")
	if err != nil || !ok || q.Status != journal.StatusRemeasured || q.Y == nil {
		t.Errorf("first query %+v, %v, %v: want remeasured with a result", q, ok, err)
	}
	j.Close()
}

// TestResumeRefusesAChangedRun: a journal from a different config is not
// silently mixed with new queries.
func TestResumeRefusesAChangedRun(t *testing.T) {
	dir := t.TempDir()
	cfg := smallConfig(MethodRandom)
	j := createJournal(t, dir, cfg.Method)
	defer j.Close()
	if _, err := Run(context.Background(), cfg, cnonProblem(t, 4, 2), j, nil); err != nil {
		t.Fatal(err)
	}
	cfg.Seed = 99
	if _, err := Run(context.Background(), cfg, cnonProblem(t, 4, 2), j, nil); !errors.Is(err, ErrDiverged) {
		t.Fatalf("err %v, want ErrDiverged", err)
	}
}

// TestScheduleKeysReachTheTrainer: every training-schedule key changes the
// run it is set in (a key that is parsed but never used would not).
func TestScheduleKeysReachTheTrainer(t *testing.T) {
	run := func(set func(*SurrogateConfig)) [][]float64 {
		cfg := smallConfig(MethodGradPIE)
		set(&cfg.Surrogate)
		j := createJournal(t, t.TempDir(), cfg.Method)
		defer j.Close()
		if _, err := Run(context.Background(), cfg, cnonProblem(t, 4, 2), j, nil); err != nil {
			t.Fatal(err)
		}
		return journaledXs(t, j)
	}
	differ := func(a, b [][]float64) bool {
		for i := range min(len(a), len(b)) {
			if !sameBits(a[i], b[i]) {
				return true
			}
		}
		return len(a) != len(b)
	}
	base := func(s *SurrogateConfig) { s.Steps, s.Share, s.Overlap = 4, false, false }
	epochs := run(func(s *SurrogateConfig) { base(s); s.Steps = 0 })
	steps := run(base)
	recent := run(func(s *SurrogateConfig) { base(s); s.Recent = 5 })
	shared := run(func(s *SurrogateConfig) { base(s); s.Share = true })
	overlap := run(func(s *SurrogateConfig) { base(s); s.Overlap = true })
	for name, xs := range map[string][][]float64{"steps": steps, "recent": recent, "share": shared, "overlap": overlap} {
		base := steps
		if name == "steps" {
			base = epochs
		}
		if !differ(xs, base) {
			t.Errorf("setting surrogate.%s did not change the run", name)
		}
	}
}

// TestResumeTurboAcrossRestarts: a trust region that collapses every
// other iteration measures fresh designs, and a run stopped between them
// resumes to the uninterrupted run.
func TestResumeTurboAcrossRestarts(t *testing.T) {
	cfg := smallConfig(MethodTuRBO)
	cfg.CheckpointEvery = 3
	cfg.Restart.Points = 5
	cfg.Bayes.Turbo.Length, cfg.Bayes.Turbo.MinLength, cfg.Bayes.Turbo.FailTol = 0.8, 0.3, 1
	j := createJournal(t, t.TempDir(), cfg.Method)
	defer j.Close()
	res, err := Run(context.Background(), cfg, cnonProblem(t, 4, 2), j, nil)
	if err != nil {
		t.Fatal(err)
	}
	qs, err := j.Queries(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var fresh int
	for _, q := range qs[cfg.Init.Points:] {
		if q.Role == journal.RoleInit {
			fresh++
		}
	}
	if fresh == 0 || fresh%cfg.Restart.Points != 0 {
		t.Fatalf("%d fresh-design queries after the initial design, want a positive multiple of %d", fresh, cfg.Restart.Points)
	}
	// The fresh designs count against the budget, as the restart rule's do.
	if res.Queries != cfg.EffectiveBudget() || res.Stop != "budget" {
		t.Errorf("%d queries, stop %q: want the budget's %d", res.Queries, res.Stop, cfg.EffectiveBudget())
	}
	t.Logf("%d restarts in %d iterations", fresh/cfg.Restart.Points, cfg.Iterations)
	checkResume(t, cfg)
}
