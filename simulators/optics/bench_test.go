package optics

import (
	"context"
	"fmt"
	"math/cmplx"
	"math/rand/v2"
	"testing"
	"time"

	"gonum.org/v1/gonum/dsp/fourier"
)

// Default twin: 60×60 phases, 128² FFTs. A query is one forward and one
// inverse transform, both pruned to the rows and columns that matter; a
// VJP two of each. Query and VJP report "x-fft2d", their time over that of
// a full 128² 2-D FFT timed right after them in the same run.

// reportFFTRatio times full 128² forward transforms and reports the time
// per op of the benchmark so far as a multiple of one.
func reportFFTRatio(b *testing.B) {
	perOp := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	p, _ := NewFFT2(128)
	in := randomComplex(rand.New(rand.NewPCG(1, 1)), 128*128)
	d := make([]complex128, len(in))
	const reps = 50
	var total time.Duration
	for range reps {
		copy(d, in) // the same data each time, not the last transform's output
		start := time.Now()
		p.Forward(d)
		total += time.Since(start)
	}
	mustBeFinite(b, d)
	fft := float64(total.Nanoseconds()) / reps
	b.ReportMetric(perOp/fft, "x-fft2d")
}

// mustBeFinite fails the benchmark if a transform it timed produced Inf or
// NaN: an unnormalized transform applied to its own output grows by up to
// the transform size each time and would end up timing non-finite data.
func mustBeFinite(b *testing.B, d []complex128) {
	b.Helper()
	for i, v := range d {
		if cmplx.IsInf(v) || cmplx.IsNaN(v) {
			b.Fatalf("element %d of the transformed data is %v", i, v)
		}
	}
}

func BenchmarkQuery(b *testing.B) {
	for _, out := range []string{OutputField, OutputCamera} {
		b.Run(out, func(b *testing.B) {
			tw := newTwin(b, func(c *Config) { c.Output = out })
			x := randomPhases(rand.New(rand.NewPCG(1, 1)), 3600)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := tw.Query(ctx, x); err != nil {
					b.Fatal(err)
				}
			}
			reportFFTRatio(b)
		})
	}
}

func BenchmarkVJP(b *testing.B) {
	tw := newTwin(b, nil)
	rng := rand.New(rand.NewPCG(1, 1))
	x := randomPhases(rng, 3600)
	v := make([]float64, 7200)
	for i := range v {
		v[i] = rng.NormFloat64()
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tw.VJP(ctx, x, v); err != nil {
			b.Fatal(err)
		}
	}
	reportFFTRatio(b)
}

func BenchmarkQueryBatch(b *testing.B) {
	tw := newTwin(b, nil)
	rng := rand.New(rand.NewPCG(1, 1))
	xs := make([][]float64, 64)
	for i := range xs {
		xs[i] = randomPhases(rng, 3600)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tw.QueryBatch(ctx, xs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*len(xs)), "µs/query")
}

// BenchmarkFFT2D128 and BenchmarkGonumFFT2D128 time the same full 128²
// forward transform (rows, then columns); the ratio of their ns/op is the
// speed-up over gonum's dsp/fourier.
func BenchmarkFFT2D128(b *testing.B) {
	p, err := NewFFT2(128)
	if err != nil {
		b.Fatal(err)
	}
	in := randomComplex(rand.New(rand.NewPCG(1, 1)), 128*128)
	d := make([]complex128, len(in))
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		copy(d, in)
		b.StartTimer()
		p.Forward(d)
	}
	mustBeFinite(b, d)
}

func BenchmarkGonumFFT2D128(b *testing.B) {
	const n = 128
	f := fourier.NewCmplxFFT(n)
	in := randomComplex(rand.New(rand.NewPCG(1, 1)), n*n)
	d := make([]complex128, len(in))
	col := make([]complex128, n)
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		copy(d, in)
		b.StartTimer()
		for r := range n {
			f.Coefficients(d[r*n:(r+1)*n], d[r*n:(r+1)*n])
		}
		for c := range n {
			for r := range n {
				col[r] = d[r*n+c]
			}
			f.Coefficients(col, col)
			for r := range n {
				d[r*n+c] = col[r]
			}
		}
	}
	mustBeFinite(b, d)
}

// BenchmarkFFT1D alternates forward and inverse transforms, so the data
// stays that of the start (a transform of it) instead of growing with each
// unnormalized forward transform; ns/op is the mean of the two. Resetting
// the input outside the timer would cost more than a transform this short.
func BenchmarkFFT1D(b *testing.B) {
	for _, n := range []int{128, 1024} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			f, _ := NewFFT(n)
			x := randomComplex(rand.New(rand.NewPCG(1, 1)), n)
			forward := true
			for b.Loop() {
				if forward {
					f.Forward(x)
				} else {
					f.Inverse(x)
				}
				forward = !forward
			}
			mustBeFinite(b, x)
		})
	}
}
