package bayes

import (
	"fmt"
	"math"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"
)

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuLoop runs b's loop and reports the CPU time per operation beside the
// wall time: on a shared machine the wall time of one thread is the
// other jobs' as much as the code's, its CPU time is not.
func cpuLoop(b *testing.B, op func()) {
	c0 := cpuTime()
	n := 0
	for b.Loop() {
		op()
		n++
	}
	if n > 0 {
		b.ReportMetric(float64(cpuTime()-c0)/float64(n), "cpu-ns/op")
	}
}

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
			cpuLoop(b, func() { MaximizeEI(g, best, rng, cfg.Candidates, cfg.Starts, [][]float64{g.x[0]}) })
		})
		b.Run(fmt.Sprintf("extend/n=%d", n), func(b *testing.B) {
			g, rng := benchGP(b, n, true)
			u := make([]float64, g.d)
			cpuLoop(b, func() {
				h := *g
				h.x, h.y = h.x[:n:n], h.y[:n:n]
				for i := range u {
					u[i] = rng.Float64()
				}
				if err := h.Add(u, 1); err != nil {
					b.Fatal(err)
				}
			})
		})
		b.Run(fmt.Sprintf("fit/n=%d", n), func(b *testing.B) {
			g, rng := benchGP(b, n, false)
			cpuLoop(b, func() {
				g.h = g.defaultHyper()
				if err := g.Fit(rng, 1); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
}
