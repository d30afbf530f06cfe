package main

import (
	"context"
	"errors"
	"fmt"
	"github.com/insitu-lab/insitu/surrogate"

	"github.com/insitu-lab/insitu"
	"github.com/insitu-lab/insitu/loop"
	"github.com/insitu-lab/insitu/loop/journal"
	"github.com/insitu-lab/insitu/safety"
)

// runConfig is a whole `insitu run` config file: the loop's settings at the
// top level, and the black box, objective, safety and journal sections.
type runConfig struct {
	Name        string `mapstructure:"name" yaml:"name,omitempty" doc:"names the run: the run directory runs/NAME-METHOD-sSEED-TIME and the problem runs compare and plot group by"`
	loop.Config `mapstructure:",squash" yaml:",inline"`
	BlackBox    map[string]any       `mapstructure:"blackbox" yaml:"blackbox" doc:"the black box: its kind and the kind's keys (see the blackbox kind sections)"`
	Objective   loop.ObjectiveConfig `mapstructure:"objective" yaml:"objective" doc:"the scalar the run optimizes, computed from the outputs"`
	Safety      safety.Config        `mapstructure:"safety" yaml:"safety" doc:"the guard every query passes: bounds, slew, rate, budget, watchdog, output checks, interlocks"`
	Journal     journalConfig        `mapstructure:"journal" yaml:"journal" doc:"how results are committed to DIR/journal.db"`
	// Calibration is how `insitu calibrate` works on the bench; a run
	// ignores it.
	Calibration calibrationConfig `mapstructure:"calibration" yaml:"calibration,omitempty" doc:"how insitu calibrate fourier, settle and wavefront work on the bench; a run ignores it"`
}

type journalConfig struct {
	// Sync: "iteration" (one commit per iteration, the default) or "query"
	// (every result committed before the next query).
	Sync string `mapstructure:"sync" yaml:"sync" doc:"iteration: one commit per iteration (a crash loses at most the iteration in flight); query: every result committed before the next query"`
}

// precision is where a resume puts its checkpoint's surrogate precision
// before the stored config is decoded over it.
func (c *runConfig) precision() *surrogate.Precision { return &c.Surrogate.Precision }

func defaultRunConfig() runConfig {
	return runConfig{
		Config:    loop.DefaultConfig(),
		BlackBox:  map[string]any{},
		Objective: loop.ObjectiveConfig{Kind: "distance"},
		Journal:   journalConfig{Sync: "iteration"},
	}
}

// validate reports every problem of the config, each naming its key.
func (c runConfig) validate() error {
	var errs []error
	if err := c.Config.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Safety.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := checkRunName(c.Name); err != nil {
		errs = append(errs, err)
	}
	if err := c.Calibration.validate(); err != nil {
		errs = append(errs, err)
	}
	if k, _ := c.BlackBox["kind"].(string); k == "" {
		errs = append(errs, fmt.Errorf("blackbox.kind: missing (known kinds: %v)", insitu.Kinds()))
	} else if !insitu.IsRegistered(k) {
		errs = append(errs, fmt.Errorf("blackbox.kind: unknown kind %q (known kinds: %v)", k, insitu.Kinds()))
	}
	switch c.Journal.Sync {
	case "iteration", "query":
	default:
		errs = append(errs, fmt.Errorf("journal.sync: %q: want iteration or query", c.Journal.Sync))
	}
	return errors.Join(errs...)
}

// policy is the journal's sync policy.
func (c journalConfig) policy() journal.SyncPolicy {
	if c.Sync == "query" {
		return journal.SyncEvery
	}
	return journal.SyncPerIteration
}

// build makes the black box from the registry and the objective on it; file
// names the config in errors.
func (c runConfig) build(ctx context.Context, file string) (insitu.BlackBox, loop.Objective, loop.Direction, error) {
	kind, _ := c.BlackBox["kind"].(string)
	values := map[string]any{}
	for k, v := range c.BlackBox {
		if k != "kind" {
			values[k] = v
		}
	}
	box, err := insitu.New(ctx, insitu.Params{Kind: kind, Values: values, File: file, Prefix: "blackbox", Line: fileOrigin(file).line})
	if err != nil {
		return nil, nil, "", err
	}
	obj, dir, err := loop.NewObjective(ctx, c.Objective, box)
	if err != nil {
		return nil, nil, "", prefixFile(file, err)
	}
	return box, obj, dir, nil
}

func prefixFile(file string, err error) error {
	if file == "" || err == nil {
		return err
	}
	return fmt.Errorf("%s: %w", file, err)
}
