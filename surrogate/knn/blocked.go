package knn

import (
	"math"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
)

// appendBlocked computes the lists of points n.. (already stored, with their
// norms) in tiles: every pair (i, j) with i < j and j new is visited once and
// offered to both lists. The tile's inner products come from one GEMM, and
// g̃ = ‖a‖² + ‖b‖² − 2a·b is only a filter: a pair whose lower bound g̃ − E
// exceeds both lists' k-th distances cannot enter either list, and every
// other pair is re-evaluated with the direct sum sqDist, so the lists equal
// those of BruteForce bit for bit, ties included. (lo > k-th distance means
// the exact distance is strictly larger, so even a tie is impossible.)
// gonum's GEMM runs its 64×64 sub-blocks on GOMAXPROCS goroutines.
//
// Error bound E. With u = 2⁻⁵³ and S = ‖a‖² + ‖b‖², the norms and the dot
// product (in any summation order, FMA or not) are within γ_d·S of exact,
// so |g̃ − D| ≤ (2d+3)·u·S·(1+O(du)) for the real distance D, and
// |sqDist − D| ≤ γ_{d+2}·D ≤ (2d+4)·u·S·(1+O(du)) as D ≤ 2S. Hence
//
//	|g̃ − sqDist| ≤ (4d+7)·u·S·(1+O(du)) < E = 4·eps·(d+2)·S + tiny,
//
// eps = 2u, i.e. a factor-2 margin that also covers rounding E and g̃ − E.
// tiny = 4(d+2)·2⁻¹⁰⁷⁴ covers the absolute errors of underflow. Pairs whose
// S is near overflow are always re-evaluated.
func (x *Index) appendBlocked(n int) {
	N, dim, T := x.Len(), x.dim, x.tile
	factor := 4 * 0x1p-52 * float64(dim+2)
	tiny := float64(4*(dim+2)) * math.SmallestNonzeroFloat64
	const hugeS = math.MaxFloat64 / 16
	g := make([]float64, T*T)
	colBound := make([]float64, T) // bound(j) of the tile's columns
	for c0 := n; c0 < N; c0 += T {
		c1 := min(c0+T, N)
		b := blas64.General{Rows: c1 - c0, Cols: dim, Stride: dim, Data: x.pts[c0*dim : c1*dim]}
		colNorm := x.norms[c0:c1]
		colBound = colBound[:b.Rows]
		for jj := range colBound {
			colBound[jj] = x.bound(c0 + jj)
		}
		// Row tiles cover [0, n) and then [n, c1) aligned with the column
		// tiles, so the tile on the diagonal wastes at most half its GEMM.
		for r0 := 0; r0 < c1-1; {
			r1 := min(r0+T, N)
			if r0 < n {
				r1 = min(r1, n)
			}
			r1 = min(r1, c1-1)
			a := blas64.General{Rows: r1 - r0, Cols: dim, Stride: dim, Data: x.pts[r0*dim : r1*dim]}
			c := blas64.General{Rows: a.Rows, Cols: b.Rows, Stride: b.Rows, Data: g[:a.Rows*b.Rows]}
			// A·Bᵀ: both operands row-major with points as rows. gonum's
			// GEMM is several times slower with a transposed first operand.
			blas64.Gemm(blas.NoTrans, blas.Trans, 1, a, b, 0, c)
			for i := r0; i < r1; i++ {
				row := c.Data[(i-r0)*c.Stride : (i-r0+1)*c.Stride]
				ni, ti := x.norms[i], x.bound(i)
				for jj := max(c0, i+1) - c0; jj < len(row); jj++ {
					s := ni + colNorm[jj]
					lo := s - 2*row[jj] - (factor*s + tiny)
					// NaN fails both comparisons and is re-evaluated.
					if lo > ti && lo > colBound[jj] && s < hugeS {
						continue
					}
					j := c0 + jj
					d := sqDist(x.Point(i), x.Point(j))
					x.exact++
					x.insert(i, j, d)
					x.insert(j, i, d)
					ti, colBound[jj] = x.bound(i), x.bound(j)
				}
			}
			r0 = r1
		}
	}
}
