package surrogate

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"

	"github.com/insitu-lab/insitu"
)

// The paper's three surrogate architectures (gradpie.md §3).
var benchNets = []struct {
	name    string
	in, out int
	arch    Arch
}{
	{"CNON", 10, 10, Arch{Hidden: []int{256, 256}}},
	{"OpAmp", 10, 1, Arch{Hidden: []int{100, 100, 100, 20}, LayerNorm: true}},
	{"OWMS", 3600, 1, Arch{Hidden: []int{1000, 1000, 1000, 1000, 500}, LayerNorm: true}},
}

// Building the 9M-parameter OWMS model takes a while; share one per
// architecture between benchmarks.
var benchModels sync.Map

func benchModel(b *testing.B, i int) *Model {
	if m, ok := benchModels.Load(i); ok {
		return m.(*Model)
	}
	n := benchNets[i]
	m, err := NewModel(insitu.Box(n.in, -1, 1), n.out, n.arch, 1)
	if err != nil {
		b.Fatal(err)
	}
	benchModels.Store(i, m)
	return m
}

func benchData(m *Model, n int) *Dataset {
	rng := rand.New(rand.NewPCG(1, 2))
	d := NewDataset(m)
	x, y := make([]float64, m.In()), make([]float64, m.Out())
	for range n {
		for j := range x {
			x[j] = 2*rng.Float64() - 1
		}
		for j := range y {
			y[j] = rng.NormFloat64()
		}
		d.Append(x, y)
	}
	return d
}

// gemmFlops counts the GEMM work of a training step on rows rows: forward
// x·W, dW = xᵀ·dZ, and dX = dZ·Wᵀ for every layer but the first.
func gemmFlops(m *MLP, rows int) float64 {
	var f float64
	for i, l := range m.layers {
		w := 2 * float64(rows) * float64(l.in*l.out)
		f += 2 * w
		if i > 0 {
			f += w
		}
	}
	return f
}

func reportGFLOPS(b *testing.B, flopsPerOp float64, elapsed time.Duration) {
	b.ReportMetric(flopsPerOp*float64(b.N)/elapsed.Seconds()/1e9, "GFLOP/s")
}

// BenchmarkTrainStep is one MSE training step at batch 256: gather,
// forward, backward, Adam.
func BenchmarkTrainStep(b *testing.B) {
	for i, n := range benchNets {
		b.Run(n.name, func(b *testing.B) {
			const batch = 256
			m := benchModel(b, i)
			d := benchData(m, batch)
			tr, err := NewTrainer(m, TrainConfig{Loss: LossMSE, Batch: batch}, 1)
			if err != nil {
				b.Fatal(err)
			}
			m.SetOutputScale(d.ys())
			anchors := make([]int, batch)
			for j := range anchors {
				anchors[j] = j
			}
			tr.step(d, anchors) // size the scratch
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for range b.N {
				tr.step(d, anchors)
			}
			reportGFLOPS(b, gemmFlops(m.mlp, batch), time.Since(start))
		})
	}
}

// BenchmarkGradPIEStep is one GradPIE-kNN step (CNON net, k = 5, 256
// anchors from 2000 points): one forward over the unique points.
func BenchmarkGradPIEStep(b *testing.B) {
	m := benchModel(b, 0)
	d := benchData(m, 2000)
	tr, err := NewTrainer(m, TrainConfig{Loss: LossGradPIE, K: 5}, 1)
	if err != nil {
		b.Fatal(err)
	}
	m.SetOutputScale(d.ys())
	d.useK(5)
	anchors := rand.New(rand.NewPCG(3, 4)).Perm(d.Len())[:256]
	tr.step(d, anchors)
	rows := len(tr.uniq)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		tr.step(d, anchors)
	}
	reportGFLOPS(b, gemmFlops(m.mlp, rows), time.Since(start))
	b.ReportMetric(float64(rows), "rows/step")
}

// BenchmarkIterationTraining is one online iteration's surrogate training
// on the CNON net (GradPIE, k = 5, batch 256) at two dataset sizes: five
// full epochs (Fit), against ten steps of the step budget with the row cap
// of 256, without and with shared neighbourhoods. The epochs grow with the
// data; the steps do not.
func BenchmarkIterationTraining(b *testing.B) {
	for _, n := range []int{500, 2000} {
		for _, sc := range []struct {
			name  string
			share bool
			steps int
		}{{"epochs5", false, 0}, {"steps10", false, 10}, {"steps10-share", true, 10}} {
			b.Run(fmt.Sprintf("n=%d/%s", n, sc.name), func(b *testing.B) {
				m := benchModel(b, 0)
				d := benchData(m, n)
				tr, err := NewTrainer(m, TrainConfig{Loss: LossGradPIE, K: 5, Share: sc.share, Rows: 256}, 1)
				if err != nil {
					b.Fatal(err)
				}
				m.SetOutputScale(d.ys())
				d.useK(5)
				focus := Focus{Recent: 256, Near: []int{0, 1, 2, 3, 4}}
				train := func() {
					if sc.steps == 0 {
						_, err = tr.Fit(b.Context(), d, 5, nil)
					} else {
						_, err = tr.Steps(b.Context(), d, sc.steps, focus)
					}
					if err != nil {
						b.Fatal(err)
					}
				}
				train()
				r0, a0 := tr.rows, tr.anchors
				b.ResetTimer()
				for range b.N {
					train()
				}
				b.StopTimer()
				b.ReportMetric(float64(tr.rows-r0)/float64(b.N), "rows/op")
				b.ReportMetric(float64(tr.anchors-a0)/float64(b.N), "anchors/op")
			})
		}
	}
}

// BenchmarkVJP is the single-point input VJP of the raw network.
func BenchmarkVJP(b *testing.B) {
	for i, n := range benchNets {
		b.Run(n.name, func(b *testing.B) {
			m := benchModel(b, i).MLP()
			rng := rand.New(rand.NewPCG(5, 6))
			x, v := make([]float64, n.in), make([]float64, n.out)
			for j := range x {
				x[j] = rng.Float64()
			}
			for j := range v {
				v[j] = rng.NormFloat64()
			}
			m.VJP(x, v)
			// Forward x·W plus backward dX for every layer: one GEMV each.
			var flops float64
			for _, l := range m.layers {
				flops += 4 * float64(l.in*l.out)
			}
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for range b.N {
				m.VJP(x, v)
			}
			reportGFLOPS(b, flops, time.Since(start))
		})
	}
}

// BenchmarkGemm is the reference the training step is compared with: a
// 256×256 · 256×1000 product, plainly (NN), with a transposed first operand
// (TN, gonum's slow path), and as the explicit transpose + NN the
// surrogate uses for dW.
func BenchmarkGemm(b *testing.B) {
	const m, k, n = 256, 256, 1000
	rng := rand.New(rand.NewPCG(7, 8))
	a, bm, c := make([]float64, m*k), make([]float64, k*n), make([]float64, m*n)
	for i := range a {
		a[i] = rng.NormFloat64()
	}
	for i := range bm {
		bm[i] = rng.NormFloat64()
	}
	at, scratch := make([]float64, k*m), make([]float64, m*k)
	transpose(at, a, m, k)
	flops := 2.0 * m * k * n
	for _, tc := range []struct {
		name string
		run  func()
	}{
		{"NN", func() {
			blas64.Gemm(blas.NoTrans, blas.NoTrans, 1,
				blas64.General{Rows: m, Cols: k, Data: a, Stride: k},
				blas64.General{Rows: k, Cols: n, Data: bm, Stride: n}, 0,
				blas64.General{Rows: m, Cols: n, Data: c, Stride: n})
		}},
		{"TN", func() {
			blas64.Gemm(blas.Trans, blas.NoTrans, 1,
				blas64.General{Rows: k, Cols: m, Data: at, Stride: m},
				blas64.General{Rows: k, Cols: n, Data: bm, Stride: n}, 0,
				blas64.General{Rows: m, Cols: n, Data: c, Stride: n})
		}},
		{"transpose+NN", func() {
			transpose(scratch, at, k, m)
			gemm(blas.NoTrans, blas.NoTrans, m, n, k, 1, scratch, bm, 0, c)
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			tc.run()
			b.ResetTimer()
			start := time.Now()
			for range b.N {
				tc.run()
			}
			reportGFLOPS(b, flops, time.Since(start))
		})
	}
}

// BenchmarkModelVJPCircle is the raw-unit VJP of the camera OWMS
// surrogate (100 phases → 256-256 → 400 pixels) under the box map and under
// circle, whose encode and pull-back add a sincos per phase and a first
// layer twice as wide: the circle/box ratio is its cost.
func BenchmarkModelVJPCircle(b *testing.B) {
	sp := insitu.Box(100, 0, 2*math.Pi)
	sp.Periodic = make([]bool, 100)
	for i := range sp.Periodic {
		sp.Periodic[i] = true
	}
	for _, s := range []InputScaling{InputBox, InputCircle} {
		b.Run(string(s), func(b *testing.B) {
			m, err := NewModel(sp, 400, Arch{Hidden: []int{256, 256}, LayerNorm: true, InputScaling: s}, 1)
			if err != nil {
				b.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(5, 6))
			x, v := make([]float64, 100), make([]float64, 400)
			for j := range x {
				x[j] = 2 * math.Pi * rng.Float64()
			}
			for j := range v {
				v[j] = rng.NormFloat64()
			}
			b.ReportAllocs()
			for b.Loop() {
				m.VJP(x, v)
			}
		})
	}
}
