package loop

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"go.yaml.in/yaml/v3"

	"github.com/insitu-lab/insitu"
	"github.com/insitu-lab/insitu/surrogate"
)

// Training methods of Train; TrainConfig.Method picks one.
const (
	TrainInsituGradPIE = "insitu-gradpie" // backward through an online GradPIE-kNN surrogate
	TrainInsituMAE     = "insitu-mae"     // the same with the MAE base loss
	TrainExact         = "exact"          // backward through the real box's exact VJP (upper bound)
	TrainInsilico      = "insilico"       // train on the ideal twin, deploy θ on the real box
	TrainPAT           = "pat"            // forward on the real box, backward through the ideal twin
)

// TrainMethods returns every training method, in a new slice.
func TrainMethods() []string {
	return []string{TrainInsituGradPIE, TrainInsituMAE, TrainExact, TrainInsilico, TrainPAT}
}

// TrainingKeys are the top-level keys only a training config has.
var TrainingKeys = []string{"data", "epochs", "ideal_blackbox"}

// IsTrainingDoc reports whether a YAML config document is an `insitu train`
// one: it has a top-level key only a training knows (a run config refuses
// them all).
func IsTrainingDoc(doc []byte) (bool, error) {
	var top map[string]any
	if err := yaml.Unmarshal(doc, &top); err != nil {
		return false, err
	}
	for _, k := range TrainingKeys {
		if _, ok := top[k]; ok {
			return true, nil
		}
	}
	return false, nil
}

// TrainConfig is everything Train needs besides the boxes and the data.
// The learning rate is in normalized θ units: the θ box maps to [0,1]^dθ.
type TrainConfig struct {
	Method string  `mapstructure:"method" yaml:"method" doc:"insitu-gradpie, insitu-mae, exact (the box's own gradient), insilico (train on the ideal twin) or pat (physics-aware training)"`
	Seed   uint64  `mapstructure:"seed" yaml:"seed" doc:"θ initialization, minibatch order, surrogate"`
	Epochs int     `mapstructure:"epochs" yaml:"epochs" doc:"passes over the training set"`
	Batch  int     `mapstructure:"batch" yaml:"batch" doc:"minibatch size"`
	LR     float64 `mapstructure:"lr" yaml:"lr" doc:"Adam learning rate on θ, normalized units (the θ box maps to [0, 1])"`
	// ThetaInit is the initial θ in the box's units; empty: uniform in the
	// θ box, drawn with Seed.
	ThetaInit []float64 `mapstructure:"theta_init" yaml:"theta_init,omitempty" doc:"initial θ in the box's units; empty: uniform in the θ box, drawn with seed"`
	// Du is the number of data coordinates at the front of the input; 0:
	// the caller asks the box (Splitter).
	Du int `mapstructure:"du" yaml:"du,omitempty" doc:"data coordinates at the front of the input; 0: asked of the box"`
	// Scale multiplies the class scores before the softmax (a physical
	// readout's units are arbitrary).
	Scale float64 `mapstructure:"scale" yaml:"scale" doc:"multiplies the class scores before the softmax (a physical readout's units are arbitrary)"`
	// EvalEvery evaluates θ on the train and test sets (on the real box)
	// every this many epochs, and after the last one.
	EvalEvery int `mapstructure:"eval_every" yaml:"eval_every" doc:"measure train and test accuracy on the box every this many epochs, and after the last"`
	// CheckpointEvery saves θ, its Adam state, the metrics and the
	// surrogate with its trainer every this many epochs (and after the
	// last), so a resume starts there instead of retraining the surrogate
	// over every earlier epoch; 0: never.
	CheckpointEvery int `mapstructure:"checkpoint_every" yaml:"checkpoint_every" doc:"save θ, its optimizer and the surrogate every this many epochs, so a resume starts there; 0: never"`
	// Local, for the in-situ methods (the others ignore it, as they ignore
	// Surrogate): after each minibatch's queries at θ,
	// Samples more queries at θ moved by σ·N(0, I) (normalized units), each
	// at one of the minibatch's data inputs in turn. They only feed the
	// surrogate: every minibatch query shares one θ, so without them the
	// surrogate's data, and its nearest-neighbour pairs, tell it how the
	// output moves with the data input u and nothing of how it moves with
	// θ — the gradient training needs.
	Local LocalConfig `mapstructure:"local" yaml:"local" doc:"in-situ methods: extra queries around θ after each minibatch, so the surrogate learns how outputs move with θ"`
	// Surrogate of the in-situ methods; InitialEpochs are trained when it
	// is built (after the first evaluation), Epochs after every minibatch.
	Surrogate SurrogateConfig `mapstructure:"surrogate" yaml:"surrogate" doc:"the surrogate of the in-situ methods"`
}

// DefaultTrainConfig is a small in-situ GradPIE training.
func DefaultTrainConfig() TrainConfig {
	return TrainConfig{
		Method: TrainInsituGradPIE, Seed: 1, Epochs: 20, Batch: 16, LR: 0.05, Scale: 1, EvalEvery: 1, CheckpointEvery: 1,
		Local: LocalConfig{Sigma: 0.02},
		Surrogate: SurrogateConfig{
			Hidden: []int{64, 64}, InitialEpochs: 50, Epochs: 3, LR: 1e-3, Batch: 128, K: 5, Norm: surrogate.NormL1,
			InputScaling: surrogate.DefaultInputScaling, OutputScaling: surrogate.DefaultOutputScaling,
			Precision: surrogate.Float64,
		},
	}
}

// UsesSurrogate reports whether the method trains a surrogate.
func (c TrainConfig) UsesSurrogate() bool {
	return c.Method == TrainInsituGradPIE || c.Method == TrainInsituMAE
}

// UsesIdeal reports whether the method needs the ideal twin.
func (c TrainConfig) UsesIdeal() bool { return c.Method == TrainInsilico || c.Method == TrainPAT }

// Validate reports every problem, each naming its key.
func (c TrainConfig) Validate() error {
	var errs []error
	bad := func(key, format string, a ...any) { errs = append(errs, fmt.Errorf(key+": "+format, a...)) }
	count := func(key string, v, lo, hi int, note string) bool { return inRange(&errs, key, v, lo, hi, note) }
	finite := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
	if !slices.Contains(TrainMethods(), c.Method) {
		bad("method", "%q: want one of %v", c.Method, TrainMethods())
	}
	count("epochs", c.Epochs, 1, MaxEpochs, "")
	count("batch", c.Batch, 1, MaxBatch, "")
	if !(c.LR > 0) || !finite(c.LR) {
		bad("lr", "%v: want a finite value > 0", c.LR)
	}
	count("du", c.Du, 0, MaxDataInputs, " (0: from the box)")
	if !(c.Scale > 0) || !finite(c.Scale) {
		bad("scale", "%v: want a finite value > 0", c.Scale)
	}
	count("eval_every", c.EvalEvery, 1, MaxEpochs, "")
	count("checkpoint_every", c.CheckpointEvery, 0, MaxEpochs, " (0: never)")
	for i, v := range c.ThetaInit {
		if !finite(v) {
			bad(fmt.Sprintf("theta_init[%d]", i), "%v: want a finite value", v)
		}
	}
	count("local.samples", c.Local.Samples, 0, MaxBatch, " (θ-local queries per minibatch)")
	if !(c.Local.Sigma >= 0) || !finite(c.Local.Sigma) || c.Local.Sigma > 1 {
		bad("local.sigma", "%v: want a spread in [0, 1] (normalized θ units)", c.Local.Sigma)
	}
	if c.UsesSurrogate() {
		errs = append(errs, c.Surrogate.problems()...)
		if c.Surrogate.Overlap {
			bad("surrogate.overlap", "true: training has no queries to overlap with (it applies to insitu run)")
		}
	}
	return errors.Join(errs...)
}

// The dataset vocabulary lives in the root package, so that a package of
// generators can register datasets without importing the optimizer.
type (
	LabeledSet     = insitu.LabeledSet
	TrainData      = insitu.TrainData
	DataConfig     = insitu.DataConfig
	DatasetFactory = insitu.DatasetFactory
)

// Split shuffles a labelled set with seed and puts round(testFraction·n)
// samples (at least one, and at least one left to train on) in the test set.
func Split(all LabeledSet, classes int, testFraction float64, seed uint64) TrainData {
	n := all.Len()
	perm := rand.New(rand.NewPCG(seed, saltSplit)).Perm(n)
	nt := min(max(int(math.Round(testFraction*float64(n))), 1), max(n-1, 0))
	d := TrainData{Classes: classes}
	for k, i := range perm {
		s := &d.Train
		if k < nt {
			s = &d.Test
		}
		s.X = append(s.X, all.X[i])
		s.Y = append(s.Y, all.Y[i])
	}
	return d
}

// ValidateData checks the generic keys of a data section; the generator
// checks the rest.
func ValidateData(c DataConfig) error {
	var errs []error
	if c.Kind == "" {
		errs = append(errs, fmt.Errorf("data.kind: missing (known kinds: %v)", insitu.DatasetKinds()))
	} else if _, err := insitu.LookupDataset(c.Kind); err != nil {
		errs = append(errs, fmt.Errorf("data.kind: %w", err))
	}
	inRange(&errs, "data.n", c.N, 2, MaxDataPoints, "")
	if !(c.Noise >= 0) || math.IsInf(c.Noise, 0) {
		errs = append(errs, fmt.Errorf("data.noise: %v: want a finite value ≥ 0", c.Noise))
	}
	if !(c.TestFraction > 0 && c.TestFraction < 1) {
		errs = append(errs, fmt.Errorf("data.test_fraction: %v: want a value in (0, 1)", c.TestFraction))
	}
	return errors.Join(errs...)
}

// NewDataset generates the dataset c names and checks it.
func NewDataset(ctx context.Context, c DataConfig) (TrainData, error) {
	if err := ValidateData(c); err != nil {
		return TrainData{}, err
	}
	f, err := insitu.LookupDataset(c.Kind)
	if err != nil {
		return TrainData{}, fmt.Errorf("data.kind: %w", err)
	}
	d, err := f(ctx, c)
	if err != nil {
		return TrainData{}, fmt.Errorf("data (%s): %w", c.Kind, err)
	}
	return d, nil
}
