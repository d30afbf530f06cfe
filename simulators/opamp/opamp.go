// Package opamp is the twin of a two-stage Miller-compensated op-amp sized
// for a figure of merit (the op-amp task of the GradPIE paper, arXiv
// 2501.19161), registered as kind "opamp".
//
// Inputs (10): width and length of four device groups — bias (M5, M7, M8),
// differential pair (M1, M2), PMOS mirror load (M3, M4) and PMOS gain stage
// (M6) —, W ∈ [2, 32] µm, L ∈ [0.2, 2] µm; the ratio r ∈ [1, 3] (M7's
// width = r × the bias width, so the second stage draws r·Iref), relaxed to
// a continuous input and rounded to {1, 2, 3} before simulation; and the
// Miller capacitor Cc ∈ [0.1, 20] pF. Lengths and widths are in µm and Cc
// in pF in the input vector (SI everywhere else). Outputs: DC gain G (V/V),
// phase margin PM (degrees) and unity-gain bandwidth UGBW (Hz). Testbench:
// VDD 1.8 V, Iref 20 µA, CL 2 pF, VCM 0.9 V.
//
// Two backends compute the same circuit on the same devices (Process):
//
//   - analytic (default): the square-law small-signal model reduced to its
//     two high-impedance nodes, H(s) = A0(1 − s/z)/(1 + b1·s + b2·s²), with
//     the unity-gain crossing solved in closed form. About a microsecond.
//   - ngspice: `ngspice -b` on an embedded netlist with our level-1 model
//     cards (the SkyWater 130 nm PDK of the paper is not available), an AC
//     sweep 1 Hz–10 GHz at 100 points per decade, and G, PM, UGBW read off
//     the response. Tens of milliseconds per query; QueryBatch runs one
//     ngspice per core.
//
// The analytic model solves the level-1 operating point (channel-length
// modulation in the mirrors included, the output held at VCM by the
// testbench's DC servo) and assumes every transistor is saturated there;
// ngspice solves the real circuit. Where the analytic operating point has
// every device saturated with 50 mV to spare (SaturationMargin ≥ 0.05, 98 %
// of random sizings) the two agree to 1 % in G and UGBW and 0.5° in PM
// (observed 0.41 %, 0.21 %, 0.17° on 1000 random sizings). Below that,
// devices leave saturation, ngspice's gain can collapse and the analytic
// model does not see it.
//
// With λ = 0.2 V⁻¹·µm/L random sizings have G ≈ 350–4600 and a median FoM
// of about 21 (10 %–90 %: 8–46), higher than the paper's ≈ 7 on the
// SkyWater PDK: compare methods within this twin, not with the paper's
// absolute numbers.
//
// A design whose |H| never falls through 1 gets the penalty outputs
// (G, PenaltyPM, 0), never NaN. The objective kind "opamp-fom" (this
// package registers it with insitu.RegisterObjective) is the CktGNN figure
// of merit.
//
// Reality-gap options, off by default: mismatch (a fixed seeded
// perturbation of the process) and output_noise (fresh relative Gaussian
// noise on every output at every query, a function of the seed and the
// query's index only, as in cnon).
//
// A Twin is safe for concurrent use.
package opamp

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"sync/atomic"

	"github.com/insitu-lab/insitu"
	"github.com/insitu-lab/insitu/internal/splitmix"
	"github.com/insitu-lab/insitu/simulators/batch"
)

// Input coordinates.
var (
	InputNames  = []string{"W_bias", "L_bias", "W_diff", "L_diff", "W_load", "L_load", "W_gain", "L_gain", "r", "Cc"}
	InputUnits  = []string{"µm", "µm", "µm", "µm", "µm", "µm", "µm", "µm", "1", "pF"}
	OutputNames = []string{"G", "PM", "UGBW"}
)

// Stream salts, as in cnon: each seeded draw has its own stream.
const (
	saltMismatch = 0x6f70616d_00000001
	saltNoise    = 0x6f70616d_00000002
)

// Twin is the op-amp. Build it with New or through insitu.New with kind
// "opamp".
type Twin struct {
	cfg     Config
	proc    Process
	space   insitu.Space
	ngspice *ngspiceRunner // nil for the analytic backend

	noiseSeed uint64
	next      atomic.Uint64 // index of the next query, for its noise
}

// Space returns the input box.
func Space() insitu.Space {
	s := insitu.Space{
		Names: append([]string(nil), InputNames...),
		Units: append([]string(nil), InputUnits...),
		Lower: []float64{2, 0.2, 2, 0.2, 2, 0.2, 2, 0.2, 1, 0.1},
		Upper: []float64{32, 2, 32, 2, 32, 2, 32, 2, 3, 20},
	}
	return s
}

// New builds a twin. For the ngspice backend it resolves the binary now,
// so a missing ngspice is an error here rather than at the first query.
func New(cfg Config) (*Twin, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	t := &Twin{
		cfg:       cfg,
		proc:      DefaultProcess(),
		space:     Space(),
		noiseSeed: splitmix.Seed(cfg.Seed, saltNoise),
	}
	if s := cfg.Mismatch; s > 0 {
		rng := splitmix.Stream(cfg.Seed, saltMismatch)
		p := &t.proc
		p.KPn *= 1 + s*rng.NormFloat64()
		p.KPp *= 1 + s*rng.NormFloat64()
		p.VTn *= 1 + s*rng.NormFloat64()
		p.VTp *= 1 + s*rng.NormFloat64()
		p.LambdaN *= 1 + s*rng.NormFloat64()
		p.LambdaP *= 1 + s*rng.NormFloat64()
		// A 5σ draw at mismatch 0.5 could flip a sign: keep a transistor.
		p.KPn, p.KPp = max(p.KPn, 1e-6), max(p.KPp, 1e-6)
		p.LambdaN, p.LambdaP = max(p.LambdaN, 1e-3), max(p.LambdaP, 1e-3)
		p.VTn, p.VTp = max(p.VTn, 0.05), min(p.VTp, -0.05)
	}
	if cfg.Backend == Ngspice {
		bin, err := exec.LookPath(cfg.NgspicePath)
		if err != nil {
			return nil, fmt.Errorf("opamp: backend ngspice: binary %q not found (install it, e.g. `apt-get install -y ngspice`, or set the `ngspice` key to its path): %w", cfg.NgspicePath, err)
		}
		t.ngspice = &ngspiceRunner{bin: bin, timeout: cfg.Timeout}
	}
	return t, nil
}

// Config returns the configuration the twin was built with.
func (t *Twin) Config() Config { return t.cfg }

// Process returns the device parameters, mismatch included.
func (t *Twin) Process() Process { return t.proc }

// Spec describes the twin: the 10 sizing inputs, outputs G, PM, UGBW.
func (t *Twin) Spec() insitu.Spec {
	return insitu.Spec{Name: "opamp", In: Space(), Out: append([]string(nil), OutputNames...)}
}

// Skip moves the query counter, which indexes the noise streams, on by n
// (insitu.Sequenced): a resumed run's next query gets the noise it had in
// the uninterrupted run.
func (t *Twin) Skip(n uint64) { t.next.Add(n) }

// Query simulates sizing x (the ratio rounded) and returns [G, PM, UGBW]
// (plus noise, when enabled). x must lie in the input box.
func (t *Twin) Query(ctx context.Context, x []float64) ([]float64, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("opamp: %w", err)
	}
	if err := t.space.Contains(x); err != nil {
		return nil, fmt.Errorf("opamp: %w", err)
	}
	k := t.next.Add(1) - 1
	return t.query(ctx, x, k)
}

// QueryBatch answers xs on Workers (default GOMAXPROCS) goroutines, each
// running its own simulation. The results, noise included, equal calling
// Query on each x in order: the batch takes the next len(xs) query
// indices. Every x is checked before anything runs; the first error stops
// the batch and is returned.
func (t *Twin) QueryBatch(ctx context.Context, xs [][]float64) ([][]float64, error) {
	ys := make([][]float64, len(xs))
	err := batch.Run(ctx, "opamp", t.space, &t.next, xs, t.cfg.Workers, func(ctx context.Context, i int, k uint64) (err error) {
		ys[i], err = t.query(ctx, xs[i], k)
		return err
	})
	if err != nil {
		return nil, err
	}
	return ys, nil
}

// query runs query number k.
func (t *Twin) query(ctx context.Context, x []float64, k uint64) ([]float64, error) {
	s := SizingOf(x)
	var y [3]float64
	if t.ngspice != nil {
		var err error
		if y, err = t.ngspice.run(ctx, t.proc, s); err != nil {
			return nil, err
		}
	} else {
		y[0], y[1], y[2] = t.proc.Model(s).TF().Metrics()
	}
	if sd := t.cfg.OutputNoise; sd > 0 {
		// One stream per query index: reproducible in any worker order.
		rng := rand.New(rand.NewPCG(t.noiseSeed, splitmix.Mix(k^t.noiseSeed)))
		for i := range y {
			y[i] *= 1 + sd*rng.NormFloat64()
		}
	}
	return y[:], nil
}
