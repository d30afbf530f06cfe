package surrogate

// neighborLister keeps exact k-nearest-neighbour lists of a growing point
// set: Neighbors(i) is the k_eff = min(k, n−1) nearest points to i, self
// excluded, nearest first. knn.Index from surrogate/knn has this method set.
type neighborLister interface {
	Append(points ...[]float64)
	Neighbors(i int) []int
	Len() int
}

// newNeighborLister is the one place that picks the implementation. To use
// the surrogate/knn package, make it `return knn.New(dim, k)`.
func newNeighborLister(dim, k int) neighborLister {
	return newBruteNeighbors(dim, k)
}

// bruteNeighbors is an exact, incremental brute-force neighbour index: each
// appended point is compared with every earlier one, updating both lists.
// Ties in distance go to the lower index.
type bruteNeighbors struct {
	dim, k int
	pts    []float64
	lists  [][]int
	dists  [][]float64 // squared distances, parallel to lists
	d2     []float64   // scratch
}

func newBruteNeighbors(dim, k int) *bruteNeighbors {
	return &bruteNeighbors{dim: dim, k: k}
}

func (b *bruteNeighbors) Len() int { return len(b.lists) }

func (b *bruteNeighbors) Neighbors(i int) []int { return b.lists[i] }

func (b *bruteNeighbors) Append(points ...[]float64) {
	for _, p := range points {
		if len(p) != b.dim {
			panic("surrogate: neighbour index: point of the wrong dimension")
		}
		n := len(b.lists)
		if cap(b.d2) < n {
			b.d2 = make([]float64, n, 2*n)
		}
		b.d2 = b.d2[:n]
		for i := range n {
			q := b.pts[i*b.dim : (i+1)*b.dim]
			var s float64
			for j, v := range p {
				d := v - q[j]
				s += d * d
			}
			b.d2[i] = s
			// p has the largest index, so it only displaces strictly farther points.
			b.lists[i], b.dists[i] = insertNeighbor(b.lists[i], b.dists[i], n, s, b.k)
		}
		var list []int
		var dist []float64
		for i := range n {
			list, dist = insertNeighbor(list, dist, i, b.d2[i], b.k)
		}
		b.pts = append(b.pts, p...)
		b.lists = append(b.lists, list)
		b.dists = append(b.dists, dist)
	}
}

// insertNeighbor adds candidate j at squared distance d to the sorted list
// when it is among the k nearest. Candidates arrive in increasing index, so
// placing j after every entry at distance ≤ d keeps ties in index order.
func insertNeighbor(list []int, dist []float64, j int, d float64, k int) ([]int, []float64) {
	if k < 1 || (len(list) == k && d >= dist[k-1]) {
		return list, dist
	}
	pos := len(list)
	for pos > 0 && dist[pos-1] > d {
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
