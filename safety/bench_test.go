package safety

import (
	"context"
	"testing"
	"time"

	"github.com/insitu-lab/insitu"
)

// trivial is the cheapest possible device, so the benchmarks measure the
// guard's own overhead.
type trivial struct{ spec insitu.Spec }

func (b trivial) Spec() insitu.Spec { return b.spec }

// Query is not inlined, as a real device's is not, so its fresh output
// slice is allocated as it would be.
//
//go:noinline
func (trivial) Query(_ context.Context, x []float64) ([]float64, error) {
	return []float64{x[0], 0}, nil
}

func benchBox() trivial { return trivial{newRecorder().spec} }

func BenchmarkInnerQuery(b *testing.B) {
	box := benchBox()
	x := []float64{0.1, 0.2, 0.3, 0.4}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := box.Query(ctx, x); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGuardQuery: every check except the rate limit (bounds, slew,
// budget, output range, saturation, interlock), without and with the
// watchdog goroutine.
func BenchmarkGuardQuery(b *testing.B) {
	for _, bc := range []struct {
		name    string
		timeout time.Duration
	}{{"checks", 0}, {"watchdog", time.Second}} {
		b.Run(bc.name, func(b *testing.B) {
			g := mustNew(b, benchBox(), Config{
				Upper:        map[string]float64{"x0": 1},
				MaxStep:      All(0.5),
				Budget:       new(1 << 62),
				Timeout:      bc.timeout,
				OutputRanges: map[string]Range{"y": {Lo: -10, Hi: 10}},
				Saturation:   All(100),
				Interlocks:   []Interlock{{Output: "I", Above: new(1.0)}},
			})
			x := []float64{0.1, 0.2, 0.3, 0.4}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := g.Query(ctx, x); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
