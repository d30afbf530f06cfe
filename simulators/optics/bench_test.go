package optics

import (
	"context"
	"fmt"
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
	d := randomComplex(rand.New(rand.NewPCG(1, 1)), 128*128)
	const reps = 50
	start := time.Now()
	for range reps {
		p.Forward(d)
	}
	fft := float64(time.Since(start).Nanoseconds()) / reps
	b.ReportMetric(perOp/fft, "x-fft2d")
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
	d := randomComplex(rand.New(rand.NewPCG(1, 1)), 128*128)
	b.ReportAllocs()
	for b.Loop() {
		p.Forward(d)
	}
}

func BenchmarkGonumFFT2D128(b *testing.B) {
	const n = 128
	f := fourier.NewCmplxFFT(n)
	d := randomComplex(rand.New(rand.NewPCG(1, 1)), n*n)
	col := make([]complex128, n)
	b.ReportAllocs()
	for b.Loop() {
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
}

func BenchmarkFFT1D(b *testing.B) {
	for _, n := range []int{128, 1024} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			f, _ := NewFFT(n)
			x := randomComplex(rand.New(rand.NewPCG(1, 1)), n)
			for b.Loop() {
				f.Forward(x)
			}
		})
	}
}
