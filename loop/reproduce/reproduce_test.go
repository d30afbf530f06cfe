package reproduce

import (
	"context"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/insitu-lab/insitu"
	"github.com/insitu-lab/insitu/loop"
	"github.com/insitu-lab/insitu/loop/journal"
	_ "github.com/insitu-lab/insitu/simulators/cnon" // registers kind cnon
)

func TestGridSizes(t *testing.T) {
	for _, tc := range []struct {
		scale   string
		ngspice bool
		cells   int
		tasks   int
	}{
		// CNON 2×6×3, op-amp 5×3 (+5×3), OWMS 6×3, study 1, PNN 2×5×2;
		// knobs: CNON 9×2×3 + 2×3 (the default reuses cnon-N10-M1),
		// OWMS 4×3, PNN 5×2×2 (the default reuses pnn-optical); the OWMS
		// camera task 6×3 and its knobs 2×2×3 (the default reuses it).
		{"quick", false, 36 + 15 + 18 + 1 + 20 + 60 + 12 + 20 + 18 + 12, 12},
		{"quick", true, 36 + 15 + 15 + 18 + 1 + 20 + 60 + 12 + 20 + 18 + 12, 13},
		// CNON 4×6×100, op-amp 5×100 (+5×100), OWMS 6×100, study 1, PNN 2×5×5;
		// knobs with 10 seeds: CNON 10×2×10 + 2×10 (own default), OWMS 4×100, PNN 5×2×5;
		// OWMS camera 6×100 and its knobs 3×2×10 (own default).
		{"full", false, 2400 + 500 + 600 + 1 + 50 + 220 + 400 + 50 + 600 + 60, 14},
		{"full", true, 2400 + 500 + 500 + 600 + 1 + 50 + 220 + 400 + 50 + 600 + 60, 15},
		{"test", true, 3 + 3 + 1, 3},
	} {
		g, err := NewGrid(tc.scale, "configs", tc.ngspice)
		if err != nil {
			t.Fatal(err)
		}
		cs := g.Cells()
		if len(cs) != tc.cells || len(g.Tasks) != tc.tasks {
			t.Errorf("%s ngspice=%v: %d cells in %d tasks, want %d in %d", tc.scale, tc.ngspice, len(cs), len(g.Tasks), tc.cells, tc.tasks)
		}
		_, has := g.Task("opamp-ngspice")
		if has != (tc.ngspice && tc.scale != "test") {
			t.Errorf("%s ngspice=%v: opamp-ngspice task present = %v", tc.scale, tc.ngspice, has)
		}
		dirs := map[string]bool{}
		for _, c := range cs {
			if dirs[c.Dir()] {
				t.Errorf("%s: two cells in %s", tc.scale, c.Dir())
			}
			dirs[c.Dir()] = true
		}
	}
	if _, err := NewGrid("huge", "configs", false); err == nil {
		t.Error("unknown scale accepted")
	}
	g, _ := NewGrid("quick", "configs", false)
	for _, task := range g.Tasks {
		if task.Kind == KindRun && task.Iterations > 100 {
			t.Errorf("quick %s: %d iterations", task.Name, task.Iterations)
		}
	}
	if ow, _ := g.Task("owms"); !slices.Contains(ow.Sets, "surrogate.hidden=[256,256]") {
		t.Errorf("quick OWMS sets %v: want the reduced surrogate", ow.Sets)
	}
}

func TestCellArgs(t *testing.T) {
	c := Cell{Task: "cnon-N10-M1", Kind: KindRun, Config: "configs/cnon.yaml", Sets: []string{"local.samples=1"}, Method: "mae", Seed: 2, Iterations: 50}
	got := strings.Join(c.Args("D"), " ")
	want := "run configs/cnon.yaml -q --out D --method mae --seed 2 --iterations 50 --set local.samples=1"
	if got != want {
		t.Errorf("args %q, want %q", got, want)
	}
	if got := strings.Join(c.ResumeArgs("D"), " "); got != "resume D -q" {
		t.Errorf("resume args %q", got)
	}
	c.Kind = KindTrain
	if got, want := strings.Join(c.Args("D"), " "), "train configs/cnon.yaml -q --out D --method mae --seed 2 --epochs 50 --set local.samples=1"; got != want {
		t.Errorf("train args %q, want %q", got, want)
	}
	if got := strings.Join(c.ResumeArgs("D"), " "); got != "train --resume D -q" {
		t.Errorf("train resume args %q", got)
	}
	if c.Dir() != filepath.Join("cnon-N10-M1", "mae-s2") {
		t.Errorf("dir %s", c.Dir())
	}
}

func TestCheckpoints(t *testing.T) {
	for it, want := range map[int][]int{200: {50, 100, 200}, 100: {25, 50, 100}, 30: {10, 25, 30}, 3: {3}, 500: {100, 200, 500}} {
		if got := Checkpoints(it); !slices.Equal(got, want) {
			t.Errorf("Checkpoints(%d) = %v, want %v", it, got, want)
		}
	}
}

func TestQueryReduction(t *testing.T) {
	// The base model reaches its final 3 after 3 queries; GradPIE reaches
	// 3 (it gets 2.5) after 2: ratio 1.5.
	r := QueryReduction([]float64{5, 4, 3, 3, 3}, []float64{4, 2.5, 2}, journal.Minimize)
	if !r.Reached || r.BaseQueries != 3 || r.LocQueries != 2 || r.Ratio() != 1.5 || r.Value != 3 {
		t.Errorf("got %+v ratio %v", r, r.Ratio())
	}
	if s := r.String(); s != "1.50× (3 / 2 queries)" {
		t.Errorf("String %q", s)
	}
	// Never reached.
	r = QueryReduction([]float64{5, 4, 3}, []float64{5, 4, 3.5, 3.1}, journal.Minimize)
	if r.Reached || !math.IsNaN(r.Ratio()) || r.String() != "not reached" {
		t.Errorf("got %+v", r)
	}
	// Maximized: base ends at 9 after 4 queries, loc reaches 9.5 after 1.
	r = QueryReduction([]float64{1, 2, 8, 9}, []float64{9.5, 9.5}, journal.Maximize)
	if !r.Reached || r.Ratio() != 4 {
		t.Errorf("max: got %+v", r)
	}
}

// fakeExec runs a tiny CNON loop.Run into the --out of a run command, with
// the method and seed of its arguments, and counts its calls.
type fakeExec struct {
	calls   atomic.Int32
	resumes atomic.Int32
}

func flag(args []string, name string) string {
	i := slices.Index(args, name)
	if i < 0 || i+1 >= len(args) {
		return ""
	}
	return args[i+1]
}

func (f *fakeExec) exec(ctx context.Context, args []string, _ io.Writer) error {
	f.calls.Add(1)
	if args[0] == "resume" {
		f.resumes.Add(1)
		j, err := journal.Open(args[1])
		if err != nil {
			return err
		}
		defer j.Close()
		return j.SetStatus(ctx, journal.RunFinished)
	}
	out, method := flag(args, "--out"), flag(args, "--method")
	if method == "" { // a sweep's cell: the method of its --set, else the config's
		method = "random"
		for i, a := range args {
			if v, ok := strings.CutPrefix(a, "method="); ok && i > 0 && args[i-1] == "--set" {
				method = v
			}
		}
	}
	seed, _ := strconv.ParseUint(flag(args, "--seed"), 10, 64)
	iters, _ := strconv.Atoi(flag(args, "--iterations"))
	if args[0] == "train" { // a stand-in training: its iterations are the epochs
		iters, _ = strconv.Atoi(flag(args, "--epochs"))
	}
	box, err := insitu.New(ctx, insitu.Params{Kind: "cnon", Values: map[string]any{"n": 4, "horizon": 1, "steps": 10}})
	if err != nil {
		return err
	}
	obj, dir, err := loop.NewObjective(ctx, loop.ObjectiveConfig{Kind: "distance", TargetSeed: 3}, box)
	if err != nil {
		return err
	}
	cfg := loop.DefaultConfig()
	cfg.Method, cfg.Seed, cfg.Iterations = method, seed, iters
	cfg.Init.Points, cfg.TopK = 10, 2
	cfg.Surrogate.Hidden, cfg.Surrogate.InitialEpochs, cfg.Surrogate.Epochs, cfg.Surrogate.Batch = []int{8}, 2, 1, 16
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	j, err := journal.Create(out, journal.Meta{Method: method, Kind: "cnon", Seed: seed, Direction: journal.Direction(dir)}, []byte("{}"))
	if err != nil {
		return err
	}
	defer j.Close()
	p := loop.Problem{Box: box, Objective: obj, Direction: dir}
	if d, ok := box.(insitu.Differentiable); ok {
		p.Exact = d
	}
	if _, err := loop.Run(ctx, cfg, p, j, nil); err != nil {
		return err
	}
	return j.SetStatus(ctx, journal.RunFinished)
}

func tinyGrid(seeds int) Grid {
	return Grid{Scale: "tiny", Tasks: []Task{{
		Name: "cnon-M0", Title: "tiny CNON", Kind: KindRun, Config: "cnon.yaml",
		Methods: []string{"gradpie", "mae"}, Seeds: seeds, Iterations: 4, Paper: "cnon-M0", LogY: true,
	}}}
}

func TestRunSkipsFinishedAndResumesPartial(t *testing.T) {
	ctx := context.Background()
	out := t.TempDir()
	g := tinyGrid(1)
	var f fakeExec
	sum, err := Run(ctx, g, Options{Out: out, Jobs: 2, Exec: f.exec})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Total != 2 || sum.Started != 2 || f.calls.Load() != 2 {
		t.Fatalf("first run: %+v, %d calls", sum, f.calls.Load())
	}
	for _, c := range g.Cells() {
		if st := CellState(ctx, c, filepath.Join(out, c.Dir())); st != Finished {
			t.Errorf("%s: %v after the run", c.Dir(), st)
		}
	}
	sum, err = Run(ctx, g, Options{Out: out, Jobs: 2, Exec: f.exec})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Skipped != 2 || sum.Started != 0 || f.calls.Load() != 2 {
		t.Fatalf("second run did work: %+v, %d calls", sum, f.calls.Load())
	}
	// A journal that did not finish is resumed, not restarted.
	c := g.Cells()[0]
	j, err := journal.Open(filepath.Join(out, c.Dir()))
	if err != nil {
		t.Fatal(err)
	}
	if err := j.SetStatus(ctx, journal.RunInterrupted); err != nil {
		t.Fatal(err)
	}
	j.Close()
	sum, err = Run(ctx, g, Options{Out: out, Jobs: 2, Exec: f.exec})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Resumed != 1 || sum.Skipped != 1 || f.resumes.Load() != 1 {
		t.Fatalf("resume: %+v, %d resumes", sum, f.resumes.Load())
	}
}

func TestRunReportsFailuresAndStopsOnCancel(t *testing.T) {
	out := t.TempDir()
	boom := errors.New("boom")
	fail := func(context.Context, []string, io.Writer) error { return boom }
	sum, err := Run(context.Background(), tinyGrid(1), Options{Out: out, Exec: fail})
	if !errors.Is(err, boom) || len(sum.Failed) != 2 {
		t.Fatalf("err %v, failed %v", err, sum.Failed)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var calls atomic.Int32
	_, err = Run(ctx, tinyGrid(3), Options{Out: t.TempDir(), Jobs: 1, Exec: func(context.Context, []string, io.Writer) error { calls.Add(1); return nil }})
	if !errors.Is(err, context.Canceled) || calls.Load() > 1 {
		t.Fatalf("cancelled: err %v, %d cells started", err, calls.Load())
	}
}

func TestWriteReport(t *testing.T) {
	ctx := context.Background()
	out := t.TempDir()
	g := tinyGrid(2)
	g.Tasks = append(g.Tasks, Task{Name: "pnn-cnon", Title: "pnn", Kind: KindTrain, Config: "p.yaml", Methods: []string{"exact"}, Seeds: 2, Iterations: 2})
	var f fakeExec
	if _, err := Run(ctx, g, Options{Out: out, Exec: f.exec}); err != nil {
		t.Fatal(err)
	}
	// A study cell's CSV and a missing training task render too.
	g.Tasks = append(g.Tasks, Task{Name: "gradient-study", Title: "study", Kind: KindStudy, Config: "s.yaml", Seeds: 1, Iterations: 3},
		Task{Name: "pnn-optical", Title: "pnn2", Kind: KindTrain, Config: "p.yaml", Methods: []string{"exact"}, Seeds: 1, Iterations: 2})
	if err := os.MkdirAll(filepath.Join(out, "gradient-study"), 0o755); err != nil {
		t.Fatal(err)
	}
	csv := "setting,dim,points,loss,k,rel_err_mean,rel_err_sd,rel_err_median,cos_mean,cos_sd,train_loss,train_seconds\n" +
		"N=10,10,100,mae,0,0.2,0.1,0.18,0.9,0.05,0.1,1\nN=10,10,100,gradpie,5,0.15,0.1,0.14,0.95,0.03,0.1,1\n"
	if err := os.WriteFile(filepath.Join(out, "gradient-study", "gradient.csv"), []byte(csv), 0o644); err != nil {
		t.Fatal(err)
	}
	md := writeAndRead(t, g, out)
	for _, want := range []string{
		"## tiny CNON", "| method | @ 4 | controller ms/it | queries |", "| gradpie | ", "| mae | ",
		"Median (25–75 %)", "against mae (final median", "![cnon-M0](cnon-M0.png)",
		"| N=10 | GradPIE k=5 | 0.1500 ± 0.1000 |", "N=10, k = 5: relative error -25.0 %, cosine +5.6 %",
		"No trainings yet.", "What we tried / honest knobs",
		"| exact | ", "![pnn-cnon](pnn-cnon.png)",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	for _, png := range []string{"cnon-M0.png", "pnn-cnon.png"} {
		if fi, err := os.Stat(filepath.Join(out, png)); err != nil || fi.Size() == 0 {
			t.Errorf("plot: %v", err)
		}
	}
}

func TestCompare(t *testing.T) {
	// Means 2 and 5, variances 1 and 1, three each: t = −3/√(2/3) = −3.674
	// on 4 degrees of freedom, whose two-sided p is I_x(2, ½) at
	// x = ν/(ν+t²): 1 − (3/2)·x·√(1−x) − (1−x)^{3/2} in closed form.
	loc, base := []float64{1, 2, 3}, []float64{4, 5, 6}
	v, r := Compare(loc, base, journal.Minimize)
	x := 4 / (4 + 13.5)
	wantP := 1 - 1.5*x*math.Sqrt(1-x) - math.Pow(1-x, 1.5)
	if v != LocBetter || math.Abs(r.Change+0.6) > 1e-12 || math.Abs(r.T+3/math.Sqrt(2.0/3)) > 1e-12 || math.Abs(r.DF-4) > 1e-12 || math.Abs(r.P-wantP) > 1e-9 {
		t.Errorf("minimize: %v %+v, want p = %v", v, r, wantP)
	}
	if v, _ := Compare(loc, base, journal.Maximize); v != BaseBetter {
		t.Errorf("maximize: %v", v)
	}
	// Half a unit apart with the same spread: |t| = 0.61, no call.
	if v, r := Compare(loc, []float64{1.5, 2.5, 3.5}, journal.Minimize); v != Unclear || math.Abs(r.T+0.5/math.Sqrt(2.0/3)) > 1e-12 || !(r.P > 0.5) {
		t.Errorf("close: %v %+v", v, r)
	}
	// |t| = 2.5 on 2 + 2 seeds (ν = 2): p = 1 − t/√(t²+2) = 0.13, no call
	// however large t looks.
	if v, r := Compare([]float64{0, 2}, []float64{2.5 * math.Sqrt(2), 2.5*math.Sqrt(2) + 2}, journal.Minimize); v != Unclear || math.Abs(r.P-(1-math.Abs(r.T)/math.Sqrt(r.T*r.T+2))) > 1e-9 {
		t.Errorf("two seeds: %v %+v", v, r)
	}
	// One seed each says nothing, however far apart.
	if v, _ := Compare([]float64{1}, []float64{9}, journal.Minimize); v != Unclear {
		t.Errorf("one seed: %v", v)
	}
	// No spread: no p-value, no call.
	if v, r := Compare([]float64{2, 2}, []float64{1, 1}, journal.Minimize); v != Unclear || !math.IsInf(r.T, 1) || !math.IsNaN(r.P) {
		t.Errorf("no spread: %v %+v", v, r)
	}
	if v, _ := Compare(nil, base, journal.Minimize); v != Unclear {
		t.Errorf("empty: %v", v)
	}
}

// The seeds rule: a beat needs ten seeds a side and |t| ≥ 2, p < 0.05 in
// both blocks.
func TestClaimVerdict(t *testing.T) {
	block := func(shift float64, n int, salt uint64) ([]float64, []float64) {
		rng := rand.New(rand.NewPCG(salt, 1))
		a, b := make([]float64, n), make([]float64, n)
		for i := range a {
			a[i], b[i] = rng.NormFloat64(), shift+rng.NormFloat64()
		}
		return a, b
	}
	claim := func(s1 float64, n1 int, s2 float64, n2 int) string {
		a1, b1 := block(s1, n1, 1)
		c := Claim{Tuned: Welch(a1, b1)}
		if n2 > 0 {
			a2, b2 := block(s2, n2, 2)
			c.Check, c.HasCheck = Welch(a2, b2), true
		}
		return c.Verdict("gradpie", "mae", journal.Minimize)
	}
	for _, tc := range []struct {
		s1     float64
		n1     int
		s2     float64
		n2     int
		prefix string
	}{
		{3, 10, 3, 10, "**gradpie beats mae**"},
		{-3, 10, -3, 10, "**mae beats gradpie**"},
		{3, 5, 3, 10, "no verdict: fewer than 10"},
		{3, 10, 0, 0, "gradpie ahead on the tuned block; second block not run"},
		{3, 10, 3, 5, "gradpie ahead on the tuned block; second block has fewer"},
		{3, 10, 0, 10, "gradpie ahead on the tuned block only"},
		{0, 10, 3, 10, "no clear difference"},
	} {
		if got := claim(tc.s1, tc.n1, tc.s2, tc.n2); !strings.HasPrefix(got, tc.prefix) {
			t.Errorf("%+v: %q", tc, got)
		}
	}
}

func TestKnobSweep(t *testing.T) {
	ctx := context.Background()
	out := t.TempDir()
	g := tinyGrid(2)
	g.Tasks = append(g.Tasks, Task{
		Name: "knobs-cnon-M0", Title: "tiny knobs", Kind: KindRun, Config: "cnon.yaml",
		Methods: []string{"gradpie", "mae"}, Seeds: 2, Iterations: 4, LogY: true, Base: "cnon-M0",
		Variants: []Variant{{Label: "defaults"}, {Name: "k1", Label: "k = 1", Sets: []string{"surrogate.k=1"}, Methods: []string{"gradpie"}}},
	})
	// The default setting reuses the base task's 4 cells: 2 more for k1.
	cs := g.Cells()
	if len(cs) != 6 {
		t.Fatalf("%d cells, want 6", len(cs))
	}
	kt, _ := g.Task("knobs-cnon-M0")
	def := g.VariantCells(kt, kt.Variants[0])
	if len(def) != 4 || def[0].Dir() != cs[0].Dir() {
		t.Errorf("default cells %v, want the base task's", def)
	}
	k1 := g.VariantCells(kt, kt.Variants[1])
	if len(k1) != 2 || k1[0].Dir() != filepath.Join("knobs-cnon-M0", "k1", "gradpie-s1") || !slices.Contains(k1[0].Args("D"), "surrogate.k=1") {
		t.Errorf("k1 cells %+v", k1)
	}
	// Before anything ran: the sweep says so, without a plot (an empty log
	// axis cannot be drawn).
	if md := writeAndRead(t, g, out); !strings.Contains(md, "(2 cells not finished)") {
		t.Errorf("report of an unfinished sweep:\n%s", md)
	}
	var f fakeExec
	if _, err := Run(ctx, g, Options{Out: out, Exec: f.exec}); err != nil {
		t.Fatal(err)
	}
	if f.calls.Load() != 6 {
		t.Errorf("%d cells run, want 6", f.calls.Load())
	}
	md := writeAndRead(t, g, out)
	for _, want := range []string{
		"## tiny knobs", "| setting | overrides | gradpie | mae | GradPIE vs MAE | verdict (t) |",
		"| defaults | – | ", "| k = 1 | `surrogate.k=1` | ", " | (default) | ",
		"GradPIE better than MAE in ", "of 2 settings", "![knobs-cnon-M0](knobs-cnon-M0.png)",
		"- tiny knobs: GradPIE better than MAE in ", "GradPIE's mean ahead in ",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	if fi, err := os.Stat(filepath.Join(out, "knobs-cnon-M0.png")); err != nil || fi.Size() == 0 {
		t.Errorf("knob plot: %v", err)
	}
}

// writeAndRead writes the grid's report and returns it.
func writeAndRead(t *testing.T, g Grid, out string) string {
	t.Helper()
	if err := WriteReport(context.Background(), g, out); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(out, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestPaperColumnsAtPaperIterations(t *testing.T) {
	if _, _, ok := paperAt("cnon-M0", "gradpie", 100); !ok {
		t.Error("no paper value for cnon-M0 gradpie @ 100")
	}
	if r, i, ok := paperAt("opamp", "gradpie", 200); !ok || r.mean[i] != 9.615 || r.med[i] != 9.700 {
		t.Errorf("opamp gradpie @ 200: %+v %d %v", r, i, ok)
	}
	if _, _, ok := paperAt("cnon-M0", "gradpie", 25); ok {
		t.Error("paper value at 25 iterations")
	}
	if _, _, ok := paperAt("", "mae", 50); ok {
		t.Error("paper value for a task without a block")
	}
}

func TestOnly(t *testing.T) {
	g, err := NewGrid("quick", "configs", false)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := g.Only([]string{"owms", "cnon-N10-M0"})
	if err != nil || len(sub.Tasks) != 2 || sub.Tasks[0].Name != "cnon-N10-M0" || sub.Tasks[1].Name != "owms" {
		t.Fatalf("Only = %+v, %v", sub.Tasks, err)
	}
	if _, err := g.Only([]string{"owms", "nope"}); err == nil || !strings.Contains(err.Error(), `"nope"`) || !strings.Contains(err.Error(), "knobs-owms") {
		t.Errorf("unknown task: %v", err)
	}
}

// A second block of seeds adds cells to the run and training tasks (not
// to a knob sweep), the report sets its columns beside the tuned block's
// and states each comparison under the seeds rule; the directory's
// manifest keeps the block.
func TestSecondBlock(t *testing.T) {
	ctx := context.Background()
	out := t.TempDir()
	g := tinyGrid(2).WithCheck([]uint64{102, 101, 2})
	g.Tasks = append(g.Tasks, Task{
		Name: "knobs-cnon-M0", Title: "tiny knobs", Kind: KindRun, Config: "cnon.yaml",
		Methods: []string{"gradpie", "mae"}, Seeds: 2, Iterations: 4, Base: "cnon-M0",
		Variants: []Variant{{Label: "defaults"}, {Name: "k1", Label: "k = 1", Sets: []string{"surrogate.k=1"}, Methods: []string{"gradpie"}}},
	})
	if !slices.Equal(g.Check, []uint64{2, 101, 102}) {
		t.Fatalf("check block %v", g.Check)
	}
	tuned, check := g.Blocks(g.Tasks[0])
	if !slices.Equal(tuned, []uint64{1, 2}) || !slices.Equal(check, []uint64{101, 102}) {
		t.Fatalf("blocks %v %v: seed 2 belongs to the tuned block only", tuned, check)
	}
	if _, c := g.Blocks(g.Tasks[1]); c != nil {
		t.Errorf("a knob sweep got a second block %v", c)
	}
	var dirs []string
	for _, c := range g.Cells() {
		dirs = append(dirs, c.Dir())
	}
	// 2 methods × (2 + 2) seeds, and the sweep's k1 variant's 2.
	if len(dirs) != 10 || !slices.Contains(dirs, filepath.Join("cnon-M0", "mae-s101")) {
		t.Fatalf("cells %v", dirs)
	}
	var f fakeExec
	if _, err := Run(ctx, g, Options{Out: out, Exec: f.exec}); err != nil {
		t.Fatal(err)
	}
	md := writeAndRead(t, g, out)
	for _, want := range []string{
		"Second block: seeds 101..102, drawn after the setting was fixed; its columns are marked ², 4 runs.",
		"| method | @ 4 | @ 4 ² | controller ms/it | queries |",
		"| comparison | seeds 1..2 | seeds 101..102 ² | verdict |",
		"| gradpie vs mae | ", "no verdict: fewer than 10 seeds",
		"Ordering of the means on seeds 1..2, best first:",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	if err := Record(out, Manifest{Scale: "tiny"}, Part{Check: g.Check}); err != nil {
		t.Fatal(err)
	}
	if err := Record(out, Manifest{Scale: "tiny"}, Part{Check: []uint64{103}, Tasks: []string{"cnon-M0"}}); err != nil {
		t.Fatal(err)
	}
	ms, err := ReadManifests(out)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Combine(ms...)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(m.Check(), []uint64{2, 101, 102, 103}) {
		t.Errorf("manifest's second block %v", m.Check())
	}
}

// A p-value below the printed precision reads "p < 0.0001", not "p = < 0.0001".
func TestTestString(t *testing.T) {
	for _, tc := range []struct {
		r    Test
		want string
	}{
		{Test{T: -8, P: 3e-9}, "t = -8.00, p < 0.0001"},
		{Test{T: -2.31, P: 0.0333}, "t = -2.31, p = 0.033"},
		{Test{T: 1.5, P: math.NaN()}, "t = 1.50, p –"},
		{Test{T: math.NaN(), P: math.NaN()}, "–"},
	} {
		if got := tc.r.String(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.r, got, tc.want)
		}
	}
}
