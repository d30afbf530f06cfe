package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/insitu-lab/insitu/loop/reproduce"
)

func newReproduceCmd() *cobra.Command {
	var (
		scale, out, configs, shard, ngspice, seeds string
		jobs, shards, iterations                   int
		quiet, list, only                          bool
		tasks                                      []string
	)
	cmd := &cobra.Command{
		Use:   "reproduce",
		Short: "Run the paper-reproduction grid (tasks × methods × seeds) and write a Markdown report",
		Long: `Runs every cell of the grid — CNON (M = 0 and 1), the op-amp (analytic, and
ngspice when it is on PATH), OWMS, the gradient study and the PNN comparison,
each method and seed one 'insitu run', 'insitu train' or 'insitu study
gradient' in its own directory under --out — --jobs at a time, then writes
OUT/report.md and a plot per task.

Resumable: a cell whose journal says finished is not run again, an
interrupted one is resumed. Ctrl-C lets the cells in flight finish their
query and journal it; run the same command again to continue.

The grid also holds the honest-knob sweeps (tasks knobs-*): where our
ordering disagreed with the paper's, one knob at a time, each setting's
GradPIE against MAE in the report.

--scale quick: N = 10 only, 3 seeds × 100 iterations (CNON, op-amp), OWMS
3 seeds × 30 iterations with a 256-256 surrogate, the study at 30 epochs, PNN
2 seeds × 5 epochs, the sweeps (about 25 min on 2 cores). --scale full: the
paper's 200 iterations and 100 starting points, N = 10 and 20, the paper's
OWMS network, the study at 100 epochs, PNN 5 seeds × 10 epochs (days on 2
cores). --tasks runs some tasks only; the report still covers all of them.

--seeds 101..110 adds a second block of seeds, drawn after the settings were
fixed, to every optimization and training task (not the knob sweeps): the
report sets each task's tuned seeds and this block side by side, and calls
one method's lead a beat only when both blocks have at least 10 seeds and
each gives |t| ≥ 2 and p < 0.05 (Welch's t test). A directory keeps every
block it has run.

On a cluster (docs/cluster.md): --shard I/N runs shard I of N only, the
cells spread over the shards by their measured cost, the same on every
machine. Without --shard the index is SLURM_ARRAY_TASK_ID (the count the
array's size, or --shards N) or, in an Indexed Kubernetes Job,
JOB_COMPLETION_INDEX with --shards N. Shards may share --out or each have
their own; a shard writes no report: 'insitu reproduce merge --out OUT
DIR...' gathers the shards' cells and writes it, and --list shows which
shard holds each cell that has not finished.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if out == "" {
				out = filepath.Join("out", "reproduce-"+scale)
			}
			// What the directory already holds fixes the grid unless the
			// flags say otherwise (and then they must agree).
			m, err := outManifest(cmd, out, &scale, &iterations, &configs)
			if err != nil {
				return err
			}
			have, err := ngspiceOn(ngspice)
			if err != nil {
				return err
			}
			// The report and the listing cover the ngspice task when any
			// run into the directory had it.
			var check []uint64
			if seeds != "" {
				if check, err = reproduce.ParseSeeds(seeds); err != nil {
					return err
				}
			}
			g, err := reproduceGrid(scale, configs, have || m.Ngspice(), iterations, nil, append(m.Check(), check...))
			if err != nil {
				return err
			}
			if list {
				return listGrid(ctx, cmd, g, m, out)
			}
			sh, err := reproduce.ResolveShard(shard, shards, os.Getenv)
			if err != nil {
				return err
			}
			if !only {
				run, err := reproduceGrid(scale, configs, have, iterations, tasks, check)
				if err != nil {
					return err
				}
				part := reproduce.Part{Ngspice: have, Check: run.Check, Shard: sh.Index, Shards: sh.Count}
				if len(tasks) > 0 {
					for _, t := range run.Tasks {
						part.Tasks = append(part.Tasks, t.Name)
					}
				}
				if err := os.MkdirAll(out, 0o755); err != nil {
					return err
				}
				if err := reproduce.Record(out, reproduce.Manifest{Scale: scale, Iterations: iterations, Configs: configs}, part); err != nil {
					return err
				}
				var progress io.Writer
				if !quiet {
					progress = cmd.ErrOrStderr()
				}
				sum, err := runGrid(ctx, run, reproduce.Options{Out: out, Jobs: jobs, Exec: inProcess, Progress: progress, Shard: sh})
				what := "reproduce " + scale
				if sh.Sharded() {
					what += " shard " + sh.String()
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "%s: %d cells, %d already finished, %d started, %d resumed, %d failed, %s\n",
					what, sum.Total, sum.Skipped, sum.Started, sum.Resumed, len(sum.Failed), sum.Elapsed.Round(1e9))
				if err != nil && ctx.Err() != nil {
					fmt.Fprintf(cmd.ErrOrStderr(), "interrupted; run the same command again to continue\n")
					return err
				}
				if sh.Sharded() {
					// The other shards may still be running: the report is the merge's.
					if err == nil {
						fmt.Fprintf(cmd.ErrOrStderr(), "shard %s done; when every shard is: insitu reproduce merge --out DIR %s ...\n", sh, out)
					}
					return err
				}
				if err != nil {
					// Write the report of what finished, then fail.
					defer fmt.Fprintf(cmd.ErrOrStderr(), "report written without the failed cells\n")
					if rerr := reproduce.WriteReport(context.WithoutCancel(ctx), g, out); rerr != nil {
						return fmt.Errorf("%w; report: %v", err, rerr)
					}
					return err
				}
			}
			if err := reproduce.WriteReport(ctx, g, out); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s\n", filepath.Join(out, "report.md"))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&scale, "scale", "quick", "quick or full")
	f.StringVarP(&out, "out", "o", "", "output directory (default out/reproduce-SCALE)")
	f.StringVar(&configs, "configs", "configs", "directory holding the task configs")
	f.IntVarP(&jobs, "jobs", "j", 2, "cells run at once")
	f.BoolVarP(&quiet, "quiet", "q", false, "no progress bar")
	f.BoolVar(&list, "list", false, "list the cells, their state, shard and commands, and exit")
	f.BoolVar(&only, "report-only", false, "write the report from the journals already there, run nothing")
	f.StringSliceVar(&tasks, "tasks", nil, "run only these tasks (comma-separated names, see --list)")
	f.StringVar(&seeds, "seeds", "", "a second block of seeds for every optimization and training task: 101..110, 101,105 (the report sets it beside the tuned one)")
	f.StringVar(&shard, "shard", "", "run only shard I of N (I/N, 0-based; default: from SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX)")
	f.IntVar(&shards, "shards", 0, "the number of shards, with SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX as the index")
	f.StringVar(&ngspice, "ngspice", "auto", "the ngspice op-amp task: auto (when ngspice is on PATH), on or off; every shard must have the same")
	f.IntVar(&iterations, "iterations", 0, "iterations of every optimization task instead of the scale's (a short trial grid)")
	_ = f.MarkHidden("iterations")
	cmd.AddCommand(newReproduceMergeCmd())
	return cmd
}

// ngspiceOn resolves --ngspice.
func ngspiceOn(v string) (bool, error) {
	switch v {
	case "on":
		return true, nil
	case "off":
		return false, nil
	case "auto", "":
		_, err := exec.LookPath("ngspice")
		return err == nil, nil
	}
	return false, fmt.Errorf("--ngspice %q: want auto, on or off", v)
}

// reproduceGrid builds the grid of a scale, its run tasks' iterations
// overridden when iterations > 0, with a second block of seeds check,
// restricted to tasks when given.
func reproduceGrid(scale, configs string, ngspice bool, iterations int, tasks []string, check []uint64) (reproduce.Grid, error) {
	g, err := reproduce.NewGrid(scale, configs, ngspice)
	if err != nil {
		return g, err
	}
	g = g.WithIterations(iterations).WithCheck(check)
	if len(tasks) > 0 {
		return g.Only(tasks)
	}
	return g, nil
}

// outManifest reads the manifests of a reproduce directory and fills in
// the grid flags the user left at their defaults from it. A flag that
// contradicts the directory is an error; so is a sweep's directory.
func outManifest(cmd *cobra.Command, out string, scale *string, iterations *int, configs *string) (reproduce.Manifest, error) {
	ms, err := reproduce.ReadManifests(out)
	if err != nil || len(ms) == 0 {
		return reproduce.Manifest{}, err
	}
	m, err := reproduce.Combine(ms...)
	if err != nil {
		return m, fmt.Errorf("%s: %w", out, err)
	}
	if m.Sweep != nil {
		return m, fmt.Errorf("%s holds %s: see insitu sweep", out, m.What())
	}
	f := cmd.Flags()
	if f.Changed("scale") && *scale != m.Scale || f.Changed("iterations") && *iterations != m.Iterations {
		want := reproduce.Manifest{Scale: *scale, Iterations: *iterations}
		return m, fmt.Errorf("%s holds %s, not %s: choose another --out", out, m.What(), want.What())
	}
	*scale, *iterations = m.Scale, m.Iterations
	if !f.Changed("configs") && m.Configs != "" {
		*configs = m.Configs
	}
	return m, nil
}

// listGrid prints every cell's state, the shard that runs it and its
// command, then a count by state and the shards that hold unfinished cells.
func listGrid(ctx context.Context, cmd *cobra.Command, g reproduce.Grid, m reproduce.Manifest, out string) error {
	owners, err := reproduce.Owners(m.Parts, func(p reproduce.Part) ([]reproduce.Cell, error) {
		pg, err := reproduceGrid(g.Scale, m.Configs, p.Ngspice, m.Iterations, p.Tasks, p.Check)
		return pg.Cells(), err
	})
	if err != nil {
		return err
	}
	return listCells(ctx, cmd, g.Cells(), owners, out)
}

// listCells prints the cells' states and shards, and what to re-run.
func listCells(ctx context.Context, cmd *cobra.Command, cells []reproduce.Cell, owners map[string]string, out string) error {
	w := cmd.OutOrStdout()
	counts := map[string]int{}
	var states []string
	rerun := map[string]int{}
	var shardsToRerun []string
	for _, c := range cells {
		dir := filepath.Join(out, c.Dir())
		st := reproduce.Status(ctx, c, dir)
		if counts[st] == 0 {
			states = append(states, st)
		}
		counts[st]++
		sh, ok := owners[c.Dir()]
		if sh == "" {
			sh = "-"
		}
		if st != "finished" && ok && sh != "-" {
			if rerun[sh] == 0 {
				shardsToRerun = append(shardsToRerun, sh)
			}
			rerun[sh]++
		}
		fmt.Fprintf(w, "%-11s %-7s %s  insitu %s\n", st, sh, c.Dir(), strings.Join(c.Args(dir), " "))
	}
	var parts []string
	for _, st := range states {
		parts = append(parts, fmt.Sprintf("%d %s", counts[st], st))
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "%d cells: %s\n", len(cells), strings.Join(parts, ", "))
	if len(shardsToRerun) > 0 {
		slices.SortFunc(shardsToRerun, compareShards)
		var ss []string
		for _, sh := range shardsToRerun {
			ss = append(ss, fmt.Sprintf("%s (%d cells)", sh, rerun[sh]))
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "shards with unfinished cells: %s; re-run them (--shard I/N, or their array tasks) and merge again\n", strings.Join(ss, ", "))
	}
	return nil
}

// compareShards orders "I/N" strings by N, then I.
func compareShards(a, b string) int {
	sa, _ := reproduce.ParseShard(a)
	sb, _ := reproduce.ParseShard(b)
	return cmp.Or(cmp.Compare(sa.Count, sb.Count), cmp.Compare(sa.Index, sb.Index))
}

func newReproduceMergeCmd() *cobra.Command {
	var (
		out, configs, scale string
		iterations          int
	)
	cmd := &cobra.Command{
		Use:   "merge --out OUT [DIR...]",
		Short: "Gather the cells of shard directories into OUT and write the report",
		Long: `Gathers the cell directories of every DIR (the --out of each shard) into
OUT — hard links for finished cells, copies for the others, which may be
resumed there — and writes OUT/report.md as one unsharded run would. The
grid is the one the shards ran (their manifests must agree). A cell found
in several directories is taken once if their journals hold the same
queries; two different journals for one cell are refused and nothing is
merged. With no DIR, or DIR = OUT, the cells already in OUT (shards that
shared it) are checked and reported on.

Exits non-zero, after writing the report, when some cell of the shards'
assignment has not finished, naming the shards to re-run; 'insitu
reproduce --list --out OUT' shows every cell's state and shard.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if out == "" {
				return errors.New("merge needs --out")
			}
			ms, err := gatherManifests(out, args)
			if err != nil {
				return err
			}
			var m reproduce.Manifest
			if len(ms) == 0 {
				if !cmd.Flags().Changed("scale") {
					return fmt.Errorf("no manifest in %s: not the output of insitu reproduce (give --scale to merge such directories anyway)", strings.Join(args, ", "))
				}
				m = reproduce.Manifest{Scale: scale, Iterations: iterations, Configs: configs}
			} else {
				var err error
				if m, err = reproduce.Combine(ms...); err != nil {
					return err
				}
				if m.Sweep != nil {
					return fmt.Errorf("these directories hold %s: use insitu sweep merge", m.What())
				}
			}
			if cmd.Flags().Changed("configs") || m.Configs == "" {
				m.Configs = configs
			}
			g, err := reproduceGrid(m.Scale, m.Configs, m.Ngspice(), m.Iterations, nil, m.Check())
			if err != nil {
				return err
			}
			if err := os.MkdirAll(out, 0o755); err != nil {
				return err
			}
			sum, err := reproduce.Merge(ctx, g.Cells(), out, args)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "merged %d cells from %d directories into %s: %d hard-linked, %d copied, %d already there, %d in none\n",
				sum.Cells, len(args), out, sum.Linked, sum.Copied, sum.Present, sum.Missing)
			if err := reproduce.WriteManifest(out, m); err != nil {
				return err
			}
			if err := reproduce.WriteReport(ctx, g, out); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s\n", filepath.Join(out, "report.md"))
			return unfinished(ctx, m, g, out)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&out, "out", "o", "", "the merged directory")
	f.StringVar(&configs, "configs", "configs", "directory holding the task configs (default: the shards')")
	f.StringVar(&scale, "scale", "quick", "the grid's scale, for directories without a manifest")
	f.IntVar(&iterations, "iterations", 0, "the grid's run iterations, for directories without a manifest")
	_ = f.MarkHidden("iterations")
	return cmd
}

// unfinished names the cells of the manifest's parts that have not
// finished in out, with their shards, as an error (nil when none).
func unfinished(ctx context.Context, m reproduce.Manifest, g reproduce.Grid, out string) error {
	owners, err := reproduce.Owners(m.Parts, func(p reproduce.Part) ([]reproduce.Cell, error) {
		pg, err := reproduceGrid(m.Scale, m.Configs, p.Ngspice, m.Iterations, p.Tasks, p.Check)
		return pg.Cells(), err
	})
	if err != nil {
		return err
	}
	return unfinishedCells(ctx, g.Cells(), owners, out)
}

func unfinishedCells(ctx context.Context, cells []reproduce.Cell, owners map[string]string, out string) error {
	var lines, shards []string
	for _, c := range cells {
		sh, ok := owners[c.Dir()]
		if !ok {
			continue
		}
		st := reproduce.Status(ctx, c, filepath.Join(out, c.Dir()))
		if st == "finished" {
			continue
		}
		where := ""
		if sh != "" {
			where = " (shard " + sh + ")"
			if !slices.Contains(shards, sh) {
				shards = append(shards, sh)
			}
		}
		lines = append(lines, fmt.Sprintf("%s %s%s", st, c.Dir(), where))
	}
	if len(lines) == 0 {
		return nil
	}
	slices.SortFunc(shards, compareShards)
	msg := fmt.Sprintf("%d cells have not finished:\n  %s", len(lines), strings.Join(lines, "\n  "))
	if len(shards) > 0 {
		msg += fmt.Sprintf("\nre-run shard(s) %s (--shard I/N, or those array tasks), then merge again", strings.Join(shards, ", "))
	}
	return errors.New(msg)
}

// runGrid runs the grid, restoring the default logger each cell's command
// replaces.
func runGrid(ctx context.Context, g reproduce.Grid, opt reproduce.Options) (reproduce.Summary, error) {
	prev := slog.Default()
	defer slog.SetDefault(prev)
	return reproduce.Run(ctx, g, opt)
}

// inProcess runs one cell as the insitu command tree in this process: the
// same code paths as 'insitu run/train/resume/study', with the shared ctx
// (Ctrl-C cancels it, so every cell in flight finishes its query, journals
// it and stops) and one Go runtime for both workers.
func inProcess(ctx context.Context, args []string, log io.Writer) error {
	root := newRoot()
	root.SetArgs(args)
	root.SetOut(log)
	root.SetErr(log)
	return root.ExecuteContext(ctx)
}

// gatherManifests reads the shard manifests of out and of every shard
// directory, for a merge.
func gatherManifests(out string, dirs []string) ([]reproduce.Manifest, error) {
	var ms []reproduce.Manifest
	for _, d := range append([]string{out}, dirs...) {
		m, err := reproduce.ReadManifests(d)
		if err != nil {
			return nil, err
		}
		ms = append(ms, m...)
	}
	return ms, nil
}
