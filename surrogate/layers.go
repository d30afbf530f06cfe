package surrogate

import (
	"math"
	"runtime"
	"sync"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/blas/gonum"

	gemmpkg "github.com/insitu-lab/insitu/surrogate/internal/gemm"
)

// The kernels below work on row-major batches (rows × width). They are
// separate functions, not methods, so each layer can be checked against
// finite differences on its own.

const lnEps = 1e-5

// parMinElems is the pass size (in elements) below which elementwise work
// stays on the calling goroutine: spawning costs about a microsecond, a GELU
// element a few ns.
const parMinElems = 1 << 13

// gemvParMinElems is the matrix size above which a single-row product is
// split across goroutines: GEMV streams the matrix once and is bound by
// memory bandwidth, which one core does not saturate.
const gemvParMinElems = 1 << 17

// parallel reports whether a pass over rows×width elements is worth
// splitting. Kernels test it before building the closure for parallelRows,
// so the serial path does not allocate.
func parallel(rows, width int) bool {
	return rows > 1 && rows*width >= parMinElems && runtime.GOMAXPROCS(0) > 1
}

// parallelRows splits [0, rows) into one contiguous chunk per processor.
// Callers compute each output element independently of the chunking, so
// results never depend on the number of processors.
func parallelRows(rows int, fn func(r0, r1 int)) {
	chunks := min(runtime.GOMAXPROCS(0), rows)
	var wg sync.WaitGroup
	for c := range chunks {
		r0, r1 := c*rows/chunks, (c+1)*rows/chunks
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(r0, r1)
		}()
	}
	wg.Wait()
}

// gemm computes C = alpha·op(A)·op(B) + beta·C on row-major slices. A is
// m×k (or k×m when tA is Trans), B is k×n (or n×k), C is m×n. A single row
// is a GEMV. Other products go to the BLAS installed with blas64.Use or
// blas32.Use when it is not gonum's own (OpenBLAS under the openblas build
// tag), else to the package's packed kernels (internal/gemm), which are
// several times faster than gonum's pure-Go GEMM on every shape the
// network uses, transposed operands included.
func gemm[T Float](tA, tB blas.Transpose, m, n, k int, alpha T, a, b []T, beta T, c []T) {
	if m == 1 && tA == blas.NoTrans {
		// A single row is a GEMV; a blocked GEMM would pack B for one row.
		gemvRow(tB, n, k, alpha, a, b, beta, c)
		return
	}
	ar, ac := m, k
	if tA != blas.NoTrans {
		ar, ac = k, m
	}
	br, bc := k, n
	if tB != blas.NoTrans {
		br, bc = n, k
	}
	switch a := any(a).(type) {
	case []float64:
		if _, pure := blas64.Implementation().(gonum.Implementation); !pure {
			blas64.Gemm(tA, tB, float64(alpha),
				blas64.General{Rows: ar, Cols: ac, Data: a, Stride: max(ac, 1)},
				blas64.General{Rows: br, Cols: bc, Data: any(b).([]float64), Stride: max(bc, 1)},
				float64(beta),
				blas64.General{Rows: m, Cols: n, Data: any(c).([]float64), Stride: max(n, 1)})
			return
		}
	case []float32:
		if _, pure := blas32.Implementation().(gonum.Implementation); !pure {
			blas32.Gemm(tA, tB, float32(alpha),
				blas32.General{Rows: ar, Cols: ac, Data: a, Stride: max(ac, 1)},
				blas32.General{Rows: br, Cols: bc, Data: any(b).([]float32), Stride: max(bc, 1)},
				float32(beta),
				blas32.General{Rows: m, Cols: n, Data: any(c).([]float32), Stride: max(n, 1)})
			return
		}
	}
	gemmpkg.Gemm(tA != blas.NoTrans, tB != blas.NoTrans, m, n, k, alpha, a, max(ac, 1), b, max(bc, 1), beta, c, max(n, 1))
}

// gemvRow computes the row c = alpha·a·op(B) + beta·c, a of length k, c of
// length n, B k×n (NoTrans) or n×k (Trans). Large products are split over
// disjoint ranges of c; each element is still one reduction over the same
// data in the same order, so with gonum's kernels the split does not change
// the result.
func gemvRow[T Float](tB blas.Transpose, n, k int, alpha T, a, b []T, beta T, c []T) {
	if n < 2 || n*k < gemvParMinElems || runtime.GOMAXPROCS(0) < 2 {
		gemvPart(tB, n, k, alpha, a, b, beta, c, 0, n)
		return
	}
	parallelRows(n, func(j0, j1 int) { gemvPart(tB, n, k, alpha, a, b, beta, c, j0, j1) })
}

// gemvPart computes elements j0..j1 of gemvRow's c.
func gemvPart[T Float](tB blas.Transpose, n, k int, alpha T, a, b []T, beta T, c []T, j0, j1 int) {
	switch a := any(a).(type) {
	case []float64:
		b, c := any(b).([]float64), any(c).([]float64)
		x, y := blas64.Vector{N: k, Data: a, Inc: 1}, blas64.Vector{N: j1 - j0, Data: c[j0:j1], Inc: 1}
		if tB == blas.NoTrans { // c = Bᵀ·a over columns j0..j1 of B
			blas64.Gemv(blas.Trans, float64(alpha), blas64.General{Rows: k, Cols: j1 - j0, Data: b[j0:], Stride: max(n, 1)}, x, float64(beta), y)
		} else { // c = B·a over rows j0..j1 of B
			blas64.Gemv(blas.NoTrans, float64(alpha), blas64.General{Rows: j1 - j0, Cols: k, Data: b[j0*k:], Stride: max(k, 1)}, x, float64(beta), y)
		}
	case []float32:
		b, c := any(b).([]float32), any(c).([]float32)
		x, y := blas32.Vector{N: k, Data: a, Inc: 1}, blas32.Vector{N: j1 - j0, Data: c[j0:j1], Inc: 1}
		if tB == blas.NoTrans {
			blas32.Gemv(blas.Trans, float32(alpha), blas32.General{Rows: k, Cols: j1 - j0, Data: b[j0:], Stride: max(n, 1)}, x, float32(beta), y)
		} else {
			blas32.Gemv(blas.NoTrans, float32(alpha), blas32.General{Rows: j1 - j0, Cols: k, Data: b[j0*k:], Stride: max(k, 1)}, x, float32(beta), y)
		}
	}
}

// linearForward computes z = x·W + b for a rows×in batch x, W in×out.
func linearForward[T Float](x []T, rows, in, out int, w, b, z []T) {
	for r := range rows {
		copy(z[r*out:r*out+out], b)
	}
	gemm(blas.NoTrans, blas.NoTrans, rows, out, in, 1, x, w, 1, z)
}

// linearBackward accumulates gW += xᵀ·dz and gb += Σ_rows dz when gw is not
// nil (with set, overwrites them instead), and writes dx = dz·Wᵀ when dx is
// not nil.
func linearBackward[T Float](x, dz []T, rows, in, out int, w, gw, gb, dx []T, set bool) {
	if gw != nil {
		beta := T(1)
		if set {
			beta = 0
			clear(gb)
		}
		for r := range rows {
			row := dz[r*out : r*out+out]
			for j, v := range row {
				gb[j] += v
			}
		}
		if rows == 1 {
			// An outer product: x is already a column.
			gemm(blas.NoTrans, blas.NoTrans, in, out, 1, 1, x, dz, beta, gw)
		} else {
			gemm(blas.Trans, blas.NoTrans, in, out, rows, 1, x, dz, beta, gw)
		}
	}
	if dx != nil {
		gemm(blas.NoTrans, blas.Trans, rows, in, out, 1, dz, w, 0, dx)
	}
}

// geluForward writes a = h·Φ(h) (exact erf form, Φ from geluTable) and,
// when dact is not nil, the derivative Φ(h) + h·φ(h), so the backward pass
// needs no erf. a may alias h.
func geluForward[T Float](h, a, dact []T, rows, width int) {
	if !parallel(rows, width) {
		geluRange(h, a, dact, 0, rows*width)
		return
	}
	parallelRows(rows, func(r0, r1 int) { geluRange(h, a, dact, r0*width, r1*width) })
}

// GELU evaluates Φ and φ from a table instead of math.Erf and math.Exp,
// which were the hottest calls after GEMM. The table covers [−geluL, geluL]
// with step 1/geluInvH; each interval holds the cubic Hermite interpolants
// of Φ and φ. Both are Hermite data known exactly at the nodes (Φ' = φ,
// φ' = −xφ), so the error is at most h⁴/384·max|f⁗|:
// max|Φ⁗| = max|(x³−3x)φ| ≈ 0.5506 gives 8.6e-11 and
// max|φ⁗| = max|(x⁴−6x²+3)φ| = 3φ(0) gives 1.9e-10 at h = 1/64.
// The dense comparison in gelu_test.go measures 8.5e-11 (Φ) and 1.9e-10 (φ).
// Beyond ±8.5, 1−Φ and φ are below 1e-16 and are taken as 0.
const (
	geluL    = 8.5
	geluInvH = 64 // a power of two: (x+L)·invH is exact past the addition
	geluN    = int(2 * geluL * geluInvH)

	// geluMaxErr bounds the absolute error of Φ and of φ (tested).
	geluMaxErr = 2e-10
)

// geluCoef is one interval: Φ ≈ c[0] + t·(c[1] + t·(c[2] + t·c[3])) and
// φ ≈ c[4] + t·(…c[7]) for t ∈ [0, 1) across the interval. Eight float64s
// are one cache line, so an element touches one line.
type geluCoef [8]float64

var geluTable = sync.OnceValue(func() *[geluN]geluCoef {
	const h = 1.0 / geluInvH
	t := new([geluN]geluCoef)
	cdf := func(x float64) float64 { return 0.5 * math.Erfc(-x*math.Sqrt2/2) }
	pdf := func(x float64) float64 { return math.Exp(-0.5*x*x) / math.Sqrt(2*math.Pi) }
	// hermite returns the monomial coefficients in t of the cubic with
	// values p0, p1 and derivatives d0, d1 (per unit x) at the two ends.
	hermite := func(c []float64, p0, p1, d0, d1 float64) {
		m0, m1 := d0*h, d1*h
		c[0] = p0
		c[1] = m0
		c[2] = 3*(p1-p0) - 2*m0 - m1
		c[3] = 2*(p0-p1) + m0 + m1
	}
	for k := range geluN {
		x0 := float64(k)*h - geluL
		x1 := float64(k+1)*h - geluL
		c0, c1 := cdf(x0), cdf(x1)
		f0, f1 := pdf(x0), pdf(x1)
		hermite(t[k][0:4], c0, c1, f0, f1)
		hermite(t[k][4:8], f0, f1, -x0*f0, -x1*f1)
	}
	return t
})

// geluPhi returns Φ(x) and φ(x) from the table for x inside it; ok is false
// for x outside [−geluL, geluL) and for NaN. geluRange repeats its body
// because it is too large to inline.
func geluPhi(tab *[geluN]geluCoef, x float64) (cdf, pdf float64, ok bool) {
	u := (x + geluL) * geluInvH
	if !(u >= 0 && u < float64(geluN)) {
		return 0, 0, false
	}
	k := int(u)
	t := u - float64(k)
	c := &tab[k]
	cdf = c[0] + t*(c[1]+t*(c[2]+t*c[3]))
	pdf = c[4] + t*(c[5]+t*(c[6]+t*c[7]))
	return cdf, pdf, true
}

// geluTail is GELU and its derivative outside the table: x below it gives
// 0 and 0 (also for −Inf, where x·Φ would be NaN), x above it gives x and
// 1, and NaN stays NaN.
func geluTail(x float64) (a, d float64) {
	switch {
	case x < 0:
		return 0, 0
	case x > 0:
		return x, 1
	}
	return x, x // NaN
}

func geluRange[T Float](h, a, dact []T, lo, hi int) {
	tab := geluTable()
	if dact == nil {
		for i, hv := range h[lo:hi] {
			v := float64(hv)
			u := (v + geluL) * geluInvH
			if !(u >= 0 && u < float64(geluN)) {
				av, _ := geluTail(v)
				a[lo+i] = T(av)
				continue
			}
			k := int(u)
			t := u - float64(k)
			c := &tab[k]
			a[lo+i] = T(v * (c[0] + t*(c[1]+t*(c[2]+t*c[3]))))
		}
		return
	}
	for i, hv := range h[lo:hi] {
		v := float64(hv)
		u := (v + geluL) * geluInvH
		if !(u >= 0 && u < float64(geluN)) {
			av, dv := geluTail(v)
			a[lo+i], dact[lo+i] = T(av), T(dv)
			continue
		}
		k := int(u)
		t := u - float64(k)
		c := &tab[k]
		cdf := c[0] + t*(c[1]+t*(c[2]+t*c[3]))
		pdf := c[4] + t*(c[5]+t*(c[6]+t*c[7]))
		dact[lo+i] = T(cdf + v*pdf)
		a[lo+i] = T(v * cdf)
	}
}

// geluBackward writes dh = da ⊙ dact. dh may alias da.
func geluBackward[T Float](da, dact, dh []T, rows, width int) {
	// One multiply per element: memory bound, not worth goroutines.
	for i, d := range dact[:rows*width] {
		dh[i] = da[i] * d
	}
}

// layerNormForward normalizes each row of z over its features and writes
// xhat = (z − μ)/σ, rstd = 1/σ per row, and h = γ⊙xhat + β. h may alias z.
// σ² is the biased variance plus lnEps; the statistics are summed in
// float64 in two passes, so large offsets do not cancel.
func layerNormForward[T Float](z []T, rows, width int, gamma, beta, xhat, rstd, h []T) {
	if !parallel(rows, width) {
		layerNormForwardRows(z, width, gamma, beta, xhat, rstd, h, 0, rows, false, nil)
		return
	}
	parallelRows(rows, func(r0, r1 int) { layerNormForwardRows(z, width, gamma, beta, xhat, rstd, h, r0, r1, false, nil) })
}

// layerNormGELUForward is layerNormForward followed by geluForward, in one
// pass over each row: z is overwritten with GELU(γ⊙xhat + β), and dact, if
// not nil, receives the GELU derivative. Each element is computed exactly
// as by the two passes.
func layerNormGELUForward[T Float](z []T, rows, width int, gamma, beta, xhat, rstd, dact []T) {
	if !parallel(rows, width) {
		layerNormForwardRows(z, width, gamma, beta, xhat, rstd, z, 0, rows, true, dact)
		return
	}
	parallelRows(rows, func(r0, r1 int) { layerNormForwardRows(z, width, gamma, beta, xhat, rstd, z, r0, r1, true, dact) })
}

func layerNormForwardRows[T Float](z []T, width int, gamma, beta, xhat, rstd, h []T, r0, r1 int, gelu bool, dact []T) {
	inv := 1 / float64(width)
	for r := r0; r < r1; r++ {
		zr := z[r*width : r*width+width]
		var mu float64
		for _, v := range zr {
			mu += float64(v)
		}
		mu *= inv
		var vr float64
		for _, v := range zr {
			d := float64(v) - mu
			vr += d * d
		}
		rs := 1 / math.Sqrt(vr*inv+lnEps)
		rstd[r] = T(rs)
		xr := xhat[r*width : r*width+width]
		hr := h[r*width : r*width+width]
		rsT, muT := T(rs), T(mu)
		for j, v := range zr {
			xn := (v - muT) * rsT
			xr[j] = xn
			hr[j] = gamma[j]*xn + beta[j]
		}
		if gelu {
			var dr []T
			if dact != nil {
				dr = dact[r*width : r*width+width]
			}
			geluRange(hr, hr, dr, 0, width)
		}
	}
}

// layerNormParamGrads accumulates dγ += Σ_rows dh⊙xhat and dβ += Σ_rows dh.
// Its goroutines split the columns, so every sum runs over the rows in
// order whatever their number.
func layerNormParamGrads[T Float](dh, xhat []T, rows, width int, dgamma, dbeta []T) {
	if !parallel(rows, width) || width < 64 {
		layerNormParamGradCols(dh, xhat, rows, width, dgamma, dbeta, 0, width)
		return
	}
	parallelRows(width, func(j0, j1 int) { layerNormParamGradCols(dh, xhat, rows, width, dgamma, dbeta, j0, j1) })
}

func layerNormParamGradCols[T Float](dh, xhat []T, rows, width int, dgamma, dbeta []T, j0, j1 int) {
	dg, db := dgamma[j0:j1], dbeta[j0:j1]
	for r := range rows {
		dr := dh[r*width+j0 : r*width+j1]
		xr := xhat[r*width+j0 : r*width+j1]
		for j, d := range dr {
			dg[j] += d * xr[j]
			db[j] += d
		}
	}
}

// layerNormBackward writes dz from dh: with g = γ⊙dh,
// dz = rstd·(g − mean(g) − xhat·mean(g⊙xhat)). dz may alias dh.
func layerNormBackward[T Float](dh, xhat, rstd, gamma []T, rows, width int, dz []T) {
	if !parallel(rows, width) {
		layerNormBackwardRows(dh, xhat, rstd, gamma, width, dz, 0, rows)
		return
	}
	parallelRows(rows, func(r0, r1 int) { layerNormBackwardRows(dh, xhat, rstd, gamma, width, dz, r0, r1) })
}

// layerNormGELUBackward is the backward pass of layerNormGELUForward, in
// place: d holds dL/d(GELU output) and receives dL/dz. When dgamma is not
// nil the LayerNorm parameter gradients are accumulated too.
func layerNormGELUBackward[T Float](d, dact, xhat, rstd, gamma []T, rows, width int, dgamma, dbeta []T) {
	geluBackwardPar(d, dact, rows, width)
	if dgamma != nil {
		layerNormParamGrads(d, xhat, rows, width, dgamma, dbeta)
	}
	layerNormBackward(d, xhat, rstd, gamma, rows, width, d)
}

// geluBackwardPar is geluBackward in place, split over rows when large.
func geluBackwardPar[T Float](d, dact []T, rows, width int) {
	if !parallel(rows, width) {
		geluBackward(d, dact, d, rows, width)
		return
	}
	parallelRows(rows, func(r0, r1 int) {
		geluBackward(d[r0*width:r1*width], dact[r0*width:r1*width], d[r0*width:r1*width], r1-r0, width)
	})
}

func layerNormBackwardRows[T Float](dh, xhat, rstd, gamma []T, width int, dz []T, r0, r1 int) {
	inv := 1 / float64(width)
	for r := r0; r < r1; r++ {
		dr := dh[r*width : r*width+width]
		xr := xhat[r*width : r*width+width]
		var sg, sgx float64
		for j, d := range dr {
			g := float64(d * gamma[j])
			sg += g
			sgx += g * float64(xr[j])
		}
		sg *= inv
		sgx *= inv
		rs, sgT, sgxT := rstd[r], T(sg), T(sgx)
		zr := dz[r*width : r*width+width]
		for j, d := range dr {
			zr[j] = rs * (d*gamma[j] - sgT - xr[j]*sgxT)
		}
	}
}
