package bayes

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
)

// Config holds the settings of BO and Turbo.
type Config struct {
	// ARD gives each coordinate its own lengthscale; otherwise one serves
	// all (the only affordable choice in thousands of dimensions).
	ARD bool
	// Restarts of the marginal-likelihood L-BFGS: the previous
	// hyperparameters, then random ones.
	Restarts int
	// Refit (BO) refits the hyperparameters once the points have grown by
	// this factor since the last fit (1: at every point); in between, each
	// point extends the Cholesky factor.
	Refit float64
	// Candidates: random points screened by EI for the L-BFGS starts (BO),
	// or the trust region's candidates for Thompson sampling (Turbo).
	Candidates int
	// Starts of the EI L-BFGS (BO).
	Starts int
}

// DefaultConfig is three restarts, a refit every 20 % more points, 500
// candidates and 5 EI starts.
func DefaultConfig() Config {
	return Config{ARD: true, Restarts: 3, Refit: 1.2, Candidates: 500, Starts: 5}
}

// Validate reports every bad setting, naming it by its config key.
func (c Config) Validate() error {
	var errs []error
	if c.Restarts < 1 || c.Restarts > 100 {
		errs = append(errs, fmt.Errorf("restarts: %d: want 1 to 100", c.Restarts))
	}
	if !(c.Refit >= 1) || math.IsInf(c.Refit, 0) {
		errs = append(errs, fmt.Errorf("refit: %v: want a growth factor ≥ 1", c.Refit))
	}
	if c.Candidates < 1 || c.Candidates > MaxCandidates {
		errs = append(errs, fmt.Errorf("candidates: %d: want 1 to %d", c.Candidates, MaxCandidates))
	}
	if c.Starts < 1 || c.Starts > 1000 {
		errs = append(errs, fmt.Errorf("starts: %d: want 1 to 1000", c.Starts))
	}
	return errors.Join(errs...)
}

// MaxCandidates bounds Candidates: Thompson sampling factorizes their
// joint covariance, m² values (200 MB at 5000).
const MaxCandidates = 5000

// BO is sequential Bayesian optimization by expected improvement: tell it
// every measured point (Observe), ask it for the next (Suggest).
type BO struct {
	cfg Config
	gp  *GP
	src *rand.PCG
	rng *rand.Rand
}

// NewBO returns a BO on d unit-box coordinates, seeded.
func NewBO(d int, periodic []bool, cfg Config, seed, stream uint64) *BO {
	src := rand.NewPCG(seed, stream)
	return &BO{cfg: cfg, gp: NewGP(d, periodic, cfg.ARD), src: src, rng: rand.New(src)}
}

// GP returns the BO's Gaussian process.
func (b *BO) GP() *GP { return b.gp }

// Observe adds a measured point; a non-finite objective is skipped.
func (b *BO) Observe(u []float64, y float64) error {
	if math.IsNaN(y) || math.IsInf(y, 0) {
		return nil
	}
	return b.gp.Add(u, y)
}

// Suggest returns the next point to measure: the maximizer of EI below the
// best objective so far, after refitting the hyperparameters when the
// points have grown by Refit since the last fit. It needs two points.
func (b *BO) Suggest() ([]float64, error) {
	g := b.gp
	if !g.fitted || float64(g.Len()) >= b.cfg.Refit*float64(g.nFit) && g.Len() > g.nFit {
		if err := g.Fit(b.rng, b.cfg.Restarts); err != nil {
			return nil, err
		}
	}
	best, bi := math.Inf(1), -1
	for i, y := range g.y {
		if y < best {
			best, bi = y, i
		}
	}
	u, _ := MaximizeEI(g, best, b.rng, b.cfg.Candidates, b.cfg.Starts, [][]float64{g.x[bi]})
	return u, nil
}

// boState is BO's checkpoint.
type boState struct {
	GP  State  `json:"gp"`
	RNG []byte `json:"rng"`
}

// MarshalState returns what Restore needs besides the points.
func (b *BO) MarshalState() ([]byte, error) {
	rs, err := b.src.MarshalBinary()
	if err != nil {
		return nil, err
	}
	return json.Marshal(boState{GP: b.gp.State(), RNG: rs})
}

// Restore continues from a MarshalState taken when the BO had observed
// exactly the finite points of (us, ys), in order.
func (b *BO) Restore(state []byte, us [][]float64, ys []float64) error {
	var st boState
	if err := json.Unmarshal(state, &st); err != nil {
		return fmt.Errorf("bayes: state: %w", err)
	}
	if err := b.src.UnmarshalBinary(st.RNG); err != nil {
		return fmt.Errorf("bayes: random source: %w", err)
	}
	fu, fy := finite(us, ys)
	return b.gp.Restore(st.GP, fu, fy)
}

// finite drops the points whose objective is not finite.
func finite(us [][]float64, ys []float64) ([][]float64, []float64) {
	var fu [][]float64
	var fy []float64
	for i, y := range ys {
		if !math.IsNaN(y) && !math.IsInf(y, 0) {
			fu, fy = append(fu, us[i]), append(fy, y)
		}
	}
	return fu, fy
}
