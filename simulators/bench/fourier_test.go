package bench

import (
	"context"
	"math"
	"testing"

	"github.com/insitu-lab/insitu/instruments/rig"
	"github.com/insitu-lab/insitu/instruments/slm"
	"github.com/insitu-lab/insitu/simulators/optics"
)

// blaze is the phase of a blazed grating of frequency k (cycles per SLM
// pixel) on an n×n pattern, wrapped into [0, 2π).
func blaze(n int, kx, ky float64) []float64 {
	x := make([]float64, n*n)
	for r := range n {
		for c := range n {
			p := 2 * math.Pi * (kx*float64(c) + ky*float64(r))
			x[r*n+c] = p - 2*math.Pi*math.Floor(p/(2*math.Pi))
		}
	}
	return x
}

// centroid of img (w wide) in a window of radius r around (cx, cy),
// recentred until it moves no more.
func centroid(img []float64, w int, cx, cy, r float64) (float64, float64) {
	h := len(img) / w
	for range 20 {
		var s, sx, sy float64
		for y := range h {
			for x := range w {
				dx, dy := float64(x)-cx, float64(y)-cy
				if dx*dx+dy*dy <= r*r {
					v := img[y*w+x]
					s, sx, sy = s+v, sx+v*float64(x), sy+v*float64(y)
				}
			}
		}
		cx, cy = sx/s, sy/s
	}
	return cx, cy
}

func fourierScene(t testing.TB, c FourierConfig, n, w, h int) (*Fourier, rig.SLM) {
	t.Helper()
	s, err := slm.New(slm.NewMemory(n, n), slm.Config{N: n})
	if err != nil {
		t.Fatal(err)
	}
	f, err := NewFourier(c, rig.SLM{SLM: s}, w, h)
	if err != nil {
		t.Fatal(err)
	}
	return f, rig.SLM{SLM: s}
}

// A blazed grating's light lands where the scene's geometry says: at
// A·k + b, rotated, scaled and mirrored as configured, and the flat
// pattern's at the optical axis; the power adds up to the configured one.
func TestFourierGeometry(t *testing.T) {
	c := DefaultFourier()
	c.Rotation, c.Flip, c.Offset = 17, true, []float64{50.3, 41.8}
	const n, w, h = 64, 112, 90
	f, s := fourierScene(t, c, n, w, h)
	A, b := c.Map(w, h)
	if sc := c.Scale(); math.Abs(sc-0.01*633e-9/(8e-6*5.5e-6)) > 1e-9 {
		t.Fatalf("scale %v", sc)
	}
	img := make([]float64, w*h)
	for _, k := range [][2]float64{{0, 0}, {0.25, 0}, {0, -0.2}, {-0.17, 0.19}} {
		if err := s.Show(context.Background(), blaze(n, k[0], k[1])); err != nil {
			t.Fatal(err)
		}
		if err := f.Frame(context.Background(), img); err != nil {
			t.Fatal(err)
		}
		u, v := A[0][0]*k[0]+A[0][1]*k[1]+b[0], A[1][0]*k[0]+A[1][1]*k[1]+b[1]
		cx, cy := centroid(img, w, u, v, 10)
		if math.Hypot(cx-u, cy-v) > 0.05 {
			t.Errorf("k %v: spot at (%.3f, %.3f), want (%.3f, %.3f)", k, cx, cy, u, v)
		}
		if k == [2]float64{} {
			var sum float64
			for _, p := range img {
				sum += p
			}
			// The flat pattern's spot lies inside the sensor, where the
			// pixel envelope is ≈ 1.
			if math.Abs(sum-c.Power) > 0.01*c.Power {
				t.Errorf("total %v ADU, want %v", sum, c.Power)
			}
		}
	}
}

// The aberration is the scene's; a correction on the SLM equal to its
// opposite undoes it: the spot's peak is back to the unaberrated one's.
func TestFourierAberrationAndCorrection(t *testing.T) {
	const n, w, h = 32, 64, 64
	c := DefaultFourier()
	plain, ps := fourierScene(t, c, n, w, h)
	c.Aberration = []optics.Zernike{{Noll: 5, Coefficient: 1.5}, {Noll: 8, Coefficient: -1}}
	ab, as := fourierScene(t, c, n, w, h)
	peak := func(f *Fourier, s rig.SLM) float64 {
		x := blaze(n, 0.1, 0)
		if err := s.Show(context.Background(), x); err != nil {
			t.Fatal(err)
		}
		img := make([]float64, w*h)
		if err := f.Frame(context.Background(), img); err != nil {
			t.Fatal(err)
		}
		m := 0.0
		for _, v := range img {
			m = max(m, v)
		}
		return m
	}
	p0, p1 := peak(plain, ps), peak(ab, as)
	if p1 > 0.7*p0 {
		t.Fatalf("the aberration leaves the peak at %.2f of the flat one", p1/p0)
	}
	corr := ab.Aberration()
	for i := range corr {
		corr[i] = -corr[i]
	}
	cs, err := slm.New(slm.NewMemory(n, n), slm.Config{N: n, Correction: corr})
	if err != nil {
		t.Fatal(err)
	}
	fixed, err := NewFourier(c, rig.SLM{SLM: cs}, w, h)
	if err != nil {
		t.Fatal(err)
	}
	if p2 := peak(fixed, rig.SLM{SLM: cs}); p2 < 0.97*p0 {
		t.Errorf("corrected peak %.3f of the flat one (aberrated %.3f)", p2/p0, p1/p0)
	}
}
