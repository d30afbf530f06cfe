package surrogate

import (
	"cmp"
	"math"
	"slices"
	"testing"
)

// naiveNeighbors sorts all other points by (distance, index).
func naiveNeighbors(pts [][]float64, k int) [][]int {
	out := make([][]int, len(pts))
	for i, p := range pts {
		type cand struct {
			d float64
			j int
		}
		var cs []cand
		for j, q := range pts {
			if j == i {
				continue
			}
			var s float64
			for t := range p {
				s += (p[t] - q[t]) * (p[t] - q[t])
			}
			cs = append(cs, cand{s, j})
		}
		slices.SortFunc(cs, func(a, b cand) int { return cmp.Or(cmp.Compare(a.d, b.d), cmp.Compare(a.j, b.j)) })
		for _, c := range cs[:min(k, len(cs))] {
			out[i] = append(out[i], c.j)
		}
	}
	return out
}

func TestBruteNeighborsIncremental(t *testing.T) {
	rng := newRand(4)
	var pts [][]float64
	// Random points, then grid points with many exact ties and a duplicate.
	for range 40 {
		pts = append(pts, randVec(rng, 3, 1))
	}
	for i := range 12 {
		pts = append(pts, []float64{float64(i % 3), float64(i / 3), 0})
	}
	pts = append(pts, slices.Clone(pts[3]))
	for _, k := range []int{1, 3, 7} {
		nb := newNeighborLister(3, k)
		// Appended one at a time, in chunks and all at once: always exact.
		for start, step := 0, 1; start < len(pts); start, step = start+step, step+1 {
			end := min(start+step, len(pts))
			nb.Append(pts[start:end]...)
			want := naiveNeighbors(pts[:end], k)
			if nb.Len() != end {
				t.Fatalf("Len %d, want %d", nb.Len(), end)
			}
			for i := range end {
				if got := nb.Neighbors(i); !slices.Equal(got, want[i]) {
					t.Fatalf("k=%d n=%d point %d: neighbours %v, want %v", k, end, i, got, want[i])
				}
			}
		}
	}
	one := newNeighborLister(2, 5)
	one.Append([]float64{0, 0})
	if got := one.Neighbors(0); len(got) != 0 {
		t.Errorf("a single point has neighbours %v", got)
	}
}

func TestDatasetNeighborsFollowAppends(t *testing.T) {
	m, _ := NewModel(oddSpace(), 1, Arch{}, 1)
	d := NewDataset(m)
	rng := newRand(9)
	s := oddSpace()
	point := func() []float64 {
		x := make([]float64, 4)
		for j := range x {
			x[j] = s.Lower[j] + rng.Float64()*(s.Upper[j]-s.Lower[j])
		}
		return x
	}
	for range 30 {
		d.Append(point(), []float64{1})
	}
	d.useK(4)
	for range 7 {
		d.Append(point(), []float64{2})
	}
	// The lists are those of the normalized inputs, built from scratch.
	var norm [][]float64
	for i := range d.Len() {
		norm = append(norm, m.NormalizeInput(d.X(i)))
	}
	want := naiveNeighbors(norm, 4)
	for i := range d.Len() {
		if got := d.neighbors(i); !slices.Equal(got, want[i]) {
			t.Fatalf("point %d: %v, want %v", i, got, want[i])
		}
	}
	// A different K rebuilds.
	d.useK(2)
	want = naiveNeighbors(norm, 2)
	for i := range d.Len() {
		if got := d.neighbors(i); !slices.Equal(got, want[i]) {
			t.Fatalf("k=2 point %d: %v, want %v", i, got, want[i])
		}
	}
}

func TestDatasetAccessors(t *testing.T) {
	m, _ := NewModel(boxSpace(2), 1, Arch{}, 1)
	d := NewDataset(m)
	x, y := []float64{0.5, -0.5}, []float64{3}
	d.Append(x, y)
	x[0], y[0] = 9, 9 // Append copied
	if d.Len() != 1 || !slices.Equal(d.X(0), []float64{0.5, -0.5}) || !slices.Equal(d.Y(0), []float64{3}) {
		t.Errorf("Len %d X %v Y %v", d.Len(), d.X(0), d.Y(0))
	}
	if cap(d.X(0)) != 2 || cap(d.Y(0)) != 1 {
		t.Error("X/Y views let an append overwrite the next point")
	}
	d.Append([]float64{0, 0}, []float64{math.NaN()})
	tr, _ := NewTrainer(m, TrainConfig{Loss: LossMAE}, 1)
	if _, err := tr.Fit(t.Context(), d, 1, nil); err == nil {
		t.Error("Fit accepted a NaN output")
	} else {
		t.Log(err)
	}
}
