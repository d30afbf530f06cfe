package report

import (
	"math"
	"strconv"

	"gonum.org/v1/plot"
)

// LogTicks are gonum's log ticks labelled in the shortest form that
// tells them apart: 1e-05 rather than 9.999999999999999e-06, which is
// what plot.LogTicks prints for decades that are not exact in binary.
type LogTicks struct{}

// Ticks implements plot.Ticker.
func (LogTicks) Ticks(lo, hi float64) []plot.Tick {
	ts := plot.LogTicks{Prec: -1}.Ticks(lo, hi)
	for i := range ts {
		if ts[i].Label != "" {
			ts[i].Label = strconv.FormatFloat(ts[i].Value, 'g', 3, 64)
		}
	}
	return ts
}

// DecadeRange widens a log-scale y axis, once every plotter is added, to
// the decades that enclose the data. gonum pads a range of one value by
// ±1, which leaves a log axis below zero when the value is under 1 (every
// point equal, e.g. all seeds at the same best), and log ticks need a
// range to draw. It does nothing when the axis holds a value ≤ 0 or none.
func DecadeRange(p *plot.Plot) {
	lo, hi := p.Y.Min, p.Y.Max
	if !(lo > 0) || math.IsInf(hi, 0) || hi < lo {
		return
	}
	p.Y.Min = math.Pow(10, math.Floor(math.Log10(lo)))
	p.Y.Max = math.Pow(10, math.Ceil(math.Log10(hi)))
	if p.Y.Max <= p.Y.Min {
		p.Y.Max = 10 * p.Y.Min
	}
}
