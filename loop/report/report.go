// Package report turns run journals into what people look at: curves of the
// best objective against queries, one per method, with the median and the
// 25–75 % band when several seeds ran, and tables at chosen iterations.
package report

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"image/color"
	"io"
	"math"
	"slices"
	"sort"

	"gonum.org/v1/gonum/stat"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/insitu-lab/insitu/loop/export"
	"github.com/insitu-lab/insitu/loop/journal"
)

// Curve is one run: the best objective after each measured query.
type Curve struct {
	Label   string    // legend group, e.g. the method
	Best    []float64 // Best[i]: best objective among the first i+1 measured queries
	Iters   []journal.Iteration
	Dir     journal.Direction
	Problem export.Problem // what the run optimizes: curves of different problems are never averaged
	Path    string         // the run directory
	Seed    uint64         // the run's seed
}

// Load reads a run directory's journal into a curve labelled with its
// method.
func Load(ctx context.Context, dir string) (Curve, error) {
	j, err := journal.OpenReadOnly(dir)
	if err != nil {
		return Curve{}, err
	}
	defer j.Close()
	meta, err := j.Meta(ctx)
	if err != nil {
		return Curve{}, err
	}
	qs, err := j.Queries(ctx)
	if err != nil {
		return Curve{}, err
	}
	its, err := j.Iterations(ctx)
	if err != nil {
		return Curve{}, err
	}
	config, err := j.Config(ctx)
	if err != nil {
		return Curve{}, err
	}
	c := Curve{Label: meta.Method, Iters: its, Dir: meta.Direction, Problem: export.ProblemOf(dir, meta, config), Path: dir, Seed: meta.Seed}
	best := math.NaN()
	for _, q := range qs {
		if q.Status != journal.StatusDone && q.Status != journal.StatusRemeasured || math.IsNaN(q.Objective) {
			continue
		}
		if math.IsNaN(best) || (c.Dir == journal.Maximize && q.Objective > best) || (c.Dir != journal.Maximize && q.Objective < best) {
			best = q.Objective
		}
		c.Best = append(c.Best, best)
	}
	return c, nil
}

// Band is a group of curves summarized per query count.
type Band struct {
	Label                  string
	Runs                   int
	Queries                []float64
	Median, Q25, Q75, Mean []float64
}

// Summarize groups curves by label (in order of first appearance) and
// summarizes each group up to its shortest curve's length, so that every
// point of a band is over all of its runs.
func Summarize(curves []Curve) []Band {
	return summarize(curves, func(c Curve) int { return len(c.Best) },
		func(_ []Curve, i int) float64 { return float64(i + 1) },
		func(c Curve, i int) float64 { return c.Best[i] })
}

// SummarizeIterations is Summarize over the iteration records instead of
// the queries: one point per iteration (an epoch of a training, whose Best
// is the test accuracy), at the runs' mean query count.
func SummarizeIterations(curves []Curve) []Band {
	return summarize(curves, func(c Curve) int { return len(c.Iters) },
		func(g []Curve, i int) float64 {
			var q float64
			for _, c := range g {
				q += float64(c.Iters[i].Queries)
			}
			return q / float64(len(g))
		},
		func(c Curve, i int) float64 { return c.Iters[i].Best })
}

func summarize(curves []Curve, length func(Curve) int, x func([]Curve, int) float64, y func(Curve, int) float64) []Band {
	var labels []string
	groups := map[string][]Curve{}
	for _, c := range curves {
		if _, ok := groups[c.Label]; !ok {
			labels = append(labels, c.Label)
		}
		groups[c.Label] = append(groups[c.Label], c)
	}
	var bands []Band
	for _, l := range labels {
		g := groups[l]
		n := length(g[0])
		for _, c := range g {
			n = min(n, length(c))
		}
		b := Band{Label: l, Runs: len(g)}
		col := make([]float64, len(g))
		for i := range n {
			for k, c := range g {
				col[k] = y(c, i)
			}
			sort.Float64s(col)
			b.Queries = append(b.Queries, x(g, i))
			b.Median = append(b.Median, quantile(col, 0.5))
			b.Q25 = append(b.Q25, quantile(col, 0.25))
			b.Q75 = append(b.Q75, quantile(col, 0.75))
			b.Mean = append(b.Mean, stat.Mean(col, nil))
		}
		bands = append(bands, b)
	}
	return bands
}

// Quantile is the p-quantile of values (in any order) by linear
// interpolation between order statistics, as numpy computes it by default
// (see quantile).
func Quantile(values []float64, p float64) float64 {
	s := slices.Clone(values)
	slices.Sort(s)
	return quantile(s, p)
}

// quantile of sorted values by linear interpolation between order
// statistics at h = (n−1)p (Hyndman–Fan type 7, numpy's default), so that
// the median of an odd count is its middle value, as users expect.
// gonum's stat.LinInterp interpolates the empirical CDF instead.
func quantile(sorted []float64, p float64) float64 {
	h := float64(len(sorted)-1) * p
	lo := int(math.Floor(h))
	hi := min(lo+1, len(sorted)-1)
	return sorted[lo] + (h-float64(lo))*(sorted[hi]-sorted[lo])
}

// palette is matplotlib's tab10: ten colours a reader tells apart.
var palette = []color.Color{
	color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
	color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
	color.RGBA{R: 0x94, G: 0x67, B: 0xbd, A: 0xff},
	color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff},
	color.RGBA{R: 0x8c, G: 0x56, B: 0x4b, A: 0xff},
	color.RGBA{R: 0x7f, G: 0x7f, B: 0x7f, A: 0xff},
	color.RGBA{R: 0x17, G: 0xbe, B: 0xcf, A: 0xff},
	color.RGBA{R: 0xe3, G: 0x77, B: 0xc2, A: 0xff},
	color.RGBA{R: 0xbc, G: 0xbd, B: 0x22, A: 0xff},
}

// PlotBestVsQueries draws the bands: the median line, and when a group has
// several runs its mean (dashed) and a shaded 25–75 % band.
func PlotBestVsQueries(w io.Writer, title string, bands []Band, logY bool) error {
	return PlotBands(w, title, "best objective so far", bands, logY)
}

// PlotBands is PlotBestVsQueries with another quantity on the y axis.
func PlotBands(w io.Writer, title, yLabel string, bands []Band, logY bool) error {
	return PlotPanels(w, []Panel{{Title: title, YLabel: yLabel, Bands: bands, LogY: logY}})
}

// Panel is one plot of a figure: bands against queries.
type Panel struct {
	Title, YLabel string
	Bands         []Band
	// LogY asks for a logarithmic y axis; a panel whose values are not all
	// positive gets a linear one, and its title says so.
	LogY bool
	// YMin and YMax fix the y axis when YMax > YMin (an accuracy's [0, 1]).
	YMin, YMax float64
}

// PlotPanels draws the panels one above the other in one PNG, each with
// its own axes: the figure of several problems, which share no y axis.
func PlotPanels(w io.Writer, panels []Panel) error {
	if len(panels) == 0 {
		return errors.New("report: nothing to plot")
	}
	plots := make([][]*plot.Plot, len(panels))
	for i, pn := range panels {
		p, err := bandsPlot(pn)
		if err != nil {
			return err
		}
		plots[i] = []*plot.Plot{p}
	}
	if len(plots) == 1 {
		wt, err := plots[0][0].WriterTo(9*vg.Inch, 5.5*vg.Inch, "png")
		if err != nil {
			return err
		}
		_, err = wt.WriteTo(w)
		return err
	}
	img := vgimg.New(9*vg.Inch, vg.Length(len(plots))*4.5*vg.Inch)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: len(plots), Cols: 1, PadY: vg.Millimeter * 6, PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2,
		PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 2}
	canvases := plot.Align(plots, tiles, dc)
	for i := range plots {
		plots[i][0].Draw(canvases[i][0])
	}
	_, err := vgimg.PngCanvas{Canvas: img}.WriteTo(w)
	return err
}

// positive reports whether every value of the bands is > 0 and finite,
// and there is at least one: what a log axis can show.
func positive(bands []Band) bool {
	n := 0
	for _, b := range bands {
		for _, vs := range [][]float64{b.Median, b.Q25, b.Q75, b.Mean} {
			for _, v := range vs {
				if !(v > 0) || math.IsInf(v, 0) {
					return false
				}
				n++
			}
		}
	}
	return n > 0
}

func bandsPlot(pn Panel) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = pn.Title
	p.X.Label.Text = "queries to the black box"
	p.Y.Label.Text = pn.YLabel
	logY := pn.LogY
	if logY && !positive(pn.Bands) {
		logY = false
		p.Title.Text += " (linear axis: not every value is > 0)"
	}
	if logY {
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = LogTicks{}
	}
	bands := pn.Bands
	// The legend goes where the curves are not: top right for a minimized
	// objective, whose curves fall, bottom right for a maximized one.
	p.Legend.Top = true
	for _, b := range bands {
		if n := len(b.Median); n > 1 && b.Median[n-1] > b.Median[0] {
			p.Legend.Top = false
		}
	}
	for i, b := range bands {
		if len(b.Queries) == 0 {
			continue
		}
		col := palette[i%len(palette)]
		if b.Runs > 1 {
			poly := make(plotter.XYs, 0, 2*len(b.Queries))
			for k := range b.Queries {
				poly = append(poly, plotter.XY{X: b.Queries[k], Y: b.Q75[k]})
			}
			for k := len(b.Queries) - 1; k >= 0; k-- {
				poly = append(poly, plotter.XY{X: b.Queries[k], Y: b.Q25[k]})
			}
			area, err := plotter.NewPolygon(poly)
			if err != nil {
				return nil, err
			}
			r, g, bl, _ := col.RGBA()
			area.Color = color.NRGBA{R: uint8(r >> 8), G: uint8(g >> 8), B: uint8(bl >> 8), A: 0x40}
			area.LineStyle.Width = 0
			p.Add(area)
		}
		pts := make(plotter.XYs, len(b.Queries))
		for k := range pts {
			pts[k] = plotter.XY{X: b.Queries[k], Y: b.Median[k]}
		}
		line, err := plotter.NewLine(pts)
		if err != nil {
			return nil, err
		}
		line.Color, line.Width = col, vg.Points(1.5)
		p.Add(line)
		label := b.Label
		if b.Runs > 1 {
			mpts := make(plotter.XYs, len(b.Queries))
			for k := range mpts {
				mpts[k] = plotter.XY{X: b.Queries[k], Y: b.Mean[k]}
			}
			mean, err := plotter.NewLine(mpts)
			if err != nil {
				return nil, err
			}
			mean.Color, mean.Width = col, vg.Points(1)
			mean.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
			p.Add(mean)
			label = fmt.Sprintf("%s (median, mean dashed, 25–75 %%, %d runs)", b.Label, b.Runs)
		}
		p.Legend.Add(label, line)
	}
	p.Add(plotter.NewGrid())
	if logY {
		DecadeRange(p)
	}
	if pn.YMax > pn.YMin {
		p.Y.Min, p.Y.Max = pn.YMin, pn.YMax
	}
	return p, nil
}

// At returns, for each curve of the group, the best objective after the
// queries of iteration it (from the journal's iteration records), and
// their mean and standard deviation. ok is false when some run did not
// reach that iteration.
func At(curves []Curve, it int) (mean, sd float64, vals []float64, ok bool) {
	for _, c := range curves {
		i := slices.IndexFunc(c.Iters, func(r journal.Iteration) bool { return r.Iteration == it })
		if i < 0 {
			return 0, 0, nil, false
		}
		vals = append(vals, c.Iters[i].Best)
	}
	if len(vals) == 0 {
		return 0, 0, nil, false
	}
	mean, sd = stat.MeanStdDev(vals, nil)
	if len(vals) == 1 {
		sd = 0
	}
	return mean, sd, vals, true
}

// ControllerPerIteration is the mean controller time per iteration in
// seconds over the curves' iterations ≥ 1.
func ControllerPerIteration(curves []Curve) float64 {
	var s float64
	var n int
	for _, c := range curves {
		for _, r := range c.Iters {
			if r.Iteration >= 1 {
				s += r.Controller.Seconds()
				n++
			}
		}
	}
	if n == 0 {
		return math.NaN()
	}
	return s / float64(n)
}

// byLabel groups curves by label, labels sorted.
func byLabel(curves []Curve) map[string][]Curve {
	m := map[string][]Curve{}
	for _, c := range curves {
		m[c.Label] = append(m[c.Label], c)
	}
	return m
}

// Labels returns the distinct labels in sorted order.
func Labels(curves []Curve) []string {
	m := byLabel(curves)
	ls := make([]string, 0, len(m))
	for l := range m {
		ls = append(ls, l)
	}
	slices.SortFunc(ls, cmp.Compare)
	return ls
}

// Group returns the curves with label l.
func Group(curves []Curve, l string) []Curve { return byLabel(curves)[l] }

// Problems groups curves by problem, in order of first appearance.
func Problems(curves []Curve) []export.Problem {
	var ps []export.Problem
	for _, c := range curves {
		if !slices.Contains(ps, c.Problem) {
			ps = append(ps, c.Problem)
		}
	}
	return ps
}

// OfProblem returns the curves of problem p.
func OfProblem(curves []Curve, p export.Problem) []Curve {
	var out []Curve
	for _, c := range curves {
		if c.Problem == p {
			out = append(out, c)
		}
	}
	return out
}
