package journal

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// replaceOnce replaces the only occurrence of old in the closed journal of
// dir with new, of the same length: a few bytes changed on disk, as an
// editor or a bad sector would.
func replaceOnce(t *testing.T, dir string, old, new []byte) {
	t.Helper()
	if len(old) != len(new) {
		t.Fatal("replaceOnce: the lengths differ")
	}
	path := filepath.Join(dir, FileName)
	if _, err := os.Stat(path + "-wal"); err == nil {
		t.Fatal("the journal has a WAL: close it first")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(b, old); n != 1 {
		t.Fatalf("%q occurs %d times in the file, want once", old, n)
	}
	if err := os.WriteFile(path, bytes.Replace(b, old, new, 1), 0o600); err != nil {
		t.Fatal(err)
	}
}

// replaceAll is replaceOnce for bytes that may also remain on free pages
// of the file: every occurrence (at least one) is changed.
func replaceAll(t *testing.T, dir string, old, new []byte) {
	t.Helper()
	path := filepath.Join(dir, FileName)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(old) != len(new) || !bytes.Contains(b, old) {
		t.Fatalf("replaceAll: %q not in the file, or lengths differ", old)
	}
	if err := os.WriteFile(path, bytes.ReplaceAll(b, old, new), 0o600); err != nil {
		t.Fatal(err)
	}
}

// wantCorrupt checks that Open refuses dir with ErrCorrupt naming want, and
// returns the journal opened read-only.
func wantCorrupt(t *testing.T, dir, want string) *Journal {
	t.Helper()
	j, err := Open(dir)
	if err == nil {
		j.Close()
		t.Fatalf("Open of a journal whose %s was changed succeeded", want)
	}
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), want) {
		t.Fatalf("Open: %v, want ErrCorrupt naming %q", err, want)
	}
	r, err := OpenReadOnly(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	if err := r.Verify(context.Background()); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), want) {
		t.Errorf("Verify: %v, want ErrCorrupt naming %q", err, want)
	}
	return r
}

// TestMetaChecksum: a changed byte in the stored config, or in any other
// meta row, is refused by Open (before a resume opens a device) and by
// every read of the row.
func TestMetaChecksum(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		old, new string
		want     string
		read     func(*Journal) error
	}{
		{"config", "budget: 60", "budget: 90", "meta config: stored value does not match its checksum",
			func(j *Journal) error { _, err := j.Config(ctx); return err }},
		{"seed", "18446744073709551609", "18446744073709551608", "meta seed: stored value does not match its checksum",
			func(j *Journal) error { _, err := j.Meta(ctx); return err }},
		{"status", "interrupted", "interruptex", "meta status: stored value does not match its checksum",
			func(j *Journal) error { _, err := j.Summary(ctx); return err }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "run")
			j, err := Create(dir, testMeta(), []byte("method: gradpie\nbudget: 60\n"))
			if err != nil {
				t.Fatal(err)
			}
			if err := j.SetOutcome(ctx, RunInterrupted, "stopped: context canceled"); err != nil {
				t.Fatal(err)
			}
			if err := j.Verify(ctx); err != nil {
				t.Fatalf("Verify of an intact journal: %v", err)
			}
			j.Close()
			replaceOnce(t, dir, []byte(tc.old), []byte(tc.new))
			r := wantCorrupt(t, dir, tc.want)
			if err := tc.read(r); !errors.Is(err, ErrCorrupt) {
				t.Errorf("read of the changed row: %v, want ErrCorrupt", err)
			}
		})
	}
}

// TestMetaRowMissing: a deleted meta row (the stop reason) is refused too.
func TestMetaRowMissing(t *testing.T) {
	j, dir := newJournal(t)
	j.Close()
	db, err := sql.Open("sqlite", filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("DELETE FROM meta WHERE key = 'stop'"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := Open(dir); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "meta stop: the row is missing") {
		t.Fatalf("Open: %v, want ErrCorrupt naming the missing row", err)
	}
}

// TestEventChecksum: a prediction record turned into a safety event kind
// that never happened is refused by Open and by Events.
func TestEventChecksum(t *testing.T) {
	ctx := context.Background()
	j, dir := newJournal(t)
	id := mustBegin(t, j, Intent{Role: RoleStep, X: []float64{1}})
	if err := j.Finish(ctx, id, []float64{2}, 2, nil); err != nil {
		t.Fatal(err)
	}
	if err := j.Prediction(ctx, id, 0.25); err != nil {
		t.Fatal(err)
	}
	if err := j.Event(ctx, EventRecord{Kind: "clamp", Detail: "x0 clamped", Name: "x0", Value: 1.5}); err != nil {
		t.Fatal(err)
	}
	if err := j.Event(ctx, EventRecord{Kind: "safestate", Detail: "ok", Value: math.NaN()}); err != nil {
		t.Fatal(err)
	}
	es, err := j.Events(ctx)
	if err != nil || len(es) != 3 || es[0].Kind != KindPrediction || es[0].QueryID != id || es[1].Value != 1.5 || !math.IsNaN(es[2].Value) {
		t.Fatalf("events %+v, %v", es, err)
	}
	j.Close()
	replaceOnce(t, dir, []byte(KindPrediction), []byte("saturation"))
	r := wantCorrupt(t, dir, "event 1: stored event (time, kind, detail, name, value, query) does not match its checksum")
	if _, err := r.Events(ctx); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Events: %v, want ErrCorrupt", err)
	}
}

// TestIterationChecksum: a changed best objective in an iteration record
// (what progress plots and runs show read) is refused.
func TestIterationChecksum(t *testing.T) {
	ctx := context.Background()
	j, dir := newJournal(t)
	const best = 0.123456789012345
	for i := range 3 {
		it := Iteration{Iteration: i, Queries: 10 * i, Best: math.NaN(), StepObjective: math.Inf(1), TrainLoss: 0, Controller: time.Millisecond, Box: 0, Projected: i}
		if i == 1 {
			it.Best = best
		}
		if err := j.RecordIteration(ctx, it); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	its, err := j.Iterations(ctx)
	if err != nil || len(its) != 3 || its[1].Best != best || !math.IsNaN(its[0].Best) || !math.IsNaN(its[2].StepObjective) {
		t.Fatalf("iterations %+v, %v", its, err)
	}
	j.Close()
	// SQLite stores a REAL big-endian.
	old := binary.BigEndian.AppendUint64(nil, math.Float64bits(best))
	new := binary.BigEndian.AppendUint64(nil, math.Float64bits(best)^1<<20)
	replaceOnce(t, dir, old, new)
	r := wantCorrupt(t, dir, "iteration 1: stored record does not match its checksum")
	if _, err := r.Iterations(ctx); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Iterations: %v, want ErrCorrupt", err)
	}
}

// TestOutcomeMarksAndRejection: the rejected flag and the marks of a query
// round-trip, and are covered by its checksum.
func TestOutcomeMarksAndRejection(t *testing.T) {
	ctx := context.Background()
	j, dir := newJournal(t)
	t0 := time.Unix(1700000000, 1)
	marks := []Mark{
		{Event: "start", At: t0},
		{Part: "slm", Event: "written", At: t0.Add(time.Millisecond)},
		{Part: "slm", Event: "shown", At: t0.Add(17 * time.Millisecond)},
		{Part: "", Event: "settled", At: t0.Add(317 * time.Millisecond)},
		{Part: "cam", Event: "measured", At: t0.Add(320 * time.Millisecond)},
		{Event: "end", At: t0.Add(321 * time.Millisecond)},
	}
	a := mustBegin(t, j, Intent{Role: RoleStep, Key: "a", X: []float64{1}})
	b := mustBegin(t, j, Intent{Role: RoleStep, Key: "b", X: []float64{math.NaN()}})
	if err := j.FinishOutcome(ctx, a, Outcome{Y: []float64{3}, Objective: 3, Marks: marks}); err != nil {
		t.Fatal(err)
	}
	if err := j.FinishOutcome(ctx, b, Outcome{Objective: math.NaN(), Err: errors.New("safety: x0 = NaN: non-finite input"), Rejected: true}); err != nil {
		t.Fatal(err)
	}
	if err := j.FinishOutcome(ctx, b, Outcome{Rejected: true}); err == nil {
		t.Error("a rejection without an error was accepted")
	}
	if err := j.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	qa, err := j.Get(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	if len(qa.Marks) != len(marks) || qa.Rejected {
		t.Fatalf("query a: marks %+v, rejected %v", qa.Marks, qa.Rejected)
	}
	for i, m := range qa.Marks {
		if m.Part != marks[i].Part || m.Event != marks[i].Event || !m.At.Equal(marks[i].At) {
			t.Errorf("mark %d: %+v, want %+v", i, m, marks[i])
		}
	}
	qb, err := j.Get(ctx, b)
	if err != nil || !qb.Rejected || qb.Status != StatusFailed || qb.Marks != nil {
		t.Fatalf("query b: %+v, %v", qb, err)
	}
	j.Close()
	replaceOnce(t, dir, []byte(`"event":"shown"`), []byte(`"event":"shewn"`))
	wantCorrupt(t, dir, "query 1: stored result (status, y, objective, error) does not match its checksum")
}

// TestRejectedFlagChecksum: clearing the rejected flag, which would make a
// resume try the refused query on the device, is refused.
func TestRejectedFlagChecksum(t *testing.T) {
	ctx := context.Background()
	j, dir := newJournal(t)
	id := mustBegin(t, j, Intent{Role: RoleStep, X: []float64{2}})
	if err := j.FinishOutcome(ctx, id, Outcome{Objective: math.NaN(), Err: errors.New("input out of bounds"), Rejected: true}); err != nil {
		t.Fatal(err)
	}
	j.Close()
	db, err := sql.Open("sqlite", filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("UPDATE queries SET rejected = 0"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	wantCorrupt(t, dir, "query 1: stored result")
}

// TestOutcomeStop: SetOutcome records why the run ended; SetStatus (a
// resume marking the run running) forgets it.
func TestOutcomeStop(t *testing.T) {
	ctx := context.Background()
	j, dir := newJournal(t)
	if err := j.SetOutcome(ctx, RunFailed, "failed: query q0000012: rig: measure pm: connection refused"); err != nil {
		t.Fatal(err)
	}
	j.Close()
	j, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	m, err := j.Meta(ctx)
	if err != nil || m.Status != RunFailed || m.Stop != "failed: query q0000012: rig: measure pm: connection refused" {
		t.Fatalf("meta %+v, %v", m, err)
	}
	if err := j.SetStatus(ctx, RunRunning); err != nil {
		t.Fatal(err)
	}
	if m, _ = j.Meta(ctx); m.Status != RunRunning || m.Stop != "" {
		t.Errorf("after SetStatus(running): %+v", m)
	}
}

// TestDescribe: the description round-trips, is written once, and is
// covered by its checksum.
func TestDescribe(t *testing.T) {
	ctx := context.Background()
	lo, hi := -1.0, 2.5
	d := Description{
		Box: "bench", Kind: "rig",
		Inputs: []Variable{{Name: "smu/voltage", Role: RoleSetpoint, Unit: "V", Lower: &lo, Upper: &hi, Shape: []int{}, DType: "<f8", Source: "smu"}},
		Outputs: []Variable{
			{Name: "smu/voltage", Role: RoleMeasurement, Unit: "V", Shape: []int{}, DType: "<f8", Source: "smu"},
			{Name: "pm/power", Role: RoleMeasurement, Unit: "W", Upper: &hi, Shape: []int{}, DType: "<f8", Source: "pm"},
		},
		Objective:  Objective{Kind: "output", Direction: Maximize, Unit: "W"},
		Devices:    []Device{{Name: "smu", Type: "smu", Identity: "KEITHLEY INSTRUMENTS INC.,MODEL 2400,4242424,C30"}, {Name: "pm", Type: "powermeter", Error: "no identity"}},
		ConfigHash: ConfigHash([]byte("x")),
		Build:      Build{Version: "insitu test", Revision: "abc", Modified: true, GoVersion: "go1.26"},
	}
	m := testMeta()
	m.Description = &d
	dir := filepath.Join(t.TempDir(), "run")
	j, err := Create(dir, m, []byte("blackbox: {kind: rig}\n"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := j.Describe(ctx)
	if err != nil || !reflect.DeepEqual(got, d) {
		t.Fatalf("Describe: %+v, %v; want %+v", got, err, d)
	}
	if err := j.SetDescription(ctx, d); err == nil {
		t.Error("a second description was stored")
	}
	j.Close()

	// A journal created without one gets one later; before, Describe says
	// there is none.
	j2, dir2 := newJournal(t)
	if _, err := j2.Describe(ctx); !errors.Is(err, ErrNoDescription) {
		t.Fatalf("Describe of a journal without one: %v, want ErrNoDescription", err)
	}
	if err := j2.SetDescription(ctx, d); err != nil {
		t.Fatal(err)
	}
	if got, err := j2.Describe(ctx); err != nil || got.Devices[0].Identity != d.Devices[0].Identity {
		t.Fatalf("Describe after SetDescription: %+v, %v", got, err)
	}
	j2.Close()
	_ = dir2

	replaceOnce(t, dir, []byte("MODEL 2400"), []byte("MODEL 2401"))
	r := wantCorrupt(t, dir, "meta description: stored value does not match its checksum")
	if _, err := r.Describe(ctx); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Describe: %v, want ErrCorrupt", err)
	}
}

// TestPeekLeavesNoTrace: a look at a closed journal makes no file in its
// directory and changes none; with a writer at work it sees what the
// writer committed.
func TestPeekLeavesNoTrace(t *testing.T) {
	ctx := context.Background()
	j, dir := newJournal(t)
	if err := j.SetOutcome(ctx, RunFinished, "iterations"); err != nil {
		t.Fatal(err)
	}
	j.Close()
	list := func() map[string]time.Time {
		es, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]time.Time{}
		for _, e := range es {
			fi, err := e.Info()
			if err != nil {
				t.Fatal(err)
			}
			m[e.Name()] = fi.ModTime()
		}
		return m
	}
	before := list()
	p, err := Peek(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := p.Meta(ctx)
	if err != nil || m.Status != RunFinished || m.Stop != "iterations" {
		t.Fatalf("Peek: %+v, %v", m, err)
	}
	p.Close()
	if after := list(); !reflect.DeepEqual(after, before) {
		t.Errorf("Peek changed the directory: %v, was %v", after, before)
	}

	w, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.SetStatus(ctx, RunRunning); err != nil {
		t.Fatal(err)
	}
	p, err = Peek(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if m, err := p.Meta(ctx); err != nil || m.Status != RunRunning {
		t.Errorf("Peek while a writer works: %+v, %v; want running", m, err)
	}
}
