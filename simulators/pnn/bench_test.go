package pnn

import (
	"math/rand/v2"
	"testing"
)

func benchTwins(b *testing.B) map[string]PNN {
	ct, err := NewCNON(DefaultCNONConfig())
	if err != nil {
		b.Fatal(err)
	}
	ot, err := NewOptical(DefaultOpticalConfig())
	if err != nil {
		b.Fatal(err)
	}
	return map[string]PNN{"cnon": ct, "optical": ot}
}

func BenchmarkQuery(b *testing.B) {
	for name, tw := range benchTwins(b) {
		b.Run(name, func(b *testing.B) {
			x := randomX(rand.New(rand.NewPCG(1, 1)), tw.Spec().In)
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
	for name, tw := range benchTwins(b) {
		b.Run(name, func(b *testing.B) {
			x := randomX(rand.New(rand.NewPCG(1, 1)), tw.Spec().In)
			v := make([]float64, tw.Classes())
			v[0], v[len(v)-1] = 1, -1
			b.ReportAllocs()
			for b.Loop() {
				if _, err := tw.VJP(ctx, x, v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
