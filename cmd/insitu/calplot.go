package main

import (
	"fmt"
	"image/color"
	"math"
	"os"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/palette/moreland"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/insitu-lab/insitu/instruments/cameraslm"
)

var (
	calBlue = color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}
	calRed  = color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}
	calGray = color.RGBA{R: 0x60, G: 0x60, B: 0x60, A: 0xff}
)

// imageGrid is a row-major image as a plotter.GridXYZ drawn the way images
// are, row 0 at the top: the plot's y is minus the row, so the axes read
// in pixels with negTicks. (x0, y0) is the position of pixel (0, 0).
type imageGrid struct {
	w, h   int
	x0, y0 float64
	v      []float64
}

func (g imageGrid) Dims() (c, r int)   { return g.w, g.h }
func (g imageGrid) Z(c, r int) float64 { return g.v[(g.h-1-r)*g.w+c] }
func (g imageGrid) X(c int) float64    { return g.x0 + float64(c) }
func (g imageGrid) Y(r int) float64    { return -(g.y0 + float64(g.h-1-r)) }

// writePanels draws plots side by side into a PNG.
func writePanels(path string, width, height vg.Length, plots ...*plot.Plot) error {
	img := vgimg.New(width, height)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 1, Cols: len(plots), PadX: vg.Millimeter * 6, PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2,
		PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 2}
	rows := [][]*plot.Plot{plots}
	canvases := plot.Align(rows, tiles, dc)
	for i, p := range plots {
		p.Draw(canvases[0][i])
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// plotFourier draws the Fourier calibration: on the camera window (the
// brightest of all its images), each spot measured (circle) and where the
// map puts it (cross); and the residuals.
func plotFourier(path string, res *cameraslm.FourierResult, plan *calPlan) error {
	if len(res.Frames) == 0 {
		return nil
	}
	im := res.Frames[0].Image
	top := make([]float64, len(im.Pix))
	for _, f := range res.Frames {
		for i, v := range f.Pix {
			top[i] = max(top[i], v)
		}
	}
	a := plot.New()
	a.Title.Text = fmt.Sprintf("Fourier calibration: %d spots, residual RMS %.3f px", len(res.Points), res.RMS)
	a.X.Label.Text, a.Y.Label.Text = "camera x (px)", "camera y (px), down"
	hm := plotter.NewHeatMap(imageGrid{w: im.W, h: im.H, x0: float64(im.X0), y0: float64(im.Y0), v: top}, moreland.ExtendedBlackBody().Palette(64))
	hm.Rasterized = true
	a.Add(hm)
	meas, fit := make(plotter.XYs, len(res.Points)), make(plotter.XYs, len(res.Points))
	for i, p := range res.Points {
		meas[i] = plotter.XY{X: p.X, Y: -p.Y}
		fit[i] = plotter.XY{X: p.FitX, Y: -p.FitY}
	}
	ms, err := plotter.NewScatter(meas)
	if err != nil {
		return err
	}
	ms.GlyphStyle = draw.GlyphStyle{Color: color.RGBA{G: 0xc0, B: 0xff, A: 0xff}, Radius: vg.Points(5), Shape: draw.RingGlyph{}}
	fs, err := plotter.NewScatter(fit)
	if err != nil {
		return err
	}
	fs.GlyphStyle = draw.GlyphStyle{Color: calBlue, Radius: vg.Points(4), Shape: draw.CrossGlyph{}}
	a.Add(ms, fs)
	a.Legend.Add("spot measured", ms)
	a.Legend.Add("map", fs)
	a.Y.Tick.Marker = negTicks{}
	a.X.Min, a.X.Max = float64(im.X0)-0.5, float64(im.X0+im.W)-0.5
	a.Y.Min, a.Y.Max = -float64(im.Y0+im.H)+0.5, -float64(im.Y0)+0.5
	a.Legend.Top = true
	a.Legend.TextStyle.Color = color.White

	b := plot.New()
	g := res.Geometry
	b.Title.Text = fmt.Sprintf("residuals (map − measured); scale %.4g px/(cycle/px), rotation %.2f°", g.Scale, g.Rotation)
	b.X.Label.Text, b.Y.Label.Text = "Δx (px)", "Δy (px)"
	rs := make(plotter.XYs, len(res.Points))
	lim := 0.3
	for i, p := range res.Points {
		rs[i] = plotter.XY{X: p.FitX - p.X, Y: p.FitY - p.Y}
		lim = max(lim, math.Abs(rs[i].X), math.Abs(rs[i].Y))
	}
	sc, err := plotter.NewScatter(rs)
	if err != nil {
		return err
	}
	sc.GlyphStyle = draw.GlyphStyle{Color: calRed, Radius: vg.Points(3), Shape: draw.CircleGlyph{}}
	b.Add(sc, plotter.NewGrid())
	ring := make(plotter.XYs, 65)
	for i := range ring {
		s, c := math.Sincos(2 * math.Pi * float64(i) / 64)
		ring[i] = plotter.XY{X: 0.3 * c, Y: 0.3 * s}
	}
	rl, err := plotter.NewLine(ring)
	if err != nil {
		return err
	}
	rl.Color, rl.Dashes = calGray, []vg.Length{vg.Points(3), vg.Points(3)}
	b.Add(rl)
	b.Legend.Add("0.3 px", rl)
	lim *= 1.2
	b.X.Min, b.X.Max, b.Y.Min, b.Y.Max = -lim, lim, -lim, lim
	return writePanels(path, 13*vg.Inch, 6*vg.Inch, a, b)
}

// negTicks labels a y axis drawn upside down (image rows down) with the
// row numbers.
type negTicks struct{}

func (negTicks) Ticks(min, max float64) []plot.Tick {
	ts := plot.DefaultTicks{}.Ticks(min, max)
	for i := range ts {
		if ts[i].Label != "" {
			ts[i].Label = fmt.Sprintf("%g", -ts[i].Value+0) // +0: no "-0"
		}
	}
	return ts
}

// plotSettle draws each step's samples, the fitted responses and their 5
// % and 1 % times.
func plotSettle(path string, res *cameraslm.SettleResult) error {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("settle: τ rise %v, fall %v; recommended settle %v", res.Rise.Tau.Round(10*time.Microsecond), res.Fall.Tau.Round(10*time.Microsecond), res.Settle)
	p.X.Label.Text = "delay after the frame was shown (ms)"
	p.Y.Label.Text = "fraction of the step done"
	tmax := 0.0
	for _, s := range res.Samples {
		tmax = max(tmax, s.Delay.Seconds()*1e3)
	}
	for _, d := range []struct {
		name string
		r    cameraslm.Response
		col  color.Color
	}{{"rise", res.Rise, calBlue}, {"fall", res.Fall, calRed}} {
		var pts plotter.XYs
		for _, s := range res.Samples {
			if s.Step == d.name {
				pts = append(pts, plotter.XY{X: s.Delay.Seconds() * 1e3, Y: s.Done})
			}
		}
		sc, err := plotter.NewScatter(pts)
		if err != nil {
			return err
		}
		sc.GlyphStyle = draw.GlyphStyle{Color: d.col, Radius: vg.Points(3), Shape: draw.CircleGlyph{}}
		curve := make(plotter.XYs, 200)
		t0, tau := d.r.DeadTime.Seconds()*1e3, d.r.Tau.Seconds()*1e3
		for i := range curve {
			t := tmax * float64(i) / 199
			v := 0.0
			if t > t0 && tau > 0 {
				v = 1 - math.Exp(-(t-t0)/tau)
			}
			curve[i] = plotter.XY{X: t, Y: v}
		}
		l, err := plotter.NewLine(curve)
		if err != nil {
			return err
		}
		l.Color, l.Width = d.col, vg.Points(1.2)
		p.Add(sc, l)
		p.Legend.Add(fmt.Sprintf("%s: τ %v, 5 %% at %v, 1 %% at %v", d.name, d.r.Tau.Round(10*time.Microsecond), d.r.Within5.Round(10*time.Microsecond), d.r.Within1.Round(10*time.Microsecond)), sc, l)
	}
	for _, lv := range []float64{0.95, 0.99} {
		l, err := plotter.NewLine(plotter.XYs{{X: 0, Y: lv}, {X: tmax, Y: lv}})
		if err != nil {
			return err
		}
		l.Color, l.Dashes = calGray, []vg.Length{vg.Points(3), vg.Points(3)}
		p.Add(l)
	}
	p.Legend.Top = false
	p.Add(plotter.NewGrid())
	return writePanels(path, 9*vg.Inch, 5.5*vg.Inch, p)
}

// plotWavefront draws the superpixels' phases and their modulation.
func plotWavefront(path string, res *cameraslm.WavefrontResult) error {
	n := res.Side
	ph := plot.New()
	ph.Title.Text = fmt.Sprintf("correction per superpixel (rad), %d×%d controls each", res.Superpixel, res.Superpixel)
	ph.X.Label.Text, ph.Y.Label.Text = "superpixel column", "superpixel row, down"
	phm := plotter.NewHeatMap(imageGrid{w: n, h: n, v: res.Phase}, moreland.SmoothBlueRed().Palette(64))
	phm.Rasterized = true
	ph.Add(phm)
	ph.Y.Tick.Marker = negTicks{}
	mo := plot.New()
	mo.Title.Text = "interference modulation (relative)"
	mo.X.Label.Text, mo.Y.Label.Text = "superpixel column", "superpixel row, down"
	mhm := plotter.NewHeatMap(imageGrid{w: n, h: n, v: res.Modulation}, moreland.ExtendedBlackBody().Palette(64))
	mhm.Rasterized = true
	mo.Add(mhm)
	mo.Y.Tick.Marker = negTicks{}
	return writePanels(path, 12*vg.Inch, 5.5*vg.Inch, ph, mo)
}
