// Package batch is the code twins share to answer a batch of queries in
// parallel with the same results, noise included, as querying one at a
// time.
package batch

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/insitu-lab/insitu"
)

// Run is the body of a twin's QueryBatch. It checks every x against s
// before anything runs, takes the next len(xs) query indices from next (so
// that results, noise included, equal querying each x in order), and calls
// query(ctx, i, k) for item i with index k on workers goroutines (0:
// GOMAXPROCS), one item at a time. Cancellation or the first error stops
// the batch, and query's ctx is cancelled then, so that the others can stop
// early; the indices taken stay used. kind prefixes the errors.
func Run(ctx context.Context, kind string, s insitu.Space, next *atomic.Uint64, xs [][]float64, workers int, query func(ctx context.Context, i int, k uint64) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", kind, err)
	}
	for i, x := range xs {
		if err := s.Contains(x); err != nil {
			return fmt.Errorf("%s: query %d: %w", kind, i, err)
		}
	}
	n := len(xs)
	base := next.Add(uint64(n)) - uint64(n)
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	// The workers check ctx itself too: a caller's context may report Err
	// without closing Done, which a derived context would never see.
	bctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		item, done atomic.Int64 // items cost µs to ms: taking one at a time balances well
		wg         sync.WaitGroup
	)
	for range min(workers, n) {
		wg.Go(func() {
			for ctx.Err() == nil && bctx.Err() == nil {
				i := int(item.Add(1) - 1)
				if i >= n {
					return
				}
				if err := query(bctx, i, base+uint64(i)); err != nil {
					cancel(fmt.Errorf("query %d: %w", i, err))
					return
				}
				done.Add(1)
			}
		})
	}
	wg.Wait()
	if d := int(done.Load()); d < n {
		cause := context.Cause(bctx)
		if cause == nil {
			cause = ctx.Err()
		}
		return fmt.Errorf("%s: batch of %d queries, %d done: %w", kind, n, d, cause)
	}
	return nil
}
