package surrogate

import (
	"fmt"
	"math"
	"slices"
)

// Dataset holds the (x, y) pairs a surrogate trains on, in raw units, plus
// the inputs mapped by the model's InputScaling. For GradPIE it keeps the
// k-nearest-neighbour lists, in that scaled input space (the space the
// network sees), for the K of the last Trainer that used it, and extends
// them as points are appended.
//
// A Dataset is not safe for concurrent use.
type Dataset struct {
	in, out  int
	nin      int       // the network's input width: a scaled row's length
	enc      encoder   // the model's input map
	x, xn, y []float64 // n×in raw, n×nin scaled, n×out raw
	n        int
	bad      error // the first non-finite point; Fit refuses the dataset

	k  int
	nb neighborLister // nil until a GradPIE Trainer asks for K neighbours
}

// NewDataset returns an empty dataset for model's input space and output
// dimension.
func NewDataset(model *Model) *Dataset {
	return &Dataset{in: model.In(), out: model.mlp.out, nin: model.enc.nin, enc: model.enc}
}

// Len returns the number of points.
func (d *Dataset) Len() int { return d.n }

// In returns the input dimension.
func (d *Dataset) In() int { return d.in }

// Out returns the output dimension.
func (d *Dataset) Out() int { return d.out }

// Append adds a copy of the pair (x, y). A non-finite value is kept but makes
// Fit fail with an error naming the point, so a bad measurement cannot
// silently poison the surrogate. It panics if a length does not match the
// model's.
func (d *Dataset) Append(x, y []float64) {
	if len(x) != d.in || len(y) != d.out {
		panic(fmt.Sprintf("surrogate: Dataset.Append: x has %d values (want %d), y has %d (want %d)", len(x), d.in, len(y), d.out))
	}
	if d.bad == nil {
		d.bad = nonFinite(d.n, "x", x)
	}
	if d.bad == nil {
		d.bad = nonFinite(d.n, "y", y)
	}
	d.x = append(d.x, x...)
	d.y = append(d.y, y...)
	off := len(d.xn)
	d.xn = slices.Grow(d.xn, d.nin)[:off+d.nin]
	d.enc.encode(d.xn[off:], x)
	d.n++
	if d.nb != nil {
		d.nb.Append(d.xnRow(d.n - 1))
	}
}

func nonFinite(i int, name string, v []float64) error {
	for j, f := range v {
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Errorf("point %d: %s[%d] = %v is not finite", i, name, j, f)
		}
	}
	return nil
}

// X returns point i's input. The slice aliases the dataset: do not modify it.
func (d *Dataset) X(i int) []float64 { return d.x[i*d.in : (i+1)*d.in : (i+1)*d.in] }

// Y returns point i's output. The slice aliases the dataset: do not modify it.
func (d *Dataset) Y(i int) []float64 { return d.y[i*d.out : (i+1)*d.out : (i+1)*d.out] }

func (d *Dataset) xnRow(i int) []float64 { return d.xn[i*d.nin : (i+1)*d.nin : (i+1)*d.nin] }

// ys returns views of every output, for SetOutputScale.
func (d *Dataset) ys() [][]float64 {
	ys := make([][]float64, d.n)
	for i := range ys {
		ys[i] = d.Y(i)
	}
	return ys
}

// useK makes the neighbour lists those of k, building them from scratch
// when k changes and catching up otherwise.
func (d *Dataset) useK(k int) {
	if d.nb == nil || d.k != k {
		d.nb, d.k = newNeighborLister(d.nin, k), k
	}
	if m := d.nb.Len(); m < d.n {
		pts := make([][]float64, 0, d.n-m)
		for i := m; i < d.n; i++ {
			pts = append(pts, d.xnRow(i))
		}
		d.nb.Append(pts...)
	}
}

// neighbors returns point i's neighbour list for the current k; useK must
// have been called.
func (d *Dataset) neighbors(i int) []int { return d.nb.Neighbors(i) }
