package surrogate

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
)

// LossKind names a training loss.
type LossKind string

// Training losses.
const (
	LossMAE     LossKind = "mae"     // the paper's base model
	LossMSE     LossKind = "mse"     //
	LossGradPIE LossKind = "gradpie" // GradPIE-kNN: the locality-aware model
)

// TrainConfig configures a Trainer. Zero values of Norm, Batch and LR take
// the defaults.
type TrainConfig struct {
	Loss   LossKind
	Norm   string  // for gradpie: "l1" (default) or "l2" (squared differences, mean)
	K      int     // neighbours for gradpie (k_eff = min(K, n-1))
	Batch  int     // anchors per minibatch (default 256)
	LR     float64 // Adam learning rate (default 1e-3)
	Lambda float64 // optional weight of an added MAE term for gradpie; 0 = off
	// Share builds GradPIE minibatches from neighbourhoods: a point joins
	// as an anchor together with its neighbours, so the rows forwarded per
	// step stay near the batch size instead of (1+K) times it. Every point
	// is still an anchor once per epoch.
	Share bool
	// Rows, when > 0, caps the rows a Steps minibatch forwards (anchors and
	// their neighbours): GradPIE then takes as many anchors as fit, so a
	// step costs the same however the neighbourhoods overlap. Fit's
	// epochs ignore it.
	Rows int
}

// Defaults of TrainConfig.
const (
	DefaultBatch = 256
	DefaultLR    = 1e-3
)

// Validate reports every problem with the configuration at once.
func (c TrainConfig) Validate() error {
	var errs []error
	switch c.Loss {
	case LossMAE, LossMSE, LossGradPIE:
	default:
		errs = append(errs, fmt.Errorf("loss %q: want %q, %q or %q", c.Loss, LossMAE, LossMSE, LossGradPIE))
	}
	switch c.Norm {
	case "", NormL1, NormL2:
	default:
		errs = append(errs, fmt.Errorf("norm %q: want %q or %q", c.Norm, NormL1, NormL2))
	}
	if c.K < 0 || (c.Loss == LossGradPIE && c.K < 1) {
		errs = append(errs, fmt.Errorf("k = %d: gradpie needs at least 1 neighbour", c.K))
	}
	if c.Rows < 0 {
		errs = append(errs, fmt.Errorf("rows = %d: want ≥ 0 (0: no cap)", c.Rows))
	}
	if c.Batch < 0 {
		errs = append(errs, fmt.Errorf("batch = %d: want ≥ 1 (0 for the default %d)", c.Batch, DefaultBatch))
	}
	if !(c.LR >= 0) || math.IsInf(c.LR, 0) {
		errs = append(errs, fmt.Errorf("lr = %v: want a finite value > 0 (0 for the default %v)", c.LR, DefaultLR))
	}
	if !(c.Lambda >= 0) || math.IsInf(c.Lambda, 0) {
		errs = append(errs, fmt.Errorf("lambda = %v: want a finite value ≥ 0", c.Lambda))
	}
	if len(errs) > 0 {
		return fmt.Errorf("surrogate: training config: %w", errors.Join(errs...))
	}
	return nil
}

func (c TrainConfig) withDefaults() TrainConfig {
	if c.Norm == "" {
		c.Norm = NormL1
	}
	if c.Batch == 0 {
		c.Batch = DefaultBatch
	}
	if c.LR == 0 {
		c.LR = DefaultLR
	}
	return c
}

// trainStream is the second PCG seed word of the minibatch order.
const trainStream = 0x5eed_1417_7a11_0002

// Trainer fits a Model with Adam. It keeps the optimizer state and its
// random source between calls to Fit, so training can be continued as the
// dataset grows. Not safe for concurrent use.
type Trainer struct {
	model  *Model
	cfg    TrainConfig
	src    *rand.PCG
	rng    *rand.Rand
	adam   *Adam
	epochs int

	// Minibatch scratch, kept between calls so steady state allocates nothing.
	perm       []int
	stamp      []uint32 // stamp[i] == gen: point i is in the current minibatch
	rowOf      []int32  // its row in the minibatch
	gen        uint32
	uniq       []int
	pairs      [][2]int
	xb, yb, gb []float64
	gl         []float64
	used       []uint32 // used[i] == usedGen: point i already anchors in this epoch or minibatch
	usedGen    uint32
	batch      []int
	rowMark    []uint32 // rowMark[i] == usedGen: point i is a row of the minibatch being drawn
	nRows      int

	rows, anchors uint64 // forwarded rows and anchors over all steps

	guard precisionGuard // float32 models: neighbour differences below float32's resolution

	onBatch func(anchors, unique []int) // test hook
}

// NewTrainer validates cfg, fills in its defaults and returns a trainer for
// m whose minibatch order is drawn from a PCG seeded with seed.
func NewTrainer(m *Model, cfg TrainConfig, seed uint64) (*Trainer, error) {
	if m == nil {
		return nil, errors.New("surrogate: NewTrainer: nil model")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	src := rand.NewPCG(seed, trainStream)
	return &Trainer{model: m, cfg: cfg, src: src, rng: rand.New(src), adam: newAdam(m.mlp.NumParams(), cfg.LR, m.mlp.Precision())}, nil
}

// Model returns the model being trained.
func (t *Trainer) Model() *Model { return t.model }

// Config returns the configuration with defaults filled in.
func (t *Trainer) Config() TrainConfig { return t.cfg }

// Adam returns the optimizer (shared, not a copy).
func (t *Trainer) Adam() *Adam { return t.adam }

// Epochs returns the number of epochs completed over all calls to Fit.
func (t *Trainer) Epochs() int { return t.epochs }

// Fit trains for epochs passes over d, continuing from the current weights
// and Adam state. On the first call, if the model has no output scale yet,
// it sets it from d. After each epoch it calls progress (if not nil) with the
// epoch's index in this call and its mean minibatch loss (on standardized
// outputs), and it returns the last epoch's loss; 0 epochs returns NaN. It
// checks ctx before every minibatch and returns ctx's error, wrapped, with
// the last completed epoch's loss. A non-finite epoch loss stops training
// with an error.
func (t *Trainer) Fit(ctx context.Context, d *Dataset, epochs int, progress func(epoch int, loss float64)) (float64, error) {
	if epochs < 0 {
		return math.NaN(), fmt.Errorf("surrogate: Fit: %d epochs", epochs)
	}
	if err := t.checkData(d); err != nil {
		return math.NaN(), err
	}
	if !t.model.scaleSet {
		t.model.SetOutputScale(d.ys())
	}
	if t.cfg.Loss == LossGradPIE {
		d.useK(t.cfg.K)
		t.checkPrecision(d)
	}
	last := math.NaN()
	for e := range epochs {
		loss, err := t.epoch(ctx, d)
		if err != nil {
			return last, fmt.Errorf("surrogate: training stopped in epoch %d of %d: %w", e+1, epochs, err)
		}
		last = loss
		t.epochs++
		if progress != nil {
			progress(e, loss)
		}
		if math.IsNaN(loss) || math.IsInf(loss, 0) {
			// The weights are now useless; stop before the caller trusts them.
			return last, fmt.Errorf("surrogate: training diverged in epoch %d (loss %v)", e+1, loss)
		}
	}
	return last, nil
}

func (t *Trainer) checkData(d *Dataset) error {
	m := t.model
	switch {
	case d == nil:
		return errors.New("surrogate: nil dataset")
	case d.in != m.In() || d.out != m.mlp.out:
		return fmt.Errorf("surrogate: dataset is %d→%d, model is %d→%d", d.in, d.out, m.In(), m.mlp.out)
	case !d.enc.equal(m.enc):
		return errors.New("surrogate: dataset was made for a model with a different input space or input scaling")
	case d.bad != nil:
		return fmt.Errorf("surrogate: dataset: %w", d.bad)
	case d.n == 0:
		return errors.New("surrogate: dataset is empty")
	case t.cfg.Loss == LossGradPIE && d.n < 2:
		return errors.New("surrogate: gradpie needs at least 2 points")
	}
	return nil
}

// epoch runs one shuffled pass and returns the mean loss per anchor.
func (t *Trainer) epoch(ctx context.Context, d *Dataset) (float64, error) {
	n := d.n
	if cap(t.perm) < n {
		t.perm = make([]int, n)
	}
	t.perm = t.perm[:n]
	for i := range t.perm {
		t.perm[i] = i
	}
	t.rng.Shuffle(n, func(i, j int) { t.perm[i], t.perm[j] = t.perm[j], t.perm[i] })
	if t.sharing() {
		return t.sharedEpoch(ctx, d)
	}
	var total float64
	for start := 0; start < n; start += t.cfg.Batch {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		anchors := t.perm[start:min(start+t.cfg.Batch, n)]
		total += t.step(d, anchors) * float64(len(anchors))
	}
	return total / float64(n), nil
}

// checkPrecision runs the float32 guard over the points new since the last
// call; d's neighbour lists must be those of K.
func (t *Trainer) checkPrecision(d *Dataset) {
	if t.model.mlp.Precision() == Float32 {
		t.guard.check(d, t.model.mean, t.model.std)
	}
}

// sharing reports whether minibatches are built from neighbourhoods.
func (t *Trainer) sharing() bool { return t.cfg.Share && t.cfg.Loss == LossGradPIE }

// sharedEpoch walks the shuffled order; each point not yet an anchor in
// this epoch brings itself and those of its neighbours not yet anchors
// into the minibatch, which is stepped once it holds Batch anchors.
func (t *Trainer) sharedEpoch(ctx context.Context, d *Dataset) (float64, error) {
	t.newMarks(d.n)
	t.batch = t.batch[:0]
	var total float64
	flush := func() error {
		if len(t.batch) == 0 {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		total += t.step(d, t.batch) * float64(len(t.batch))
		t.batch = t.batch[:0]
		return nil
	}
	for _, p := range t.perm {
		if t.used[p] == t.usedGen {
			continue
		}
		t.mark(p)
		for _, j := range d.neighbors(p) {
			if t.used[j] != t.usedGen {
				t.mark(j)
			}
		}
		if len(t.batch) >= t.cfg.Batch {
			if err := flush(); err != nil {
				return 0, err
			}
		}
	}
	if err := flush(); err != nil {
		return 0, err
	}
	return total / float64(d.n), nil
}

// newMarks starts a new generation of anchor marks over n points.
func (t *Trainer) newMarks(n int) {
	if len(t.used) < n {
		t.used = append(t.used, make([]uint32, n-len(t.used))...)
	}
	t.usedGen++
	if t.usedGen == 0 {
		clear(t.used)
		t.usedGen = 1
	}
}

// mark makes point i an anchor of the current minibatch.
func (t *Trainer) mark(i int) {
	t.used[i] = t.usedGen
	t.batch = append(t.batch, i)
}

// RowsPerAnchor is the mean number of rows forwarded per anchor over every
// step so far: 1 for MAE and MSE, up to 1+K for GradPIE.
func (t *Trainer) RowsPerAnchor() float64 {
	if t.anchors == 0 {
		return math.NaN()
	}
	return float64(t.rows) / float64(t.anchors)
}

// Focus biases the anchors of Steps towards the points an online optimizer
// cares about. Half of the anchors are drawn uniformly from all points, a
// quarter from the newest Recent points and a quarter from the
// neighbourhoods (the point and its K neighbours) of the points in Near; a
// share whose set is empty falls back to uniform.
type Focus struct {
	Recent int   // how many of the newest points count as recent (0: none)
	Near   []int // indices of the points whose neighbourhoods are favoured
}

// Steps trains for n minibatch steps of at most Batch distinct anchors each
// (all points when there are no more than Batch), drawn as Focus says, and
// returns the mean minibatch loss; 0 steps returns NaN. Its cost per step
// does not grow with the dataset, unlike an epoch's. With Share, each drawn
// anchor brings its neighbours as anchors too. Errors are those of Fit.
func (t *Trainer) Steps(ctx context.Context, d *Dataset, n int, f Focus) (float64, error) {
	if n < 0 {
		return math.NaN(), fmt.Errorf("surrogate: Steps: %d steps", n)
	}
	if err := t.checkData(d); err != nil {
		return math.NaN(), err
	}
	for _, i := range f.Near {
		if i < 0 || i >= d.n {
			return math.NaN(), fmt.Errorf("surrogate: Steps: focus point %d of a dataset of %d", i, d.n)
		}
	}
	if !t.model.scaleSet {
		t.model.SetOutputScale(d.ys())
	}
	if t.cfg.Loss == LossGradPIE || len(f.Near) > 0 {
		d.useK(max(t.cfg.K, 1))
	}
	if t.cfg.Loss == LossGradPIE {
		t.checkPrecision(d)
	}
	total := 0.0
	for s := range n {
		if err := ctx.Err(); err != nil {
			return math.NaN(), fmt.Errorf("surrogate: training stopped in step %d of %d: %w", s+1, n, err)
		}
		loss := t.step(d, t.drawAnchors(d, f))
		if math.IsNaN(loss) || math.IsInf(loss, 0) {
			return loss, fmt.Errorf("surrogate: training diverged in step %d (loss %v)", s+1, loss)
		}
		total += loss
	}
	if n == 0 {
		return math.NaN(), nil
	}
	return total / float64(n), nil
}

// drawAnchors returns up to Batch distinct anchors drawn as f says: every
// point when there are no more than Batch (and no more than Rows).
func (t *Trainer) drawAnchors(d *Dataset, f Focus) []int {
	t.newMarks(d.n)
	if len(t.rowMark) < d.n {
		t.rowMark = append(t.rowMark, make([]uint32, d.n-len(t.rowMark))...)
	}
	if t.usedGen == 1 {
		clear(t.rowMark)
	}
	t.batch, t.nRows = t.batch[:0], 0
	b := t.cfg.Batch
	capped := t.cfg.Rows > 0 && t.cfg.Loss == LossGradPIE
	if d.n <= b && (!capped || d.n <= t.cfg.Rows) {
		for i := range d.n {
			t.mark(i)
		}
		return t.batch
	}
	recent := min(f.Recent, d.n)
	draw := func() int {
		u := t.rng.IntN(4)
		switch {
		case u == 2 && recent > 0:
			return d.n - recent + t.rng.IntN(recent)
		case u == 3 && len(f.Near) > 0:
			c := f.Near[t.rng.IntN(len(f.Near))]
			nb := d.neighbors(c)
			if j := t.rng.IntN(len(nb) + 1); j < len(nb) {
				return nb[j]
			}
			return c
		}
		return t.rng.IntN(d.n)
	}
	// add makes p an anchor if it is not one yet and, under a row cap,
	// if its rows still fit; it reports whether p fit.
	add := func(p int) bool {
		if t.used[p] == t.usedGen {
			return true
		}
		if capped {
			extra := 0
			if t.rowMark[p] != t.usedGen {
				extra++
			}
			for _, j := range d.neighbors(p) {
				if t.rowMark[j] != t.usedGen {
					extra++
				}
			}
			if t.nRows+extra > t.cfg.Rows {
				return false
			}
			t.nRows += extra
			t.rowMark[p] = t.usedGen
			for _, j := range d.neighbors(p) {
				t.rowMark[j] = t.usedGen
			}
		}
		t.mark(p)
		return true
	}
	// Rejected duplicates are redrawn; the attempts are bounded so a tiny
	// focus set cannot stall, and the rest is filled uniformly. Under a row
	// cap the batch is full after a run of anchors that no longer fit.
	misses := 0
	for tries := 0; len(t.batch) < b && tries < 8*b && misses < 16; tries++ {
		p := draw()
		if t.used[p] == t.usedGen {
			continue
		}
		if !add(p) {
			misses++
			continue
		}
		misses = 0
		if t.sharing() {
			for _, j := range d.neighbors(p) {
				if len(t.batch) < b {
					add(j)
				}
			}
		}
	}
	for len(t.batch) < b && !capped {
		if p := t.rng.IntN(d.n); t.used[p] != t.usedGen {
			t.mark(p)
		}
	}
	if len(t.batch) == 0 { // a cap below one neighbourhood: one anchor anyway
		t.mark(draw())
	}
	return t.batch
}

// step does one forward over the minibatch's unique points, one backward
// and one Adam update, and returns the minibatch loss.
func (t *Trainer) step(d *Dataset, anchors []int) float64 {
	mlp := t.model.mlp
	rows := t.gather(d, anchors)
	if t.onBatch != nil {
		t.onBatch(anchors, t.uniq)
	}
	t.rows += uint64(rows)
	t.anchors += uint64(len(anchors))
	pred := mlp.trainForward(t.xb[:rows*d.nin], rows)
	t.gb = growTo(t.gb, rows*d.out)
	loss := t.lossGrad(pred, t.yb[:rows*d.out], len(anchors), t.pairs, t.gb)
	mlp.net.backwardTrain(t.gb, true, false)
	mlp.net.adamStep(t.adam)
	return loss
}

// lossGrad evaluates the configured loss on standardized rows whose first
// nAnchors rows are the anchors, and writes its gradient into grad (which
// may be nil).
func (t *Trainer) lossGrad(pred, target []float64, nAnchors int, pairs [][2]int, grad []float64) float64 {
	switch t.cfg.Loss {
	case LossMAE:
		return MAE(pred, target, grad)
	case LossMSE:
		return MSE(pred, target, grad)
	}
	out := t.model.mlp.out
	loss := GradPIELoss(pred, target, out, pairs, t.cfg.Norm, grad)
	if lam := t.cfg.Lambda; lam > 0 {
		na := nAnchors * out
		var gl []float64
		if grad != nil {
			t.gl = growTo(t.gl, na)
			gl = t.gl
		}
		loss += lam * MAE(pred[:na], target[:na], gl)
		for i, g := range gl {
			grad[i] += lam * g
		}
	}
	return loss
}

// gather collects the anchors followed by their neighbours not already
// present as the minibatch's unique points, fills the normalized inputs
// and standardized targets of those rows, builds the (anchor row,
// neighbour row) pairs for GradPIE, and returns the row count.
func (t *Trainer) gather(d *Dataset, anchors []int) int {
	if len(t.stamp) < d.n {
		t.stamp = append(t.stamp, make([]uint32, d.n-len(t.stamp))...)
		t.rowOf = append(t.rowOf, make([]int32, d.n-len(t.rowOf))...)
	}
	t.gen++
	if t.gen == 0 { // wrapped: old stamps could collide
		clear(t.stamp)
		t.gen = 1
	}
	t.uniq = t.uniq[:0]
	add := func(i int) int {
		if t.stamp[i] == t.gen {
			return int(t.rowOf[i])
		}
		t.stamp[i] = t.gen
		t.rowOf[i] = int32(len(t.uniq))
		t.uniq = append(t.uniq, i)
		return len(t.uniq) - 1
	}
	for _, a := range anchors {
		add(a)
	}
	t.pairs = t.pairs[:0]
	if t.cfg.Loss == LossGradPIE {
		for r, a := range anchors {
			for _, j := range d.neighbors(a) {
				t.pairs = append(t.pairs, [2]int{r, add(j)})
			}
		}
	}
	rows := len(t.uniq)
	t.xb = growTo(t.xb, rows*d.nin)
	t.yb = growTo(t.yb, rows*d.out)
	t.fillRows(d, t.uniq, t.model.mean, t.model.std, t.xb, t.yb)
	return rows
}

// fillRows copies the normalized inputs and the outputs standardized with
// mean and std of points idx into xb and yb.
func (t *Trainer) fillRows(d *Dataset, idx []int, mean, std, xb, yb []float64) {
	in, out := d.nin, d.out
	for r, i := range idx {
		copy(xb[r*in:(r+1)*in], d.xn[i*in:(i+1)*in])
		y := d.y[i*out : (i+1)*out]
		for o, v := range y {
			yb[r*out+o] = (v - mean[o]) / std[o]
		}
	}
}

// Loss evaluates the configured loss on all of d (every point an anchor)
// without changing the model: the quantity an epoch's minibatches
// estimate, on standardized outputs. If the model has no output scale yet,
// it uses the one Fit would set, without storing it.
func (t *Trainer) Loss(d *Dataset) (float64, error) {
	if err := t.checkData(d); err != nil {
		return math.NaN(), err
	}
	m := t.model
	mean, std := m.mean, m.std
	if !m.scaleSet {
		mean, std = outputMap(m.outScale, d.ys(), d.out)
	}
	all := make([]int, d.n)
	for i := range all {
		all[i] = i
	}
	xb, yb := make([]float64, d.n*d.nin), make([]float64, d.n*d.out)
	t.fillRows(d, all, mean, std, xb, yb)
	pred := make([]float64, 0, d.n*d.out)
	const chunk = 1024 // bounds the activations held at once
	for r := 0; r < d.n; r += chunk {
		rows := min(chunk, d.n-r)
		pred = append(pred, m.mlp.Predict(xb[r*d.nin:(r+rows)*d.nin], rows)...)
	}
	var pairs [][2]int
	if t.cfg.Loss == LossGradPIE {
		d.useK(t.cfg.K)
		for i := range d.n {
			for _, j := range d.neighbors(i) {
				pairs = append(pairs, [2]int{i, j})
			}
		}
	}
	return t.lossGrad(pred, yb, d.n, pairs, nil), nil
}

const (
	trainerMagic   = "ITRN"
	trainerVersion = 1
)

// MarshalBinary encodes the trainer's mutable state (epoch count, random
// source, Adam state) for a checkpoint. The model's weights are saved
// separately with Model.Save; the configuration is the caller's.
func (t *Trainer) MarshalBinary() ([]byte, error) {
	src, err := t.src.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("surrogate: trainer random source: %w", err)
	}
	adam, err := t.adam.MarshalBinary()
	if err != nil {
		return nil, err
	}
	b := append([]byte(trainerMagic), 0, 0, 0, 0)
	binary.LittleEndian.PutUint32(b[4:], trainerVersion)
	b = binary.LittleEndian.AppendUint64(b, uint64(t.epochs))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(src)))
	b = append(b, src...)
	return append(b, adam...), nil
}

// UnmarshalBinary restores state written by MarshalBinary into a trainer
// built for the same model shape.
func (t *Trainer) UnmarshalBinary(data []byte) error {
	src, adam, epochs, err := parseTrainerState(data, t.model.mlp.NumParams(), t.model.mlp.Precision())
	if err != nil {
		return err
	}
	*t.src = *src
	t.adam = adam
	t.epochs = epochs
	return nil
}

// CheckTrainerState reports whether data is a trainer state that a trainer
// of m could be restored from: whole, for m's parameters, and finite.
func CheckTrainerState(data []byte, m *Model) error {
	_, _, _, err := parseTrainerState(data, m.mlp.NumParams(), m.mlp.Precision())
	return err
}

func parseTrainerState(data []byte, params int, prec Precision) (*rand.PCG, *Adam, int, error) {
	if len(data) < 20 || string(data[:4]) != trainerMagic {
		return nil, nil, 0, errors.New("surrogate: not a trainer state")
	}
	if v := binary.LittleEndian.Uint32(data[4:]); v != trainerVersion {
		return nil, nil, 0, fmt.Errorf("surrogate: trainer state version %d, this build reads version %d", v, trainerVersion)
	}
	epochs := binary.LittleEndian.Uint64(data[8:])
	ns := uint64(binary.LittleEndian.Uint32(data[16:]))
	if ns > uint64(len(data)-20) {
		return nil, nil, 0, errors.New("surrogate: trainer state truncated")
	}
	src := new(rand.PCG)
	if err := src.UnmarshalBinary(data[20 : 20+ns]); err != nil {
		return nil, nil, 0, fmt.Errorf("surrogate: trainer random source: %w", err)
	}
	adam := new(Adam)
	if err := adam.UnmarshalBinary(data[20+ns:]); err != nil {
		return nil, nil, 0, err
	}
	if adam.Len() != params {
		return nil, nil, 0, fmt.Errorf("surrogate: trainer state is for %d parameters, the model has %d", adam.Len(), params)
	}
	if adam.Precision() != prec {
		return nil, nil, 0, fmt.Errorf("surrogate: trainer state is for a %s model, the model is %s", adam.Precision(), prec)
	}
	if epochs > math.MaxInt32 {
		return nil, nil, 0, fmt.Errorf("surrogate: trainer state has %d epochs", epochs)
	}
	return src, adam, int(epochs), nil
}
