package surrogate

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

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

// benchPrecisions are the precisions every net is benchmarked in; the
// float32 variants are named NET-f32.
var benchPrecisions = []struct {
	suffix string
	prec   Precision
}{{"", Float64}, {"-f32", Float32}}

// Building the 9M-parameter OWMS model takes a while; share one per
// architecture and precision between benchmarks.
var benchModels sync.Map

func benchModel(b *testing.B, i int) *Model { return benchModelPrec(b, i, Float64) }

func benchModelPrec(b *testing.B, i int, p Precision) *Model {
	key := fmt.Sprint(i, p)
	if m, ok := benchModels.Load(key); ok {
		return m.(*Model)
	}
	n := benchNets[i]
	arch := n.arch
	arch.Precision = p
	m, err := NewModel(insitu.Box(n.in, -1, 1), n.out, arch, 1)
	if err != nil {
		b.Fatal(err)
	}
	benchModels.Store(key, m)
	return m
}

// layerShapes lists (in, out) of every layer of m.
func layerShapes(m *MLP) [][2]int {
	var s [][2]int
	prev := m.in
	for _, w := range append(slices.Clone(m.arch.Hidden), m.out) {
		s = append(s, [2]int{prev, w})
		prev = w
	}
	return s
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
	for i, l := range layerShapes(m) {
		w := 2 * float64(rows) * float64(l[0]*l[1])
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
// forward, backward, Adam, in float64 and (NET-f32) float32.
func BenchmarkTrainStep(b *testing.B) {
	for i, n := range benchNets {
		for _, p := range benchPrecisions {
			b.Run(n.name+p.suffix, func(b *testing.B) { benchTrainStep(b, i, p.prec) })
		}
	}
}

func benchTrainStep(b *testing.B, i int, p Precision) {
	const batch = 256
	m := benchModelPrec(b, i, p)
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

// BenchmarkVJP is the single-point input VJP of the raw network, in float64
// and (NET-f32) float32.
func BenchmarkVJP(b *testing.B) {
	for i, n := range benchNets {
		for _, p := range benchPrecisions {
			b.Run(n.name+p.suffix, func(b *testing.B) { benchVJP(b, i, p.prec) })
		}
	}
}

func benchVJP(b *testing.B, i int, p Precision) {
	n := benchNets[i]
	m := benchModelPrec(b, i, p).MLP()
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
	for _, l := range layerShapes(m) {
		flops += 4 * float64(l[0]*l[1])
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		m.VJP(x, v)
	}
	reportGFLOPS(b, flops, time.Since(start))
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
