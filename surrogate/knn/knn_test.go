package knn

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// Point-set kinds. The grid, duplicate and offset-grid kinds make many exact
// ties, so the tie order is tested; the offset kinds put every coordinate
// near 1e6, where ‖a‖²+‖b‖²−2a·b cancels catastrophically.
const (
	kindUniform = iota
	kindGrid
	kindDup
	kindOffset
	kindOffsetGrid
	numKinds
)

var kindNames = [numKinds]string{"uniform", "grid", "dup", "offset", "offsetgrid"}

func genPoints(rng *rand.Rand, n, dim, kind int) [][]float64 {
	pts := make([][]float64, n)
	for i := range pts {
		p := make([]float64, dim)
		switch kind {
		case kindUniform:
			for t := range p {
				p[t] = rng.Float64()
			}
		case kindGrid:
			for t := range p {
				p[t] = float64(rng.IntN(3))
			}
		case kindDup:
			if i > 0 && rng.IntN(2) == 0 {
				copy(p, pts[rng.IntN(i)])
			} else {
				for t := range p {
					p[t] = rng.Float64()
				}
			}
		case kindOffset:
			for t := range p {
				p[t] = 1e6 + rng.Float64()
			}
		case kindOffsetGrid:
			for t := range p {
				p[t] = 1e6 + float64(rng.IntN(3))
			}
		}
		pts[i] = p
	}
	return pts
}

// appendChunked appends pts in chunks whose sizes are drawn from sizes (the
// last chunk takes what is left).
func appendChunked(x *Index, pts [][]float64, rng *rand.Rand, sizes []int) {
	for len(pts) > 0 {
		m := min(sizes[rng.IntN(len(sizes))], len(pts))
		x.Append(pts[:m]...)
		pts = pts[m:]
	}
}

func sameFloat(a, b float64) bool { return math.Float64bits(a) == math.Float64bits(b) }

// checkIndex fails unless x holds pts and its lists equal BruteForce's, with
// distances that are the exact sqDist values, sorted with ties by index.
func checkIndex(t *testing.T, x *Index, pts [][]float64, k int) {
	t.Helper()
	if x.Len() != len(pts) {
		t.Fatalf("Len = %d, want %d", x.Len(), len(pts))
	}
	want := BruteForce(pts, k)
	for i := range pts {
		if !slices.EqualFunc(x.Point(i), pts[i], sameFloat) {
			t.Fatalf("Point(%d) = %v, want %v", i, x.Point(i), pts[i])
		}
		got := x.Neighbors(i)
		if !slices.Equal(got, want[i]) {
			t.Fatalf("Neighbors(%d) = %v, want %v", i, got, want[i])
		}
		if len(got) != min(k, len(pts)-1) {
			t.Fatalf("len(Neighbors(%d)) = %d, want %d", i, len(got), min(k, len(pts)-1))
		}
		ds := x.Distances(i)
		if len(ds) != len(got) {
			t.Fatalf("len(Distances(%d)) = %d, want %d", i, len(ds), len(got))
		}
		for r, j := range got {
			if j == i {
				t.Fatalf("point %d lists itself", i)
			}
			if d := sqDist(pts[i], pts[j]); ds[r] != d {
				t.Fatalf("Distances(%d)[%d] = %v, want %v", i, r, ds[r], d)
			}
			if r > 0 && !before(ds[r-1], got[r-1], ds[r], j) {
				t.Fatalf("list %d not ordered at %d: %v %v", i, r, got, ds)
			}
		}
	}
}

func TestMatchesBruteForce(t *testing.T) {
	dims := []int{1, 3, 20, 100}
	ns := []int{600, 257, 40}
	seeds := 3
	if testing.Short() {
		ns = []int{300, 40}
		seeds = 2
	}
	chunkings := []struct {
		name  string
		sizes []int
	}{
		{"one", []int{1}},
		{"mixed", []int{1, 7, 200}},
		{"bulk", []int{1 << 30}},
	}
	for seed := range seeds {
		for _, dim := range dims {
			for ni, n := range ns {
				for _, k := range []int{1, 5, 10} {
					kind := (seed + ni + k + dim) % numKinds
					for _, ch := range chunkings {
						// Appending one at a time over hundreds of points
						// adds nothing over the mixed chunking but time.
						if ch.name == "one" && n > 300 {
							continue
						}
						name := fmt.Sprintf("seed=%d/d=%d/n=%d/k=%d/%s/%s", seed, dim, n, k, kindNames[kind], ch.name)
						t.Run(name, func(t *testing.T) {
							rng := rand.New(rand.NewPCG(uint64(seed), uint64(dim*1000+n)))
							pts := genPoints(rng, n, dim, kind)
							x, err := New(dim, k)
							if err != nil {
								t.Fatal(err)
							}
							appendChunked(x, pts, rng, ch.sizes)
							checkIndex(t, x, pts, k)
						})
					}
				}
			}
		}
	}
}

// TestBruteForceTieOrder checks the reference itself against a sort by
// (distance, index), on point sets full of ties.
func TestBruteForceTieOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, kind := range []int{kindGrid, kindDup, kindOffsetGrid} {
		pts := genPoints(rng, 60, 2, kind)
		for _, k := range []int{1, 3, 59, 100} {
			got := BruteForce(pts, k)
			for i := range pts {
				var want []int
				for j := range pts {
					if j != i {
						want = append(want, j)
					}
				}
				slices.SortStableFunc(want, func(a, b int) int {
					return cmp.Compare(sqDist(pts[i], pts[a]), sqDist(pts[i], pts[b]))
				})
				want = want[:min(k, len(want))]
				if !slices.Equal(got[i], want) {
					t.Fatalf("%s k=%d: BruteForce list %d = %v, want %v", kindNames[kind], k, i, got[i], want)
				}
			}
		}
	}
}

// TestBlockedPath forces the GEMM path on every append, with tiles small
// enough that chunks straddle tile edges, on every kind of point set.
func TestBlockedPath(t *testing.T) {
	for kind := range numKinds {
		for _, dim := range []int{1, 3, 20, 100} {
			for _, tile := range []int{1, 5, 16, 256} {
				t.Run(fmt.Sprintf("%s/d=%d/tile=%d", kindNames[kind], dim, tile), func(t *testing.T) {
					rng := rand.New(rand.NewPCG(uint64(kind), uint64(dim*7+tile)))
					pts := genPoints(rng, 150, dim, kind)
					for _, k := range []int{1, 5, 10} {
						x, _ := New(dim, k)
						x.blockMin, x.tile = 1, tile
						appendChunked(x, pts, rng, []int{1, 2, 7, 33, 100})
						checkIndex(t, x, pts, k)
					}
				})
			}
		}
	}
}

// TestFilterPrunes checks the GEMM path really is a filter on well-spread
// data: it re-evaluates only a small fraction of the pairs exactly.
func TestFilterPrunes(t *testing.T) {
	const n, dim, k = 1000, 20, 10
	rng := rand.New(rand.NewPCG(1, 2))
	pts := genPoints(rng, n, dim, kindUniform)
	x, _ := New(dim, k)
	x.Append(pts...)
	pairs := n * (n - 1) / 2
	if x.exact == 0 || x.exact > pairs/5 {
		t.Fatalf("blocked append re-evaluated %d of %d pairs", x.exact, pairs)
	}
	// A second block must only be compared against, not recompute, the first.
	more := genPoints(rng, 200, dim, kindUniform)
	prev := x.exact
	x.Append(more...)
	if got, limit := x.exact-prev, 200*(n+200)/5; got > limit {
		t.Fatalf("second block re-evaluated %d pairs, want ≤ %d", got, limit)
	}
	checkIndex(t, x, append(pts, more...), k)
}

// TestExtremeValues covers tiny, huge, infinite and NaN coordinates, where
// the GEMM values underflow, overflow or are NaN; NaN distances count as +Inf.
func TestExtremeValues(t *testing.T) {
	vals := []float64{0, 1e-320, -1e-320, 1e-160, 1e155, -1e155, 1e300, math.Inf(1), math.NaN()}
	rng := rand.New(rand.NewPCG(3, 4))
	for _, blocked := range []bool{false, true} {
		pts := make([][]float64, 80)
		for i := range pts {
			pts[i] = []float64{vals[rng.IntN(len(vals))], vals[rng.IntN(len(vals))]}
		}
		x, _ := New(2, 4)
		if blocked {
			x.blockMin, x.tile = 1, 8
		}
		appendChunked(x, pts, rng, []int{1, 9, 30})
		checkIndex(t, x, pts, 4)
		for i := range pts {
			for _, d := range x.Distances(i) {
				if math.IsNaN(d) {
					t.Fatalf("NaN distance in list %d", i)
				}
			}
		}
	}
}

func TestEdgeCases(t *testing.T) {
	for _, c := range []struct{ dim, k int }{{0, 1}, {-1, 1}, {1, 0}, {3, -2}} {
		if x, err := New(c.dim, c.k); err == nil || x != nil {
			t.Errorf("New(%d, %d) = %v, %v; want an error", c.dim, c.k, x, err)
		}
	}
	x, err := New(2, 3)
	if err != nil {
		t.Fatal(err)
	}
	if x.Len() != 0 || x.Dim() != 2 || x.K() != 3 {
		t.Fatalf("empty index: Len %d Dim %d K %d", x.Len(), x.Dim(), x.K())
	}
	x.Append()
	if x.Len() != 0 {
		t.Fatalf("Append() changed Len to %d", x.Len())
	}
	pts := [][]float64{{0, 0}}
	x.Append(pts[0])
	checkIndex(t, x, pts, 3) // n=1: empty list
	pts = append(pts, []float64{1, 0})
	x.Append(pts[1])
	checkIndex(t, x, pts, 3) // n=2: each other, k > n−1
	pts = append(pts, []float64{0, 1}, []float64{1, 1})
	x.Append(pts[2:]...)
	checkIndex(t, x, pts, 3) // n=4: k = n−1, with ties
	if got := x.Neighbors(0); !slices.Equal(got, []int{1, 2, 3}) {
		t.Fatalf("Neighbors(0) = %v, want [1 2 3] (ties to the lower index)", got)
	}

	// The caller's slices are copied.
	p := []float64{5, 5}
	x.Append(p)
	p[0] = -1
	if x.Point(4)[0] != 5 {
		t.Fatal("Append kept the caller's slice")
	}

	for _, n := range []int{0, 1, 2} {
		if got := BruteForce(make([][]float64, n), 3); len(got) != n {
			t.Fatalf("BruteForce of %d points gave %d lists", n, len(got))
		}
	}
	if got := BruteForce([][]float64{{0}, {1}}, 0); len(got) != 2 || len(got[0]) != 0 {
		t.Fatalf("BruteForce with k=0 = %v", got)
	}
}

func TestAppendWrongDimensionPanics(t *testing.T) {
	x, _ := New(2, 1)
	x.Append([]float64{0, 0})
	defer func() {
		if recover() == nil {
			t.Fatal("no panic on a point of the wrong dimension")
		}
		if x.Len() != 1 {
			t.Fatalf("Len = %d after the panic, want the index unchanged", x.Len())
		}
	}()
	x.Append([]float64{1, 1}, []float64{1, 2, 3})
}

// FuzzAppend decodes bytes into a small point set (coordinates on a coarse
// grid, optionally offset by 1e6, so ties and cancellation are common) and a
// chunking, and compares both append paths with BruteForce.
func FuzzAppend(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 1, 2, 3, 4})
	f.Add([]byte{3, 4, 1, 0x85, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 200, 7, 9, 9, 9, 9})
	f.Add([]byte{1, 9, 0x42, 3, 255, 0, 128, 127, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 4 {
			return
		}
		dim := 1 + int(data[0]%4)
		k := 1 + int(data[1]%7)
		offset := 0.0
		if data[2]&1 != 0 {
			offset = 1e6
		}
		scale := [4]float64{1, 0.25, 1e-3, 37}[data[2]>>1&3]
		tile := 1 + int(data[3]%9)
		chunkSeed := data[3] >> 4
		var pts [][]float64
		for b := data[4:]; len(b) >= dim && len(pts) < 96; b = b[dim:] {
			p := make([]float64, dim)
			for t := range p {
				p[t] = offset + scale*float64(int8(b[t])%8)
			}
			pts = append(pts, p)
		}
		direct, _ := New(dim, k)
		blocked, _ := New(dim, k)
		blocked.blockMin, blocked.tile = 1, tile
		for rest, c := pts, int(chunkSeed); len(rest) > 0; c++ {
			m := min(1+c*c%23, len(rest))
			direct.Append(rest[:m]...)
			blocked.Append(rest[:m]...)
			rest = rest[m:]
		}
		checkIndex(t, direct, pts, k)
		checkIndex(t, blocked, pts, k)
	})
}

func benchPoints(n, dim int) [][]float64 {
	rng := rand.New(rand.NewPCG(7, uint64(n*dim)))
	return genPoints(rng, n, dim, kindUniform)
}

var benchSizes = []struct{ n, dim int }{{1000, 20}, {10000, 20}, {1000, 3600}}

// BenchmarkAppendBulk builds the lists of n points with one Append.
func BenchmarkAppendBulk(b *testing.B) {
	for _, s := range benchSizes {
		b.Run(fmt.Sprintf("n=%d/d=%d", s.n, s.dim), func(b *testing.B) {
			pts := benchPoints(s.n, s.dim)
			for b.Loop() {
				x, _ := New(s.dim, 10)
				x.Append(pts...)
			}
		})
	}
}

// BenchmarkAppendOne appends one point to an index of n=10000, d=20. The
// index is restored from a copy, off the clock, after every 100 appends,
// so n stays within 1% of 10000 whatever b.N.
func BenchmarkAppendOne(b *testing.B) {
	const n, dim, grow = 10000, 20, 100
	base, _ := New(dim, 10)
	base.Append(benchPoints(n, dim)...)
	x := base.clone()
	extra := benchPoints(grow, dim)
	i := 0
	for b.Loop() {
		if i == grow {
			b.StopTimer()
			x, i = base.clone(), 0
			b.StartTimer()
		}
		x.Append(extra[i])
		i++
	}
	if x.Len() > n+grow {
		b.Fatalf("index grew to %d points", x.Len())
	}
}

// clone is a deep copy of x.
func (x *Index) clone() *Index {
	c := *x
	c.pts, c.norms = slices.Clone(x.pts), slices.Clone(x.norms)
	c.lists, c.dists = make([][]int, len(x.lists)), make([][]float64, len(x.dists))
	for i := range x.lists {
		c.lists[i], c.dists[i] = slices.Clone(x.lists[i]), slices.Clone(x.dists[i])
	}
	return &c
}

// BenchmarkBruteForce is the O(n²d) reference at the sizes of
// BenchmarkAppendBulk, for the speed-up ratio.
func BenchmarkBruteForce(b *testing.B) {
	for _, s := range benchSizes {
		b.Run(fmt.Sprintf("n=%d/d=%d", s.n, s.dim), func(b *testing.B) {
			pts := benchPoints(s.n, s.dim)
			for b.Loop() {
				BruteForce(pts, 10)
			}
		})
	}
}
