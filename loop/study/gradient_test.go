package study

import (
	"bytes"
	"context"
	"encoding/csv"
	"image/png"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/insitu-lab/insitu"
	"github.com/insitu-lab/insitu/surrogate"
)

// tanhTwin is f(x) = A·tanh(B·x): smooth, nonlinear, with a closed-form VJP
// Jᵀv = Bᵀ·((1 − tanh²(Bx)) ⊙ Aᵀv), independent of any code under test.
type tanhTwin struct {
	a, b [][]float64 // a: m×h, b: h×d
	d    int
}

func newTanhTwin(d int) *tanhTwin {
	const h, m = 6, 3
	t := &tanhTwin{d: d}
	for i := range h {
		row := make([]float64, d)
		for j := range row {
			row[j] = math.Sin(float64(3*i+7*j+1)) * 1.5
		}
		t.b = append(t.b, row)
	}
	for i := range m {
		row := make([]float64, h)
		for j := range row {
			row[j] = math.Cos(float64(5*i + 2*j))
		}
		t.a = append(t.a, row)
	}
	return t
}

func (t *tanhTwin) Spec() insitu.Spec {
	return insitu.Spec{Name: "tanh", In: insitu.Box(t.d, -1, 1), Out: []string{"y0", "y1", "y2"}}
}

func (t *tanhTwin) hidden(x []float64) []float64 {
	z := make([]float64, len(t.b))
	for i, row := range t.b {
		for j, w := range row {
			z[i] += w * x[j]
		}
		z[i] = math.Tanh(z[i])
	}
	return z
}

func (t *tanhTwin) Query(_ context.Context, x []float64) ([]float64, error) {
	z := t.hidden(x)
	y := make([]float64, len(t.a))
	for i, row := range t.a {
		for j, w := range row {
			y[i] += w * z[j]
		}
	}
	return y, nil
}

func (t *tanhTwin) VJP(_ context.Context, x, v []float64) ([]float64, error) {
	z := t.hidden(x)
	g := make([]float64, t.d)
	for j := range z {
		var atv float64
		for i := range t.a {
			atv += t.a[i][j] * v[i]
		}
		s := (1 - z[j]*z[j]) * atv
		for k := range g {
			g[k] += t.b[j][k] * s
		}
	}
	return g, nil
}

// plainTwin has no exact gradient.
type plainTwin struct{ tanhTwin }

func (p *plainTwin) VJP() {}

func init() {
	insitu.Register("study-test-tanh", func(_ context.Context, p insitu.Params) (insitu.BlackBox, error) {
		var c struct {
			N    int    `mapstructure:"n"`
			Seed uint64 `mapstructure:"seed"`
		}
		if err := p.Decode(&c); err != nil {
			return nil, err
		}
		return newTanhTwin(c.N), nil
	})
	insitu.Register("study-test-plain", func(_ context.Context, p insitu.Params) (insitu.BlackBox, error) {
		return &plainTwin{*newTanhTwin(3)}, nil
	})
}

func smallConfig() GradientConfig {
	return GradientConfig{
		BlackBox: map[string]any{"kind": "study-test-tanh"},
		Settings: []Setting{
			{Name: "d=3", Points: 200, BlackBox: map[string]any{"n": 3}},
			{Name: "d=4", Points: 200, BlackBox: map[string]any{"n": 4}},
		},
		Hidden: []int{32, 32}, Epochs: 200, Batch: 32, LR: 3e-3, Norm: "l1",
		Ks: []int{1, 4}, TestPoints: 50, Seed: 7,
		InputScaling:  []surrogate.InputScaling{surrogate.DefaultInputScaling},
		OutputScaling: []surrogate.OutputScaling{surrogate.DefaultOutputScaling},
	}
}

func TestCompareClosedForm(t *testing.T) {
	g := []float64{3, 4}
	cases := []struct {
		est     []float64
		rel, co float64
	}{
		{[]float64{3, 4}, 0, 1},
		{[]float64{-3, -4}, 2, -1},
		{[]float64{6, 8}, 1, 1},
		{[]float64{-4, 3}, math.Sqrt2, 0},
		{[]float64{0, 0}, 1, 0},
	}
	for _, c := range cases {
		rel, co := Compare(c.est, g)
		if math.Abs(rel-c.rel) > 1e-15 || math.Abs(co-c.co) > 1e-15 {
			t.Errorf("Compare(%v, %v) = %v, %v; want %v, %v", c.est, g, rel, co, c.rel, c.co)
		}
	}
}

func TestTanhTwinVJPMatchesFiniteDifferences(t *testing.T) {
	// The study's reference gradient must itself be right.
	tw := newTanhTwin(4)
	x := []float64{0.3, -0.2, 0.7, -0.9}
	v := []float64{0.5, -1, 2}
	g, _ := tw.VJP(context.Background(), x, v)
	for k := range x {
		const h = 1e-6
		xp, xm := append([]float64(nil), x...), append([]float64(nil), x...)
		xp[k] += h
		xm[k] -= h
		yp, _ := tw.Query(context.Background(), xp)
		ym, _ := tw.Query(context.Background(), xm)
		var fd float64
		for i := range v {
			fd += v[i] * (yp[i] - ym[i]) / (2 * h)
		}
		if math.Abs(fd-g[k]) > 1e-8*(1+math.Abs(fd)) {
			t.Errorf("coordinate %d: VJP %v, finite difference %v", k, g[k], fd)
		}
	}
}

func TestValidateNamesKeys(t *testing.T) {
	cfg := smallConfig()
	cfg.Epochs = 0
	cfg.Ks = []int{3, 0}
	cfg.Norm = "l3"
	cfg.Settings[1].Points = 1
	cfg.Hidden = []int{8, -1}
	cfg.InputScaling = []surrogate.InputScaling{surrogate.InputBox, "half"}
	cfg.OutputScaling = nil
	err := cfg.Validate()
	if err == nil {
		t.Fatal("invalid config accepted")
	}
	for _, key := range []string{"epochs", "ks[1]", "norm", "settings[1].points", "hidden[1]", "input_scaling[1]", "output_scaling"} {
		if !strings.Contains(err.Error(), key+":") {
			t.Errorf("error does not name %s: %v", key, err)
		}
	}
}

func TestNeedsExactGradient(t *testing.T) {
	cfg := smallConfig()
	cfg.BlackBox = map[string]any{"kind": "study-test-plain"}
	cfg.Settings = []Setting{{Name: "x", Points: 10}}
	_, err := RunGradient(context.Background(), cfg, nil)
	if err == nil || !strings.Contains(err.Error(), "Differentiable") {
		t.Fatalf("want an error about the missing exact gradient, got %v", err)
	}
}

func TestRunGradientDeterministicAndLearns(t *testing.T) {
	cfg := smallConfig()
	var epochs int
	res, err := RunGradient(context.Background(), cfg, func(p Progress) {
		if !p.Done {
			epochs++
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if epochs != cfg.TotalEpochs() {
		t.Errorf("progress saw %d epochs, TotalEpochs says %d", epochs, cfg.TotalEpochs())
	}
	if got, want := len(res.Rows), len(cfg.Settings)*len(cfg.Scalings())*(1+len(cfg.Ks)); got != want {
		t.Fatalf("%d rows, want %d", got, want)
	}
	for _, r := range res.Rows {
		// A zero gradient has relative error 1 and cosine 0: a trained
		// surrogate must do clearly better on this smooth map. The median
		// is used because the mean is dominated by points where ‖g‖ ≈ 0.
		if !(r.RelErrMed < 0.5) || !(r.Cos > 0.7) {
			t.Errorf("%s %s: median relative error %.3f, cosine %.3f: the surrogate did not learn the Jacobian", r.Setting, r.Label(), r.RelErrMed, r.Cos)
		}
	}
	for _, g := range res.Groups() {
		// The study's claim on a map this smooth: fitting differences
		// between neighbours gives a better input gradient than MAE alone.
		base, best, ok := res.Best(g)
		if !ok || !(best.RelErr < base.RelErr) || !(best.Cos > base.Cos) {
			t.Errorf("%v: best GradPIE %+v does not beat MAE %+v", g, best, base)
		}
	}
	cfg.Workers = 1 // scheduling must not matter
	again, err := RunGradient(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range res.Rows {
		a, b := res.Rows[i], again.Rows[i]
		a.Seconds, b.Seconds = 0, 0
		if a != b {
			t.Errorf("row %d differs between identical runs:\n%+v\n%+v", i, a, b)
		}
	}

	var table, csvBuf, pngBuf bytes.Buffer
	if err := res.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table.String(), "gradpie k=4") || !strings.Contains(table.String(), "best GradPIE") {
		t.Errorf("table lacks model rows or summary:\n%s", table.String())
	}
	if err := res.WriteCSV(&csvBuf); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&csvBuf).ReadAll()
	if err != nil || len(recs) != 1+len(res.Rows) {
		t.Fatalf("CSV: %d records, err %v", len(recs), err)
	}
	if err := res.WritePNG(&pngBuf); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(&pngBuf)
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() < 800 || b.Dy() < 300 {
		t.Errorf("plot is %v, too small", b)
	}
}

func TestRunGradientHonoursCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cfg := smallConfig()
	cfg.Epochs = 1000
	_, err := RunGradient(ctx, cfg, func(Progress) { cancel() })
	if err == nil {
		t.Fatal("cancelled study returned no error")
	}
}

// TestRunGradientSweepsScalings: every setting trains MAE and each k under
// every input × output scaling pair, rows say which, and a pair's rows do
// not depend on which other pairs are swept with it.
func TestRunGradientSweepsScalings(t *testing.T) {
	cfg := smallConfig()
	cfg.Settings = cfg.Settings[:1]
	cfg.Ks = []int{4}
	cfg.Epochs = 20
	cfg.InputScaling = []surrogate.InputScaling{surrogate.InputBox, surrogate.InputUnit}
	cfg.OutputScaling = []surrogate.OutputScaling{surrogate.OutputZScore, surrogate.OutputNone}
	res, err := RunGradient(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []Scaling{{"box", "zscore"}, {"box", "none"}, {"unit", "zscore"}, {"unit", "none"}}
	if got := cfg.Scalings(); !slices.Equal(got, want) {
		t.Fatalf("Scalings() = %v, want %v", got, want)
	}
	if len(res.Rows) != 2*len(want) {
		t.Fatalf("%d rows, want %d", len(res.Rows), 2*len(want))
	}
	for i, g := range res.Groups() {
		if g.Scaling != want[i] {
			t.Errorf("group %d has scaling %v, want %v", i, g.Scaling, want[i])
		}
		if _, _, ok := res.Best(g); !ok {
			t.Errorf("group %v lacks a base or a GradPIE row", g)
		}
	}
	for i, r := range res.Rows {
		if r.Scaling != want[i/2] || (i%2 == 0) != (r.K == 0) {
			t.Errorf("row %d: %v %s, want %v, MAE first", i, r.Scaling, r.Label(), want[i/2])
		}
	}
	if res.Rows[0].RelErr == res.Rows[4].RelErr {
		t.Error("box and unit inputs gave the same MAE model: the scaling did not reach the surrogate")
	}
	one := cfg
	one.InputScaling = []surrogate.InputScaling{surrogate.InputUnit}
	one.OutputScaling = []surrogate.OutputScaling{surrogate.OutputNone}
	alone, err := RunGradient(context.Background(), one, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range alone.Rows {
		a, b := r, res.Rows[6+i]
		a.Seconds, b.Seconds = 0, 0
		if a != b {
			t.Errorf("unit/none swept alone:\n%+v\nin the sweep:\n%+v", a, b)
		}
	}
	var table bytes.Buffer
	if err := res.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table.String(), "unit/none") {
		t.Errorf("table does not name the scaling pairs:\n%s", table.String())
	}
}
