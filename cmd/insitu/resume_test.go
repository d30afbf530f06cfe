package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/insitu-lab/insitu"
	"github.com/insitu-lab/insitu/loop/journal"
)

// dirState is what a directory holds: each file's time, size and content
// hash, so a test can tell that a command touched nothing.
func dirState(t *testing.T, dir string) map[string]string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, e := range es {
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		m[e.Name()] = fmt.Sprintf("%v %d %x", fi.ModTime(), len(b), sha256.Sum256(b))
	}
	return m
}

// replaceInFile replaces the only occurrence of old in path with new.
func replaceInFile(t *testing.T, path, old, new string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(b, []byte(old)); n != 1 {
		t.Fatalf("%q occurs %d times in %s, want once", old, n, path)
	}
	if err := os.WriteFile(path, bytes.Replace(b, []byte(old), []byte(new), 1), 0o600); err != nil {
		t.Fatal(err)
	}
}

// smuRun runs the SMU bench twin for a few iterations and leaves it
// interrupted, as a Ctrl-C would: what a resume continues. commands lists
// what the instrument received.
func smuRun(t *testing.T) (out string, commands func() []string) {
	t.Helper()
	cfg, commands := smuBench(t)
	out = filepath.Join(t.TempDir(), "r")
	if _, stderr, err := run(t, "run", cfg, "--out", out, "-q", "--set", "iterations=4", "--set", "checkpoint_every=2"); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	interrupt(t, out)
	return out, commands
}

// refusedBeforeTheDevice runs `insitu resume out` and checks that it fails
// with an error containing want, sends nothing to the instrument, and
// leaves the run interrupted.
func refusedBeforeTheDevice(t *testing.T, out string, commands func() []string, want ...string) {
	t.Helper()
	before := len(commands())
	_, _, err := run(t, "resume", out, "-q")
	if err == nil {
		t.Fatal("the resume was not refused")
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("the refusal does not say %q: %v", w, err)
		}
	}
	if n := len(commands()); n != before {
		t.Errorf("the refused resume sent %d commands to the instrument", n-before)
	}
	j, err := journal.Peek(out)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if m, err := j.Meta(context.Background()); err != nil || m.Status != journal.RunInterrupted {
		t.Errorf("after the refused resume: %+v, %v; want the run left interrupted", m, err)
	}
}

// TestResumeRefusesAChangedConfig: a budget changed in the journal's
// stored config (its checksum no longer matches) or in DIR/config.yaml
// (it no longer matches the journal) refuses the resume before the
// instrument is opened, naming what differs.
func TestResumeRefusesAChangedConfig(t *testing.T) {
	t.Run("journal", func(t *testing.T) {
		out, commands := smuRun(t)
		replaceInFile(t, filepath.Join(out, journal.FileName), "budget: 400", "budget: 900")
		refusedBeforeTheDevice(t, out, commands, "meta config: stored value does not match its checksum")
	})
	t.Run("config.yaml", func(t *testing.T) {
		out, commands := smuRun(t)
		path := filepath.Join(out, "config.yaml")
		replaceInFile(t, path, "budget: 400", "budget: 900")
		replaceInFile(t, path, "seed: 1\n", "seed: 5\n")
		refusedBeforeTheDevice(t, out, commands, path, "safety.budget, seed", "differs from the config the run began with")
	})
	t.Run("config.yaml missing", func(t *testing.T) {
		out, commands := smuRun(t)
		if err := os.Remove(filepath.Join(out, "config.yaml")); err != nil {
			t.Fatal(err)
		}
		before := len(commands())
		if _, stderr, err := run(t, "resume", out, "-q"); err != nil {
			t.Fatalf("resume without config.yaml: %v\n%s", err, stderr)
		}
		if len(commands()) == before {
			t.Error("the resume did not reach the instrument")
		}
	})
}

// TestResumeRefusesABadCheckpoint: a checkpoint whose surrogate weights
// are NaN (a model that diverged before it was saved) refuses the resume
// before the instrument is opened, and the run stays interrupted.
func TestResumeRefusesABadCheckpoint(t *testing.T) {
	out, commands := smuRun(t)
	ctx := context.Background()
	j, err := journal.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	it, parts, ok, err := j.LatestCheckpoint(ctx)
	if err != nil || !ok {
		t.Fatalf("no checkpoint: %v", err)
	}
	parts["model"] = nanWeight(t, parts["model"])
	if err := j.SaveCheckpoint(ctx, it, parts); err != nil {
		t.Fatal(err)
	}
	j.Close()
	refusedBeforeTheDevice(t, out, commands, "non-finite weight", "left as it was")
}

// nanWeight returns a surrogate file, whole and with a valid checksum,
// whose first weight is NaN.
func nanWeight(t *testing.T, model []byte) []byte {
	t.Helper()
	b := bytes.Clone(model)
	const prefix = 24 // magic, version, header length, parameter count
	hlen := int(binary.LittleEndian.Uint32(b[12:]))
	binary.LittleEndian.PutUint64(b[prefix+hlen:], math.Float64bits(math.NaN()))
	n := len(b)
	binary.LittleEndian.PutUint32(b[n-4:], crc32.ChecksumIEEE(b[:n-4]))
	return b
}

// TestResumeOfAFinishedRunTouchesNothing: a finished run has nothing to
// resume; the resume says so and changes no file of the run directory.
func TestResumeOfAFinishedRunTouchesNothing(t *testing.T) {
	cfg := writeFile(t, "tiny.yaml", tinyRun)
	out := filepath.Join(t.TempDir(), "r")
	if _, stderr, err := run(t, "run", cfg, "--out", out, "-q"); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	before := dirState(t, out)
	time.Sleep(20 * time.Millisecond) // a rewrite would get a later time
	stdout, stderr, err := run(t, "resume", out, "-q")
	if err != nil || !strings.Contains(stdout, "nothing to do") || !strings.Contains(stdout, "stop: iterations") {
		t.Fatalf("resume of a finished run: %v\n%s\n%s", err, stdout, stderr)
	}
	if after := dirState(t, out); !reflect.DeepEqual(after, before) {
		var changed []string
		for k := range after {
			if after[k] != before[k] {
				changed = append(changed, k)
			}
		}
		for k := range before {
			if _, ok := after[k]; !ok {
				changed = append(changed, k+" (removed)")
			}
		}
		t.Errorf("the resume of a finished run changed %v", changed)
	}
}

// TestRunRefusesADirectoryOfOtherFiles: `run --out DIR` into a directory
// that holds someone's files and no run is refused before anything is
// written; an empty directory is fine.
func TestRunRefusesADirectoryOfOtherFiles(t *testing.T) {
	cfg := writeFile(t, "tiny.yaml", tinyRun)
	out := t.TempDir()
	mine := map[string]string{"config.yaml": "my own notes\n", "data.txt": "1 2 3\n"}
	for name, body := range mine {
		if err := os.WriteFile(filepath.Join(out, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	before := dirState(t, out)
	_, _, err := run(t, "run", cfg, "--out", out, "-q")
	if err == nil || !strings.Contains(err.Error(), "not empty and holds no run") || !strings.Contains(err.Error(), "config.yaml") {
		t.Fatalf("run into a directory of other files: %v", err)
	}
	if after := dirState(t, out); !reflect.DeepEqual(after, before) {
		t.Errorf("the refused run changed the directory: %v", after)
	}
	for _, args := range [][]string{{"train", writeFile(t, "t.yaml", tinyTrain)}, {"run", cfg, "--dry-run"}} {
		if _, _, err := run(t, append(args, "--out", out, "-q")...); err == nil || !strings.Contains(err.Error(), "holds no run") && !strings.Contains(err.Error(), "not a rig") {
			t.Errorf("%s into a directory of other files: %v", args[0], err)
		}
	}
	empty := t.TempDir()
	if _, stderr, err := run(t, "run", cfg, "--out", empty, "-q"); err != nil {
		t.Fatalf("run into an empty directory: %v\n%s", err, stderr)
	}
}

// TestSummarySaysWhyTheRunStopped: the summary of an interrupted run, and
// the journal, say why it stopped.
func TestSummarySaysWhyTheRunStopped(t *testing.T) {
	cfg := writeFile(t, "count.yaml", `
method: random
seed: 1
iterations: 50
blackbox: {kind: test-count}
objective: {kind: distance, target: [0.3, -0.2]}
init: {points: 5}
top_k: 2
`)
	out := filepath.Join(t.TempDir(), "r")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	counting.Store(&countBox{stopAfter: 12, cancel: cancel})
	root := newRoot()
	var stdout strings.Builder
	root.SetOut(&stdout)
	root.SetErr(&strings.Builder{})
	root.SetArgs([]string{"run", cfg, "--out", out, "-q"})
	if err := root.ExecuteContext(ctx); err == nil {
		t.Fatal("the interrupted run returned no error")
	}
	if !strings.Contains(stdout.String(), "stop: interrupted: ") || strings.Contains(stdout.String(), "stop: \n") {
		t.Errorf("summary of an interrupted run:\n%s", stdout.String())
	}
	j, err := journal.Peek(out)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if m, err := j.Meta(context.Background()); err != nil || m.Status != journal.RunInterrupted || !strings.HasPrefix(m.Stop, "interrupted: ") {
		t.Errorf("journal: %+v, %v", m, err)
	}
}

// TestVersion2JournalResumes: a run interrupted by the previous release
// (a journal of schema version 2, testdata) resumes with this build to the
// run an uninterrupted run of its config makes, and is shown and exported
// with the names this build gives its config.
func TestVersion2JournalResumes(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the fixture's config twice")
	}
	fixture := filepath.Join("..", "..", "loop", "journal", "testdata", "v2-run")
	dir := filepath.Join(t.TempDir(), "v2")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	dump, err := os.ReadFile(filepath.Join(fixture, "journal.sql"))
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", filepath.Join(dir, journal.FileName))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(string(dump)); err != nil {
		t.Fatal(err)
	}
	db.Close()
	cfg, err := os.ReadFile(filepath.Join(fixture, "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.yaml"), cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	before := journalRows(t, dir)

	show, _, err := run(t, "runs", "show", dir)
	if err != nil || !strings.Contains(show, "described by this build") || !strings.Contains(show, "status   interrupted") {
		t.Errorf("runs show of the version 2 journal: %v\n%s", err, show)
	}
	stdout, stderr, err := run(t, "resume", dir, "-q")
	if err != nil {
		t.Fatalf("resume of the version 2 journal: %v\n%s", err, stderr)
	}
	if !strings.Contains(stdout, "53 replayed") {
		t.Errorf("the resume did not replay the 53 journaled queries:\n%s", stdout)
	}
	// The previous release's surrogate was float64, and the resume goes on
	// in its checkpoint's precision.
	ref := filepath.Join(t.TempDir(), "ref")
	if _, stderr, err := run(t, "run", filepath.Join(dir, "config.yaml"), "--out", ref, "-q", "--set", "surrogate.precision=float64"); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	want, got := journalRows(t, ref), journalRows(t, dir)
	if len(got) != len(want) {
		t.Fatalf("%d queries after the resume, %d in an uninterrupted run", len(got), len(want))
	}
	// The surrogate's float64 arithmetic changed since that release (the
	// blocked GEMM sums in another order), so the queries its gradients
	// chose part from this build's in their last bits and then diverge. The
	// run's shape is the same, and so is its initial design (the fixture's
	// first 20 queries, drawn from the seed alone).
	const initial = 20
	for i := range want {
		if got[i].key != want[i].key {
			t.Fatalf("query %d is %s, the uninterrupted run's is %s", i, got[i].key, want[i].key)
		}
		if i < initial && (!sameFloats(got[i].x, want[i].x) || !sameFloats(got[i].y, want[i].y)) {
			t.Fatalf("initial query %d differs from the uninterrupted run", i)
		}
	}
	for i := range before {
		if !sameFloats(got[i].y, before[i].y) {
			t.Fatalf("query %d changed in the resume", i)
		}
	}
	csv, _, err := run(t, "export", dir)
	if err != nil || !strings.HasPrefix(csv, "query_id,iteration,slot,role,status,started_at,finished_at,objective,in:q0[0],in:q0[1],in:q0[2],in:q0[3],out:qT[0],") {
		t.Errorf("export of the resumed version 2 journal: %v\n%.200s", err, csv)
	}
}

// TestExportReadsTheStoredNames: exports name the columns as the run
// stored them, not as this build describes the config (which may have
// changed since the run).
func TestExportReadsTheStoredNames(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "r")
	d := journal.Description{
		Box: "cnon", Kind: "cnon",
		Inputs:  []journal.Variable{{Name: "amp_a", Role: journal.RoleSetpoint}, {Name: "amp_b", Role: journal.RoleSetpoint}},
		Outputs: []journal.Variable{{Name: "q_a", Role: journal.RoleMeasurement, Unit: "m"}, {Name: "q_b", Role: journal.RoleMeasurement, Unit: "m"}},
	}
	j, err := journal.Create(dir, journal.Meta{Method: "random", Kind: "cnon", Description: &d}, []byte("blackbox: {kind: cnon, n: 2}\n"))
	if err != nil {
		t.Fatal(err)
	}
	id, err := j.Begin(ctx, journal.Intent{Role: journal.RoleInit, X: []float64{0.5, 0.25}})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Finish(ctx, id, []float64{1, 2}, 3, nil); err != nil {
		t.Fatal(err)
	}
	j.Close()
	csv, _, err := run(t, "export", dir)
	if err != nil || !strings.HasPrefix(csv, "query_id,iteration,slot,role,status,started_at,finished_at,objective,in:amp_a,in:amp_b,out:q_a,out:q_b,error\n") {
		t.Errorf("export: %v\n%s", err, csv)
	}
	show, _, err := run(t, "runs", "show", dir)
	if err != nil || !strings.Contains(show, "inputs   2, outputs 2 (m)") {
		t.Errorf("runs show: %v\n%s", err, show)
	}
}

// markingBox is a test instrument that marks its query's instants: the
// pattern written, shown 2 ms later, measured 3 ms after that.
type markingBox struct{}

func (markingBox) Spec() insitu.Spec {
	return insitu.Spec{Name: "marking", In: insitu.Box(2, -1, 1), Out: names("y", 2)}
}

func (markingBox) Query(ctx context.Context, x []float64) ([]float64, error) {
	insitu.MarkQuery(ctx, "slm", insitu.MarkWritten, time.Now())
	time.Sleep(2 * time.Millisecond)
	insitu.MarkQuery(ctx, "slm", insitu.MarkShown, time.Now())
	time.Sleep(3 * time.Millisecond)
	insitu.MarkQuery(ctx, "pm", insitu.MarkMeasured, time.Now())
	return append([]float64(nil), x...), nil
}

func init() {
	insitu.Register("test-marking", func(_ context.Context, p insitu.Params) (insitu.BlackBox, error) {
		return markingBox{}, nil
	})
}

// TestQueryTimingShownAndBilled: the marks a device makes are journaled,
// `runs show` gives their intervals' median and 95th percentile, and a dry
// run's bill takes its device time from them (--timing).
func TestQueryTimingShownAndBilled(t *testing.T) {
	cfg := writeFile(t, "marking.yaml", `
method: random
iterations: 20
blackbox: {kind: test-marking}
objective: {kind: distance, target: [0.1, 0.2]}
init: {points: 5}
top_k: 1
`)
	out := filepath.Join(t.TempDir(), "bench")
	if _, stderr, err := run(t, "run", cfg, "--out", out, "-q"); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	show, _, err := run(t, "runs", "show", out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"timing   25 queries with marks", "start → written", "written → shown", "shown → measured", "measured → end", "whole query"} {
		if !strings.Contains(show, want) {
			t.Errorf("runs show lacks %q:\n%s", want, show)
		}
	}
	// The device time per query, computed here from the journal: the
	// median of last − first device mark.
	j, err := journal.Peek(out)
	if err != nil {
		t.Fatal(err)
	}
	qs, err := j.Queries(context.Background())
	j.Close()
	if err != nil {
		t.Fatal(err)
	}
	var spans []time.Duration
	for _, q := range qs {
		spans = append(spans, q.Marks[len(q.Marks)-2].At.Sub(q.Marks[1].At))
	}
	if len(spans) != 25 {
		t.Fatalf("%d queries", len(spans))
	}
	sortDurations(spans)
	median := spans[12]
	if median < 5*time.Millisecond {
		t.Fatalf("median device time %v, the device takes at least 5 ms", median)
	}

	smuCfg, _ := smuBench(t)
	_, bill, stdout := dryRun(t, smuCfg, "--timing", out)
	m := bill.Measured
	if m == nil {
		t.Fatalf("the bill has no measured timing:\n%s", stdout)
	}
	if m.Queries != 25 || math.Abs(m.DeviceMedian-median.Seconds()) > 1e-9 {
		t.Errorf("bill: %d queries, median %v s; want 25 and %v", m.Queries, m.DeviceMedian, median.Seconds())
	}
	if want := float64(bill.Queries.Device) * m.DeviceMedian; math.Abs(m.Device-want) > 1e-9 || math.Abs(m.EstimatedBench-(bill.Time.Process+bill.Time.RateWaited+want)) > 1e-9 {
		t.Errorf("bill: device %v s, estimate %v s; want %v s and process + waits + device", m.Device, m.EstimatedBench, want)
	}
	if !strings.Contains(stdout, "measured") {
		t.Errorf("the printed bill does not give the measured time:\n%s", stdout)
	}
	if _, _, err := run(t, "run", smuCfg, "--timing", out); err == nil {
		t.Error("--timing without --dry-run was accepted")
	}
}

func sortDurations(d []time.Duration) {
	for i := 1; i < len(d); i++ {
		for k := i; k > 0 && d[k] < d[k-1]; k-- {
			d[k], d[k-1] = d[k-1], d[k]
		}
	}
}

// TestBenchFaultIsRetriedOnResume: the power meter hangs up every
// connection after 50 lines, failing a query each session; each resume
// tries the failed query again (the fault cleared: a new connection) and
// goes on, until the run finishes. Every failed try stays journaled, and
// the summary of each failed session says why it stopped.
func TestBenchFaultIsRetriedOnResume(t *testing.T) {
	fb := filepath.Join(t.TempDir(), "slm.fb")
	addr := serveInProcess(t, "powermeter", "--tcp", "127.0.0.1:0", "--fb", fb, "--hangup-after", "50")
	cfg := benchConfig(t, addr, fb, 5)
	dir := filepath.Join(t.TempDir(), "run")
	args := []string{"run", cfg, "--out", dir, "-q"}
	sessions, failures := 0, 0
	for ; sessions < 20; sessions++ {
		stdout, stderr, err := run(t, args...)
		args = []string{"resume", dir, "-q"}
		if err == nil {
			break
		}
		failures++
		if !strings.Contains(stdout, "stop: failed: query q") || !strings.Contains(stdout, addr) {
			t.Errorf("session %d: the summary does not say why the run stopped:\n%s\n%s", sessions, stdout, stderr)
		}
	}
	if failures == 0 || sessions == 20 {
		t.Fatalf("%d sessions, %d failed: the test did not exercise the retry, or the run never finished", sessions+1, failures)
	}
	ctx := context.Background()
	j, err := journal.Peek(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	m, err := j.Meta(ctx)
	if err != nil || m.Status != journal.RunFinished {
		t.Fatalf("after %d sessions: %+v, %v", sessions+1, m, err)
	}
	qs, err := j.Queries(ctx)
	if err != nil {
		t.Fatal(err)
	}
	byKey := map[string]journal.Query{}
	failed := 0
	for _, q := range qs {
		byKey[q.Key] = q
		if q.Status == journal.StatusFailed {
			failed++
			if q.Rejected || !strings.Contains(q.Err, "pm") {
				t.Errorf("failed try %s: %+v", q.Key, q)
			}
		}
	}
	if failed != failures {
		t.Errorf("%d failed tries journaled, %d sessions failed", failed, failures)
	}
	for _, q := range qs {
		if q.Status != journal.StatusFailed {
			continue
		}
		base, n := q.Key, 1
		if b, a, ok := strings.Cut(q.Key, "#"); ok {
			base, n = b, int(a[0]-'0')
		}
		next, ok := byKey[base+"#"+string(rune('0'+n+1))]
		if !ok || next.Status == journal.StatusStarted || !sameFloats(next.X, q.X) {
			t.Errorf("failed try %s was not tried again at the same x: %+v", q.Key, next)
		}
	}
	t.Logf("%d sessions, %d failed tries retried", sessions+1, failed)
}

// TestResumeNotesAnotherDevice: a resume on a different unit (another
// *IDN? reply) than the run began with is warned of and journaled; the
// description keeps the first identity.
func TestResumeNotesAnotherDevice(t *testing.T) {
	ctx := context.Background()
	j, err := journal.Create(filepath.Join(t.TempDir(), "r"), journal.Meta{Method: "random", Kind: "rig"}, []byte("blackbox: {kind: rig}\n"))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	first := journal.Description{Box: "bench", Devices: []journal.Device{{Name: "smu", Type: "smu", Identity: "KEITHLEY,MODEL 2400,1111,C30"}}}
	var warnings []string
	warn := func(s string) { warnings = append(warnings, s) }
	if err := storeDescription(ctx, j, first, warn); err != nil {
		t.Fatal(err)
	}
	same := first
	if err := storeDescription(ctx, j, same, warn); err != nil || len(warnings) != 0 {
		t.Fatalf("the same device: %v, warnings %v", err, warnings)
	}
	other := first
	other.Devices = []journal.Device{{Name: "smu", Type: "smu", Identity: "KEITHLEY,MODEL 2400,2222,C30"}}
	if err := storeDescription(ctx, j, other, warn); err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "2222") || !strings.Contains(warnings[0], "1111") {
		t.Errorf("warnings %q", warnings)
	}
	evs, err := j.Events(ctx)
	if err != nil || len(evs) != 1 || evs[0].Kind != "identity" || evs[0].Name != "smu" {
		t.Errorf("events %+v, %v", evs, err)
	}
	if d, err := j.Describe(ctx); err != nil || d.Devices[0].Identity != first.Devices[0].Identity {
		t.Errorf("description %+v, %v: want the first identity kept", d, err)
	}
}

// TestRunStoresItsDescription: a run on the SMU bench stores its inputs
// and outputs with their units and bounds, the instrument's identity, the
// config's hash and the build, and runs show prints them.
func TestRunStoresItsDescription(t *testing.T) {
	cfg, _ := smuBench(t)
	out := filepath.Join(t.TempDir(), "r")
	if _, stderr, err := run(t, "run", cfg, "--out", out, "-q", "--set", "iterations=2"); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	j, err := journal.Peek(out)
	if err != nil {
		t.Fatal(err)
	}
	d, err := j.Describe(context.Background())
	m, _ := j.Meta(context.Background())
	j.Close()
	if err != nil {
		t.Fatal(err)
	}
	in := d.Inputs
	if len(in) != 1 || in[0].Name != "smu/voltage" || in[0].Unit != "V" || in[0].Role != journal.RoleSetpoint || in[0].Source != "smu" ||
		in[0].Lower == nil || *in[0].Lower != 0 || in[0].Upper == nil || *in[0].Upper != 0.7 || in[0].DType != "<f8" {
		t.Errorf("inputs %+v", in)
	}
	var outs []string
	for _, v := range d.Outputs {
		outs = append(outs, v.Name+" "+v.Unit)
	}
	if strings.Join(outs, ", ") != "smu/voltage V, smu/current A, smu/compliance " {
		t.Errorf("outputs %q", outs)
	}
	if c := d.Outputs[1]; c.Lower == nil || *c.Lower != -1e-5 || c.Upper == nil || *c.Upper != 1.05e-3 {
		t.Errorf("smu/current's range %v, %v: want safety.output_ranges'", c.Lower, c.Upper)
	}
	if len(d.Devices) != 1 || d.Devices[0].Name != "smu" || !strings.Contains(strings.ToLower(d.Devices[0].Identity), "twin") {
		t.Errorf("devices %+v", d.Devices)
	}
	if d.ConfigHash == "" || d.ConfigHash != m.ConfigHash || d.Build.Version != version || d.Build.GoVersion == "" {
		t.Errorf("hash %q (meta %q), build %+v", d.ConfigHash, m.ConfigHash, d.Build)
	}
	if d.Objective.Kind != "distance" || d.Objective.Direction != journal.Minimize {
		t.Errorf("objective %+v", d.Objective)
	}
	show, _, err := run(t, "runs", "show", out)
	if err != nil || !strings.Contains(show, "device   smu (smu): ") || !strings.Contains(show, "inputs   1 (V), outputs 3 (V, A)") || !strings.Contains(show, "config   sha256 "+m.ConfigHash) {
		t.Errorf("runs show: %v\n%s", err, show)
	}
}
