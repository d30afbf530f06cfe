package loop

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"strings"

	"github.com/insitu-lab/insitu"
	"github.com/insitu-lab/insitu/loop/bayes"
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
	MethodBayOpt  = "bayopt"  // Gaussian-process Bayesian optimization by expected improvement
	MethodTuRBO   = "turbo"   // TuRBO-1: Bayesian optimization in a trust region, for high dimensions
)

// Methods returns every method name, in a new slice.
func Methods() []string {
	return []string{MethodGradPIE, MethodMAE, MethodMSE, MethodExact, MethodRandom, MethodSPSA, MethodFD, MethodCMAES, MethodBayOpt, MethodTuRBO}
}

// Modes of the surrogate methods.
const (
	ModeOnline  = "online"  // Algorithm 1: retrain every iteration on everything measured
	ModeOffline = "offline" // Algorithm A1: train once on a dataset, freeze, descend
)

// Limits of the counts and sizes of a Config and a TrainConfig. They are
// far above any sensible run or training, and they keep the arithmetic on
// the counts (the budget N0 + T·K·(1+M), a network's parameter count, the
// memory of a design) far from overflow and from the machine's memory.
// Validate checks them before any device is opened, ValidateDims what
// needs the box's dimensions before its first query.
const (
	MaxIterations   = 1_000_000   // iterations, patience, checkpoint_every
	MaxQueries      = 10_000_000  // budget, and N0 + T·K·(1+M) without one
	MaxInitPoints   = 1_000_000   // init.points, offline.points
	MaxTopK         = 10_000      // top_k
	MaxLocalSamples = 10_000      // local.samples
	MaxEpochs       = 1_000_000   // every epochs key; a training's eval_every, checkpoint_every
	MaxBatch        = 1 << 16     // surrogate.batch and a training's batch
	MaxNeighbours   = 1_000       // surrogate.k
	MaxHiddenLayers = 64          // len(surrogate.hidden)
	MaxHiddenWidth  = 1 << 16     // every surrogate.hidden width
	MaxParams       = 100_000_000 // weights of the surrogate network
	MaxPopulation   = 10_000      // cmaes.population
	MaxDataPoints   = 10_000_000  // data.n
	MaxDataInputs   = 1 << 20     // du
	// MaxBytes bounds the memory of the initial design's inputs (points ×
	// inputs × 8 bytes) and of a surrogate minibatch's activations.
	MaxBytes = 4 << 30
)

// Config is everything an optimization run needs besides the black box.
// Coordinates of steps and spreads are normalized: the box maps to [0,1]^d.
type Config struct {
	Method     string  `mapstructure:"method" yaml:"method" doc:"the optimizer: gradpie, mae, mse, exact (a twin's own gradient), random, spsa, fd, cmaes, bayopt (a Gaussian process and expected improvement) or turbo (TuRBO-1)"`
	Mode       string  `mapstructure:"mode" yaml:"mode" doc:"online (retrain the surrogate on everything measured every iteration) or offline (train once, then descend)"`
	Seed       uint64  `mapstructure:"seed" yaml:"seed" doc:"the one seed of the run: initial points, local samples, surrogate initialization, baselines"`
	Iterations int     `mapstructure:"iterations" yaml:"iterations" doc:"iterations T of the optimizer"`
	Budget     int     `mapstructure:"budget" yaml:"budget" doc:"queries at most; 0: init.points + iterations·top_k·(1 + local.samples)"`
	Patience   int     `mapstructure:"patience" yaml:"patience" doc:"stop after this many iterations without an improvement above tolerance; 0: never"`
	Tolerance  float64 `mapstructure:"tolerance" yaml:"tolerance" doc:"the improvement of the best objective that counts for patience and restart"`
	// CheckpointEvery saves the surrogate, its trainer, the slots' Adam
	// states and the random sources (bayopt, turbo: the GP's state) every
	// this many iterations (and at the last), so a resume starts there
	// instead of replaying the training of every earlier iteration; 0:
	// never (a resume then replays everything).
	CheckpointEvery int `mapstructure:"checkpoint_every" yaml:"checkpoint_every" doc:"save the surrogate, optimizer and random states (bayopt, turbo: the GP's) every this many iterations (and at the last), so a resume starts there; 0: never (a resume replays every iteration)"`

	Init    InitConfig    `mapstructure:"init" yaml:"init" doc:"the initial design"`
	TopK    int           `mapstructure:"top_k" yaml:"top_k" doc:"K: the best points stepped per iteration"`
	Local   LocalConfig   `mapstructure:"local" yaml:"local" doc:"local samples around each new point, for the surrogate"`
	StepLR  float64       `mapstructure:"step_lr" yaml:"step_lr" doc:"Adam learning rate on x, in normalized units (the box maps to [0, 1])"`
	Restart RestartConfig `mapstructure:"restart" yaml:"restart" doc:"fresh random points when the best stalls"`
	Offline OfflineConfig `mapstructure:"offline" yaml:"offline" doc:"the dataset of mode offline"`

	// StepLRFinal, when > 0, is the Adam learning rate of the last
	// iteration: the rate falls from StepLR along a half cosine, so the
	// steps that find the basin are large and those that settle in it
	// small. 0: StepLR throughout.
	StepLRFinal float64 `mapstructure:"step_lr_final" yaml:"step_lr_final,omitempty" doc:"when > 0, the learning rate of the last iteration: step_lr falls to it along a half cosine; 0: step_lr throughout"`

	Surrogate SurrogateConfig `mapstructure:"surrogate" yaml:"surrogate" doc:"the surrogate network and its training"`
	SPSA      SPSAConfig      `mapstructure:"spsa" yaml:"spsa" doc:"settings of method spsa"`
	FD        FDConfig        `mapstructure:"fd" yaml:"fd" doc:"settings of method fd"`
	CMAES     CMAESConfig     `mapstructure:"cmaes" yaml:"cmaes" doc:"settings of method cmaes"`
	Bayes     BayesConfig     `mapstructure:"bayes" yaml:"bayes" doc:"the Gaussian process of methods bayopt and turbo"`
}

// InitConfig is the initial design: N0 uniform random points, or given ones.
type InitConfig struct {
	Points int         `mapstructure:"points" yaml:"points" doc:"N0: uniform random initial queries"`
	X      [][]float64 `mapstructure:"x" yaml:"x,omitempty" doc:"explicit initial points, in the box's units (then points is ignored)"`
}

// RestartConfig is the restart rule of the online methods: when the best
// has not improved (by more than Tolerance) for After iterations, Points
// fresh uniform random points are queried and the K slots step from the
// best points measured since, leaving the basin they were stuck in; the
// surrogate keeps everything it learned. The restart's queries count
// against the budget, and the patience count starts again. After 0: never.
type RestartConfig struct {
	After  int `mapstructure:"after" yaml:"after" doc:"restart after this many iterations without improvement; 0: never"`
	Points int `mapstructure:"points" yaml:"points" doc:"fresh uniform random points queried at a restart; 0: init.points"`
}

// LocalConfig is the local sampling around each new point.
type LocalConfig struct {
	Samples int     `mapstructure:"samples" yaml:"samples" doc:"M: local samples around each new point"`
	Sigma   float64 `mapstructure:"sigma" yaml:"sigma" doc:"σ: their spread, in normalized units"`
}

// OfflineConfig is Algorithm A1's dataset.
type OfflineConfig struct {
	// Points random queries to train on, unless Journal names a run
	// directory whose measured queries are used instead.
	Points  int    `mapstructure:"points" yaml:"points" doc:"random queries to train on, unless journal is set"`
	Journal string `mapstructure:"journal" yaml:"journal,omitempty" doc:"a run directory whose measured queries are the training set instead"`
	Epochs  int    `mapstructure:"epochs" yaml:"epochs" doc:"training epochs over the dataset"`
}

// SurrogateConfig is the surrogate model and its training.
type SurrogateConfig struct {
	Hidden        []int `mapstructure:"hidden" yaml:"hidden" doc:"widths of the hidden layers of the MLP"`
	LayerNorm     bool  `mapstructure:"layer_norm" yaml:"layer_norm" doc:"layer normalization after each hidden layer"`
	InitialEpochs int   `mapstructure:"initial_epochs" yaml:"initial_epochs" doc:"epochs after the initial design"`
	Epochs        int   `mapstructure:"epochs" yaml:"epochs" doc:"E: full passes per iteration (warm start), used when steps is 0"`
	// Steps, when > 0 (the default), replaces Epochs: this many minibatch
	// steps per new query (an iteration of K·(1+M) queries trains
	// Steps·K·(1+M)), anchors favouring the Recent newest points and the
	// neighbourhoods of the top K, so an iteration costs the same at any
	// dataset size. 0 trains Epochs full passes instead.
	Steps  int `mapstructure:"steps" yaml:"steps" doc:"minibatch steps per new query (so an iteration costs the same at any dataset size); 0: epochs full passes instead"`
	Recent int `mapstructure:"recent" yaml:"recent" doc:"a quarter of the anchors come from the newest this-many points; 0: the batch size"`
	// Rows caps the rows a GradPIE step forwards (anchors and their
	// neighbours; 0: the batch size), so a step costs the same at any
	// dataset size.
	Rows int `mapstructure:"rows" yaml:"rows" doc:"a GradPIE step forwards at most this many rows (anchors and neighbours); 0: the batch size"`
	// Share builds GradPIE minibatches from neighbourhoods (anchors bring
	// their neighbours as anchors), so fewer rows are forwarded per anchor.
	Share bool `mapstructure:"share" yaml:"share" doc:"GradPIE anchors bring their neighbours as anchors (more anchors per step)"`
	// Overlap runs the per-iteration steps while the black box measures
	// the iteration's queries (each slot's share trains on the data up to
	// the slot before), instead of before them. Only with Steps: full
	// epochs run before the queries.
	Overlap bool    `mapstructure:"overlap" yaml:"overlap" doc:"train while the black box measures the iteration's queries (only with steps)"`
	LR      float64 `mapstructure:"lr" yaml:"lr" doc:"Adam learning rate of the network"`
	Batch   int     `mapstructure:"batch" yaml:"batch" doc:"minibatch size"`
	K       int     `mapstructure:"k" yaml:"k" doc:"nearest neighbours in the GradPIE loss"`
	Norm    string  `mapstructure:"norm" yaml:"norm" doc:"norm of the GradPIE pair loss: l1 or l2"`
	Lambda  float64 `mapstructure:"lambda" yaml:"lambda" doc:"weight of the base (MAE) loss added to the GradPIE loss; 0: GradPIE alone"`
	// InputScaling maps the box for the network: box (to [−1, 1], the
	// default), zscore (the box's uniform moments), unit ([0, 1]), none,
	// or circle (box, with periodic coordinates as (cos, sin) pairs).
	InputScaling surrogate.InputScaling `mapstructure:"input_scaling" yaml:"input_scaling" doc:"how the box is mapped for the network: box ([−1, 1]), zscore, unit ([0, 1]), none, or circle (periodic coordinates as cos, sin)"`
	// OutputScaling: zscore (per output, the default), scale (one common
	// spread) or none.
	OutputScaling surrogate.OutputScaling `mapstructure:"output_scaling" yaml:"output_scaling" doc:"how outputs are scaled for the network: zscore (per output), scale (one common spread) or none"`
	// Precision is the network's floating-point type: float32 (the
	// default of a run, chosen by docs/results/precision.md, which also
	// says where it must not be used) or float64. Data, neighbours, losses
	// and the journal stay float64.
	Precision surrogate.Precision `mapstructure:"precision" yaml:"precision" doc:"the network's floating-point type: float32 or float64 (data, neighbours, losses and the journal stay float64)"`
}

// Arch is the surrogate architecture these settings describe.
func (s SurrogateConfig) Arch() surrogate.Arch {
	return surrogate.Arch{Hidden: s.Hidden, LayerNorm: s.LayerNorm, InputScaling: s.InputScaling,
		OutputScaling: s.OutputScaling, Precision: s.Precision}
}

// SPSAConfig holds the gains a_k = A/(k+1+Stability)^0.602 and
// c_k = C/(k+1)^0.101 (Spall's standard exponents), normalized units.
type SPSAConfig struct {
	A         float64 `mapstructure:"a" yaml:"a" doc:"gain A of a_k = A/(k+1+stability)^0.602, normalized units"`
	C         float64 `mapstructure:"c" yaml:"c" doc:"perturbation C of c_k = C/(k+1)^0.101, normalized units"`
	Stability float64 `mapstructure:"stability" yaml:"stability" doc:"the stability constant of a_k"`
}

// FDConfig is the finite-difference step, normalized units.
type FDConfig struct {
	Step float64 `mapstructure:"step" yaml:"step" doc:"forward-difference step, normalized units"`
}

// CMAESConfig is CMA-ES's initial step size (normalized units) and
// population (0: gonum's default 4 + 3·ln d).
type CMAESConfig struct {
	Sigma      float64 `mapstructure:"sigma" yaml:"sigma" doc:"initial step size, normalized units"`
	Population int     `mapstructure:"population" yaml:"population" doc:"population size; 0: gonum's default 4 + 3·ln d"`
}

// BayesConfig is the Gaussian process of bayopt and turbo (package
// loop/bayes).
type BayesConfig struct {
	// ARD: "on" gives every input its own lengthscale, "off" one for all,
	// "auto" ARD up to ARDMaxInputs inputs (fitting thousands of
	// lengthscales costs O(n²d) per likelihood evaluation).
	ARD        string  `mapstructure:"ard" yaml:"ard" doc:"on: one lengthscale per input; off: one for all; auto: on up to 50 inputs"`
	Restarts   int     `mapstructure:"restarts" yaml:"restarts" doc:"L-BFGS starts of the marginal-likelihood fit"`
	Refit      float64 `mapstructure:"refit" yaml:"refit" doc:"bayopt: refit the hyperparameters when the points have grown by this factor since the last fit"`
	Candidates int     `mapstructure:"candidates" yaml:"candidates" doc:"random points EI screens (bayopt), Thompson candidates (turbo)"`
	Starts     int     `mapstructure:"starts" yaml:"starts" doc:"bayopt: L-BFGS starts of the EI maximization"`

	Turbo bayes.TurboConfig `mapstructure:"turbo" yaml:"turbo" doc:"TuRBO-1's trust region"`
}

// ARDMaxInputs is where ard: auto switches to one lengthscale.
const ARDMaxInputs = 50

// options returns the package's settings for a box of d inputs.
func (b BayesConfig) options(d int) bayes.Config {
	ard := b.ARD == "on" || b.ARD == "auto" && d <= ARDMaxInputs
	return bayes.Config{ARD: ard, Restarts: b.Restarts, Refit: b.Refit, Candidates: b.Candidates, Starts: b.Starts}
}

func (b BayesConfig) problems() []error {
	var errs []error
	switch b.ARD {
	case "auto", "on", "off":
	default:
		errs = append(errs, fmt.Errorf("bayes.ard: %q: want auto, on or off", b.ARD))
	}
	if err := b.options(1).Validate(); err != nil {
		for _, e := range unjoin(err) {
			errs = append(errs, fmt.Errorf("bayes.%w", e))
		}
	}
	if err := b.Turbo.Validate(); err != nil {
		for _, e := range unjoin(err) {
			errs = append(errs, fmt.Errorf("bayes.%w", e))
		}
	}
	return errs
}

// unjoin splits an errors.Join.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
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
			Hidden: []int{256, 256}, InitialEpochs: 50, Epochs: 5, Steps: 2, Overlap: true,
			LR: 1e-3, Batch: 256, K: 5, Norm: surrogate.NormL1,
			InputScaling: surrogate.DefaultInputScaling, OutputScaling: surrogate.DefaultOutputScaling,
			Precision: surrogate.Float32,
		},
		SPSA:  SPSAConfig{A: 0.05, C: 0.02, Stability: 10},
		FD:    FDConfig{Step: 1e-3},
		CMAES: CMAESConfig{Sigma: 0.2},
		Bayes: BayesConfig{ARD: "auto", Restarts: 3, Refit: 1.2, Candidates: 500, Starts: 5, Turbo: bayes.DefaultTurboConfig()},
	}
}

// QueriesPerIteration is K·(1+M), the queries one iteration of Algorithm 1
// costs; the baselines are accounted in blocks of the same size. It
// saturates at math.MaxInt instead of overflowing.
func (c Config) QueriesPerIteration() int { return mulSat(c.TopK, addSat(1, c.Local.Samples)) }

// InitPoints is N0.
func (c Config) InitPoints() int {
	if len(c.Init.X) > 0 {
		return len(c.Init.X)
	}
	return c.Init.Points
}

// InitProblems reports the init.x points a black box of dim inputs
// (named name) cannot take: a point of another length, or with a value
// that is not finite. At most max problems are reported.
func (c Config) InitProblems(name string, dim, max int) []insitu.DecodeProblem {
	var out []insitu.DecodeProblem
	for i, x := range c.Init.X {
		if len(out) == max {
			break
		}
		key := "init.x[" + strconv.Itoa(i) + "]"
		if len(x) != dim {
			out = append(out, insitu.DecodeProblem{Key: key, Msg: fmt.Sprintf("%d values, %s has %d inputs", len(x), name, dim)})
			continue
		}
		for k, v := range x {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				out = append(out, insitu.DecodeProblem{Key: key + "[" + strconv.Itoa(k) + "]", Msg: fmt.Sprintf("%v: want a finite value", v)})
				break
			}
		}
	}
	return out
}

// EffectiveBudget is the query budget: Budget, or N0 + T·K·(1+M),
// saturating at math.MaxInt instead of overflowing (Validate refuses a
// budget above MaxQueries).
func (c Config) EffectiveBudget() int {
	if c.Budget > 0 {
		return c.Budget
	}
	n0 := c.InitPoints()
	if c.Mode == ModeOffline && c.Offline.Journal == "" {
		n0 = c.Offline.Points
	}
	return addSat(n0, mulSat(c.Iterations, c.QueriesPerIteration()))
}

// mulSat is a·b clamped to [math.MinInt, math.MaxInt] instead of
// overflowing.
func mulSat(a, b int) int {
	if a == 0 || b == 0 {
		return 0
	}
	neg := (a < 0) != (b < 0)
	ua, ub := absU(a), absU(b)
	hi, lo := bits.Mul64(ua, ub)
	if hi != 0 || lo > math.MaxInt {
		if neg {
			return math.MinInt
		}
		return math.MaxInt
	}
	if neg {
		return -int(lo)
	}
	return int(lo)
}

// addSat is a+b clamped to [math.MinInt, math.MaxInt].
func addSat(a, b int) int {
	s := a + b
	switch {
	case a > 0 && b > 0 && s < 0:
		return math.MaxInt
	case a < 0 && b < 0 && s >= 0:
		return math.MinInt
	}
	return s
}

func absU(a int) uint64 {
	if a < 0 {
		return uint64(-(a + 1)) + 1
	}
	return uint64(a)
}

// Checkpoints reports whether the method saves checkpoints (the surrogate
// methods, bayopt and turbo); the others resume by replaying their
// journal.
func (c Config) Checkpoints() bool {
	return c.UsesSurrogate() || c.Method == MethodBayOpt || c.Method == MethodTuRBO
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
	count := func(key string, v, lo, hi int, note string) bool { return inRange(&errs, key, v, lo, hi, note) }
	finite := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
	counts := true // the counts EffectiveBudget multiplies are in range
	known := slices.Contains(Methods(), c.Method)
	if !known {
		bad("method", "%q: want one of %v", c.Method, Methods())
	}
	switch c.Mode {
	case ModeOnline:
	case ModeOffline:
		if c.Method != "" && known && !c.UsesSurrogate() {
			bad("mode", "offline needs a surrogate method (gradpie, mae, mse), not %q", c.Method)
		}
		if c.Offline.Journal == "" {
			counts = count("offline.points", c.Offline.Points, 2, MaxInitPoints, " (or offline.journal)") && counts
		}
		count("offline.epochs", c.Offline.Epochs, 1, MaxEpochs, "")
	default:
		bad("mode", "%q: want online or offline", c.Mode)
	}
	counts = count("iterations", c.Iterations, 1, MaxIterations, "") && counts
	count("budget", c.Budget, 0, MaxQueries, " (0: N0 + T·K·(1+M))")
	count("checkpoint_every", c.CheckpointEvery, 0, MaxIterations, " (0: never)")
	count("patience", c.Patience, 0, MaxIterations, " (0: never stop early)")
	count("restart.after", c.Restart.After, 0, MaxIterations, " (0: never)")
	count("restart.points", c.Restart.Points, 0, MaxInitPoints, " (0: init.points)")
	if c.Restart.After > 0 && c.Restart.Points > 0 && c.Restart.Points < c.TopK {
		bad("restart.points", "%d: fewer than top_k = %d, the slots need that many points to step from", c.Restart.Points, c.TopK)
	}
	if !(c.Tolerance >= 0) || !finite(c.Tolerance) {
		bad("tolerance", "%v: want a finite value ≥ 0", c.Tolerance)
	}
	if len(c.Init.X) == 0 {
		counts = count("init.points", c.Init.Points, 1, MaxInitPoints, "") && counts
	} else if len(c.Init.X) > MaxInitPoints {
		bad("init.x", "%d points: want at most %d", len(c.Init.X), MaxInitPoints)
	}
	if count("top_k", c.TopK, 1, MaxTopK, "") {
		if n0 := c.InitPoints(); c.Mode != ModeOffline && n0 >= 1 && c.TopK > n0 {
			bad("top_k", "%d is more than the %d initial points", c.TopK, n0)
		}
	} else {
		counts = false
	}
	counts = count("local.samples", c.Local.Samples, 0, MaxLocalSamples, "") && counts
	// Without a budget the counts make one, N0 + T·K·(1+M): each count
	// within its limit, their product may still be too many queries.
	if counts && c.Budget == 0 {
		if b := c.EffectiveBudget(); b > MaxQueries {
			bad("budget", "0 means N0 + T·K·(1+M) = %d + %d·%d·(1+%d) = %d queries, more than %d: set a budget or lower iterations, top_k or local.samples",
				b-c.Iterations*c.QueriesPerIteration(), c.Iterations, c.TopK, c.Local.Samples, b, MaxQueries)
		}
	}
	if !(c.Local.Sigma > 0) || !finite(c.Local.Sigma) {
		bad("local.sigma", "%v: want a finite value > 0", c.Local.Sigma)
	}
	if !(c.StepLR > 0) || !finite(c.StepLR) {
		bad("step_lr", "%v: want a finite value > 0", c.StepLR)
	}
	if !(c.StepLRFinal >= 0) || !finite(c.StepLRFinal) {
		bad("step_lr_final", "%v: want a finite value ≥ 0 (0: step_lr throughout)", c.StepLRFinal)
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
	if c.CMAES.Population < 0 || c.CMAES.Population == 1 || c.CMAES.Population > MaxPopulation {
		bad("cmaes.population", "%d: want 0 (default) or 2 to %d", c.CMAES.Population, MaxPopulation)
	}
	errs = append(errs, c.Bayes.problems()...)
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
	count := func(key string, v, lo, hi int) bool { return inRange(&errs, "surrogate."+key, v, lo, hi, "") }
	if err := s.InputScaling.Validate(); err != nil {
		bad("input_scaling", "%v", err)
	}
	if err := s.OutputScaling.Validate(); err != nil {
		bad("output_scaling", "%v", err)
	}
	if err := s.Precision.Validate(); err != nil {
		bad("precision", "%q: want %s or %s", string(s.Precision), surrogate.Float64, surrogate.Float32)
	}
	widths := true
	switch {
	case len(s.Hidden) == 0:
		bad("hidden", "empty: want at least one hidden layer width")
		widths = false
	case len(s.Hidden) > MaxHiddenLayers:
		bad("hidden", "%d layers: want 1 to %d", len(s.Hidden), MaxHiddenLayers)
		widths = false
	}
	for i, h := range s.Hidden {
		widths = count(fmt.Sprintf("hidden[%d]", i), h, 1, MaxHiddenWidth) && widths
	}
	if widths {
		// With one input and one output: a lower bound of the network
		// on any box (Config.ValidateDims counts the box's own).
		if n := s.numParams(1, 1); n > MaxParams {
			bad("hidden", "%v has %d weights even with one input and one output: want at most %d", s.Hidden, n, MaxParams)
		}
	}
	count("initial_epochs", s.InitialEpochs, 0, MaxEpochs)
	count("epochs", s.Epochs, 1, MaxEpochs)
	count("steps", s.Steps, 0, MaxEpochs)
	count("recent", s.Recent, 0, MaxQueries)
	count("rows", s.Rows, 0, MaxBatch)
	if !(s.LR > 0) || !finite(s.LR) {
		bad("lr", "%v: want a finite value > 0", s.LR)
	}
	batch := count("batch", s.Batch, 1, MaxBatch)
	k := count("k", s.K, 1, MaxNeighbours)
	if widths && batch && k {
		// A GradPIE minibatch forwards its anchors and their k neighbours.
		units := 0
		for _, h := range s.Hidden {
			units += h
		}
		if b := mulSat(mulSat(mulSat(s.Batch, 1+s.K), units), 8); b > MaxBytes {
			bad("batch", "%d anchors × (1 + k = %d) × %d hidden units × 8 bytes = %s of activations per minibatch: want at most %s",
				s.Batch, s.K, units, gib(b), gib(MaxBytes))
		}
	}
	if s.Norm != surrogate.NormL1 && s.Norm != surrogate.NormL2 {
		bad("norm", "%q: want l1 or l2", s.Norm)
	}
	if !(s.Lambda >= 0) || !finite(s.Lambda) {
		bad("lambda", "%v: want a finite value ≥ 0", s.Lambda)
	}
	return errs
}

// numParams is the weight count of the network on in inputs and out
// outputs (surrogate.Arch.NumParams), saturating instead of overflowing.
func (s SurrogateConfig) numParams(in, out int) int {
	n, prev := 0, in
	for _, w := range s.Hidden {
		layer := addSat(mulSat(prev, w), w)
		if s.LayerNorm {
			layer = addSat(layer, mulSat(2, w))
		}
		n, prev = addSat(n, layer), w
	}
	return addSat(n, addSat(mulSat(prev, out), out))
}

// ValidateDims checks what needs the box's dimensions, in inputs and out
// outputs: the memory of the random initial design (and of the offline
// dataset), points × in × 8 bytes, within MaxBytes, and the surrogate's
// weight count within MaxParams. Run calls it before the first query.
func (c Config) ValidateDims(in, out int) error {
	var errs []error
	bad := func(key, format string, a ...any) { errs = append(errs, fmt.Errorf(key+": "+format, a...)) }
	design := func(key string, points int) {
		if b := mulSat(mulSat(points, in), 8); b > MaxBytes {
			bad(key, "%d points × %d inputs × 8 bytes = %s: want at most %s", points, in, gib(b), gib(MaxBytes))
		}
	}
	if len(c.Init.X) == 0 {
		design("init.points", c.Init.Points)
	}
	if c.Mode == ModeOffline && c.Offline.Journal == "" {
		design("offline.points", c.Offline.Points)
	}
	if c.UsesSurrogate() {
		if n := c.Surrogate.numParams(in, out); n > MaxParams {
			bad("surrogate.hidden", "%v on %d inputs and %d outputs has %d weights: want at most %d", c.Surrogate.Hidden, in, out, n, MaxParams)
		}
	}
	return errors.Join(errs...)
}

// inRange appends an error naming key, v and the range [lo, hi] to errs
// when v is outside it; note explains a special value. It reports whether
// v is in range.
func inRange(errs *[]error, key string, v, lo, hi int, note string) bool {
	if v >= lo && v <= hi {
		return true
	}
	*errs = append(*errs, fmt.Errorf("%s: %d: want %d to %d%s", key, v, lo, hi, note))
	return false
}

// gib writes a byte count in GiB, or TiB, PiB, EiB when larger.
func gib(b int) string {
	if b == math.MaxInt {
		return "more than 8 EiB"
	}
	v := float64(b) / (1 << 30)
	unit := "GiB"
	for _, u := range []string{"TiB", "PiB", "EiB"} {
		if v < 1024 {
			break
		}
		v, unit = v/1024, u
	}
	return strings.TrimSuffix(strconv.FormatFloat(v, 'f', 1, 64), ".0") + " " + unit
}

// StepRate is the Adam learning rate on x at iteration t of 1…Iterations:
// StepLR, or with StepLRFinal the half-cosine from StepLR at t = 1 to
// StepLRFinal at t = Iterations. It depends on t only, so a resumed run
// steps as the uninterrupted one did.
func (c Config) StepRate(t int) float64 {
	if c.StepLRFinal <= 0 || c.Iterations <= 1 {
		return c.StepLR
	}
	f := float64(min(max(t, 1), c.Iterations)-1) / float64(c.Iterations-1)
	return c.StepLRFinal + (c.StepLR-c.StepLRFinal)*(1+math.Cos(math.Pi*f))/2
}
