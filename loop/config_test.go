package loop

import (
	"context"
	"math"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/insitu-lab/insitu"
	"github.com/insitu-lab/insitu/surrogate"
)

// Every count and size has a range; a value outside it is an error naming
// the key, the value and the range.
func TestConfigLimits(t *testing.T) {
	for _, c := range []struct {
		edit func(*Config)
		want string
	}{
		{func(c *Config) { c.Iterations = 3e18 }, "iterations: 3000000000000000000: want 1 to 1000000"},
		{func(c *Config) { c.Budget = math.MaxInt }, "budget: 9223372036854775807: want 0 to 10000000"},
		{func(c *Config) { c.Init.Points = 1e12 }, "init.points: 1000000000000: want 1 to 1000000"},
		{func(c *Config) { c.TopK = 1e9; c.Init.Points = 1e6 }, "top_k: 1000000000: want 1 to 10000"},
		{func(c *Config) { c.Local.Samples = -1 }, "local.samples: -1: want 0 to 10000"},
		{func(c *Config) { c.Local.Samples = 1e9 }, "local.samples: 1000000000: want 0 to 10000"},
		{func(c *Config) { c.Patience = 1e7 }, "patience: 10000000: want 0 to 1000000"},
		{func(c *Config) { c.CheckpointEvery = -1 }, "checkpoint_every: -1: want 0 to 1000000"},
		{func(c *Config) { c.Mode, c.Offline.Points = ModeOffline, 1e9 }, "offline.points: 1000000000: want 2 to 1000000"},
		{func(c *Config) { c.Mode, c.Offline.Epochs = ModeOffline, 1e9 }, "offline.epochs: 1000000000: want 1 to 1000000"},
		{func(c *Config) { c.Surrogate.Hidden = []int{1e8, 1e8} }, "surrogate.hidden[0]: 100000000: want 1 to 65536"},
		{func(c *Config) { c.Surrogate.Hidden = make([]int, 100) }, "surrogate.hidden: 100 layers: want 1 to 64"},
		{func(c *Config) { c.Surrogate.Hidden = []int{65536, 65536} }, "has 4295229441 weights even with one input and one output: want at most 100000000"},
		{func(c *Config) { c.Surrogate.Epochs = 1e9 }, "surrogate.epochs: 1000000000: want 1 to 1000000"},
		{func(c *Config) { c.Surrogate.InitialEpochs = -1 }, "surrogate.initial_epochs: -1: want 0 to 1000000"},
		{func(c *Config) { c.Surrogate.Batch = 1e9 }, "surrogate.batch: 1000000000: want 1 to 65536"},
		{func(c *Config) { c.Surrogate.K = 1e6 }, "surrogate.k: 1000000: want 1 to 1000"},
		{func(c *Config) { c.Surrogate.Hidden, c.Surrogate.Batch, c.Surrogate.K = []int{4096, 4096}, 65536, 1000 }, "surrogate.batch: 65536 anchors × (1 + k = 1000) × 8192 hidden units × 8 bytes"},
		{func(c *Config) { c.CMAES.Population = 1e9 }, "cmaes.population: 1000000000: want 0 (default) or 2 to 10000"},
		// Each count within its limit, their product is too many queries.
		{func(c *Config) { c.Iterations, c.TopK, c.Local.Samples, c.Init.Points = 1e6, 100, 1000, 1000 }, "budget: 0 means N0 + T·K·(1+M) = 1000 + 1000000·100·(1+1000) = 100100001000 queries, more than 10000000"},
	} {
		cfg := DefaultConfig()
		c.edit(&cfg)
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %v\nlacks %q", err, c.want)
		}
	}
	// The limits leave room for large runs.
	cfg := DefaultConfig()
	cfg.Iterations, cfg.TopK, cfg.Local.Samples, cfg.Init.Points = 10000, 10, 10, 10000
	cfg.Surrogate.Hidden = []int{1000, 1000, 1000, 1000, 500}
	if err := cfg.Validate(); err != nil {
		t.Errorf("a large run refused: %v", err)
	}
}

// The budget arithmetic saturates instead of wrapping to a negative budget
// (which ran no query and reported success).
func TestEffectiveBudgetDoesNotOverflow(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Iterations = 3e18
	if b := cfg.EffectiveBudget(); b != math.MaxInt {
		t.Errorf("EffectiveBudget with 3e18 iterations = %d, want math.MaxInt", b)
	}
	cfg.TopK, cfg.Local.Samples = math.MaxInt, math.MaxInt
	if q := cfg.QueriesPerIteration(); q != math.MaxInt {
		t.Errorf("QueriesPerIteration = %d, want math.MaxInt", q)
	}
	for _, c := range []struct{ a, b, want int }{
		{3, 4, 12}, {-3, 4, -12}, {math.MaxInt, 2, math.MaxInt}, {math.MinInt, 2, math.MinInt}, {math.MinInt, -1, math.MaxInt}, {0, math.MaxInt, 0},
	} {
		if got := mulSat(c.a, c.b); got != c.want {
			t.Errorf("mulSat(%d, %d) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
	if addSat(math.MaxInt, 1) != math.MaxInt || addSat(math.MinInt, -1) != math.MinInt || addSat(2, -3) != -1 {
		t.Error("addSat does not saturate")
	}
}

// wideBox has many inputs; it counts its queries.
type wideBox struct {
	in      int
	queries *atomic.Int64
}

func (b wideBox) Spec() insitu.Spec {
	return insitu.Spec{Name: "wide", In: insitu.Box(b.in, 0, 1), Out: []string{"y"}}
}

func (b wideBox) Query(context.Context, []float64) ([]float64, error) {
	b.queries.Add(1)
	return []float64{0}, nil
}

// With the box's dimensions known, an initial design or a network too
// large for memory is refused.
func TestValidateDims(t *testing.T) {
	cfg := smallConfig(MethodGradPIE)
	cfg.Init.Points = 1e6
	cfg.Surrogate.Hidden = []int{20000}
	err := cfg.ValidateDims(10000, 1)
	for _, want := range []string{
		"init.points: 1000000 points × 10000 inputs × 8 bytes = 74.5 GiB: want at most 4 GiB",
		"surrogate.hidden: [20000] on 10000 inputs and 1 outputs has 200040001 weights: want at most 100000000",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v\nlacks %q", err, want)
		}
	}
	cfg.Mode, cfg.Offline.Points = ModeOffline, 1e6
	if err := cfg.ValidateDims(1<<50, 1); err == nil || !strings.Contains(err.Error(), "offline.points: 1000000 points × 1125899906842624 inputs × 8 bytes = more than 8 EiB") {
		t.Errorf("offline design: %v", err)
	}
	if err := smallConfig(MethodGradPIE).ValidateDims(10000, 1); err != nil {
		t.Errorf("a small run on a wide box refused: %v", err)
	}
}

// Run checks the sizes against its box before anything else: here the
// context is cancelled, so a run that did not would end at its first
// query with the context's error instead.
func TestRunChecksSizesAgainstTheBox(t *testing.T) {
	var n atomic.Int64
	p := Problem{Box: wideBox{in: 10000, queries: &n}, Objective: identity{i: 0, m: 1}, Direction: Minimize}
	cfg := smallConfig(MethodGradPIE)
	cfg.Surrogate.Hidden = []int{20000}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Run(ctx, cfg, p, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "surrogate.hidden: [20000] on 10000 inputs") {
		t.Errorf("huge network: %v", err)
	}
	if n.Load() != 0 {
		t.Errorf("%d queries before the refusal", n.Load())
	}
}

func TestTrainConfigLimits(t *testing.T) {
	for _, c := range []struct {
		edit func(*TrainConfig)
		want string
	}{
		{func(c *TrainConfig) { c.Epochs = 1e9 }, "epochs: 1000000000: want 1 to 1000000"},
		{func(c *TrainConfig) { c.Batch = 1e9 }, "batch: 1000000000: want 1 to 65536"},
		{func(c *TrainConfig) { c.Du = -1 }, "du: -1: want 0 to 1048576 (0: from the box)"},
		{func(c *TrainConfig) { c.EvalEvery = 1e9 }, "eval_every: 1000000000: want 1 to 1000000"},
		{func(c *TrainConfig) { c.CheckpointEvery = 1e9 }, "checkpoint_every: 1000000000: want 0 to 1000000 (0: never)"},
		{func(c *TrainConfig) { c.Surrogate.Hidden = []int{1e8, 1e8} }, "surrogate.hidden[1]: 100000000: want 1 to 65536"},
		{func(c *TrainConfig) { c.Surrogate.Batch = 0 }, "surrogate.batch: 0: want 1 to 65536"},
	} {
		cfg := DefaultTrainConfig()
		c.edit(&cfg)
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %v\nlacks %q", err, c.want)
		}
	}
	err := ValidateData(DataConfig{Kind: "nope", N: 1e12, TestFraction: 0.5})
	if err == nil || !strings.Contains(err.Error(), "data.n: 1000000000000: want 2 to 10000000") {
		t.Errorf("data.n: %v", err)
	}
}

func TestSurrogatePrecisionKey(t *testing.T) {
	c := DefaultConfig()
	if c.Surrogate.Precision != surrogate.Float32 || c.Surrogate.Arch().Precision != surrogate.Float32 {
		t.Errorf("default precision of a run %q, want float32", c.Surrogate.Precision)
	}
	if p := DefaultTrainConfig().Surrogate.Precision; p != surrogate.Float64 {
		t.Errorf("default precision of a training %q, want float64", p)
	}
	c.Surrogate.Precision = surrogate.Float64
	if err := c.Validate(); err != nil {
		t.Errorf("float64: %v", err)
	}
	for _, p := range []surrogate.Precision{"float16", "Float32"} {
		c.Surrogate.Precision = p
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "surrogate.precision") {
			t.Errorf("precision %q: error %v does not name surrogate.precision", p, err)
		}
	}
	tc := DefaultTrainConfig()
	tc.Surrogate.Precision = "double"
	if err := tc.Validate(); err == nil || !strings.Contains(err.Error(), `surrogate.precision: "double": want float64 or float32`) {
		t.Errorf("train config: %v", err)
	}
}

func TestSurrogateScalingKeys(t *testing.T) {
	c := DefaultConfig()
	if c.Surrogate.InputScaling != surrogate.InputBox || c.Surrogate.OutputScaling != surrogate.OutputZScore {
		t.Errorf("default scalings %q/%q, want box/zscore", c.Surrogate.InputScaling, c.Surrogate.OutputScaling)
	}
	c.Surrogate.InputScaling, c.Surrogate.OutputScaling = "halfbox", "minmax"
	err := c.Validate()
	for _, key := range []string{"surrogate.input_scaling", "surrogate.output_scaling"} {
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("error does not name %s: %v", key, err)
		}
	}
}
