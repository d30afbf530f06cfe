package opamp

import (
	"context"
	"math/rand/v2"
	"testing"
)

func BenchmarkAnalyticQuery(b *testing.B) {
	tw := newTwin(b, nil)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tw.Query(ctx, nominal); err != nil {
			b.Fatal(err)
		}
	}
}

// One ngspice process per query: netlist, fork/exec, DC operating point,
// 1001-point AC sweep, parsing.
func BenchmarkNgspiceQuery(b *testing.B) {
	tw := ngspiceTwin(b, nil)
	ctx := context.Background()
	for b.Loop() {
		if _, err := tw.Query(ctx, nominal); err != nil {
			b.Fatal(err)
		}
	}
}

// A batch of 16 on GOMAXPROCS workers (16 queries on 2 cores is the
// budget an ngspice batch is sized for).
func BenchmarkNgspiceBatch(b *testing.B) {
	tw := ngspiceTwin(b, nil)
	rng := rand.New(rand.NewPCG(1, 1))
	xs := make([][]float64, 16)
	for i := range xs {
		xs[i] = randomSizing(rng)
	}
	ctx := context.Background()
	for b.Loop() {
		if _, err := tw.QueryBatch(ctx, xs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*len(xs))/1e3, "ms/query")
}
