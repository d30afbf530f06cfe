package journal

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// special holds float64 bit patterns a careless encoder would mangle.
var special = []float64{
	0, math.Copysign(0, -1), 1, -1,
	math.SmallestNonzeroFloat64, -math.SmallestNonzeroFloat64,
	math.Float64frombits(0x000fffffffffffff), // largest subnormal
	math.MaxFloat64, -math.MaxFloat64,
	math.Inf(1), math.Inf(-1),
	math.NaN(), math.Float64frombits(0x7ff0000000000001), math.Float64frombits(0xfff8dead00000000), // NaN payloads
	math.Pi, 1e-300, 0.1,
}

func sameBits(a, b []float64) bool {
	if len(a) != len(b) || (a == nil) != (b == nil) {
		return false
	}
	for i := range a {
		if math.Float64bits(a[i]) != math.Float64bits(b[i]) {
			return false
		}
	}
	return true
}

func testMeta() Meta {
	return Meta{
		Version:   "v0.3.0-test",
		Method:    "gradpie",
		Kind:      "cnon",
		Seed:      math.MaxUint64 - 6, // beyond int64: must survive as text
		Direction: Maximize,
		Created:   time.Unix(1700000000, 123456789),
		Status:    RunRunning,
	}
}

func newJournal(t testing.TB, opts ...Option) (*Journal, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "run")
	j, err := Create(dir, testMeta(), []byte("blackbox:\n  kind: cnon\n"), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	return j, dir
}

func mustBegin(t testing.TB, j *Journal, q Intent) int64 {
	t.Helper()
	id, err := j.Begin(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestRoundTrip(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "run")
	config := []byte("blackbox: {kind: cnon, horizon: 5}\nnote: \"µ-rad, ünïcode\"\n")
	j, err := Create(dir, testMeta(), config)
	if err != nil {
		t.Fatal(err)
	}

	type want struct {
		in  Intent
		y   []float64
		obj float64
		err error
	}
	wants := []want{
		{Intent{Iteration: 0, Slot: 0, Role: RoleInit, Key: "iter 0 slot 0 init", X: special}, special[:5], 1.5, nil},
		{Intent{Iteration: 1, Slot: 2, Role: RoleStep, Key: "iter 1 slot 2 step", X: []float64{0.25, -0.5}}, []float64{math.Inf(1)}, math.Inf(-1), nil},
		{Intent{Iteration: 1, Slot: NoSlot, Role: RoleLocal, X: []float64{1, 2}}, nil, math.NaN(), errors.New("device timeout: /dev/ttyUSB0")},
		{Intent{Iteration: 2, Slot: NoSlot, Role: RoleBaseline, X: []float64{}}, []float64{}, 0, nil},
		{Intent{Iteration: 3, Slot: 0, Role: RoleEval, X: []float64{3}}, []float64{math.SmallestNonzeroFloat64}, -2, nil},
	}
	for _, w := range wants {
		id := mustBegin(t, j, w.in)
		if err := j.Finish(ctx, id, w.y, w.obj, w.err); err != nil {
			t.Fatal(err)
		}
	}
	startedID := mustBegin(t, j, Intent{Iteration: 4, Slot: 1, Role: RoleStep, Key: "iter 4 slot 1 step", X: []float64{9}})

	events := []EventRecord{
		{Time: time.Unix(5, 6), Kind: "bounds", Detail: "x3 = 1.2 above 1", Name: "x3", Value: 1.2, QueryID: 2},
		{Time: time.Unix(7, 8), Kind: "watchdog", Detail: "no reply in 2s", Value: math.NaN()},
	}
	for _, e := range events {
		if err := j.Event(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	parts := map[string][]byte{"surrogate": {1, 2, 3}, "adam": bytes.Repeat([]byte{0xff}, 1000), "empty": {}}
	if err := j.SaveCheckpoint(ctx, 3, parts); err != nil {
		t.Fatal(err)
	}
	if err := j.SetStatus(ctx, RunInterrupted); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}

	for _, ro := range []bool{false, true} {
		t.Run(fmt.Sprintf("readOnly=%v", ro), func(t *testing.T) {
			open := Open
			if ro {
				open = OpenReadOnly
			}
			j, err := open(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer j.Close()
			if err := j.IntegrityCheck(ctx); err != nil {
				t.Fatal(err)
			}
			m, err := j.Meta(ctx)
			if err != nil {
				t.Fatal(err)
			}
			wm := testMeta()
			wm.Status = RunInterrupted
			wm.ConfigHash = ConfigHash(config)
			if !m.Created.Equal(wm.Created) {
				t.Errorf("created %v, want %v", m.Created, wm.Created)
			}
			m.Created = wm.Created
			if m != wm {
				t.Errorf("meta %+v, want %+v", m, wm)
			}
			c, err := j.Config(ctx)
			if err != nil || !bytes.Equal(c, config) {
				t.Errorf("config %q, %v; want %q", c, err, config)
			}

			qs, err := j.Queries(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(qs) != len(wants)+1 {
				t.Fatalf("%d queries, want %d", len(qs), len(wants)+1)
			}
			for i, w := range wants {
				q := qs[i]
				if q.ID != int64(i+1) || q.Iteration != w.in.Iteration || q.Slot != w.in.Slot || q.Role != w.in.Role || q.Key != w.in.Key {
					t.Errorf("query %d: %+v, want intent %+v", i, q, w.in)
				}
				if !sameBits(q.X, w.in.X) {
					t.Errorf("query %d: x %v, want %v bit for bit", i, q.X, w.in.X)
				}
				if !sameBits(q.Y, w.y) {
					t.Errorf("query %d: y %v, want %v bit for bit", i, q.Y, w.y)
				}
				if q.Objective != w.obj && !(math.IsNaN(q.Objective) && math.IsNaN(w.obj)) {
					t.Errorf("query %d: objective %v, want %v", i, q.Objective, w.obj)
				}
				wantStatus, wantErr := StatusDone, ""
				if w.err != nil {
					wantStatus, wantErr = StatusFailed, w.err.Error()
				}
				if q.Status != wantStatus || q.Err != wantErr {
					t.Errorf("query %d: status %s %q, want %s %q", i, q.Status, q.Err, wantStatus, wantErr)
				}
				if q.StartedAt.IsZero() || q.FinishedAt.Before(q.StartedAt) {
					t.Errorf("query %d: started %v finished %v", i, q.StartedAt, q.FinishedAt)
				}
			}
			last := qs[len(qs)-1]
			if last.ID != startedID || last.Status != StatusStarted || last.Y != nil || !math.IsNaN(last.Objective) || !last.FinishedAt.IsZero() {
				t.Errorf("unfinished query read back as %+v", last)
			}

			es, err := j.Events(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(es) != len(events) {
				t.Fatalf("%d events, want %d", len(es), len(events))
			}
			for i := range es {
				g, w := es[i], events[i]
				if !g.Time.Equal(w.Time) || g.Kind != w.Kind || g.Detail != w.Detail || g.Name != w.Name || g.QueryID != w.QueryID ||
					math.Float64bits(g.Value) != math.Float64bits(w.Value) && !(math.IsNaN(g.Value) && math.IsNaN(w.Value)) {
					t.Errorf("event %d: %+v, want %+v", i, g, w)
				}
			}

			it, got, ok, err := j.LatestCheckpoint(ctx)
			if err != nil || !ok || it != 3 || !reflect.DeepEqual(got, parts) {
				t.Errorf("checkpoint: %d %v %v %v, want 3 %v", it, got, ok, err, parts)
			}
		})
	}
}

// TestObjectiveColumn pins what the REAL objective column does to special
// values; the bit-exact copy of every output is y.
func TestObjectiveColumn(t *testing.T) {
	ctx := context.Background()
	j, _ := newJournal(t, WithSync(SyncEvery))
	for _, tc := range []struct{ in, out float64 }{
		{math.Inf(1), math.Inf(1)},
		{math.Inf(-1), math.Inf(-1)},
		{math.SmallestNonzeroFloat64, math.SmallestNonzeroFloat64},
		{math.Copysign(0, -1), 0}, // REAL affinity stores an integral value as an integer
		{math.NaN(), math.NaN()},  // stored as NULL: unknown
		{1 << 62, 1 << 62},
		{-(1 << 63), -(1 << 63)},
		{math.MaxFloat64, math.MaxFloat64},
	} {
		id := mustBegin(t, j, Intent{Role: RoleStep, X: []float64{1}})
		if err := j.Finish(ctx, id, []float64{tc.in}, tc.in, nil); err != nil {
			t.Fatal(err)
		}
		q, err := j.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if math.Float64bits(q.Objective) != math.Float64bits(tc.out) && !(math.IsNaN(q.Objective) && math.IsNaN(tc.out)) {
			t.Errorf("objective %v read back as %v (bits %x), want %v", tc.in, q.Objective, math.Float64bits(q.Objective), tc.out)
		}
		if !sameBits(q.Y, []float64{tc.in}) {
			t.Errorf("y %v read back as %v", tc.in, q.Y)
		}
	}
	var nulls int
	j.read(ctx, "test", func(ctx context.Context, c *sql.Conn) error {
		return c.QueryRowContext(ctx, "SELECT COUNT(*) FROM queries WHERE objective IS NULL").Scan(&nulls)
	})
	if nulls != 1 {
		t.Errorf("%d NULL objectives, want 1 (the NaN)", nulls)
	}
}

func TestCreateRefusesExistingJournal(t *testing.T) {
	_, dir := newJournal(t)
	_, err := Create(dir, testMeta(), nil)
	if !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), filepath.Join(dir, FileName)) {
		t.Fatalf("second Create: %v, want ErrExists naming the journal", err)
	}

	// A WAL without its database must not be replayed into a new journal.
	dir2 := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir2, FileName+"-wal"), []byte("stale"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Create(dir2, testMeta(), nil); !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), "-wal") {
		t.Fatalf("Create over a stale WAL: %v, want ErrExists naming it", err)
	}
	if _, err := os.Stat(filepath.Join(dir2, FileName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("refused Create left %s behind: %v", FileName, err)
	}
}

func TestCreateValidates(t *testing.T) {
	for name, tc := range map[string]struct {
		meta Meta
		opts []Option
	}{
		"direction": {Meta{Direction: "up"}, nil},
		"status":    {Meta{Status: "paused"}, nil},
		"keep":      {Meta{}, []Option{WithKeepCheckpoints(0)}},
		"sync":      {Meta{}, []Option{WithSync(7)}},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if _, err := Create(dir, tc.meta, nil, tc.opts...); err == nil {
				t.Fatal("Create accepted an invalid setting")
			}
			if _, err := os.Stat(filepath.Join(dir, FileName)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("failed Create left a journal: %v", err)
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	t.Run("missing", func(t *testing.T) {
		dir := t.TempDir()
		_, err := Open(dir)
		if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), dir) {
			t.Fatalf("Open of an empty directory: %v", err)
		}
		if _, err := os.Stat(filepath.Join(dir, FileName)); !errors.Is(err, os.ErrNotExist) {
			t.Error("Open created a journal")
		}
	})
	t.Run("schema version", func(t *testing.T) {
		j, dir := newJournal(t)
		j.Close()
		db, err := sql.Open("sqlite", filepath.Join(dir, FileName))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec("UPDATE meta SET value = '99' WHERE key = 'schema_version'"); err != nil {
			t.Fatal(err)
		}
		db.Close()
		for _, open := range []func(string, ...Option) (*Journal, error){Open, OpenReadOnly} {
			_, err := open(dir)
			if !errors.Is(err, ErrSchema) || !strings.Contains(err.Error(), "version 99") || !strings.Contains(err.Error(), dir) {
				t.Errorf("open of a version 99 journal: %v", err)
			}
		}
	})
	t.Run("foreign database", func(t *testing.T) {
		dir := t.TempDir()
		db, err := sql.Open("sqlite", filepath.Join(dir, FileName))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec("CREATE TABLE t (a)"); err != nil {
			t.Fatal(err)
		}
		db.Close()
		if _, err := Open(dir); !errors.Is(err, ErrSchema) {
			t.Errorf("open of a foreign database: %v, want ErrSchema", err)
		}
	})
}

func TestLookupRemeasure(t *testing.T) {
	ctx := context.Background()
	j, dir := newJournal(t)
	key := func(it, s int) string { return fmt.Sprintf("iter %d slot %d step", it, s) }
	x := func(it, s int) []float64 { return []float64{float64(it), float64(s)} }

	// Iteration 0 completes; iteration 1 is interrupted after two Begins and
	// one Finish that was never synced: a crash, simulated by abandoning the
	// journal without Sync or Close.
	for s := range 2 {
		id := mustBegin(t, j, Intent{Iteration: 0, Slot: s, Role: RoleStep, Key: key(0, s), X: x(0, s)})
		if err := j.Finish(ctx, id, []float64{float64(10 + s)}, float64(s), nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	id10 := mustBegin(t, j, Intent{Iteration: 1, Slot: 0, Role: RoleStep, Key: key(1, 0), X: x(1, 0)})
	id11 := mustBegin(t, j, Intent{Iteration: 1, Slot: 1, Role: RoleStep, Key: key(1, 1), X: x(1, 1)})
	if err := j.Finish(ctx, id10, []float64{20}, 2, nil); err != nil {
		t.Fatal(err)
	}
	if j.Pending() != 1 {
		t.Fatalf("pending %d, want 1", j.Pending())
	}
	abandon(t, j)

	j, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	for s := range 2 {
		q, ok, err := j.Lookup(ctx, key(0, s))
		if err != nil || !ok || q.Status != StatusDone || !sameBits(q.Y, []float64{float64(10 + s)}) || q.Objective != float64(s) {
			t.Errorf("lookup of a done query: %+v %v %v", q, ok, err)
		}
	}
	var before []Query
	for s, id := range []int64{id10, id11} {
		q, ok, err := j.Lookup(ctx, key(1, s))
		if err != nil || !ok || q.ID != id || q.Status != StatusStarted || q.Y != nil {
			t.Fatalf("lookup of an interrupted query: %+v %v %v, want started id %d", q, ok, err, id)
		}
		before = append(before, q)
	}
	if _, ok, err := j.Lookup(ctx, key(2, 0)); ok || err != nil {
		t.Errorf("lookup of a query never made: ok=%v err=%v", ok, err)
	}

	// The loop must not Begin a known key again, nor finish a done query.
	if _, err := j.Begin(ctx, Intent{Iteration: 1, Slot: 0, Role: RoleStep, Key: key(1, 0), X: x(1, 0)}); err == nil ||
		!strings.Contains(err.Error(), fmt.Sprintf("query %d", id10)) {
		t.Errorf("Begin of a journaled key: %v, want an error naming query %d", err, id10)
	}
	done, _, _ := j.Lookup(ctx, key(0, 0))
	if err := j.Finish(ctx, done.ID, []float64{1}, 1, nil); err == nil {
		t.Error("Finish of a done query succeeded")
	}
	if err := j.Remeasure(ctx, done.ID, []float64{1}, 1, nil); err == nil {
		t.Error("Remeasure of a done query succeeded")
	}
	if err := j.Finish(ctx, 999, []float64{1}, 1, nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("Finish of an unknown id: %v, want ErrNotFound", err)
	}

	time.Sleep(2 * time.Millisecond) // so a rewritten started_at would show
	if err := j.Remeasure(ctx, id10, []float64{21}, 2.5, nil); err != nil {
		t.Fatal(err)
	}
	if err := j.Remeasure(ctx, id11, nil, math.NaN(), errors.New("interlock open")); err != nil {
		t.Fatal(err)
	}
	if err := j.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	q0, _ := j.Get(ctx, id10)
	q1, _ := j.Get(ctx, id11)
	if q0.Status != StatusRemeasured || !sameBits(q0.Y, []float64{21}) || q0.Objective != 2.5 || !q0.StartedAt.Equal(before[0].StartedAt) ||
		!q0.FinishedAt.After(q0.StartedAt) {
		t.Errorf("remeasured query: %+v, want remeasured with started_at %v", q0, before[0].StartedAt)
	}
	if q1.Status != StatusFailed || q1.Err != "interlock open" || !q1.StartedAt.Equal(before[1].StartedAt) {
		t.Errorf("failed remeasure: %+v", q1)
	}
	xs, ys, err := j.Dataset(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantX := [][]float64{x(0, 0), x(0, 1), x(1, 0)}
	wantY := [][]float64{{10}, {11}, {21}}
	if !reflect.DeepEqual(xs, wantX) || !reflect.DeepEqual(ys, wantY) {
		t.Errorf("dataset %v %v, want %v %v", xs, ys, wantX, wantY)
	}
}

// abandon drops a journal the way a crash would: the open transaction is
// never committed. Closing the connection rolls it back.
func abandon(t *testing.T, j *Journal) {
	t.Helper()
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.inTx {
		if _, err := j.conn.ExecContext(context.Background(), "ROLLBACK"); err != nil {
			t.Fatal(err)
		}
	}
	j.closed = true
	j.closeConn()
}

// TestSyncPolicy looks at the journal from a second, read-only connection,
// which sees exactly what a crash would leave.
func TestSyncPolicy(t *testing.T) {
	ctx := context.Background()
	for _, p := range []SyncPolicy{SyncPerIteration, SyncEvery} {
		t.Run(p.String(), func(t *testing.T) {
			j, dir := newJournal(t, WithSync(p))
			r, err := OpenReadOnly(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			status := func(id int64) QueryStatus {
				t.Helper()
				q, err := r.Get(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				return q.Status
			}
			a := mustBegin(t, j, Intent{Role: RoleStep, Slot: 0, X: []float64{1}})
			b := mustBegin(t, j, Intent{Role: RoleStep, Slot: 1, X: []float64{2}})
			if status(a) != StatusStarted {
				t.Fatal("Begin returned before its intent was visible to another connection")
			}
			if err := j.Finish(ctx, a, []float64{1}, 1, nil); err != nil {
				t.Fatal(err)
			}
			if err := j.Finish(ctx, b, []float64{2}, 2, nil); err != nil {
				t.Fatal(err)
			}
			own, _ := j.Get(ctx, a)
			if own.Status != StatusDone {
				t.Errorf("the writer does not see its own pending Finish: %s", own.Status)
			}
			wantPending, wantSeen := 2, StatusStarted
			if p == SyncEvery {
				wantPending, wantSeen = 0, StatusDone
			}
			if j.Pending() != wantPending || status(a) != wantSeen || status(b) != wantSeen {
				t.Errorf("before Sync: pending %d, others see %s %s; want %d, %s", j.Pending(), status(a), status(b), wantPending, wantSeen)
			}
			if err := j.Sync(ctx); err != nil {
				t.Fatal(err)
			}
			if j.Pending() != 0 || status(a) != StatusDone || status(b) != StatusDone {
				t.Errorf("after Sync: pending %d, others see %s %s", j.Pending(), status(a), status(b))
			}

			// Any other write commits pending Finishes with it.
			c := mustBegin(t, j, Intent{Role: RoleStep, X: []float64{3}})
			if err := j.Finish(ctx, c, []float64{3}, 3, nil); err != nil {
				t.Fatal(err)
			}
			if err := j.Event(ctx, EventRecord{Kind: "clamp", Value: math.NaN()}); err != nil {
				t.Fatal(err)
			}
			if j.Pending() != 0 || status(c) != StatusDone {
				t.Errorf("Event left pending %d, others see %s", j.Pending(), status(c))
			}
		})
	}
}

func TestCancelledContext(t *testing.T) {
	j, _ := newJournal(t)
	ctx := context.Background()
	id := mustBegin(t, j, Intent{Role: RoleStep, X: []float64{1}})
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := j.Begin(cancelled, Intent{Role: RoleStep, X: []float64{2}}); !errors.Is(err, context.Canceled) {
		t.Errorf("Begin with a cancelled context: %v, want context.Canceled", err)
	}
	if err := j.Finish(cancelled, id, []float64{7}, 7, nil); err != nil {
		t.Fatalf("Finish with a cancelled context lost a paid-for result: %v", err)
	}
	if err := j.Sync(cancelled); err != nil {
		t.Fatalf("Sync with a cancelled context: %v", err)
	}
	// The shutdown path of an interrupted run.
	if err := j.Event(cancelled, EventRecord{Kind: "interrupt", Detail: "SIGINT", Value: math.NaN()}); err != nil {
		t.Errorf("Event with a cancelled context: %v", err)
	}
	if err := j.SaveCheckpoint(cancelled, 0, map[string][]byte{"loop": {1}}); err != nil {
		t.Errorf("SaveCheckpoint with a cancelled context: %v", err)
	}
	if err := j.SetStatus(cancelled, RunInterrupted); err != nil {
		t.Errorf("SetStatus with a cancelled context: %v", err)
	}
	if _, err := j.Queries(cancelled); !errors.Is(err, context.Canceled) {
		t.Errorf("Queries with a cancelled context: %v, want context.Canceled", err)
	}
	qs, err := j.Queries(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(qs) != 1 || qs[0].Status != StatusDone {
		t.Errorf("queries after cancellation: %+v", qs)
	}
}

func TestQueriesWhere(t *testing.T) {
	ctx := context.Background()
	j, _ := newJournal(t)
	roles := []Role{RoleInit, RoleStep, RoleLocal, RoleEval, RoleStep, RoleLocal}
	for i, r := range roles {
		id := mustBegin(t, j, Intent{Iteration: i, Role: r, X: []float64{float64(i)}})
		var err error
		switch i % 3 {
		case 0:
			err = j.Finish(ctx, id, []float64{0}, 0, nil)
		case 1:
			err = j.Finish(ctx, id, nil, math.NaN(), errors.New("boom"))
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	ids := func(f Filter) []int64 {
		qs, err := j.QueriesWhere(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		var out []int64
		for _, q := range qs {
			out = append(out, q.ID)
		}
		return out
	}
	for _, tc := range []struct {
		f    Filter
		want []int64
	}{
		{Filter{}, []int64{1, 2, 3, 4, 5, 6}},
		{Filter{Statuses: []QueryStatus{StatusDone}}, []int64{1, 4}},
		{Filter{Statuses: []QueryStatus{StatusFailed, StatusStarted}}, []int64{2, 3, 5, 6}},
		{Filter{Roles: []Role{RoleLocal}}, []int64{3, 6}},
		{Filter{Roles: []Role{RoleStep}, Statuses: []QueryStatus{StatusFailed}}, []int64{2, 5}},
		{Filter{Roles: []Role{RoleBaseline}}, nil},
	} {
		if got := ids(tc.f); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%+v: ids %v, want %v", tc.f, got, tc.want)
		}
	}
	if _, err := j.Begin(ctx, Intent{Role: "guess", X: []float64{1}}); err == nil {
		t.Error("Begin accepted an unknown role")
	}
	if err := j.Finish(ctx, 3, nil, 1, nil); err == nil {
		t.Error("Finish accepted a result without y")
	}
}

func TestCheckpointsKeepLast(t *testing.T) {
	ctx := context.Background()
	j, _ := newJournal(t, WithKeepCheckpoints(2))
	if _, _, ok, err := j.LatestCheckpoint(ctx); ok || err != nil {
		t.Fatalf("a new journal has a checkpoint: %v %v", ok, err)
	}
	big := make([]byte, 256<<10)
	for it := range 40 {
		for i := range big {
			big[i] = byte(it + i)
		}
		parts := map[string][]byte{"weights": big, "iteration": []byte(strconv.Itoa(it)), "nil": nil}
		if err := j.SaveCheckpoint(ctx, it, parts); err != nil {
			t.Fatal(err)
		}
	}
	it, parts, ok, err := j.LatestCheckpoint(ctx)
	if err != nil || !ok || it != 39 || string(parts["iteration"]) != "39" || !bytes.Equal(parts["weights"], big) ||
		parts["nil"] == nil || len(parts["nil"]) != 0 || len(parts) != 3 {
		t.Fatalf("latest checkpoint: it=%d ok=%v err=%v parts=%d", it, ok, err, len(parts))
	}
	var n, nparts, pages, pageSize int64
	j.read(ctx, "test", func(ctx context.Context, c *sql.Conn) error {
		c.QueryRowContext(ctx, "SELECT COUNT(*) FROM checkpoints").Scan(&n)
		c.QueryRowContext(ctx, "SELECT COUNT(*) FROM checkpoint_parts").Scan(&nparts)
		c.QueryRowContext(ctx, "PRAGMA page_count").Scan(&pages)
		return c.QueryRowContext(ctx, "PRAGMA page_size").Scan(&pageSize)
	})
	if n != 2 || nparts != 6 {
		t.Errorf("%d checkpoints with %d parts kept, want 2 with 6", n, nparts)
	}
	// 40 checkpoints of 256 KiB were written; freed pages must be reused.
	if size := pages * pageSize; size > 8*int64(len(big)) {
		t.Errorf("database is %d bytes after pruning, want under %d", size, 8*len(big))
	}
	if err := j.SaveCheckpoint(ctx, 1, map[string][]byte{"": {1}}); err == nil {
		t.Error("SaveCheckpoint accepted an unnamed part")
	}
}

func TestReadOnlyAndClosed(t *testing.T) {
	ctx := context.Background()
	j, dir := newJournal(t)
	r, err := OpenReadOnly(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Begin(ctx, Intent{Role: RoleStep, X: []float64{1}}); !errors.Is(err, ErrReadOnly) {
		t.Errorf("Begin on a read-only journal: %v", err)
	}
	if err := r.SaveCheckpoint(ctx, 0, nil); !errors.Is(err, ErrReadOnly) {
		t.Errorf("SaveCheckpoint on a read-only journal: %v", err)
	}
	r.Close()
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := j.Queries(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("Queries after Close: %v", err)
	}
	if err := j.Event(ctx, EventRecord{Kind: "x"}); !errors.Is(err, ErrClosed) {
		t.Errorf("Event after Close: %v", err)
	}
}

func TestConcurrentUse(t *testing.T) {
	ctx := context.Background()
	j, _ := newJournal(t)
	const workers, each = 4, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				id, err := j.Begin(ctx, Intent{Iteration: i, Slot: w, Role: RoleStep, Key: fmt.Sprintf("w%d i%d", w, i), X: []float64{float64(w)}})
				if err == nil {
					err = j.Finish(ctx, id, []float64{float64(i)}, float64(i), nil)
				}
				if err == nil && i%5 == 0 {
					err = j.Event(ctx, EventRecord{Kind: "rate", QueryID: id, Value: math.NaN()})
				}
				if err == nil && i%10 == 0 {
					_, _, err = j.Dataset(ctx)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if err := j.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	xs, _, err := j.Dataset(ctx)
	if err != nil || len(xs) != workers*each {
		t.Fatalf("dataset of %d, %v; want %d", len(xs), err, workers*each)
	}
}

func TestList(t *testing.T) {
	root := t.TempDir()
	mk := func(name string, dir Direction, created int64, objs ...float64) {
		m := testMeta()
		m.Direction, m.Created = dir, time.Unix(created, 0)
		j, err := Create(filepath.Join(root, name), m, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer j.Close()
		ctx := context.Background()
		for _, o := range objs {
			id := mustBegin(t, j, Intent{Role: RoleStep, X: []float64{o}})
			if err := j.Finish(ctx, id, []float64{o}, o, nil); err != nil {
				t.Fatal(err)
			}
		}
		mustBegin(t, j, Intent{Role: RoleStep, X: []float64{-100}}) // started: not counted, not best
		if err := j.SetStatus(ctx, RunFinished); err != nil {
			t.Fatal(err)
		}
	}
	mk("b-max", Maximize, 200, 1, 5, math.NaN(), 3)
	mk("a-min", Minimize, 100, 4, -2, 7)
	mk("c-empty", Minimize, 300)
	os.Mkdir(filepath.Join(root, "not-a-run"), 0o755)
	os.WriteFile(filepath.Join(root, "stray.txt"), []byte("x"), 0o644)
	os.Mkdir(filepath.Join(root, "broken"), 0o755)
	os.WriteFile(filepath.Join(root, "broken", FileName), []byte("not sqlite at all, but long enough to have a header....................................................."), 0o644)

	list, err := List(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 4 {
		t.Fatalf("%d summaries, want 4: %+v", len(list), list)
	}
	if list[0].Dir != filepath.Join(root, "broken") || list[0].Err == nil {
		t.Errorf("broken journal listed as %+v, want an error", list[0])
	}
	for i, w := range []struct {
		name          string
		queries, done int
		best          float64
	}{{"a-min", 4, 3, -2}, {"b-max", 5, 4, 5}, {"c-empty", 1, 0, math.NaN()}} {
		s := list[i+1]
		if s.Err != nil || s.Dir != filepath.Join(root, w.name) || s.Queries != w.queries || s.Done != w.done ||
			!(s.Best == w.best || math.IsNaN(s.Best) && math.IsNaN(w.best)) || s.Status != RunFinished || s.Method != "gradpie" || s.Kind != "cnon" {
			t.Errorf("summary %d: %+v, want %s with %d queries, %d done, best %v", i, s, w.name, w.queries, w.done, w.best)
		}
	}
	if _, err := List(filepath.Join(root, "missing")); err == nil {
		t.Error("List of a missing root succeeded")
	}
	// A run directory given as the root lists itself.
	if one, err := List(filepath.Join(root, "a-min")); err != nil || len(one) != 1 || one[0].Dir != filepath.Join(root, "a-min") || one[0].Best != -2 {
		t.Errorf("List of a run directory: %+v, %v; want that run", one, err)
	}
}

func countQueries(t *testing.T, j *Journal) int {
	t.Helper()
	var n int
	err := j.read(context.Background(), "count", func(ctx context.Context, c *sql.Conn) error {
		return c.QueryRowContext(ctx, "SELECT COUNT(*) FROM queries").Scan(&n)
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestCancelDuringBegin: SQLite rolls back the whole transaction when a
// write inside it is interrupted, which would take the pending Finishes
// with it. Cancelling a Begin in flight must never lose them.
func TestCancelDuringBegin(t *testing.T) {
	bg := context.Background()
	j, _ := newJournal(t)
	intents := make([]Intent, 300)
	for i := range intents {
		intents[i] = Intent{Iteration: i, Role: RoleLocal, X: make([]float64, 8)}
	}
	// Cancel at fractions of how long a batch takes here, so the
	// cancellation lands while it is being written on any machine.
	t0 := time.Now()
	if _, err := j.BeginBatch(bg, intents); err != nil {
		t.Fatal(err)
	}
	batch := time.Since(t0)
	for round := range 5 {
		id := mustBegin(t, j, Intent{Iteration: round, Role: RoleStep, X: []float64{1}})
		if err := j.Finish(bg, id, []float64{2}, 3, nil); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(bg)
		time.AfterFunc(batch*time.Duration(round)/5, cancel)
		before := countQueries(t, j)
		ids, err := j.BeginBatch(ctx, intents)
		cancel()
		if err := j.Sync(bg); err != nil {
			t.Fatalf("round %d: Sync after a cancelled Begin: %v", round, err)
		}
		if n := countQueries(t, j) - before; (err == nil && n != len(ids)) || n != 0 && n != len(intents) {
			t.Fatalf("round %d: batch half written: %d new rows, Begin returned %d ids", round, n, len(ids))
		}
		q, err := j.Get(bg, id)
		if err != nil || q.Status != StatusDone {
			t.Fatalf("round %d: the pending Finish was lost when Begin was cancelled: %+v %v", round, q, err)
		}
	}

	// An interrupted read rolls nothing back.
	for round := range 3 {
		id := mustBegin(t, j, Intent{Role: RoleStep, X: []float64{1}})
		if err := j.Finish(bg, id, []float64{2}, 3, nil); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(bg, time.Duration(round)*time.Millisecond)
		j.Queries(ctx)
		cancel()
		if err := j.Sync(bg); err != nil {
			t.Fatalf("read round %d: Sync after a cancelled read: %v", round, err)
		}
		if q, err := j.Get(bg, id); err != nil || q.Status != StatusDone {
			t.Fatalf("read round %d: the pending Finish was lost when a read was cancelled: %+v %v", round, q, err)
		}
	}
}
