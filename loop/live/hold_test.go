package live

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/insitu-lab/insitu"
)

// countBox counts queries and skips.
type countBox struct {
	n, skipped, batches atomic.Int64
}

func (b *countBox) Spec() insitu.Spec {
	return insitu.Spec{Name: "count", In: insitu.Box(2, 0, 1), Out: []string{"y"}}
}

func (b *countBox) Query(_ context.Context, x []float64) ([]float64, error) {
	b.n.Add(1)
	return []float64{x[0]}, nil
}

func (b *countBox) QueryBatch(_ context.Context, xs [][]float64) ([][]float64, error) {
	b.batches.Add(1)
	ys := make([][]float64, len(xs))
	for i, x := range xs {
		b.n.Add(1)
		ys[i] = []float64{x[0]}
	}
	return ys, nil
}

func (b *countBox) Skip(n uint64) { b.skipped.Add(int64(n)) }

func TestHoldBlocksQueriesWhilePaused(t *testing.T) {
	done := make(chan struct{})
	h := NewHold(done)
	inner := &countBox{}
	box := h.Wrap(inner)
	ctx := context.Background()
	if _, err := box.Query(ctx, []float64{0.5, 0.5}); err != nil || inner.n.Load() != 1 {
		t.Fatalf("unpaused query: %v, %d device queries", err, inner.n.Load())
	}
	if !h.Pause() || h.Pause() {
		t.Fatal("Pause should report a change once")
	}
	got := make(chan error, 1)
	go func() {
		_, err := box.Query(ctx, []float64{0.1, 0.1})
		got <- err
	}()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, holding := h.Paused(); holding {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the query never reached the hold")
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	if inner.n.Load() != 1 {
		t.Fatal("a query reached the device while paused")
	}
	if !h.Resume() || h.Resume() {
		t.Fatal("Resume should report a change once")
	}
	if err := <-got; err != nil || inner.n.Load() != 2 {
		t.Fatalf("after resume: %v, %d device queries", err, inner.n.Load())
	}

	// The caller's context ends the wait with its error.
	h.Pause()
	cctx, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
	defer cancel()
	if _, err := box.Query(cctx, []float64{0, 0}); !errors.Is(err, context.DeadlineExceeded) || inner.n.Load() != 2 {
		t.Fatalf("cancelled wait: %v, %d device queries", err, inner.n.Load())
	}

	// The run's end lets the held query through (it is journaled as
	// started: it finishes, as the query in flight does on Ctrl-C).
	go func() {
		_, err := box.Query(ctx, []float64{0.2, 0.2})
		got <- err
	}()
	time.Sleep(20 * time.Millisecond)
	close(done)
	select {
	case err := <-got:
		if err != nil || inner.n.Load() != 3 {
			t.Fatalf("released query: %v, %d device queries", err, inner.n.Load())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the run's end did not release the hold")
	}
}

func TestHoldPassesBatchAndSkip(t *testing.T) {
	h := NewHold(nil)
	inner := &countBox{}
	box := h.Wrap(inner)
	if box.Spec().Name != "count" {
		t.Error("Spec not passed on")
	}
	ys, err := insitu.QueryBatch(context.Background(), box, [][]float64{{0, 0}, {1, 1}})
	if err != nil || len(ys) != 2 || inner.batches.Load() != 1 {
		t.Errorf("QueryBatch: %v, %d outputs, %d batches", err, len(ys), inner.batches.Load())
	}
	s, ok := box.(insitu.Sequenced)
	if !ok {
		t.Fatal("the wrapper hides Skip: a resumed seeded twin would replay the wrong noise")
	}
	s.Skip(7)
	if inner.skipped.Load() != 7 {
		t.Errorf("Skip(7) reached the box as %d", inner.skipped.Load())
	}
	if _, ok := box.(insitu.SafeStater); ok {
		t.Error("the wrapper claims a safe state of its own")
	}
}
