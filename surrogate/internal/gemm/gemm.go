// Package gemm multiplies dense row-major matrices in Go:
// C = alpha·op(A)·op(B) + beta·C, in float64 or float32.
//
// It is the surrogate's matrix product when no native BLAS is installed.
// gonum's pure-Go Dgemm streams rows through SSE2 AXPY and dot kernels and
// reaches about 8 GFLOP/s per core on the surrogate's shapes; this package
// follows the GotoBLAS/BLIS layout instead. The operands are packed into
// cache-sized blocks (B in kc×nc blocks cut into nr-wide panels, A in mc×kc
// blocks cut into mr-tall slivers; the transposes are absorbed by the
// packing), and a register-blocked micro-kernel accumulates one mr×nr tile
// of C in registers over a whole kc block. On amd64 the micro-kernels are
// short assembly loops of AVX-512 or AVX2 fused multiply-adds, chosen at
// start-up from the CPU's features; elsewhere, and on CPUs without AVX2 and
// FMA, they are Go. Every kernel is tested against a naive triple loop and
// against gonum. Large products are split over GOMAXPROCS goroutines by
// blocks of C, each with its own packing buffers.
//
// Results differ from gonum's and OpenBLAS's in the last bits: the sums run
// in another order, with fused multiply-adds. They do not depend on the
// number of goroutines: every element of C is one reduction over k in the
// same order, whichever goroutine computes it.
package gemm

import (
	"fmt"
	"runtime"
	"sync"
)

// Float is the element type of a product.
type Float interface{ float32 | float64 }

// kernel is a micro-kernel: c[i·ldc+j] += Σ_p a[p·mr+i]·b[p·nr+j] for the
// mr×nr tile at c, over k packed steps (a: k×mr, b: k×nr), k ≥ 0; without
// add it stores the sums, and does not read C.
type kernel[T Float] struct {
	name   string
	mr, nr int
	kc, mc int // block sizes: kc (depth) × nr panels fit the L1, mc×kc of A the L2
	fn     func(k int, a, b, c *T, ldc int, add bool)
}

// nc bounds the packed B block (kc×nc); the L3 holds it. Multiples of every nr.
const nc = 4096

// ParMin is the work, m·n·k multiply-adds, from which a product is split
// over goroutines: below it, starting them costs more than they save.
const ParMin = 1 << 17

// smallMax is the work below which a product skips packing: a plain loop
// is faster for the tiny products of narrow layers.
const smallMax = 1 << 12

// Gemm computes C = alpha·op(A)·op(B) + beta·C for row-major matrices: op(A)
// is m×k (A is m×k with row stride lda, or k×m when transA), op(B) is k×n
// (B is k×n with stride ldb, or n×k when transB), C is m×n with stride ldc.
// As in BLAS, beta = 0 overwrites C without reading it. It panics on sizes
// that do not fit the slices.
func Gemm[T Float](transA, transB bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	check(transA, transB, m, n, k, len(a), lda, len(b), ldb, len(c), ldc)
	if m == 0 || n == 0 {
		return
	}
	packed := k > 0 && alpha != 0 && m*n*k >= smallMax
	if beta == 0 && packed {
		// The first block of k stores its sums: no pass to clear C, and C
		// is not read.
		mul(best[T](), runtime.GOMAXPROCS(0), true, transA, transB, m, n, k, alpha, a, lda, b, ldb, c, ldc)
		return
	}
	if beta != 1 {
		for i := range m {
			row := c[i*ldc : i*ldc+n]
			if beta == 0 {
				clear(row)
				continue
			}
			for j := range row {
				row[j] *= beta
			}
		}
	}
	if k == 0 || alpha == 0 {
		return
	}
	if !packed {
		naive(transA, transB, m, n, k, alpha, a, lda, b, ldb, c, ldc)
		return
	}
	mul(best[T](), runtime.GOMAXPROCS(0), false, transA, transB, m, n, k, alpha, a, lda, b, ldb, c, ldc)
}

// mul adds alpha·op(A)·op(B) to C (or, with overwrite, stores it in C) with
// kern's packed blocks, on up to workers goroutines. m, n, k > 0 and
// alpha ≠ 0.
func mul[T Float](kern kernel[T], workers int, overwrite, transA, transB bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, c []T, ldc int) {
	p := product[T]{transA: transA, transB: transB, overwrite: overwrite, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb, c: c, ldc: ldc, kern: kern}
	if workers < 2 || float64(m)*float64(n)*float64(k) < ParMin {
		p.run(0, m, 0, n)
		return
	}
	// Split the longer side of C into one part per goroutine, in whole
	// tiles; each part packs its own share of that operand and all of the
	// other.
	var wg sync.WaitGroup
	if n >= m {
		parts := min(workers, (n+kern.nr-1)/kern.nr)
		for w := range parts {
			j0, j1 := split(n, kern.nr, parts, w)
			wg.Go(func() { p.run(0, m, j0, j1) })
		}
	} else {
		parts := min(workers, (m+kern.mr-1)/kern.mr)
		for w := range parts {
			i0, i1 := split(m, kern.mr, parts, w)
			wg.Go(func() { p.run(i0, i1, 0, n) })
		}
	}
	wg.Wait()
}

// split returns part w of parts of [0, n) in multiples of unit.
func split(n, unit, parts, w int) (lo, hi int) {
	tiles := (n + unit - 1) / unit
	lo = min(n, tiles*w/parts*unit)
	hi = min(n, tiles*(w+1)/parts*unit)
	return lo, hi
}

func check(transA, transB bool, m, n, k, la, lda, lb, ldb, lc, ldc int) {
	if m < 0 || n < 0 || k < 0 {
		panic(fmt.Sprintf("gemm: negative size %d×%d×%d", m, n, k))
	}
	ar, ac := m, k
	if transA {
		ar, ac = k, m
	}
	br, bc := k, n
	if transB {
		br, bc = n, k
	}
	need := func(what string, rows, cols, ld, have int) {
		if ld < max(cols, 1) {
			panic(fmt.Sprintf("gemm: %s has %d columns, stride %d", what, cols, ld))
		}
		if rows > 0 && cols > 0 && have < (rows-1)*ld+cols {
			panic(fmt.Sprintf("gemm: %s is %d×%d with stride %d, slice has %d values", what, rows, cols, ld, have))
		}
	}
	need("A", ar, ac, lda, la)
	need("B", br, bc, ldb, lb)
	need("C", m, n, ldc, lc)
}

// naive is the plain i-p-j loop, for products too small to pack.
func naive[T Float](transA, transB bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, c []T, ldc int) {
	for i := range m {
		ci := c[i*ldc : i*ldc+n]
		for p := range k {
			var av T
			if transA {
				av = a[p*lda+i]
			} else {
				av = a[i*lda+p]
			}
			av *= alpha
			if av == 0 {
				continue
			}
			if transB {
				for j := range ci {
					ci[j] += av * b[j*ldb+p]
				}
			} else {
				bp := b[p*ldb : p*ldb+n]
				for j, bv := range bp {
					ci[j] += av * bv
				}
			}
		}
	}
}

// product is one call's operands, shared by its goroutines.
type product[T Float] struct {
	transA, transB bool
	overwrite      bool // the first block of k stores into C instead of adding
	k              int
	alpha          T
	a              []T
	lda            int
	b              []T
	ldb            int
	c              []T
	ldc            int
	kern           kernel[T]
}

// buffers are one goroutine's packing space.
type buffers[T Float] struct {
	a, b, tile []T
}

// The buffers of finished products are kept for the next ones, up to
// maxFree per element type. Unlike a sync.Pool's, they survive garbage
// collections: a training step would otherwise allocate megabytes of
// packing space again after every collection.
const maxFree = 8

var free struct {
	sync.Mutex
	f64 []*buffers[float64]
	f32 []*buffers[float32]
}

// freeList returns the list of T's buffers; free must be locked.
func freeList[T Float]() *[]*buffers[T] {
	if l, ok := any(&free.f32).(*[]*buffers[T]); ok {
		return l
	}
	return any(&free.f64).(*[]*buffers[T])
}

// getBuffers returns buffers for kern's blocks with B panels up to nb
// columns wide.
func getBuffers[T Float](kern kernel[T], nb int) *buffers[T] {
	na, nbuf, nt := kern.mc*kern.kc, kern.kc*(min(nc, nb)+kern.nr), kern.mr*kern.nr
	free.Lock()
	l := freeList[T]()
	var v *buffers[T]
	if n := len(*l); n > 0 {
		v = (*l)[n-1]
		*l = (*l)[:n-1]
	}
	free.Unlock()
	if v == nil {
		v = new(buffers[T])
	}
	v.a, v.b, v.tile = growTo(v.a, na), growTo(v.b, nbuf), growTo(v.tile, nt)
	return v
}

func putBuffers[T Float](v *buffers[T]) {
	free.Lock()
	if l := freeList[T](); len(*l) < maxFree {
		*l = append(*l, v)
	}
	free.Unlock()
}

// growTo returns s with length n, reusing its storage when it is big enough.
func growTo[T Float](s []T, n int) []T {
	if cap(s) >= n {
		return s[:n]
	}
	return make([]T, n)
}

// run computes rows i0..i1 and columns j0..j1 of C on the calling
// goroutine. C is already scaled by beta, or is overwritten.
func (p *product[T]) run(i0, i1, j0, j1 int) {
	kern := p.kern
	buf := getBuffers(kern, j1-j0)
	defer putBuffers(buf)
	mr, nr := kern.mr, kern.nr
	for jc := j0; jc < j1; jc += nc {
		nb := min(nc, j1-jc)
		for pc := 0; pc < p.k; pc += kern.kc {
			kb := min(kern.kc, p.k-pc)
			add := pc > 0 || !p.overwrite
			p.packB(buf.b, pc, jc, kb, nb, nr)
			for ic := i0; ic < i1; ic += kern.mc {
				mb := min(kern.mc, i1-ic)
				p.packA(buf.a, ic, pc, mb, kb, mr)
				for jr := 0; jr < nb; jr += nr {
					bp := &buf.b[jr*kb]
					nv := min(nr, nb-jr)
					for ir := 0; ir < mb; ir += mr {
						ap := &buf.a[ir*kb]
						mv := min(mr, mb-ir)
						c0 := (ic+ir)*p.ldc + jc + jr
						if mv == mr && nv == nr {
							kern.fn(kb, ap, bp, &p.c[c0], p.ldc, add)
							continue
						}
						// An edge tile: the kernel writes a full tile,
						// so it works on scratch and the valid part is
						// added (or copied).
						t := buf.tile
						kern.fn(kb, ap, bp, &t[0], nr, false)
						for i := range mv {
							ci := p.c[c0+i*p.ldc : c0+i*p.ldc+nv]
							ti := t[i*nr : i*nr+nv]
							if !add {
								copy(ci, ti)
								continue
							}
							for j, v := range ti {
								ci[j] += v
							}
						}
					}
				}
			}
		}
	}
}

// packA copies alpha·op(A)[ic:ic+mb, pc:pc+kb] into dst as slivers of mr
// rows, each stored k-major (dst[s·mr·kb + p·mr + i]); rows past mb are 0.
func (p *product[T]) packA(dst []T, ic, pc, mb, kb, mr int) {
	alpha := p.alpha
	for s := 0; s < mb; s += mr {
		d := dst[s*kb : (s+mr)*kb]
		rows := min(mr, mb-s)
		if rows < mr {
			clear(d)
		}
		if p.transA { // A is k×m: row p of A holds op(A)[:, p]
			for q := range kb {
				src := p.a[(pc+q)*p.lda+ic+s : (pc+q)*p.lda+ic+s+rows]
				dq := d[q*mr : q*mr+rows]
				if alpha == 1 {
					copy(dq, src)
					continue
				}
				for i, v := range src {
					dq[i] = alpha * v
				}
			}
			continue
		}
		for i := range rows {
			src := p.a[(ic+s+i)*p.lda+pc : (ic+s+i)*p.lda+pc+kb]
			for q, v := range src {
				d[q*mr+i] = alpha * v
			}
		}
	}
}

// packB copies op(B)[pc:pc+kb, jc:jc+nb] into dst as panels of nr columns,
// each stored k-major (dst[t·nr·kb + p·nr + j]); columns past nb are 0.
func (p *product[T]) packB(dst []T, pc, jc, kb, nb, nr int) {
	for t := 0; t < nb; t += nr {
		d := dst[t*kb : (t+nr)*kb]
		cols := min(nr, nb-t)
		if cols < nr {
			clear(d)
		}
		if p.transB { // B is n×k: row j of B holds op(B)[:, j]
			for j := range cols {
				src := p.b[(jc+t+j)*p.ldb+pc : (jc+t+j)*p.ldb+pc+kb]
				for q, v := range src {
					d[q*nr+j] = v
				}
			}
			continue
		}
		for q := range kb {
			copy(d[q*nr:q*nr+cols], p.b[(pc+q)*p.ldb+jc+t:(pc+q)*p.ldb+jc+t+cols])
		}
	}
}
