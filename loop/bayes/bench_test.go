package bayes

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// benchGP is a GP of n points of a 10-input test function (the size of
// CNON N = 10 and the op-amp), fitted once.
func benchGP(b *testing.B, n int, fit bool) (*GP, *rand.Rand) {
	b.Helper()
	const d = 10
	rng := rand.New(rand.NewPCG(uint64(n), 1))
	g := NewGP(d, nil, true)
	for range n {
		u := make([]float64, d)
		var y float64
		for i := range u {
			u[i] = rng.Float64()
			y += math.Sin(3*u[i]) * float64(i+1)
		}
		if err := g.Add(u, y); err != nil {
			b.Fatal(err)
		}
	}
	if fit {
		if err := g.Fit(rng, 1); err != nil {
			b.Fatal(err)
		}
	}
	return g, rng
}

// BenchmarkBayOptIteration is one query's controller time of bayopt at n
// points in 10 inputs, in its parts: the EI maximization (every query),
// the rank-one extension by the new point (every query between fits) and
// a marginal-likelihood fit (the default refits when the points grew by
// 20 %: one query in ~n/5 pays it). Compare the n against each other in
// one run.
func BenchmarkBayOptIteration(b *testing.B) {
	for _, n := range []int{50, 100, 200, 400, 800} {
		b.Run(fmt.Sprintf("suggest/n=%d", n), func(b *testing.B) {
			g, rng := benchGP(b, n, true)
			best := math.Inf(1)
			for _, y := range g.y {
				best = min(best, y)
			}
			cfg := DefaultConfig()
			for b.Loop() {
				MaximizeEI(g, best, rng, cfg.Candidates, cfg.Starts, [][]float64{g.x[0]})
			}
		})
		b.Run(fmt.Sprintf("extend/n=%d", n), func(b *testing.B) {
			g, rng := benchGP(b, n, true)
			u := make([]float64, g.d)
			for b.Loop() {
				b.StopTimer()
				h := *g
				h.x, h.y = h.x[:n:n], h.y[:n:n]
				for i := range u {
					u[i] = rng.Float64()
				}
				b.StartTimer()
				if err := h.Add(u, 1); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("fit/n=%d", n), func(b *testing.B) {
			g, rng := benchGP(b, n, false)
			for b.Loop() {
				g.h = g.defaultHyper()
				if err := g.Fit(rng, 1); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
