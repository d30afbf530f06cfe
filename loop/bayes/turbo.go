package bayes

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"

	"gonum.org/v1/gonum/mat"
)

// TurboConfig holds TuRBO-1's trust-region rule (Eriksson et al. 2019,
// their defaults).
type TurboConfig struct {
	Length    float64 `mapstructure:"length" yaml:"length" doc:"initial side of the trust region, in box widths (0.8)"`
	MinLength float64 `mapstructure:"min_length" yaml:"min_length" doc:"a region smaller than this restarts on a fresh design (0.5⁷)"`
	MaxLength float64 `mapstructure:"max_length" yaml:"max_length" doc:"the side never grows beyond this (1.6)"`
	SuccTol   int     `mapstructure:"succ_tol" yaml:"succ_tol" doc:"improving batches in a row that double the side (3)"`
	// FailTol: failures in a row that halve it; 0: ⌈max(4, d)/q⌉ for
	// batches of q points.
	FailTol int `mapstructure:"fail_tol" yaml:"fail_tol" doc:"failing batches in a row that halve the side; 0: ⌈max(4, d)/q⌉ for batches of q points"`
	// MaxPoints bounds the local GP: the points nearest the region's centre
	// among those measured since the last restart.
	MaxPoints int `mapstructure:"max_points" yaml:"max_points" doc:"the local GP's points at most: those nearest the region's centre since the last restart"`
	// Perturb is how many coordinates a candidate changes on average
	// (probability min(1, Perturb/d) each, at least one): in thousands of
	// dimensions a candidate that moves every coordinate is never better.
	Perturb float64 `mapstructure:"perturb" yaml:"perturb" doc:"coordinates a candidate moves on average (each with probability min(1, perturb/d), at least one)"`
}

// DefaultTurboConfig is the paper's rule with a local GP of at most 200
// points and 20 perturbed coordinates.
func DefaultTurboConfig() TurboConfig {
	return TurboConfig{Length: 0.8, MinLength: 1.0 / 128, MaxLength: 1.6, SuccTol: 3, MaxPoints: 200, Perturb: 20}
}

// Validate reports every bad setting, naming it by its config key.
func (c TurboConfig) Validate() error {
	var errs []error
	if !(c.MinLength > 0) || !(c.Length > c.MinLength) || !(c.MaxLength >= c.Length) || math.IsInf(c.MaxLength, 0) {
		errs = append(errs, fmt.Errorf("turbo.min_length, length, max_length: %v, %v, %v: want 0 < min_length < length ≤ max_length", c.MinLength, c.Length, c.MaxLength))
	}
	if c.SuccTol < 1 || c.SuccTol > 1000 {
		errs = append(errs, fmt.Errorf("turbo.succ_tol: %d: want 1 to 1000", c.SuccTol))
	}
	if c.FailTol < 0 || c.FailTol > 100_000 {
		errs = append(errs, fmt.Errorf("turbo.fail_tol: %d: want 0 (automatic) to 100000", c.FailTol))
	}
	if c.MaxPoints < 2 || c.MaxPoints > 100_000 {
		errs = append(errs, fmt.Errorf("turbo.max_points: %d: want 2 to 100000", c.MaxPoints))
	}
	if !(c.Perturb > 0) || math.IsInf(c.Perturb, 0) {
		errs = append(errs, fmt.Errorf("turbo.perturb: %v: want a count > 0", c.Perturb))
	}
	return errors.Join(errs...)
}

// Turbo is TuRBO-1: a trust region around the best point since the last
// restart, sampled by Thompson sampling from a local GP, its side doubled
// after SuccTol improving batches and halved after FailTol failing ones;
// when it collapses below MinLength the caller restarts it on a fresh
// design.
type Turbo struct {
	cfg     Config
	tc      TurboConfig
	d, q    int
	failTol int
	gp      *GP
	src     *rand.PCG
	rng     *rand.Rand

	length     float64
	succ, fail int
	restarts   int
	hyper      *Hyper // the last fit's, the next fit's warm start

	// dist[i][j], j < i: summed squared distances between the region's
	// points, which only grow between restarts, so each pair is computed
	// once, not at every iteration's local GP.
	dist [][]float64
}

// distances extends the distance cache to the points us.
func (t *Turbo) distances(us [][]float64) {
	for i := len(t.dist); i < len(us); i++ {
		row := make([]float64, i)
		for j := range i {
			row[j] = t.gp.dist(us[i], us[j])
		}
		t.dist = append(t.dist, row)
	}
}

func (t *Turbo) pair(i, j int) float64 {
	if i < j {
		i, j = j, i
	}
	return t.dist[i][j]
}

// NewTurbo returns TuRBO-1 on d unit-box coordinates proposing batches of
// q points, seeded.
func NewTurbo(d int, periodic []bool, q int, cfg Config, tc TurboConfig, seed, stream uint64) *Turbo {
	src := rand.NewPCG(seed, stream)
	t := &Turbo{cfg: cfg, tc: tc, d: d, q: max(q, 1), gp: NewGP(d, periodic, cfg.ARD), src: src, rng: rand.New(src), length: tc.Length}
	t.failTol = tc.FailTol
	if t.failTol == 0 {
		t.failTol = int(math.Ceil(float64(max(4, d)) / float64(t.q)))
	}
	return t
}

// Length is the region's side; Restarts how many times it collapsed.
func (t *Turbo) Length() float64 { return t.length }
func (t *Turbo) Restarts() int   { return t.restarts }

// Suggest returns the next batch: q points of the trust region around the
// best of (us, ys) — the points measured since the last restart, in the
// order they were measured — each the minimizer of one joint posterior
// sample over the candidates.
func (t *Turbo) Suggest(us [][]float64, ys []float64) ([][]float64, error) {
	us, ys = finite(us, ys)
	if len(us) < len(t.dist) {
		return nil, fmt.Errorf("bayes: turbo had %d points, now %d: Restart between regions", len(t.dist), len(us))
	}
	if len(us) < 2 {
		return nil, fmt.Errorf("bayes: turbo needs 2 finite points, have %d", len(us))
	}
	bi := 0
	for i, y := range ys {
		if y < ys[bi] {
			bi = i
		}
	}
	center := us[bi]
	t.distances(us)
	// The local GP: the MaxPoints points nearest the centre.
	idx := make([]int, len(us))
	dist := make([]float64, len(us))
	for i := range us {
		idx[i] = i
		if i != bi {
			dist[i] = t.pair(i, bi)
		}
	}
	sort.SliceStable(idx, func(a, b int) bool { return dist[idx[a]] < dist[idx[b]] })
	idx = idx[:min(len(idx), t.tc.MaxPoints)]
	slices.Sort(idx) // measurement order: the fit does not depend on ties
	g := NewGP(t.d, t.gp.periodic, t.cfg.ARD)
	restarts := t.cfg.Restarts
	if t.hyper != nil {
		// Warm start from the last fit: the region's data change by a
		// batch at a time.
		g.h, restarts = *t.hyper, 1
	}
	for k, i := range idx {
		var row []float64
		if g.nl == 1 {
			row = make([]float64, k)
			for b, j := range idx[:k] {
				row[b] = t.pair(i, j)
			}
		}
		if err := g.add(us[i], ys[i], row); err != nil {
			return nil, err
		}
	}
	if err := g.Fit(t.rng, restarts); err != nil {
		return nil, err
	}
	t.gp = g
	h := g.Hyper()
	t.hyper = &h

	// The region: side length·w_i around the centre, w the lengthscales
	// over their geometric mean (all 1 for one lengthscale).
	w := make([]float64, t.d)
	var lsum float64
	for _, l := range h.LogLength {
		lsum += l
	}
	gm := lsum / float64(len(h.LogLength))
	for i := range w {
		w[i] = math.Exp(h.LogLength[g.li(i)] - gm)
	}
	cands := t.candidates(center, w)
	mu, cov := t.posterior(g, center, cands)
	return t.thompson(cands, mu, cov), nil
}

// candidate is a point of the region: the centre with the coordinates
// moved changed.
type candidate struct {
	u     []float64
	moved []int // ascending
}

// posterior is the GP's joint posterior over the candidates, with each
// covariance computed from the moved coordinates only: a candidate's
// squared distance to a point is the centre's plus the change along the
// moved coordinates (O(moved) instead of O(d) in thousands of dimensions).
func (t *Turbo) posterior(g *GP, center []float64, cs []candidate) ([]float64, *mat.SymDense) {
	il2 := invL2(g.h.LogLength)
	s := math.Exp(g.h.LogSignal)
	base := make([]float64, g.Len())
	for a, x := range g.x {
		base[a] = g.r2(x, center, il2)
	}
	col := func(c int, k []float64) {
		cd := cs[c]
		for a, x := range g.x {
			r2 := base[a]
			for _, j := range cd.moved {
				r2 += (g.d2(j, x[j], cd.u[j]) - g.d2(j, x[j], center[j])) * il2[g.li(j)]
			}
			k[a], _ = matern(s, max(r2, 0))
		}
	}
	// Two candidates differ where either moved: along a coordinate only one
	// moved, by that one's offset from the centre (precomputed); only the
	// few coordinates both moved need a new distance.
	off := make([][]float64, len(cs))
	tot := make([]float64, len(cs))
	for c, cd := range cs {
		off[c] = make([]float64, len(cd.moved))
		for k, j := range cd.moved {
			off[c][k] = g.d2(j, cd.u[j], center[j]) * il2[g.li(j)]
			tot[c] += off[c][k]
		}
	}
	cross := func(a, b int) float64 {
		ca, cb := cs[a], cs[b]
		r2 := tot[a] + tot[b]
		i, j := 0, 0
		for i < len(ca.moved) && j < len(cb.moved) {
			switch {
			case ca.moved[i] < cb.moved[j]:
				i++
			case cb.moved[j] < ca.moved[i]:
				j++
			default:
				k := ca.moved[i]
				r2 += g.d2(k, ca.u[k], cb.u[k])*il2[g.li(k)] - off[a][i] - off[b][j]
				i++
				j++
			}
		}
		kv, _ := matern(s, max(r2, 0))
		return kv
	}
	return g.posterior(len(cs), col, cross)
}

// candidates draws Candidates points of the region: each copies the centre
// and moves a random subset of coordinates uniformly within the region
// (clipped to the box; a periodic coordinate wraps).
func (t *Turbo) candidates(center, w []float64) []candidate {
	p := math.Min(1, t.tc.Perturb/float64(t.d))
	cs := make([]candidate, t.cfg.Candidates)
	for c := range cs {
		u := append([]float64(nil), center...)
		var moved []int
		for i := range u {
			if t.rng.Float64() < p {
				u[i] = t.move(i, center[i], w[i])
				moved = append(moved, i)
			}
		}
		if len(moved) == 0 {
			i := t.rng.IntN(t.d)
			u[i] = t.move(i, center[i], w[i])
			moved = append(moved, i)
		}
		cs[c] = candidate{u, moved}
	}
	return cs
}

func (t *Turbo) move(i int, c, w float64) float64 {
	half := t.length * w / 2
	if t.gp.periodic[i] {
		v := c - half + 2*half*t.rng.Float64()
		return v - math.Floor(v)
	}
	lo, hi := math.Max(0, c-half), math.Min(1, c+half)
	return lo + (hi-lo)*t.rng.Float64()
}

// thompson draws q joint samples of the posterior over the candidates and
// takes each sample's minimizer (a candidate already taken gives way to
// the sample's next best).
func (t *Turbo) thompson(cands []candidate, mu []float64, cov *mat.SymDense) [][]float64 {
	m := len(cands)
	// Jitter relative to the largest variance: the candidates can be near
	// duplicates.
	var top float64
	for i := range m {
		top = max(top, cov.At(i, i))
	}
	var ch mat.Cholesky
	jit := 1e-10 * max(top, 1e-300)
	for !ch.Factorize(cov) {
		for i := range m {
			cov.SetSym(i, i, cov.At(i, i)+jit)
		}
		jit *= 10
	}
	var l mat.TriDense
	ch.LTo(&l)
	taken := map[int]bool{}
	var out [][]float64
	eps := make([]float64, m)
	f := mat.NewVecDense(m, nil)
	order := make([]int, m)
	for range min(t.q, m) {
		for i := range eps {
			eps[i] = t.rng.NormFloat64()
		}
		f.MulVec(&l, mat.NewVecDense(m, eps))
		for i := range order {
			order[i] = i
		}
		s := f.RawVector().Data
		sort.SliceStable(order, func(a, b int) bool { return mu[order[a]]+s[order[a]] < mu[order[b]]+s[order[b]] })
		for _, i := range order {
			if !taken[i] {
				taken[i] = true
				out = append(out, cands[i].u)
				break
			}
		}
	}
	return out
}

// Update applies the trust-region rule after a batch: prevBest is the best
// objective before the batch (since the last restart), batch the batch's
// values. It reports whether the region collapsed: the caller then
// measures a fresh design and calls Restart.
func (t *Turbo) Update(prevBest float64, batch []float64) (restart bool) {
	best := math.Inf(1)
	for _, v := range batch {
		if v < best {
			best = v
		}
	}
	if best < prevBest-1e-3*math.Abs(prevBest) {
		t.succ, t.fail = t.succ+1, 0
	} else {
		t.succ, t.fail = 0, t.fail+1
	}
	if t.succ == t.tc.SuccTol {
		t.length, t.succ = math.Min(2*t.length, t.tc.MaxLength), 0
	} else if t.fail == t.failTol {
		t.length, t.fail = t.length/2, 0
	}
	return t.length < t.tc.MinLength
}

// Restart resets the region for a fresh design.
func (t *Turbo) Restart() {
	t.length, t.succ, t.fail = t.tc.Length, 0, 0
	t.restarts++
	t.hyper, t.dist = nil, nil
}

type turboState struct {
	Length   float64 `json:"length"`
	Succ     int     `json:"succ"`
	Fail     int     `json:"fail"`
	Restarts int     `json:"restarts"`
	Hyper    *Hyper  `json:"hyper,omitempty"`
	RNG      []byte  `json:"rng"`
}

// MarshalState returns Turbo's state: the region, its counters, the
// hyperparameters the next fit starts from and the random source.
func (t *Turbo) MarshalState() ([]byte, error) {
	rs, err := t.src.MarshalBinary()
	if err != nil {
		return nil, err
	}
	return json.Marshal(turboState{Length: t.length, Succ: t.succ, Fail: t.fail, Restarts: t.restarts, Hyper: t.hyper, RNG: rs})
}

// Restore continues from a MarshalState.
func (t *Turbo) Restore(state []byte) error {
	var st turboState
	if err := json.Unmarshal(state, &st); err != nil {
		return fmt.Errorf("bayes: turbo state: %w", err)
	}
	if st.Hyper != nil && len(st.Hyper.LogLength) != t.gp.nl {
		return fmt.Errorf("bayes: turbo state has %d lengthscales, want %d", len(st.Hyper.LogLength), t.gp.nl)
	}
	if err := t.src.UnmarshalBinary(st.RNG); err != nil {
		return fmt.Errorf("bayes: random source: %w", err)
	}
	t.length, t.succ, t.fail, t.restarts, t.hyper = st.Length, st.Succ, st.Fail, st.Restarts, st.Hyper
	return nil
}
