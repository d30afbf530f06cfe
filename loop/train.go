package loop

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/insitu-lab/insitu"
	"github.com/insitu-lab/insitu/loop/journal"
	"github.com/insitu-lab/insitu/surrogate"
)

// Splitter is a physical-neural-network box whose input is [u; θ]: du data
// coordinates followed by dθ trainable parameters.
type Splitter interface {
	Split() (du, dtheta int)
}

// Idealizer is a twin that can make its counterpart without reality gap.
type Idealizer interface {
	Ideal() insitu.BlackBox
}

// TrainProblem is what Train trains: the (guarded) real box with input
// [u; θ], the number of data coordinates, and the exact VJPs and ideal twin
// the comparison methods need.
type TrainProblem struct {
	Box        insitu.BlackBox
	Du         int                   // data coordinates at the front; 0: TrainConfig.Du
	Exact      insitu.Differentiable // the real box's VJP (method exact)
	Ideal      insitu.BlackBox       // the twin without reality gap (insilico)
	IdealExact insitu.Differentiable // its VJP (insilico, pat)
}

// EpochMetrics is one epoch's record. Epoch 0 is the initial θ. Losses are
// mean softmax cross-entropies; Train* and Test* are measured on the real
// box (NaN when the epoch was not evaluated, see EvalEvery).
type EpochMetrics struct {
	Epoch     int
	Queries   int     // real-box queries so far
	TrainLoss float64 // mean minibatch loss of the epoch's forward passes (on the ideal twin for insilico); NaN for epoch 0
	TrainEval float64 // loss on the training set
	TrainAcc  float64
	TestLoss  float64
	TestAcc   float64
	Projected int // Adam steps projected back into the θ box so far
	Theta     []float64
}

// TrainProgress is reported after every epoch.
type TrainProgress struct {
	Epoch, Epochs int
	Metrics       EpochMetrics
	Replayed      int // queries served from the journal on resume
}

// TrainResult is a finished (or stopped) training.
type TrainResult struct {
	Theta      []float64 // final θ, box units
	Epochs     []EpochMetrics
	Confusion  [][]int // last test evaluation: [true class][predicted class]
	Queries    int     // real-box queries
	Replayed   int
	Remeasured int
	Retried    int // queries a device fault failed in an earlier session, tried again (resume)
	Projected  int
	// Stop is why the training ended: "epochs", "rejected: …" (the guard
	// refused a query, see RejectedError), or the error that ended it.
	Stop     string
	Restored int              // the checkpoint epoch a resumed training continued from; 0 if none
	Model    *surrogate.Model // the surrogate of the in-situ methods
}

// Random streams of Train.
const (
	saltSplit uint64 = iota + 0x7a11
	saltTrainInit
	saltTrainOrder
	saltTrainSurrogate
	saltTrainLocal
)

// noObjective scores nothing: training queries have no scalar objective
// (the journal's objective column holds 0).
type noObjective struct{}

func (noObjective) Value([]float64) float64  { return 0 }
func (noObjective) Grad([]float64) []float64 { return nil }

// Train trains θ of p.Box on data with cfg's method. Every real-box query
// (training forward passes, and the train/test evaluations, role eval) goes
// through the journaled evaluator. Journal iteration records: Iteration =
// epoch, Queries, Best = test accuracy, StepObjective = train accuracy,
// TrainLoss = mean minibatch loss. Resuming on the journal of an
// interrupted training continues from its latest checkpoint (every
// CheckpointEvery epochs: θ, its Adam state, the surrogate and its trainer)
// and replays the rest deterministically: recorded queries are served from
// the journal, never repeated.
// Cancelling ctx stops after the query in flight and returns the result so
// far with ctx's error.
func Train(ctx context.Context, cfg TrainConfig, p TrainProblem, data TrainData, j *journal.Journal, progress func(TrainProgress)) (*TrainResult, error) {
	t, err := newTrainer(cfg, p, data, j)
	if err != nil {
		return nil, err
	}
	err = t.run(ctx, progress)
	res := &TrainResult{
		Theta: t.theta(), Epochs: t.epochs, Confusion: t.confusion, Queries: t.ev.n(),
		Replayed: t.ev.replayed, Remeasured: t.ev.remeasured, Retried: t.ev.retried, Projected: t.projected, Restored: t.restored,
	}
	res.Stop, err = stopReason("epochs", err)
	if t.tr != nil {
		res.Model = t.tr.Model()
	}
	if j != nil {
		err = errors.Join(err, j.Sync(context.WithoutCancel(ctx)))
	}
	return res, err
}

type trainer struct {
	cfg        TrainConfig
	p          TrainProblem
	data       TrainData
	spec       insitu.Spec
	du         int
	lo, width  []float64    // of θ
	thetaSpace insitu.Space // θ's coordinates: which are periodic
	ev         *evaluator

	u         []float64 // θ in [0,1]^dθ
	adam      adamX
	projected int
	epochs    []EpochMetrics
	confusion [][]int

	tr       *surrogate.Trainer
	sdata    *surrogate.Dataset
	idealOK  bool
	restored int // the checkpoint epoch a resume continued from
}

func newTrainer(cfg TrainConfig, p TrainProblem, data TrainData, j *journal.Journal) (*trainer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if p.Box == nil {
		return nil, errors.New("train: no black box")
	}
	spec := p.Box.Spec()
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	du := p.Du
	if du == 0 {
		du = cfg.Du
	}
	dim := spec.In.Dim()
	if du < 1 || du >= dim {
		return nil, fmt.Errorf("du: %d data inputs: %s has %d inputs, want 1 ≤ du < %d (the rest are θ)", du, spec.Name, dim, dim)
	}
	if len(spec.Out) != data.Classes {
		return nil, fmt.Errorf("%s has %d outputs but the data have %d classes: want one score per class", spec.Name, len(spec.Out), data.Classes)
	}
	if err := data.Validate(du); err != nil {
		return nil, err
	}
	switch {
	case cfg.Method == TrainExact && p.Exact == nil:
		return nil, fmt.Errorf("method exact: %s is not Differentiable: it has no exact gradient", spec.Name)
	case cfg.Method == TrainInsilico && (p.Ideal == nil || p.IdealExact == nil):
		return nil, errors.New("method insilico: needs the ideal twin and its exact VJP")
	case cfg.Method == TrainPAT && p.IdealExact == nil:
		return nil, errors.New("method pat: needs the ideal twin's exact VJP")
	}
	if p.Ideal != nil && cfg.UsesIdeal() {
		is := p.Ideal.Spec()
		if is.In.Dim() != dim || len(is.Out) != len(spec.Out) {
			return nil, fmt.Errorf("ideal twin %s has %d inputs and %d outputs, the box %d and %d", is.Name, is.In.Dim(), len(is.Out), dim, len(spec.Out))
		}
	}
	t := &trainer{
		cfg: cfg, p: p, data: data, spec: spec, du: du,
		ev: newEvaluator(p.Box, noObjective{}, Minimize, j, math.MaxInt/2),
	}
	dt := dim - du
	t.thetaSpace = insitu.Space{Names: spec.In.Names[min(du, len(spec.In.Names)):], Lower: spec.In.Lower[du:], Upper: spec.In.Upper[du:]}
	if len(spec.In.Periodic) == dim {
		t.thetaSpace.Periodic = spec.In.Periodic[du:]
	}
	t.lo, t.width = spec.In.Lower[du:], make([]float64, dt)
	for i := range t.width {
		t.width[i] = spec.In.Upper[du+i] - t.lo[i]
	}
	t.u = make([]float64, dt)
	if len(cfg.ThetaInit) > 0 {
		if len(cfg.ThetaInit) != dt {
			return nil, fmt.Errorf("theta_init: %d values, %s has %d trainable parameters", len(cfg.ThetaInit), spec.Name, dt)
		}
		for i, v := range cfg.ThetaInit {
			if v < t.lo[i] || v > t.lo[i]+t.width[i] {
				return nil, fmt.Errorf("theta_init[%d]: %v is outside [%v, %v] (%s)", i, v, t.lo[i], t.lo[i]+t.width[i], spec.In.Name(du+i))
			}
			if t.width[i] > 0 {
				t.u[i] = (v - t.lo[i]) / t.width[i]
			}
		}
	} else {
		rng := rand.New(rand.NewPCG(cfg.Seed, saltTrainInit))
		for i := range t.u {
			t.u[i] = rng.Float64()
		}
	}
	return t, nil
}

// theta maps the normalized θ to box units.
func (t *trainer) theta() []float64 { return t.toBox(t.u) }

// toBox maps a normalized θ to box units; 1 maps to the upper bound exactly.
func (t *trainer) toBox(u []float64) []float64 {
	th := make([]float64, len(u))
	for i, v := range u {
		th[i] = t.lo[i] + v*t.width[i]
		if v == 1 {
			th[i] = t.lo[i] + t.width[i]
		}
	}
	return th
}

// inputs builds [u; θ] for every data input.
func (t *trainer) inputs(us [][]float64) [][]float64 {
	th := t.theta()
	xs := make([][]float64, len(us))
	for k, u := range us {
		xs[k] = append(append(make([]float64, 0, len(u)+len(th)), u...), th...)
	}
	return xs
}

func (t *trainer) run(ctx context.Context, progress func(TrainProgress)) error {
	report := func(m EpochMetrics) error {
		t.epochs = append(t.epochs, m)
		if t.ev.j != nil {
			if err := t.ev.j.RecordIteration(ctx, journal.Iteration{
				Iteration: m.Epoch, Queries: m.Queries, Best: m.TestAcc, StepObjective: m.TrainAcc,
				TrainLoss: m.TrainLoss, Projected: m.Projected,
			}); err != nil {
				return err
			}
		}
		if progress != nil {
			progress(TrainProgress{Epoch: m.Epoch, Epochs: t.cfg.Epochs, Metrics: m, Replayed: t.ev.replayed})
		}
		return nil
	}
	start, err := t.restore(ctx)
	if err != nil {
		return err
	}
	t.restored = start
	if start == 0 {
		t.ev.iteration = 0
		m := EpochMetrics{TrainLoss: math.NaN()}
		if err := t.evaluate(ctx, &m); err != nil {
			return err
		}
		if err := report(m); err != nil {
			return err
		}
	}
	n := t.data.Train.Len()
	for e := start + 1; e <= t.cfg.Epochs; e++ {
		t.ev.iteration = e
		order := rand.New(rand.NewPCG(t.cfg.Seed, saltTrainOrder+uint64(e)<<8)).Perm(n)
		var sum float64
		batches := 0
		for b := 0; b < n; b += t.cfg.Batch {
			idx := order[b:min(b+t.cfg.Batch, n)]
			loss, err := t.step(ctx, e, b, idx)
			if err != nil {
				return err
			}
			sum += loss
			batches++
		}
		m := EpochMetrics{Epoch: e, TrainLoss: sum / float64(batches)}
		if e%t.cfg.EvalEvery == 0 || e == t.cfg.Epochs {
			if err := t.evaluate(ctx, &m); err != nil {
				return err
			}
		} else {
			m.TrainEval, m.TrainAcc, m.TestLoss, m.TestAcc = math.NaN(), math.NaN(), math.NaN(), math.NaN()
			m.Queries, m.Projected, m.Theta = t.ev.n(), t.projected, t.theta()
		}
		if err := report(m); err != nil {
			return err
		}
		if err := t.checkpoint(ctx, e); err != nil {
			return err
		}
	}
	return nil
}

// evaluate measures the train and test sets at the current θ on the real
// box (role eval) and fills m.
func (t *trainer) evaluate(ctx context.Context, m *EpochMetrics) error {
	tr, te := t.data.Train, t.data.Test
	xs := t.inputs(append(append([][]float64{}, tr.X...), te.X...))
	idx, err := t.ev.eval(ctx, journal.RoleEval, journal.NoSlot, xs)
	if err != nil {
		return err
	}
	conf := make([][]int, t.data.Classes)
	for c := range conf {
		conf[c] = make([]int, t.data.Classes)
	}
	var lossTr, lossTe float64
	var okTr, okTe int
	for k, i := range idx {
		y := t.ev.samples[i].Y
		if k < tr.Len() {
			l, _ := crossEntropy(y, tr.Y[k], t.cfg.Scale, 1)
			lossTr += l
			if argmax(y) == tr.Y[k] {
				okTr++
			}
			continue
		}
		label := te.Y[k-tr.Len()]
		l, _ := crossEntropy(y, label, t.cfg.Scale, 1)
		lossTe += l
		pred := argmax(y)
		conf[label][pred]++
		if pred == label {
			okTe++
		}
	}
	t.confusion = conf
	m.TrainEval, m.TrainAcc = lossTr/float64(tr.Len()), float64(okTr)/float64(tr.Len())
	m.TestLoss, m.TestAcc = lossTe/float64(te.Len()), float64(okTe)/float64(te.Len())
	m.Queries, m.Projected, m.Theta = t.ev.n(), t.projected, t.theta()
	return nil
}

// step trains on one minibatch (of epoch e, starting at position b of its
// order) and returns its mean loss.
func (t *trainer) step(ctx context.Context, e, b int, batch []int) (float64, error) {
	us := make([][]float64, len(batch))
	for k, i := range batch {
		us[k] = t.data.Train.X[i]
	}
	xs := t.inputs(us)
	ys := make([][]float64, len(xs))
	if t.cfg.Method == TrainInsilico {
		for k, x := range xs {
			if err := ctx.Err(); err != nil {
				return 0, err
			}
			y, err := t.p.Ideal.Query(ctx, x)
			if err != nil {
				return 0, fmt.Errorf("ideal twin: %w", err)
			}
			ys[k] = y
		}
	} else {
		idx, err := t.ev.eval(ctx, journal.RoleStep, journal.NoSlot, xs)
		if err != nil {
			return 0, err
		}
		for k, i := range idx {
			ys[k] = t.ev.samples[i].Y
		}
	}
	if m := t.cfg.Local.Samples; m > 0 && t.cfg.UsesSurrogate() {
		if _, err := t.ev.eval(ctx, journal.RoleLocal, journal.NoSlot, t.localInputs(e, b, us, m)); err != nil {
			return 0, err
		}
	}
	if t.cfg.UsesSurrogate() {
		if err := t.fitSurrogate(ctx); err != nil {
			return 0, err
		}
	}
	B := float64(len(batch))
	g := make([]float64, len(t.u))
	var loss float64
	for k, i := range batch {
		l, v := crossEntropy(ys[k], t.data.Train.Y[i], t.cfg.Scale, B)
		loss += l
		gk, err := t.thetaVJP(ctx, xs[k], v)
		if err != nil {
			return 0, err
		}
		for d := range g {
			g[d] += gk[d] * t.width[d]
		}
	}
	next := t.adam.step(t.u, g, t.cfg.LR)
	if project(next, t.thetaSpace) {
		t.projected++
	}
	t.u = next
	return loss / B, nil
}

// localInputs returns m inputs [u; θ'] around the current θ: θ' = θ +
// σ·N(0, I) in normalized units, brought back into the box (wrapped on a
// periodic coordinate), u cycling through us. The draws depend only on
// the seed, the epoch and the minibatch, so a resumed training repeats them.
func (t *trainer) localInputs(e, b int, us [][]float64, m int) [][]float64 {
	rng := rand.New(rand.NewPCG(t.cfg.Seed, saltTrainLocal^uint64(e)<<32^uint64(b)))
	xs := make([][]float64, m)
	v := make([]float64, len(t.u))
	for k := range xs {
		for i, ui := range t.u {
			v[i] = ui + t.cfg.Local.Sigma*rng.NormFloat64()
		}
		project(v, t.thetaSpace)
		u := us[k%len(us)]
		xs[k] = append(append(make([]float64, 0, len(u)+len(v)), u...), t.toBox(v)...)
	}
	return xs
}

// thetaVJP is the backward pass of the method at x for the output
// cotangent v: the θ entries (the last dθ) of J(x)ᵀv, box units.
func (t *trainer) thetaVJP(ctx context.Context, x, v []float64) ([]float64, error) {
	var (
		g   []float64
		err error
	)
	switch t.cfg.Method {
	case TrainExact:
		g, err = t.p.Exact.VJP(ctx, x, v)
	case TrainPAT, TrainInsilico:
		g, err = t.p.IdealExact.VJP(ctx, x, v)
	default:
		g = t.tr.Model().VJP(x, v)
	}
	if err != nil {
		return nil, fmt.Errorf("%s backward: %w", t.cfg.Method, err)
	}
	if len(g) != len(x) {
		return nil, fmt.Errorf("%s backward: VJP has %d entries, the input %d", t.cfg.Method, len(g), len(x))
	}
	return g[t.du:], nil
}

// fitSurrogate adds every real-box query not yet in the surrogate's data
// and trains a few epochs (warm start); the first call builds the model.
func (t *trainer) fitSurrogate(ctx context.Context) error {
	s := t.cfg.Surrogate
	epochs := s.Epochs
	if t.tr == nil {
		seed := t.cfg.Seed ^ saltTrainSurrogate
		m, err := surrogate.NewModel(t.spec.In, len(t.spec.Out), s.Arch(), seed)
		if err != nil {
			return fmt.Errorf("surrogate: %w", err)
		}
		ys := make([][]float64, t.ev.n())
		for i, smp := range t.ev.samples {
			ys[i] = smp.Y
		}
		m.SetOutputScale(ys)
		tr, err := t.newSurrogateTrainer(m)
		if err != nil {
			return err
		}
		t.tr, t.sdata = tr, surrogate.NewDataset(m)
		epochs = max(s.InitialEpochs, s.Epochs)
	}
	fresh := t.ev.n() - t.sdata.Len()
	for n := t.sdata.Len(); n < t.ev.n(); n++ {
		t.sdata.Append(t.ev.samples[n].X, t.ev.samples[n].Y)
	}
	if s.Steps > 0 && t.tr.Epochs() > 0 {
		// After the first fit, the step budget, per new query: the newest
		// points (this θ's queries) are favoured, and the cost does not
		// grow with the data.
		_, err := t.tr.Steps(ctx, t.sdata, mulSat(s.Steps, fresh), surrogate.Focus{Recent: cmp.Or(s.Recent, s.Batch)})
		return err
	}
	_, err := t.tr.Fit(ctx, t.sdata, epochs, nil)
	return err
}

// newSurrogateTrainer trains m with the method's loss.
func (t *trainer) newSurrogateTrainer(m *surrogate.Model) (*surrogate.Trainer, error) {
	s := t.cfg.Surrogate
	loss := surrogate.LossGradPIE
	if t.cfg.Method == TrainInsituMAE {
		loss = surrogate.LossMAE
	}
	tr, err := surrogate.NewTrainer(m, surrogate.TrainConfig{
		Loss: loss, Norm: s.Norm, K: s.K, Batch: s.Batch, LR: s.LR, Lambda: s.Lambda, Share: s.Share, Rows: cmp.Or(s.Rows, s.Batch),
	}, t.cfg.Seed^saltTrainSurrogate)
	if err != nil {
		return nil, fmt.Errorf("surrogate: %w", err)
	}
	return tr, nil
}

// crossEntropy is the softmax cross-entropy of scale·scores against label,
// and its gradient with respect to scores divided by batch.
func crossEntropy(scores []float64, label int, scale, batch float64) (float64, []float64) {
	mx := math.Inf(-1)
	for _, s := range scores {
		mx = max(mx, scale*s)
	}
	p := make([]float64, len(scores))
	var z float64
	for i, s := range scores {
		p[i] = math.Exp(scale*s - mx)
		z += p[i]
	}
	loss := -(scale*scores[label] - mx - math.Log(z))
	for i := range p {
		p[i] /= z
		if i == label {
			p[i]--
		}
		p[i] *= scale / batch
	}
	return loss, p
}

// argmax is the first index of the largest score.
func argmax(y []float64) int {
	best := 0
	for i, v := range y {
		if v > y[best] {
			best = i
		}
	}
	return best
}
