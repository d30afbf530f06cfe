package cameraslm

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"gonum.org/v1/gonum/optimize"
)

// SettleOptions are the patterns and delays of a settle calibration.
type SettleOptions struct {
	Grid Grid
	// K is pattern B's blazed grating (cycles per display pixel); pattern
	// A is flat. Zero: a period of four controls along x.
	K [2]float64
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
// patterns are A (flat) and B (a blazed grating), and the settled
// patterns between them, A + α·(B − A) for α from 0 to 1: a first-order
// liquid crystal moves every pixel's level the same fraction of its way,
// so the image a step shows after a delay is the settled image of one α
// on that curve. Each sample's image is projected onto the curve (the
// nearest point of its piecewise-linear interpolation, all pixels) to
// read α, and the fraction done, α for a rise and 1 − α for a fall, is
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
	level := func(a float64) []float64 {
		x := make([]float64, len(pb))
		for i, p := range pb {
			x[i] = a * p
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
	curve := make([][]float64, o.Levels)
	for j := range curve {
		curve[j] = frames[j].Pix
	}
	res := &SettleResult{}
	for _, s := range steps {
		f := frames[s.shot]
		alpha := onCurve(curve, f.Pix)
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
			errs = append(errs, fmt.Errorf("%s (%s): %w", dir.name, map[string]string{"rise": "flat to grating", "fall": "grating to flat"}[dir.name], err))
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

// onCurve returns where img is nearest the piecewise-linear curve through
// the images of curve, as a fraction of the way from the first to the
// last.
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
			t = min(max(dv/dd, 0), 1)
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
