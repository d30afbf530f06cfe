package pnn

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync/atomic"

	"github.com/insitu-lab/insitu"
	"github.com/insitu-lab/insitu/internal/splitmix"
	"github.com/insitu-lab/insitu/simulators/batch"
	"github.com/insitu-lab/insitu/simulators/cnon"
)

// Stream salts of pnn-cnon.
const (
	saltCNONEncoding = 0x706e6e63_00000001
	saltCNONNoise    = 0x706e6e63_00000002
)

// CNONConfig configures a pnn-cnon twin. The mapstructure tags are the keys
// of a configuration file's blackbox section.
type CNONConfig struct {
	N       int     `mapstructure:"n" doc:"oscillators"`
	Inputs  int     `mapstructure:"inputs" doc:"du: data features u"`
	Classes int     `mapstructure:"classes" doc:"C: class scores, one per contiguous group of oscillators"`
	Horizon float64 `mapstructure:"horizon" doc:"integration time T"`
	Steps   int     `mapstructure:"steps" doc:"RK4 steps"`

	// Coupling C = c0·ones + c1·U(−1,1), drawn from Seed exactly as package
	// cnon draws it.
	C0 float64 `mapstructure:"c0" doc:"coupling C = c0·ones + c1·U(−1, 1), drawn from seed as the cnon twin draws it"`
	C1 float64 `mapstructure:"c1" doc:"random part of the coupling"`

	InputScale float64 `mapstructure:"input_scale" doc:"|q(0)_i| ≤ input_scale for u in [−1, 1]^du"`
	DriveRange float64 `mapstructure:"drive_range" doc:"θ: the drives e, in [−drive_range, drive_range]"`
	Gain       float64 `mapstructure:"gain" doc:"score = gain·Σ over the group of q_i(T)"`
	Seed       uint64  `mapstructure:"seed" doc:"coupling, encoding, perturbation and noise"`

	// Reality gap, off by default. Eta and CouplingNoise change the system
	// (VJP includes them); InputNoise is fresh Gaussian noise on u at every
	// query (VJP ignores it).
	Eta           float64 `mapstructure:"eta" doc:"reality gap: nonlinearity sin((1+η)q)"`
	CouplingNoise float64 `mapstructure:"coupling_noise" doc:"reality gap: std of a fixed seeded perturbation of C"`
	InputNoise    float64 `mapstructure:"input_noise" doc:"std of Gaussian noise on u, every query"`
}

// DefaultCNONConfig returns the ideal twin: 8 oscillators, 2 inputs, 2
// classes, T = 3 in 30 steps, c0 = c1 = 0.1, input_scale 1, drives in
// [−0.5, 0.5], gain 1, seed 1.
func DefaultCNONConfig() CNONConfig {
	return CNONConfig{N: 8, Inputs: 2, Classes: 2, Horizon: 3, Steps: 30, C0: 0.1, C1: 0.1,
		InputScale: 1, DriveRange: 0.5, Gain: 1, Seed: 1}
}

// Ideal returns c without its reality gap.
func (c CNONConfig) Ideal() CNONConfig {
	c.Eta, c.CouplingNoise, c.InputNoise = 0, 0, 0
	return c
}

func (c CNONConfig) problems() *insitu.Problems {
	p := &insitu.Problems{Kind: "pnn-cnon"}
	if c.N < 1 || c.N > 256 {
		p.Add("n", "must be in [1, 256], got %d", c.N)
	}
	if c.Inputs < 1 || c.Inputs > 1024 {
		p.Add("inputs", "must be in [1, 1024], got %d", c.Inputs)
	}
	if c.Classes < 1 || (c.N >= 1 && c.Classes > c.N) {
		p.Add("classes", "must be in [1, n = %d], got %d", c.N, c.Classes)
	}
	if !finite(c.Horizon) || c.Horizon <= 0 {
		p.Add("horizon", "must be positive and finite, got %v", c.Horizon)
	}
	if c.Steps < 1 || c.Steps > 100_000 {
		p.Add("steps", "must be in [1, 100000], got %d", c.Steps)
	}
	for _, f := range []struct {
		k string
		v float64
	}{{"c0", c.C0}, {"c1", c.C1}} {
		if !finite(f.v) {
			p.Add(f.k, "must be finite, got %v", f.v)
		}
	}
	for _, f := range []struct {
		k string
		v float64
	}{{"input_scale", c.InputScale}, {"drive_range", c.DriveRange}, {"gain", c.Gain}} {
		if !finite(f.v) || f.v <= 0 {
			p.Add(f.k, "must be positive and finite, got %v", f.v)
		}
	}
	if !finite(c.Eta) || c.Eta <= -1 {
		p.Add("eta", "must be finite and > −1, got %v", c.Eta)
	}
	for _, f := range []struct {
		k string
		v float64
	}{{"coupling_noise", c.CouplingNoise}, {"input_noise", c.InputNoise}} {
		if !finite(f.v) || f.v < 0 {
			p.Add(f.k, "must be a finite standard deviation ≥ 0, got %v", f.v)
		}
	}
	return p
}

// Validate reports every problem, each a *ConfigError naming its key.
func (c CNONConfig) Validate() error { return c.problems().Err() }

// CNONTwin is the pnn-cnon twin. It is safe for concurrent use.
type CNONTwin struct {
	cfg    CNONConfig
	n, du  int
	ig     *cnon.Integrator // package cnon's equations, coupling and gap
	enc    []float64        // N×du: q(0) = enc·u
	group  []int            // oscillator → class
	space  insitu.Space
	out    []string
	next   atomic.Uint64
	nSeed  uint64
	hasGap bool
}

// NewCNON builds a pnn-cnon twin. The coupling is that of the cnon twin
// with the same n, c0, c1, seed and coupling_noise.
func NewCNON(cfg CNONConfig) (*CNONTwin, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ct, err := cnon.New(cnon.Config{N: cfg.N, Horizon: cfg.Horizon, Steps: cfg.Steps,
		C0: cfg.C0, C1: cfg.C1, Seed: cfg.Seed, Eta: cfg.Eta, CouplingNoise: cfg.CouplingNoise})
	if err != nil {
		return nil, fmt.Errorf("pnn-cnon: %w", err)
	}
	n, du := cfg.N, cfg.Inputs
	t := &CNONTwin{cfg: cfg, n: n, du: du, ig: ct.Integrator(), enc: make([]float64, n*du), group: make([]int, n),
		nSeed: cfg.Seed, hasGap: cfg.Eta != 0 || cfg.CouplingNoise != 0 || cfg.InputNoise != 0}
	rng := splitmix.Stream(cfg.Seed, saltCNONEncoding)
	for i := range n {
		var s float64
		row := t.enc[i*du : (i+1)*du]
		for j := range row {
			row[j] = 2*rng.Float64() - 1
			s += math.Abs(row[j])
		}
		for j := range row {
			row[j] *= cfg.InputScale / s
		}
	}
	for i := range n {
		t.group[i] = i * cfg.Classes / n
	}
	t.space = space(du, n, -cfg.DriveRange, cfg.DriveRange, "", false)
	t.out = outNames(cfg.Classes)
	return t, nil
}

// Config returns the configuration.
func (t *CNONTwin) Config() CNONConfig { return t.cfg }

// Ideal returns the twin built from the same configuration without the
// reality gap (same coupling draw, encoding and readout).
func (t *CNONTwin) Ideal() *CNONTwin {
	it, err := NewCNON(t.cfg.Ideal())
	if err != nil {
		panic("pnn-cnon: ideal config invalid: " + err.Error()) // cannot happen: a subset of a valid config
	}
	return it
}

// Split returns du and dθ = N.
func (t *CNONTwin) Split() (du, dtheta int) { return t.du, t.n }

// Classes returns C.
func (t *CNONTwin) Classes() int { return t.cfg.Classes }

// Encoding returns a copy of the N×du encoding matrix (row-major).
func (t *CNONTwin) Encoding() []float64 { return append([]float64(nil), t.enc...) }

// Spec: inputs u0… ∈ [−1,1], theta0… = drives; outputs c0….
func (t *CNONTwin) Spec() insitu.Spec { return copySpec("pnn-cnon", t.space, t.out) }

// Skip moves the query counter, which indexes the noise streams, on by n
// (insitu.Sequenced): a resumed run's next query gets the noise it had in
// the uninterrupted run.
func (t *CNONTwin) Skip(n uint64) { t.next.Add(n) }

// Query returns the class scores of x = [u; θ] (with input noise, when on).
func (t *CNONTwin) Query(ctx context.Context, x []float64) ([]float64, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("pnn-cnon: %w", err)
	}
	if err := t.space.Contains(x); err != nil {
		return nil, fmt.Errorf("pnn-cnon: %w", err)
	}
	k := t.next.Add(1) - 1
	return t.eval(x, k, true), nil
}

// QueryBatch answers xs in parallel, bit-identical to Query in order.
func (t *CNONTwin) QueryBatch(ctx context.Context, xs [][]float64) ([][]float64, error) {
	ys := make([][]float64, len(xs))
	if err := batch.Run(ctx, "pnn-cnon", t.space, &t.next, xs, 0, func(_ context.Context, i int, k uint64) error {
		ys[i] = t.eval(xs[i], k, true)
		return nil
	}); err != nil {
		return nil, err
	}
	return ys, nil
}

// Noiseless returns the scores of x without input noise: the map VJP
// differentiates. x need not lie in the box.
func (t *CNONTwin) Noiseless(x []float64) []float64 {
	if len(x) != t.du+t.n {
		panic(fmt.Sprintf("pnn-cnon: Noiseless: input of length %d, want %d", len(x), t.du+t.n))
	}
	return t.eval(x, 0, false)
}

func (t *CNONTwin) eval(x []float64, k uint64, noisy bool) []float64 {
	w := t.ig.Get()
	defer t.ig.Put(w)
	t.load(w, x, k, noisy)
	t.ig.Integrate(w)
	return t.readout(w.Q)
}

// load sets q(0) = enc·u (u noisy if asked) and e = θ; Get set p(0) = 0.
func (t *CNONTwin) load(w *cnon.Work, x []float64, k uint64, noisy bool) {
	u := x[:t.du]
	if noisy && t.cfg.InputNoise > 0 {
		u = slices.Clone(u)
		rng := splitmix.Query(t.nSeed, saltCNONNoise, k)
		for j := range u {
			u[j] += t.cfg.InputNoise * rng.NormFloat64()
		}
	}
	for i := range t.n {
		var s float64
		for j, uj := range u {
			s += t.enc[i*t.du+j] * uj
		}
		w.Q[i] = s
	}
	copy(w.E, x[t.du:])
}

func (t *CNONTwin) readout(q []float64) []float64 {
	y := make([]float64, t.cfg.Classes)
	for i, qi := range q {
		y[t.group[i]] += qi
	}
	for c := range y {
		y[c] *= t.cfg.Gain
	}
	return y
}

// VJP returns J(x)ᵀ·v of the noiseless map x = [u; θ] ↦ scores: the
// discrete adjoint of the RK4 steps (η and the coupling perturbation
// included). Its last dθ entries are the θ-gradient.
func (t *CNONTwin) VJP(ctx context.Context, x, v []float64) ([]float64, error) {
	if err := checkVJP(ctx, "pnn-cnon", t.space, t.out, x, v); err != nil {
		return nil, err
	}
	w := t.ig.Get()
	defer t.ig.Put(w)
	t.load(w, x, 0, false)
	t.ig.Forward(w)
	lq := make([]float64, t.n)
	for i := range lq {
		lq[i] = t.cfg.Gain * v[t.group[i]]
	}
	g := make([]float64, t.du+t.n)
	t.ig.Adjoint(w, lq, lq, g[t.du:]) // λq(0) over the cotangent, ē into the θ slots
	for j := range t.du {             // ū = encᵀ·λq(0)
		var s float64
		for i := range t.n {
			s += t.enc[i*t.du+j] * lq[i]
		}
		g[j] = s
	}
	return g, nil
}

func init() {
	insitu.RegisterKeys("pnn-cnon", func() any { c := DefaultCNONConfig(); return &c })
	insitu.Register("pnn-cnon", func(_ context.Context, p insitu.Params) (insitu.BlackBox, error) {
		cfg := DefaultCNONConfig()
		if err := p.Decode(&cfg); err != nil {
			return nil, err
		}
		if err := cfg.problems().In(p); err != nil {
			return nil, err
		}
		return NewCNON(cfg)
	})
}
