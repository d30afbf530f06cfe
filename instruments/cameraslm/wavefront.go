package cameraslm

import (
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"math/cmplx"
	"os"
)

// WavefrontOptions are the superpixels and the interference point of a
// wavefront calibration.
type WavefrontOptions struct {
	Grid Grid
	Map  Map // the Fourier calibration: where a spatial frequency lands
	// Point is the spatial frequency both superpixels of a measurement
	// send their light to, where they interfere (default a period of four
	// controls along x); Field the one the rest of the pattern sends its
	// light to, out of the way (default two superpixel spot widths, 2/s
	// for superpixels of s display pixels, from the point toward the
	// axis, where the light the rest diffracts has a zero).
	Point, Field [2]float64
	// Superpixel is the side of a superpixel in controls (default N/8, at
	// least 2); superpixels at the far edges may be cut short.
	Superpixel int
	// Reference is the superpixel (column, row) every other one is
	// measured against; default the one at the centre.
	Reference [2]int
	// Steps is the number of phases each superpixel steps through (≥ 3;
	// default 8); Window the half side, in camera pixels, of the square
	// around the point whose sum is the interference signal (default 1:
	// 3×3).
	Steps, Window int
	// MinModulation is the least interference modulation, as a fraction of
	// the strongest superpixel's, for a superpixel to count as lit
	// (default 0.1); a dark superpixel's phase is taken from its lit
	// neighbours.
	MinModulation float64
}

func (o *WavefrontOptions) defaults() error {
	if err := o.Grid.Validate(); err != nil {
		return err
	}
	if !(math.Abs(o.Map.Det()) > 0) {
		return errors.New("wavefront calibration: needs a Fourier map (insitu calibrate fourier)")
	}
	if o.Point == [2]float64{} {
		o.Point = [2]float64{o.Grid.MaxK(4), 0}
	}
	if o.Superpixel == 0 {
		o.Superpixel = max(2, o.Grid.N/8)
	}
	if o.Field == [2]float64{} {
		// The rest of the pattern has holes where the two superpixels are,
		// and its light diffracts from them as a superpixel's does, centred
		// on the field's frequency: two superpixel spot widths (2/s) from
		// the point along an axis, that light falls on the sinc's zero.
		d := 2 / float64(o.Superpixel*o.Grid.mp())
		if math.Abs(o.Point[0]) >= math.Abs(o.Point[1]) {
			o.Field = [2]float64{o.Point[0] - math.Copysign(d, o.Point[0]), o.Point[1]}
		} else {
			o.Field = [2]float64{o.Point[0], o.Point[1] - math.Copysign(d, o.Point[1])}
		}
	}
	if o.Steps == 0 {
		o.Steps = 8
	}
	if o.Window == 0 {
		o.Window = 1
	}
	if o.MinModulation == 0 {
		o.MinModulation = 0.1
	}
	n := o.nSuper()
	if o.Reference == [2]int{} {
		o.Reference = [2]int{n / 2, n / 2}
	}
	switch {
	case o.Superpixel < 1 || o.Superpixel > o.Grid.N/2:
		return fmt.Errorf("superpixel: %d controls: want 1 to n/2 = %d", o.Superpixel, o.Grid.N/2)
	case o.Steps < 3:
		return fmt.Errorf("steps: %d: a cosine needs 3 or more phases", o.Steps)
	case o.Window < 0:
		return fmt.Errorf("window: %d is negative", o.Window)
	case o.Reference[0] < 0 || o.Reference[1] < 0 || o.Reference[0] >= n || o.Reference[1] >= n:
		return fmt.Errorf("reference superpixel %v outside the %d×%d superpixels", o.Reference, n, n)
	case !(o.MinModulation > 0 && o.MinModulation < 1):
		return fmt.Errorf("min_modulation: %v: want a fraction in (0, 1)", o.MinModulation)
	}
	return nil
}

// nSuper is the number of superpixels per side.
func (o WavefrontOptions) nSuper() int { return (o.Grid.N + o.Superpixel - 1) / o.Superpixel }

// pattern is the field's blaze with superpixel ref showing the point's
// blaze and, unless test is negative, superpixel test showing it with the
// extra phase theta.
func (o WavefrontOptions) pattern(field, point []float64, ref, test int, theta float64) []float64 {
	x := append([]float64(nil), field...)
	n, s, ns := o.Grid.N, o.Superpixel, o.nSuper()
	paint := func(sp int, add float64) {
		c0, r0 := (sp%ns)*s, (sp/ns)*s
		for r := r0; r < min(r0+s, n); r++ {
			for c := c0; c < min(c0+s, n); c++ {
				x[r*n+c] = wrap(point[r*n+c] + add)
			}
		}
	}
	paint(ref, 0)
	if test >= 0 {
		paint(test, theta)
	}
	return x
}

// WavefrontResult is a wavefront calibration: per superpixel (row-major,
// Side×Side) the phase that brings its light in phase with the
// reference's at the point (the correction, radians in (−π, π]), the
// interference's modulation relative to the strongest, the cosine fit's
// R², and whether it was lit; the tilt removed (cycles per display pixel);
// the correction over the pattern's display pixels (radians in [0, 2π));
// and the camera pixel the interference was read at.
type WavefrontResult struct {
	Side       int
	Superpixel int
	Phase      []float64
	Modulation []float64
	R2         []float64
	Lit        []bool
	Tilt       [2]float64
	Correction []float64
	At         [2]int
}

// CalibrateWavefront measures the panel's phase error by superpixel
// interference: the reference superpixel and one test superpixel both
// show the blazed grating of the point (one grating over the whole
// pattern, so a flat panel puts them in phase there), the rest of the
// pattern the field's; the test superpixel's phase steps through Steps
// values θ and the camera's signal at the point follows a + m·cos(θ − φ):
// φ, fitted by least squares (the first Fourier coefficient of the
// equally spaced steps), is the phase that cancels the panel's error
// there relative to the reference. The signal is the sum of a small
// window where the Fourier map puts the point. An error of the map only
// tilts the result, and
// the tilt is removed: the correction is φ
// spread over each superpixel as a plane sloped toward its neighbours and
// smoothed (upsample), with the superpixels' mean tilt removed: a tilt
// only steers the beam, which the Fourier map accounts for.
func CalibrateWavefront(ctx context.Context, b Bench, o WavefrontOptions) (*WavefrontResult, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	field := o.Grid.Blaze(o.Field[0], o.Field[1], 0)
	point := o.Grid.Blaze(o.Point[0], o.Point[1], 0)
	ns := o.nSuper()
	ref := o.Reference[1]*ns + o.Reference[0]
	px, py := o.Map.Apply(o.Point[0], o.Point[1])
	at := [2]int{int(math.Round(px)), int(math.Round(py))}
	var wx, wy int
	check := func(img Image) error {
		wx, wy = at[0]-img.X0, at[1]-img.Y0
		if wx-o.Window < 0 || wy-o.Window < 0 || wx+o.Window >= img.W || wy+o.Window >= img.H {
			return fmt.Errorf("wavefront calibration: the Fourier map puts the point k = (%.4g, %.4g) at sensor (%.1f, %.1f), not %d px inside the %d×%d camera window at (%d, %d): choose another point",
				o.Point[0], o.Point[1], px, py, o.Window, img.W, img.H, img.X0, img.Y0)
		}
		return nil
	}
	signal := func(im Image) float64 {
		var s float64
		for y := wy - o.Window; y <= wy+o.Window; y++ {
			for x := wx - o.Window; x <= wx+o.Window; x++ {
				s += im.Pix[y*im.W+x]
			}
		}
		return s
	}
	var shots []Shot
	var tests []int
	for sp := range ns * ns {
		if sp == ref {
			continue
		}
		tests = append(tests, sp)
		for j := range o.Steps {
			theta := 2 * math.Pi * float64(j) / float64(o.Steps)
			shots = append(shots, Shot{Phase: o.pattern(field, point, ref, sp, theta), Settle: RigSettle})
		}
	}
	frames, err := b.Shoot(ctx, "wavefront", shots)
	if err != nil {
		return nil, err
	}
	if err := check(frames[0].Image); err != nil {
		return nil, err
	}
	res := &WavefrontResult{Side: ns, Superpixel: o.Superpixel, At: at,
		Phase: make([]float64, ns*ns), Modulation: make([]float64, ns*ns), R2: make([]float64, ns*ns), Lit: make([]bool, ns*ns)}
	res.Lit[ref], res.R2[ref] = true, 1
	var top float64
	for i, sp := range tests {
		sig := make([]float64, o.Steps)
		for j := range sig {
			sig[j] = signal(frames[i*o.Steps+j].Image)
		}
		phi, m, r2 := fitCosine(sig)
		res.Phase[sp], res.Modulation[sp], res.R2[sp] = phi, m, r2
		top = max(top, m)
	}
	if !(top > 0) {
		return res, errors.New("wavefront calibration: no superpixel's light interferes with the reference's at the point")
	}
	res.Modulation[ref] = top
	lit := 0
	for _, sp := range tests {
		res.Modulation[sp] /= top
		res.Lit[sp] = res.Modulation[sp] >= o.MinModulation && res.R2[sp] >= 0.5
		if res.Lit[sp] {
			lit++
		}
	}
	res.Modulation[ref] = 1
	if lit < 3 {
		return res, fmt.Errorf("wavefront calibration: only %d superpixels besides the reference interfere with it at sensor %v, where the Fourier map puts k = (%.4g, %.4g): is the beam on the pattern, the map right?", lit, at, o.Point[0], o.Point[1])
	}
	fillDark(res.Phase, res.Lit, ns)
	res.Tilt = removeTilt(res.Phase, res.Lit, ns, float64(o.Superpixel*o.Grid.mp()))
	res.Correction = upsample(res.Phase, ns, o.Grid.Side(), float64(o.Superpixel*o.Grid.mp()))
	return res, nil
}

// fitCosine fits a + m·cos(θ_j − φ) to signals at θ_j = 2πj/K by least
// squares (for equally spaced phases, the first Fourier coefficient) and
// returns φ in (−π, π], m and the fit's R².
func fitCosine(sig []float64) (phi, m, r2 float64) {
	k := float64(len(sig))
	var a, c, s float64
	for j, v := range sig {
		sn, cs := math.Sincos(2 * math.Pi * float64(j) / k)
		a += v
		c += v * cs
		s += v * sn
	}
	a /= k
	c, s = 2*c/k, 2*s/k
	phi, m = math.Atan2(s, c), math.Hypot(c, s)
	var res, tot float64
	for j, v := range sig {
		f := a + m*math.Cos(2*math.Pi*float64(j)/k-phi)
		res += (v - f) * (v - f)
		tot += (v - a) * (v - a)
	}
	r2 = 1.0
	if tot > 0 {
		r2 = 1 - res/tot
	}
	return phi, m, r2
}

// fillDark gives each dark superpixel the circular mean of its lit (or
// already filled) neighbours, growing inward from the lit ones.
func fillDark(phase []float64, lit []bool, n int) {
	known := append([]bool(nil), lit...)
	for changed := true; changed; {
		changed = false
		next := append([]bool(nil), known...)
		for i := range phase {
			if known[i] {
				continue
			}
			var z complex128
			for _, d := range [][2]int{{-1, 0}, {1, 0}, {0, -1}, {0, 1}, {-1, -1}, {1, 1}, {-1, 1}, {1, -1}} {
				c, r := i%n+d[0], i/n+d[1]
				if c >= 0 && r >= 0 && c < n && r < n && known[r*n+c] {
					z += cmplx.Rect(1, phase[r*n+c])
				}
			}
			if z != 0 {
				phase[i], next[i], changed = cmplx.Phase(z), true, true
			}
		}
		known = next
	}
}

// removeTilt removes from phase the mean phase step between neighbouring
// superpixels (as phasors: robust to wrapping) and returns it in cycles per
// display pixel; pitch is the superpixels' pitch in display pixels.
func removeTilt(phase []float64, lit []bool, n int, pitch float64) [2]float64 {
	var zx, zy complex128
	for r := range n {
		for c := range n {
			i := r*n + c
			if c+1 < n && lit[i] && lit[i+1] {
				zx += cmplx.Rect(1, phase[i+1]-phase[i])
			}
			if r+1 < n && lit[i] && lit[i+n] {
				zy += cmplx.Rect(1, phase[i+n]-phase[i])
			}
		}
	}
	tx, ty := cmplx.Phase(zx), cmplx.Phase(zy)
	var mean complex128
	for r := range n {
		for c := range n {
			i := r*n + c
			phase[i] = math.Remainder(phase[i]-tx*float64(c)-ty*float64(r), 2*math.Pi)
			if lit[i] {
				mean += cmplx.Rect(1, phase[i])
			}
		}
	}
	piston := cmplx.Phase(mean)
	for i := range phase {
		phase[i] = math.Remainder(phase[i]-piston, 2*math.Pi)
	}
	return [2]float64{tx / (2 * math.Pi * pitch), ty / (2 * math.Pi * pitch)}
}

// upsample spreads the n×n superpixel phases (their centres pitch display
// pixels apart) over a side×side pattern, as slmsuite does: a plane in
// each superpixel through its phase, of the slope between its neighbours
// (central differences of the wrapped phases, one-sided at the edges), so
// that each superpixel keeps its measured mean; then a Gaussian blur of
// the phasors over a quarter of a superpixel smooths the joins. The result
// is in [0, 2π).
func upsample(phase []float64, n, side int, pitch float64) []float64 {
	diff := func(a, b int) float64 { return math.Remainder(phase[b]-phase[a], 2*math.Pi) }
	slope := func(c, r, dc, dr int) float64 {
		i := r*n + c
		lo, hi := i, i
		steps := 0.0
		if c-dc >= 0 && r-dr >= 0 {
			lo, steps = i-dr*n-dc, steps+1
		}
		if c+dc < n && r+dr < n {
			hi, steps = i+dr*n+dc, steps+1
		}
		if steps == 0 {
			return 0
		}
		return diff(lo, hi) / steps / pitch
	}
	out := make([]float64, side*side)
	for y := range side {
		r := min(int(float64(y)/pitch), n-1)
		for x := range side {
			c := min(int(float64(x)/pitch), n-1)
			cx, cy := (float64(c)+0.5)*pitch-0.5, (float64(r)+0.5)*pitch-0.5
			out[y*side+x] = phase[r*n+c] + slope(c, r, 1, 0)*(float64(x)-cx) + slope(c, r, 0, 1)*(float64(y)-cy)
		}
	}
	return blurPhase(out, side, pitch/4)
}

// blurPhase blurs a side×side phase map as phasors with a Gaussian of
// standard deviation sigma pixels, into [0, 2π).
func blurPhase(phase []float64, side int, sigma float64) []float64 {
	re, im := make([]float64, len(phase)), make([]float64, len(phase))
	for i, p := range phase {
		im[i], re[i] = math.Sincos(p)
	}
	if sigma > 0.3 {
		rad := int(math.Ceil(3 * sigma))
		k := make([]float64, 2*rad+1)
		for i := range k {
			d := float64(i-rad) / sigma
			k[i] = math.Exp(-d * d / 2)
		}
		pass := func(v []float64, dx, dy int) []float64 {
			o := make([]float64, len(v))
			for y := range side {
				for x := range side {
					var s, w float64
					for i, kv := range k {
						xx, yy := x+(i-rad)*dx, y+(i-rad)*dy
						if xx < 0 || yy < 0 || xx >= side || yy >= side {
							continue
						}
						s, w = s+kv*v[yy*side+xx], w+kv
					}
					o[y*side+x] = s / w
				}
			}
			return o
		}
		re, im = pass(pass(re, 1, 0), 0, 1), pass(pass(im, 1, 0), 0, 1)
	}
	out := make([]float64, len(phase))
	for i := range out {
		out[i] = wrap(math.Atan2(im[i], re[i]))
	}
	return out
}

// WriteCorrection writes a correction (radians, side×side, row-major) as
// an 8-bit gray PNG of 256 levels per 2π, which an slm part's
// correction_file reads (with the default correction_scale).
func WriteCorrection(path string, phase []float64, side int) error {
	if len(phase) != side*side {
		return fmt.Errorf("correction of %d values for a %d×%d pattern", len(phase), side, side)
	}
	img := image.NewGray(image.Rect(0, 0, side, side))
	for i, p := range phase {
		g := int(math.Round(wrap(p)/(2*math.Pi)*256)) % 256
		img.SetGray(i%side, i/side, color.Gray{Y: uint8(g)})
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
