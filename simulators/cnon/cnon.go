// Package cnon is the twin of a coupled nonlinear oscillator network (CNON),
// registered as kind "cnon":
//
//	q̈_i = −sin q_i + Σ_{j≠i} J_ij (sin q_j − sin q_i) + e_i,   q̇(0) = 0,
//
// in matrix form q̈ = −sin q + Q sin q + e with J = (C + Cᵀ)/2, Q_ij = J_ij
// off the diagonal and Q_ii = −Σ_{j≠i} J_ij. The coupling C and the drive e
// are drawn once from the seed. The input is x = q(0) ∈ [−1, 1]^N and the
// output y = q(T), integrated with classic RK4 on (q, p = q̇).
//
// The exact vector-Jacobian product (VJP) is the discrete adjoint of the RK4
// scheme itself, so it is the derivative of the map the twin computes, not
// of the continuous flow: it agrees with finite differences of Query to
// rounding error.
//
// Reality-gap options, all off by default, make the twin differ from the
// ideal model the way hardware does: η puts sin((1+η)q) in place of sin q
// (in both the restoring and the coupling term), coupling_noise adds a fixed
// seeded perturbation to C, and input_noise and output_noise add fresh
// Gaussian noise to q(0) and q(T) at every query. The noise of query k (k
// counting from 0 over the twin's life, QueryBatch taking consecutive
// indices in order) is a function of the seed and k only, so a given seed
// and sequence of queries reproduce bit for bit.
//
// A Twin is safe for concurrent use.
package cnon

import (
	"context"
	"fmt"
	"math"
	"sync/atomic"

	"github.com/insitu-lab/insitu"
	"github.com/insitu-lab/insitu/internal/splitmix"
	"github.com/insitu-lab/insitu/simulators/batch"
)

// Stream salts: each seeded draw has its own stream, so turning one option
// on leaves the others' draws unchanged.
const (
	saltConstants = 0x636e6f6e_00000001 // C then e
	saltCoupling  = 0x636e6f6e_00000002 // coupling perturbation
	saltNoise     = 0x636e6f6e_00000003 // per-query noise
	saltTarget    = 0x636e6f6e_00000004 // Target's reference input
)

// Twin is a CNON. Build it with New or through insitu.New with kind "cnon".
type Twin struct {
	cfg   Config
	n     int
	a     float64   // 1+η
	c     []float64 // N×N row-major, perturbation included
	e     []float64 // drive
	m     []float64 // N×N row-major: Q − I, so that q̈ = M·sin(aq) + e; symmetric
	space insitu.Space
	out   []string

	noisy     bool
	noiseSeed uint64
	next      atomic.Uint64 // index of the next query, for its noise
	ig        *Integrator
}

// New builds a twin, drawing its constants from cfg.Seed.
func New(cfg Config) (*Twin, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	n := cfg.N
	t := &Twin{
		cfg:       cfg,
		n:         n,
		a:         1 + cfg.Eta,
		c:         make([]float64, n*n),
		e:         make([]float64, n),
		m:         make([]float64, n*n),
		noisy:     cfg.InputNoise > 0 || cfg.OutputNoise > 0,
		noiseSeed: splitmix.Seed(cfg.Seed, saltNoise),
	}

	// C and e come from one stream in a fixed order, so they depend only on
	// the seed and N, not on c0…e1.
	rng := splitmix.Stream(cfg.Seed, saltConstants)
	for i := range t.c {
		t.c[i] = cfg.C0 + cfg.C1*(2*rng.Float64()-1)
	}
	for i := range t.e {
		t.e[i] = cfg.E0 + cfg.E1*(2*rng.Float64()-1)
	}
	if cfg.CouplingNoise > 0 {
		rng := splitmix.Stream(cfg.Seed, saltCoupling)
		for i := range t.c {
			t.c[i] += cfg.CouplingNoise * rng.NormFloat64()
		}
	}

	// M = Q − I. J_ij = (C_ij + C_ji)/2 is bitwise symmetric (addition
	// commutes), hence so is M, which the adjoint relies on to read Mᵀ as M.
	for i := range n {
		var row float64
		for j := range n {
			if j == i {
				continue
			}
			jij := (t.c[i*n+j] + t.c[j*n+i]) / 2
			t.m[i*n+j] = jij
			row += jij
		}
		t.m[i*n+i] = -row - 1
	}

	t.space = insitu.Box(n, -1, 1)
	t.space.Names = make([]string, n)
	t.space.Units = make([]string, n)
	t.out = make([]string, n)
	for i := range n {
		t.space.Names[i] = fmt.Sprintf("q0[%d]", i)
		t.space.Units[i] = "rad"
		t.out[i] = fmt.Sprintf("qT[%d]", i)
	}
	t.ig = newIntegrator(t.m, n, cfg.Steps, cfg.Horizon, t.a)
	return t, nil
}

// Config returns the configuration the twin was built with.
func (t *Twin) Config() Config { return t.cfg }

// Coupling returns a copy of C (N×N, row-major) as the system uses it,
// coupling perturbation included.
func (t *Twin) Coupling() []float64 { return append([]float64(nil), t.c...) }

// Drive returns a copy of e.
func (t *Twin) Drive() []float64 { return append([]float64(nil), t.e...) }

// Spec describes the twin: inputs q0[i] ∈ [−1, 1] rad, outputs qT[i] in
// rad (angles, as the inputs are).
func (t *Twin) Spec() insitu.Spec {
	units := make([]string, len(t.out))
	for i := range units {
		units[i] = "rad"
	}
	return insitu.Spec{Name: "cnon", In: t.space.Clone(), Out: append([]string(nil), t.out...), OutUnits: units}
}

// Skip moves the query counter, which indexes the noise streams, on by n
// (insitu.Sequenced): a resumed run's next query gets the noise it had in
// the uninterrupted run.
func (t *Twin) Skip(n uint64) { t.next.Add(n) }

// Query integrates from q(0) = x (plus input noise, when enabled) and
// returns q(T) (plus measurement noise, when enabled). x must lie in the
// input box.
func (t *Twin) Query(ctx context.Context, x []float64) ([]float64, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("cnon: %w", err)
	}
	if err := t.space.Contains(x); err != nil {
		return nil, fmt.Errorf("cnon: %w", err)
	}
	k := t.next.Add(1) - 1
	w := t.ig.Get()
	defer t.ig.Put(w)
	y := make([]float64, t.n)
	t.query(w, x, k, y)
	return y, nil
}

// QueryBatch answers xs on runtime.GOMAXPROCS goroutines. The results,
// noise included, are bit-identical to calling Query on each x in order:
// the batch takes the next len(xs) query indices. Every x is checked
// before anything runs; on cancellation the indices stay used.
func (t *Twin) QueryBatch(ctx context.Context, xs [][]float64) ([][]float64, error) {
	ys := make([][]float64, len(xs))
	err := batch.Run(ctx, "cnon", t.space, &t.next, xs, 0, func(_ context.Context, i int, k uint64) error {
		w := t.ig.Get()
		defer t.ig.Put(w)
		ys[i] = make([]float64, t.n)
		t.query(w, xs[i], k, ys[i])
		return nil
	})
	if err != nil {
		return nil, err
	}
	return ys, nil
}

// query runs query number k from x into y.
func (t *Twin) query(w *Work, x []float64, k uint64, y []float64) {
	t.load(w, x)
	if t.noisy {
		// One stream per query index: reproducible whatever the order in
		// which concurrent workers run. Input noise first, then output.
		splitmix.QueryPCG(w.pcg, t.noiseSeed, k)
		if s := t.cfg.InputNoise; s > 0 {
			for i := range w.Q {
				w.Q[i] += s * w.rng.NormFloat64()
			}
		}
	}
	t.ig.Integrate(w)
	copy(y, w.Q)
	if s := t.cfg.OutputNoise; t.noisy && s > 0 {
		for i := range y {
			y[i] += s * w.rng.NormFloat64()
		}
	}
}

// Noiseless returns q(T) for q(0) = x without any noise, whatever the
// configuration: the map that VJP differentiates. x must have length N but
// need not lie in the box. It does not advance the noise streams.
func (t *Twin) Noiseless(x []float64) []float64 {
	t.mustLen("Noiseless", x)
	w := t.ig.Get()
	defer t.ig.Put(w)
	t.load(w, x)
	t.ig.Integrate(w)
	return append([]float64(nil), w.Q...)
}

// load sets q(0) = x, p(0) = 0 and the twin's drive.
func (t *Twin) load(w *Work, x []float64) {
	copy(w.Q, x)
	clear(w.P)
	copy(w.E, t.e)
}

// Integrator returns the twin's integrator (its coupling, η and horizon),
// for networks built on the same equations with other drives.
func (t *Twin) Integrator() *Integrator { return t.ig }

// VJP returns J(x)ᵀ·v, where J is the Jacobian of the noiseless map
// x ↦ q(T) (η and the coupling perturbation included: they are part of the
// system). It is the discrete adjoint of the RK4 steps, so it is exact for
// the map Query computes, up to rounding.
func (t *Twin) VJP(ctx context.Context, x, v []float64) ([]float64, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("cnon: %w", err)
	}
	if err := t.space.Contains(x); err != nil {
		return nil, fmt.Errorf("cnon: %w", err)
	}
	if len(v) != t.n {
		return nil, fmt.Errorf("cnon: cotangent has %d components, want %d", len(v), t.n)
	}
	for i, vi := range v {
		if math.IsNaN(vi) || math.IsInf(vi, 0) {
			return nil, fmt.Errorf("cnon: cotangent component %d (%s) is %v", i, t.out[i], vi)
		}
	}
	w := t.ig.Get()
	defer t.ig.Put(w)
	t.load(w, x)
	t.ig.Forward(w)
	g := make([]float64, t.n)
	t.ig.Adjoint(w, v, g, nil)
	return g, nil
}

// Jacobian returns ∂q(T)/∂q(0) of the noiseless map at x, N×N row-major
// (entry i·N+j is ∂y_i/∂x_j): one forward pass and N adjoint passes. x must
// have length N but need not lie in the box.
func (t *Twin) Jacobian(x []float64) []float64 {
	t.mustLen("Jacobian", x)
	n := t.n
	w := t.ig.Get()
	defer t.ig.Put(w)
	t.load(w, x)
	t.ig.Forward(w)
	jac := make([]float64, n*n)
	v := make([]float64, n)
	for i := range n {
		v[i] = 1
		t.ig.Adjoint(w, v, jac[i*n:(i+1)*n], nil)
		v[i] = 0
	}
	return jac
}

// Trajectory returns the noiseless states at t = 0, dt, …, T: q[s] and p[s]
// after s steps (Steps+1 rows of N). x must have length N.
func (t *Twin) Trajectory(x []float64) (q, p [][]float64) {
	t.mustLen("Trajectory", x)
	w := t.ig.Get()
	defer t.ig.Put(w)
	t.load(w, x)
	steps := t.cfg.Steps
	q = make([][]float64, steps+1)
	p = make([][]float64, steps+1)
	q[0], p[0] = append([]float64(nil), w.Q...), append([]float64(nil), w.P...)
	for s := 1; s <= steps; s++ {
		t.ig.step(w, nil)
		q[s], p[s] = append([]float64(nil), w.Q...), append([]float64(nil), w.P...)
	}
	return q, p
}

// Energy returns each oscillator's energy ½p_i² − cos(a·q_i)/a − e_i·q_i
// with a = 1+η. Without coupling (C = 0) each is a constant of the motion,
// which the tests use to check the integrator; with coupling they exchange
// energy and the sum is not conserved either (the coupling force is not a
// gradient).
func (t *Twin) Energy(q, p []float64) []float64 {
	t.mustLen("Energy", q)
	t.mustLen("Energy", p)
	en := make([]float64, t.n)
	for i := range en {
		en[i] = p[i]*p[i]/2 - math.Cos(t.a*q[i])/t.a - t.e[i]*q[i]
	}
	return en
}

// Target returns a reference input drawn uniformly from the box with seed,
// and qTarget = Noiseless(xRef): a target the twin can reach exactly.
func (t *Twin) Target(seed uint64) (xRef, qTarget []float64) {
	rng := splitmix.Stream(seed, saltTarget)
	xRef = make([]float64, t.n)
	for i := range xRef {
		xRef[i] = 2*rng.Float64() - 1
	}
	return xRef, t.Noiseless(xRef)
}

func (t *Twin) mustLen(method string, x []float64) {
	if len(x) != t.n {
		panic(fmt.Sprintf("cnon: %s: vector of length %d, twin has N = %d", method, len(x), t.n))
	}
}

// Distance is the objective ‖y − Target‖₂ (paper eq. 12).
type Distance struct{ Target []float64 }

// Value returns ‖y − Target‖₂.
func (d Distance) Value(y []float64) float64 {
	d.mustLen(y)
	var s float64
	for i, yi := range y {
		r := yi - d.Target[i]
		s += r * r
	}
	return math.Sqrt(s)
}

// Grad returns ∂‖y − Target‖₂/∂y = (y − Target)/‖y − Target‖₂, and zeros
// at y = Target, where the norm has no gradient but zero is a subgradient
// and the minimum.
func (d Distance) Grad(y []float64) []float64 {
	g := make([]float64, len(y))
	r := d.Value(y)
	if r == 0 {
		return g
	}
	for i, yi := range y {
		g[i] = (yi - d.Target[i]) / r
	}
	return g
}

func (d Distance) mustLen(y []float64) {
	if len(y) != len(d.Target) {
		panic(fmt.Sprintf("cnon: Distance: output of length %d, target of length %d", len(y), len(d.Target)))
	}
}
