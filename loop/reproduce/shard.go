package reproduce

import (
	"cmp"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Shard is one of Count parts of a grid, Index in [0, Count). The zero
// Shard (Count 0) is the whole grid.
type Shard struct {
	Index, Count int
}

// Sharded says whether s selects a part of the grid.
func (s Shard) Sharded() bool { return s.Count > 0 }

func (s Shard) String() string {
	if !s.Sharded() {
		return "all"
	}
	return fmt.Sprintf("%d/%d", s.Index, s.Count)
}

// ParseShard reads "I/N" (0-based: 0/4 … 3/4).
func ParseShard(v string) (Shard, error) {
	i, n, ok := strings.Cut(v, "/")
	s := Shard{}
	var err1, err2 error
	s.Index, err1 = strconv.Atoi(strings.TrimSpace(i))
	s.Count, err2 = strconv.Atoi(strings.TrimSpace(n))
	if !ok || err1 != nil || err2 != nil {
		return Shard{}, fmt.Errorf("shard %q: want I/N, e.g. 0/4", v)
	}
	return s, s.check()
}

func (s Shard) check() error {
	if s.Count < 1 || s.Index < 0 || s.Index >= s.Count {
		return fmt.Errorf("shard %d/%d: want 0 ≤ I < N", s.Index, s.Count)
	}
	return nil
}

// ResolveShard picks the shard a process runs: flag (--shard I/N) when
// set; else a Slurm array task's SLURM_ARRAY_TASK_ID, or an Indexed
// Kubernetes Job's JOB_COMPLETION_INDEX, as the index. The count is shards
// (--shards) when positive; else, for Slurm, the array's size, which must
// then be 0..N-1 (a re-run of some tasks, --array=3, needs --shards). A
// Kubernetes index needs --shards: the pod cannot see the completions.
// No flag and no index: the whole grid (shards must then be 0).
func ResolveShard(flag string, shards int, getenv func(string) string) (Shard, error) {
	if flag != "" {
		s, err := ParseShard(flag)
		if err != nil {
			return Shard{}, err
		}
		if shards > 0 && shards != s.Count {
			return Shard{}, fmt.Errorf("--shard %s and --shards %d disagree", flag, shards)
		}
		return s, nil
	}
	atoi := func(name string) (int, bool, error) {
		v := strings.TrimSpace(getenv(name))
		if v == "" {
			return 0, false, nil
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			return 0, true, fmt.Errorf("%s=%q: not a number", name, v)
		}
		return n, true, nil
	}
	if id, ok, err := atoi("SLURM_ARRAY_TASK_ID"); ok || err != nil {
		if err != nil {
			return Shard{}, err
		}
		if shards > 0 {
			s := Shard{Index: id, Count: shards}
			if err := s.check(); err != nil {
				return Shard{}, fmt.Errorf("SLURM_ARRAY_TASK_ID=%d with --shards %d: %w", id, shards, err)
			}
			return s, nil
		}
		n, okN, err := atoi("SLURM_ARRAY_TASK_COUNT")
		if err != nil {
			return Shard{}, err
		}
		lo, _, err1 := atoi("SLURM_ARRAY_TASK_MIN")
		hi, okHi, err2 := atoi("SLURM_ARRAY_TASK_MAX")
		if err := cmp.Or(err1, err2); err != nil {
			return Shard{}, err
		}
		if !okN || !okHi || lo != 0 || hi != n-1 {
			return Shard{}, fmt.Errorf("Slurm array task %d of an array that is not 0..N-1 (min %d, max %d, count %d): pass --shards N, the size of the whole grid's array", id, lo, hi, n)
		}
		s := Shard{Index: id, Count: n}
		return s, s.check()
	}
	if id, ok, err := atoi("JOB_COMPLETION_INDEX"); ok || err != nil {
		if err != nil {
			return Shard{}, err
		}
		if shards <= 0 {
			return Shard{}, fmt.Errorf("JOB_COMPLETION_INDEX=%d needs --shards N (the Job's completions)", id)
		}
		s := Shard{Index: id, Count: shards}
		if err := s.check(); err != nil {
			return Shard{}, fmt.Errorf("JOB_COMPLETION_INDEX=%d with --shards %d: %w", id, shards, err)
		}
		return s, nil
	}
	if shards > 0 {
		return Shard{}, fmt.Errorf("--shards %d without an index: give --shard I/%d, or run as a Slurm array task or an Indexed Kubernetes Job", shards, shards)
	}
	return Shard{}, nil
}

// Assign spreads cells over n shards by their expected cost (Cost): the
// cells sorted by cost, most expensive first, ties by directory, each given
// to the shard with the least cost so far (the lowest index on a tie) —
// the longest-processing-time rule, whose largest shard is within the
// costliest cell of the mean. The result is deterministic: the same cells
// give the same assignment on every machine. shard[i] is cells[i]'s.
func Assign(cells []Cell, n int) []int {
	shard := make([]int, len(cells))
	if n <= 1 {
		return shard
	}
	order := make([]int, len(cells))
	cost := make([]float64, len(cells))
	dir := make([]string, len(cells))
	for i, c := range cells {
		order[i], cost[i], dir[i] = i, c.Cost(), c.Dir()
	}
	slices.SortFunc(order, func(a, b int) int {
		return cmp.Or(cmp.Compare(cost[b], cost[a]), strings.Compare(dir[a], dir[b]))
	})
	load := make([]float64, n)
	for _, i := range order {
		s := 0
		for k := 1; k < n; k++ {
			if load[k] < load[s] {
				s = k
			}
		}
		shard[i] = s
		load[s] += cost[i]
	}
	return shard
}

// Select returns the cells of shard s (all of them when s is the zero
// Shard), in the order given.
func Select(cells []Cell, s Shard) []Cell {
	if !s.Sharded() {
		return cells
	}
	var out []Cell
	for i, k := range Assign(cells, s.Count) {
		if k == s.Index {
			out = append(out, cells[i])
		}
	}
	return out
}

// secondsPerIteration is the CPU time of one iteration (run cells) or
// epoch (train and study cells) at full scale, by cell family and method:
// one cell of each measured on a 2-core machine, whole or extrapolated
// from its first iterations (docs/cluster.md has the table and how it was
// measured). "*" is a family's cost for a method it does not list. Only
// the ratios matter for balancing shards.
var secondsPerIteration = map[string]map[string]float64{
	// Surrogate methods under the step budget (2 steps per query): flat in
	// the iteration, 10 steps per iteration at M = 0 and 20 at M = 1
	// (docs/results/training-schedule.md).
	"cnon-N10-M0":                 {"cmaes": 0.0037, "exact": 0.0044, "gradpie": 0.15, "mae": 0.12, "random": 0.004},
	"cnon-N10-M1":                 {"cmaes": 0.0073, "exact": 0.0094, "gradpie": 0.30, "mae": 0.24, "random": 0.0076},
	"cnon-N20-M0":                 {"cmaes": 0.0053, "exact": 0.005, "gradpie": 0.16, "mae": 0.12, "random": 0.0049},
	"cnon-N20-M1":                 {"cmaes": 0.0088, "exact": 0.0115, "gradpie": 0.31, "mae": 0.24, "random": 0.0086},
	"knobs-cnon-N10-M1/steps4":    {"gradpie": 0.60, "mae": 0.48},
	"knobs-cnon-N10-M1/epochs":    {"gradpie": 1.47, "mae": 0.49}, // full epochs grow with the data
	"knobs-cnon-N10-M1/horizon10": {"gradpie": 1.67, "mae": 0.67},
	"opamp-analytic":              {"cmaes": 0.0048, "gradpie": 0.30, "mae": 0.115, "random": 0.0043},
	"opamp-ngspice":               {"cmaes": 0.106, "gradpie": 0.37, "mae": 0.22, "random": 0.12},
	// The paper's network (1000⁴·500) on 3600 phases. MAE could not be
	// timed (no iteration in 120 s on the loaded machine): GradPIE's time
	// × 0.58, MAE's share of GradPIE's controller time in the quick grid.
	"owms":     {"cmaes": 4.28, "exact": 0.017, "gradpie": 182, "mae": 105, "random": 0.012},
	"owms-n20": {"exact": 0.0063, "gradpie": 17.6, "mae": 10.6, "random": 0.0069, "*": 10.6},
	// The quick grid's 256-256 surrogate: its controller ms/it at 30
	// iterations (docs/results/reproduce-quick).
	"owms-256": {"cmaes": 0.33, "exact": 0.011, "gradpie": 0.83, "mae": 0.48, "random": 0.007},
	// configs/owms.yaml (camera, 10×10 macro-pixels, M = 1): controller
	// ms/it over 200 iterations (docs/results/owms-camera.md).
	"owms-camera": {"cmaes": 0.021, "exact": 0.024, "gradpie": 0.31, "mae": 0.36, "random": 0.016},
	"pnn-cnon":    {"exact": 0.33, "insilico": 0.19, "insitu-gradpie": 7.4, "insitu-mae": 1.6, "pat": 0.29},
	// 8×8 macro-pixels, 8 θ-local queries per minibatch: wall time per epoch of the quick grid's cells.
	"pnn-optical":    {"exact": 0.40, "insilico": 0.25, "insitu-gradpie": 4.6, "insitu-mae": 1.4, "pat": 0.37},
	"gradient-study": {"*": 9.6}, // make study: 8 min on 2 cores for 100 epochs
}

// Cost is the cell's expected CPU seconds: its iterations (or epochs)
// times the measured time of one for its family and method; a cell of an
// unknown family costs one second an iteration.
func (c Cell) Cost() float64 {
	per := 1.0
	if t, ok := secondsPerIteration[c.Family()]; ok {
		if v, ok := t[c.Method]; ok {
			per = v
		} else if v, ok := t["*"]; ok {
			per = v
		}
	}
	return per * float64(max(c.Iterations, 1))
}

// Family names the cost class of a cell: a knob sweep's variant when its
// cost was measured on its own, else its config and the overrides that
// change the cost of a query (the CNON size and local samples, the OWMS
// twin's size).
func (c Cell) Family() string {
	if k := c.Task + "/" + c.Variant; c.Variant != "" && secondsPerIteration[k] != nil {
		return k
	}
	cfg := strings.TrimSuffix(filepath.Base(c.Config), filepath.Ext(c.Config))
	switch cfg {
	case "cnon":
		n, m := lastSet(c.Sets, "blackbox.n", "10"), lastSet(c.Sets, "local.samples", "0")
		if m != "0" {
			m = "1"
		}
		return "cnon-N" + n + "-M" + m
	case "opamp":
		return "opamp-analytic"
	case "owms-field":
		switch {
		case lastSet(c.Sets, "blackbox.n", "") == "20":
			return "owms-n20"
		case lastSet(c.Sets, "surrogate.hidden", "") == "[256,256]":
			return "owms-256"
		}
		return "owms"
	case "owms":
		return "owms-camera"
	case "study-gradient":
		return "gradient-study"
	}
	return cfg
}

// lastSet is the value of the last --set key=value override of key, or def.
func lastSet(sets []string, key, def string) string {
	v := def
	for _, s := range sets {
		if k, val, ok := strings.Cut(s, "="); ok && k == key {
			v = val
		}
	}
	return v
}
