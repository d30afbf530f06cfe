package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"
	"gonum.org/v1/gonum/stat"

	"github.com/insitu-lab/insitu"
	"github.com/insitu-lab/insitu/loop/export"
	"github.com/insitu-lab/insitu/loop/journal"
	"github.com/insitu-lab/insitu/loop/report"
	"github.com/insitu-lab/insitu/loop/reproduce"
)

func newRunsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "runs", Short: "List and inspect run directories"}
	list := &cobra.Command{
		Use:   "list [ROOT]",
		Short: "One line per run directory under ROOT (default runs/), or for ROOT itself when it is a run",
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
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", s.Dir, s.Created.Format("2006-01-02 15:04"), s.Method, s.Kind, s.Status, s.Done, bestText(cmd.Context(), s))
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
			j, err := journal.Peek(args[0])
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
			status := string(s.Status)
			if s.Stop != "" {
				status += " (stop: " + s.Stop + ")"
			}
			fmt.Fprintf(w, "run      %s\nmethod   %s on %s (%s)\nstatus   %s\nqueries  %d measured of %d journaled\nbest     %.6g\n",
				s.Dir, s.Method, s.Kind, s.Direction, status, s.Done, s.Queries, s.Best)
			desc, stored, err := runDescription(ctx, j)
			if err != nil && !errors.Is(err, journal.ErrNoDescription) {
				return err
			}
			printDescription(w, desc, stored, err == nil, s)
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
			qs, err := j.Queries(ctx)
			if err != nil {
				return err
			}
			if desc.Outputs != nil {
				outs := make([]string, len(desc.Outputs))
				for k, v := range desc.Outputs {
					outs[k] = v.Name
				}
				printFlags(w, outs, qs)
			}
			printTiming(w, report.QueryTiming(qs))
			evs = printPredictions(w, evs)
			printEvents(w, evs, eventRows)
			return nil
		},
	}
	show.Flags().IntVar(&eventRows, "events", 20, "safety events to list (the last N; 0: only the counts, -1: all)")
	var (
		at     []int
		second string
	)
	compare := &cobra.Command{
		Use:   "compare DIR...",
		Short: "Per problem: best objective at chosen iterations (a training's final accuracy), mean ± std over the runs of each method",
		Long: `Groups the runs by problem (the config's name, its objective and the
direction) and prints one table per problem: runs of different problems
are never averaged together. For an optimization, the best objective at
the iterations of --at and at the end, mean ± std over the runs of each
method, and the controller time per iteration; for a training, the final
test and train accuracy and the queries it took.

With --second SEEDS the runs of those seeds are a second block, drawn after
the setting was fixed: the tables cover the others, a second table gives
the second block's value (at the last --at mark; a training's final test
accuracy), and a Markdown table compares the methods there under the seeds
rule (a beat needs at least 10 seeds a side and |t| ≥ 2 with p < 0.05,
Welch's t test, in both blocks).`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var sec []uint64
			if second != "" {
				var err error
				if sec, err = reproduce.ParseSeeds(second); err != nil {
					return fmt.Errorf("--second: %w", err)
				}
			}
			curves, err := loadCurves(cmd, args)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			for i, p := range report.Problems(curves) {
				if i > 0 {
					fmt.Fprintln(w)
				}
				g := report.OfProblem(curves, p)
				fmt.Fprintf(w, "problem %s: %d run(s)\n", p, len(g))
				var g1, g2 []report.Curve
				for _, c := range g {
					if slices.Contains(sec, c.Seed) {
						g2 = append(g2, c)
					} else {
						g1 = append(g1, c)
					}
				}
				if p.Training {
					compareTraining(w, g1)
				} else {
					compareRuns(w, g1, at)
				}
				if sec != nil {
					compareSecond(w, g1, g2, at, p.Training)
				}
			}
			return nil
		},
	}
	compare.Flags().IntSliceVar(&at, "at", []int{25, 50, 100}, "iterations to report")
	compare.Flags().StringVar(&second, "second", "", "seeds of a second block (101..110): compared beside the others under the seeds rule")
	cmd.AddCommand(list, show, compare)
	return cmd
}

// compareSecond prints the second block's value per method (the best
// objective at the last --at mark; a training's final test accuracy) and
// the comparisons of the methods under the seeds rule, first block beside
// second.
func compareSecond(w io.Writer, g1, g2 []report.Curve, at []int, training bool) {
	labels := report.Labels(append(slices.Clone(g1), g2...))
	what, it := "Best objective", 0
	if len(at) > 0 {
		it = at[len(at)-1]
	}
	vals := func(cs []report.Curve) map[string][]float64 {
		m := map[string][]float64{}
		for _, l := range labels {
			for _, c := range report.Group(cs, l) {
				if !training {
					if _, _, v, ok := report.At([]report.Curve{c}, it); ok {
						m[l] = append(m[l], v...)
					}
				} else if e, ok := lastEvaluated(c.Iters); ok {
					m[l] = append(m[l], e.Best)
				}
			}
		}
		return m
	}
	if training {
		what, it = "Test accuracy", 0
		for _, c := range append(slices.Clone(g1), g2...) {
			if e, ok := lastEvaluated(c.Iters); ok {
				it = max(it, e.Iteration)
			}
		}
	}
	v1, v2 := vals(g1), vals(g2)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	col := fmt.Sprintf("best @ %d ²", it)
	if training {
		col = "test accuracy ²"
	}
	fmt.Fprintf(tw, "\nmethod\truns ²\t%s\t\n", col)
	for _, l := range labels {
		v := v2[l]
		text := "-"
		if len(v) > 0 {
			m, sd := stat.MeanStdDev(v, nil)
			text = meanSD(m, sd, len(v))
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t\n", l, len(report.Group(g2, l)), text)
	}
	tw.Flush()
	if len(g1) == 0 {
		return
	}
	seedsOf := func(cs []report.Curve) []uint64 {
		var s []uint64
		for _, c := range cs {
			if !slices.Contains(s, c.Seed) {
				s = append(s, c.Seed)
			}
		}
		slices.Sort(s)
		return s
	}
	reproduce.WriteClaims(w, labels, v1, v2, true, g1[0].Dir, what, it, seedsOf(g1), seedsOf(g2))
}

// bestText is a run's best for runs list: the best objective, or for a
// training the test accuracy of its last evaluated epoch (its queries
// carry no objective).
func bestText(ctx context.Context, s journal.Summary) string {
	j, err := journal.Peek(s.Dir)
	if err != nil {
		return orDash(s.Best)
	}
	defer j.Close()
	if cfg, err := j.Config(ctx); err == nil {
		if train, _ := trainingDoc(cfg); train {
			its, err := j.Iterations(ctx)
			if err != nil {
				return "-"
			}
			if it, ok := lastEvaluated(its); ok {
				return fmt.Sprintf("%.4f test acc.", it.Best)
			}
			return "-"
		}
	}
	if math.IsNaN(s.Best) {
		return "-"
	}
	return fmt.Sprintf("%.6g", s.Best)
}

// loadCurves loads the runs; a directory that is not a readable run is
// reported on stderr and left out, so that runs/*/ works beside other
// directories.
func loadCurves(cmd *cobra.Command, dirs []string) ([]report.Curve, error) {
	var curves []report.Curve
	for _, dir := range dirs {
		c, err := report.Load(cmd.Context(), dir)
		if err != nil {
			if cmd.Context().Err() != nil {
				return nil, err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "skipping %s: %v\n", dir, err)
			continue
		}
		curves = append(curves, c)
	}
	if len(curves) == 0 {
		return nil, fmt.Errorf("no readable run among the %d directories", len(dirs))
	}
	return curves, nil
}

func compareRuns(w io.Writer, curves []report.Curve, at []int) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "method\truns\t")
	for _, it := range at {
		fmt.Fprintf(tw, "best @ %d\t", it)
	}
	fmt.Fprintln(tw, "best at the end\tcontroller ms/it\t")
	for _, l := range report.Labels(curves) {
		g := report.Group(curves, l)
		fmt.Fprintf(tw, "%s\t%d\t", l, len(g))
		for _, it := range at {
			if mean, sd, vals, ok := report.At(g, it); ok {
				fmt.Fprintf(tw, "%s\t", meanSD(mean, sd, len(vals)))
			} else {
				fmt.Fprint(tw, "-\t")
			}
		}
		var last []float64
		for _, c := range g {
			if len(c.Best) > 0 {
				last = append(last, c.Best[len(c.Best)-1])
			}
		}
		final := "-"
		if len(last) > 0 {
			m, sd := stat.MeanStdDev(last, nil)
			final = meanSD(m, sd, len(last))
		}
		fmt.Fprintf(tw, "%s\t%s\t\n", final, orDash(1e3*report.ControllerPerIteration(g)))
	}
	tw.Flush()
}

// meanSD is "mean ± sd" over n runs, the mean alone for one.
func meanSD(mean, sd float64, n int) string {
	if n == 1 {
		return fmt.Sprintf("%.4g", mean)
	}
	return fmt.Sprintf("%.4g ± %.2g", mean, sd)
}

// compareTraining tabulates the trainings' last evaluated epoch.
func compareTraining(w io.Writer, curves []report.Curve) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "method\truns\tepochs\ttest accuracy\ttrain accuracy\tqueries\t")
	for _, l := range report.Labels(curves) {
		var test, train, queries, epochs []float64
		for _, c := range report.Group(curves, l) {
			if it, ok := lastEvaluated(c.Iters); ok {
				test, train = append(test, it.Best), append(train, it.StepObjective)
				queries, epochs = append(queries, float64(it.Queries)), append(epochs, float64(it.Iteration))
			}
		}
		ms := func(v []float64, f string) string {
			if len(v) == 0 {
				return "-"
			}
			if len(v) == 1 {
				return fmt.Sprintf(f, v[0])
			}
			m, sd := stat.MeanStdDev(v, nil)
			return fmt.Sprintf(f+" ± %.2g", m, sd)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t\n", l, len(report.Group(curves, l)), ms(epochs, "%.0f"), ms(test, "%.4f"), ms(train, "%.4f"), ms(queries, "%.0f"))
	}
	tw.Flush()
}

// lastEvaluated is the last epoch whose accuracy was measured.
func lastEvaluated(its []journal.Iteration) (journal.Iteration, bool) {
	for i := len(its) - 1; i >= 0; i-- {
		if !math.IsNaN(its[i].Best) {
			return its[i], true
		}
	}
	return journal.Iteration{}, false
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
		Short: "Best objective vs queries, one panel per problem; runs of the same method are overlaid as median and 25–75 % band",
		Long: `Draws the best objective so far against the queries to the black box,
one panel per problem (the config's name, its objective and direction):
runs of different problems are never averaged together. Runs of one method
are overlaid as their median, mean and 25–75 % band. A training's panel
shows its test accuracy per epoch. --log draws objectives on a log axis
where every value is positive. The PNG is written whole or not at all.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			curves, err := loadCurves(cmd, args)
			if err != nil {
				return err
			}
			problems := report.Problems(curves)
			var panels []report.Panel
			for _, p := range problems {
				g := report.OfProblem(curves, p)
				pn := report.Panel{Title: fmt.Sprintf("%s: %s", p, strings.Join(report.Labels(g), " vs "))}
				if title != "" {
					pn.Title = title
					if len(problems) > 1 {
						pn.Title += " · " + p.String()
					}
				}
				if p.Training {
					pn.YLabel = "test accuracy on the black box"
					pn.Bands, pn.YMin, pn.YMax = report.SummarizeIterations(g), 0, 1
				} else {
					dir := "minimized"
					if p.Direction == journal.Maximize {
						dir = "maximized"
					}
					pn.YLabel = fmt.Sprintf("best %s so far (%s)", p.Objective, dir)
					pn.Bands, pn.LogY = report.Summarize(g), logY
				}
				panels = append(panels, pn)
			}
			if err := export.WriteAtomic(out, func(w io.Writer) error { return report.PlotPanels(w, panels) }); err != nil {
				return fmt.Errorf("plot %s: %w", out, err)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s (%d runs, %d problem(s))\n", out, len(curves), len(problems))
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "out", "o", "progress.png", "PNG file to write")
	cmd.Flags().StringVar(&title, "title", "", "plot title (default: the problem and the methods)")
	cmd.Flags().BoolVar(&logY, "log", false, "logarithmic objective axis (where every value is positive)")
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

// printDescription prints what a run measured: its variables (their
// count, and their units), devices, config hash and build; or, for a
// journal older than descriptions, that the names come from this build.
func printDescription(w io.Writer, d journal.Description, stored, ok bool, s journal.Summary) {
	if !ok {
		fmt.Fprintln(w, "variables (the journal holds no description and this build cannot describe its config)")
		return
	}
	units := func(vs []journal.Variable) string {
		var us []string
		for _, v := range vs {
			if v.Unit != "" && !slices.Contains(us, v.Unit) {
				us = append(us, v.Unit)
			}
		}
		if len(us) == 0 {
			return ""
		}
		return " (" + strings.Join(us, ", ") + ")"
	}
	from := ""
	if !stored {
		from = " — described by this build: the journal is older than stored descriptions"
	}
	fmt.Fprintf(w, "inputs   %d%s, outputs %d%s%s\n", len(d.Inputs), units(d.Inputs), len(d.Outputs), units(d.Outputs), from)
	for _, dev := range d.Devices {
		id := dev.Identity
		if id == "" {
			id = "no identity: " + dev.Error
		}
		fmt.Fprintf(w, "device   %s (%s): %s\n", dev.Name, cmp.Or(dev.Type, "-"), id)
	}
	if h := cmp.Or(d.ConfigHash, s.ConfigHash); h != "" {
		fmt.Fprintf(w, "config   sha256 %s\n", h)
	}
	if stored {
		b := d.Build
		rev := ""
		if b.Revision != "" {
			rev = ", revision " + b.Revision[:min(len(b.Revision), 12)]
			if b.Modified {
				rev += " (modified)"
			}
		}
		fmt.Fprintf(w, "build    %s%s, %s\n", b.Version, rev, b.GoVersion)
	}
}

// printTiming prints the median and 95th percentile of the intervals
// between the instants the queries' devices marked.
func printTiming(w io.Writer, t report.Timing) {
	if t.Queries == 0 {
		return
	}
	ms := func(d time.Duration) string { // three significant digits, in the unit that fits
		if d <= 0 {
			return d.String()
		}
		unit := time.Duration(math.Pow10(max(int(math.Floor(math.Log10(float64(d))))-2, 0)))
		return d.Round(unit).String()
	}
	fmt.Fprintf(w, "timing   %d queries with marks: median / 95th percentile\n", t.Queries)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(label string, iv report.Interval) {
		fmt.Fprintf(tw, "  %s\t%s\t/ %s\t(%d queries)\n", label, ms(iv.Median), ms(iv.P95), iv.Queries)
	}
	for _, iv := range t.Intervals {
		if iv.From != journal.MarkStart || iv.To != journal.MarkEnd { // the whole query, below
			row(iv.From+" → "+iv.To, iv)
		}
	}
	if t.Total.Queries > 0 {
		row("whole query (start → end, guard included)", t.Total)
	}
	tw.Flush()
}
