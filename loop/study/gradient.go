// Package study measures surrogate gradients against a twin's exact ones.
//
// The gradient study is the first claim insitu can check without running an
// optimizer: a surrogate trained with the GradPIE-kNN loss should give a
// vector-Jacobian product closer to the true one than the same network
// trained with MAE on the same data. For each setting the study draws one
// training set, trains the base model and one locality-aware model per k from
// the same init with the same optimizer and epochs, under each swept pair of
// the surrogate's input and output scalings, and compares their input VJPs
// with the twin's exact VJP on held-out points and random cotangents.
package study

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/insitu-lab/insitu"
	"github.com/insitu-lab/insitu/surrogate"
)

// Setting is one problem size of the study: the black box parameters that
// differ from the study's base parameters, and the training-set size.
type Setting struct {
	Name     string         `mapstructure:"name" yaml:"name" doc:"the setting's name in the table"`
	Points   int            `mapstructure:"points" yaml:"points" doc:"training points of its dataset"`
	BlackBox map[string]any `mapstructure:"blackbox" yaml:"blackbox" doc:"keys overriding the base black box's"`
}

// GradientConfig holds every knob of the gradient study.
type GradientConfig struct {
	BlackBox  map[string]any `mapstructure:"blackbox" yaml:"blackbox" doc:"the base black box (its kind and keys); each setting overrides keys of it"`
	Settings  []Setting      `mapstructure:"settings" yaml:"settings" doc:"the settings studied: one dataset and one row of the table each"`
	Hidden    []int          `mapstructure:"hidden" yaml:"hidden" doc:"widths of the surrogates' hidden layers"`
	LayerNorm bool           `mapstructure:"layer_norm" yaml:"layer_norm" doc:"layer normalization after each hidden layer"`
	Epochs    int            `mapstructure:"epochs" yaml:"epochs" doc:"training epochs of each surrogate"`
	Batch     int            `mapstructure:"batch" yaml:"batch" doc:"minibatch size"`
	LR        float64        `mapstructure:"lr" yaml:"lr" doc:"Adam learning rate"`
	Norm      string         `mapstructure:"norm" yaml:"norm" doc:"norm of the GradPIE pair loss: l1 or l2"`
	// Share builds GradPIE minibatches from neighbourhoods (see
	// surrogate.TrainConfig.Share).
	Share bool  `mapstructure:"share" yaml:"share" doc:"GradPIE minibatches from neighbourhoods"`
	Ks    []int `mapstructure:"ks" yaml:"ks" doc:"neighbour counts k of the GradPIE models trained"`
	// Scalings swept: every model is trained under each input × output
	// scaling pair (a single value in YAML is a list of one).
	InputScaling  []surrogate.InputScaling  `mapstructure:"input_scaling" yaml:"input_scaling" doc:"input scalings swept (a single value is a list of one)"`
	OutputScaling []surrogate.OutputScaling `mapstructure:"output_scaling" yaml:"output_scaling" doc:"output scalings swept"`
	// Precision of every network: float64 (the default) or float32.
	Precision  surrogate.Precision `mapstructure:"precision" yaml:"precision" doc:"the networks' floating-point type: float64 (the default) or float32"`
	TestPoints int                 `mapstructure:"test_points" yaml:"test_points" doc:"random points where gradients are compared with the exact one"`
	Seed       uint64              `mapstructure:"seed" yaml:"seed" doc:"draws datasets, test points and initializations"`
	Workers    int                 `mapstructure:"workers" yaml:"workers" doc:"models trained at once; 0: GOMAXPROCS"`

	File string `mapstructure:"-" yaml:"-"` // config file the settings came from, named in errors
}

// DefaultGradientConfig returns the CNON study (its default horizon 5) at
// N = 10 with 1000 points and N = 20 with 2000 points, under the surrogate
// package's default scalings. Only the kind is a default of the blackbox
// section, so a file naming another differentiable twin does not inherit
// CNON's keys.
func DefaultGradientConfig() GradientConfig {
	return GradientConfig{
		BlackBox: map[string]any{"kind": "cnon"},
		Settings: []Setting{
			{Name: "N=10", Points: 1000, BlackBox: map[string]any{"n": 10}},
			{Name: "N=20", Points: 2000, BlackBox: map[string]any{"n": 20}},
		},
		Hidden:        []int{256, 256},
		Epochs:        100,
		Batch:         256,
		LR:            1e-3,
		Norm:          "l1",
		Ks:            []int{1, 2, 3, 5, 10, 20},
		InputScaling:  []surrogate.InputScaling{surrogate.DefaultInputScaling},
		OutputScaling: []surrogate.OutputScaling{surrogate.DefaultOutputScaling},
		Precision:     surrogate.Float64,
		TestPoints:    500,
		Seed:          1,
	}
}

// Validate reports every problem found, each naming its key.
func (c GradientConfig) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if k, _ := c.BlackBox["kind"].(string); k == "" {
		bad("blackbox.kind", "missing")
	}
	if len(c.Settings) == 0 {
		bad("settings", "at least one setting is needed")
	}
	for i, s := range c.Settings {
		if s.Points < 2 {
			bad(fmt.Sprintf("settings[%d].points", i), "must be ≥ 2, got %d", s.Points)
		}
		if _, ok := s.BlackBox["kind"]; ok {
			bad(fmt.Sprintf("settings[%d].blackbox.kind", i), "set the kind once, in blackbox.kind")
		}
	}
	if len(c.Hidden) == 0 {
		bad("hidden", "at least one hidden layer is needed")
	}
	for i, h := range c.Hidden {
		if h < 1 {
			bad(fmt.Sprintf("hidden[%d]", i), "width must be ≥ 1, got %d", h)
		}
	}
	if c.Epochs < 1 {
		bad("epochs", "must be ≥ 1, got %d", c.Epochs)
	}
	if c.Batch < 1 {
		bad("batch", "must be ≥ 1, got %d", c.Batch)
	}
	if !(c.LR > 0) || math.IsInf(c.LR, 0) {
		bad("lr", "must be a positive number, got %v", c.LR)
	}
	if c.Norm != "l1" && c.Norm != "l2" {
		bad("norm", "must be l1 or l2, got %q", c.Norm)
	}
	if len(c.Ks) == 0 {
		bad("ks", "at least one k is needed")
	}
	for i, k := range c.Ks {
		if k < 1 {
			bad(fmt.Sprintf("ks[%d]", i), "must be ≥ 1, got %d", k)
		}
	}
	if len(c.InputScaling) == 0 {
		bad("input_scaling", "at least one scaling is needed (one of %v)", surrogate.InputScalings)
	}
	for i, s := range c.InputScaling {
		if err := s.Validate(); err != nil || s == "" {
			bad(fmt.Sprintf("input_scaling[%d]", i), "%q: want one of %v", string(s), surrogate.InputScalings)
		}
	}
	if len(c.OutputScaling) == 0 {
		bad("output_scaling", "at least one scaling is needed (one of %v)", surrogate.OutputScalings)
	}
	for i, s := range c.OutputScaling {
		if err := s.Validate(); err != nil || s == "" {
			bad(fmt.Sprintf("output_scaling[%d]", i), "%q: want one of %v", string(s), surrogate.OutputScalings)
		}
	}
	if err := c.Precision.Validate(); err != nil {
		bad("precision", "%q: want %s or %s", string(c.Precision), surrogate.Float64, surrogate.Float32)
	}
	if c.TestPoints < 1 {
		bad("test_points", "must be ≥ 1, got %d", c.TestPoints)
	}
	if c.Workers < 0 {
		bad("workers", "must be ≥ 0, got %d", c.Workers)
	}
	return errors.Join(errs...)
}

// Scaling is one input × output scaling pair of the sweep.
type Scaling struct {
	Input  surrogate.InputScaling
	Output surrogate.OutputScaling
}

// String is "input/output", e.g. "box/zscore".
func (s Scaling) String() string { return string(s.Input) + "/" + string(s.Output) }

// Scalings returns the pairs swept, input scaling outer.
func (c GradientConfig) Scalings() []Scaling {
	var out []Scaling
	for _, in := range c.InputScaling {
		for _, o := range c.OutputScaling {
			out = append(out, Scaling{in, o})
		}
	}
	return out
}

// Group is what one base model and its GradPIE models share: a setting and
// a scaling pair.
type Group struct {
	Setting string
	Scaling Scaling
}

// Row is the result for one model in one setting under one scaling pair.
type Row struct {
	Setting   string
	Scaling   Scaling
	Dim       int
	Points    int
	Loss      surrogate.LossKind
	K         int     // 0 for the base model
	RelErr    float64 // mean over test points of ‖ĝ − g‖ / ‖g‖
	RelErrSD  float64
	RelErrMed float64 // median: robust to test points where ‖g‖ is nearly 0
	Cos       float64 // mean over test points of cos(ĝ, g)
	CosSD     float64
	TrainLoss float64 // last epoch's training loss
	Seconds   float64 // training wall time
}

// Label names the model: "mae" or "gradpie k=5".
func (r Row) Label() string {
	if r.K == 0 {
		return string(r.Loss)
	}
	return fmt.Sprintf("%s k=%d", r.Loss, r.K)
}

// Group returns the row's setting and scaling pair.
func (r Row) Group() Group { return Group{r.Setting, r.Scaling} }

// Result is the whole study, rows ordered by setting, then scaling pair
// (input outer), then MAE first, then k.
type Result struct {
	Config GradientConfig
	Rows   []Row
}

// Progress reports training progress of one model.
type Progress struct {
	Setting string
	Model   string
	Epoch   int // 1-based epoch just finished
	Epochs  int
	Loss    float64
	Done    bool // the model finished training and was evaluated
}

// TotalEpochs is the number of epochs the study trains, for progress bars.
func (c GradientConfig) TotalEpochs() int {
	return len(c.Settings) * len(c.Scalings()) * (1 + len(c.Ks)) * c.Epochs
}

// RunGradient runs the study. progress may be nil; it is called from
// several goroutines, one at a time.
func RunGradient(ctx context.Context, cfg GradientConfig, progress func(Progress)) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var mu sync.Mutex
	report := func(p Progress) {
		if progress != nil {
			mu.Lock()
			progress(p)
			mu.Unlock()
		}
	}
	// Build every twin and draw every data set first: a bad setting fails
	// at once, not after the settings before it have trained for minutes.
	problems := make([]*problem, len(cfg.Settings))
	for si, s := range cfg.Settings {
		p, err := newProblem(ctx, cfg, si, s)
		if err != nil {
			return nil, fmt.Errorf("setting %s: %w", s.Name, err)
		}
		problems[si] = p
	}
	res := &Result{Config: cfg}
	for _, p := range problems {
		rows, err := p.run(ctx, cfg, report)
		if err != nil {
			return nil, fmt.Errorf("setting %s: %w", p.setting.Name, err)
		}
		res.Rows = append(res.Rows, rows...)
	}
	return res, nil
}

// problem is one setting's data: the twin, the training set, and the test
// points with their cotangents and exact VJPs.
type problem struct {
	box     insitu.BlackBox
	xs, ys  [][]float64
	testX   [][]float64
	testV   [][]float64
	exact   [][]float64
	setting Setting
	dim     int
}

// run trains the setting's models, cfg.Workers at a time.
func (p *problem) run(ctx context.Context, cfg GradientConfig, report func(Progress)) ([]Row, error) {
	type job struct {
		idx  int
		sc   Scaling
		loss surrogate.LossKind
		k    int
	}
	var jobs []job
	for _, sc := range cfg.Scalings() {
		jobs = append(jobs, job{len(jobs), sc, surrogate.LossMAE, 0})
		for _, k := range cfg.Ks {
			jobs = append(jobs, job{len(jobs), sc, surrogate.LossGradPIE, k})
		}
	}
	rows := make([]Row, len(jobs))
	workers := cfg.Workers
	if workers == 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg      sync.WaitGroup
		errOnce sync.Once
		first   error
	)
	queue := make(chan job)
	for range workers {
		wg.Go(func() {
			for j := range queue {
				row, err := p.train(ctx, cfg, j.sc, j.loss, j.k, report)
				if err != nil {
					errOnce.Do(func() { first = err; cancel() })
					continue
				}
				rows[j.idx] = row
			}
		})
	}
	for _, j := range jobs {
		select {
		case queue <- j:
		case <-ctx.Done():
		}
	}
	close(queue)
	wg.Wait()
	if first != nil {
		return nil, first
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return rows, nil
}

// newProblem builds the twin for a setting and draws its data. Each setting
// has its own streams derived from the study seed, so adding a setting does
// not change the others.
func newProblem(ctx context.Context, cfg GradientConfig, si int, s Setting) (*problem, error) {
	params := maps.Clone(cfg.BlackBox)
	kind, _ := params["kind"].(string)
	delete(params, "kind")
	maps.Copy(params, s.BlackBox)
	if _, ok := params["seed"]; !ok {
		params["seed"] = cfg.Seed
	}
	box, err := insitu.New(ctx, insitu.Params{Kind: kind, Values: params, File: cfg.File, Prefix: "blackbox"})
	if err != nil {
		return nil, err
	}
	diff, ok := box.(insitu.Differentiable)
	if !ok {
		return nil, fmt.Errorf("black box %q has no exact gradient (not insitu.Differentiable): the study needs one", kind)
	}
	space := box.Spec().In
	rng := rand.New(rand.NewPCG(cfg.Seed, uint64(si)+1))
	p := &problem{box: box, setting: s, dim: space.Dim()}
	p.xs = uniform(rng, space, s.Points)
	if p.ys, err = insitu.QueryBatch(ctx, box, p.xs); err != nil {
		return nil, err
	}
	p.testX = uniform(rng, space, cfg.TestPoints)
	m := len(box.Spec().Out)
	p.testV = make([][]float64, cfg.TestPoints)
	p.exact = make([][]float64, cfg.TestPoints)
	for i, x := range p.testX {
		v := make([]float64, m)
		for j := range v {
			v[j] = rng.NormFloat64()
		}
		p.testV[i] = v
		if p.exact[i], err = diff.VJP(ctx, x, v); err != nil {
			return nil, fmt.Errorf("exact VJP at test point %d: %w", i, err)
		}
	}
	return p, nil
}

func uniform(rng *rand.Rand, s insitu.Space, n int) [][]float64 {
	xs := make([][]float64, n)
	for i := range xs {
		x := make([]float64, s.Dim())
		for j := range x {
			x[j] = s.Lower[j] + rng.Float64()*(s.Upper[j]-s.Lower[j])
		}
		xs[i] = x
	}
	return xs
}

// train fits one model and evaluates its VJPs. Every model starts from the
// same seed: same init, same minibatch order; only the loss and the
// scalings differ.
func (p *problem) train(ctx context.Context, cfg GradientConfig, sc Scaling, loss surrogate.LossKind, k int, report func(Progress)) (Row, error) {
	spec := p.box.Spec()
	arch := surrogate.Arch{Hidden: cfg.Hidden, LayerNorm: cfg.LayerNorm, InputScaling: sc.Input, OutputScaling: sc.Output, Precision: cfg.Precision}
	model, err := surrogate.NewModel(spec.In, len(spec.Out), arch, cfg.Seed)
	if err != nil {
		return Row{}, err
	}
	tc := surrogate.TrainConfig{Loss: loss, Norm: cfg.Norm, K: max(k, 1), Batch: cfg.Batch, LR: cfg.LR, Share: cfg.Share}
	tr, err := surrogate.NewTrainer(model, tc, cfg.Seed)
	if err != nil {
		return Row{}, err
	}
	data := surrogate.NewDataset(model)
	for i := range p.xs {
		data.Append(p.xs[i], p.ys[i])
	}
	row := Row{Setting: p.setting.Name, Scaling: sc, Dim: p.dim, Points: len(p.xs), Loss: loss, K: k}
	name := row.Label()
	if len(cfg.Scalings()) > 1 {
		name = sc.String() + " " + name
	}
	start := time.Now()
	last, err := tr.Fit(ctx, data, cfg.Epochs, func(epoch int, l float64) {
		report(Progress{Setting: p.setting.Name, Model: name, Epoch: epoch + 1, Epochs: cfg.Epochs, Loss: l})
	})
	if err != nil {
		return Row{}, fmt.Errorf("training %s: %w", name, err)
	}
	row.Seconds = time.Since(start).Seconds()
	row.TrainLoss = last
	rel := make([]float64, len(p.testX))
	cos := make([]float64, len(p.testX))
	for i, x := range p.testX {
		rel[i], cos[i] = Compare(model.VJP(x, p.testV[i]), p.exact[i])
	}
	row.RelErr, row.RelErrSD = meanSD(rel)
	row.RelErrMed = median(rel)
	row.Cos, row.CosSD = meanSD(cos)
	report(Progress{Setting: p.setting.Name, Model: name, Epoch: cfg.Epochs, Epochs: cfg.Epochs, Loss: last, Done: true})
	return row, nil
}

// Compare returns the relative error ‖est − exact‖/‖exact‖ and the cosine
// similarity of an estimated gradient against the exact one. A zero exact
// gradient gives a relative error of ‖est‖ and a cosine of 0.
func Compare(est, exact []float64) (relErr, cos float64) {
	var dd, ee, gg, eg float64
	for i := range exact {
		d := est[i] - exact[i]
		dd += d * d
		ee += est[i] * est[i]
		gg += exact[i] * exact[i]
		eg += est[i] * exact[i]
	}
	if gg == 0 {
		return math.Sqrt(ee), 0
	}
	relErr = math.Sqrt(dd / gg)
	if ee == 0 {
		return relErr, 0
	}
	return relErr, eg / math.Sqrt(ee*gg)
}

// median of v; v is reordered.
func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

func meanSD(v []float64) (mean, sd float64) {
	for _, x := range v {
		mean += x
	}
	mean /= float64(len(v))
	for _, x := range v {
		sd += (x - mean) * (x - mean)
	}
	if len(v) > 1 {
		sd = math.Sqrt(sd / float64(len(v)-1))
	}
	return mean, sd
}

// Best returns, for a group, the base row and the GradPIE row with the
// lowest relative error.
func (r *Result) Best(g Group) (base, best Row, ok bool) {
	var haveBase, haveBest bool
	for _, row := range r.Rows {
		if row.Group() != g {
			continue
		}
		if row.K == 0 {
			base, haveBase = row, true
		} else if !haveBest || row.RelErr < best.RelErr {
			best, haveBest = row, true
		}
	}
	return base, best, haveBase && haveBest
}

// Groups returns the (setting, scaling) groups in study order.
func (r *Result) Groups() []Group {
	var gs []Group
	for _, row := range r.Rows {
		if !slices.Contains(gs, row.Group()) {
			gs = append(gs, row.Group())
		}
	}
	return gs
}

// groupName is the setting's name, followed by the scaling pair when the
// study sweeps more than one.
func (r *Result) groupName(g Group) string {
	if len(r.Config.Scalings()) > 1 {
		return g.Setting + " " + g.Scaling.String()
	}
	return g.Setting
}

// gradpieRows returns a group's GradPIE rows sorted by k.
func (r *Result) gradpieRows(g Group) []Row {
	var rows []Row
	for _, row := range r.Rows {
		if row.Group() == g && row.K > 0 {
			rows = append(rows, row)
		}
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].K < rows[j].K })
	return rows
}
