package cnon

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
)

// Default horizon and steps (T = 5, 50 RK4 steps) at the study's sizes.

func BenchmarkQuery(b *testing.B) {
	for _, n := range []int{10, 20} {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			tw := newTwin(b, func(c *Config) { c.N = n })
			x := randomIn(rand.New(rand.NewPCG(1, 1)), n, 1)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := tw.Query(ctx, x); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkVJP(b *testing.B) {
	for _, n := range []int{10, 20} {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			tw := newTwin(b, func(c *Config) { c.N = n })
			rng := rand.New(rand.NewPCG(1, 1))
			x, v := randomIn(rng, n, 1), randomIn(rng, n, 1)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := tw.VJP(ctx, x, v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkQueryBatch256(b *testing.B) {
	for _, n := range []int{10, 20} {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			tw := newTwin(b, func(c *Config) { c.N = n })
			rng := rand.New(rand.NewPCG(1, 1))
			xs := make([][]float64, 256)
			for i := range xs {
				xs[i] = randomIn(rng, n, 1)
			}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := tw.QueryBatch(ctx, xs); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
