package report

import (
	"bytes"
	"testing"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// Every value equal and below 1 on a log axis: gonum alone panics
// ("Values must be greater than 0 for a log scale").
func TestLogAxisOfEqualValuesBelowOne(t *testing.T) {
	for _, v := range []float64{0.5, 1, 3e-7, 20} {
		p := plot.New()
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
		s, err := plotter.NewScatter(plotter.XYs{{X: 0, Y: v}, {X: 1, Y: v}})
		if err != nil {
			t.Fatal(err)
		}
		p.Add(s)
		DecadeRange(p)
		if !(p.Y.Min > 0 && p.Y.Min <= v && v <= p.Y.Max && p.Y.Max > p.Y.Min) {
			t.Errorf("value %v: axis [%v, %v]", v, p.Y.Min, p.Y.Max)
		}
		wt, err := p.WriterTo(4*vg.Inch, 3*vg.Inch, "png")
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		if _, err := wt.WriteTo(&b); err != nil || b.Len() == 0 {
			t.Errorf("value %v: %v", v, err)
		}
	}
	// The curves' plot too, on one flat band below 1.
	var b bytes.Buffer
	band := Band{Label: "gradpie", Runs: 1, Queries: []float64{1, 2, 3}, Median: []float64{0.5, 0.5, 0.5}}
	if err := PlotBestVsQueries(&b, "flat", []Band{band}, true); err != nil {
		t.Fatal(err)
	}
}
