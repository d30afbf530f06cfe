package main

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/insitu-lab/insitu"
	"github.com/insitu-lab/insitu/loop/journal"
)

// TestMain lets a test start this test binary as the insitu command, so that
// signals and SIGKILL hit a real process running the real main.
func TestMain(m *testing.M) {
	if os.Getenv("INSITU_TEST_MAIN") == "1" {
		os.Args = append([]string{"insitu"}, strings.Fields(os.Getenv("INSITU_TEST_ARGS"))...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// slowBox is a test instrument: y = x after a delay, and a safe state that
// appends a line to a file, so a test can count safe-state calls across a
// process boundary.
type slowBox struct {
	n        int
	delay    time.Duration
	safeFile string
	mu       sync.Mutex
}

func (b *slowBox) Spec() insitu.Spec {
	return insitu.Spec{Name: "slow", In: insitu.Box(b.n, -1, 1), Out: names("y", b.n)}
}

func names(p string, n int) []string {
	s := make([]string, n)
	for i := range s {
		s[i] = fmt.Sprintf("%s%d", p, i)
	}
	return s
}

func (b *slowBox) Query(ctx context.Context, x []float64) ([]float64, error) {
	select {
	case <-time.After(b.delay):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return append([]float64(nil), x...), nil
}

func (b *slowBox) SafeState(context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return recordSafeState(b.safeFile)
}

// recordSafeState appends "safe PID" to path: the test boxes' safe state,
// which a test reads back to count the calls and the processes that made them.
func recordSafeState(path string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = fmt.Fprintf(f, "safe %d\n", os.Getpid())
	return err
}

func init() {
	insitu.Register("test-slow", func(_ context.Context, p insitu.Params) (insitu.BlackBox, error) {
		var c struct {
			N        int    `mapstructure:"n"`
			DelayMS  int    `mapstructure:"delay_ms"`
			SafeFile string `mapstructure:"safe_file"`
		}
		if err := p.Decode(&c); err != nil {
			return nil, err
		}
		return &slowBox{n: c.N, delay: time.Duration(c.DelayMS) * time.Millisecond, safeFile: c.SafeFile}, nil
	})
}

const tinyRun = `
method: gradpie
seed: 2
iterations: 6
blackbox: {kind: cnon, n: 4, horizon: 2, steps: 20}
objective: {kind: distance, target_seed: 3}
init: {points: 20}
top_k: 3
local: {samples: 1, sigma: 0.02}
surrogate: {hidden: [16, 16], initial_epochs: 5, epochs: 2, batch: 32, k: 3}
safety: {max_step: 2, timeout: 5s}
`

func TestRunShowExportPlot(t *testing.T) {
	cfg := writeFile(t, "tiny.yaml", tinyRun)
	dir := filepath.Join(t.TempDir(), "r")
	stdout, stderr, err := run(t, "run", cfg, "--out", dir, "-q", "--set", "surrogate.k=2")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	// 20 initial + 6 iterations × 3 × (1 + 1).
	if !strings.Contains(stdout, "56 queries") || !strings.Contains(stdout, "best objective") {
		t.Errorf("summary:\n%s", stdout)
	}
	for _, f := range []string{"journal.db", "config.yaml", "progress.png", "surrogate.bin"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("run directory lacks %s: %v", f, err)
		}
	}
	resolved, _ := os.ReadFile(filepath.Join(dir, "config.yaml"))
	if !strings.Contains(string(resolved), "k: 2") {
		t.Errorf("--set surrogate.k=2 is not in the resolved config:\n%s", resolved)
	}
	if _, _, err := run(t, "run", cfg, "--out", dir, "-q"); err == nil || !strings.Contains(err.Error(), "insitu resume") {
		t.Errorf("a second run into the same directory: %v", err)
	}

	stdout, _, err = run(t, "runs", "show", dir)
	if err != nil || !strings.Contains(stdout, "finished") || !strings.Contains(stdout, "56 measured") {
		t.Errorf("runs show: %v\n%s", err, stdout)
	}
	stdout, _, err = run(t, "runs", "list", filepath.Dir(dir))
	if err != nil || !strings.Contains(stdout, "gradpie") {
		t.Errorf("runs list: %v\n%s", err, stdout)
	}
	stdout, _, err = run(t, "export", dir, "--format", "csv")
	if err != nil || strings.Count(stdout, "\n") != 57 {
		t.Errorf("export csv: %v, %d lines", err, strings.Count(stdout, "\n"))
	}
	npy := filepath.Join(t.TempDir(), "npy")
	if _, _, err := run(t, "export", dir, "--format", "npy", "-o", npy); err != nil {
		t.Errorf("export npy: %v", err)
	}
	if ents, _ := os.ReadDir(npy); len(ents) == 0 {
		t.Error("export npy wrote nothing")
	}

	// Two seeds of two methods overlaid.
	dirs := []string{dir}
	for _, a := range [][]string{{"--method", "random", "--seed", "2"}, {"--method", "random", "--seed", "3"}, {"--seed", "3"}} {
		d := filepath.Join(t.TempDir(), "r")
		if _, stderr, err := run(t, append([]string{"run", cfg, "--out", d, "-q"}, a...)...); err != nil {
			t.Fatalf("%v: %v\n%s", a, err, stderr)
		}
		dirs = append(dirs, d)
	}
	// Seed 3 as a second block: its runs get their own column and the
	// comparison table, with too few seeds for a verdict.
	stdout, _, err = run(t, append([]string{"runs", "compare", "--at", "0,6", "--second", "3"}, dirs...)...)
	for _, want := range []string{"runs ²", "best @ 6 ²", "| comparison | seeds 2 | seeds 3 ² | verdict |", "| gradpie vs random |", "no verdict: fewer than 10 seeds"} {
		if err != nil || !strings.Contains(stdout, want) {
			t.Errorf("runs compare --second lacks %q: %v\n%s", want, err, stdout)
		}
	}
	img := filepath.Join(t.TempDir(), "cmp.png")
	if _, stderr, err := run(t, append([]string{"plot", "-o", img}, dirs...)...); err != nil {
		t.Fatalf("plot: %v\n%s", err, stderr)
	}
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if p, err := png.Decode(f); err != nil || p.Bounds().Dx() < 400 {
		t.Errorf("plot is not a PNG of a sensible size: %v", err)
	}
}

func TestConfigCheck(t *testing.T) {
	cfg := writeFile(t, "tiny.yaml", tinyRun)
	stdout, _, err := run(t, "config", "check", cfg, "--set", "top_k=2")
	if err != nil || !strings.Contains(stdout, "top_k: 2") || !strings.Contains(stdout, "valid") {
		t.Errorf("config check: %v\n%s", err, stdout)
	}
	bad := writeFile(t, "bad.yaml", strings.Replace(tinyRun, "top_k: 3", "top_k: 0\nwarp: 9", 1))
	_, _, err = run(t, "config", "check", bad)
	if err == nil || !strings.Contains(err.Error(), "bad.yaml") || !strings.Contains(err.Error(), "warp") {
		t.Errorf("unknown key: %v", err)
	}
	bad = writeFile(t, "bad.yaml", strings.NewReplacer("top_k: 3", "top_k: 0\nstep_lr: -1", "timeout: 5s", "timeout: 5s, rate: 0").Replace(tinyRun))
	_, _, err = run(t, "config", "check", bad)
	for _, key := range []string{"bad.yaml", "top_k", "step_lr", "rate"} {
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("error does not name %s: %v", key, err)
		}
	}
	bad = writeFile(t, "bad.yaml", strings.Replace(tinyRun, "n: 4,", "n: -4,", 1))
	if _, _, err = run(t, "config", "check", bad); err == nil || !strings.Contains(err.Error(), "blackbox") || !strings.Contains(err.Error(), "bad.yaml") {
		t.Errorf("black box error: %v", err)
	}
}

// child starts this test binary as `insitu ARGS`.
func child(t *testing.T, args ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "INSITU_TEST_MAIN=1", "INSITU_TEST_ARGS="+strings.Join(args, " "))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, &out
}

func waitQueries(t *testing.T, dir string, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if j, err := journal.OpenReadOnly(dir); err == nil {
			s, err := j.Summary(context.Background())
			j.Close()
			if err == nil && s.Queries >= n {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: fewer than %d queries after %v", dir, n, timeout)
}

// TestSignalsLeaveTheDeviceSafeOnce: SIGINT and SIGTERM finish the query in
// flight, journal it, put the device in its safe state exactly once, and
// leave a resumable run; a second SIGINT goes to the safe state at once.
func TestSignalsLeaveTheDeviceSafeOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	for _, c := range []struct {
		name string
		sigs []syscall.Signal
	}{
		{"SIGINT", []syscall.Signal{syscall.SIGINT}},
		{"SIGTERM", []syscall.Signal{syscall.SIGTERM}},
		{"SIGINT twice", []syscall.Signal{syscall.SIGINT, syscall.SIGINT}},
	} {
		t.Run(c.name, func(t *testing.T) {
			tmp := t.TempDir()
			safe := filepath.Join(tmp, "safe.log")
			cfg := writeFile(t, "slow.yaml", fmt.Sprintf(`
method: random
iterations: 1000
blackbox: {kind: test-slow, n: 3, delay_ms: 30, safe_file: %s}
objective: {kind: distance, target: [0.1, 0.2, 0.3]}
init: {points: 5}
top_k: 1
safety: {timeout: 5s}
`, safe))
			dir := filepath.Join(tmp, "run")
			cmd, out := child(t, "run", cfg, "--out", dir, "-q")
			waitQueries(t, dir, 8, 20*time.Second)
			for _, s := range c.sigs {
				if err := cmd.Process.Signal(s); err != nil {
					t.Fatal(err)
				}
				time.Sleep(5 * time.Millisecond)
			}
			err := cmd.Wait()
			if code := cmd.ProcessState.ExitCode(); code != 130 {
				t.Fatalf("exit code %d (%v), want 130\n%s", code, err, out)
			}
			lines, _ := os.ReadFile(safe)
			if n := strings.Count(string(lines), "safe"); n != 1 {
				t.Fatalf("safe state called %d times, want 1\n%s", n, out)
			}
			j, err := journal.Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			qs, _ := j.Queries(context.Background())
			started := 0
			for _, q := range qs {
				if q.Status == journal.StatusStarted {
					started++
				}
			}
			s, _ := j.Summary(context.Background())
			j.Close()
			if len(c.sigs) == 1 {
				// The query in flight finished and was journaled.
				if started != 0 || s.Status != journal.RunInterrupted {
					t.Errorf("%d queries left started, status %s\n%s", started, s.Status, out)
				}
			} else if started > 1 {
				t.Errorf("%d queries left started after a hard stop", started)
			}
		})
	}
}

// TestCrashAndResume kills a seeded run with SIGKILL at 20 random moments,
// resuming it each time; the journal must end with no lost and no
// duplicated query, and equal an uninterrupted run.
func TestCrashAndResume(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	cfg := writeFile(t, "crash.yaml", strings.NewReplacer("iterations: 6", "iterations: 150", "hidden: [16, 16]", "hidden: [32, 32]").Replace(tinyRun))
	ref := filepath.Join(t.TempDir(), "ref")
	if _, stderr, err := run(t, "run", cfg, "--out", ref, "-q"); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	dir := filepath.Join(t.TempDir(), "crash")
	rng := rand.New(rand.NewPCG(7, 7))
	kills := 0
	start := []string{"run", cfg, "--out", dir, "-q"}
	for attempt := 0; attempt < 60; attempt++ {
		args := start
		if _, err := os.Stat(filepath.Join(dir, journal.FileName)); err == nil {
			args = []string{"resume", dir, "-q"}
		}
		cmd, out := child(t, args...)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		var err error
		if kills < 20 {
			select {
			case err = <-done:
			case <-time.After(time.Duration(30+rng.IntN(300)) * time.Millisecond):
				cmd.Process.Kill()
				<-done
				kills++
				continue
			}
		} else {
			err = <-done
		}
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		break
	}
	if kills < 20 {
		t.Logf("the run finished after %d kills", kills)
	}
	want, got := journalRows(t, ref), journalRows(t, dir)
	if len(got) != len(want) {
		t.Fatalf("%d queries after %d kills, uninterrupted %d", len(got), kills, len(want))
	}
	for i := range want {
		if got[i].key != want[i].key || !sameFloats(got[i].x, want[i].x) || !sameFloats(got[i].y, want[i].y) {
			t.Fatalf("query %d differs from the uninterrupted run: %+v vs %+v", i, got[i], want[i])
		}
		if got[i].status != journal.StatusDone && got[i].status != journal.StatusRemeasured {
			t.Errorf("query %s has status %s", got[i].key, got[i].status)
		}
	}
	t.Logf("%d kills; %d queries, identical to the uninterrupted run", kills, len(got))
}

type row struct {
	key    string
	x, y   []float64
	status journal.QueryStatus
}

func journalRows(t *testing.T, dir string) []row {
	t.Helper()
	j, err := journal.OpenReadOnly(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	qs, err := j.Queries(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var rs []row
	for _, q := range qs {
		if seen[q.Key] {
			t.Errorf("key %s journaled twice", q.Key)
		}
		seen[q.Key] = true
		rs = append(rs, row{q.Key, q.X, q.Y, q.Status})
	}
	return rs
}

func sameFloats(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float64bits(a[i]) != math.Float64bits(b[i]) {
			return false
		}
	}
	return true
}

// Training configs are checked as 'insitu train' checks them, not refused
// as run configs with unknown keys.
func TestConfigCheckTrainConfigs(t *testing.T) {
	for _, name := range []string{"pnn-optical.yaml", "pnn-cnon.yaml"} {
		stdout, _, err := run(t, "config", "check", filepath.Join("../../configs", name), "--set", "epochs=3")
		if err != nil || !strings.Contains(stdout, "valid training config") || !strings.Contains(stdout, "epochs: 3") {
			t.Errorf("%s: %v\n%s", name, err, stdout)
		}
	}
	src, err := os.ReadFile("../../configs/pnn-optical.yaml")
	if err != nil {
		t.Fatal(err)
	}
	bad := writeFile(t, "badtrain.yaml", strings.NewReplacer("epochs: 10", "epochs: 0", "kind: moons", "kind: mooons", "eta: 0.1", "eta: 0.1\n  warp: 9").Replace(string(src)))
	_, _, err = run(t, "config", "check", bad)
	for _, key := range []string{"badtrain.yaml", "epochs"} {
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("error does not name %s: %v", key, err)
		}
	}
	bad = writeFile(t, "badtrain.yaml", strings.Replace(string(src), "kind: moons", "kind: mooons", 1))
	if _, _, err = run(t, "config", "check", bad); err == nil || !strings.Contains(err.Error(), "data.kind") || !strings.Contains(err.Error(), "badtrain.yaml") {
		t.Errorf("unknown dataset: %v", err)
	}
	bad = writeFile(t, "badtrain.yaml", strings.Replace(string(src), "eta: 0.1", "eta: 0.1\n  warp: 9", 1))
	if _, _, err = run(t, "config", "check", bad); err == nil || !strings.Contains(err.Error(), "warp") || !strings.Contains(err.Error(), "badtrain.yaml") {
		t.Errorf("unknown black-box key: %v", err)
	}
}
