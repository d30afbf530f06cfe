package batch

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/insitu-lab/insitu"
)

func TestRun(t *testing.T) {
	s := insitu.Box(1, 0, 1)
	var next atomic.Uint64
	next.Store(5)
	xs := [][]float64{{0}, {0.5}, {1}, {0.25}}
	ks := make([]uint64, len(xs))
	err := Run(context.Background(), "twin", s, &next, xs, 3, func(_ context.Context, i int, k uint64) error {
		ks[i] = k
		return nil
	})
	// Item i gets index 5+i whatever the goroutine that ran it; the counter moves on by 4.
	if err != nil || !slices.Equal(ks, []uint64{5, 6, 7, 8}) || next.Load() != 9 {
		t.Errorf("indices %v, next %d, err %v", ks, next.Load(), err)
	}
	// A point outside the box: nothing runs, no index is taken.
	err = Run(context.Background(), "twin", s, &next, [][]float64{{0}, {2}}, 0, func(context.Context, int, uint64) error {
		t.Error("query ran")
		return nil
	})
	if err == nil || next.Load() != 9 {
		t.Errorf("out-of-box batch: err %v, next %d", err, next.Load())
	}
	// The first error stops the batch and cancels the others' context.
	boom := errors.New("boom")
	var ran atomic.Int32
	err = Run(context.Background(), "twin", s, &next, slices.Repeat([][]float64{{0.5}}, 100), 1, func(ctx context.Context, i int, _ uint64) error {
		ran.Add(1)
		if i == 3 {
			return boom
		}
		return ctx.Err()
	})
	if !errors.Is(err, boom) || ran.Load() != 4 {
		t.Errorf("failing batch: err %v after %d queries", err, ran.Load())
	}
}
