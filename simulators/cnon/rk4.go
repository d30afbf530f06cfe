package cnon

import (
	"math"
	"math/rand/v2"
	"sync"
)

// Integrator advances the network's equations of motion
//
//	q̇ = p,  ṗ = M·sin(a·q) + e,  p(0) = 0,
//
// with classic RK4 over a fixed horizon, and runs their discrete adjoint.
// The cnon twin drives it with its seeded drive e; the pnn-cnon twin with
// trainable drives, and it asks the adjoint for the drive gradient too. It
// is safe for concurrent use: every integration runs on its own Work.
type Integrator struct {
	n, steps int
	h, a     float64
	m        []float64 // N×N row-major, symmetric
	pool     sync.Pool // *Work
}

// newIntegrator integrates with M = m (symmetric, not copied), a = 1+η and
// steps RK4 steps over horizon.
func newIntegrator(m []float64, n, steps int, horizon, a float64) *Integrator {
	g := &Integrator{n: n, steps: steps, h: horizon / float64(steps), a: a, m: m}
	g.pool.New = func() any { return newWork(n) }
	return g
}

// Work is the state and scratch of one integration. Set Q (q(0)) and E
// (the drive), then Integrate or Forward; Q then holds q(T). Get one from
// Integrator.Get and give it back with Put.
type Work struct {
	Q, P     []float64 // state, advanced in place
	E        []float64 // drive
	qs, ps   []float64 // current stage point
	k        []float64 // acceleration at the stage point
	s        []float64 // sin(a·qs)
	accQ     []float64 // Σ w_i·(stage velocity), then adjoint accumulators
	accP     []float64 // Σ w_i·(stage acceleration)
	tape     []float64 // VJP: a·cos(a·q) at the 4 stage points of every step
	lq, lp   []float64 // adjoint of (q, p)
	gb, qb   []float64 // adjoint of a stage's acceleration and of its position
	pb       []float64 // adjoint of a stage's velocity
	eb       []float64 // adjoint of the drive, when asked
	pcg      *rand.PCG
	rng      *rand.Rand
	tapeStep int // 4·N: tape entries per step
}

func newWork(n int) *Work {
	buf := make([]float64, 15*n)
	next := func() []float64 {
		b := buf[:n:n]
		buf = buf[n:]
		return b
	}
	w := &Work{
		Q: next(), P: next(), E: next(), qs: next(), ps: next(), k: next(), s: next(),
		accQ: next(), accP: next(), lq: next(), lp: next(), gb: next(), qb: next(), pb: next(), eb: next(),
		tapeStep: 4 * n,
	}
	w.pcg = rand.NewPCG(0, 0)
	w.rng = rand.New(w.pcg)
	return w
}

// Get returns a Work with p(0) = 0; Q and E hold whatever the last user
// left.
func (g *Integrator) Get() *Work {
	w := g.pool.Get().(*Work)
	clear(w.P)
	return w
}

// Put gives w back.
func (g *Integrator) Put(w *Work) { g.pool.Put(w) }

// N is the number of oscillators.
func (g *Integrator) N() int { return g.n }

// Integrate advances (w.Q, w.P) over the horizon under w.E.
func (g *Integrator) Integrate(w *Work) { g.integrate(w, nil) }

// Forward integrates like Integrate and records what Adjoint needs.
func (g *Integrator) Forward(w *Work) {
	if need := g.steps * w.tapeStep; len(w.tape) < need {
		w.tape = make([]float64, need)
	}
	g.integrate(w, w.tape)
}

func (g *Integrator) integrate(w *Work, tape []float64) {
	for s := range g.steps {
		var rec []float64
		if tape != nil {
			rec = tape[s*w.tapeStep : (s+1)*w.tapeStep]
		}
		g.step(w, rec)
	}
}

// accel sets k = M·sin(a·x) + e, and with rec != nil records a·cos(a·x),
// the diagonal of ∂sin(a·x)/∂x.
func (g *Integrator) accel(w *Work, x, rec []float64) {
	a, s := g.a, w.s
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
	matVec(w.k, g.m, s, w.E)
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
func (g *Integrator) step(w *Work, rec []float64) {
	h := g.h
	h2, h6 := h/2, h/6
	q, p, qs, ps, k, aq, ap := w.Q, w.P, w.qs, w.ps, w.k, w.accQ, w.accP
	n := g.n
	stage := func(i int) []float64 {
		if rec == nil {
			return nil
		}
		return rec[i*n : (i+1)*n]
	}

	g.accel(w, q, stage(0))
	for i := range n {
		aq[i], ap[i] = p[i], k[i]
		qs[i], ps[i] = q[i]+h2*p[i], p[i]+h2*k[i]
	}
	g.accel(w, qs, stage(1))
	for i := range n {
		aq[i] += 2 * ps[i]
		ap[i] += 2 * k[i]
		qs[i], ps[i] = q[i]+h2*ps[i], p[i]+h2*k[i]
	}
	g.accel(w, qs, stage(2))
	for i := range n {
		aq[i] += 2 * ps[i]
		ap[i] += 2 * k[i]
		qs[i], ps[i] = q[i]+h*ps[i], p[i]+h*k[i]
	}
	g.accel(w, qs, stage(3))
	for i := range n {
		q[i] += h6 * (aq[i] + ps[i])
		p[i] += h6 * (ap[i] + k[i])
	}
}

// pullback sets w.qb = ∂g/∂x(stage)ᵀ·w.gb = D·Mᵀ·gb with D = diag(d), d the
// recorded a·cos(a·x) of that stage. M is symmetric, so Mᵀ·gb is M·gb.
// With drive, it adds gb to ē: ∂k/∂e = I.
func (g *Integrator) pullback(w *Work, d []float64, drive bool) {
	if drive {
		for i, gi := range w.gb {
			w.eb[i] += gi
		}
	}
	matVec(w.qb, g.m, w.gb, nil)
	for i, di := range d {
		w.qb[i] *= di
	}
}

// Adjoint runs the reverse pass over the tape of w's last Forward: starting
// from (λq, λp) = (v, 0) at T it walks the steps backwards and writes λq at
// t = 0, (∂q(T)/∂q(0))ᵀ·v, into gq, and when ge is not nil the drive's
// adjoint (∂q(T)/∂e)ᵀ·v into ge. p(0) = 0 is fixed, so λp at t = 0 is
// dropped. w's state is left as Forward left it: Adjoint may run again.
//
// Reverse of one step (bars are adjoints; λ' that of the step's output):
//
//	ḡ₄ = h/6·λp'              q̄₄ = D₄Mᵀḡ₄   p̄₄ = h/6·λq'
//	ḡ₃ = h/3·λp' + h·p̄₄       q̄₃ = D₃Mᵀḡ₃   p̄₃ = h/3·λq' + h·q̄₄
//	ḡ₂ = h/3·λp' + h/2·p̄₃     q̄₂ = D₂Mᵀḡ₂   p̄₂ = h/3·λq' + h/2·q̄₃
//	ḡ₁ = h/6·λp' + h/2·p̄₂     q̄₁ = D₁Mᵀḡ₁
//	λq = λq' + q̄₁ + q̄₂ + q̄₃ + q̄₄
//	λp = λp' + h/6·λq' + h/2·q̄₂ + p̄₂ + p̄₃ + p̄₄
func (g *Integrator) Adjoint(w *Work, v, gq, ge []float64) {
	h := g.h
	h2, h3, h6 := h/2, h/3, h/6
	n := g.n
	lq, lp, gb, qb, pb, aq, ap := w.lq, w.lp, w.gb, w.qb, w.pb, w.accQ, w.accP
	drive := ge != nil
	copy(lq, v)
	clear(lp)
	clear(w.eb)
	for s := g.steps - 1; s >= 0; s-- {
		rec := w.tape[s*w.tapeStep : (s+1)*w.tapeStep]
		// Stage 4.
		for i := range n {
			gb[i] = h6 * lp[i]
		}
		g.pullback(w, rec[3*n:4*n], drive)
		for i := range n {
			p4 := h6 * lq[i]
			pb[i] = h3*lq[i] + h*qb[i] // p̄₃
			aq[i] = qb[i]
			ap[i] = p4 + pb[i]
			gb[i] = h3*lp[i] + h*p4 // ḡ₃
		}
		// Stage 3.
		g.pullback(w, rec[2*n:3*n], drive)
		for i := range n {
			p2 := h3*lq[i] + h2*qb[i]
			aq[i] += qb[i]
			ap[i] += p2
			gb[i] = h3*lp[i] + h2*pb[i] // ḡ₂ from p̄₃
			pb[i] = p2
		}
		// Stage 2.
		g.pullback(w, rec[n:2*n], drive)
		for i := range n {
			aq[i] += qb[i]
			ap[i] += h2 * qb[i]
			gb[i] = h6*lp[i] + h2*pb[i] // ḡ₁ from p̄₂
		}
		// Stage 1 and the step's input.
		g.pullback(w, rec[:n], drive)
		for i := range n {
			lp[i] += h6*lq[i] + ap[i]
			lq[i] += aq[i] + qb[i]
		}
	}
	copy(gq, lq)
	if drive {
		copy(ge, w.eb)
	}
}
