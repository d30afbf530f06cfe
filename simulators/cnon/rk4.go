package cnon

import (
	"math"
	"math/rand/v2"
)

// work is the scratch of one integration, pooled so that a query allocates
// only its result and concurrent queries share nothing mutable.
type work struct {
	q, p     []float64 // state, advanced in place
	qs, ps   []float64 // current stage point
	k        []float64 // acceleration at the stage point
	s        []float64 // sin(a·qs)
	accQ     []float64 // Σ w_i·(stage velocity), then adjoint accumulators
	accP     []float64 // Σ w_i·(stage acceleration)
	tape     []float64 // VJP: a·cos(a·q) at the 4 stage points of every step
	lq, lp   []float64 // adjoint of (q, p)
	gb, qb   []float64 // adjoint of a stage's acceleration and of its position
	pb       []float64 // adjoint of a stage's velocity
	pcg      *rand.PCG
	rng      *rand.Rand
	tapeStep int // 4·N: tape entries per step
}

func newWork(n int) *work {
	buf := make([]float64, 13*n)
	next := func() []float64 {
		b := buf[:n:n]
		buf = buf[n:]
		return b
	}
	w := &work{
		q: next(), p: next(), qs: next(), ps: next(), k: next(), s: next(),
		accQ: next(), accP: next(), lq: next(), lp: next(), gb: next(), qb: next(), pb: next(),
		tapeStep: 4 * n,
	}
	w.pcg = rand.NewPCG(0, 0)
	w.rng = rand.New(w.pcg)
	return w
}

// integrate advances (w.q, w.p) over the horizon. With tape != nil it
// records what the adjoint needs, 4·N entries per step.
func (t *Twin) integrate(w *work, tape []float64) {
	for s := range t.cfg.Steps {
		var rec []float64
		if tape != nil {
			rec = tape[s*w.tapeStep : (s+1)*w.tapeStep]
		}
		t.step(w, rec)
	}
}

// tapeForward integrates from q(0) = x, p(0) = 0 and records the tape.
func (t *Twin) tapeForward(w *work, x []float64) {
	if need := t.cfg.Steps * w.tapeStep; len(w.tape) < need {
		w.tape = make([]float64, need)
	}
	copy(w.q, x)
	clear(w.p)
	t.integrate(w, w.tape)
}

// accel sets k = M·sin(a·x) + e, and with rec != nil records a·cos(a·x),
// the diagonal of ∂sin(a·x)/∂x.
func (t *Twin) accel(w *work, x, rec []float64) {
	a, s := t.a, w.s
	if rec == nil {
		for j, xj := range x {
			s[j] = math.Sin(a * xj)
		}
	} else {
		for j, xj := range x {
			sj, cj := math.Sincos(a * xj)
			s[j], rec[j] = sj, a*cj
		}
	}
	matVec(w.k, t.m, s, t.e)
}

// matVec sets y = A·x + b for a square row-major A. Four partial sums per
// row break the chain of dependent additions that otherwise bounds the
// loop by the adder's latency; the summation order is still fixed, so
// results stay bit-reproducible. b may be nil.
func matVec(y, a, x, b []float64) {
	n := len(x)
	for i := range y {
		row := a[i*n : (i+1)*n : (i+1)*n]
		var s0, s1, s2, s3 float64
		j := 0
		for ; j+4 <= n; j += 4 {
			s0 += row[j] * x[j]
			s1 += row[j+1] * x[j+1]
			s2 += row[j+2] * x[j+2]
			s3 += row[j+3] * x[j+3]
		}
		for ; j < n; j++ {
			s0 += row[j] * x[j]
		}
		s := (s0 + s1) + (s2 + s3)
		if b != nil {
			s += b[i]
		}
		y[i] = s
	}
}

// step is one classic RK4 step of q̇ = p, ṗ = g(q) = M·sin(aq) + e:
//
//	(q₁,p₁) = (q,p)            k_i = g(q_i)
//	(q₂,p₂) = (q,p) + h/2·(p₁,k₁)
//	(q₃,p₃) = (q,p) + h/2·(p₂,k₂)
//	(q₄,p₄) = (q,p) + h·(p₃,k₃)
//	q' = q + h/6·(p₁+2p₂+2p₃+p₄),  p' = p + h/6·(k₁+2k₂+2k₃+k₄)
//
// The adjoint below differentiates exactly these operations.
func (t *Twin) step(w *work, rec []float64) {
	h := t.h
	h2, h6 := h/2, h/6
	q, p, qs, ps, k, aq, ap := w.q, w.p, w.qs, w.ps, w.k, w.accQ, w.accP
	n := t.n
	stage := func(i int) []float64 {
		if rec == nil {
			return nil
		}
		return rec[i*n : (i+1)*n]
	}

	t.accel(w, q, stage(0))
	for i := range n {
		aq[i], ap[i] = p[i], k[i]
		qs[i], ps[i] = q[i]+h2*p[i], p[i]+h2*k[i]
	}
	t.accel(w, qs, stage(1))
	for i := range n {
		aq[i] += 2 * ps[i]
		ap[i] += 2 * k[i]
		qs[i], ps[i] = q[i]+h2*ps[i], p[i]+h2*k[i]
	}
	t.accel(w, qs, stage(2))
	for i := range n {
		aq[i] += 2 * ps[i]
		ap[i] += 2 * k[i]
		qs[i], ps[i] = q[i]+h*ps[i], p[i]+h*k[i]
	}
	t.accel(w, qs, stage(3))
	for i := range n {
		q[i] += h6 * (aq[i] + ps[i])
		p[i] += h6 * (ap[i] + k[i])
	}
}

// pullback sets w.qb = ∂g/∂x(stage)ᵀ·w.gb = D·Mᵀ·gb with D = diag(d), d the
// recorded a·cos(a·x) of that stage. M is symmetric, so Mᵀ·gb is M·gb.
func (t *Twin) pullback(w *work, d []float64) {
	matVec(w.qb, t.m, w.gb, nil)
	for i, di := range d {
		w.qb[i] *= di
	}
}

// adjoint runs the reverse pass over the tape of the last tapeForward:
// starting from (λq, λp) = (v, 0) at T it walks the steps backwards and
// writes λq at t = 0, which is J(x)ᵀ·v, into g. p(0) = 0 is fixed, so λp
// at t = 0 is dropped.
//
// Reverse of one step (bars are adjoints; λ' that of the step's output):
//
//	ḡ₄ = h/6·λp'              q̄₄ = D₄Mᵀḡ₄   p̄₄ = h/6·λq'
//	ḡ₃ = h/3·λp' + h·p̄₄       q̄₃ = D₃Mᵀḡ₃   p̄₃ = h/3·λq' + h·q̄₄
//	ḡ₂ = h/3·λp' + h/2·p̄₃     q̄₂ = D₂Mᵀḡ₂   p̄₂ = h/3·λq' + h/2·q̄₃
//	ḡ₁ = h/6·λp' + h/2·p̄₂     q̄₁ = D₁Mᵀḡ₁
//	λq = λq' + q̄₁ + q̄₂ + q̄₃ + q̄₄
//	λp = λp' + h/6·λq' + h/2·q̄₂ + p̄₂ + p̄₃ + p̄₄
func (t *Twin) adjoint(w *work, v, g []float64) {
	h := t.h
	h2, h3, h6 := h/2, h/3, h/6
	n := t.n
	lq, lp, gb, qb, pb, aq, ap := w.lq, w.lp, w.gb, w.qb, w.pb, w.accQ, w.accP
	copy(lq, v)
	clear(lp)
	for s := t.cfg.Steps - 1; s >= 0; s-- {
		rec := w.tape[s*w.tapeStep : (s+1)*w.tapeStep]
		// Stage 4.
		for i := range n {
			gb[i] = h6 * lp[i]
		}
		t.pullback(w, rec[3*n:4*n])
		for i := range n {
			p4 := h6 * lq[i]
			pb[i] = h3*lq[i] + h*qb[i] // p̄₃
			aq[i] = qb[i]
			ap[i] = p4 + pb[i]
			gb[i] = h3*lp[i] + h*p4 // ḡ₃
		}
		// Stage 3.
		t.pullback(w, rec[2*n:3*n])
		for i := range n {
			p2 := h3*lq[i] + h2*qb[i]
			aq[i] += qb[i]
			ap[i] += p2
			gb[i] = h3*lp[i] + h2*pb[i] // ḡ₂ from p̄₃
			pb[i] = p2
		}
		// Stage 2.
		t.pullback(w, rec[n:2*n])
		for i := range n {
			aq[i] += qb[i]
			ap[i] += h2 * qb[i]
			gb[i] = h6*lp[i] + h2*pb[i] // ḡ₁ from p̄₂
		}
		// Stage 1 and the step's input.
		t.pullback(w, rec[:n])
		for i := range n {
			lp[i] += h6*lq[i] + ap[i]
			lq[i] += aq[i] + qb[i]
		}
	}
	copy(g, lq)
}
