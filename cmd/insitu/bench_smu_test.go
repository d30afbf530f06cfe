package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/insitu-lab/insitu"
	"github.com/insitu-lab/insitu/drivers/scpi/scpitest"
	"github.com/insitu-lab/insitu/loop/journal"
	"github.com/insitu-lab/insitu/simulators/bench"
)

// smuBench serves the SMU twin on loopback TCP and returns the bench-smu
// twin config pointed at it.
func smuBench(t *testing.T) (cfg string, commands func() []string) {
	t.Helper()
	tw, err := bench.NewSMU(bench.SMUConfig{NoNoise: true})
	if err != nil {
		t.Fatal(err)
	}
	in := tw.Instrument()
	_, addr := scpitest.ServeTCP(t, in)
	body, err := os.ReadFile("../../configs/bench-smu-twin.yaml")
	if err != nil {
		t.Fatal(err)
	}
	yaml := strings.ReplaceAll(string(body), "127.0.0.1:5025", addr)
	if yaml == string(body) {
		t.Fatal("configs/bench-smu-twin.yaml does not name 127.0.0.1:5025")
	}
	return writeFile(t, "bench-smu-twin.yaml", yaml), in.Commands
}

func TestConfigCheckSendsNothing(t *testing.T) {
	cfg, commands := smuBench(t)
	stdout, _, err := run(t, "config", "check", cfg)
	if err != nil || !strings.Contains(stdout, "valid") {
		t.Fatalf("config check: %v\n%s", err, stdout)
	}
	if cmds := commands(); len(cmds) != 0 {
		t.Errorf("config check sent %d commands to the instrument: %q", len(cmds), cmds)
	}

	// A typo in a safety name is found without the instrument, and a run
	// with it makes no run directory and sends nothing either.
	body, _ := os.ReadFile(cfg)
	bad := writeFile(t, "typo.yaml", strings.Replace(string(body), "smu/compliance, above", "smu/complaince, above", 1))
	_, _, err = run(t, "config", "check", bad)
	if err == nil || !strings.Contains(err.Error(), "smu/complaince") || !strings.Contains(err.Error(), "interlocks[0].output") {
		t.Errorf("config check with a misspelled interlock output: %v", err)
	}
	out := filepath.Join(t.TempDir(), "r")
	if _, _, err := run(t, "run", bad, "--out", out, "-q"); err == nil || !strings.Contains(err.Error(), "smu/complaince") {
		t.Errorf("run with a misspelled interlock output: %v", err)
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("a run refused by validation left a run directory")
	}
	if cmds := commands(); len(cmds) != 0 {
		t.Errorf("a run refused by validation sent %d commands: %q", len(cmds), cmds)
	}

	// The online check opens the instrument and leaves it safe.
	stdout, _, err = run(t, "probe", "--config", cfg)
	if err != nil || !strings.Contains(stdout, "smu/voltage") || !strings.Contains(stdout, "smu/compliance") {
		t.Fatalf("probe --config: %v\n%s", err, stdout)
	}
	cmds := strings.Join(commands(), "\n")
	if !strings.Contains(cmds, "*IDN?") || !strings.Contains(cmds, "OUTP OFF") {
		t.Errorf("probe --config did not identify the instrument and switch its output off:\n%s", cmds)
	}
}

func TestSecondProcessRefusedBeforeTheDevice(t *testing.T) {
	cfg, commands := smuBench(t)
	out := filepath.Join(t.TempDir(), "r")
	if _, stderr, err := run(t, "run", cfg, "--out", out, "-q", "--set", "iterations=2"); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	// An interrupted run (a finished one has nothing to resume).
	interrupt(t, out)
	// Another process holds the run: here a lock held by this process,
	// which flock treats as another holder.
	lock, err := journal.LockDir(out)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Unlock()
	before := len(commands())
	_, _, err = run(t, "resume", out, "-q")
	if !errors.Is(err, journal.ErrLocked) || !strings.Contains(err.Error(), strconv.Itoa(os.Getpid())) {
		t.Fatalf("second resume: %v, want ErrLocked naming pid %d", err, os.Getpid())
	}
	if n := len(commands()); n != before {
		t.Errorf("the refused resume sent %d commands to the instrument", n-before)
	}
	j, err := journal.OpenReadOnly(out)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if s, _ := j.Summary(context.Background()); s.Status != journal.RunInterrupted {
		t.Errorf("the refused resume changed the status to %s", s.Status)
	}
}

// interrupt marks the run in dir interrupted, as a Ctrl-C at its very end
// would have left it: a resume replays it.
func interrupt(t *testing.T, dir string) {
	t.Helper()
	j, err := journal.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if err := j.SetOutcome(context.Background(), journal.RunInterrupted, "interrupted: context canceled"); err != nil {
		t.Fatal(err)
	}
}

// countBox answers y = x and counts its queries; it cancels the run's
// context after stopAfter of them, as a first Ctrl-C would.
type countBox struct {
	n         atomic.Int64
	stopAfter int64
	cancel    context.CancelFunc
}

var counting atomic.Pointer[countBox]

func (b *countBox) Spec() insitu.Spec {
	return insitu.Spec{Name: "count", In: insitu.Box(2, -1, 1), Out: []string{"y0", "y1"}}
}

func (b *countBox) Query(_ context.Context, x []float64) ([]float64, error) {
	if b.n.Add(1) == b.stopAfter && b.cancel != nil {
		b.cancel()
	}
	return []float64{x[0], x[1]}, nil
}

func init() {
	insitu.Register("test-count", func(context.Context, insitu.Params) (insitu.BlackBox, error) {
		return counting.Load(), nil
	})
}

func TestBudgetIsPerRun(t *testing.T) {
	const cfgText = `
method: random
seed: 1
iterations: 50
blackbox: {kind: test-count}
objective: {kind: distance, target: [0.3, -0.2]}
init: {points: 5}
top_k: 2
safety: {budget: 20}
`
	cfg := writeFile(t, "count.yaml", cfgText)
	out := filepath.Join(t.TempDir(), "r")
	ctx, cancel := context.WithCancel(context.Background())
	first := &countBox{stopAfter: 12, cancel: cancel}
	counting.Store(first)
	root := newRoot()
	root.SetOut(&strings.Builder{})
	root.SetErr(&strings.Builder{})
	root.SetArgs([]string{"run", cfg, "--out", out, "-q"})
	if err := root.ExecuteContext(ctx); err == nil {
		t.Fatal("the interrupted run returned no error")
	}
	second := &countBox{}
	counting.Store(second)
	stdout, _, err := run(t, "resume", out, "-q")
	total := first.n.Load() + second.n.Load()
	if total > 20 {
		t.Errorf("%d + %d = %d device queries over the run, budget 20", first.n.Load(), second.n.Load(), total)
	}
	// The guard's refusal ends the run, which says why.
	if err != nil || !strings.Contains(stdout, "stop: rejected: the guard refused query") || !strings.Contains(stdout, "budget") {
		t.Errorf("resume past the budget: %v\n%s", err, stdout)
	}
	if first.n.Load() < 12 || second.n.Load() == 0 {
		t.Errorf("the test did not exercise a resume: %d then %d queries", first.n.Load(), second.n.Load())
	}
	// A run whose earlier sessions spent the budget is refused before the
	// device is opened, and left as it was.
	interrupt(t, out)
	third := &countBox{}
	counting.Store(third)
	if _, _, err := run(t, "resume", out, "-q"); err == nil || !strings.Contains(err.Error(), "safety.budget of 20") {
		t.Errorf("resume of a run with no budget left: %v", err)
	}
	if third.n.Load() != 0 {
		t.Errorf("the refused resume made %d queries", third.n.Load())
	}
	if st, _, _, _ := journalState(t, out); st != journal.RunInterrupted {
		t.Errorf("the refused resume left the run %s", st)
	}
}

func TestComplianceShowsInRunsShow(t *testing.T) {
	cfg, _ := smuBench(t)
	body, _ := os.ReadFile(cfg)
	// Let the optimizer ask for more than the 1 mA compliance can give the
	// 1 kΩ ∥ diode load: the SMU reports compliance and the interlock trips.
	wide := strings.NewReplacer(
		"max: 0.7 ", "max: 2 ",
		"bounds: {lower: 0, upper: 0.7}", "bounds: {lower: 1.2, upper: 2}",
		"initial: {smu/voltage: 0}", "initial: {smu/voltage: 1.2}",
		"smu/voltage: {lo: -0.05, hi: 0.75}", "smu/voltage: {lo: -0.05, hi: 2.5}",
	).Replace(string(body))
	if wide == string(body) {
		t.Fatal("the replacements no longer match configs/bench-smu-twin.yaml")
	}
	cfg = writeFile(t, "wide.yaml", wide)
	out := filepath.Join(t.TempDir(), "r")
	_, _, err := run(t, "run", cfg, "--out", out, "-q")
	if err == nil || !strings.Contains(err.Error(), "compliance") {
		t.Fatalf("a run into compliance: %v, want the compliance interlock", err)
	}
	stdout, _, err := run(t, "runs", "show", out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"interrupted", "smu/compliance in 1 of 1 measured queries", "interlock", "safestate"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("runs show lacks %q:\n%s", want, stdout)
		}
	}
	stdout, _, err = run(t, "export", out)
	if head, _, _ := strings.Cut(stdout, "\n"); err != nil || head != "query_id,iteration,slot,role,status,started_at,finished_at,objective,in:smu/voltage,out:smu/voltage,out:smu/current,out:smu/compliance,error" {
		t.Errorf("export header: %v %q", err, head)
	}
}
