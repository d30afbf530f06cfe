package loop

import (
	"errors"
	"fmt"
	"math"

	"github.com/insitu-lab/insitu/surrogate"
)

// Methods a run can use; Config.Method picks one and nothing else changes
// between them.
const (
	MethodGradPIE = "gradpie" // online GradPIE-kNN surrogate (the locality-aware model)
	MethodMAE     = "mae"     // the same loop with the base model's loss
	MethodMSE     = "mse"     // the same loop with a squared-error base model
	MethodExact   = "exact"   // the same loop with the twin's exact VJP
	MethodRandom  = "random"  // uniform random search
	MethodSPSA    = "spsa"    // simultaneous-perturbation stochastic approximation
	MethodFD      = "fd"      // forward finite differences, Adam on x
	MethodCMAES   = "cmaes"   // CMA-ES (gonum/optimize)
)

// Methods lists every method name.
var Methods = []string{MethodGradPIE, MethodMAE, MethodMSE, MethodExact, MethodRandom, MethodSPSA, MethodFD, MethodCMAES}

// Modes of the surrogate methods.
const (
	ModeOnline  = "online"  // Algorithm 1: retrain every iteration on everything measured
	ModeOffline = "offline" // Algorithm A1: train once on a dataset, freeze, descend
)

// Config is everything an optimization run needs besides the black box.
// Coordinates of steps and spreads are normalized: the box maps to [0,1]^d.
type Config struct {
	Method     string  `mapstructure:"method" yaml:"method"`
	Mode       string  `mapstructure:"mode" yaml:"mode"`             // online (default) or offline
	Seed       uint64  `mapstructure:"seed" yaml:"seed"`             // init points, samples, surrogate init, baselines
	Iterations int     `mapstructure:"iterations" yaml:"iterations"` // T
	Budget     int     `mapstructure:"budget" yaml:"budget"`         // queries at most; 0: N0 + T·K·(1+M)
	Patience   int     `mapstructure:"patience" yaml:"patience"`     // stop after this many iterations without improvement > Tolerance; 0: never
	Tolerance  float64 `mapstructure:"tolerance" yaml:"tolerance"`   // τ
	// CheckpointEvery saves the surrogate, its trainer, the slots' Adam
	// states and the random sources every this many iterations (and at the
	// last), so a resume starts there instead of replaying the training of
	// every earlier iteration; 0: never (a resume then replays everything).
	CheckpointEvery int `mapstructure:"checkpoint_every" yaml:"checkpoint_every"`

	Init    InitConfig    `mapstructure:"init" yaml:"init"`
	TopK    int           `mapstructure:"top_k" yaml:"top_k"` // K points stepped per iteration
	Local   LocalConfig   `mapstructure:"local" yaml:"local"`
	StepLR  float64       `mapstructure:"step_lr" yaml:"step_lr"` // Adam learning rate on x (normalized units)
	Offline OfflineConfig `mapstructure:"offline" yaml:"offline"`

	Surrogate SurrogateConfig `mapstructure:"surrogate" yaml:"surrogate"`
	SPSA      SPSAConfig      `mapstructure:"spsa" yaml:"spsa"`
	FD        FDConfig        `mapstructure:"fd" yaml:"fd"`
	CMAES     CMAESConfig     `mapstructure:"cmaes" yaml:"cmaes"`
}

// InitConfig is the initial design: N0 uniform random points, or given ones.
type InitConfig struct {
	Points int         `mapstructure:"points" yaml:"points"`
	X      [][]float64 `mapstructure:"x" yaml:"x,omitempty"` // explicit initial points (then Points is ignored)
}

// LocalConfig is the local sampling around each new point.
type LocalConfig struct {
	Samples int     `mapstructure:"samples" yaml:"samples"` // M
	Sigma   float64 `mapstructure:"sigma" yaml:"sigma"`     // σ, normalized units
}

// OfflineConfig is Algorithm A1's dataset.
type OfflineConfig struct {
	// Points random queries to train on, unless Journal names a run
	// directory whose measured queries are used instead.
	Points  int    `mapstructure:"points" yaml:"points"`
	Journal string `mapstructure:"journal" yaml:"journal,omitempty"`
	Epochs  int    `mapstructure:"epochs" yaml:"epochs"`
}

// SurrogateConfig is the surrogate model and its training.
type SurrogateConfig struct {
	Hidden        []int   `mapstructure:"hidden" yaml:"hidden"`
	LayerNorm     bool    `mapstructure:"layer_norm" yaml:"layer_norm"`
	InitialEpochs int     `mapstructure:"initial_epochs" yaml:"initial_epochs"` // after the initial design
	Epochs        int     `mapstructure:"epochs" yaml:"epochs"`                 // E, per iteration (warm start)
	LR            float64 `mapstructure:"lr" yaml:"lr"`
	Batch         int     `mapstructure:"batch" yaml:"batch"`
	K             int     `mapstructure:"k" yaml:"k"`       // neighbours for GradPIE
	Norm          string  `mapstructure:"norm" yaml:"norm"` // l1 or l2
	Lambda        float64 `mapstructure:"lambda" yaml:"lambda"`
}

// SPSAConfig holds the gains a_k = A/(k+1+Stability)^0.602 and
// c_k = C/(k+1)^0.101 (Spall's standard exponents), normalized units.
type SPSAConfig struct {
	A         float64 `mapstructure:"a" yaml:"a"`
	C         float64 `mapstructure:"c" yaml:"c"`
	Stability float64 `mapstructure:"stability" yaml:"stability"`
}

// FDConfig is the finite-difference step, normalized units.
type FDConfig struct {
	Step float64 `mapstructure:"step" yaml:"step"`
}

// CMAESConfig is CMA-ES's initial step size (normalized units) and
// population (0: gonum's default 4 + 3·ln d).
type CMAESConfig struct {
	Sigma      float64 `mapstructure:"sigma" yaml:"sigma"`
	Population int     `mapstructure:"population" yaml:"population"`
}

// DefaultConfig is the paper's CNON setting scaled to a one-minute run.
func DefaultConfig() Config {
	return Config{
		Method: MethodGradPIE, Mode: ModeOnline, Seed: 1, Iterations: 100,
		Patience: 0, Tolerance: 0, CheckpointEvery: 10,
		Init:   InitConfig{Points: 100},
		TopK:   5,
		Local:  LocalConfig{Samples: 0, Sigma: 0.02},
		StepLR: 0.02,
		Offline: OfflineConfig{
			Points: 1000, Epochs: 100,
		},
		Surrogate: SurrogateConfig{
			Hidden: []int{256, 256}, InitialEpochs: 50, Epochs: 5, LR: 1e-3, Batch: 256, K: 5, Norm: surrogate.NormL1,
		},
		SPSA:  SPSAConfig{A: 0.05, C: 0.02, Stability: 10},
		FD:    FDConfig{Step: 1e-3},
		CMAES: CMAESConfig{Sigma: 0.2},
	}
}

// QueriesPerIteration is K·(1+M), the queries one iteration of Algorithm 1
// costs; the baselines are accounted in blocks of the same size.
func (c Config) QueriesPerIteration() int { return c.TopK * (1 + c.Local.Samples) }

// InitPoints is N0.
func (c Config) InitPoints() int {
	if len(c.Init.X) > 0 {
		return len(c.Init.X)
	}
	return c.Init.Points
}

// EffectiveBudget is the query budget: Budget, or N0 + T·K·(1+M).
func (c Config) EffectiveBudget() int {
	if c.Budget > 0 {
		return c.Budget
	}
	n0 := c.InitPoints()
	if c.Mode == ModeOffline && c.Offline.Journal == "" {
		n0 = c.Offline.Points
	}
	return n0 + c.Iterations*c.QueriesPerIteration()
}

// UsesSurrogate reports whether the method trains a surrogate.
func (c Config) UsesSurrogate() bool {
	switch c.Method {
	case MethodGradPIE, MethodMAE, MethodMSE:
		return true
	}
	return false
}

// Loss is the surrogate loss of the method.
func (c Config) Loss() surrogate.LossKind {
	switch c.Method {
	case MethodMAE:
		return surrogate.LossMAE
	case MethodMSE:
		return surrogate.LossMSE
	}
	return surrogate.LossGradPIE
}

// Validate reports every problem, each naming its key.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, a ...any) { errs = append(errs, fmt.Errorf(key+": "+format, a...)) }
	finite := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
	known := false
	for _, m := range Methods {
		known = known || c.Method == m
	}
	if !known {
		bad("method", "%q: want one of %v", c.Method, Methods)
	}
	switch c.Mode {
	case ModeOnline:
	case ModeOffline:
		if c.Method != "" && known && !c.UsesSurrogate() {
			bad("mode", "offline needs a surrogate method (gradpie, mae, mse), not %q", c.Method)
		}
		if c.Offline.Journal == "" && c.Offline.Points < 2 {
			bad("offline.points", "%d: want ≥ 2 (or offline.journal)", c.Offline.Points)
		}
		if c.Offline.Epochs < 1 {
			bad("offline.epochs", "%d: want ≥ 1", c.Offline.Epochs)
		}
	default:
		bad("mode", "%q: want online or offline", c.Mode)
	}
	if c.Iterations < 1 {
		bad("iterations", "%d: want ≥ 1", c.Iterations)
	}
	if c.Budget < 0 {
		bad("budget", "%d: want ≥ 0 (0: N0 + T·K·(1+M))", c.Budget)
	}
	if c.CheckpointEvery < 0 {
		bad("checkpoint_every", "%d: want ≥ 0 (0: never)", c.CheckpointEvery)
	}
	if c.Patience < 0 {
		bad("patience", "%d: want ≥ 0 (0: never stop early)", c.Patience)
	}
	if !(c.Tolerance >= 0) || !finite(c.Tolerance) {
		bad("tolerance", "%v: want a finite value ≥ 0", c.Tolerance)
	}
	if len(c.Init.X) == 0 && c.Init.Points < 1 {
		bad("init.points", "%d: want ≥ 1", c.Init.Points)
	}
	if c.TopK < 1 {
		bad("top_k", "%d: want ≥ 1", c.TopK)
	} else if n0 := c.InitPoints(); c.Mode != ModeOffline && n0 >= 1 && c.TopK > n0 {
		bad("top_k", "%d is more than the %d initial points", c.TopK, n0)
	}
	if c.Local.Samples < 0 {
		bad("local.samples", "%d: want ≥ 0", c.Local.Samples)
	}
	if !(c.Local.Sigma > 0) || !finite(c.Local.Sigma) {
		bad("local.sigma", "%v: want a finite value > 0", c.Local.Sigma)
	}
	if !(c.StepLR > 0) || !finite(c.StepLR) {
		bad("step_lr", "%v: want a finite value > 0", c.StepLR)
	}
	errs = append(errs, c.Surrogate.problems()...)
	if !(c.SPSA.A > 0) || !finite(c.SPSA.A) {
		bad("spsa.a", "%v: want a finite value > 0", c.SPSA.A)
	}
	if !(c.SPSA.C > 0) || !finite(c.SPSA.C) {
		bad("spsa.c", "%v: want a finite value > 0", c.SPSA.C)
	}
	if !(c.SPSA.Stability >= 0) || !finite(c.SPSA.Stability) {
		bad("spsa.stability", "%v: want a finite value ≥ 0", c.SPSA.Stability)
	}
	if !(c.FD.Step > 0) || !(c.FD.Step < 0.5) {
		bad("fd.step", "%v: want a value in (0, 0.5)", c.FD.Step)
	}
	if !(c.CMAES.Sigma > 0) || !finite(c.CMAES.Sigma) {
		bad("cmaes.sigma", "%v: want a finite value > 0", c.CMAES.Sigma)
	}
	if c.CMAES.Population < 0 || c.CMAES.Population == 1 {
		bad("cmaes.population", "%d: want 0 (default) or ≥ 2", c.CMAES.Population)
	}
	return errors.Join(errs...)
}

// problems reports every invalid surrogate setting, each naming its key
// under surrogate.; Config and TrainConfig share it.
func (s SurrogateConfig) problems() []error {
	var errs []error
	bad := func(key, format string, a ...any) {
		errs = append(errs, fmt.Errorf("surrogate."+key+": "+format, a...))
	}
	finite := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
	if len(s.Hidden) == 0 {
		bad("hidden", "empty: want at least one hidden layer width")
	}
	for i, h := range s.Hidden {
		if h < 1 {
			bad(fmt.Sprintf("hidden[%d]", i), "%d: want ≥ 1", h)
		}
	}
	if s.InitialEpochs < 0 {
		bad("initial_epochs", "%d: want ≥ 0", s.InitialEpochs)
	}
	if s.Epochs < 1 {
		bad("epochs", "%d: want ≥ 1", s.Epochs)
	}
	if !(s.LR > 0) || !finite(s.LR) {
		bad("lr", "%v: want a finite value > 0", s.LR)
	}
	if s.Batch < 1 {
		bad("batch", "%d: want ≥ 1", s.Batch)
	}
	if s.K < 1 {
		bad("k", "%d: want ≥ 1", s.K)
	}
	if s.Norm != surrogate.NormL1 && s.Norm != surrogate.NormL2 {
		bad("norm", "%q: want l1 or l2", s.Norm)
	}
	if !(s.Lambda >= 0) || !finite(s.Lambda) {
		bad("lambda", "%v: want a finite value ≥ 0", s.Lambda)
	}
	return errs
}
