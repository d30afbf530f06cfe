package safety

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/insitu-lab/insitu"
)

func TestConfigValidate(t *testing.T) {
	if err := (Config{}).Validate(); err != nil {
		t.Fatalf("zero Config: %v", err)
	}
	cases := []struct {
		key string
		cfg Config
	}{
		{"bounds_mode", Config{BoundsMode: "squash"}},
		{"slew_mode", Config{SlewMode: "clamp"}},
		{"slew_mode", Config{SlewMode: ModeRamp}}, // ramp without max_step
		{"check_outputs", Config{CheckOutputs: "maybe"}},
		{"lower.x1", Config{Lower: map[string]float64{"x1": math.NaN()}}},
		{"upper.x1", Config{Lower: map[string]float64{"x1": 1}, Upper: map[string]float64{"x1": 0}}},
		{"max_step.x2", Config{MaxStep: PerName{"x2": 0}}},
		{"max_step.*", Config{MaxStep: All(-1)}},
		{"initial.x0", Config{Initial: map[string]float64{"x0": math.Inf(1)}}},
		{"rate", Config{Rate: new(0.0)}},
		{"burst", Config{Burst: 3}},
		{"burst", Config{Rate: new(1.0), Burst: -1}},
		{"min_interval", Config{MinInterval: -time.Second}},
		{"budget", Config{Budget: new(0)}},
		{"timeout", Config{Timeout: -1}},
		{"grace", Config{Grace: -1}},
		{"safe_state_timeout", Config{SafeStateTimeout: -1}},
		{"output_ranges.I", Config{OutputRanges: map[string]Range{"I": {Lo: 1, Hi: 0}}}},
		{"saturation.y", Config{Saturation: PerName{"y": 0}}},
		{"interlocks[0].output", Config{Interlocks: []Interlock{{Above: new(1.0)}}}},
		{"interlocks[1]", Config{Interlocks: []Interlock{{Output: "I", Above: new(1.0)}, {Output: "I"}}}},
		{"interlocks[0].below", Config{Interlocks: []Interlock{{Output: "I", Below: new(math.NaN())}}}},
	}
	for _, c := range cases {
		err := c.cfg.Validate()
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Key != c.key || !strings.Contains(err.Error(), "safety: "+c.key+": ") {
			t.Errorf("%+v: err = %v, want key %q", c.cfg, err, c.key)
		}
		if _, nerr := New(newRecorder(), c.cfg); nerr == nil {
			t.Errorf("New accepted %+v", c.cfg)
		}
	}
	// All problems at once.
	err := Config{BoundsMode: "x", Budget: new(-1)}.Validate()
	if !strings.Contains(err.Error(), "bounds_mode") || !strings.Contains(err.Error(), "budget") {
		t.Errorf("joined: %v", err)
	}
}

func TestNewNames(t *testing.T) {
	cases := []struct {
		key string
		cfg Config
	}{
		{"lower.foo", Config{Lower: map[string]float64{"foo": 0}}},
		{"upper.x9", Config{Upper: map[string]float64{"x9": 0}}},
		{"max_step.bar", Config{MaxStep: PerName{"bar": 1}}},
		{"initial.x7", Config{Initial: map[string]float64{"x0": 0, "x1": 0, "x2": 0, "x3": 0, "x7": 0}}},
		{"initial", Config{Initial: map[string]float64{"x0": 0}}}, // missing x1..x3
		{"initial.x0", Config{Initial: map[string]float64{"x0": 3, "x1": 0, "x2": 0, "x3": 0}}},
		{"initial.x2", Config{Lower: map[string]float64{"x2": 1}, Initial: map[string]float64{"x0": 0, "x1": 0, "x2": 0, "x3": 0}}},
		{"output_ranges.zzz", Config{OutputRanges: map[string]Range{"zzz": {Hi: 1}}}},
		{"saturation.q", Config{Saturation: PerName{"q": 1}}},
		{"interlocks[0].output", Config{Interlocks: []Interlock{{Output: "V", Above: new(1.0)}}}},
		{"lower.x1", Config{Lower: map[string]float64{"x1": 2.5}}}, // no intersection with [-2, 2]
		{"max_step.x0", Config{MaxStep: PerName{"x0": 1e-300}}},    // below float resolution
	}
	for _, c := range cases {
		_, err := New(newRecorder(), c.cfg)
		if err == nil || !strings.Contains(err.Error(), "safety: "+c.key+": ") {
			t.Errorf("%s: err = %v", c.key, err)
		}
		if cerr := Check(newRecorder().spec, c.cfg); err == nil || cerr == nil || cerr.Error() != err.Error() {
			t.Errorf("%s: Check: %v, New: %v", c.key, cerr, err)
		}
	}
	if _, err := New(newRecorder(), Config{Lower: map[string]float64{"x1": 2.5}}); err == nil || !strings.Contains(err.Error(), "coordinate x1") {
		t.Errorf("empty intersection should name the coordinate: %v", err)
	}
	if _, err := New(newRecorder(), Config{}, WithInitialState([]float64{0})); err == nil {
		t.Error("short WithInitialState accepted")
	}
	bad := newRecorder()
	bad.spec.In.Upper[1] = -3
	if _, err := New(bad, Config{}); err == nil || !strings.Contains(err.Error(), "x1") {
		t.Errorf("invalid device spec: %v", err)
	}
	// viper lower-cases keys: a unique case-insensitive match resolves.
	g, err := New(newRecorder(), Config{Interlocks: []Interlock{{Output: "i", Above: new(1.0)}}, Upper: map[string]float64{"X0": 1}})
	if err != nil {
		t.Fatalf("case-insensitive names: %v", err)
	}
	if g.Spec().In.Upper[0] != 1 {
		t.Errorf("upper.X0 not applied: %v", g.Spec().In.Upper)
	}
}

func TestSpecIsIntersection(t *testing.T) {
	rec := newRecorder()
	g := mustNew(t, rec, Config{Lower: map[string]float64{"x3": -1}, Upper: map[string]float64{"x3": 1.5}})
	sp := g.Spec()
	if sp.Name != "cnon" || sp.In.Lower[3] != -1 || sp.In.Upper[3] != 1.5 || sp.In.Upper[2] != 2 || len(sp.Out) != 2 {
		t.Errorf("spec %+v", sp)
	}
	// Bounds narrow the device's range, never widen it: one outside it is
	// an error naming both numbers, not clipped.
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{Upper: map[string]float64{"x3": 5}}, "safety: upper.x3: 5 is above the device's range [-2, 2] of x3"},
		{Config{Lower: map[string]float64{"x0": -2.5}}, "safety: lower.x0: -2.5 is below the device's range [-2, 2] of x0"},
	} {
		if _, err := New(rec, c.cfg); err == nil || err.Error() != c.want {
			t.Errorf("New: %v\nwant %s", err, c.want)
		}
	}
	if rec.spec.In.Lower[3] != -2 {
		t.Error("New modified the device's spec")
	}
	var _ insitu.BlackBox = g
	var _ insitu.SafeStater = g
	var _ insitu.Batcher = g
	if _, ok := any(g).(insitu.Differentiable); ok {
		t.Error("the guard claims a VJP of its own")
	}
}

const yamlConfig = `
bounds_mode: clamp
lower: {x0: -1}
upper: {x0: 1, x3: 0.5}
max_step: 0.25
slew_mode: ramp
rate: 20
burst: 2
min_interval: 10ms
budget: 500
timeout: 2s
check_outputs: trip
output_ranges:
  y: {lo: -10, hi: 10}
saturation: {I: 0.12}
interlocks:
  - {name: overcurrent, output: I, above: 0.1}
`

func checkDecoded(t *testing.T, c Config) {
	t.Helper()
	if c.BoundsMode != ModeClamp || c.Lower["x0"] != -1 || c.Upper["x3"] != 0.5 ||
		c.MaxStep[AnyKey] != 0.25 || c.SlewMode != ModeRamp || c.Rate == nil || *c.Rate != 20 || c.Burst != 2 ||
		c.MinInterval != 10*time.Millisecond || c.Budget == nil || *c.Budget != 500 || c.Timeout != 2*time.Second ||
		c.CheckOutputs != ModeTrip || c.OutputRanges["y"] != (Range{-10, 10}) || c.Saturation["I"] != 0.12 ||
		len(c.Interlocks) != 1 || c.Interlocks[0].Output != "I" || *c.Interlocks[0].Above != 0.1 || c.Interlocks[0].Below != nil {
		t.Errorf("decoded %+v", c)
	}
	if _, err := New(newRecorder(), c); err != nil {
		t.Errorf("New: %v", err)
	}
}

func TestDecodeYAML(t *testing.T) {
	var c Config
	if err := yaml.Unmarshal([]byte(yamlConfig), &c); err != nil {
		t.Fatal(err)
	}
	checkDecoded(t, c)
	var m Config
	if err := yaml.Unmarshal([]byte("max_step: {x1: 0.5, '*': 1}"), &m); err != nil || m.MaxStep["x1"] != 0.5 || m.MaxStep["*"] != 1 {
		t.Errorf("map max_step: %v %v", m.MaxStep, err)
	}
}

// VJP goes through the input checks and only exists when the device has
// one.
type diffRecorder struct{ *recorder }

func (d diffRecorder) VJP(_ context.Context, x, v []float64) ([]float64, error) {
	return []float64{v[0], v[0], v[0], v[0]}, nil
}

func TestDifferentiable(t *testing.T) {
	if _, ok := mustNew(t, newRecorder(), Config{}).Differentiable(); ok {
		t.Error("a device without VJP got one")
	}
	g := mustNew(t, diffRecorder{newRecorder()}, Config{Upper: map[string]float64{"x0": 1}})
	d, ok := g.Differentiable()
	if !ok {
		t.Fatal("no VJP")
	}
	ctx := context.Background()
	if got, err := d.VJP(ctx, []float64{0, 0, 0, 0}, []float64{2, 0}); err != nil || got[0] != 2 {
		t.Errorf("VJP = %v, %v", got, err)
	}
	if _, err := d.VJP(ctx, []float64{math.NaN(), 0, 0, 0}, []float64{1, 0}); !errors.Is(err, ErrNonFinite) {
		t.Errorf("NaN x: %v", err)
	}
	if _, err := d.VJP(ctx, []float64{1.5, 0, 0, 0}, []float64{1, 0}); !errors.Is(err, ErrOutOfBounds) {
		t.Errorf("x outside: %v", err)
	}
	if _, err := d.VJP(ctx, []float64{0, 0, 0, 0}, []float64{math.Inf(1), 0}); !errors.Is(err, ErrNonFinite) {
		t.Errorf("Inf cotangent: %v", err)
	}
	if c := g.Counters(); c.Attempted != 0 {
		t.Errorf("VJP counted as queries: %+v", c)
	}
	_ = g.Close(ctx)
	if _, err := d.VJP(ctx, []float64{0, 0, 0, 0}, []float64{1, 0}); !errors.Is(err, ErrClosed) {
		t.Errorf("VJP after Close: %v", err)
	}
}

func TestQueryBatch(t *testing.T) {
	rec := newRecorder()
	g := mustNew(t, rec, Config{})
	ys, err := insitu.QueryBatch(context.Background(), g, [][]float64{{0, 0, 0, 0}, {1, 0, 0, 0}, {math.NaN(), 0, 0, 0}, {0, 0, 0, 0}})
	if !errors.Is(err, ErrNonFinite) || len(ys) != 2 || len(rec.inputs()) != 2 {
		t.Errorf("ys %v, err %v, device saw %d", ys, err, len(rec.inputs()))
	}
	if c := g.Counters(); c.Attempted != 3 || c.Passed != 2 {
		t.Errorf("counters %+v", c)
	}
}

// A periodic coordinate stays periodic behind the guard unless the config
// narrows its bounds.
func TestGuardKeepsPeriodicFlags(t *testing.T) {
	rec := newRecorder()
	rec.spec.In.Lower, rec.spec.In.Upper = []float64{0, 0, 0, 0}, []float64{6, 6, 6, 6}
	rec.spec.In.Periodic = []bool{true, true, false, true}
	g := mustNew(t, rec, Config{Upper: map[string]float64{"x1": 3}})
	if p := g.Spec().In.Periodic; fmt.Sprint(p) != "[true false false true]" {
		t.Errorf("periodic behind the guard %v, want [true false false true]", p)
	}
}

// Skip reaches a Sequenced device and is a no-op for any other.
type seqRecorder struct {
	*recorder
	skipped uint64
}

func (s *seqRecorder) Skip(n uint64) { s.skipped += n }

func TestSkipReachesASequencedDevice(t *testing.T) {
	dev := &seqRecorder{recorder: newRecorder()}
	g := mustNew(t, dev, Config{})
	g.Skip(3)
	g.Skip(4)
	if dev.skipped != 7 {
		t.Errorf("device skipped %d, want 7", dev.skipped)
	}
	if c := g.Counters(); c.Attempted != 0 {
		t.Errorf("Skip counted as queries: %+v", c)
	}
	mustNew(t, newRecorder(), Config{}).Skip(5) // no Skip on the device: nothing happens
}

// Check reports, without a device, exactly what New reports for a device
// with the same Spec.
func TestCheck(t *testing.T) {
	spec := insitu.Spec{
		Name: "smu",
		In:   insitu.Space{Names: []string{"smu/voltage"}, Lower: []float64{-10}, Upper: []float64{10}},
		Out:  []string{"smu/current"},
	}
	newWith := func(cfg Config) error {
		rec := newRecorder()
		rec.spec = spec
		_, err := New(rec, cfg)
		return err
	}
	if err := Check(spec, Config{
		Upper:        map[string]float64{"smu/voltage": 5},
		MaxStep:      PerName{"smu/voltage": 0.5},
		OutputRanges: map[string]Range{"smu/current": {Lo: -1, Hi: 1}},
		Interlocks:   []Interlock{{Output: "smu/current", Above: new(0.1)}},
	}); err != nil {
		t.Errorf("a good config: %v", err)
	}
	cases := []struct {
		cfg  Config
		want string // the whole message
	}{
		{Config{MaxStep: PerName{"smu/voltge": 0.5}},
			`safety: max_step.smu/voltge: unknown coordinate "smu/voltge" (known: smu/voltage)`},
		{Config{Interlocks: []Interlock{{Output: "smu/current", Above: new(0.1)}, {Output: "smu/curent", Above: new(0.2)}}},
			`safety: interlocks[1].output: unknown output "smu/curent" (known: smu/current)`},
		{Config{OutputRanges: map[string]Range{"current": {Lo: -1, Hi: 1}}},
			`safety: output_ranges.current: unknown output "current" (known: smu/current)`},
		{Config{Lower: map[string]float64{"smu/voltage": 20}},
			`safety: lower.smu/voltage: bounds on coordinate smu/voltage do not intersect the device range [-10, 10]`},
		{Config{Upper: map[string]float64{"smu/voltage": 30}},
			`safety: upper.smu/voltage: 30 is above the device's range [-10, 10] of smu/voltage`},
		{Config{Upper: map[string]float64{"smu/voltage": -11}},
			`safety: upper.smu/voltage: bounds on coordinate smu/voltage do not intersect the device range [-10, 10]`},
		{Config{Saturation: PerName{"I": 1}},
			`safety: saturation.I: unknown output "I" (known: smu/current)`},
		{Config{Initial: map[string]float64{"smu/voltage": 12}},
			`safety: initial.smu/voltage: 12 is outside the bounds [-10, 10]`},
		{Config{Rate: new(0.0)}, // Config.Validate's checks too
			`safety: rate: must be positive and finite, got 0 (omit it for no rate limit)`},
	}
	for _, c := range cases {
		err := Check(spec, c.cfg)
		var ce *ConfigError
		if err == nil || err.Error() != c.want || !errors.As(err, &ce) {
			t.Errorf("Check: %v\n want %s", err, c.want)
		}
		if nerr := newWith(c.cfg); nerr == nil || err == nil || nerr.Error() != err.Error() {
			t.Errorf("New: %v\nCheck: %v", nerr, err)
		}
	}
	// Every problem at once, as New reports them.
	all := Config{MaxStep: PerName{"smu/voltge": 0.5}, Interlocks: []Interlock{{Output: "smu/curent", Above: new(0.1)}}}
	if err, nerr := Check(spec, all), newWith(all); err == nil || nerr == nil || err.Error() != nerr.Error() ||
		!strings.Contains(err.Error(), "max_step.smu/voltge") || !strings.Contains(err.Error(), "interlocks[0].output") {
		t.Errorf("Check: %v\nNew: %v", err, nerr)
	}
	bad := spec
	bad.Out = nil
	if err := Check(bad, Config{}); err == nil {
		t.Error("a spec without outputs passed")
	}
}
