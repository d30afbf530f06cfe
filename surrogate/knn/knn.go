// Package knn keeps exact k-nearest-neighbour lists of a point set that grows
// online, as the GradPIE loss needs: every training point's k nearest
// neighbours in (normalized) input space, with points appended every
// iteration.
//
// Lists are exact, not approximate: a neighbour's squared distance is always
// the direct sum Σ (a_t − b_t)² evaluated in index order, and ties in that
// distance go to the lower index, so the lists are a deterministic function
// of the points whatever the order or chunking of Append. Large appends use
// the GEMM identity only to discard pairs that provably cannot enter a list.
//
// Distances that evaluate to NaN (points with NaN coordinates) are treated as
// +Inf so that the order stays total.
package knn

import (
	"errors"
	"math"
	"slices"
)

// Index keeps, for every point, its k nearest other points (self excluded),
// nearest first; ties in distance go to the lower index.
type Index struct {
	dim, k int
	pts    []float64 // row-major, Len()×dim
	norms  []float64 // squared norm of each point, for the GEMM path
	lists  [][]int
	dists  [][]float64 // squared distances, parallel to lists

	// blockMin is the smallest append that takes the blocked GEMM path;
	// tests lower it to exercise that path on small inputs.
	blockMin int
	// tile is the GEMM tile edge; it bounds scratch memory to tile² floats.
	tile int
	// exact counts the pairs the blocked path re-evaluated with sqDist, so
	// tests can check that the GEMM filter actually prunes.
	exact int
}

// Defaults for the blocked path: below blockMin new points the direct sum
// over the existing points is as fast and needs no scratch.
const (
	defaultBlockMin = 64
	defaultTile     = 256
)

// New returns an empty index of points of dimension dim keeping k neighbours
// per point.
func New(dim, k int) (*Index, error) {
	if dim < 1 {
		return nil, errors.New("knn: dimension must be at least 1")
	}
	if k < 1 {
		return nil, errors.New("knn: k must be at least 1")
	}
	return &Index{dim: dim, k: k, blockMin: defaultBlockMin, tile: defaultTile}, nil
}

// Len is the number of points.
func (x *Index) Len() int { return len(x.lists) }

// Dim is the dimension of the points.
func (x *Index) Dim() int { return x.dim }

// K is the number of neighbours kept per point (lists are shorter while
// Len() ≤ K).
func (x *Index) K() int { return x.k }

// Point returns point i (a copy made by Append); the caller must not modify it.
func (x *Index) Point(i int) []float64 {
	return x.pts[i*x.dim : (i+1)*x.dim : (i+1)*x.dim]
}

// Neighbors returns the min(K(), Len()−1) nearest other points to point i,
// nearest first, ties to the lower index. The slice is owned by the index
// and changes on Append; the caller must not modify it.
func (x *Index) Neighbors(i int) []int { return x.lists[i] }

// Distances returns the squared distances parallel to Neighbors(i), under
// the same ownership rules.
func (x *Index) Distances(i int) []float64 { return x.dists[i] }

// Append adds points, copying them, and updates every list a new point
// enters. It panics if a point has the wrong dimension (a programming
// error); in that case the index is left unchanged.
func (x *Index) Append(points ...[]float64) {
	for _, p := range points {
		if len(p) != x.dim {
			panic("knn: Append: point of the wrong dimension")
		}
	}
	m := len(points)
	if m == 0 {
		return
	}
	n := x.Len()
	x.pts = slices.Grow(x.pts, m*x.dim)
	x.norms = slices.Grow(x.norms, m)
	x.lists = slices.Grow(x.lists, m)
	x.dists = slices.Grow(x.dists, m)
	for _, p := range points {
		x.pts = append(x.pts, p...)
		x.norms = append(x.norms, sqNorm(p))
		x.lists = append(x.lists, nil)
		x.dists = append(x.dists, nil)
	}
	if m >= x.blockMin && n+m > 1 {
		x.appendBlocked(n)
	} else {
		x.appendDirect(n)
	}
}

// appendDirect computes the lists of points n.. (already stored) by direct
// sums against every earlier point, updating both lists of each pair.
func (x *Index) appendDirect(n int) {
	for j := n; j < x.Len(); j++ {
		p := x.Point(j)
		for i := range j {
			d := sqDist(x.Point(i), p)
			x.insert(i, j, d)
			x.insert(j, i, d)
		}
	}
}

// insert offers neighbour j at squared distance d to the list of point i.
func (x *Index) insert(i, j int, d float64) {
	list, dist := x.lists[i], x.dists[i]
	if len(list) == x.k && !before(d, j, dist[x.k-1], list[x.k-1]) {
		return // the common case; skip storing the slices back
	}
	x.lists[i], x.dists[i] = insertNeighbor(list, dist, j, d, x.k)
}

// bound returns the squared distance a candidate must not exceed to enter
// the list of point i: its k-th distance, or +Inf while the list is short.
func (x *Index) bound(i int) float64 {
	if d := x.dists[i]; len(d) == x.k {
		return d[x.k-1]
	}
	return math.Inf(1)
}

// insertNeighbor adds candidate j at squared distance d to the list sorted
// by (distance, index) when it is among the k smallest. Comparing indices on
// equal distance makes the result independent of the order of offers.
func insertNeighbor(list []int, dist []float64, j int, d float64, k int) ([]int, []float64) {
	if len(list) == k && !before(d, j, dist[k-1], list[k-1]) {
		return list, dist
	}
	pos := len(list)
	for pos > 0 && before(d, j, dist[pos-1], list[pos-1]) {
		pos--
	}
	if len(list) < k {
		list = append(list, 0)
		dist = append(dist, 0)
	}
	copy(list[pos+1:], list[pos:])
	copy(dist[pos+1:], dist[pos:])
	list[pos], dist[pos] = j, d
	return list, dist
}

// before orders neighbours by distance, then index.
func before(d1 float64, i1 int, d2 float64, i2 int) bool {
	return d1 < d2 || (d1 == d2 && i1 < i2)
}

// sqDist is the exact squared distance every list is defined by. The explicit
// float64 conversion forbids fusing into an FMA, so the value is the same
// wherever the compiler inlines it; it is symmetric in a and b.
func sqDist(a, b []float64) float64 {
	b = b[:len(a)]
	var s float64
	for t, v := range a {
		e := v - b[t]
		s += float64(e * e)
	}
	if s != s {
		return math.Inf(1)
	}
	return s
}

// sqNorm is ‖a‖², summed like sqDist.
func sqNorm(a []float64) float64 {
	var s float64
	for _, v := range a {
		s += float64(v * v)
	}
	return s
}

// BruteForce is the reference: for every point, the min(k, n−1) nearest
// other points by a direct O(n²d) double loop, nearest first, ties in
// distance to the lower index. It panics if the points differ in dimension.
func BruteForce(points [][]float64, k int) [][]int {
	n := len(points)
	out := make([][]int, n)
	if n == 0 || k < 1 {
		return out
	}
	dim := len(points[0])
	for _, p := range points {
		if len(p) != dim {
			panic("knn: BruteForce: points of different dimensions")
		}
	}
	var dist []float64
	for i, p := range points {
		var list []int
		dist = dist[:0]
		for j, q := range points {
			if j != i {
				list, dist = insertNeighbor(list, dist, j, sqDist(p, q), k)
			}
		}
		out[i] = list
	}
	return out
}
