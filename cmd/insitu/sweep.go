package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/insitu-lab/insitu/loop/reproduce"
)

func newSweepCmd() *cobra.Command {
	var (
		out, seeds, shard string
		second            string
		params, sets      []string
		jobs, shards, its int
		quiet, list, only bool
		logY              bool
		at                []int
	)
	cmd := &cobra.Command{
		Use:   "sweep CONFIG --param KEY=V1,V2,... [--param ...] --seeds 1..20",
		Short: "Run one config over a grid of parameter values and seeds, and compare the settings",
		Long: `Runs 'insitu run CONFIG --seed S --set KEY=V ...' for every combination of
the --param values (each --param one config key and its values; values
with commas go in brackets: --param 'surrogate.hidden=[16,16],[64,64]')
and every seed, --jobs at a time, each run in its own directory
OUT/KEY=V,.../sSEED. Then writes OUT/report.md, a table of the best
objective at chosen iterations, mean ± std over the seeds of each setting,
and OUT/sweep.png, the best objective against queries, median and 25–75 %
band per setting; the table is printed too.

--second 101..110 runs a second block of seeds, drawn after the settings
were fixed: the report adds its final best beside the first block's and
compares the settings under the seeds rule (a beat needs at least 10
seeds a side and |t| ≥ 2 with p < 0.05, Welch's t test, in both blocks).

Resumable like reproduce: finished runs are skipped, interrupted ones
resumed. On a cluster, --shard I/N (or a Slurm array task, or an Indexed
Kubernetes Job's JOB_COMPLETION_INDEX with --shards N) runs one part, and
'insitu sweep merge --out OUT DIR...' gathers the parts and writes the
report. With --list, --report-only or to continue, CONFIG and the grid
flags may be left out: OUT remembers them.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			var s *reproduce.Sweep
			if len(args) == 1 {
				sw := reproduce.Sweep{Config: args[0], Sets: sets, Iterations: its}
				for _, p := range params {
					pp, err := reproduce.ParseParam(p)
					if err != nil {
						return err
					}
					sw.Params = append(sw.Params, pp)
				}
				var err error
				if sw.Seeds, err = reproduce.ParseSeeds(seeds); err != nil {
					return err
				}
				if second != "" {
					if sw.Second, err = reproduce.ParseSeeds(second); err != nil {
						return fmt.Errorf("--second: %w", err)
					}
				}
				if err := sw.Check(); err != nil {
					return err
				}
				s = &sw
				if out == "" {
					out = filepath.Join("out", "sweep-"+strings.TrimSuffix(filepath.Base(sw.Config), filepath.Ext(sw.Config)))
				}
			}
			if out == "" {
				return errors.New("give CONFIG, or --out a sweep's directory")
			}
			m, err := sweepManifest(out, s)
			if err != nil {
				return err
			}
			sw := *m.Sweep
			if list {
				own, err := reproduce.Owners(m.Parts, func(reproduce.Part) ([]reproduce.Cell, error) { return sw.Cells(), nil })
				if err != nil {
					return err
				}
				return listCells(ctx, cmd, sw.Cells(), own, out)
			}
			if !only {
				sh, err := reproduce.ResolveShard(shard, shards, os.Getenv)
				if err != nil {
					return err
				}
				if err := os.MkdirAll(out, 0o755); err != nil {
					return err
				}
				if err := reproduce.Record(out, reproduce.Manifest{Sweep: &sw}, reproduce.Part{Shard: sh.Index, Shards: sh.Count}); err != nil {
					return err
				}
				var progress io.Writer
				if !quiet {
					progress = cmd.ErrOrStderr()
				}
				label := "sweep"
				if sh.Sharded() {
					label += " shard " + sh.String()
				}
				sum, err := runCells(ctx, label, sw.Cells(), reproduce.Options{Out: out, Jobs: jobs, Exec: inProcess, Progress: progress, Shard: sh})
				fmt.Fprintf(cmd.ErrOrStderr(), "%s: %d cells, %d already finished, %d started, %d resumed, %d failed, %s\n",
					label, sum.Total, sum.Skipped, sum.Started, sum.Resumed, len(sum.Failed), sum.Elapsed.Round(1e9))
				if err != nil && ctx.Err() != nil {
					fmt.Fprintf(cmd.ErrOrStderr(), "interrupted; run the same command again to continue\n")
					return err
				}
				if sh.Sharded() {
					if err == nil {
						fmt.Fprintf(cmd.ErrOrStderr(), "shard %s done; when every shard is: insitu sweep merge --out DIR %s ...\n", sh, out)
					}
					return err
				}
				if err != nil {
					defer fmt.Fprintf(cmd.ErrOrStderr(), "report written without the failed runs\n")
					if rerr := sweepReport(context.WithoutCancel(ctx), cmd, sw, out, at, logY); rerr != nil {
						return fmt.Errorf("%w; report: %v", err, rerr)
					}
					return err
				}
			}
			return sweepReport(ctx, cmd, sw, out, at, logY)
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&params, "param", nil, "a swept config key and its values: KEY=V1,V2,... (repeatable: every combination runs)")
	f.StringVar(&seeds, "seeds", "1..5", "seeds of every setting: 1..20, 1,2,7 or 3..5,9")
	f.StringVar(&second, "second", "", "a second block of seeds drawn after the settings were fixed (101..110): the report sets it beside --seeds and calls a beat only when both blocks agree")
	f.StringArrayVar(&sets, "set", nil, "override a config key in every run: --set key=value (repeatable)")
	f.IntVar(&its, "iterations", 0, "iterations of every run (default: the config's)")
	f.StringVarP(&out, "out", "o", "", "output directory (default out/sweep-CONFIGNAME)")
	f.IntVarP(&jobs, "jobs", "j", 2, "runs at once")
	f.BoolVarP(&quiet, "quiet", "q", false, "no progress bar")
	f.BoolVar(&list, "list", false, "list the runs, their state, shard and commands, and exit")
	f.BoolVar(&only, "report-only", false, "write the report from the journals already there, run nothing")
	f.StringVar(&shard, "shard", "", "run only shard I of N (I/N, 0-based; default: from SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX)")
	f.IntVar(&shards, "shards", 0, "the number of shards, with SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX as the index")
	f.IntSliceVar(&at, "at", nil, "iterations the table reports (default: 10, 25, 50, 100, 200 up to the runs' length, and their last)")
	f.BoolVar(&logY, "log", false, "logarithmic objective axis in sweep.png")
	cmd.AddCommand(newSweepMergeCmd())
	return cmd
}

// sweepManifest joins the sweep of the command line (nil: none given) with
// what out already holds; the result has a Sweep.
func sweepManifest(out string, s *reproduce.Sweep) (reproduce.Manifest, error) {
	ms, err := reproduce.ReadManifests(out)
	if err != nil {
		return reproduce.Manifest{}, err
	}
	if s != nil {
		ms = append(ms, reproduce.Manifest{Sweep: s})
	}
	if len(ms) == 0 {
		return reproduce.Manifest{}, fmt.Errorf("%s holds no sweep: give CONFIG and the --param, --seeds flags", out)
	}
	m, err := reproduce.Combine(ms...)
	if err != nil {
		return m, fmt.Errorf("%s: %w", out, err)
	}
	if m.Sweep == nil {
		return m, fmt.Errorf("%s holds %s: see insitu reproduce", out, m.What())
	}
	return m, nil
}

// runCells runs cells, restoring the default logger each run replaces.
func runCells(ctx context.Context, label string, cells []reproduce.Cell, opt reproduce.Options) (reproduce.Summary, error) {
	prev := slog.Default()
	defer slog.SetDefault(prev)
	return reproduce.RunCells(ctx, label, cells, opt)
}

// sweepReport writes the sweep's report and prints its table.
func sweepReport(ctx context.Context, cmd *cobra.Command, s reproduce.Sweep, out string, at []int, logY bool) error {
	rows, marks, err := reproduce.WriteSweepReport(ctx, s, out, at, logY)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "setting\truns\t")
	for _, m := range marks {
		fmt.Fprintf(tw, "best @ %d\t", m)
	}
	fmt.Fprintln(tw, "t\tp\tcontroller\t")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%d\t", r.Setting.Label, r.Runs)
		for i := range marks {
			if math.IsNaN(r.At[i]) {
				fmt.Fprint(tw, "-\t")
			} else {
				fmt.Fprintf(tw, "%.4g ± %.2g\t", r.At[i], r.SD[i])
			}
		}
		switch {
		case math.IsNaN(r.Test.T):
			fmt.Fprint(tw, "-\t-\t")
		case math.IsNaN(r.Test.P):
			fmt.Fprintf(tw, "%.2f\t-\t", r.Test.T)
		default:
			fmt.Fprintf(tw, "%.2f\t%.2g\t", r.Test.T, r.Test.P)
		}
		fmt.Fprintf(tw, "%s\t\n", r.Controller.Round(100*time.Microsecond))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s and %s\n", filepath.Join(out, "report.md"), filepath.Join(out, "sweep.png"))
	return nil
}

func newSweepMergeCmd() *cobra.Command {
	var (
		out  string
		at   []int
		logY bool
	)
	cmd := &cobra.Command{
		Use:   "merge --out OUT [DIR...]",
		Short: "Gather the runs of sweep shard directories into OUT and write the report",
		Long: `Gathers the run directories of every DIR (each shard's --out) into OUT as
'insitu reproduce merge' does — hard links for finished runs, copies for
the others, two different journals for one run refused — and writes the
sweep's report. Exits non-zero, after the report, when a run has not
finished, naming the shards to re-run.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if out == "" {
				return errors.New("merge needs --out")
			}
			ms, err := gatherManifests(out, args)
			if err != nil {
				return err
			}
			if len(ms) == 0 {
				return fmt.Errorf("no manifest in %s: not the output of insitu sweep", strings.Join(args, ", "))
			}
			m, err := reproduce.Combine(ms...)
			if err != nil {
				return err
			}
			if m.Sweep == nil {
				return fmt.Errorf("these directories hold %s: use insitu reproduce merge", m.What())
			}
			if err := os.MkdirAll(out, 0o755); err != nil {
				return err
			}
			cells := m.Sweep.Cells()
			sum, err := reproduce.Merge(ctx, cells, out, args)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "merged %d runs from %d directories into %s: %d hard-linked, %d copied, %d already there, %d in none\n",
				sum.Cells, len(args), out, sum.Linked, sum.Copied, sum.Present, sum.Missing)
			if err := reproduce.WriteManifest(out, m); err != nil {
				return err
			}
			if err := sweepReport(ctx, cmd, *m.Sweep, out, at, logY); err != nil {
				return err
			}
			own, err := reproduce.Owners(m.Parts, func(reproduce.Part) ([]reproduce.Cell, error) { return cells, nil })
			if err != nil {
				return err
			}
			return unfinishedCells(ctx, cells, own, out)
		},
	}
	cmd.Flags().StringVarP(&out, "out", "o", "", "the merged directory")
	cmd.Flags().IntSliceVar(&at, "at", nil, "iterations the table reports (default: from the runs' length)")
	cmd.Flags().BoolVar(&logY, "log", false, "logarithmic objective axis in sweep.png")
	return cmd
}
