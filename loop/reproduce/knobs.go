package reproduce

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/insitu-lab/insitu/loop/journal"
	"github.com/insitu-lab/insitu/loop/report"
)

// Verdict of one knob setting: GradPIE against MAE at the setting's last
// iteration.
type Verdict int

const (
	Unclear    Verdict = iota // p ≥ Alpha (or too few runs)
	LocBetter                 // GradPIE better, p < Alpha
	BaseBetter                // MAE better, p < Alpha
)

func (v Verdict) String() string {
	return [...]string{"no clear difference", "GradPIE better", "MAE better"}[v]
}

// Compare judges GradPIE's final values loc against MAE's base with
// Welch's t test: a difference when the two-sided p < Alpha. With the
// few seeds of a knob sweep this is a screen, not a claim (a claim needs
// the seeds rule: Claim), and the report says so.
func Compare(loc, base []float64, dir journal.Direction) (Verdict, Test) {
	r := Welch(loc, base)
	switch r.Favours(dir) {
	case 1:
		return LocBetter, r
	case -1:
		return BaseBetter, r
	}
	return Unclear, r
}

// meanVar is the mean and the unbiased variance (0 for one value).
func meanVar(v []float64) (mean, variance float64) {
	for _, x := range v {
		mean += x
	}
	mean /= float64(len(v))
	if len(v) < 2 {
		return mean, 0
	}
	for _, x := range v {
		variance += (x - mean) * (x - mean)
	}
	return mean, variance / float64(len(v)-1)
}

// pair returns the sweep's locality-aware and base methods.
func pair(methods []string) (loc, base string) {
	for _, m := range methods {
		switch {
		case strings.Contains(m, "gradpie") && loc == "":
			loc = m
		case strings.Contains(m, "mae") && base == "":
			base = m
		}
	}
	return loc, base
}

// sweepOutcome counts a sweep's verdicts for the closing section.
type sweepOutcome struct {
	Title  string
	Counts [3]int // by Verdict
	Rows   int    // settings with both methods measured
	Ahead  int    // settings where GradPIE's mean is the better one, called or not
}

func (o sweepOutcome) String() string {
	return fmt.Sprintf("GradPIE better than MAE in %d of %d settings, MAE better in %d, no clear difference in %d; "+
		"GradPIE's mean ahead in %d of %d.", o.Counts[LocBetter], o.Rows, o.Counts[BaseBetter], o.Counts[Unclear], o.Ahead, o.Rows)
}

// writeKnobTask writes a knob sweep: one row per setting with every
// method's final value and GradPIE against MAE, and a plot of the per-seed
// values.
func writeKnobTask(ctx context.Context, w *bytes.Buffer, g Grid, t Task, out string) (sweepOutcome, error) {
	o := sweepOutcome{Title: t.Title}
	fmt.Fprintf(w, "## %s\n\n", t.Title)
	if t.Why != "" {
		w.WriteString(t.Why + "\n\n")
	}
	fmt.Fprintf(w, "`%s`", t.Config)
	if len(t.Sets) > 0 {
		fmt.Fprintf(w, " with `--set %s`", strings.Join(t.Sets, " --set "))
	}
	unit, what := "iterations", "the best objective"
	if t.Kind == KindTrain {
		unit, what = "epochs", "the test accuracy on the black box"
	}
	fmt.Fprintf(w, "; %d seed(s) per method, %d %s unless the row says otherwise. "+
		"Each row changes one knob and gives "+what+" at the row's last %s, mean ± std over seeds. "+
		"Verdict: Welch's t test of GradPIE against MAE, a difference when the two-sided p < 0.05 — a screen with this few seeds, "+
		"not a claim (a claim needs the seeds rule: ≥ 10 seeds and a second block). "+
		"A row that reruns GradPIE only compares it with the default's MAE.\n\n", t.Seeds, t.Iterations, unit, strings.TrimSuffix(unit, "s"))
	loc, base := pair(t.Methods)
	w.WriteString("| setting | overrides |")
	for _, m := range t.Methods {
		fmt.Fprintf(w, " %s |", m)
	}
	w.WriteString(" GradPIE vs MAE | verdict (t) |\n|---|---|" + strings.Repeat("---|", len(t.Methods)) + "---|---|\n")

	type row struct {
		label string
		vals  map[string][]float64
	}
	var rows []row
	var def map[string][]float64 // the default setting's values
	var dir journal.Direction
	for _, v := range t.Variants {
		cs := g.VariantCells(t, v)
		curves, missing := loadCells(ctx, cs, out)
		iters := t.Iterations
		if v.Iterations > 0 {
			iters = v.Iterations
		}
		r := row{label: v.Name, vals: map[string][]float64{}}
		if r.label == "" {
			r.label = "default"
		}
		if len(curves) > 0 {
			dir = curves[0].Dir
		}
		methods := t.Methods
		if v.Methods != nil {
			methods = v.Methods
		}
		label := v.Label
		if v.Iterations > 0 {
			label += fmt.Sprintf(" (%d %s)", v.Iterations, unit)
		}
		if missing > 0 {
			label += fmt.Sprintf(" **(%d cells not finished)**", missing)
		}
		sets := "–"
		if len(v.Sets) > 0 {
			sets = "`" + strings.Join(v.Sets, "` `") + "`"
		}
		fmt.Fprintf(w, "| %s | %s |", label, sets)
		for _, m := range t.Methods {
			if !slices.Contains(methods, m) {
				w.WriteString(" (default) |")
				if def != nil {
					r.vals[m] = def[m]
				}
				continue
			}
			_, _, vals, ok := report.At(report.Group(curves, m), iters)
			if !ok {
				w.WriteString(" – |")
				continue
			}
			r.vals[m] = vals
			mean, variance := meanVar(vals)
			fmt.Fprintf(w, " %s ± %s |", num(mean), num(math.Sqrt(variance)))
		}
		if v.Name == "" {
			def = r.vals
		}
		if lv, bv := r.vals[loc], r.vals[base]; len(lv) > 0 && len(bv) > 0 {
			verdict, tt := Compare(lv, bv, dir)
			change := tt.Change
			fmt.Fprintf(w, " %+.1f %% | %s (%s) |\n", 100*change, verdict, tt)
			o.Counts[verdict]++
			o.Rows++
			if (dir == journal.Maximize) == (change > 0) && change != 0 {
				o.Ahead++
			}
		} else {
			w.WriteString(" – | – |\n")
		}
		rows = append(rows, r)
	}
	fmt.Fprintf(w, "\n%s\n\n", o)

	// The plot: every seed's final value per setting, GradPIE and MAE side by side.
	// Nothing measured yet: no plot (an empty axis cannot be drawn on a
	// log scale). A value ≤ 0 cannot be drawn on one either.
	plotted, positive := false, true
	for _, r := range rows {
		for _, m := range []string{loc, base} {
			for _, v := range r.vals[m] {
				plotted = true
				positive = positive && v > 0
			}
		}
	}
	if !plotted {
		return o, nil
	}
	p := plot.New()
	p.Title.Text = t.Title
	p.Y.Label.Text = strings.TrimPrefix(what, "the ") + " at the last " + strings.TrimSuffix(unit, "s")
	if t.LogY && positive {
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = report.LogTicks{}
	} else {
		// The default labels round to a few digits: close values (1.30,
		// 1.31, 1.32) would all read 1.3.
		p.Y.Tick.Marker = plot.TickerFunc(func(lo, hi float64) []plot.Tick {
			ts := plot.DefaultTicks{}.Ticks(lo, hi)
			for i := range ts {
				if ts[i].Label != "" {
					ts[i].Label = strconv.FormatFloat(ts[i].Value, 'g', 5, 64)
				}
			}
			return ts
		})
	}
	names := make([]string, len(rows))
	for i, r := range rows {
		names[i] = r.label
	}
	p.NominalX(names...)
	p.X.Min, p.X.Max = -0.5, float64(len(names))-0.5
	p.X.Tick.Label.Rotation = math.Pi / 6
	p.X.Tick.Label.XAlign, p.X.Tick.Label.YAlign = draw.XRight, draw.YCenter
	for k, m := range []string{loc, base} {
		if m == "" {
			continue
		}
		var seeds, means plotter.XYs
		for i, r := range rows {
			vals := r.vals[m]
			if len(vals) == 0 {
				continue
			}
			x := float64(i) + 0.15*float64(2*k-1)
			for _, y := range vals {
				seeds = append(seeds, plotter.XY{X: x, Y: y})
			}
			mean, _ := meanVar(vals)
			means = append(means, plotter.XY{X: x, Y: mean})
		}
		if len(seeds) == 0 {
			continue
		}
		col := plotutil.Color(k)
		sc, err := plotter.NewScatter(seeds)
		if err != nil {
			return o, err
		}
		sc.GlyphStyle.Color, sc.GlyphStyle.Shape, sc.GlyphStyle.Radius = col, draw.CircleGlyph{}, vg.Points(2.5)
		mc, err := plotter.NewScatter(means)
		if err != nil {
			return o, err
		}
		mc.GlyphStyle.Color, mc.GlyphStyle.Shape, mc.GlyphStyle.Radius = col, draw.BoxGlyph{}, vg.Points(4)
		p.Add(sc, mc)
		p.Legend.Add(m+" (seeds)", sc)
		p.Legend.Add(m+" (mean)", mc)
	}
	p.Legend.Top, p.Legend.Left = true, true // the first settings are the defaults: low values
	p.Add(plotter.NewGrid())
	if t.LogY && positive {
		report.DecadeRange(p)
	}
	png := t.Name + ".png"
	if err := writePNG(filepath.Join(out, png), func(f io.Writer) error {
		wt, err := p.WriterTo(9*vg.Inch, 5*vg.Inch, "png")
		if err != nil {
			return err
		}
		_, err = wt.WriteTo(f)
		return err
	}); err != nil {
		return o, err
	}
	fmt.Fprintf(w, "![%s](%s)\n\n", t.Name, png)
	return o, nil
}

// writeTried closes the report: what was tuned (nothing) and what the knob
// sweeps found.
func writeTried(w *bytes.Buffer, sweeps []sweepOutcome) {
	w.WriteString("## What we tried / honest knobs\n\n" +
		"Nothing in the task tables was tuned: each runs its committed config with the overrides printed under its title. " +
		"Where our ordering disagreed with the paper's, the knob sweeps above change one obvious knob at a time " +
		"(k, σ, E, the learning rates, the twin's horizon or size, training length) and list every setting tried, " +
		"whatever it gave:\n\n")
	if len(sweeps) == 0 {
		w.WriteString("- no sweep in this grid.\n")
	}
	for _, s := range sweeps {
		fmt.Fprintf(w, "- %s: %s\n", s.Title, s)
	}
	w.WriteString("\nMeasured outside this grid, with their own commands: the gradient study at 100 epochs " +
		"(`make study`, docs/results/gradient-study.md), CNON at N = 20 with every method and 5 seeds " +
		"(`make compare`, docs/results/cnon-methods.md), PNN training with 5 seeds × 10 epochs " +
		"(`scripts/compare-pnn.sh`, docs/results/pnn-training.md).\n")
}
