package cameraslm_test

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/insitu-lab/insitu/instruments/cameraslm"
	"github.com/insitu-lab/insitu/simulators/bench"
)

// mapError is the RMS distance between m and the truth A·k + b over a
// 9×9 grid of k spanning ±kmax: how far apart the two maps put spots
// anywhere in the calibrated range, in camera pixels.
func mapError(m cameraslm.Map, A [2][2]float64, b [2]float64, kmax float64) float64 {
	var ss float64
	for i := range 9 {
		for j := range 9 {
			kx, ky := kmax*float64(i-4)/4, kmax*float64(j-4)/4
			x, y := m.Apply(kx, ky)
			tx, ty := A[0][0]*kx+A[0][1]*ky+b[0], A[1][0]*kx+A[1][1]*ky+b[1]
			ss += (x-tx)*(x-tx) + (y-ty)*(y-ty)
		}
	}
	return math.Sqrt(ss / 81)
}

func TestFitMapExact(t *testing.T) {
	want := cameraslm.Map{A: [2][2]float64{{120, -30}, {25, 140}}, B: [2]float64{40.5, 31.25}}
	var ks, xs [][2]float64
	for _, k := range [][2]float64{{0, 0}, {0.1, 0}, {0, 0.1}, {-0.05, 0.07}, {0.03, -0.09}} {
		x, y := want.Apply(k[0], k[1])
		ks, xs = append(ks, k), append(xs, [2]float64{x, y})
	}
	m, res, err := cameraslm.FitMap(ks, xs)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		for j := range 2 {
			if math.Abs(m.A[i][j]-want.A[i][j]) > 1e-9 {
				t.Errorf("A = %v, want %v", m.A, want.A)
			}
		}
		if math.Abs(m.B[i]-want.B[i]) > 1e-9 {
			t.Errorf("B = %v, want %v", m.B, want.B)
		}
	}
	for _, r := range res {
		if math.Hypot(r[0], r[1]) > 1e-9 {
			t.Errorf("residual %v on exact points", r)
		}
	}
	if kx, ky := m.Invert(m.Apply(0.02, -0.03)); math.Abs(kx-0.02) > 1e-12 || math.Abs(ky+0.03) > 1e-12 {
		t.Errorf("Invert(Apply) = (%v, %v)", kx, ky)
	}
	if _, _, err := cameraslm.FitMap([][2]float64{{0, 0}, {0.1, 0.1}, {0.2, 0.2}}, xs[:3]); err == nil {
		t.Error("collinear vectors fitted")
	}
	// A rotation by 30° of scale 100, mirrored: the geometry says so.
	c, s := math.Cos(math.Pi/6), math.Sin(math.Pi/6)
	g := cameraslm.Map{A: [2][2]float64{{-100 * c, -100 * s}, {-100 * s, 100 * c}}}.Geometry()
	if !g.Mirrored || math.Abs(g.Scale-100) > 1e-9 || math.Abs(g.Rotation-30) > 1e-9 || math.Abs(g.Anisotropy-1) > 1e-12 || math.Abs(g.Shear) > 1e-9 {
		t.Errorf("geometry %+v", g)
	}
}

// The Fourier map recovered on the Fourier-plane twin, with noise, a
// background, a rotated and mirrored camera, against the twin's geometry.
func TestFourierOnTheTwin(t *testing.T) {
	for _, c := range []struct {
		name    string
		n, mp   int
		scene   string
		periods []float64
	}{
		{"rotated, noisy", 64, 1, "{rotation: 7, offset: [61.3, 50.2], background: 40, read_noise: 3, shot_noise: true, power: 2e6}", []float64{5, 10}},
		{"mirrored, macro-pixels", 16, 4, "{rotation: -12.5, flip: true, focal_length: 0.012, background: 10, read_noise: 1}", []float64{2.5, 5}},
	} {
		t.Run(c.name, func(t *testing.T) {
			const w, h = 128, 96
			b := newRigBench(t, fourierRig(c.n, c.mp, w, h, c.scene))
			grid := cameraslm.Grid{N: c.n, MacroPixel: c.mp}
			res, err := cameraslm.CalibrateFourier(context.Background(), b, cameraslm.FourierOptions{Grid: grid, Periods: c.periods})
			if err != nil {
				t.Fatal(err)
			}
			fc := sceneConfig(t, c.scene)
			A, bb := fc.Map(w, h)
			e := mapError(res.Map, A, bb, grid.MaxK(c.periods[0]))
			t.Logf("map error %.3f px RMS; fit residual RMS %.3f px over %d points; geometry %+v (truth scale %.2f, rotation %.2f)",
				e, res.RMS, len(res.Points), res.Geometry, fc.Scale(), fc.Rotation)
			if e > 0.3 {
				t.Errorf("recovered map %.3f px RMS from the twin's geometry", e)
			}
			if res.Geometry.Mirrored != fc.Flip || math.Abs(res.Geometry.Rotation-fc.Rotation) > 0.5 {
				t.Errorf("geometry %+v", res.Geometry)
			}
			if b.shots != 1+2*8 {
				t.Errorf("%d shots", b.shots)
			}
		})
	}
}

func sceneConfig(t *testing.T, scene string) bench.FourierConfig {
	t.Helper()
	p := paramsOf(t, scene)
	c, err := bench.DecodeFourier(p)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// A saturated spot and a spot off the camera are clear errors naming the
// grating, not a bad fit.
func TestFourierSpotErrors(t *testing.T) {
	const n, w, h = 64, 128, 96
	grid := cameraslm.Grid{N: n}
	sat := newRigBench(t, fourierRig(n, 1, w, h, "{power: 1e7}", "", ", saturation: 4095"))
	_, err := cameraslm.CalibrateFourier(context.Background(), sat, cameraslm.FourierOptions{Grid: grid, Periods: []float64{8}, Spot: cameraslm.SpotOptions{Saturation: 4095}})
	if !errors.Is(err, cameraslm.ErrSaturated) || !strings.Contains(err.Error(), "grating k = (0.125, 0)") || !strings.Contains(err.Error(), "lower the exposure") {
		t.Errorf("saturated: %v", err)
	}
	// Gratings of 2 pixels per period put the spot 72 px off the axis: off
	// the sensor for the vertical ones.
	off := newRigBench(t, fourierRig(n, 1, w, h, "{read_noise: 2}"))
	_, err = cameraslm.CalibrateFourier(context.Background(), off, cameraslm.FourierOptions{Grid: grid, Periods: []float64{2}})
	if err == nil || !(errors.Is(err, cameraslm.ErrNoSpot) || errors.Is(err, cameraslm.ErrEdge)) || !strings.Contains(err.Error(), "ky") && !strings.Contains(err.Error(), "grating k = (") {
		t.Errorf("off the sensor: %v", err)
	}
	t.Logf("off the sensor:\n%v", err)
}

// The bench SLM + camera twin (configs/bench-slm-camera-twin.yaml, the
// camera in image mode): the camera looks at the OWMS twin's output plane
// 2 cm behind the SLM, where a grating of k cycles per 10 µm pixel moves
// the beam by z·λ·k/p = 140·k pixels of 10 µm: the map is 140·I, and the
// optical axis is at the centre of the 60×60 grid, (29.5, 29.5).
func TestFourierOnTheOWMSBench(t *testing.T) {
	b := newRigBench(t, `
kind: rig
parts:
  - name: slm
    type: slm
    display: {type: memory, width: 60, height: 60}
    n: 10
    macro_pixel: 6
  - name: cam
    type: camera
    backend: {type: memory, source: owms, width: 60, height: 60}
    measure: image
`)
	grid := cameraslm.Grid{N: 10, MacroPixel: 6}
	res, err := cameraslm.CalibrateFourier(context.Background(), b, cameraslm.FourierOptions{Grid: grid})
	if err != nil {
		t.Fatal(err)
	}
	e := mapError(res.Map, [2][2]float64{{140, 0}, {0, 140}}, [2]float64{29.5, 29.5}, grid.MaxK(4))
	t.Logf("map error %.3f px RMS; residual RMS %.3f px; geometry %+v", e, res.RMS, res.Geometry)
	if e > 0.3 {
		t.Errorf("recovered map %.3f px RMS from z·λ/p² = 140 px per cycle per pixel", e)
	}
}
