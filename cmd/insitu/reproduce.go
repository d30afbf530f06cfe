package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/insitu-lab/insitu/loop/reproduce"
)

func newReproduceCmd() *cobra.Command {
	var (
		scale, out, configs string
		jobs                int
		quiet, list, only   bool
		tasks               []string
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
cores). --tasks runs some tasks only; the report still covers all of them.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := exec.LookPath("ngspice")
			g, gerr := reproduce.NewGrid(scale, configs, err == nil)
			if gerr != nil {
				return gerr
			}
			if out == "" {
				out = filepath.Join("out", "reproduce-"+scale)
			}
			ctx := cmd.Context()
			if list {
				for _, c := range g.Cells() {
					dir := filepath.Join(out, c.Dir())
					fmt.Fprintf(cmd.OutOrStdout(), "%-8s %s  insitu %s\n", reproduce.CellState(ctx, c, dir), c.Dir(), strings.Join(c.Args(dir), " "))
				}
				return nil
			}
			if !only {
				var progress io.Writer
				if !quiet {
					progress = cmd.ErrOrStderr()
				}
				run := g
				if len(tasks) > 0 {
					var err error
					if run, err = g.Only(tasks); err != nil {
						return err
					}
				}
				sum, err := runGrid(ctx, run, reproduce.Options{Out: out, Jobs: jobs, Exec: inProcess, Progress: progress})
				fmt.Fprintf(cmd.ErrOrStderr(), "reproduce %s: %d cells, %d already finished, %d started, %d resumed, %d failed, %s\n",
					scale, sum.Total, sum.Skipped, sum.Started, sum.Resumed, len(sum.Failed), sum.Elapsed.Round(1e9))
				if err != nil && ctx.Err() != nil {
					fmt.Fprintf(cmd.ErrOrStderr(), "interrupted; run the same command again to continue\n")
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
	f.BoolVar(&list, "list", false, "list the cells, their state and commands, and exit")
	f.BoolVar(&only, "report-only", false, "write the report from the journals already there, run nothing")
	f.StringSliceVar(&tasks, "tasks", nil, "run only these tasks (comma-separated names, see --list)")
	return cmd
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
