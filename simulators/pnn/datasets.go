package pnn

import (
	"context"
	"fmt"

	"github.com/insitu-lab/insitu"
	"github.com/insitu-lab/insitu/simulators/pnn/data"
)

// The generated classification sets join `insitu train` configs as data
// kinds moons, blobs and circles; blobs also reads data.classes (default 3).
// Kind iris is the real Iris table (150 rows, 4 inputs, 3 classes): n and
// noise do not apply to it.
func init() {
	insitu.RegisterDataset("iris", func(_ context.Context, c insitu.DataConfig) (insitu.TrainData, error) {
		for k := range c.Params {
			return insitu.TrainData{}, fmt.Errorf("data.%s: unknown key for kind iris", k)
		}
		if c.Classes != 0 {
			return insitu.TrainData{}, fmt.Errorf("data.classes: kind iris has 3 classes, not %d", c.Classes)
		}
		d, err := data.Iris()
		if err != nil {
			return insitu.TrainData{}, fmt.Errorf("data: %w", err)
		}
		train, test, err := d.Split(c.Seed, c.TestFraction)
		if err != nil {
			return insitu.TrainData{}, fmt.Errorf("data.test_fraction: %w", err)
		}
		return insitu.TrainData{
			Train:   insitu.LabeledSet{X: train.X, Y: train.Y},
			Test:    insitu.LabeledSet{X: test.X, Y: test.Y},
			Classes: d.Classes,
		}, nil
	})
	for _, kind := range []string{"moons", "blobs", "circles"} {
		insitu.RegisterDataset(kind, func(_ context.Context, c insitu.DataConfig) (insitu.TrainData, error) {
			for k := range c.Params {
				return insitu.TrainData{}, fmt.Errorf("data.%s: unknown key for kind %s", k, kind)
			}
			classes := 2
			switch {
			case c.Classes != 0 && kind != "blobs":
				return insitu.TrainData{}, fmt.Errorf("data.classes: kind %s has 2 classes (only blobs takes classes)", kind)
			case c.Classes < 0 || c.Classes == 1:
				return insitu.TrainData{}, fmt.Errorf("data.classes: %d: want an integer ≥ 2", c.Classes)
			case c.Classes != 0:
				classes = c.Classes
			case kind == "blobs":
				classes = 3
			}
			d, err := data.Generate(kind, c.Seed, c.N, classes, c.Noise)
			if err != nil {
				return insitu.TrainData{}, fmt.Errorf("data: %w", err)
			}
			train, test, err := d.Split(c.Seed, c.TestFraction)
			if err != nil {
				return insitu.TrainData{}, fmt.Errorf("data.test_fraction: %w", err)
			}
			return insitu.TrainData{
				Train:   insitu.LabeledSet{X: train.X, Y: train.Y},
				Test:    insitu.LabeledSet{X: test.X, Y: test.Y},
				Classes: d.Classes,
			}, nil
		})
	}
}
