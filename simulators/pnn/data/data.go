// Package data holds the classification sets the physical neural networks
// of package pnn are trained on: two moons, Gaussian blobs and concentric
// circles generated from a seed, and a parser for small CSV tables. Every
// generated set has its features scaled into [−1, 1], the input range of
// the pnn twins. Nothing is downloaded; no real table is shipped yet.
package data

import (
	"fmt"
	"math"
	"slices"

	"github.com/insitu-lab/insitu/internal/splitmix"
)

// Dataset is a labelled classification set: sample i has features X[i]
// and label Y[i] ∈ [0, Classes).
type Dataset struct {
	X       [][]float64
	Y       []int
	Classes int
	Labels  []string // optional class names, len Classes when set (CSV tables with text labels)
}

// Len returns the number of samples.
func (d Dataset) Len() int { return len(d.Y) }

// Dim returns the number of features (0 for an empty set).
func (d Dataset) Dim() int {
	if len(d.X) == 0 {
		return 0
	}
	return len(d.X[0])
}

// Counts returns the number of samples of each class.
func (d Dataset) Counts() []int {
	c := make([]int, d.Classes)
	for _, y := range d.Y {
		c[y]++
	}
	return c
}

const (
	saltMoons   = 0x64617461_00000001
	saltBlobs   = 0x64617461_00000002
	saltCircles = 0x64617461_00000003
	saltSplit   = 0x64617461_00000004
)

// balanced returns the class of sample i of n spread over c classes:
// classes take turns, so counts differ by at most one.
func balanced(i, c int) int { return i % c }

func check(n, classes int, noise float64) error {
	if n < classes || n > 10_000_000 {
		return fmt.Errorf("data: n = %d samples, want between %d (one per class) and 10⁷", n, classes)
	}
	if math.IsNaN(noise) || math.IsInf(noise, 0) || noise < 0 {
		return fmt.Errorf("data: noise %v, want a finite standard deviation ≥ 0", noise)
	}
	return nil
}

// Moons returns n samples of two interleaved half circles (scikit-learn's
// make_moons geometry) with Gaussian noise of std noise (in the units of
// the unit-radius moons, before scaling), scaled into [−1, 1]².
func Moons(seed uint64, n int, noise float64) (Dataset, error) {
	if err := check(n, 2, noise); err != nil {
		return Dataset{}, err
	}
	r := splitmix.Stream(seed, saltMoons)
	d := Dataset{X: make([][]float64, n), Y: make([]int, n), Classes: 2}
	for i := range n {
		y := balanced(i, 2)
		t := math.Pi * r.Float64()
		var x0, x1 float64
		if y == 0 {
			x0, x1 = math.Cos(t), math.Sin(t)
		} else {
			x0, x1 = 1-math.Cos(t), 0.5-math.Sin(t)
		}
		d.X[i] = []float64{x0 + noise*r.NormFloat64(), x1 + noise*r.NormFloat64()}
		d.Y[i] = y
	}
	d.Scale()
	return d, nil
}

// Blobs returns n samples of classes isotropic Gaussians of std noise whose
// centres sit evenly on the unit circle, scaled into [−1, 1]².
func Blobs(seed uint64, n, classes int, noise float64) (Dataset, error) {
	if classes < 1 || classes > 1000 {
		return Dataset{}, fmt.Errorf("data: classes = %d, want 1…1000", classes)
	}
	if err := check(n, classes, noise); err != nil {
		return Dataset{}, err
	}
	r := splitmix.Stream(seed, saltBlobs)
	d := Dataset{X: make([][]float64, n), Y: make([]int, n), Classes: classes}
	for i := range n {
		y := balanced(i, classes)
		s, c := math.Sincos(2 * math.Pi * float64(y) / float64(classes))
		d.X[i] = []float64{c + noise*r.NormFloat64(), s + noise*r.NormFloat64()}
		d.Y[i] = y
	}
	d.Scale()
	return d, nil
}

// Circles returns n samples on two concentric circles, radius 1 (class 0)
// and 0.5 (class 1), with Gaussian noise of std noise, scaled into [−1, 1]².
func Circles(seed uint64, n int, noise float64) (Dataset, error) {
	if err := check(n, 2, noise); err != nil {
		return Dataset{}, err
	}
	r := splitmix.Stream(seed, saltCircles)
	d := Dataset{X: make([][]float64, n), Y: make([]int, n), Classes: 2}
	for i := range n {
		y := balanced(i, 2)
		rad := 1.0
		if y == 1 {
			rad = 0.5
		}
		s, c := math.Sincos(2 * math.Pi * r.Float64())
		d.X[i] = []float64{rad*c + noise*r.NormFloat64(), rad*s + noise*r.NormFloat64()}
		d.Y[i] = y
	}
	d.Scale()
	return d, nil
}

// Generate builds a set by name: "moons", "blobs" or "circles" (classes is
// used by blobs only; moons and circles have 2).
func Generate(name string, seed uint64, n, classes int, noise float64) (Dataset, error) {
	switch name {
	case "moons":
		return Moons(seed, n, noise)
	case "blobs":
		return Blobs(seed, n, classes, noise)
	case "circles":
		return Circles(seed, n, noise)
	}
	return Dataset{}, fmt.Errorf("data: unknown set %q (want moons, blobs or circles)", name)
}

// Scale maps every feature affinely onto [−1, 1] in place (min → −1,
// max → 1; a constant feature becomes 0), and returns the per-feature
// minima and maxima it used.
func (d *Dataset) Scale() (lo, hi []float64) {
	m := d.Dim()
	lo, hi = make([]float64, m), make([]float64, m)
	for j := range m {
		lo[j], hi[j] = math.Inf(1), math.Inf(-1)
		for _, x := range d.X {
			lo[j], hi[j] = min(lo[j], x[j]), max(hi[j], x[j])
		}
	}
	for _, x := range d.X {
		for j := range x {
			if hi[j] > lo[j] {
				// Halves keep x − lo from overflowing for features near ±MaxFloat64.
				x[j] = min(1, max(-1, 2*(x[j]/2-lo[j]/2)/(hi[j]/2-lo[j]/2)-1))
			} else {
				x[j] = 0
			}
		}
	}
	return lo, hi
}

// Split returns a stratified train/test split drawn from seed: each class
// puts round(testFraction·count) of its samples in test, and both halves
// are shuffled. Samples are shared with d, not copied.
func (d Dataset) Split(seed uint64, testFraction float64) (train, test Dataset, err error) {
	if !(testFraction >= 0 && testFraction <= 1) {
		return train, test, fmt.Errorf("data: test fraction %v, want [0, 1]", testFraction)
	}
	r := splitmix.Stream(seed, saltSplit)
	byClass := make([][]int, d.Classes)
	for i, y := range d.Y {
		byClass[y] = append(byClass[y], i)
	}
	var tr, te []int
	for _, idx := range byClass {
		r.Shuffle(len(idx), func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
		k := int(math.Round(testFraction * float64(len(idx))))
		te = append(te, idx[:k]...)
		tr = append(tr, idx[k:]...)
	}
	r.Shuffle(len(tr), func(i, j int) { tr[i], tr[j] = tr[j], tr[i] })
	r.Shuffle(len(te), func(i, j int) { te[i], te[j] = te[j], te[i] })
	pick := func(idx []int) Dataset {
		s := Dataset{X: make([][]float64, len(idx)), Y: make([]int, len(idx)), Classes: d.Classes, Labels: slices.Clone(d.Labels)}
		for k, i := range idx {
			s.X[k], s.Y[k] = d.X[i], d.Y[i]
		}
		return s
	}
	return pick(tr), pick(te), nil
}
