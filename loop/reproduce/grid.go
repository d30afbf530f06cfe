// Package reproduce runs the paper-reproduction grid — tasks ×
// methods × seeds, each cell one `insitu run`, `insitu train` or `insitu
// study gradient` — on a worker pool, resumably, and writes a Markdown report
// with the paper's numbers beside ours.
package reproduce

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
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

	// A knob sweep (an honest knob) has Variants: each runs the
	// task's methods (or its own) with extra overrides, and the report
	// compares GradPIE with MAE variant by variant. Its default variant
	// (Name "") reuses the cells of task Base, which must have the same
	// config, overrides, seeds and iterations.
	Variants []Variant
	Base     string
	Why      string // the disagreement the sweep looks at, for the report
}

// Variant is one setting of a knob sweep.
type Variant struct {
	Name       string   // directory ("" for the default: the Base task's cells)
	Label      string   // what changed, for the report
	Sets       []string // --set overrides on top of the task's
	Methods    []string // methods run (nil: the task's)
	Iterations int      // iterations or epochs (0: the task's)
}

// Cell is one command of the grid.
type Cell struct {
	Task       string
	Variant    string // knob sweeps: the variant's directory
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
	if c.Method == "" { // a sweep's cell: the method is the config's
		return filepath.Join(c.Task, c.Variant, fmt.Sprintf("s%d", c.Seed))
	}
	return filepath.Join(c.Task, c.Variant, fmt.Sprintf("%s-s%d", c.Method, c.Seed))
}

// Args are the insitu arguments that start the cell in dir.
func (c Cell) Args(dir string) []string {
	n := strconv.Itoa(c.Iterations)
	switch c.Kind {
	case KindStudy:
		// One model at a time: the pool already keeps both cores busy.
		return []string{"study", "gradient", c.Config, "-q", "--out", dir, "--epochs", n, "--workers", "1"}
	}
	args := []string{"run", c.Config, "-q", "--out", dir}
	if c.Method != "" {
		args = append(args, "--method", c.Method)
	}
	args = append(args, "--seed", strconv.FormatUint(c.Seed, 10))
	if c.Iterations > 0 {
		args = append(args, "--iterations", n)
	}
	if c.Kind == KindTrain {
		args = []string{"train", c.Config, "-q", "--out", dir, "--method", c.Method, "--seed", strconv.FormatUint(c.Seed, 10), "--epochs", n}
	}
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
	// Check is the second block of seeds (e.g. 101..110), drawn after the
	// settings were fixed: every optimization and training task that is
	// not a knob sweep also runs these seeds, and the report sets them
	// beside the task's own (the seeds rule, Claim).
	Check []uint64
}

// WithCheck returns the grid with the second block of seeds added to
// Check (each seed once, in order).
func (g Grid) WithCheck(seeds []uint64) Grid {
	out := g
	out.Check = slices.Clone(g.Check)
	for _, s := range seeds {
		if !slices.Contains(out.Check, s) {
			out.Check = append(out.Check, s)
		}
	}
	slices.Sort(out.Check)
	return out
}

// Blocks returns a task's tuned block of seeds (1..Seeds) and its second
// block (Check minus those), empty for a sweep or a study.
func (g Grid) Blocks(t Task) (tuned, check []uint64) {
	for s := 1; s <= t.Seeds; s++ {
		tuned = append(tuned, uint64(s))
	}
	if len(t.Variants) > 0 || t.Kind == KindStudy {
		return tuned, nil
	}
	for _, s := range g.Check {
		if !slices.Contains(tuned, s) {
			check = append(check, s)
		}
	}
	return tuned, check
}

// Cells lists the grid's cells task by task, method by method, seed by
// seed, each once: a sweep's default variant adds none of its own.
func (g Grid) Cells() []Cell {
	var cs []Cell
	for _, t := range g.Tasks {
		if t.Kind == KindStudy {
			cs = append(cs, Cell{Task: t.Name, Kind: t.Kind, Config: t.Config, Sets: t.Sets, Method: "study", Seed: 1, Iterations: t.Iterations})
			continue
		}
		if len(t.Variants) == 0 {
			cs = append(cs, t.cells(Variant{})...)
			_, check := g.Blocks(t)
			cs = append(cs, t.cellsOf(Variant{}, check)...)
			continue
		}
		for _, v := range t.Variants {
			if v.Name != "" {
				cs = append(cs, t.cells(v)...)
			}
		}
	}
	return cs
}

// VariantCells lists the cells of one variant of a sweep; the default
// variant's are the Base task's (same directories, same commands).
func (g Grid) VariantCells(t Task, v Variant) []Cell {
	cs := t.cells(v)
	if v.Name == "" && t.Base != "" {
		for i := range cs {
			cs[i].Task = t.Base
		}
	}
	return cs
}

func (t Task) cells(v Variant) []Cell {
	var seeds []uint64
	for s := 1; s <= t.Seeds; s++ {
		seeds = append(seeds, uint64(s))
	}
	return t.cellsOf(v, seeds)
}

// BlockCells lists a task's cells of the given seeds.
func (g Grid) BlockCells(t Task, seeds []uint64) []Cell { return t.cellsOf(Variant{}, seeds) }

func (t Task) cellsOf(v Variant, seeds []uint64) []Cell {
	methods := t.Methods
	if v.Methods != nil {
		methods = v.Methods
	}
	sets := append(slices.Clone(t.Sets), v.Sets...)
	iters := t.Iterations
	if v.Iterations > 0 {
		iters = v.Iterations
	}
	var cs []Cell
	for _, m := range methods {
		for _, s := range seeds {
			cs = append(cs, Cell{Task: t.Name, Variant: v.Name, Kind: t.Kind, Config: t.Config, Sets: sets, Method: m, Seed: s, Iterations: iters})
		}
	}
	return cs
}

// Only returns the grid of the named tasks, in the grid's order; an
// unknown name is an error that lists the known ones. A sweep's default
// setting belongs to its base task: name both to run both.
func (g Grid) Only(names []string) (Grid, error) {
	out := Grid{Scale: g.Scale, Check: g.Check}
	var known []string
	for _, t := range g.Tasks {
		known = append(known, t.Name)
		if slices.Contains(names, t.Name) {
			out.Tasks = append(out.Tasks, t)
		}
	}
	for _, n := range names {
		if !slices.Contains(known, n) {
			return Grid{}, fmt.Errorf("task %q: not in the %s grid (tasks: %s)", n, g.Scale, strings.Join(known, ", "))
		}
	}
	return out, nil
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

// Sizes of each scale. quick: 13.5 min of wall time on 2 cores with the
// OpenBLAS build (make reproduce), the knob sweeps included. full: the paper's 200 iterations and 100
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
	knobSeeds              int      // seeds of the knob sweeps (0: none)
	owmsKnobIters          int      // iterations of the small-OWMS sweep
}

var (
	cnonMethods = []string{"exact", "gradpie", "mae", "random", "cmaes", "bayopt"}
	opMethods   = []string{"gradpie", "mae", "random", "cmaes", "bayopt"} // the op-amp twin has no VJP
	// OWMS's thousands of phases: TuRBO is its BayOpt.
	owmsMethods = []string{"exact", "gradpie", "mae", "random", "cmaes", "turbo"}
	pnnMethods  = []string{"exact", "insitu-gradpie", "insitu-mae", "pat", "insilico"}
)

func scaleSizes(scale string) (sizes, error) {
	switch scale {
	case "quick":
		return sizes{seeds: 3, iters: 100, owmsSeeds: 3, owmsIters: 30, owmsSets: []string{"surrogate.hidden=[256,256]"},
			studyEpochs: 30, pnnSeeds: 2, pnnEpochs: 5, cnonN: []int{10},
			cnonMethods: cnonMethods, opMethods: opMethods, owmsMethods: owmsMethods, pnn: pnnMethods,
			knobSeeds: 3, owmsKnobIters: 100}, nil
	case "full":
		return sizes{seeds: 100, iters: 200, owmsSeeds: 100, owmsIters: 200,
			studyEpochs: 100, pnnSeeds: 5, pnnEpochs: 10, cnonN: []int{10, 20},
			cnonMethods: cnonMethods, opMethods: opMethods, owmsMethods: owmsMethods, pnn: pnnMethods,
			knobSeeds: 10, owmsKnobIters: 200}, nil
	case "test":
		return sizes{seeds: 1, iters: 3, cnonN: []int{10},
			cnonMethods: []string{"exact", "gradpie", "mae"}, opMethods: []string{"gradpie", "mae", "random"},
			noOWMS: true, noStudy: true, noPNN: true, knobSeeds: 1,
			tinySets: []string{"init.points=20", "surrogate.hidden=[16,16]", "surrogate.initial_epochs=2", "surrogate.steps=1"}}, nil
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
		title := "OWMS (amplitude L2 loss, lower is better)"
		if len(z.owmsSets) > 0 {
			title = "OWMS with a 256-256 surrogate (amplitude L2 loss, lower is better)"
		}
		g.Tasks = append(g.Tasks, Task{Name: "owms", Title: title, Kind: KindRun, Config: cfg("owms-field.yaml"), Sets: z.owmsSets,
			Methods: z.owmsMethods, Seeds: z.owmsSeeds, Iterations: z.owmsIters, Paper: "owms"})
		g.Tasks = append(g.Tasks, Task{Name: "owms-camera", Title: "OWMS as a camera sees it: 10×10 macro-pixels, share of the power in the spots (higher is better)",
			Kind: KindRun, Config: cfg("owms.yaml"), Methods: z.owmsMethods, Seeds: z.seeds, Iterations: z.iters})
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
	if z.knobSeeds > 0 {
		g.Tasks = append(g.Tasks, knobTasks(g, z, scale, cfg)...)
	}
	return g, nil
}

// knobTasks are the honest-knob sweeps, one per place where our ordering
// disagreed with the paper's in the quick grid: each knob that could
// explain it, one at a time, fixed here before any sweep ran. A sweep's
// default setting reuses its base task's cells when the seeds agree.
func knobTasks(g Grid, z sizes, scale string, cfg func(string) string) []Task {
	// withDefault puts the base task's cells first when they can stand for
	// the default setting, else runs the default as its own variant.
	withDefault := func(base string, seeds int, label string, vs []Variant) ([]Variant, string) {
		if b, ok := g.Task(base); ok && b.Seeds == seeds {
			return append([]Variant{{Label: label}}, vs...), base
		}
		return append([]Variant{{Name: "default", Label: label}}, vs...), ""
	}
	var ts []Task
	m := 1 // CNON N = 10, M = 1: MAE ≤ GradPIE at 100 iterations
	if scale == "test" {
		m = 0
	}
	base := fmt.Sprintf("cnon-N10-M%d", m)
	vs, b := withDefault(base, z.knobSeeds, "the config's (k = 5, σ = 0.02, 2 steps per query, lr 1e-3, step lr 0.02, horizon 5, N = 10)", []Variant{
		{Name: "k1", Label: "k = 1", Sets: []string{"surrogate.k=1"}, Methods: []string{"gradpie"}},
		{Name: "k20", Label: "k = 20", Sets: []string{"surrogate.k=20"}, Methods: []string{"gradpie"}},
		{Name: "sigma0.005", Label: "σ = 0.005", Sets: []string{"local.sigma=0.005"}},
		{Name: "sigma0.05", Label: "σ = 0.05", Sets: []string{"local.sigma=0.05"}},
		{Name: "steps4", Label: "4 training steps per query (twice the default)", Sets: []string{"surrogate.steps=4"}},
		{Name: "epochs", Label: "E = 5 full epochs per iteration (the paper's schedule)", Sets: []string{"surrogate.steps=0"}},
		{Name: "inputunit", Label: "inputs mapped to [0, 1] (the old default; docs/results/scaling-ablation.md)", Sets: []string{"surrogate.input_scaling=unit"}},
		{Name: "lr3e-3", Label: "surrogate lr 3e-3", Sets: []string{"surrogate.lr=3e-3"}},
		{Name: "step0.05", Label: "step lr 0.05", Sets: []string{"step_lr=0.05"}},
		{Name: "horizon10", Label: "horizon 10 (100 RK4 steps)", Sets: []string{"blackbox.horizon=10", "blackbox.steps=100"}},
		{Name: "N20", Label: "N = 20 oscillators", Sets: []string{"blackbox.n=20"}},
	})
	if scale == "test" {
		vs = vs[:2]
	}
	ts = append(ts, Task{
		Name: "knobs-" + base, Title: fmt.Sprintf("Knobs: CNON, N = 10, M = %d", m), Kind: KindRun, Config: cfg("cnon.yaml"),
		Sets: append([]string{"blackbox.n=10", fmt.Sprintf("local.samples=%d", m)}, z.tinySets...), Methods: []string{"gradpie", "mae"},
		Seeds: z.knobSeeds, Iterations: z.iters, LogY: true, Variants: vs, Base: b,
		Why: "Why this sweep: in our first quick grid (2026-11-22) MAE matched or beat GradPIE at N = 10 with one local sample, against the paper's ordering.",
	})
	if scale == "test" {
		return ts
	}
	if !z.noOWMS {
		// The 3600-phase SLM gets 200–1000 queries: no surrogate can learn it.
		// The twin's size is the knob: a 20×20 SLM with the same aperture
		// (30 µm pitch), propagated by angular spectrum, at more iterations.
		ts = append(ts, Task{
			Name: "knobs-owms", Title: "Knobs: OWMS twin size", Kind: KindRun, Config: cfg("owms-field.yaml"),
			Sets: z.owmsSets, Methods: z.owmsMethods[:4], Seeds: z.owmsSeeds, Iterations: z.owmsKnobIters,
			Variants: []Variant{{Name: "n20", Label: "20×20 SLM, 30 µm pitch, angular spectrum",
				Sets: []string{"blackbox.n=20", "blackbox.pitch=30e-6", "blackbox.method=angular"}}},
			Why: "Why this sweep: in our first quick grid no surrogate moved far from random search on the 3600-pixel SLM, and GradPIE did not beat MAE.",
		})
	}
	if !z.noOWMS {
		vs, b := withDefault("owms-camera", z.knobSeeds, "the config's (circle input map, 1 local sample, camera 20×20)", []Variant{
			{Name: "box", Label: "phases mapped to [−1, 1] (box) instead of the unit circle", Sets: []string{"surrogate.input_scaling=box"}},
			{Name: "M0", Label: "no local samples (M = 0)", Sets: []string{"local.samples=0"}},
		})
		ts = append(ts, Task{
			Name: "knobs-owms-camera", Title: "Knobs: OWMS as a camera sees it", Kind: KindRun, Config: cfg("owms.yaml"),
			Methods: []string{"gradpie", "mae"}, Seeds: z.knobSeeds, Iterations: z.iters, Variants: vs, Base: b,
			Why: "Why this sweep: the two choices that made the camera task learnable (docs/results/owms-camera.md), undone one at a time.",
		})
	}
	if !z.noPNN {
		vs, b := withDefault("pnn-optical", z.pnnSeeds, "the config's (8×8 macro-pixels, θ lr 0.01, 8 θ-local queries per minibatch, circle map)", []Variant{
			{Name: "epochs10", Label: "twice the epochs", Iterations: 2 * z.pnnEpochs},
			{Name: "pixels", Label: "one phase per SLM pixel (256 θ) instead of 8×8 macro-pixels", Sets: []string{"blackbox.macro_pixel=1", "ideal_blackbox.macro_pixel=1"}},
			{Name: "lr0.05", Label: "θ learning rate 0.05 (the old config)", Sets: []string{"lr=0.05"}},
			{Name: "local0", Label: "no θ-local queries", Sets: []string{"local.samples=0"}},
			{Name: "box", Label: "θ phases mapped to [−1, 1] (box) instead of the unit circle", Sets: []string{"surrogate.input_scaling=box"}},
		})
		ts = append(ts, Task{
			Name: "knobs-pnn-optical", Title: "Knobs: PNN training on pnn-optical", Kind: KindTrain, Config: cfg("pnn-optical.yaml"),
			Methods: []string{"insitu-gradpie", "insitu-mae"}, Seeds: z.pnnSeeds, Iterations: z.pnnEpochs, Variants: vs, Base: b,
			Why: "Why this sweep: in our first quick grids neither in-situ surrogate trained the optical PNN; each of the choices that made it train is undone in turn.",
		})
	}
	return ts
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

// WithIterations returns the grid with every optimization task (and each
// of its variants that sets its own) run for n iterations instead: a short
// grid for tests and trial runs. Training and study tasks keep their epochs.
func (g Grid) WithIterations(n int) Grid {
	if n <= 0 {
		return g
	}
	out := Grid{Scale: g.Scale, Tasks: slices.Clone(g.Tasks), Check: g.Check}
	for i, t := range out.Tasks {
		if t.Kind != KindRun {
			continue
		}
		out.Tasks[i].Iterations = n
		out.Tasks[i].Variants = slices.Clone(t.Variants)
		for k, v := range out.Tasks[i].Variants {
			if v.Iterations > 0 {
				out.Tasks[i].Variants[k].Iterations = n
			}
		}
	}
	return out
}
