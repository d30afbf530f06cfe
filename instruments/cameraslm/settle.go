package cameraslm

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/optimize"
)

// SettleOptions are the patterns and delays of a settle calibration.
type SettleOptions struct {
	Grid Grid
	// K is the blazed grating (cycles per display pixel; zero: a period of
	// four controls along x) whose depth the patterns scale: A is the
	// grating at Depth[0] of its full 2π depth, B at Depth[1] (default 0.2
	// and 0.8). A flat pattern and the full grating would leave the image
	// stationary where a step starts and ends, so that the noise would
	// hide its last percent; between them, the image moves at first order
	// throughout.
	K     [2]float64
	Depth [2]float64
	// Levels is how many settled patterns between A and B (both included)
	// trace the image as the liquid crystal goes from one to the other
	// (default 11).
	Levels int
	// The camera is sampled Delays times (default 12) after each step, at
	// delays spaced geometrically from MinDelay (default MaxDelay/100) to
	// MaxDelay (default 1 s); before each step the panel is left Hold
	// (default MaxDelay) to settle. Repeats (default 1) goes through the
	// delays that many times.
	MinDelay, MaxDelay, Hold time.Duration
	Delays, Repeats          int
}

func (o *SettleOptions) defaults() error {
	if err := o.Grid.Validate(); err != nil {
		return err
	}
	if o.K == [2]float64{} {
		o.K = [2]float64{o.Grid.MaxK(4), 0}
	}
	if o.Depth == [2]float64{} {
		o.Depth = [2]float64{0.2, 0.8}
	}
	if o.Levels == 0 {
		o.Levels = 11
	}
	if o.MaxDelay == 0 {
		o.MaxDelay = time.Second
	}
	if o.MinDelay == 0 {
		o.MinDelay = o.MaxDelay / 100
	}
	if o.Hold == 0 {
		o.Hold = o.MaxDelay
	}
	if o.Delays == 0 {
		o.Delays = 12
	}
	if o.Repeats == 0 {
		o.Repeats = 1
	}
	switch {
	case !(o.Depth[0] >= 0 && o.Depth[1] <= 1 && o.Depth[1]-o.Depth[0] >= 0.1):
		return fmt.Errorf("depth %v: want two fractions of the grating's depth in [0, 1], at least 0.1 apart", o.Depth)
	case o.Levels < 3:
		return fmt.Errorf("levels: %d: want 3 or more", o.Levels)
	case !(o.MinDelay > 0 && o.MinDelay < o.MaxDelay):
		return fmt.Errorf("min_delay %v and max_delay %v: want 0 < min_delay < max_delay", o.MinDelay, o.MaxDelay)
	case o.Hold < 0:
		return fmt.Errorf("hold: %v is negative", o.Hold)
	case o.Delays < 4:
		return fmt.Errorf("delays: %d: want 4 or more", o.Delays)
	case o.Repeats < 1:
		return fmt.Errorf("repeats: %d: want 1 or more", o.Repeats)
	}
	return nil
}

// delays returns the sampling delays, geometric from MinDelay to MaxDelay.
func (o SettleOptions) delays() []time.Duration {
	d := make([]time.Duration, o.Delays)
	r := math.Log(float64(o.MaxDelay) / float64(o.MinDelay))
	for i := range d {
		d[i] = time.Duration(float64(o.MinDelay) * math.Exp(r*float64(i)/float64(o.Delays-1)))
	}
	return d
}

// SettleSample is one sample of a step: which way the panel stepped (rise
// from A to B, fall from B to A), the delay asked for and the one the
// marks measured, and how far the step had got: the fraction α of the
// way the image had gone along the settled patterns' curve.
type SettleSample struct {
	Step      string        `yaml:"step"` // rise or fall
	Requested time.Duration `yaml:"requested"`
	Delay     time.Duration `yaml:"delay"`
	Exposure  time.Duration `yaml:"exposure,omitempty"`
	Measured  bool          `yaml:"measured"`
	Done      float64       `yaml:"done"`
}

// Response is a step's fitted first-order response: the fraction done
// after a delay t is 1 − exp(−(t − DeadTime)/Tau) past the dead time and
// 0 before it (averaged over the exposure when it has a length). Within5
// and Within1 are when it is within 5 % and 1 % of the step: DeadTime +
// Tau·ln 20 and DeadTime + Tau·ln 100. RMS is the fit's residual, in
// fractions of the step.
type Response struct {
	Tau      time.Duration `yaml:"tau"`
	DeadTime time.Duration `yaml:"dead_time"`
	Within5  time.Duration `yaml:"within_5_percent"`
	Within1  time.Duration `yaml:"within_1_percent"`
	RMS      float64       `yaml:"rms"`
}

// SettleResult is a fitted settle calibration; Settle is the recommended
// settle: the slower step's 1 % time, rounded up to the millisecond.
type SettleResult struct {
	Rise, Fall Response
	Settle     time.Duration
	Samples    []SettleSample
}

// CalibrateSettle measures how the panel settles after a frame. The
// patterns are A and B (a blazed grating at two depths), and the settled
// patterns between them, A + α·(B − A) for α from 0 to 1: a first-order
// liquid crystal moves every pixel's level the same fraction of its way,
// so the image a step shows after a delay is the settled image of one α
// on that curve. Each sample's image is projected onto the curve (the
// nearest point of its piecewise-linear interpolation, in the space of the
// settled images' principal components) to read α, and the fraction done, α for a rise and 1 − α for a fall, is
// fitted with the first-order response (Response) by Nelder–Mead.
//
// The shots: the settled curve, then for each delay a fall (B → A, read
// after the delay), A settled, a rise (A → B, read after the delay), B
// settled. The delays are read from the query marks (frame shown to the
// middle of the exposure) where the bench has them.
func CalibrateSettle(ctx context.Context, b Bench, o SettleOptions) (*SettleResult, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	pb := o.Grid.Blaze(o.K[0], o.K[1], 0)
	level := func(a float64) []float64 { // a from 0 (A) to 1 (B)
		d := o.Depth[0] + a*(o.Depth[1]-o.Depth[0])
		x := make([]float64, len(pb))
		for i, p := range pb {
			x[i] = d * p
		}
		return x
	}
	var shots []Shot
	for j := range o.Levels {
		shots = append(shots, Shot{Phase: level(float64(j) / float64(o.Levels-1)), Settle: o.Hold})
	}
	a, bb := level(0), level(1)
	type step struct {
		name string
		d    time.Duration
		shot int
	}
	var steps []step
	for range o.Repeats {
		for _, d := range o.delays() {
			steps = append(steps, step{"fall", d, len(shots)})
			shots = append(shots, Shot{Phase: a, Settle: d}, Shot{Phase: a, Settle: o.Hold})
			steps = append(steps, step{"rise", d, len(shots)})
			shots = append(shots, Shot{Phase: bb, Settle: d}, Shot{Phase: bb, Settle: o.Hold})
		}
	}
	frames, err := b.Shoot(ctx, "settle", shots)
	if err != nil {
		return nil, err
	}
	static := make([][]float64, o.Levels)
	for j := range static {
		static[j] = frames[j].Pix
	}
	proj, err := newProjector(static)
	if err != nil {
		return nil, fmt.Errorf("settle calibration: %w", err)
	}
	curve := make([][]float64, o.Levels)
	for j := range curve {
		curve[j] = proj.coords(static[j])
	}
	res := &SettleResult{}
	for _, s := range steps {
		f := frames[s.shot]
		alpha := onCurve(curve, proj.coords(f.Pix))
		done := alpha
		if s.name == "fall" {
			done = 1 - alpha
		}
		delay := f.Delay
		if !f.Measured {
			delay = s.d
		}
		res.Samples = append(res.Samples, SettleSample{Step: s.name, Requested: s.d, Delay: delay, Exposure: f.Exposure, Measured: f.Measured, Done: done})
	}
	var errs []error
	for _, dir := range []struct {
		name string
		r    *Response
	}{{"rise", &res.Rise}, {"fall", &res.Fall}} {
		var ss []SettleSample
		for _, s := range res.Samples {
			if s.Step == dir.name {
				ss = append(ss, s)
			}
		}
		r, err := fitResponse(ss)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s (%s): %w", dir.name, map[string]string{"rise": "A to B", "fall": "B to A"}[dir.name], err))
			continue
		}
		*dir.r = r
	}
	if err := errors.Join(errs...); err != nil {
		return res, fmt.Errorf("settle calibration: %w", err)
	}
	slow := max(res.Rise.Within1, res.Fall.Within1)
	res.Settle = (slow + time.Millisecond - 1).Truncate(time.Millisecond)
	return res, nil
}

// projector reduces images to their coordinates along the principal
// components of the settled patterns' images: the few directions the
// image moves in as the liquid crystal goes from A to B. Noise in the
// thousands of other directions would otherwise pull every image toward
// the middle of a segment of the curve.
type projector struct {
	pix  []int // the pixels that change
	mean []float64
	axes [][]float64 // unit vectors over pix
}

// newProjector keeps the pixels whose value changes along the settled
// images by more than 8 times the noise (the background's, from the
// differences of successive images), and of those the principal
// components holding more than 10⁻³ of the variance, at most three: noise
// in the settled images themselves would otherwise make some segments of
// the curve look nearer than others.
func newProjector(images [][]float64) (*projector, error) {
	l, n := len(images), len(images[0])
	for _, im := range images {
		if len(im) != n {
			return nil, fmt.Errorf("images of %d and %d pixels", n, len(im))
		}
	}
	diff := make([]float64, 0, (l-1)*n)
	for j := 1; j < l; j++ {
		for i := range n {
			diff = append(diff, images[j][i]-images[j-1][i])
		}
	}
	_, sigma := background(diff)
	sigma /= math.Sqrt2 // a difference has twice a pixel's noise variance
	p := &projector{}
	for i := range n {
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, im := range images {
			lo, hi = min(lo, im[i]), max(hi, im[i])
		}
		if hi-lo > 8*sigma {
			p.pix = append(p.pix, i)
		}
	}
	if len(p.pix) == 0 {
		return nil, errors.New("the settled patterns between A and B all give the same image, within the noise: does the camera see the SLM's light?")
	}
	n = len(p.pix)
	p.mean = make([]float64, n)
	for _, im := range images {
		for k, i := range p.pix {
			p.mean[k] += im[i] / float64(l)
		}
	}
	m := mat.NewDense(l, n, nil)
	for j, im := range images {
		for k, i := range p.pix {
			m.Set(j, k, im[i]-p.mean[k])
		}
	}
	var svd mat.SVD
	if !svd.Factorize(m, mat.SVDThin) {
		return nil, errors.New("the settled images' principal components did not converge")
	}
	sv := svd.Values(nil)
	var v mat.Dense
	svd.VTo(&v)
	var total float64
	for _, x := range sv {
		total += x * x
	}
	if !(total > 0) {
		return nil, errors.New("the settled patterns between A and B all give the same image: does the camera see the SLM's light?")
	}
	for k, x := range sv {
		if k == 3 || x*x < 1e-3*total {
			break
		}
		p.axes = append(p.axes, mat.Col(nil, k, &v))
	}
	return p, nil
}

// coords are img's coordinates along the axes.
func (p *projector) coords(img []float64) []float64 {
	c := make([]float64, len(p.axes))
	for k, a := range p.axes {
		for q, i := range p.pix {
			c[k] += (img[i] - p.mean[q]) * a[q]
		}
	}
	return c
}

// onCurve returns where img is nearest the piecewise-linear curve through
// the images of curve, as a fraction of the way from the first to the
// last; the curve goes on straight past its ends.
func onCurve(curve [][]float64, img []float64) float64 {
	best, alpha := math.Inf(1), 0.0
	for j := range len(curve) - 1 {
		s0, s1 := curve[j], curve[j+1]
		var dd, dv float64
		for i := range img {
			d := s1[i] - s0[i]
			dd += d * d
			dv += d * (img[i] - s0[i])
		}
		t := 0.0
		if dd > 0 {
			t = dv / dd
		}
		// Inside a segment; past the ends of the curve along its end
		// segments, so that noise does not push a settled image inward
		// only.
		if j > 0 {
			t = max(t, 0)
		}
		if j < len(curve)-2 {
			t = min(t, 1)
		}
		var r float64
		for i := range img {
			e := img[i] - s0[i] - t*(s1[i]-s0[i])
			r += e * e
		}
		if r < best {
			best, alpha = r, (float64(j)+t)/float64(len(curve)-1)
		}
	}
	return alpha
}

// model is the fraction of a step done at delay t (seconds) with an
// exposure of length e, for dead time t0 and time constant tau.
func model(t, e, t0, tau float64) float64 {
	done := func(s float64) float64 { // ∫ of the response from t0 to s, in units of tau
		if s <= t0 {
			return 0
		}
		return (s - t0) - tau*(1-math.Exp(-(s-t0)/tau))
	}
	if e <= 0 {
		if t <= t0 {
			return 0
		}
		return 1 - math.Exp(-(t-t0)/tau)
	}
	return (done(t+e/2) - done(t-e/2)) / e
}

// fitResponse fits the first-order response to a step's samples.
func fitResponse(ss []SettleSample) (Response, error) {
	if len(ss) < 4 {
		return Response{}, fmt.Errorf("%d samples: too few to fit", len(ss))
	}
	slices.SortFunc(ss, func(a, b SettleSample) int { return int(a.Delay - b.Delay) })
	first, last := ss[0], ss[len(ss)-1]
	if first.Done > 0.95 {
		return Response{}, fmt.Errorf("%.0f %% of the step done %v after the frame was shown: it settles faster than the shortest delay; sample shorter delays (min_delay)", 100*first.Done, first.Delay)
	}
	if last.Done < 0.9 {
		return Response{}, fmt.Errorf("only %.0f %% of the step done %v after the frame was shown: sample longer delays (max_delay, hold)", 100*last.Done, last.Delay)
	}
	// The start: the delay where 1 − 1/e of the step is done.
	tau0 := last.Delay.Seconds() / 3
	for i := 1; i < len(ss); i++ {
		a, b := ss[i-1], ss[i]
		if a.Done < 1-1/math.E && b.Done >= 1-1/math.E {
			f := (1 - 1/math.E - a.Done) / (b.Done - a.Done)
			tau0 = a.Delay.Seconds() + f*(b.Delay-a.Delay).Seconds()
			break
		}
	}
	tau0 = max(tau0, first.Delay.Seconds()/10, 1e-6)
	cost := func(p []float64) float64 {
		t0, tau := p[0], math.Exp(p[1])
		var s float64
		for _, x := range ss {
			r := x.Done - model(x.Delay.Seconds(), x.Exposure.Seconds(), t0, tau)
			s += r * r
		}
		if t0 < 0 { // a dead time is never negative
			s += t0 * t0 / (tau * tau)
		}
		return s
	}
	res, err := optimize.Minimize(optimize.Problem{Func: cost}, []float64{0, math.Log(tau0)},
		&optimize.Settings{Converger: &optimize.FunctionConverge{Absolute: 1e-14, Iterations: 200}, MajorIterations: 5000}, &optimize.NelderMead{})
	if err != nil && res == nil {
		return Response{}, fmt.Errorf("fit: %w", err)
	}
	t0, tau := max(res.X[0], 0), math.Exp(res.X[1])
	sec := func(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
	return Response{
		Tau: sec(tau), DeadTime: sec(t0),
		Within5: sec(t0 + tau*math.Log(20)), Within1: sec(t0 + tau*math.Log(100)),
		RMS: math.Sqrt(res.F / float64(len(ss))),
	}, nil
}
