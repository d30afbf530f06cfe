package pnn

import (
	"context"
	"strings"
	"testing"

	"github.com/insitu-lab/insitu/loop"
)

func TestDatasetKindsForTraining(t *testing.T) {
	ctx := context.Background()
	d, err := loop.NewDataset(ctx, loop.DataConfig{Kind: "iris", N: 150, TestFraction: 0.3, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Train.X) != 105 || len(d.Test.X) != 45 || d.Classes != 3 || len(d.Train.X[0]) != 4 {
		t.Errorf("iris: %d train, %d test, %d classes", len(d.Train.X), len(d.Test.X), d.Classes)
	}
	d, err = loop.NewDataset(ctx, loop.DataConfig{Kind: "blobs", N: 90, Noise: 0.2, TestFraction: 0.2, Seed: 2, Classes: 3})
	if err != nil || d.Classes != 3 || len(d.Train.X)+len(d.Test.X) != 90 {
		t.Errorf("blobs: %+v, %v", d.Classes, err)
	}
	if _, err := loop.NewDataset(ctx, loop.DataConfig{Kind: "moons", N: 50, TestFraction: 0.2, Classes: 3}); err == nil || !strings.Contains(err.Error(), "data.classes") {
		t.Errorf("moons with classes: %v", err)
	}
}
