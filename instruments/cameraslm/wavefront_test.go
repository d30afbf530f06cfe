package cameraslm_test

import (
	"context"
	"math"
	"math/cmplx"
	"path/filepath"
	"testing"

	"github.com/insitu-lab/insitu/instruments/cameraslm"
	"github.com/insitu-lab/insitu/instruments/slm"
	"github.com/insitu-lab/insitu/simulators/optics"
)

// aberrated is the Fourier twin with an aberration of defocus,
// astigmatism and coma (radians over the disc inscribed in the pattern).
const aberrated = "{read_noise: 1, background: 5, waist: 20, aberration: [{noll: 4, coefficient: 0.9}, {noll: 6, coefficient: 1.1}, {noll: 7, coefficient: -0.7}]}"

// correlation is the Pearson correlation of the recovered correction with
// the truth −W at the superpixel centres, both without their least-squares
// planes (piston and tilt, which a wavefront calibration leaves to the
// Fourier map). The recovered phase is known modulo 2π and up to a plane:
// the plane of its difference from the truth (the mean phase step between
// neighbours, as phasors) is removed first, and it is then taken on the
// branch nearest the truth.
func correlation(res *cameraslm.WavefrontResult, truth []float64, side int) float64 {
	n, sp := res.Side, res.Superpixel
	d := make([]float64, n*n)
	t := make([]float64, n*n)
	for r := range n {
		for c := range n {
			i := r*n + c
			x, y := min(c*sp+sp/2, side-1), min(r*sp+sp/2, side-1)
			t[i] = -truth[y*side+x]
			d[i] = res.Phase[i] - t[i]
		}
	}
	var zx, zy, z0 complex128
	for r := range n {
		for c := range n {
			i := r*n + c
			if c+1 < n && res.Lit[i] && res.Lit[i+1] {
				zx += cmplx.Rect(1, d[i+1]-d[i])
			}
			if r+1 < n && res.Lit[i] && res.Lit[i+n] {
				zy += cmplx.Rect(1, d[i+n]-d[i])
			}
		}
	}
	tx, ty := cmplx.Phase(zx), cmplx.Phase(zy)
	for i := range d {
		d[i] -= tx*float64(i%n) + ty*float64(i/n)
		if res.Lit[i] {
			z0 += cmplx.Rect(1, d[i])
		}
	}
	var cs, ts, xs, ys []float64
	for i := range d {
		if !res.Lit[i] {
			continue
		}
		e := math.Remainder(d[i]-cmplx.Phase(z0), 2*math.Pi)
		cs, ts = append(cs, t[i]+e), append(ts, t[i])
		xs, ys = append(xs, float64(i%n)), append(ys, float64(i/n))
	}
	detrend(cs, xs, ys)
	detrend(ts, xs, ys)
	var sc, st, sct float64
	for i := range cs {
		sc += cs[i] * cs[i]
		st += ts[i] * ts[i]
		sct += cs[i] * ts[i]
	}
	return sct / math.Sqrt(sc*st)
}

// detrend removes the least-squares plane a + b·x + c·y from v.
func detrend(v, x, y []float64) {
	var m [3][4]float64
	for i := range v {
		row := [3]float64{1, x[i], y[i]}
		for a := range 3 {
			for b := range 3 {
				m[a][b] += row[a] * row[b]
			}
			m[a][3] += row[a] * v[i]
		}
	}
	for p := range 3 { // Gauss–Jordan, the normal matrix is positive definite
		for r := range 3 {
			if r == p {
				continue
			}
			f := m[r][p] / m[p][p]
			for c := range 4 {
				m[r][c] -= f * m[p][c]
			}
		}
	}
	for i := range v {
		v[i] -= m[0][3]/m[0][0] + m[1][3]/m[1][1]*x[i] + m[2][3]/m[2][2]*y[i]
	}
}

// The wavefront calibration recovers the Fourier twin's aberration (1.6 rad
// RMS): its correction correlates with the truth, and applied to the SLM
// through the correction file it brings a focused spot's peak back near
// the unaberrated one's.
func TestWavefrontOnTheTwin(t *testing.T) {
	const n, w, h = 32, 64, 48
	grid := cameraslm.Grid{N: n}
	src := fourierRig(n, 1, w, h, aberrated)
	b := newRigBench(t, src)
	fc := sceneConfig(t, aberrated)
	A, bb := fc.Map(w, h)
	res, err := cameraslm.CalibrateWavefront(context.Background(), b, cameraslm.WavefrontOptions{
		Grid: grid, Map: cameraslm.Map{A: A, B: bb}, Superpixel: 4, Point: [2]float64{0.125, 0},
	})
	if err != nil {
		t.Fatal(err)
	}
	truth := optics.Aberration(fc.Aberration, n, n/2)
	rho := correlation(res, truth, n)
	lit := 0
	for _, l := range res.Lit {
		if l {
			lit++
		}
	}
	t.Logf("correlation with the truth %.3f over %d lit superpixels of %d; tilt removed %v; %d shots", rho, lit, len(res.Lit), res.Tilt, b.shots)
	if rho < 0.9 {
		t.Errorf("correlation %.3f with the twin's aberration, want ≥ 0.9", rho)
	}
	// The correction file, read back as the slm part reads it, makes the
	// focus sharp again.
	file := filepath.Join(t.TempDir(), "correction.png")
	if err := cameraslm.WriteCorrection(file, res.Correction, n); err != nil {
		t.Fatal(err)
	}
	corr, cw, ch, err := slm.LoadCorrection(file, 0)
	if err != nil || cw != n || ch != n {
		t.Fatalf("correction read back: %v, %d×%d", err, cw, ch)
	}
	for i, c := range corr {
		if d := math.Abs(math.Remainder(c-res.Correction[i], 2*math.Pi)); d > math.Pi/256+1e-9 {
			t.Fatalf("correction pixel %d read back %v, written %v", i, c, res.Correction[i])
		}
	}
	peak := func(src string) float64 {
		pb := newRigBench(t, src)
		f, err := pb.Shoot(context.Background(), "peak", []cameraslm.Shot{{Phase: grid.Blaze(0.1, 0.05, 0), Settle: cameraslm.RigSettle}})
		if err != nil {
			t.Fatal(err)
		}
		m := 0.0
		for _, v := range f[0].Pix {
			m = max(m, v)
		}
		return m
	}
	flat := peak(fourierRig(n, 1, w, h, "{read_noise: 1, background: 5, waist: 20}"))
	before := peak(src)
	after := peak(fourierRig(n, 1, w, h, aberrated, "", "", "correction_file: "+file))
	t.Logf("peak: unaberrated %.0f, aberrated %.0f, corrected %.0f ADU", flat, before, after)
	// 4×4-pixel superpixels sample the aberration coarsely: the peak comes
	// back to 0.81 of the unaberrated one (2×2 ones, 2040 shots: 0.98).
	if after < 0.75*flat || before > 0.2*flat {
		t.Errorf("the correction brings the peak from %.2f to %.2f of the unaberrated", before/flat, after/flat)
	}
}
