package adam

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func coef[T Float](t int) Coef[T] {
	b1, b2, lr := 0.9, 0.999, 1e-3
	return Coef[T]{
		B1: T(b1), C1: T(1 - b1), B2: T(b2), C2: T(1 - b2),
		Step: T(lr / (1 - math.Pow(b1, float64(t)))),
		RBC2: T(1 / math.Sqrt(1-math.Pow(b2, float64(t)))),
		Eps:  1e-8,
	}
}

func state[T Float](rng *rand.Rand, n int) (m, v, p, g []T) {
	m, v, p, g = make([]T, n), make([]T, n), make([]T, n), make([]T, n)
	for i := range n {
		m[i] = T(0.1 * rng.NormFloat64())
		v[i] = T(0.01 * rng.ExpFloat64())
		p[i] = T(rng.NormFloat64())
		g[i] = T(rng.NormFloat64() * math.Exp(4*rng.NormFloat64()))
	}
	v[0], g[0] = 0, 0 // √0 and a zero gradient
	return m, v, p, g
}

// testKernels checks every kernel of T this CPU runs against updateGo, bit
// for bit, over several steps and lengths that end mid-vector.
func testKernels[T Float](t *testing.T, ks []kernel[T]) {
	for _, k := range ks {
		for _, n := range []int{1, 7, 8, 15, 16, 17, 33, 1000, 1029} {
			rng := rand.New(rand.NewPCG(uint64(n), 1))
			m, v, p, g := state[T](rng, n)
			m2, v2, p2, g2 := slices.Clone(m), slices.Clone(v), slices.Clone(p), slices.Clone(g)
			for step := 1; step <= 3; step++ {
				c := coef[T](step)
				done := run(k, m, v, p, g, &c)
				updateGo(m[done:], v[done:], p[done:], g[done:], c)
				updateGo(m2, v2, p2, g2, c)
				if k.name != "go" && done != n/k.lanes*k.lanes {
					t.Fatalf("%s n=%d: kernel did %d elements", k.name, n, done)
				}
			}
			for i := range n {
				if !same(m[i], m2[i]) || !same(v[i], v2[i]) || !same(p[i], p2[i]) {
					t.Fatalf("%s n=%d element %d: m %v v %v p %v, Go gives %v %v %v", k.name, n, i, m[i], v[i], p[i], m2[i], v2[i], p2[i])
				}
			}
		}
	}
}

func same[T Float](a, b T) bool {
	if x, ok := any(a).(float32); ok {
		return math.Float32bits(x) == math.Float32bits(any(b).(float32))
	}
	return math.Float64bits(any(a).(float64)) == math.Float64bits(any(b).(float64))
}

func TestKernelsMatchGo(t *testing.T) {
	t.Run("f64", func(t *testing.T) { testKernels(t, kernels64) })
	t.Run("f32", func(t *testing.T) { testKernels(t, kernels32) })
	t.Logf("kernels: float64 %s, float32 %s", Kernel[float64](), Kernel[float32]())
}

// TestUpdateAgainstFormula checks Update against the textbook formula in
// float64 (an independent computation) for both precisions.
func TestUpdateAgainstFormula(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const n = 517
	m, v, p, g := state[float64](rng, n)
	m32, v32, p32, g32 := make([]float32, n), make([]float32, n), make([]float32, n), make([]float32, n)
	for i := range n {
		m32[i], v32[i], p32[i], g32[i] = float32(m[i]), float32(v[i]), float32(p[i]), float32(g[i])
		m[i], v[i], p[i], g[i] = float64(m32[i]), float64(v32[i]), float64(p32[i]), float64(g32[i])
	}
	want := slices.Clone(p)
	for i := range n {
		mi := 0.9*m[i] + 0.1*g[i]
		vi := 0.999*v[i] + 0.001*g[i]*g[i]
		mhat, vhat := mi/(1-0.9), vi/(1-0.999)
		want[i] -= 1e-3 * mhat / (math.Sqrt(vhat) + 1e-8/math.Sqrt(1-0.999)*math.Sqrt(1-0.999))
	}
	Update(m, v, p, g, coef[float64](1))
	Update(m32, v32, p32, g32, coef[float32](1))
	for i := range n {
		if d := math.Abs(p[i] - want[i]); d > 1e-15*(1+math.Abs(want[i])) {
			t.Fatalf("float64 element %d: %v, formula %v", i, p[i], want[i])
		}
		if d := math.Abs(float64(p32[i]) - want[i]); d > 1e-6*(1+math.Abs(want[i])) {
			t.Fatalf("float32 element %d: %v, formula %v", i, p32[i], want[i])
		}
	}
}

func TestUpdatePanicsOnLengths(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("no panic")
		}
	}()
	Update(make([]float64, 3), make([]float64, 3), make([]float64, 2), make([]float64, 3), coef[float64](1))
}

// BenchmarkUpdate is one step over the OWMS surrogate's 7.1 M parameters on
// one goroutine, per kernel.
func BenchmarkUpdate(b *testing.B) {
	const n = 7_100_000
	rng := rand.New(rand.NewPCG(5, 6))
	benchKernels(b, "f64", kernels64, rng, n)
	benchKernels(b, "f32", kernels32, rng, n)
}

func benchKernels[T Float](b *testing.B, name string, ks []kernel[T], rng *rand.Rand, n int) {
	m, v, p, g := state[T](rng, n)
	c := coef[T](10)
	for _, k := range ks {
		b.Run(name+"/"+k.name, func(b *testing.B) {
			b.SetBytes(int64(n) * 7 * int64(sizeof[T]())) // m, v, p, g read; m, v, p written
			for b.Loop() {
				done := run(k, m, v, p, g, &c)
				updateGo(m[done:], v[done:], p[done:], g[done:], c)
			}
		})
	}
}

func sizeof[T Float]() int {
	if _, ok := any(T(0)).(float32); ok {
		return 4
	}
	return 8
}
