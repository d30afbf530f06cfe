package study

import (
	"encoding/csv"
	"fmt"
	"image/color"
	"io"
	"strconv"
	"text/tabwriter"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// WriteTable writes the study as an aligned text table, and for each setting
// the change of the best k against the base model.
func (r *Result) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "setting\tdim\tpoints\tscaling\tmodel\trel. error\t± sd\tmedian\tcosine\t± sd\ttrain loss\ttrain s\t")
	for _, row := range r.Rows {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%.4f\t%.4f\t%.4f\t%.4f\t%.4f\t%.4g\t%.1f\t\n",
			row.Setting, row.Dim, row.Points, row.Scaling, row.Label(), row.RelErr, row.RelErrSD, row.RelErrMed, row.Cos, row.CosSD, row.TrainLoss, row.Seconds)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, g := range r.Groups() {
		base, best, ok := r.Best(g)
		if !ok {
			continue
		}
		fmt.Fprintf(w, "%s %s: best GradPIE (k=%d) vs MAE: relative error %.4f → %.4f (%+.1f %%), cosine %.4f → %.4f (%+.1f %%)\n",
			g.Setting, g.Scaling, best.K, base.RelErr, best.RelErr, 100*(best.RelErr/base.RelErr-1), base.Cos, best.Cos, 100*(best.Cos/base.Cos-1))
	}
	return nil
}

// WriteCSV writes one line per model with full precision.
func (r *Result) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"setting", "dim", "points", "input_scaling", "output_scaling", "loss", "k", "rel_err_mean", "rel_err_sd", "rel_err_median", "cos_mean", "cos_sd", "train_loss", "train_seconds", "precision"})
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	for _, row := range r.Rows {
		cw.Write([]string{row.Setting, strconv.Itoa(row.Dim), strconv.Itoa(row.Points),
			string(row.Scaling.Input), string(row.Scaling.Output), string(row.Loss), strconv.Itoa(row.K),
			f(row.RelErr), f(row.RelErrSD), f(row.RelErrMed), f(row.Cos), f(row.CosSD), f(row.TrainLoss), f(row.Seconds),
			string(r.Config.Precision.OrDefault())})
	}
	cw.Flush()
	return cw.Error()
}

// palette gives each setting its own colour, the same in both panels.
var palette = []color.Color{
	color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
	color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
	color.RGBA{R: 0x94, G: 0x67, B: 0xbd, A: 0xff},
	color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff},
}

// WritePNG draws two panels side by side — relative error and cosine
// similarity against k — with one line per group (setting and scaling
// pair) for GradPIE and a dashed horizontal line at that group's MAE value.
func (r *Result) WritePNG(w io.Writer) error {
	panels := []struct {
		title, ylabel string
		value         func(Row) float64
	}{
		{"VJP relative error (lower is better)", "‖ĝ − g‖ / ‖g‖", func(r Row) float64 { return r.RelErr }},
		{"VJP cosine similarity (higher is better)", "cos(ĝ, g)", func(r Row) float64 { return r.Cos }},
	}
	plots := make([][]*plot.Plot, 1)
	for _, panel := range panels {
		p := plot.New()
		p.Title.Text = panel.title
		p.X.Label.Text = "k (nearest neighbours in the GradPIE loss)"
		p.Y.Label.Text = panel.ylabel
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = kTicks(r.Config.Ks)
		p.Legend.Top = true
		kmin, kmax := float64(r.Config.Ks[0]), float64(r.Config.Ks[0])
		for _, k := range r.Config.Ks {
			kmin, kmax = min(kmin, float64(k)), max(kmax, float64(k))
		}
		for gi, g := range r.Groups() {
			col := palette[gi%len(palette)]
			s := r.groupName(g)
			rows := r.gradpieRows(g)
			pts := make(plotter.XYs, len(rows))
			for i, row := range rows {
				pts[i] = plotter.XY{X: float64(row.K), Y: panel.value(row)}
			}
			line, scatter, err := plotter.NewLinePoints(pts)
			if err != nil {
				return err
			}
			line.Color, scatter.Color = col, col
			line.Width = vg.Points(1.5)
			p.Add(line, scatter)
			p.Legend.Add(s+" GradPIE-kNN", line, scatter)
			if base, _, ok := r.Best(g); ok {
				y := panel.value(base)
				mae, err := plotter.NewLine(plotter.XYs{{X: kmin, Y: y}, {X: kmax, Y: y}})
				if err != nil {
					return err
				}
				mae.Color = col
				mae.Dashes = []vg.Length{vg.Points(6), vg.Points(4)}
				p.Add(mae)
				p.Legend.Add(s+" MAE (base)", mae)
			}
		}
		p.Add(plotter.NewGrid())
		// Headroom above the data keeps the legend off the curves.
		p.Y.Max += 0.45 * (p.Y.Max - p.Y.Min)
		plots[0] = append(plots[0], p)
	}
	const width, height = 13 * vg.Inch, 5 * vg.Inch
	img := vgimg.New(width, height)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 1, Cols: len(plots[0]), PadX: vg.Millimeter * 4, PadY: vg.Millimeter * 2,
		PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 2}
	canvases := plot.Align(plots, tiles, dc)
	for i, p := range plots[0] {
		p.Draw(canvases[0][i])
	}
	_, err := vgimg.PngCanvas{Canvas: img}.WriteTo(w)
	return err
}

// kTicks labels exactly the k values of the study.
func kTicks(ks []int) plot.Ticker {
	ticks := make(plot.ConstantTicks, len(ks))
	for i, k := range ks {
		ticks[i] = plot.Tick{Value: float64(k), Label: strconv.Itoa(k)}
	}
	return ticks
}
