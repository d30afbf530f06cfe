package journal

import (
	"context"
	"testing"
)

// BenchmarkBeginFinish measures one query's journaling (ns/op is per query)
// under each durability policy, in iterations of 10 queries that Begin
// their points, measure, Finish them and Sync. Compare the sub-benchmarks as
// ratios: the absolute numbers are the machine's fsync latency.
func BenchmarkBeginFinish(b *testing.B) {
	const batch = 10
	x := make([]float64, 10)
	y := make([]float64, 5)
	for _, bc := range []struct {
		name      string
		policy    SyncPolicy
		beginMany bool
	}{
		{"SyncEvery", SyncEvery, false},
		{"SyncPerIteration/batch10", SyncPerIteration, false},
		{"SyncPerIteration/BeginBatch10", SyncPerIteration, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ctx := context.Background()
			j, _ := newJournal(b, WithSync(bc.policy))
			intents := make([]Intent, batch)
			for i := range intents {
				intents[i] = Intent{Slot: i, Role: RoleStep, X: x}
			}
			b.ResetTimer()
			for done := 0; done < b.N; done += batch {
				n := min(batch, b.N-done)
				var ids []int64
				if bc.beginMany {
					var err error
					if ids, err = j.BeginBatch(ctx, intents[:n]); err != nil {
						b.Fatal(err)
					}
				} else {
					for _, in := range intents[:n] {
						id, err := j.Begin(ctx, in)
						if err != nil {
							b.Fatal(err)
						}
						ids = append(ids, id)
					}
				}
				for _, id := range ids {
					if err := j.Finish(ctx, id, y, 1, nil); err != nil {
						b.Fatal(err)
					}
				}
				if err := j.Sync(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDataset reads back 1000 queries, which the loop does every
// iteration to train the surrogate.
func BenchmarkDataset(b *testing.B) {
	ctx := context.Background()
	j, _ := newJournal(b)
	intents := make([]Intent, 1000)
	for i := range intents {
		intents[i] = Intent{Iteration: i, Role: RoleStep, X: make([]float64, 10)}
	}
	ids, err := j.BeginBatch(ctx, intents)
	if err != nil {
		b.Fatal(err)
	}
	for _, id := range ids {
		j.Finish(ctx, id, make([]float64, 5), 0, nil)
	}
	j.Sync(ctx)
	b.ResetTimer()
	for b.Loop() {
		if _, _, err := j.Dataset(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
