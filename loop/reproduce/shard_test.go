package reproduce

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func TestParseShard(t *testing.T) {
	for in, want := range map[string]Shard{"0/4": {0, 4}, "3/4": {3, 4}, " 1 / 2 ": {1, 2}, "0/1": {0, 1}} {
		if got, err := ParseShard(in); err != nil || got != want {
			t.Errorf("ParseShard(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"4/4", "-1/4", "1/0", "1", "a/b", "1/2/3", ""} {
		if _, err := ParseShard(in); err == nil {
			t.Errorf("ParseShard(%q): no error", in)
		}
	}
}

func TestResolveShard(t *testing.T) {
	type env map[string]string
	slurm := func(id, lo, hi, n string) env {
		return env{"SLURM_ARRAY_TASK_ID": id, "SLURM_ARRAY_TASK_MIN": lo, "SLURM_ARRAY_TASK_MAX": hi, "SLURM_ARRAY_TASK_COUNT": n}
	}
	for _, tc := range []struct {
		name   string
		flag   string
		shards int
		env    env
		want   Shard
		err    string
	}{
		{name: "nothing: the whole grid", want: Shard{}},
		{name: "flag", flag: "2/5", want: Shard{2, 5}},
		{name: "flag wins over the environment", flag: "1/3", env: slurm("7", "0", "9", "10"), want: Shard{1, 3}},
		{name: "flag and --shards agree", flag: "1/3", shards: 3, want: Shard{1, 3}},
		{name: "flag and --shards disagree", flag: "1/3", shards: 4, err: "disagree"},
		{name: "slurm array 0..9", env: slurm("7", "0", "9", "10"), want: Shard{7, 10}},
		{name: "slurm with --shards", env: slurm("7", "0", "9", "10"), shards: 10, want: Shard{7, 10}},
		// sbatch --array=5,17 to re-run two tasks of a 32-task grid.
		{name: "slurm re-run with --shards", env: slurm("17", "5", "17", "2"), shards: 32, want: Shard{17, 32}},
		{name: "slurm re-run without --shards", env: slurm("17", "5", "17", "2"), err: "--shards"},
		{name: "slurm index past --shards", env: slurm("7", "0", "9", "10"), shards: 4, err: "0 ≤ I < N"},
		{name: "slurm without a count", env: env{"SLURM_ARRAY_TASK_ID": "1"}, err: "--shards"},
		{name: "slurm garbage", env: env{"SLURM_ARRAY_TASK_ID": "x"}, err: "not a number"},
		{name: "kubernetes", env: env{"JOB_COMPLETION_INDEX": "3"}, shards: 8, want: Shard{3, 8}},
		{name: "kubernetes without --shards", env: env{"JOB_COMPLETION_INDEX": "3"}, err: "--shards"},
		{name: "kubernetes index past --shards", env: env{"JOB_COMPLETION_INDEX": "8"}, shards: 8, err: "0 ≤ I < N"},
		{name: "--shards without an index", shards: 8, err: "without an index"},
	} {
		got, err := ResolveShard(tc.flag, tc.shards, func(k string) string { return tc.env[k] })
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: %v, %v; want an error with %q", tc.name, got, err, tc.err)
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("%s: %v, %v; want %v", tc.name, got, err, tc.want)
		}
	}
}

// Every cell is in exactly one shard, the assignment depends on the cells
// only (not their order, not the call), and the largest shard's cost is
// within the costliest cell of the mean (and close to it when the grid
// has many more cells than shards).
func TestAssign(t *testing.T) {
	for _, scale := range []string{"quick", "full"} {
		g, err := NewGrid(scale, "configs", true)
		if err != nil {
			t.Fatal(err)
		}
		cells := g.Cells()
		var total, top float64
		for _, c := range cells {
			total += c.Cost()
			top = max(top, c.Cost())
		}
		for _, n := range []int{1, 3, 7, 16, 100} {
			as := Assign(cells, n)
			if !slices.Equal(as, Assign(cells, n)) {
				t.Fatalf("%s/%d: two calls differ", scale, n)
			}
			// Shuffled input: each cell keeps its shard.
			perm := rand.New(rand.NewPCG(1, uint64(n))).Perm(len(cells))
			shuffled := make([]Cell, len(cells))
			for i, p := range perm {
				shuffled[i] = cells[p]
			}
			for i, s := range Assign(shuffled, n) {
				if as[perm[i]] != s {
					t.Fatalf("%s/%d: %s in shard %d, %d after a shuffle", scale, n, shuffled[i].Dir(), as[perm[i]], s)
				}
			}
			load := make([]float64, n)
			for i, s := range as {
				if s < 0 || s >= n {
					t.Fatalf("%s/%d: %s in shard %d", scale, n, cells[i].Dir(), s)
				}
				load[s] += cells[i].Cost()
			}
			if n == 3 || n == 16 {
				// Select's shards partition the grid.
				seen := map[string]int{}
				for k := range n {
					for _, c := range Select(cells, Shard{k, n}) {
						seen[c.Dir()]++
					}
				}
				for _, c := range cells {
					if seen[c.Dir()] != 1 {
						t.Fatalf("%s/%d: %s in %d shards", scale, n, c.Dir(), seen[c.Dir()])
					}
				}
			}
			mean, hi := total/float64(n), slices.Max(load)
			if hi > mean+top+1e-9 {
				t.Errorf("%s/%d: largest shard %.0f s, mean %.0f s, costliest cell %.0f s", scale, n, hi, mean, top)
			}
			if len(cells) >= 20*n && hi > 1.05*mean {
				t.Errorf("%s/%d: largest shard %.0f s is more than 5 %% above the mean %.0f s", scale, n, hi, mean)
			}
			t.Logf("%s, %d shards: mean %.2f core-h, largest %.2f (+%.1f %%)", scale, n, mean/3600, hi/3600, 100*(hi/mean-1))
		}
	}
}

// Balancing is by cost, not count: one costly cell gets a shard of its
// own while the cheap ones share the other.
func TestAssignByCost(t *testing.T) {
	cells := []Cell{
		{Task: "owms", Kind: KindRun, Config: "owms-field.yaml", Method: "gradpie", Seed: 1, Iterations: 200},
	}
	for s := uint64(1); s <= 5; s++ {
		cells = append(cells, Cell{Task: "opamp-analytic", Kind: KindRun, Config: "opamp.yaml", Method: "random", Seed: s, Iterations: 200})
	}
	as := Assign(cells, 2)
	for i, c := range cells[1:] {
		if as[i+1] == as[0] {
			t.Errorf("%s shares the costly cell's shard: %v", c.Dir(), as)
		}
	}
}

func TestCostFamilies(t *testing.T) {
	g, err := NewGrid("full", "configs", true)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range g.Cells() {
		f := c.Family()
		if _, ok := secondsPerIteration[f]; !ok {
			t.Errorf("%s: family %q has no measured cost", c.Dir(), f)
		}
		if c.Cost() <= 0 {
			t.Errorf("%s: cost %v", c.Dir(), c.Cost())
		}
	}
	for sets, want := range map[string]string{
		"blackbox.n=10 local.samples=0":               "cnon-N10-M0",
		"blackbox.n=10 local.samples=1 blackbox.n=20": "cnon-N20-M1",
		"local.samples=3":                             "cnon-N10-M1",
	} {
		c := Cell{Config: "configs/cnon.yaml", Sets: strings.Fields(sets)}
		if f := c.Family(); f != want {
			t.Errorf("cnon with %s: family %s, want %s", sets, f, want)
		}
	}
}
