package opamp

import (
	"context"
	"fmt"
	"math"
	"slices"

	"github.com/insitu-lab/insitu"
)

// FoM weights of the CktGNN code the GradPIE paper (arXiv 2501.19161)
// cites:
//
//	FoM = 1.2·|G|/100 + 1.6·PM/(−90) + 10·|UGBW|/1e9.
//
// PM enters with a negative sign, as in that code. A design without a
// unity-gain crossing (PM = PenaltyPM = 180°, UGBW = 0) scores about −3.2.
const (
	WeightG    = 1.2 / 100
	WeightPM   = 1.6 / -90
	WeightUGBW = 10 / 1e9
)

// FoM is the figure of merit over the outputs [G, PM, UGBW]; larger is
// better. It implements insitu.Objective.
type FoM struct{}

// Value returns 1.2·|G|/100 − 1.6·PM/90 + 10·|UGBW|/1e9.
func (FoM) Value(y []float64) float64 {
	return WeightG*math.Abs(y[0]) + WeightPM*y[1] + WeightUGBW*math.Abs(y[2])
}

// Grad returns ∂FoM/∂y, exact: sign(G)·0.012, −1.6/90, sign(UGBW)·1e-8
// (the sign of 0 taken as +1, a subgradient).
func (FoM) Grad(y []float64) []float64 {
	return []float64{WeightG * sign(y[0]), WeightPM, WeightUGBW * sign(y[2])}
}

func sign(v float64) float64 {
	if v < 0 {
		return -1
	}
	return 1
}

// fomObjective places FoM on the outputs of a box that names G, PM and
// UGBW among its outputs (the twin, or a rig measuring the same).
type fomObjective struct {
	idx [3]int
	m   int
}

func (o fomObjective) pick(y []float64) []float64 {
	return []float64{y[o.idx[0]], y[o.idx[1]], y[o.idx[2]]}
}

func (o fomObjective) Value(y []float64) float64 { return FoM{}.Value(o.pick(y)) }

func (o fomObjective) Grad(y []float64) []float64 {
	g := make([]float64, o.m)
	for k, v := range (FoM{}).Grad(o.pick(y)) {
		g[o.idx[k]] = v
	}
	return g
}

func init() {
	insitu.RegisterObjective("opamp-fom", func(_ context.Context, c insitu.ObjectiveConfig, b insitu.BlackBox) (insitu.Objective, insitu.Direction, error) {
		spec := b.Spec()
		if len(c.Outputs) != 0 || c.Target != nil {
			return nil, "", fmt.Errorf("objective: opamp-fom takes neither outputs nor target (it uses %v)", OutputNames)
		}
		o := fomObjective{m: len(spec.Out)}
		for k, name := range OutputNames {
			i := slices.Index(spec.Out, name)
			if i < 0 {
				return nil, "", fmt.Errorf("objective.kind: opamp-fom needs output %q, %s has %v", name, spec.Name, spec.Out)
			}
			o.idx[k] = i
		}
		return o, insitu.Maximize, nil
	})
}
