package reproduce

import (
	"bytes"
	"cmp"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/insitu-lab/insitu/loop/journal"
	"github.com/insitu-lab/insitu/loop/report"
)

// paperRow is one method of the paper's Table 1 at 50, 100 and 200
// iterations; med/q25/q75 are zero where the paper gives no IQR.
type paperRow struct {
	mean, sd, med, q25, q75 [3]float64
}

var paperIters = [3]int{50, 100, 200}

// paper holds the GradPIE paper's Table 1, keyed by block and our method
// name (its BayOpt is our bayopt, and turbo on OWMS).
var paper = map[string]map[string]paperRow{
	"cnon-M0": {
		"exact":   {mean: [3]float64{0.101, 0.057, 0.048}, sd: [3]float64{0.013, 0.003, 0.001}},
		"mae":     {mean: [3]float64{0.261, 0.188, 0.131}, sd: [3]float64{0.023, 0.044, 0.041}},
		"gradpie": {mean: [3]float64{0.198, 0.124, 0.081}, sd: [3]float64{0.025, 0.031, 0.015}},
	},
	"cnon-M1": {
		"exact":   {mean: [3]float64{0.085, 0.054, 0.048}, sd: [3]float64{0.017, 0.004, 0.001}},
		"mae":     {mean: [3]float64{0.194, 0.151, 0.114}, sd: [3]float64{0.029, 0.026, 0.030}},
		"gradpie": {mean: [3]float64{0.186, 0.093, 0.066}, sd: [3]float64{0.016, 0.013, 0.007}},
	},
	"opamp": {
		"random":  {mean: [3]float64{7.074, 7.330, 7.628}, sd: [3]float64{0.904, 0.849, 0.835}, med: [3]float64{7.036, 7.330, 7.610}, q25: [3]float64{6.384, 6.714, 7.032}, q75: [3]float64{7.701, 7.902, 8.224}},
		"mae":     {mean: [3]float64{8.419, 8.628, 8.860}, sd: [3]float64{1.010, 0.947, 0.899}, med: [3]float64{8.460, 8.689, 8.966}, q25: [3]float64{7.785, 8.058, 8.329}, q75: [3]float64{9.096, 9.311, 9.499}},
		"gradpie": {mean: [3]float64{9.011, 9.389, 9.615}, sd: [3]float64{0.828, 0.727, 0.694}, med: [3]float64{9.068, 9.430, 9.700}, q25: [3]float64{8.582, 9.053, 9.292}, q75: [3]float64{9.473, 9.763, 9.952}},
	},
	"owms": {
		"random":  {mean: [3]float64{0.239, 0.233, 0.227}, sd: [3]float64{0.012, 0.009, 0.009}, med: [3]float64{0.236, 0.235, 0.231}, q25: [3]float64{0.232, 0.229, 0.221}, q75: [3]float64{0.249, 0.238, 0.235}},
		"bayopt":  {mean: [3]float64{0.147, 0.120, 0.103}, sd: [3]float64{0.023, 0.020, 0.019}, med: [3]float64{0.142, 0.119, 0.104}, q25: [3]float64{0.133, 0.109, 0.093}, q75: [3]float64{0.155, 0.129, 0.114}},
		"mae":     {mean: [3]float64{0.172, 0.140, 0.117}, sd: [3]float64{0.018, 0.015, 0.013}, med: [3]float64{0.172, 0.142, 0.118}, q25: [3]float64{0.159, 0.132, 0.109}, q75: [3]float64{0.186, 0.150, 0.125}},
		"gradpie": {mean: [3]float64{0.133, 0.107, 0.090}, sd: [3]float64{0.014, 0.016, 0.015}, med: [3]float64{0.132, 0.105, 0.087}, q25: [3]float64{0.123, 0.095, 0.078}, q75: [3]float64{0.142, 0.118, 0.102}},
	},
}

// paperAt returns the paper's row for method at iteration it (turbo,
// the BayOpt of high dimensions, stands in the paper's BayOpt row).
func paperAt(block, method string, it int) (r paperRow, i int, ok bool) {
	if method == "turbo" {
		method = "bayopt"
	}
	r, ok = paper[block][method]
	if !ok {
		return r, 0, false
	}
	i = slices.Index(paperIters[:], it)
	return r, i, i >= 0
}

// Reduction is a query reduction ratio: the baseline reaches Value, its
// final value, after BaseQueries; the locality-aware curve first reaches it
// after LocQueries (0 and Reached false when it never does).
type Reduction struct {
	Value                   float64
	BaseQueries, LocQueries int
	Reached                 bool
}

// Ratio is BaseQueries / LocQueries, NaN when not reached.
func (r Reduction) Ratio() float64 {
	if !r.Reached || r.LocQueries == 0 {
		return math.NaN()
	}
	return float64(r.BaseQueries) / float64(r.LocQueries)
}

func (r Reduction) String() string {
	if !r.Reached {
		return "not reached"
	}
	return fmt.Sprintf("%.2f× (%d / %d queries)", r.Ratio(), r.BaseQueries, r.LocQueries)
}

// QueryReduction compares two running-best curves (index i: after i+1
// queries): the queries base needs to first reach its final value, divided
// by the queries loc needs to reach the same value (paper Table 2).
func QueryReduction(base, loc []float64, dir journal.Direction) Reduction {
	if len(base) == 0 {
		return Reduction{Value: math.NaN()}
	}
	v := base[len(base)-1]
	reached := func(x float64) bool {
		if dir == journal.Maximize {
			return x >= v
		}
		return x <= v
	}
	r := Reduction{Value: v}
	for i, x := range base {
		if reached(x) {
			r.BaseQueries = i + 1
			break
		}
	}
	for i, x := range loc {
		if reached(x) {
			r.LocQueries, r.Reached = i+1, true
			break
		}
	}
	return r
}

// quantile by linear interpolation (type 7), as report's bands use.
func quantile(v []float64, p float64) float64 { return report.Quantile(v, p) }

// num formats a value with 4 significant digits.
func num(v float64) string {
	if math.IsNaN(v) {
		return "–"
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}

// loadTask reads the journals of a task's finished cells; missing counts
// the others.
func loadTask(ctx context.Context, g Grid, t Task, out string) (curves []report.Curve, missing int) {
	var cs []Cell
	for _, c := range g.Cells() {
		if c.Task == t.Name {
			cs = append(cs, c)
		}
	}
	return loadCells(ctx, cs, out)
}

// loadCells reads the journals of the finished cells among cs.
func loadCells(ctx context.Context, cs []Cell, out string) (curves []report.Curve, missing int) {
	for _, c := range cs {
		dir := filepath.Join(out, c.Dir())
		if CellState(ctx, c, dir) != Finished {
			missing++
			continue
		}
		cv, err := report.Load(ctx, dir)
		if err != nil || len(cv.Iters) == 0 {
			missing++
			continue
		}
		curves = append(curves, cv)
	}
	return curves, missing
}

// WriteReport writes OUT/report.md and one OUT/TASK.png per optimization
// task from the journals under out.
func WriteReport(ctx context.Context, g Grid, out string) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Reproducing the paper on our twins (`insitu reproduce --scale %s`)\n\n", g.Scale)
	fmt.Fprintf(&b, "Generated by `insitu reproduce` from the journals under `%s`: %d cells. ", out, len(g.Cells()))
	b.WriteString("Best objective so far after each checkpoint iteration; mean ± std and median (25–75 %) over seeds. " +
		"The paper's Table 1 stands beside ours where it has that iteration; its absolute " +
		"values are not comparable (twin constants differ), its ordering is the bar. Query reduction ratio: queries " +
		"the other method's median curve needs to first reach its final value ÷ queries GradPIE's median curve needs for the same value. " +
		"Seeds rule: a comparison is a claim only from ≥ 10 seeds, and one method beats another only when Welch's t test gives " +
		"|t| ≥ 2 and p < 0.05 both on the block of seeds the setting was tuned on and on a second block drawn after it was fixed " +
		"(`insitu reproduce --seeds 101..110`, columns marked ²); with fewer seeds a table is a screen.\n\n")
	var sweeps []sweepOutcome
	for _, t := range g.Tasks {
		var err error
		switch {
		case len(t.Variants) > 0:
			var o sweepOutcome
			o, err = writeKnobTask(ctx, &b, g, t, out)
			sweeps = append(sweeps, o)
		case t.Kind == KindRun:
			err = writeRunTask(ctx, &b, g, t, out)
		case t.Kind == KindTrain:
			err = writeTrainTask(ctx, &b, g, t, out)
		case t.Kind == KindStudy:
			err = writeStudyTask(&b, t, out)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", t.Name, err)
		}
	}
	writeTried(&b, sweeps)
	return os.WriteFile(filepath.Join(out, "report.md"), b.Bytes(), 0o644)
}

func setting(w io.Writer, t Task, seeds int, missing int) {
	fmt.Fprintf(w, "`%s`", t.Config)
	if len(t.Sets) > 0 {
		fmt.Fprintf(w, " with `--set %s`", strings.Join(t.Sets, " --set "))
	}
	unit := "iterations"
	if t.Kind != KindRun {
		unit = "epochs"
	}
	if t.Kind == KindStudy {
		fmt.Fprintf(w, "; %d %s per model.", t.Iterations, unit)
	} else {
		fmt.Fprintf(w, "; %d seed(s) per method, %d %s.", seeds, t.Iterations, unit)
	}
	if missing > 0 {
		fmt.Fprintf(w, " **%d cells have not finished and are left out.**", missing)
	}
	fmt.Fprint(w, "\n\n")
}

// blockCurves loads a task's tuned block and its second block.
func blockCurves(ctx context.Context, g Grid, t Task, out string) (tuned, check []report.Curve, missing, missing2 int, seeds, seeds2 []uint64) {
	seeds, seeds2 = g.Blocks(t)
	tuned, missing = loadCells(ctx, g.BlockCells(t, seeds), out)
	if len(seeds2) > 0 {
		check, missing2 = loadCells(ctx, g.BlockCells(t, seeds2), out)
	}
	return tuned, check, missing, missing2, seeds, seeds2
}

// secondBlock says which second block the task ran, under its setting.
func secondBlock(w io.Writer, seeds2 []uint64, runs, missing int) {
	if len(seeds2) == 0 {
		return
	}
	fmt.Fprintf(w, "Second block: %s, drawn after the setting was fixed; its columns are marked ², %d runs", blockLabel(seeds2), runs)
	if missing > 0 {
		fmt.Fprintf(w, " (**%d not finished**)", missing)
	}
	fmt.Fprint(w, ".\n\n")
}

// valuesAt collects every method's per-seed values at iteration (epoch) it.
func valuesAt(curves []report.Curve, methods []string, it int) map[string][]float64 {
	vals := map[string][]float64{}
	for _, m := range methods {
		if _, _, v, ok := report.At(report.Group(curves, m), it); ok {
			vals[m] = v
		}
	}
	return vals
}

// locMethod is the task's locality-aware method: gradpie or its in-situ
// training form.
func locMethod(methods []string) string {
	for _, m := range methods {
		if strings.Contains(m, "gradpie") {
			return m
		}
	}
	return ""
}

// WriteClaims states the comparisons of methods' values at iteration (or
// epoch) it under the seeds rule, as a Markdown table: GradPIE against
// every other method, then each adjacent pair of the ordering of the
// tuned block's means not already compared. tuned and check map a method
// to its per-seed values in the two blocks (seeds, seeds2); hasCheck says
// whether the second block was run.
func WriteClaims(w io.Writer, methods []string, tuned, check map[string][]float64, hasCheck bool, dir journal.Direction, what string, it int, seeds, seeds2 []uint64) {
	writeClaims(w, methods, tuned, check, hasCheck, dir, what, it, seeds, seeds2)
}

func writeClaims(w io.Writer, methods []string, tuned, check map[string][]float64, hasCheck bool, dir journal.Direction, what string, it int, seeds, seeds2 []uint64) {
	loc := locMethod(methods)
	claim := func(a, b string) Claim {
		c := Claim{Tuned: Welch(tuned[a], tuned[b]), HasCheck: hasCheck}
		if hasCheck {
			c.Check = Welch(check[a], check[b])
		}
		return c
	}
	cell := func(r Test) string {
		if math.IsNaN(r.T) {
			return "–"
		}
		return fmt.Sprintf("%+.1f %%, %s", 100*r.Change, r)
	}
	fmt.Fprintf(w, "\n%s at %d (Welch's t test, two-sided p; a beat needs ≥ %d seeds a side and |t| ≥ 2, p < %.2g in both blocks):\n\n", what, it, MinSeeds, Alpha)
	fmt.Fprintf(w, "| comparison | %s | %s | verdict |\n|---|---|---|---|\n", blockLabel(seeds), map[bool]string{true: blockLabel(seeds2) + " ²", false: "second block"}[hasCheck])
	row := func(a, b string) {
		if len(tuned[a]) == 0 || len(tuned[b]) == 0 {
			return
		}
		c := claim(a, b)
		chk := "not run"
		if hasCheck {
			chk = cell(c.Check)
		}
		fmt.Fprintf(w, "| %s vs %s | %s | %s | %s |\n", a, b, cell(c.Tuned), chk, c.Verdict(a, b, dir))
	}
	if loc != "" {
		for _, m := range methods {
			if m != loc {
				row(loc, m)
			}
		}
	}
	// The ordering of the tuned block's means, best first, and each
	// adjacent pair not already compared with GradPIE.
	var order []string
	for _, m := range methods {
		if len(tuned[m]) > 0 {
			order = append(order, m)
		}
	}
	mean := func(m string) float64 { v, _ := meanVar(tuned[m]); return v }
	slices.SortStableFunc(order, func(a, b string) int {
		if dir == journal.Maximize {
			return cmp.Compare(mean(b), mean(a))
		}
		return cmp.Compare(mean(a), mean(b))
	})
	for i := 1; i < len(order); i++ {
		if order[i-1] != loc && order[i] != loc {
			row(order[i-1], order[i])
		}
	}
	if len(order) > 1 {
		fmt.Fprintf(w, "\nOrdering of the means on %s, best first: %s.\n", blockLabel(seeds), strings.Join(order, " → "))
	}
}

func writeRunTask(ctx context.Context, w *bytes.Buffer, g Grid, t Task, out string) error {
	fmt.Fprintf(w, "## %s\n\n", t.Title)
	curves, curves2, missing, missing2, seeds, seeds2 := blockCurves(ctx, g, t, out)
	setting(w, t, len(seeds), missing)
	secondBlock(w, seeds2, len(curves2), missing2)
	if len(curves) == 0 {
		w.WriteString("No runs yet.\n\n")
		return nil
	}
	cps := Checkpoints(t.Iterations)
	two := len(seeds2) > 0
	// mean ± std, the second block and the paper beside.
	w.WriteString("| method |")
	for _, c := range cps {
		fmt.Fprintf(w, " @ %d |", c)
		if two {
			fmt.Fprintf(w, " @ %d ² |", c)
		}
		if _, _, ok := paperAt(t.Paper, "mae", c); ok {
			fmt.Fprintf(w, " paper @ %d |", c)
		}
	}
	w.WriteString(" controller ms/it | queries |\n|---|")
	for _, c := range cps {
		w.WriteString("---|")
		if two {
			w.WriteString("---|")
		}
		if _, _, ok := paperAt(t.Paper, "mae", c); ok {
			w.WriteString("---|")
		}
	}
	w.WriteString("---|---|\n")
	for _, m := range t.Methods {
		gr := report.Group(curves, m)
		if len(gr) == 0 {
			continue
		}
		gr2 := report.Group(curves2, m)
		fmt.Fprintf(w, "| %s |", m)
		for _, c := range cps {
			if mean, sd, _, ok := report.At(gr, c); ok {
				fmt.Fprintf(w, " %s ± %s |", num(mean), num(sd))
			} else {
				w.WriteString(" – |")
			}
			if two {
				if mean, sd, _, ok := report.At(gr2, c); ok {
					fmt.Fprintf(w, " %s ± %s |", num(mean), num(sd))
				} else {
					w.WriteString(" – |")
				}
			}
			if _, _, ok := paperAt(t.Paper, "mae", c); ok {
				if r, i, ok := paperAt(t.Paper, m, c); ok {
					fmt.Fprintf(w, " %s ± %s |", num(r.mean[i]), num(r.sd[i]))
				} else {
					w.WriteString(" |")
				}
			}
		}
		fmt.Fprintf(w, " %.1f | %d |\n", 1e3*report.ControllerPerIteration(gr), lastQueries(gr))
	}
	w.WriteString("\nMedian (25–75 %), " + blockLabel(seeds) + ":\n\n| method |")
	for _, c := range cps {
		fmt.Fprintf(w, " @ %d |", c)
	}
	w.WriteString("\n|---|" + strings.Repeat("---|", len(cps)) + "\n")
	for _, m := range t.Methods {
		gr := report.Group(curves, m)
		if len(gr) == 0 {
			continue
		}
		fmt.Fprintf(w, "| %s |", m)
		for _, c := range cps {
			if _, _, vals, ok := report.At(gr, c); ok {
				fmt.Fprintf(w, " %s (%s–%s) |", num(quantile(vals, 0.5)), num(quantile(vals, 0.25)), num(quantile(vals, 0.75)))
			} else {
				w.WriteString(" – |")
			}
		}
		w.WriteString("\n")
	}
	last := cps[len(cps)-1]
	writeClaims(w, t.Methods, valuesAt(curves, t.Methods, last), valuesAt(curves2, t.Methods, last), two, curves[0].Dir, "Best objective", last, seeds, seeds2)
	bands := report.Summarize(curves)
	band := func(l string) (report.Band, bool) {
		i := slices.IndexFunc(bands, func(b report.Band) bool { return b.Label == l })
		if i < 0 {
			return report.Band{}, false
		}
		return bands[i], true
	}
	if loc, ok := band("gradpie"); ok {
		var lines []string
		for _, m := range t.Methods {
			if m == "gradpie" {
				continue
			}
			if base, ok := band(m); ok {
				r := QueryReduction(base.Median, loc.Median, curves[0].Dir)
				lines = append(lines, fmt.Sprintf("- against %s (final median %s): %s\n", m, num(r.Value), r))
			}
		}
		if len(lines) > 0 {
			w.WriteString("\nQuery reduction ratio of GradPIE (median curves, initial design included, " + blockLabel(seeds) + "):\n\n" + strings.Join(lines, ""))
		}
	}
	png := t.Name + ".png"
	if err := writePNG(filepath.Join(out, png), func(f io.Writer) error {
		return report.PlotBestVsQueries(f, t.Title, bands, t.LogY)
	}); err != nil {
		return err
	}
	fmt.Fprintf(w, "\n![%s](%s)\n\n", t.Name, png)
	return nil
}

// lastQueries is the mean of the runs' final query counts.
func lastQueries(gr []report.Curve) int {
	var s, n int
	for _, c := range gr {
		if len(c.Iters) > 0 {
			s += c.Iters[len(c.Iters)-1].Queries
			n++
		}
	}
	if n == 0 {
		return 0
	}
	return s / n
}

func writeTrainTask(ctx context.Context, w *bytes.Buffer, g Grid, t Task, out string) error {
	fmt.Fprintf(w, "## %s\n\n", t.Title)
	curves, curves2, missing, missing2, seeds, seeds2 := blockCurves(ctx, g, t, out)
	setting(w, t, len(seeds), missing)
	secondBlock(w, seeds2, len(curves2), missing2)
	if len(curves) == 0 {
		w.WriteString("No trainings yet.\n\n")
		return nil
	}
	two := len(seeds2) > 0
	fmt.Fprintf(w, "| method | test acc. @ epoch 0 | test acc. @ %d (mean ± std) | median (25–75 %%) |", t.Iterations)
	if two {
		fmt.Fprintf(w, " @ %d ² (mean ± std) |", t.Iterations)
	}
	w.WriteString(" queries |\n|---|---|---|---|" + map[bool]string{true: "---|", false: ""}[two] + "---|\n")
	for _, m := range t.Methods {
		gr := report.Group(curves, m)
		if len(gr) == 0 {
			continue
		}
		fmt.Fprintf(w, "| %s |", m)
		if mean, sd, _, ok := report.At(gr, 0); ok {
			fmt.Fprintf(w, " %.3f ± %.3f |", mean, sd)
		} else {
			w.WriteString(" – |")
		}
		if mean, sd, vals, ok := report.At(gr, t.Iterations); ok {
			fmt.Fprintf(w, " %.3f ± %.3f | %.3f (%.3f–%.3f) |", mean, sd, quantile(vals, 0.5), quantile(vals, 0.25), quantile(vals, 0.75))
		} else {
			w.WriteString(" – | – |")
		}
		if two {
			if mean, sd, _, ok := report.At(report.Group(curves2, m), t.Iterations); ok {
				fmt.Fprintf(w, " %.3f ± %.3f |", mean, sd)
			} else {
				w.WriteString(" – |")
			}
		}
		fmt.Fprintf(w, " %d |\n", lastQueries(gr))
	}
	writeClaims(w, t.Methods, valuesAt(curves, t.Methods, t.Iterations), valuesAt(curves2, t.Methods, t.Iterations), two, journal.Maximize, "Test accuracy", t.Iterations, seeds, seeds2)
	png := t.Name + ".png"
	if err := writePNG(filepath.Join(out, png), func(f io.Writer) error {
		return report.PlotBands(f, t.Title, "test accuracy on the black box", report.SummarizeIterations(curves), false)
	}); err != nil {
		return err
	}
	fmt.Fprintf(w, "\n![%s](%s)\n\n", t.Name, png)
	return nil
}

// writePNG creates path and lets draw fill it.
func writePNG(path string, draw func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	err = draw(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func writeStudyTask(w *bytes.Buffer, t Task, out string) error {
	fmt.Fprintf(w, "## %s\n\n", t.Title)
	setting(w, t, 1, 0)
	data, err := os.ReadFile(filepath.Join(out, t.Name, studyDone))
	if err != nil {
		w.WriteString("No study yet.\n\n")
		return nil
	}
	rows, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
	if err != nil {
		return err
	}
	if len(rows) < 2 {
		return fmt.Errorf("%s: no rows", studyDone)
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	f := func(r []string, k string) float64 {
		v, _ := strconv.ParseFloat(r[col[k]], 64)
		return v
	}
	w.WriteString("| setting | model | rel. error (mean ± sd) | median | cosine (mean ± sd) |\n|---|---|---|---|---|\n")
	type best struct {
		maeErr, maeCos, err, cos float64
		k                        string
	}
	bests := map[string]*best{}
	var order []string
	for _, r := range rows[1:] {
		s := r[col["setting"]]
		if bests[s] == nil {
			bests[s] = &best{err: math.Inf(1)}
			order = append(order, s)
		}
		model := "MAE"
		if r[col["loss"]] != "mae" {
			model = "GradPIE k=" + r[col["k"]]
		}
		fmt.Fprintf(w, "| %s | %s | %.4f ± %.4f | %.4f | %.4f ± %.4f |\n", s, model, f(r, "rel_err_mean"), f(r, "rel_err_sd"), f(r, "rel_err_median"), f(r, "cos_mean"), f(r, "cos_sd"))
		bb := bests[s]
		if model == "MAE" {
			bb.maeErr, bb.maeCos = f(r, "rel_err_mean"), f(r, "cos_mean")
		} else if e := f(r, "rel_err_mean"); e < bb.err {
			bb.err, bb.cos, bb.k = e, f(r, "cos_mean"), r[col["k"]]
		}
	}
	w.WriteString("\nBest GradPIE k against MAE (paper: relative error more than −27 % and −20 %, cosine more than +10 % and +8 %, for its two dimensions):\n\n")
	for _, s := range order {
		bb := bests[s]
		if bb.maeErr == 0 || bb.k == "" {
			continue
		}
		fmt.Fprintf(w, "- %s, k = %s: relative error %+.1f %%, cosine %+.1f %%\n", s, bb.k, 100*(bb.err/bb.maeErr-1), 100*(bb.cos/bb.maeCos-1))
	}
	fmt.Fprintf(w, "\n![gradient study](%s/gradient.png)\n\n", t.Name)
	return nil
}
