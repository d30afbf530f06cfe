package surrogate

import (
	"fmt"
	"math"
)

// Pair norms of the GradPIE loss.
const (
	NormL1 = "l1" // mean absolute difference (the paper's choice; the default)
	NormL2 = "l2" // mean squared difference
)

// MAE returns mean |pred − target| over all elements and, when grad is not
// nil, writes its gradient with respect to pred into grad (the subgradient 0
// at an exact tie). It panics on mismatched lengths.
func MAE(pred, target, grad []float64) float64 {
	checkLossArgs("MAE", pred, target, grad)
	if len(pred) == 0 {
		return 0
	}
	inv := 1 / float64(len(pred))
	var s float64
	for i, p := range pred {
		d := p - target[i]
		s += math.Abs(d)
		if grad != nil {
			grad[i] = sign(d) * inv
		}
	}
	return s * inv
}

// MSE returns mean (pred − target)² over all elements and, when grad is not
// nil, writes its gradient with respect to pred into grad. It panics on
// mismatched lengths.
func MSE(pred, target, grad []float64) float64 {
	checkLossArgs("MSE", pred, target, grad)
	if len(pred) == 0 {
		return 0
	}
	inv := 1 / float64(len(pred))
	var s float64
	for i, p := range pred {
		d := p - target[i]
		s += d * d
		if grad != nil {
			grad[i] = 2 * d * inv
		}
	}
	return s * inv
}

// GradPIELoss is the GradPIE-kNN loss over rows of pred and target (each
// row outDim values): for every pair (i, j), the residual
// r = (pred_j − pred_i) − (target_j − target_i) per output component, and
//
//	L = 1/(P·outDim) Σ_pairs Σ_components |r|   (norm "l1" or "")
//	L = 1/(P·outDim) Σ_pairs Σ_components r²    (norm "l2")
//
// With the k nearest neighbours of n anchors as pairs this is the paper's
// 1/(n·k) Σ_i Σ_{j∈kNN(i)} mean_o |…|. When grad is not nil it is
// overwritten with dL/dpred. It panics on mismatched shapes, an index out of
// range or an unknown norm.
func GradPIELoss(pred, target []float64, outDim int, pairs [][2]int, norm string, grad []float64) float64 {
	checkLossArgs("GradPIELoss", pred, target, grad)
	if outDim < 1 || len(pred)%outDim != 0 {
		panic(fmt.Sprintf("surrogate: GradPIELoss: %d values do not form rows of %d", len(pred), outDim))
	}
	l2 := false
	switch norm {
	case "", NormL1:
	case NormL2:
		l2 = true
	default:
		panic(fmt.Sprintf("surrogate: GradPIELoss: unknown norm %q", norm))
	}
	if grad != nil {
		clear(grad)
	}
	if len(pairs) == 0 {
		return 0
	}
	rows := len(pred) / outDim
	c := 1 / float64(len(pairs)*outDim)
	var s float64
	for _, p := range pairs {
		i, j := p[0], p[1]
		if i < 0 || j < 0 || i >= rows || j >= rows {
			panic(fmt.Sprintf("surrogate: GradPIELoss: pair (%d, %d) outside %d rows", i, j, rows))
		}
		pi, pj := pred[i*outDim:(i+1)*outDim], pred[j*outDim:(j+1)*outDim]
		ti, tj := target[i*outDim:(i+1)*outDim], target[j*outDim:(j+1)*outDim]
		for o := range outDim {
			r := (pj[o] - pi[o]) - (tj[o] - ti[o])
			var g float64
			if l2 {
				s += r * r
				g = 2 * r * c
			} else {
				s += math.Abs(r)
				g = sign(r) * c
			}
			if grad != nil {
				grad[j*outDim+o] += g
				grad[i*outDim+o] -= g
			}
		}
	}
	return s * c
}

func sign(d float64) float64 {
	switch {
	case d > 0:
		return 1
	case d < 0:
		return -1
	}
	return 0
}

func checkLossArgs(name string, pred, target, grad []float64) {
	if len(target) != len(pred) || (grad != nil && len(grad) != len(pred)) {
		panic(fmt.Sprintf("surrogate: %s: pred has %d values, target %d, grad %d", name, len(pred), len(target), len(grad)))
	}
}
