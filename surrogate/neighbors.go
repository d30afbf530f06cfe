package surrogate

import "github.com/insitu-lab/insitu/surrogate/knn"

// neighborLister keeps exact k-nearest-neighbour lists of a growing point
// set: Neighbors(i) is the k_eff = min(k, n−1) nearest points to i, self
// excluded, nearest first. knn.Index from surrogate/knn has this method set.
type neighborLister interface {
	Append(points ...[]float64)
	Neighbors(i int) []int
	Len() int
}

// newNeighborLister is the one place that picks the implementation: the
// blocked exact index of package knn, which gives the same lists as
// bruteNeighbors (kept as the tests' reference) and appends large blocks
// with GEMM.
func newNeighborLister(dim, k int) neighborLister {
	x, err := knn.New(dim, k)
	if err != nil {
		panic("surrogate: " + err.Error()) // dim and k are checked by the callers
	}
	return x
}
