package loop

import (
	"context"
	"errors"
	"math"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/insitu-lab/insitu"
	"github.com/insitu-lab/insitu/loop/journal"
	"github.com/insitu-lab/insitu/safety"
)

// faultyBox is a device that fails its failAt-th query (counting from 1)
// as a dropped connection would, and counts the queries that reach it.
type faultyBox struct {
	insitu.BlackBox
	failAt int64
	calls  atomic.Int64
}

var errConnection = errors.New("pm: dial tcp 127.0.0.1:5025: connect: connection refused")

func (b *faultyBox) Query(ctx context.Context, x []float64) ([]float64, error) {
	if b.calls.Add(1) == b.failAt {
		return nil, errConnection
	}
	return b.BlackBox.Query(ctx, x)
}

// TestResumeRetriesAFailedQuery: a query that a device fault failed is
// tried again when the run is resumed (the fault cleared), its failed try
// kept in the journal under its own key; the resumed run equals one that
// never failed.
func TestResumeRetriesAFailedQuery(t *testing.T) {
	for _, m := range []string{MethodGradPIE, MethodRandom} {
		t.Run(m, func(t *testing.T) {
			ctx := context.Background()
			cfg := smallConfig(m)
			cfg.CheckpointEvery = 3
			ref := createJournal(t, t.TempDir(), m)
			defer ref.Close()
			want, err := Run(ctx, cfg, cnonProblem(t, 4, 2), ref, nil)
			if err != nil {
				t.Fatal(err)
			}
			wantXs := journaledXs(t, ref)

			dir := t.TempDir()
			j := createJournal(t, dir, m)
			p := cnonProblem(t, 4, 2)
			box := &faultyBox{BlackBox: p.Box, failAt: 37}
			p.Box = box
			res, err := Run(ctx, cfg, p, j, nil)
			if !errors.Is(err, errConnection) {
				t.Fatalf("the faulty run ended with %v, want the device's error", err)
			}
			if !strings.Contains(res.Stop, "connection refused") {
				t.Errorf("stop %q does not say why the run ended", res.Stop)
			}
			j.Close()

			// A second fault on the first retry: another try, another key.
			j, err = journal.Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			p2 := cnonProblem(t, 4, 2)
			box2 := &faultyBox{BlackBox: p2.Box, failAt: 1}
			p2.Box = box2
			if _, err := Run(ctx, cfg, p2, j, nil); !errors.Is(err, errConnection) {
				t.Fatalf("second session: %v, want the device's error", err)
			}
			if box2.calls.Load() != 1 {
				t.Errorf("second session queried the device %d times, want 1 (the retry)", box2.calls.Load())
			}
			j.Close()

			j, err = journal.Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer j.Close()
			got, err := Run(ctx, cfg, cnonProblem(t, 4, 2), j, nil)
			if err != nil {
				t.Fatalf("resume after the fault: %v", err)
			}
			if got.Retried != 1 || got.Stop != want.Stop {
				t.Errorf("resume retried %d, stop %q; want 1 and %q", got.Retried, got.Stop, want.Stop)
			}
			qs, err := j.Queries(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var done [][]float64
			var failed []string
			for _, q := range qs {
				switch q.Status {
				case journal.StatusDone, journal.StatusRemeasured:
					done = append(done, q.X)
				case journal.StatusFailed:
					if q.Rejected {
						t.Errorf("query %s: a device fault journaled as a rejection", q.Key)
					}
					failed = append(failed, q.Key)
				default:
					t.Errorf("query %s left %s", q.Key, q.Status)
				}
			}
			if len(failed) != 2 || failed[0] != "q0000036" || failed[1] != "q0000036#2" {
				t.Errorf("failed tries %v, want q0000036 and q0000036#2", failed)
			}
			if len(done) != len(wantXs) {
				t.Fatalf("%d measured queries after the resume, the uninterrupted run has %d", len(done), len(wantXs))
			}
			for i := range done {
				if !sameBits(done[i], wantXs[i]) {
					t.Fatalf("query %d differs from the uninterrupted run", i)
				}
			}
			if math.Float64bits(got.Best.F) != math.Float64bits(want.Best.F) {
				t.Errorf("best %v, uninterrupted %v", got.Best.F, want.Best.F)
			}
			// Every try counts as a device query against the budget.
			begun, _, err := j.QueryCounts(ctx)
			if err != nil || begun != len(wantXs)+2 {
				t.Errorf("%d queries begun (%v), want %d", begun, err, len(wantXs)+2)
			}
		})
	}
}

// countingBox counts the queries that reach the device.
type countingBox struct {
	insitu.BlackBox
	calls atomic.Int64
}

func (b *countingBox) Query(ctx context.Context, x []float64) ([]float64, error) {
	b.calls.Add(1)
	return b.BlackBox.Query(ctx, x)
}

// TestGuardRefusalEndsTheRunWithItsReason: a query the guard refuses (a
// step over the slew limit) is journaled as a rejection; the run ends
// without an error and says why; a resume of the journal is refused the
// same query without asking the guard or the device.
func TestGuardRefusalEndsTheRunWithItsReason(t *testing.T) {
	ctx := context.Background()
	cfg := smallConfig(MethodRandom)
	sc := safety.Config{MaxStep: safety.All(0.05)}
	guarded := func() (*countingBox, Problem) {
		p := cnonProblem(t, 4, 2)
		box := &countingBox{BlackBox: p.Box}
		g, err := safety.New(box, sc)
		if err != nil {
			t.Fatal(err)
		}
		p.Box = g
		return box, p
	}
	dir := t.TempDir()
	j := createJournal(t, dir, cfg.Method)
	box, p := guarded()
	res, err := Run(ctx, cfg, p, j, nil)
	if err != nil {
		t.Fatalf("a refused query ended the run with an error: %v", err)
	}
	if !strings.HasPrefix(res.Stop, "rejected: the guard refused query q0000001: ") || !strings.Contains(res.Stop, "slew limit exceeded") {
		t.Errorf("stop %q, want the refusal of q0000001", res.Stop)
	}
	if res.Queries != 1 || box.calls.Load() != 1 {
		t.Errorf("%d samples, %d device queries; want 1 and 1", res.Queries, box.calls.Load())
	}
	q, ok, err := j.Lookup(ctx, "q0000001")
	if err != nil || !ok || q.Status != journal.StatusFailed || !q.Rejected || !strings.Contains(q.Err, "slew") {
		t.Fatalf("refused query journaled as %+v (%v, %v)", q, ok, err)
	}
	j.Close()

	j, err = journal.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	box, p = guarded()
	again, err := Run(ctx, cfg, p, j, nil)
	if err != nil || again.Stop != res.Stop {
		t.Fatalf("resume: stop %q, %v; want %q", again.Stop, err, res.Stop)
	}
	if box.calls.Load() != 0 {
		t.Errorf("the resume queried the device %d times, want 0", box.calls.Load())
	}
	if begun, _, _ := j.QueryCounts(ctx); begun != 2 {
		t.Errorf("%d queries journaled after the resume, want 2", begun)
	}
}

// markingBox marks the instants of each query as an instrument does.
type markingBox struct {
	insitu.BlackBox
}

func (b markingBox) Query(ctx context.Context, x []float64) ([]float64, error) {
	insitu.MarkQuery(ctx, "slm", insitu.MarkWritten, time.Now())
	time.Sleep(time.Millisecond)
	insitu.MarkQuery(ctx, "slm", insitu.MarkShown, time.Now())
	y, err := b.BlackBox.Query(ctx, x)
	insitu.MarkQuery(ctx, "cam", insitu.MarkMeasured, time.Now())
	return y, err
}

// TestQueriesCarryTheirMarks: the instants a device marks through the
// query's context (behind the guard and its watchdog) are journaled with
// the query, between the loop's own start and end.
func TestQueriesCarryTheirMarks(t *testing.T) {
	ctx := context.Background()
	cfg := smallConfig(MethodGradPIE)
	cfg.Iterations = 2
	p := cnonProblem(t, 4, 2)
	g, err := safety.New(markingBox{p.Box}, safety.Config{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	p.Box = g
	j := createJournal(t, t.TempDir(), cfg.Method)
	defer j.Close()
	if _, err := Run(ctx, cfg, p, j, nil); err != nil {
		t.Fatal(err)
	}
	qs, err := j.Queries(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range qs {
		var events []string
		for i, m := range q.Marks {
			events = append(events, m.Part+":"+m.Event)
			if i > 0 && m.At.Before(q.Marks[i-1].At) {
				t.Errorf("query %s: mark %s before the one it follows", q.Key, m.Event)
			}
		}
		if got := strings.Join(events, " "); got != ":start slm:written slm:shown cam:measured :end" {
			t.Fatalf("query %s marks %q", q.Key, got)
		}
		if d := q.Marks[2].At.Sub(q.Marks[1].At); d < time.Millisecond {
			t.Errorf("query %s: written to shown %v, the device took at least 1 ms", q.Key, d)
		}
		if q.Marks[0].At.Before(q.StartedAt) || q.FinishedAt.Before(q.Marks[4].At) {
			t.Errorf("query %s: marks outside the journal's started/finished times", q.Key)
		}
	}
}
