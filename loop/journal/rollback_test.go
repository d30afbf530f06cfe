package journal

import (
	"context"
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"
)

// fillUp makes the journal's database full: SQLite refuses to grow it past
// its current size, and a write that needs a new page fails with
// SQLITE_FULL. roomy lifts the limit.
func fillUp(t *testing.T, j *Journal) {
	t.Helper()
	j.mu.Lock()
	defer j.mu.Unlock()
	ctx := context.Background()
	var n int
	if err := j.conn.QueryRowContext(ctx, "PRAGMA page_count").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if _, err := j.conn.ExecContext(ctx, "PRAGMA max_page_count = "+strconv.Itoa(n)); err != nil {
		t.Fatal(err)
	}
}

func roomy(t *testing.T, j *Journal) {
	t.Helper()
	j.mu.Lock()
	defer j.mu.Unlock()
	if _, err := j.conn.ExecContext(context.Background(), "PRAGMA max_page_count = 1073741823"); err != nil {
		t.Fatal(err)
	}
}

func inTx(j *Journal) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.inTx
}

// misreported are the errors of a journal that has lost track of SQLite's
// transaction: it still believes the rolled-back transaction is open.
func misreported(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "no transaction is active") || strings.Contains(err.Error(), "no such savepoint"))
}

// TestFullDiskNothingPending: a write that fails because the disk is full
// reports that, and once there is room again the journal works.
func TestFullDiskNothingPending(t *testing.T) {
	ctx := context.Background()
	j, _ := newJournal(t)
	a := mustBegin(t, j, Intent{Role: RoleStep, X: []float64{1}})
	fillUp(t, j)
	_, err := j.Begin(ctx, Intent{Role: RoleStep, X: make([]float64, 20000)})
	if err == nil || !strings.Contains(err.Error(), "full") || misreported(err) || errors.Is(err, ErrRolledBack) {
		t.Fatalf("Begin on a full disk: %v, want the SQLITE_FULL error alone", err)
	}
	if inTx(j) {
		t.Error("the journal believes a transaction is open after SQLite rolled it back")
	}
	if err := j.Finish(ctx, a, []float64{2}, 2, nil); err != nil {
		t.Fatalf("Finish after the full disk (no new page needed): %v", err)
	}
	if err := j.Sync(ctx); err != nil {
		t.Fatalf("Sync after the full disk: %v", err)
	}
	roomy(t, j)
	b := mustBegin(t, j, Intent{Role: RoleStep, X: make([]float64, 20000)})
	if err := j.Finish(ctx, b, []float64{3}, 3, nil); err != nil {
		t.Fatal(err)
	}
	if err := j.Sync(ctx); err != nil {
		t.Fatalf("Sync once there is room: %v", err)
	}
	for _, id := range []int64{a, b} {
		if q, err := j.Get(ctx, id); err != nil || q.Status != StatusDone {
			t.Errorf("query %d: %+v %v, want done", id, q.Status, err)
		}
	}
}

// TestFullDiskLosesPending: when SQLite answers a full disk by rolling back
// the transaction that holds unsynced Finishes, the journal says so, with
// the full disk as the cause; it does not report a phantom commit, does not
// let the loop go on as if the results were kept, and still records how the
// run ended.
func TestFullDiskLosesPending(t *testing.T) {
	big := make([]float64, 20000)
	for name, op := range map[string]func(j *Journal, b int64) error{
		"begin": func(j *Journal, _ int64) error {
			_, err := j.Begin(context.Background(), Intent{Role: RoleStep, X: big})
			return err
		},
		"finish": func(j *Journal, b int64) error {
			return j.Finish(context.Background(), b, big, 1, nil)
		},
		"checkpoint": func(j *Journal, _ int64) error {
			return j.SaveCheckpoint(context.Background(), 0, map[string][]byte{"surrogate": EncodeFloats(big)})
		},
		"event": func(j *Journal, _ int64) error {
			return j.Event(context.Background(), EventRecord{Kind: "clamp", Detail: strings.Repeat("x", 200000), Value: math.NaN()})
		},
	} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			j, dir := newJournal(t)
			a := mustBegin(t, j, Intent{Role: RoleStep, Slot: 0, X: []float64{1}})
			b := mustBegin(t, j, Intent{Role: RoleStep, Slot: 1, X: []float64{2}})
			if err := j.Finish(ctx, a, []float64{1}, 1, nil); err != nil {
				t.Fatal(err)
			}
			fillUp(t, j)
			err := op(j, b)
			if err == nil || !strings.Contains(err.Error(), "full") || misreported(err) {
				t.Fatalf("%s on a full disk: %v, want the SQLITE_FULL error", name, err)
			}
			if inTx(j) {
				t.Error("the journal believes a transaction is open after SQLite rolled it back")
			}
			if !errors.Is(err, ErrRolledBack) || !strings.Contains(err.Error(), "1 writes not yet synced are lost") {
				t.Fatalf("%s on a full disk: %v, want ErrRolledBack saying the pending Finish is lost", name, err)
			}
			if j.Pending() != 0 {
				t.Errorf("pending %d after the rollback", j.Pending())
			}
			serr := j.Sync(ctx)
			if !errors.Is(serr, ErrRolledBack) || !strings.Contains(serr.Error(), "full") || misreported(serr) {
				t.Errorf("Sync after the rollback: %v, want ErrRolledBack caused by the full disk", serr)
			}
			roomy(t, j)
			if _, err := j.Begin(ctx, Intent{Role: RoleStep, X: []float64{3}}); !errors.Is(err, ErrRolledBack) {
				t.Errorf("Begin after results were lost: %v, want ErrRolledBack", err)
			}
			if err := j.Finish(ctx, b, []float64{2}, 2, nil); !errors.Is(err, ErrRolledBack) {
				t.Errorf("Finish after results were lost: %v, want ErrRolledBack", err)
			}
			if err := j.SetStatus(ctx, RunFailed); err != nil {
				t.Errorf("SetStatus after results were lost: %v", err)
			}
			if err := j.Event(ctx, EventRecord{Kind: "abort", Detail: "journal lost results", Value: math.NaN()}); err != nil {
				t.Errorf("Event after results were lost: %v", err)
			}
			if err := j.Close(); err != nil {
				t.Errorf("Close after results were lost: %v", err)
			}

			// What is on disk is what a crash before the Sync would leave.
			r, err := OpenReadOnly(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			m, err := r.Meta(ctx)
			if err != nil || m.Status != RunFailed {
				t.Errorf("status %q %v, want failed", m.Status, err)
			}
			for _, id := range []int64{a, b} {
				if q, err := r.Get(ctx, id); err != nil || q.Status != StatusStarted {
					t.Errorf("query %d: %s %v, want started", id, q.Status, err)
				}
			}
		})
	}
}

// TestFailedWriteKeepsTransaction: a write that fails on its own (a key
// already journaled) is undone to its savepoint; that is no rollback of the
// transaction, and the pending Finish is committed with the next write.
func TestFailedWriteKeepsTransaction(t *testing.T) {
	ctx := context.Background()
	j, _ := newJournal(t)
	a := mustBegin(t, j, Intent{Role: RoleStep, Key: "a", X: []float64{1}})
	if err := j.Finish(ctx, a, []float64{1}, 1, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := j.Begin(ctx, Intent{Role: RoleStep, Key: "a", X: []float64{1}}); err == nil || errors.Is(err, ErrRolledBack) {
		t.Fatalf("Begin of a journaled key: %v, want a plain refusal", err)
	}
	if j.rolledBack.Load() {
		t.Error("undoing a failed write to its savepoint was taken for a rollback of the transaction")
	}
	if err := j.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if q, err := j.Get(ctx, a); err != nil || q.Status != StatusDone {
		t.Errorf("query %d: %s %v, want done", a, q.Status, err)
	}
}
