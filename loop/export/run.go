// Package export turns a run's journal into the files other tools read:
// NetCDF for xarray, Bluesky event-model documents, CSV for pandas and
// spreadsheets, and .npy arrays for NumPy. Every format carries the names,
// units and roles of the inputs and outputs, the objective, each query's
// iteration, role, status and timestamps, and the run's metadata (method,
// seed, config, status, the insitu version and the devices), so that a
// file explains itself without the journal or this program.
package export

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"go.yaml.in/yaml/v3"

	"github.com/insitu-lab/insitu/loop"
	"github.com/insitu-lab/insitu/loop/journal"
)

// Variable and Description are the journal's: what a run measured, as it
// stored them at its start.
type (
	Variable    = journal.Variable
	Description = journal.Description
)

// Run is a journal read whole.
type Run struct {
	Dir      string
	Meta     journal.Meta
	Config   []byte // the resolved config, YAML
	Name     string // the config's name (or the directory's)
	Training bool   // an `insitu train` run: its iterations are epochs, Best is the test accuracy
	Problem  Problem
	Desc     Description
	// Stored is false when the journal holds no description (it predates
	// them) and Desc was made by describing its config with this build.
	Stored     bool
	Queries    []journal.Query
	Iterations []journal.Iteration
	Events     []journal.EventRecord
}

// Problem is what a run optimizes: runs of one problem can be compared and
// averaged, runs of different problems never.
type Problem struct {
	Name      string // the config's name
	Objective string // the objective's kind; "accuracy" for a training
	Direction journal.Direction
	Training  bool
}

func (p Problem) String() string {
	dir := "minimized"
	if p.Direction == journal.Maximize {
		dir = "maximized"
	}
	if p.Training {
		return fmt.Sprintf("%s (training: test accuracy, %s)", p.Name, dir)
	}
	return fmt.Sprintf("%s (%s, %s)", p.Name, p.Objective, dir)
}

// ProblemOf is the problem of a run from its metadata and config; dir
// names the run when the config has no name.
func ProblemOf(dir string, m journal.Meta, config []byte) Problem {
	var top struct {
		Name      string         `yaml:"name"`
		Objective map[string]any `yaml:"objective"`
	}
	_ = yaml.Unmarshal(config, &top)
	training, _ := loop.IsTrainingDoc(config)
	p := Problem{Name: top.Name, Direction: m.Direction, Training: training}
	if p.Direction == "" {
		p.Direction = journal.Minimize
	}
	if p.Name == "" {
		p.Name = m.Kind
	}
	if p.Name == "" {
		p.Name = filepath.Base(dir)
	}
	if training {
		p.Objective = "accuracy"
	} else if k, _ := top.Objective["kind"].(string); k != "" {
		p.Objective = k
	} else {
		p.Objective = "distance" // the default kind
	}
	return p
}

// Fallback describes a journal that holds no description of its
// variables (one older than stored descriptions), from its config with
// this build; the command passes its own.
type Fallback func(ctx context.Context, j *journal.Journal) (Description, error)

// Load reads the journal in dir whole, read-only, leaving no file behind
// (journal.Peek). Its variables are the ones it stored; fallback describes
// an older journal's.
func Load(ctx context.Context, dir string, fallback Fallback) (*Run, error) {
	j, err := journal.Peek(dir)
	if err != nil {
		return nil, err
	}
	defer j.Close()
	r := &Run{Dir: dir, Stored: true}
	if r.Meta, err = j.Meta(ctx); err != nil {
		return nil, err
	}
	if r.Config, err = j.Config(ctx); err != nil {
		return nil, err
	}
	if r.Queries, err = j.Queries(ctx); err != nil {
		return nil, err
	}
	if r.Iterations, err = j.Iterations(ctx); err != nil {
		return nil, err
	}
	if r.Events, err = j.Events(ctx); err != nil {
		return nil, err
	}
	r.Problem = ProblemOf(dir, r.Meta, r.Config)
	r.Name, r.Training = r.Problem.Name, r.Problem.Training
	r.Desc, err = j.Describe(ctx)
	if errors.Is(err, journal.ErrNoDescription) && fallback != nil {
		r.Stored = false
		r.Desc, err = fallback(ctx, j)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: the variables: %w", dir, err)
	}
	if r.Desc.Objective.Kind == "" && !r.Training {
		r.Desc.Objective.Kind = r.Problem.Objective
	}
	return r, nil
}
