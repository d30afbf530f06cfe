package insitu

import (
	"context"
	"errors"
	"fmt"
)

// LabeledSet is classification data: X[i] is a data input u, Y[i] its
// class in [0, classes).
type LabeledSet struct {
	X [][]float64
	Y []int
}

// Len is the number of samples.
func (s LabeledSet) Len() int { return len(s.X) }

// TrainData is a train/test split.
type TrainData struct {
	Train, Test LabeledSet
	Classes     int
}

// Validate checks shapes and labels against du inputs.
func (d TrainData) Validate(du int) error {
	var errs []error
	if d.Classes < 2 {
		errs = append(errs, fmt.Errorf("data: %d classes: want ≥ 2", d.Classes))
	}
	if d.Train.Len() == 0 {
		errs = append(errs, errors.New("data: empty training set"))
	}
	if d.Test.Len() == 0 {
		errs = append(errs, errors.New("data: empty test set"))
	}
	for name, s := range map[string]LabeledSet{"train": d.Train, "test": d.Test} {
		if len(s.Y) != len(s.X) {
			errs = append(errs, fmt.Errorf("data: %s set has %d inputs but %d labels", name, len(s.X), len(s.Y)))
			continue
		}
		for i := range s.X {
			if len(s.X[i]) != du {
				errs = append(errs, fmt.Errorf("data: %s sample %d has %d values, the box takes %d data inputs", name, i, len(s.X[i]), du))
				break
			}
			if s.Y[i] < 0 || s.Y[i] >= d.Classes {
				errs = append(errs, fmt.Errorf("data: %s sample %d has label %d, want [0, %d)", name, i, s.Y[i], d.Classes))
				break
			}
		}
	}
	return errors.Join(errs...)
}

// DataConfig is the `data` section of a training config. Params holds a
// generator's own keys.
type DataConfig struct {
	Kind         string         `mapstructure:"kind" yaml:"kind" doc:"moons, blobs, circles or iris"`
	N            int            `mapstructure:"n" yaml:"n" doc:"samples generated (iris: ignored, 150)"`
	Noise        float64        `mapstructure:"noise" yaml:"noise" doc:"noise of the generated samples"`
	TestFraction float64        `mapstructure:"test_fraction" yaml:"test_fraction" doc:"share of the samples held out as the test set"`
	Seed         uint64         `mapstructure:"seed" yaml:"seed" doc:"draws the samples and the split; 0: the run's seed, so each seed of a comparison trains on its own dataset"`
	Classes      int            `mapstructure:"classes" yaml:"classes,omitempty" doc:"blobs: the number of classes; 0: 3 (the other kinds have a fixed number)"`
	Params       map[string]any `mapstructure:",remain" yaml:",inline"`
}

// DatasetFactory generates a dataset from its config, split into train
// and test sets.
type DatasetFactory func(ctx context.Context, c DataConfig) (TrainData, error)

// datasets holds the dataset kinds training configs can name; a package
// of generators registers them from init.
var datasets = NewRegistry[DatasetFactory]("kind")

// RegisterDataset makes kind available to training configs. It panics on
// an empty or duplicate kind or a nil factory.
func RegisterDataset(kind string, f DatasetFactory) { datasets.Register(kind, f) }

// LookupDataset returns the factory of kind, or an error listing the
// registered kinds.
func LookupDataset(kind string) (DatasetFactory, error) { return datasets.Lookup(kind) }

// DatasetKinds lists the registered dataset kinds, sorted.
func DatasetKinds() []string { return datasets.Names() }
