package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/insitu-lab/insitu"
	"github.com/insitu-lab/insitu/loop/journal"
	"github.com/insitu-lab/insitu/loop/report"
)

func newRunsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "runs", Short: "List and inspect run directories"}
	list := &cobra.Command{
		Use:   "list [ROOT]",
		Short: "One line per run directory under ROOT (default runs/)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			root := "runs"
			if len(args) == 1 {
				root = args[0]
			}
			ss, err := journal.List(root)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "DIR\tCREATED\tMETHOD\tKIND\tSTATUS\tQUERIES\tBEST")
			for _, s := range ss {
				if s.Err != nil {
					fmt.Fprintf(tw, "%s\t-\t-\t-\tunreadable: %v\t-\t-\n", s.Dir, s.Err)
					continue
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%.6g\n", s.Dir, s.Created.Format("2006-01-02 15:04"), s.Method, s.Kind, s.Status, s.Done, s.Best)
			}
			return tw.Flush()
		},
	}
	var eventRows int
	show := &cobra.Command{
		Use:   "show DIR",
		Short: "A run's summary, iterations and safety events",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			j, err := journal.OpenReadOnly(args[0])
			if err != nil {
				return err
			}
			defer j.Close()
			s, err := j.Summary(ctx)
			if err != nil {
				return err
			}
			its, err := j.Iterations(ctx)
			if err != nil {
				return err
			}
			evs, err := j.Events(ctx)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "run      %s\nmethod   %s on %s (%s)\nstatus   %s\nqueries  %d measured of %d journaled\nbest     %.6g\n",
				s.Dir, s.Method, s.Kind, s.Direction, s.Status, s.Done, s.Queries, s.Best)
			tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
			fmt.Fprintln(tw, "iteration\tqueries\tbest\tstep objective\ttrain loss\tcontroller ms\tbox ms\t")
			for i, it := range its {
				// Every iteration of a short run, else about 20 rows.
				if len(its) > 25 && i%(len(its)/20) != 0 && i != len(its)-1 {
					continue
				}
				fmt.Fprintf(tw, "%d\t%d\t%.6g\t%s\t%s\t%.1f\t%.1f\t\n", it.Iteration, it.Queries, it.Best, orDash(it.StepObjective), orDash(it.TrainLoss),
					1e3*it.Controller.Seconds(), 1e3*it.Box.Seconds())
			}
			tw.Flush()
			if spec, ok := describeRun(ctx, j); ok {
				qs, err := j.Queries(ctx)
				if err != nil {
					return err
				}
				printFlags(w, spec.Out, qs)
			}
			evs = printPredictions(w, evs)
			printEvents(w, evs, eventRows)
			return nil
		},
	}
	show.Flags().IntVar(&eventRows, "events", 20, "safety events to list (the last N; 0: only the counts, -1: all)")
	var at []int
	compare := &cobra.Command{
		Use:   "compare DIR...",
		Short: "Best objective at chosen iterations, mean ± std over the runs of each method, and controller time per iteration",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var curves []report.Curve
			for _, dir := range args {
				c, err := report.Load(cmd.Context(), dir)
				if err != nil {
					return err
				}
				curves = append(curves, c)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', tabwriter.AlignRight)
			fmt.Fprint(tw, "method\truns\t")
			for _, it := range at {
				fmt.Fprintf(tw, "best @ %d\t", it)
			}
			fmt.Fprintln(tw, "controller ms/it\t")
			for _, l := range report.Labels(curves) {
				g := report.Group(curves, l)
				fmt.Fprintf(tw, "%s\t%d\t", l, len(g))
				for _, it := range at {
					if mean, sd, _, ok := report.At(g, it); ok {
						fmt.Fprintf(tw, "%.4f ± %.4f\t", mean, sd)
					} else {
						fmt.Fprint(tw, "-\t")
					}
				}
				fmt.Fprintf(tw, "%.1f\t\n", 1e3*report.ControllerPerIteration(g))
			}
			return tw.Flush()
		},
	}
	compare.Flags().IntSliceVar(&at, "at", []int{25, 50, 100}, "iterations to report")
	cmd.AddCommand(list, show, compare)
	return cmd
}

func orDash(v float64) string {
	if math.IsNaN(v) {
		return "-"
	}
	return fmt.Sprintf("%.4g", v)
}

func newPlotCmd() *cobra.Command {
	var (
		out   string
		title string
		logY  bool
	)
	cmd := &cobra.Command{
		Use:   "plot DIR... -o FILE.png",
		Short: "Best objective vs queries; runs of the same method are overlaid as median and 25–75 % band",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var curves []report.Curve
			for _, dir := range args {
				c, err := report.Load(cmd.Context(), dir)
				if err != nil {
					return err
				}
				curves = append(curves, c)
			}
			if title == "" {
				title = strings.Join(report.Labels(curves), " vs ")
			}
			f, err := os.Create(out)
			if err != nil {
				return err
			}
			err = report.PlotBestVsQueries(f, title, report.Summarize(curves), logY)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s (%d runs)\n", out, len(curves))
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "out", "o", "progress.png", "PNG file to write")
	cmd.Flags().StringVar(&title, "title", "", "plot title (default: the methods)")
	cmd.Flags().BoolVar(&logY, "log", false, "logarithmic objective axis")
	return cmd
}

// printEvents prints the safety events as a count per kind and a table of
// the last rows of them (all when rows < 0).
func printEvents(w io.Writer, evs []journal.EventRecord, rows int) {
	if len(evs) == 0 {
		fmt.Fprintln(w, "safety events: none")
		return
	}
	counts := map[string]int{}
	for _, e := range evs {
		counts[e.Kind]++
	}
	kinds := slices.Sorted(maps.Keys(counts))
	parts := make([]string, len(kinds))
	for i, k := range kinds {
		parts[i] = fmt.Sprintf("%s %d", k, counts[k])
	}
	fmt.Fprintf(w, "safety events: %d (%s)\n", len(evs), strings.Join(parts, ", "))
	if rows == 0 {
		return
	}
	shown := evs
	if rows > 0 && len(evs) > rows {
		shown = evs[len(evs)-rows:]
		fmt.Fprintf(w, "last %d:\n", rows)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tKIND\tNAME\tVALUE\tDETAIL")
	for _, e := range shown {
		name, value := e.Name, "-"
		if name == "" {
			name = "-"
		}
		if !math.IsNaN(e.Value) {
			value = fmt.Sprintf("%.6g", e.Value)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", e.Time.Format("15:04:05.000"), e.Kind, name, value, e.Detail)
	}
	tw.Flush()
}

// describeRun returns the Spec of a run's black box from the config its
// journal holds, opening no device; false when it cannot be had (a kind
// this binary lacks, a config that no longer decodes).
func describeRun(ctx context.Context, j *journal.Journal) (insitu.Spec, bool) {
	data, err := j.Config(ctx)
	if err != nil {
		return insitu.Spec{}, false
	}
	var top map[string]any
	if yaml.Unmarshal(data, &top) != nil {
		return insitu.Spec{}, false
	}
	box, ok := top["blackbox"].(map[string]any)
	if !ok {
		return insitu.Spec{}, false
	}
	spec, err := insitu.Describe(ctx, params(box, j.Path(), "blackbox"))
	return spec, err == nil
}

// printFlags counts, for every flag output (an instrument's "the reading
// is not what was asked for", such as an SMU's compliance), the queries
// that raised it.
func printFlags(w io.Writer, outs []string, qs []journal.Query) {
	for k, name := range outs {
		if !strings.HasSuffix(name, "compliance") {
			continue
		}
		n, measured := 0, 0
		for _, q := range qs {
			if len(q.Y) != len(outs) {
				continue
			}
			measured++
			if q.Y[k] > 0.5 {
				n++
			}
		}
		fmt.Fprintf(w, "%-8s %s in %d of %d measured queries\n", "flags", name, n, measured)
	}
}

// printPredictions summarizes the surrogate's prediction errors (journaled
// as events of their own kind) and returns the other events.
func printPredictions(w io.Writer, evs []journal.EventRecord) []journal.EventRecord {
	var errs []float64
	var rest []journal.EventRecord
	for _, e := range evs {
		if e.Kind == journal.KindPrediction {
			errs = append(errs, e.Value)
			continue
		}
		rest = append(rest, e)
	}
	if len(errs) == 0 {
		return rest
	}
	mean := func(v []float64) float64 {
		s := 0.0
		for _, x := range v {
			s += x
		}
		return s / float64(len(v))
	}
	last := errs[max(len(errs)-10, 0):]
	fmt.Fprintf(w, "model    prediction error (normalized) over %d new queries: mean %.3g, max %.3g, last %d: %.3g\n",
		len(errs), mean(errs), slices.Max(errs), len(last), mean(last))
	return rest
}
