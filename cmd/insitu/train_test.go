package main

import (
	"context"
	"github.com/insitu-lab/insitu/loop/journal"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/insitu-lab/insitu"
	"github.com/insitu-lab/insitu/loop"
)

// tanhPNN is a test PNN twin: x = [u (2); W (2×2); b (2)], class scores
// tanh(gain·(W u + b)); Ideal() is the same with gain 1.
type tanhPNN struct{ gain float64 }

func (b tanhPNN) Spec() insitu.Spec {
	return insitu.Spec{Name: "test-tanh", In: insitu.Space{
		Lower: []float64{-2, -2, -3, -3, -3, -3, -3, -3},
		Upper: []float64{2, 2, 3, 3, 3, 3, 3, 3},
	}, Out: []string{"s0", "s1"}}
}

func (b tanhPNN) pre(x []float64, c int) float64 {
	return b.gain * (x[2+2*c]*x[0] + x[3+2*c]*x[1] + x[6+c])
}

func (b tanhPNN) Query(_ context.Context, x []float64) ([]float64, error) {
	return []float64{math.Tanh(b.pre(x, 0)), math.Tanh(b.pre(x, 1))}, nil
}

func (b tanhPNN) VJP(_ context.Context, x, v []float64) ([]float64, error) {
	g := make([]float64, len(x))
	for c := range 2 {
		th := math.Tanh(b.pre(x, c))
		d := v[c] * b.gain * (1 - th*th)
		g[0] += d * x[2+2*c]
		g[1] += d * x[3+2*c]
		g[2+2*c] += d * x[0]
		g[3+2*c] += d * x[1]
		g[6+c] += d
	}
	return g, nil
}

func (b tanhPNN) Split() (int, int)      { return 2, 6 }
func (b tanhPNN) Ideal() insitu.BlackBox { return tanhPNN{gain: 1} }

func init() {
	insitu.Register("test-tanh", func(_ context.Context, p insitu.Params) (insitu.BlackBox, error) {
		c := struct {
			Gain float64 `mapstructure:"gain"`
		}{Gain: 1}
		if err := p.Decode(&c); err != nil {
			return nil, err
		}
		return tanhPNN{gain: c.Gain}, nil
	})
	insitu.RegisterDataset("test-blobs", func(_ context.Context, c loop.DataConfig) (loop.TrainData, error) {
		rng := rand.New(rand.NewPCG(c.Seed, 1))
		var s loop.LabeledSet
		for i := range c.N {
			m := -0.7 + 1.4*float64(i%2)
			s.X = append(s.X, []float64{m + c.Noise*rng.NormFloat64(), m + c.Noise*rng.NormFloat64()})
			s.Y = append(s.Y, i%2)
		}
		return loop.Split(s, 2, c.TestFraction, c.Seed), nil
	})
}

const tinyTrain = `
method: exact
seed: 3
epochs: 8
batch: 10
lr: 0.05
blackbox: {kind: test-tanh, gain: 0.8}
data: {kind: test-blobs, n: 80, noise: 0.25, test_fraction: 0.25, seed: 4}
surrogate: {hidden: [16, 16], initial_epochs: 20, epochs: 2, batch: 64, k: 3}
safety: {timeout: 5s}
`

func TestTrainCommand(t *testing.T) {
	cfg := writeFile(t, "tiny-train.yaml", tinyTrain)
	dir := filepath.Join(t.TempDir(), "r")
	stdout, stderr, err := run(t, "train", cfg, "--out", dir, "-q")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	// 60 train + 20 test evaluated 9 times, 60 forward passes 8 times.
	for _, want := range []string{"1200 queries", "confusion matrix", "test accuracy"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("summary lacks %q:\n%s", want, stdout)
		}
	}
	for _, f := range []string{"journal.db", "config.yaml", "training.png"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("run directory lacks %s: %v", f, err)
		}
	}
	f, err := os.Open(filepath.Join(dir, "training.png"))
	if err != nil {
		t.Fatal(err)
	}
	if p, err := png.Decode(f); err != nil || p.Bounds().Dx() < 400 {
		t.Errorf("training.png: %v", err)
	}
	f.Close()
	if _, _, err := run(t, "train", cfg, "--out", dir, "-q"); err == nil || !strings.Contains(err.Error(), "--resume") {
		t.Errorf("a second training into the same directory: %v", err)
	}
	// Resuming a finished training has nothing to do; an interrupted one
	// is replayed and measures nothing new.
	if again, stderr, err := run(t, "train", "--resume", dir, "-q"); err != nil || !strings.Contains(again, "nothing to do") {
		t.Errorf("resume of a finished training: %v\n%s\n%s", err, stderr, again)
	}
	interrupt(t, dir)
	again, stderr, err := run(t, "train", "--resume", dir, "-q")
	if err != nil || !strings.Contains(again, "1200 replayed") || lastLines(again) != lastLines(stdout) {
		t.Errorf("resume: %v\n%s\n%s\nfirst:\n%s", err, stderr, again, stdout)
	}

	// The comparison methods; pat and insilico derive the ideal twin.
	for _, m := range []string{"pat", "insilico", "insitu-gradpie"} {
		d := filepath.Join(t.TempDir(), "r")
		out, stderr, err := run(t, "train", cfg, "--out", d, "-q", "--method", m, "--epochs", "2")
		if err != nil || !strings.Contains(out, "method "+m) {
			t.Errorf("%s: %v\n%s\n%s", m, err, stderr, out)
		}
	}
}

// lastLines is the summary from the initial metrics to the confusion
// matrix: what a replay must reproduce (the counts of replayed and passed
// queries differ).
func lastLines(s string) string {
	_, rest, _ := strings.Cut(s, "initial:")
	rest, _, _ = strings.Cut(rest, "guard:")
	return rest
}

func TestTrainConfigErrors(t *testing.T) {
	bad := writeFile(t, "bad.yaml", strings.NewReplacer("epochs: 8", "epochs: 0", "kind: test-blobs", "kind: spirals", "lr: 0.05", "lr: 0.05\nwarp: 1").Replace(tinyTrain))
	_, _, err := run(t, "train", bad, "--out", t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "warp") {
		t.Errorf("unknown key: %v", err)
	}
	bad = writeFile(t, "bad.yaml", strings.NewReplacer("epochs: 8", "epochs: 0", "kind: test-blobs", "kind: spirals", "test_fraction: 0.25", "test_fraction: 2").Replace(tinyTrain))
	_, _, err = run(t, "train", bad, "--out", t.TempDir())
	for _, key := range []string{"bad.yaml", "epochs", "data.kind", "data.test_fraction"} {
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("error does not name %s: %v", key, err)
		}
	}
	bad = writeFile(t, "bad.yaml", strings.Replace(tinyTrain, "{kind: test-tanh, gain: 0.8}", "{kind: test-slow, n: 8}", 1))
	_, _, err = run(t, "train", bad, "--out", t.TempDir(), "--method", "pat")
	if err == nil || !strings.Contains(err.Error(), "ideal_blackbox") {
		t.Errorf("pat without an ideal twin: %v", err)
	}
}

// TestTrainConfigWithIdealSection: a file that fills a map the defaults
// leave nil (ideal_blackbox) must load; viper used to panic merging it.
func TestTrainConfigWithIdealSection(t *testing.T) {
	cfg := defaultTrainConfig()
	data := []byte(strings.Replace(tinyTrain, "blackbox: {kind: test-tanh, gain: 0.8}", "blackbox: {kind: test-tanh, gain: 0.8}\nideal_blackbox: {kind: test-tanh}", 1))
	if err := resolveConfig("ideal.yaml", data, nil, nil, nil, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.IdealBlackBox["kind"] != "test-tanh" {
		t.Errorf("ideal_blackbox = %v", cfg.IdealBlackBox)
	}
}

// TestTrainCrashAndResume kills a training child process with SIGKILL at
// random moments and resumes it: the finished journal equals an
// uninterrupted training's, query for query, with no key twice.
func TestTrainCrashAndResume(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	cfg := writeFile(t, "crash-train.yaml", strings.NewReplacer("method: exact", "method: insitu-gradpie", "epochs: 8", "epochs: 12").Replace(tinyTrain))
	ref := filepath.Join(t.TempDir(), "ref")
	if _, stderr, err := run(t, "train", cfg, "--out", ref, "-q"); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	dir := filepath.Join(t.TempDir(), "crash")
	rng := rand.New(rand.NewPCG(11, 11))
	kills := 0
	for attempt := 0; attempt < 40; attempt++ {
		args := []string{"train", cfg, "--out", dir, "-q"}
		if _, err := os.Stat(filepath.Join(dir, journal.FileName)); err == nil {
			args = []string{"train", "--resume", dir, "-q"}
		}
		cmd, out := child(t, args...)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		if kills < 10 {
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("%v: %v\n%s", args, err, out)
				}
			case <-time.After(time.Duration(40+rng.IntN(400)) * time.Millisecond):
				cmd.Process.Kill()
				<-done
				kills++
				continue
			}
		} else if err := <-done; err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		break
	}
	want, got := journalRows(t, ref), journalRows(t, dir)
	if len(got) != len(want) {
		t.Fatalf("%d queries after %d kills, uninterrupted %d", len(got), kills, len(want))
	}
	for i := range want {
		if got[i].key != want[i].key || !sameFloats(got[i].x, want[i].x) || !sameFloats(got[i].y, want[i].y) {
			t.Fatalf("query %d differs from the uninterrupted training", i)
		}
	}
	t.Logf("%d kills; %d queries identical to the uninterrupted training", kills, len(got))
}

// TestResumeHandsTrainingsToTrain: `insitu resume DIR` on a training
// directory continues the training, and on a run directory the run.
func TestResumeHandsTrainingsToTrain(t *testing.T) {
	cfg := writeFile(t, "tiny-train.yaml", tinyTrain)
	dir := filepath.Join(t.TempDir(), "t")
	if _, stderr, err := run(t, "train", cfg, "--out", dir, "-q"); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	interrupt(t, dir)
	stdout, stderr, err := run(t, "resume", dir, "-q")
	if err != nil || !strings.Contains(stdout, "1200 queries") || !strings.Contains(stdout, "confusion matrix") {
		t.Errorf("resume of a training: %v\n%s\n%s", err, stdout, stderr)
	}
	rcfg := writeFile(t, "tiny.yaml", strings.Replace(tinyRun, "method: gradpie", "method: exact", 1))
	rdir := filepath.Join(t.TempDir(), "r")
	if _, stderr, err := run(t, "run", rcfg, "--out", rdir, "-q"); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	interrupt(t, rdir)
	if stdout, _, err := run(t, "resume", rdir, "-q"); err != nil || !strings.Contains(stdout, "best objective") {
		t.Errorf("resume of an exact run: %v\n%s", err, stdout)
	}
}

// data.seed left at 0 draws the dataset from the run's seed: two seeds see
// two datasets, and a nonzero data.seed pins one for every run.
func TestDataSeedFollowsTheRunSeed(t *testing.T) {
	ctx := context.Background()
	gen := func(runSeed, dataSeed uint64) insitu.TrainData {
		c := defaultTrainConfig()
		c.Seed = runSeed
		c.Data.Kind, c.Data.Seed = "moons", dataSeed
		d, err := loop.NewDataset(ctx, c.data())
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	same := func(a, b insitu.TrainData) bool {
		for i := range a.Train.X {
			if !slices.Equal(a.Train.X[i], b.Train.X[i]) {
				return false
			}
		}
		return len(a.Train.X) == len(b.Train.X)
	}
	if same(gen(1, 0), gen(2, 0)) {
		t.Error("runs of seeds 1 and 2 with data.seed 0 got the same dataset")
	}
	if !same(gen(1, 0), gen(1, 1)) {
		t.Error("data.seed 0 of run seed 1 is not data.seed 1")
	}
	if !same(gen(1, 7), gen(2, 7)) {
		t.Error("data.seed 7 did not pin the dataset across run seeds")
	}
}
