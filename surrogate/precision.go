package surrogate

import (
	"log/slog"
	"math"
)

// The GradPIE loss fits differences of nearby outputs, (f(x_j) − f(x_i))
// against (y_j − y_i). A float32 network resolves an output only to about
// one part in 2²³ of its size, and its inputs likewise: where neighbours
// differ by less than that, in output or in every input coordinate, float32
// cannot represent what the loss asks for, however well it trains.
// precisionGuard counts such neighbour pairs as the data grow and warns,
// once per Trainer, when they are no longer rare.
type precisionGuard struct {
	checked       int // points whose neighbour lists have been checked
	diffs, small  int // nonzero standardized output differences seen; of them below resolution
	pairs, merged int // neighbour pairs seen; of them with inputs equal in float32 but not in float64
	warned        bool
	warn          func(msg string, args ...any) // slog.Warn; tests replace it
}

// Thresholds of the guard.
const (
	// f32Resolution is float32's spacing at 1 (2⁻²³): a difference of two
	// values near t is resolved only if it exceeds f32Resolution·|t|.
	f32Resolution = 0x1p-23
	// guardFraction of the differences (or pairs) below resolution
	// triggers the warning, once guardMin of them have been seen.
	guardFraction = 0.01
	guardMin      = 100
)

// check examines the neighbour lists of the points added since the last
// call, with outputs standardized by mean and std as the network sees them,
// and warns the first time the share of unresolvable differences reaches
// guardFraction. d's neighbour lists must be current (useK).
func (g *precisionGuard) check(d *Dataset, mean, std []float64) {
	if g.warned {
		return
	}
	ti, tj := make([]float64, d.out), make([]float64, d.out)
	for i := g.checked; i < d.n; i++ {
		yi, ui := d.Y(i), d.xnRow(i)
		for o, v := range yi {
			ti[o] = (v - mean[o]) / std[o]
		}
		for _, j := range d.neighbors(i) {
			yj, uj := d.Y(j), d.xnRow(j)
			for o, v := range yj {
				tj[o] = (v - mean[o]) / std[o]
			}
			for o := range ti {
				diff := math.Abs(tj[o] - ti[o])
				if diff == 0 {
					continue // equal in float64 too: not a precision matter
				}
				g.diffs++
				if diff < f32Resolution*max(math.Abs(ti[o]), math.Abs(tj[o])) {
					g.small++
				}
			}
			g.pairs++
			if mergedInFloat32(ui, uj) {
				g.merged++
			}
		}
	}
	g.checked = d.n
	outputs := g.diffs >= guardMin && float64(g.small) >= guardFraction*float64(g.diffs)
	inputs := g.pairs >= guardMin && float64(g.merged) >= guardFraction*float64(g.pairs)
	if !outputs && !inputs {
		return
	}
	g.warned = true
	warn := g.warn
	if warn == nil {
		warn = slog.Warn
	}
	warn("surrogate: float32 cannot resolve the differences between neighbouring points that the GradPIE loss fits; use surrogate.precision: float64",
		"output_differences", g.diffs, "below_float32_resolution", g.small,
		"neighbour_pairs", g.pairs, "inputs_equal_in_float32", g.merged)
}

// mergedInFloat32 reports whether u and v differ but round to the same
// float32 vector.
func mergedInFloat32(u, v []float64) bool {
	same := true
	for k, a := range u {
		if float32(a) != float32(v[k]) {
			return false
		}
		same = same && a == v[k]
	}
	return !same
}
