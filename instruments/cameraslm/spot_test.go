package cameraslm_test

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/insitu-lab/insitu/instruments/cameraslm"
)

// gaussSpot is a w×h image at sensor (x0, y0): a Gaussian spot of the
// given peak and σ at sensor (cx, cy), on a background with Gaussian
// noise.
func gaussSpot(w, h, x0, y0 int, cx, cy, sigma, peak, bg, noise float64, seed uint64) cameraslm.Image {
	rng := rand.New(rand.NewPCG(seed, 1))
	img := cameraslm.Image{W: w, H: h, X0: x0, Y0: y0, Pix: make([]float64, w*h)}
	for y := range h {
		for x := range w {
			dx, dy := float64(x0+x)-cx, float64(y0+y)-cy
			img.Pix[y*w+x] = bg + peak*math.Exp(-(dx*dx+dy*dy)/(2*sigma*sigma)) + noise*rng.NormFloat64()
		}
	}
	return img
}

// The centroid of a sampled Gaussian is its centre, to a small fraction of
// a pixel under noise; no light, a spot the window cuts and a saturated
// spot are each their own error.
func TestFindSpot(t *testing.T) {
	for i, c := range [][2]float64{{30.3, 20.7}, {12.5, 33.25}, {41.9, 9.1}} {
		img := gaussSpot(64, 48, 100, 200, 100+c[0], 200+c[1], 1.8, 400, 50, 2, uint64(i))
		s, err := cameraslm.FindSpot(img, cameraslm.SpotOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if e := math.Hypot(s.X-100-c[0], s.Y-200-c[1]); e > 0.05 {
			t.Errorf("spot at (%g, %g): centroid (%.3f, %.3f), %.3f px off", 100+c[0], 200+c[1], s.X, s.Y, e)
		}
		if math.Abs(s.Background-50) > 1 || math.Abs(s.Sigma-1.8) > 0.2 {
			t.Errorf("background %.2f (50), σ %.2f (1.8)", s.Background, s.Sigma)
		}
	}

	// Noise alone, and a spot 5 noise deviations high, are no spot.
	for _, peak := range []float64{0, 5 * 2 / 3.0} {
		img := gaussSpot(64, 48, 0, 0, 30, 20, 1.8, peak, 50, 2, 7)
		if _, err := cameraslm.FindSpot(img, cameraslm.SpotOptions{}); !errors.Is(err, cameraslm.ErrNoSpot) {
			t.Errorf("peak %g over noise 2: %v, want ErrNoSpot", peak, err)
		}
	}
	// A spot one σ inside each edge: its window is cut.
	for _, c := range [][2]float64{{1.8, 20}, {62.2, 20}, {30, 1.8}, {30, 46.2}} {
		img := gaussSpot(64, 48, 0, 0, c[0], c[1], 1.8, 400, 50, 2, 8)
		if _, err := cameraslm.FindSpot(img, cameraslm.SpotOptions{}); !errors.Is(err, cameraslm.ErrEdge) {
			t.Errorf("spot at (%g, %g): %v, want ErrEdge", c[0], c[1], err)
		}
	}
	// Clipped at 300 ADU: saturated, and not when the level is above it.
	img := gaussSpot(64, 48, 0, 0, 30, 20, 1.8, 400, 50, 2, 9)
	for i, v := range img.Pix {
		img.Pix[i] = min(v, 300)
	}
	if _, err := cameraslm.FindSpot(img, cameraslm.SpotOptions{Saturation: 300}); !errors.Is(err, cameraslm.ErrSaturated) {
		t.Errorf("clipped spot: %v, want ErrSaturated", err)
	}
	if _, err := cameraslm.FindSpot(img, cameraslm.SpotOptions{Saturation: 4095}); err != nil {
		t.Errorf("clipped spot, saturation 4095: %v", err)
	}
}
