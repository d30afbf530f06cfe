package pnn

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/insitu-lab/insitu"
	"github.com/insitu-lab/insitu/simulators/cnon"
	"github.com/insitu-lab/insitu/simulators/optics"
)

var ctx = context.Background()

func smallCNON(gap bool) CNONConfig {
	c := DefaultCNONConfig()
	c.N, c.Steps, c.Classes, c.Inputs = 6, 12, 3, 2
	if gap {
		c.Eta, c.CouplingNoise, c.InputNoise = 0.2, 0.05, 0.1
	}
	return c
}

func smallOptical(gap bool) OpticalConfig {
	c := DefaultOpticalConfig()
	c.N, c.Block, c.Inputs = 8, 2, 3
	if gap {
		c.Eta, c.Crosstalk, c.Aberration, c.DetectorShift, c.InputNoise = 0.1, 0.1, 0.3, 1, 0.1
	}
	return c
}

func twins(t testing.TB) map[string]PNN {
	t.Helper()
	out := map[string]PNN{}
	for _, gap := range []bool{false, true} {
		suffix := "/ideal"
		if gap {
			suffix = "/gap"
		}
		ct, err := NewCNON(smallCNON(gap))
		if err != nil {
			t.Fatal(err)
		}
		ot, err := NewOptical(smallOptical(gap))
		if err != nil {
			t.Fatal(err)
		}
		mc := smallOptical(gap)
		mc.MacroPixel = 2
		mt, err := NewOptical(mc)
		if err != nil {
			t.Fatal(err)
		}
		out["cnon"+suffix], out["optical"+suffix], out["optical-macro"+suffix] = ct, ot, mt
	}
	return out
}

// randomX draws x strictly inside the box.
func randomX(rng *rand.Rand, s insitu.Space) []float64 {
	x := make([]float64, s.Dim())
	for i := range x {
		lo, hi := s.Lower[i], s.Upper[i]
		x[i] = lo + (hi-lo)*(0.05+0.9*rng.Float64())
	}
	return x
}

func noiseless(b PNN, x []float64) []float64 {
	switch t := b.(type) {
	case *CNONTwin:
		return t.Noiseless(x)
	case *OpticalTwin:
		return t.Noiseless(x)
	}
	panic("unknown twin")
}

func dot(a, b []float64) float64 {
	var s float64
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

func relErr(got, want []float64) float64 {
	var d, w float64
	for i := range got {
		d += (got[i] - want[i]) * (got[i] - want[i])
		w += want[i] * want[i]
	}
	return math.Sqrt(d / w)
}

// fdJacobian returns the central-difference Jacobian, C rows of len(x).
func fdJacobian(b PNN, x []float64, h float64) [][]float64 {
	c := b.Classes()
	jac := make([][]float64, c)
	for i := range jac {
		jac[i] = make([]float64, len(x))
	}
	xp := append([]float64(nil), x...)
	for j := range x {
		xp[j] = x[j] + h
		yp := noiseless(b, xp)
		xp[j] = x[j] - h
		ym := noiseless(b, xp)
		xp[j] = x[j]
		for i := range c {
			jac[i][j] = (yp[i] - ym[i]) / (2 * h)
		}
	}
	return jac
}

func TestVJPMatchesFiniteDifferences(t *testing.T) {
	for name, b := range twins(t) {
		t.Run(name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(3, 4))
			for range 3 {
				x := randomX(rng, b.Spec().In)
				jac := fdJacobian(b, x, 1e-5)
				v := make([]float64, b.Classes())
				for i := range v {
					v[i] = rng.NormFloat64()
				}
				g, err := b.VJP(ctx, x, v)
				if err != nil {
					t.Fatal(err)
				}
				want := make([]float64, len(x))
				for i := range v {
					for j := range x {
						want[j] += v[i] * jac[i][j]
					}
				}
				if e := relErr(g, want); e > 1e-6 {
					t.Fatalf("VJP vs finite differences: relative error %.3g", e)
				}
			}
		})
	}
}

// The θ-restricted VJP (last dθ entries) equals the θ columns of the full
// Jacobian, built both from finite differences and by stacking VJPs with
// unit cotangents.
func TestThetaVJPEqualsJacobianColumns(t *testing.T) {
	for name, b := range twins(t) {
		t.Run(name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(5, 6))
			x := randomX(rng, b.Spec().In)
			du, dth := b.Split()
			if du+dth != len(x) {
				t.Fatalf("Split %d+%d != %d inputs", du, dth, len(x))
			}
			fd := fdJacobian(b, x, 1e-5)
			rows := make([][]float64, b.Classes())
			for i := range rows {
				e := make([]float64, b.Classes())
				e[i] = 1
				g, err := b.VJP(ctx, x, e)
				if err != nil {
					t.Fatal(err)
				}
				rows[i] = g
			}
			v := make([]float64, b.Classes())
			for i := range v {
				v[i] = rng.NormFloat64()
			}
			g, err := b.VJP(ctx, x, v)
			if err != nil {
				t.Fatal(err)
			}
			gTheta := g[du:]
			stack := make([]float64, dth)
			cols := make([]float64, dth)
			for i := range v {
				for j := range dth {
					stack[j] += v[i] * rows[i][du+j]
					cols[j] += v[i] * fd[i][du+j]
				}
				if e := relErr(rows[i][du:], fd[i][du:]); e > 1e-6 {
					t.Fatalf("row %d of the θ-Jacobian: stacked VJP vs FD error %.3g", i, e)
				}
			}
			if e := relErr(gTheta, stack); e > 1e-12 {
				t.Fatalf("θ-VJP vs stacked unit VJPs: error %.3g", e)
			}
			if e := relErr(gTheta, cols); e > 1e-6 {
				t.Fatalf("θ-VJP vs FD columns: error %.3g", e)
			}
		})
	}
}

// pnn-cnon reuses package cnon's equations: with q(0) and e set directly it
// integrates exactly what cnon.Twin integrates, and its adjoint is cnon's.
// With macro_pixel b the twin is the pixel twin driven with each control
// copied onto its b×b block, and its θ-gradient is the pixel gradient
// summed over each block.
func TestOpticalMacroPixelIsTheExpandedPattern(t *testing.T) {
	for _, gap := range []bool{false, true} {
		pc := smallOptical(gap)
		pix, err := NewOptical(pc)
		if err != nil {
			t.Fatal(err)
		}
		pc.MacroPixel = 4
		mac, err := NewOptical(pc)
		if err != nil {
			t.Fatal(err)
		}
		du, dth := mac.Split()
		if dth != 4 || mac.Spec().In.Dim() != du+4 {
			t.Fatalf("macro_pixel 4 on n = 8: θ has %d phases, the box %d inputs; want 4 and %d", dth, mac.Spec().In.Dim(), du+4)
		}
		rng := rand.New(rand.NewPCG(5, 6))
		for range 3 {
			x := randomX(rng, mac.Spec().In)
			xp := append([]float64(nil), x[:du]...)
			for r := range pc.N {
				for c := range pc.N {
					xp = append(xp, x[du+(r/4)*2+c/4])
				}
			}
			if e := relErr(mac.Noiseless(x), pix.Noiseless(xp)); e > 1e-12 {
				t.Errorf("gap %v: scores differ from the expanded pattern's: relative error %.3g", gap, e)
			}
			v := []float64{rng.NormFloat64(), rng.NormFloat64()}
			g, err := mac.VJP(ctx, x, v)
			if err != nil {
				t.Fatal(err)
			}
			gp, err := pix.VJP(ctx, xp, v)
			if err != nil {
				t.Fatal(err)
			}
			want := append([]float64(nil), gp[:du]...)
			want = append(want, make([]float64, 4)...)
			for r := range pc.N {
				for c := range pc.N {
					want[du+(r/4)*2+c/4] += gp[du+r*pc.N+c]
				}
			}
			if e := relErr(g, want); e > 1e-12 {
				t.Errorf("gap %v: VJP differs from the block sums of the pixel VJP: relative error %.3g", gap, e)
			}
		}
	}
	bad := smallOptical(false)
	bad.MacroPixel = 3
	if _, err := NewOptical(bad); err == nil || !strings.Contains(err.Error(), "macro_pixel") {
		t.Errorf("macro_pixel 3 on n = 8: %v", err)
	}
}

func TestCNONMatchesCNONTwin(t *testing.T) {
	for _, gap := range []bool{false, true} {
		cfg := DefaultCNONConfig()
		if gap {
			cfg.Eta, cfg.CouplingNoise = 0.3, 0.05
		}
		pt, err := NewCNON(cfg)
		if err != nil {
			t.Fatal(err)
		}
		ct, err := cnon.New(cnon.Config{N: cfg.N, Horizon: cfg.Horizon, Steps: cfg.Steps, C0: cfg.C0, C1: cfg.C1,
			E0: 0.1, E1: 0.1, Seed: cfg.Seed, Eta: cfg.Eta, CouplingNoise: cfg.CouplingNoise})
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(7, 8))
		q0 := make([]float64, cfg.N)
		v := make([]float64, cfg.N)
		for i := range q0 {
			q0[i], v[i] = 2*rng.Float64()-1, rng.NormFloat64()
		}
		// θ = cnon's drive and u with enc·u = q0 are not at hand, so set
		// q(0) and e on the shared integrator as load does.
		w := pt.ig.Get()
		copy(w.Q, q0)
		copy(w.E, ct.Drive())
		pt.ig.Forward(w)
		want := ct.Noiseless(q0)
		for i := range want {
			if w.Q[i] != want[i] {
				t.Fatalf("gap=%v: q(T)[%d] = %v, cnon.Twin gives %v", gap, i, w.Q[i], want[i])
			}
		}
		lq, eb := make([]float64, cfg.N), make([]float64, cfg.N)
		pt.ig.Adjoint(w, v, lq, eb)
		pt.ig.Put(w)
		gw, err := ct.VJP(ctx, q0, v)
		if err != nil {
			t.Fatal(err)
		}
		if e := relErr(lq, gw); e > 1e-14 {
			t.Fatalf("gap=%v: adjoint differs from cnon.Twin.VJP by %.3g", gap, e)
		}
	}
}

// pnn-optical with every u_j = 1 (no attenuation) is the OWMS twin.
func TestOpticalMatchesOWMS(t *testing.T) {
	cfg := DefaultOpticalConfig()
	pt, err := NewOptical(cfg)
	if err != nil {
		t.Fatal(err)
	}
	oc := optics.DefaultConfig()
	oc.N, oc.Pitch, oc.Wavelength, oc.Distance, oc.Waist = cfg.N, cfg.Pitch, cfg.Wavelength, cfg.Distance, cfg.Waist
	oc.TargetOffset, oc.TargetWaist = 0, cfg.Waist
	ot, err := optics.New(oc)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(9, 10))
	x := randomX(rng, pt.Spec().In)
	for j := range cfg.Inputs {
		x[j] = 1
	}
	got, want := pt.Field(x), ot.Field(x[cfg.Inputs:])
	var d, s float64
	for i := range got {
		d += sqAbs(got[i] - want[i])
		s += sqAbs(want[i])
	}
	if e := math.Sqrt(d / s); e > 1e-12 {
		t.Fatalf("field differs from optics.Twin by %.3g", e)
	}
	// Left/right halves hold the power.
	y := pt.Noiseless(x)
	var tot float64
	for _, v := range got {
		tot += sqAbs(v) * cfg.Pitch * cfg.Pitch
	}
	if e := math.Abs(y[0]+y[1]-cfg.Gain*tot) / (cfg.Gain * tot); e > 1e-12 {
		t.Fatalf("scores %v do not sum to gain·power %v", y, cfg.Gain*tot)
	}
}

func sqAbs(v complex128) float64 { return real(v)*real(v) + imag(v)*imag(v) }

func TestQueryBatchEqualsSequential(t *testing.T) {
	for name := range twins(t) {
		t.Run(name, func(t *testing.T) {
			a, b := twins(t)[name], twins(t)[name]
			rng := rand.New(rand.NewPCG(11, 12))
			xs := make([][]float64, 37)
			for i := range xs {
				xs[i] = randomX(rng, a.Spec().In)
			}
			ys, err := a.QueryBatch(ctx, xs)
			if err != nil {
				t.Fatal(err)
			}
			for i, x := range xs {
				y, err := b.Query(ctx, x)
				if err != nil {
					t.Fatal(err)
				}
				for c := range y {
					if y[c] != ys[i][c] {
						t.Fatalf("query %d: batch %v, sequential %v", i, ys[i], y)
					}
				}
			}
			cctx, cancel := context.WithCancel(ctx)
			cancel()
			if _, err := a.QueryBatch(cctx, xs); !errors.Is(err, context.Canceled) {
				t.Fatalf("cancelled batch: %v", err)
			}
			bad := append([][]float64{}, xs[0], make([]float64, 1))
			if _, err := a.QueryBatch(ctx, bad); err == nil || !strings.Contains(err.Error(), "query 1") {
				t.Fatalf("bad batch: %v", err)
			}
		})
	}
}

func TestRealityGapAndIdeal(t *testing.T) {
	real := map[string]PNN{}
	ideal := map[string]PNN{}
	fresh := map[string]PNN{}
	ct, _ := NewCNON(smallCNON(true))
	real["cnon"], ideal["cnon"] = ct, ct.Ideal()
	fresh["cnon"], _ = NewCNON(smallCNON(false))
	ot, _ := NewOptical(smallOptical(true))
	real["optical"], ideal["optical"] = ot, ot.Ideal()
	fresh["optical"], _ = NewOptical(smallOptical(false))
	for name := range real {
		t.Run(name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(13, 14))
			x := randomX(rng, real[name].Spec().In)
			yr, yi, yf := noiseless(real[name], x), noiseless(ideal[name], x), noiseless(fresh[name], x)
			if relErr(yr, yi) < 1e-3 {
				t.Fatalf("real %v and ideal %v scores barely differ", yr, yi)
			}
			for c := range yi {
				if yi[c] != yf[c] {
					t.Fatalf("Ideal() %v differs from a twin built without the gap %v", yi, yf)
				}
			}
			// Input noise: queries differ from the noiseless map on the real
			// twin, not on the ideal one.
			q, _ := real[name].Query(ctx, x)
			if relErr(q, yr) == 0 {
				t.Fatal("input noise had no effect")
			}
			q, _ = ideal[name].Query(ctx, x)
			if relErr(q, yi) != 0 {
				t.Fatal("ideal twin is noisy")
			}
		})
	}
}

func TestSpec(t *testing.T) {
	for name, b := range twins(t) {
		s := b.Spec()
		if err := s.Validate(); err != nil {
			t.Fatal(name, err)
		}
		du, dth := b.Split()
		if s.In.Names[0] != "u0" || s.In.Names[du-1] != "u"+strconv.Itoa(du-1) || s.In.Names[du] != "theta0" || s.In.Names[du+dth-1] != "theta"+strconv.Itoa(dth-1) {
			t.Fatalf("%s: names %v", name, s.In.Names)
		}
		if s.In.Lower[0] != -1 || s.In.Upper[0] != 1 || len(s.Out) != b.Classes() || s.Out[0] != "c0" {
			t.Fatalf("%s: spec %+v", name, s)
		}
	}
	ct, _ := NewCNON(DefaultCNONConfig())
	if s := ct.Spec().In; s.Lower[2] != -0.5 || s.Upper[2] != 0.5 {
		t.Fatalf("cnon drive bounds %v %v", s.Lower[2], s.Upper[2])
	}
	ot, _ := NewOptical(DefaultOpticalConfig())
	if s := ot.Spec().In; s.Lower[2] != 0 || s.Upper[2] != 2*math.Pi || s.Dim() != 2+256 {
		t.Fatalf("optical spec %v", s)
	}
	// Phases wrap, data inputs and drives do not.
	if s := ot.Spec().In; s.IsPeriodic(1) || !s.IsPeriodic(2) || !s.IsPeriodic(257) {
		t.Errorf("optical periodic flags %v", s.Periodic)
	}
	if s := ct.Spec().In; s.IsPeriodic(2) {
		t.Errorf("cnon drives marked periodic")
	}
}

func TestInputsAreChecked(t *testing.T) {
	for name, b := range twins(t) {
		x := randomX(rand.New(rand.NewPCG(1, 1)), b.Spec().In)
		x[0] = 1.5
		if _, err := b.Query(ctx, x); err == nil || !strings.Contains(err.Error(), "u0") {
			t.Fatalf("%s: out-of-box query: %v", name, err)
		}
		x[0] = 0
		if _, err := b.VJP(ctx, x, make([]float64, b.Classes()+1)); err == nil {
			t.Fatalf("%s: short cotangent accepted", name)
		}
		v := make([]float64, b.Classes())
		v[0] = math.NaN()
		if _, err := b.VJP(ctx, x, v); err == nil {
			t.Fatalf("%s: NaN cotangent accepted", name)
		}
	}
}

func TestConfigErrorsNameKeys(t *testing.T) {
	c := DefaultCNONConfig()
	c.N, c.Steps, c.Eta, c.InputNoise, c.DriveRange = 0, 0, -2, -1, 0
	err := c.Validate()
	for _, k := range []string{"n:", "steps:", "eta:", "input_noise:", "drive_range:"} {
		if err == nil || !strings.Contains(err.Error(), k) {
			t.Fatalf("cnon: error %v does not name %s", err, k)
		}
	}
	o := DefaultOpticalConfig()
	o.Distance, o.Block, o.Crosstalk, o.DetectorShift, o.Classes = 0.001, 3, 1, 99, 0
	err = o.Validate()
	for _, k := range []string{"distance:", "block:", "crosstalk:", "detector_shift:", "classes:"} {
		if err == nil || !strings.Contains(err.Error(), k) {
			t.Fatalf("optical: error %v does not name %s", err, k)
		}
	}
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Kind != "pnn-optical" {
		t.Fatalf("not a *ConfigError: %v", err)
	}
	if err := DefaultCNONConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	if err := DefaultOpticalConfig().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestRegistry(t *testing.T) {
	for _, kind := range []string{"pnn-cnon", "pnn-optical"} {
		b, err := insitu.New(ctx, insitu.Params{Kind: kind, Values: map[string]any{"seed": 3, "input_noise": 0.1}})
		if err != nil {
			t.Fatal(err)
		}
		if b.Spec().Name != kind {
			t.Fatalf("name %q", b.Spec().Name)
		}
		_, err = insitu.New(ctx, insitu.Params{Kind: kind, File: "x.yaml", Values: map[string]any{"classes": 0}})
		if err == nil || !strings.Contains(err.Error(), "x.yaml: blackbox.classes") {
			t.Fatalf("%s: bad classes: %v", kind, err)
		}
		_, err = insitu.New(ctx, insitu.Params{Kind: kind, Values: map[string]any{"nope": 1}})
		if err == nil || !strings.Contains(err.Error(), "nope") {
			t.Fatalf("%s: unknown key: %v", kind, err)
		}
	}
}

func TestDeterministicPerSeed(t *testing.T) {
	a, _ := NewOptical(smallOptical(true))
	b, _ := NewOptical(smallOptical(true))
	c2 := smallOptical(true)
	c2.Seed = 2
	c, _ := NewOptical(c2)
	x := randomX(rand.New(rand.NewPCG(1, 2)), a.Spec().In)
	ya, _ := a.Query(ctx, x)
	yb, _ := b.Query(ctx, x)
	yc, _ := c.Query(ctx, x)
	if relErr(ya, yb) != 0 || relErr(ya, yc) == 0 {
		t.Fatalf("seeds: %v %v %v", ya, yb, yc)
	}
}
