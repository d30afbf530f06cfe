package insitu

import "context"

// Objective scores a measured output. Grad is ∂Value/∂y, which the
// optimizer sends back through a surrogate's (or a twin's)
// vector-Jacobian product.
type Objective interface {
	Value(y []float64) float64
	Grad(y []float64) []float64
}

// Direction says whether an objective is minimized or maximized.
type Direction string

const (
	Minimize Direction = "min"
	Maximize Direction = "max"
)

// ObjectiveConfig selects and parameterizes an objective.
type ObjectiveConfig struct {
	// Kind: "distance" (‖y − target‖₂), "mse" (mean squared error to the
	// target), "identity" (a scalar black box's own output), "fraction"
	// (the share of the power in the selected outputs), "overlap" (cosine
	// similarity with the target), or a kind a package registered with
	// RegisterObjective.
	Kind      string    `mapstructure:"kind" yaml:"kind" doc:"distance (‖y − target‖₂), mse, identity (a scalar box's output), fraction (share of the power in outputs), overlap (cosine similarity with target), or a registered kind (opamp-fom)"`
	Direction Direction `mapstructure:"direction" yaml:"direction" doc:"min or max; empty: the kind's natural direction"`
	// Outputs restricts the objective to the named outputs; empty: all.
	Outputs []string `mapstructure:"outputs" yaml:"outputs,omitempty" doc:"the outputs the objective uses, by name; empty: all"`
	// Total names the outputs whose sum is the whole power for fraction;
	// empty: all outputs.
	Total []string `mapstructure:"total" yaml:"total,omitempty" doc:"fraction: the outputs whose sum is the whole power; empty: all"`
	// Target for distance and mse: given literally (one value per selected
	// output), or as TargetSeed, which asks a twin for a reachable target
	// (its response to a reference input drawn with that seed).
	Target     []float64 `mapstructure:"target" yaml:"target,omitempty" doc:"distance, mse, overlap: the target, one value per selected output, in the outputs' units"`
	TargetSeed uint64    `mapstructure:"target_seed" yaml:"target_seed,omitempty" doc:"instead of target: a twin's response to a reference input drawn with this seed (a reachable target)"`
}

// Targeter is a twin that can name a reachable target: its noiseless
// response to a reference input drawn with seed.
type Targeter interface {
	Target(seed uint64) (xRef, y []float64)
}

// Spotter is a twin that knows where its target puts the light: the
// indices of the outputs (pixels) inside its target spots, for the
// fraction objective. Nil when its output mode has no such pixels.
type Spotter interface {
	Spots() []int
}

// ObjectiveFactory builds an objective of one kind for a black box. inner
// is the unguarded box, so that a factory can ask a twin for its target.
type ObjectiveFactory func(ctx context.Context, cfg ObjectiveConfig, inner BlackBox) (Objective, Direction, error)

// objectives holds the objective kinds configs can name. The optimizer
// registers the generic ones (distance, mse, identity); a twin registers
// its own figure of merit from init, without depending on the optimizer.
var objectives = NewRegistry[ObjectiveFactory]("kind")

// RegisterObjective makes kind available to configs. It panics on an
// empty or duplicate kind or a nil factory.
func RegisterObjective(kind string, f ObjectiveFactory) { objectives.Register(kind, f) }

// LookupObjective returns the factory of kind, or an error listing the
// registered kinds.
func LookupObjective(kind string) (ObjectiveFactory, error) { return objectives.Lookup(kind) }

// ObjectiveKinds lists the registered objective kinds, sorted.
func ObjectiveKinds() []string { return objectives.Names() }
