// Package reproduce runs the paper-reproduction grid of issue 7 — tasks ×
// methods × seeds, each cell one `insitu run`, `insitu train` or `insitu
// study gradient` — on a worker pool, resumably, and writes a Markdown report
// with the paper's numbers beside ours.
package reproduce

import (
	"fmt"
	"path/filepath"
	"strconv"
)

// Kind says which insitu command a task's cells run.
type Kind string

const (
	KindRun   Kind = "run"   // insitu run: an optimization, journaled per query
	KindTrain Kind = "train" // insitu train: a PNN training, journaled per query
	KindStudy Kind = "study" // insitu study gradient: one cell, gradient.csv
)

// Task is one row group of the report: a config, its overrides, the methods
// compared and how many seeds and iterations (epochs for train and study).
type Task struct {
	Name       string   // directory and section name, e.g. "cnon-N10-M0"
	Title      string   // section title
	Kind       Kind     //
	Config     string   // config file
	Sets       []string // --set key=value overrides
	Methods    []string // methods compared (KindStudy: ignored)
	Seeds      int      // seeds 1..Seeds
	Iterations int      // iterations (run) or epochs (train, study)
	Paper      string   // key of the paper's Table 1 block ("" if none)
	LogY       bool     // plot on a log scale
}

// Cell is one command of the grid.
type Cell struct {
	Task       string
	Kind       Kind
	Config     string
	Sets       []string
	Method     string
	Seed       uint64
	Iterations int
}

// Dir is the cell's directory relative to the grid's output directory.
func (c Cell) Dir() string {
	if c.Kind == KindStudy {
		return c.Task
	}
	return filepath.Join(c.Task, fmt.Sprintf("%s-s%d", c.Method, c.Seed))
}

// Args are the insitu arguments that start the cell in dir.
func (c Cell) Args(dir string) []string {
	n := strconv.Itoa(c.Iterations)
	switch c.Kind {
	case KindStudy:
		// One model at a time: the pool already keeps both cores busy.
		return []string{"study", "gradient", c.Config, "-q", "--out", dir, "--epochs", n, "--workers", "1"}
	case KindTrain:
		return []string{"train", c.Config, "-q", "--out", dir, "--method", c.Method, "--seed", strconv.FormatUint(c.Seed, 10), "--epochs", n}
	}
	args := []string{"run", c.Config, "-q", "--out", dir, "--method", c.Method, "--seed", strconv.FormatUint(c.Seed, 10), "--iterations", n}
	for _, s := range c.Sets {
		args = append(args, "--set", s)
	}
	return args
}

// ResumeArgs are the insitu arguments that continue an interrupted cell.
func (c Cell) ResumeArgs(dir string) []string {
	if c.Kind == KindTrain {
		return []string{"train", "--resume", dir, "-q"}
	}
	return []string{"resume", dir, "-q"}
}

// Grid is every task of one scale.
type Grid struct {
	Scale string
	Tasks []Task
}

// Cells lists the grid's cells task by task, method by method, seed by seed.
func (g Grid) Cells() []Cell {
	var cs []Cell
	for _, t := range g.Tasks {
		if t.Kind == KindStudy {
			cs = append(cs, Cell{Task: t.Name, Kind: t.Kind, Config: t.Config, Sets: t.Sets, Method: "study", Seed: 1, Iterations: t.Iterations})
			continue
		}
		for _, m := range t.Methods {
			for s := 1; s <= t.Seeds; s++ {
				cs = append(cs, Cell{Task: t.Name, Kind: t.Kind, Config: t.Config, Sets: t.Sets, Method: m, Seed: uint64(s), Iterations: t.Iterations})
			}
		}
	}
	return cs
}

// Task returns the task named name.
func (g Grid) Task(name string) (Task, bool) {
	for _, t := range g.Tasks {
		if t.Name == name {
			return t, true
		}
	}
	return Task{}, false
}

// Scales are the public scales; "test" is a hidden tiny one for tests.
var Scales = []string{"quick", "full"}

// Sizes of each scale. quick: about 14 min of wall time on 2 cores by the
// timings of docs/results (CNON N=10 both M ≈ 4 min, op-amp ≈ 0.5 min +
// ngspice ≈ 1 min, OWMS ≈ 3 min, study ≈ 2.5 min, PNN ≈ 3 min), so within
// 30 min with a shared machine. full: the paper's 200 iterations and 100
// starting points per method (stated for OWMS; assumed for CNON and the
// op-amp), both CNON sizes, the paper's OWMS network, the study's 100
// epochs, and the PNN comparison's 5 seeds × 10 epochs.
type sizes struct {
	seeds, iters           int // CNON, op-amp
	owmsSeeds, owmsIters   int
	owmsSets               []string
	studyEpochs            int
	pnnSeeds, pnnEpochs    int
	cnonN                  []int
	cnonMethods, opMethods []string
	owmsMethods, pnn       []string
	noOWMS, noStudy, noPNN bool
	tinySets               []string // extra overrides (test scale)
}

var (
	cnonMethods = []string{"exact", "gradpie", "mae", "random", "cmaes"}
	opMethods   = []string{"gradpie", "mae", "random", "cmaes"} // the op-amp twin has no VJP
	pnnMethods  = []string{"exact", "insitu-gradpie", "insitu-mae", "pat", "insilico"}
)

func scaleSizes(scale string) (sizes, error) {
	switch scale {
	case "quick":
		return sizes{seeds: 3, iters: 100, owmsSeeds: 3, owmsIters: 30, owmsSets: []string{"surrogate.hidden=[256,256]"},
			studyEpochs: 30, pnnSeeds: 2, pnnEpochs: 5, cnonN: []int{10},
			cnonMethods: cnonMethods, opMethods: opMethods, owmsMethods: cnonMethods, pnn: pnnMethods}, nil
	case "full":
		return sizes{seeds: 100, iters: 200, owmsSeeds: 100, owmsIters: 200,
			studyEpochs: 100, pnnSeeds: 5, pnnEpochs: 10, cnonN: []int{10, 20},
			cnonMethods: cnonMethods, opMethods: opMethods, owmsMethods: cnonMethods, pnn: pnnMethods}, nil
	case "test":
		return sizes{seeds: 1, iters: 3, cnonN: []int{10},
			cnonMethods: []string{"exact", "gradpie", "mae"}, opMethods: []string{"gradpie", "mae", "random"},
			noOWMS: true, noStudy: true, noPNN: true,
			tinySets: []string{"init.points=20", "surrogate.hidden=[16,16]", "surrogate.initial_epochs=2", "surrogate.epochs=1"}}, nil
	}
	return sizes{}, fmt.Errorf("scale %q: want quick or full", scale)
}

// NewGrid builds the grid of a scale ("quick", "full"; "test" is tiny) with
// configs read from configDir; the ngspice op-amp task is included only when
// ngspice is true (ngspice on PATH).
func NewGrid(scale, configDir string, ngspice bool) (Grid, error) {
	z, err := scaleSizes(scale)
	if err != nil {
		return Grid{}, err
	}
	cfg := func(name string) string { return filepath.Join(configDir, name) }
	g := Grid{Scale: scale}
	for _, n := range z.cnonN {
		for _, m := range []int{0, 1} {
			if scale == "test" && m == 1 {
				continue
			}
			sets := append([]string{fmt.Sprintf("blackbox.n=%d", n), fmt.Sprintf("local.samples=%d", m)}, z.tinySets...)
			g.Tasks = append(g.Tasks, Task{
				Name: fmt.Sprintf("cnon-N%d-M%d", n, m), Title: fmt.Sprintf("CNON, N = %d, M = %d (loss, lower is better)", n, m),
				Kind: KindRun, Config: cfg("cnon.yaml"), Sets: sets, Methods: z.cnonMethods,
				Seeds: z.seeds, Iterations: z.iters, Paper: fmt.Sprintf("cnon-M%d", m), LogY: true,
			})
		}
	}
	g.Tasks = append(g.Tasks, Task{Name: "opamp-analytic", Title: "Op-amp, analytic backend (FoM, higher is better)",
		Kind: KindRun, Config: cfg("opamp.yaml"), Sets: z.tinySets, Methods: z.opMethods, Seeds: z.seeds, Iterations: z.iters, Paper: "opamp"})
	if ngspice && scale != "test" {
		g.Tasks = append(g.Tasks, Task{Name: "opamp-ngspice", Title: "Op-amp, ngspice backend (FoM, higher is better)",
			Kind: KindRun, Config: cfg("opamp-ngspice.yaml"), Methods: z.opMethods, Seeds: z.seeds, Iterations: z.iters, Paper: "opamp"})
	}
	if !z.noOWMS {
		title := "OWMS (complex-field L2 loss, lower is better)"
		if len(z.owmsSets) > 0 {
			title = "OWMS with a 256-256 surrogate (complex-field L2 loss, lower is better)"
		}
		g.Tasks = append(g.Tasks, Task{Name: "owms", Title: title, Kind: KindRun, Config: cfg("owms.yaml"), Sets: z.owmsSets,
			Methods: z.owmsMethods, Seeds: z.owmsSeeds, Iterations: z.owmsIters, Paper: "owms"})
	}
	if !z.noStudy {
		g.Tasks = append(g.Tasks, Task{Name: "gradient-study", Title: "Gradient quality on CNON: MAE vs GradPIE-kNN",
			Kind: KindStudy, Config: cfg("study-gradient.yaml"), Seeds: 1, Iterations: z.studyEpochs})
	}
	if !z.noPNN {
		for _, twin := range []string{"pnn-cnon", "pnn-optical"} {
			g.Tasks = append(g.Tasks, Task{Name: twin, Title: "PNN training, " + twin + " (test accuracy on the real twin)",
				Kind: KindTrain, Config: cfg(twin + ".yaml"), Methods: z.pnn, Seeds: z.pnnSeeds, Iterations: z.pnnEpochs})
		}
	}
	return g, nil
}

// Checkpoints are the iterations a task's table reports: the paper's 50,
// 100, 200 where the run is that long, else the last three of 10, 25, 50,
// 100 that fit, and always the run's last iteration.
func Checkpoints(iters int) []int {
	var cs []int
	for _, c := range []int{10, 25, 50, 100, 200} {
		if c < iters {
			cs = append(cs, c)
		}
	}
	cs = append(cs, iters)
	if len(cs) > 3 {
		cs = cs[len(cs)-3:]
	}
	return cs
}
