package bench

import (
	"context"
	"testing"
)

// BenchmarkFourierFrame renders the holography twin's frame: a 64×64
// pattern's far field on a 128×96 camera at 287.7 px per cycle per pixel.
func BenchmarkFourierFrame(b *testing.B) {
	c := DefaultFourier()
	c.FocalLength = 0.02
	f, s := fourierScene(b, c, 64, 128, 96)
	if err := s.Show(context.Background(), blaze(64, 0.05, 0)); err != nil {
		b.Fatal(err)
	}
	img := make([]float64, 128*96)
	for b.Loop() {
		if err := f.Frame(context.Background(), img); err != nil {
			b.Fatal(err)
		}
	}
}
