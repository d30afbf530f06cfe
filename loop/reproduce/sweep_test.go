package reproduce

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestParseParam(t *testing.T) {
	for in, want := range map[string]Param{
		"surrogate.k=1,5,10":                {Key: "surrogate.k", Values: []string{"1", "5", "10"}},
		"method=mae":                        {Key: "method", Values: []string{"mae"}},
		"surrogate.hidden=[16,16],[64, 64]": {Key: "surrogate.hidden", Values: []string{"[16,16]", "[64, 64]"}},
		" local.sigma = 0.01 , 0.02 ":       {Key: "local.sigma", Values: []string{"0.01", "0.02"}},
		"blackbox.gap={a: 1, b: 2},{a: 3}":  {Key: "blackbox.gap", Values: []string{"{a: 1, b: 2}", "{a: 3}"}},
		"objective.target=x=1,y":            {Key: "objective.target", Values: []string{"x=1", "y"}},
		"surrogate.lr=1e-3,3e-3":            {Key: "surrogate.lr", Values: []string{"1e-3", "3e-3"}},
		"surrogate.hidden=[[1,2],[3]],[4]":  {Key: "surrogate.hidden", Values: []string{"[[1,2],[3]]", "[4]"}},
		"step_lr=0.02":                      {Key: "step_lr", Values: []string{"0.02"}},
		"surrogate.k=1,5,10 ":               {Key: "surrogate.k", Values: []string{"1", "5", "10"}},
	} {
		got, err := ParseParam(in)
		if err != nil || got.Key != want.Key || !slices.Equal(got.Values, want.Values) {
			t.Errorf("ParseParam(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"k", "=1,2", "k=", "k=1,,2", "k=[1,2", "k=1,1"} {
		if _, err := ParseParam(in); err == nil {
			t.Errorf("ParseParam(%q): no error", in)
		}
	}
}

func TestParseSeeds(t *testing.T) {
	for in, want := range map[string][]uint64{"1..5": {1, 2, 3, 4, 5}, "3": {3}, "1,2,7": {1, 2, 7}, "3..5,9": {3, 4, 5, 9}, "0..1": {0, 1}} {
		got, err := ParseSeeds(in)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("ParseSeeds(%q) = %v, %v", in, got, err)
		}
	}
	for want, seeds := range map[string][]uint64{"1..5": {1, 2, 3, 4, 5}, "3": {3}, "1..2,7": {1, 2, 7}, "3..5,9": {3, 4, 5, 9}} {
		if got := FormatSeeds(seeds); got != want {
			t.Errorf("FormatSeeds(%v) = %q, want %q", seeds, got, want)
		}
	}
	for _, in := range []string{"", "a", "5..3", "1,1", "1..3,2", "1..1000000"} {
		if _, err := ParseSeeds(in); err == nil {
			t.Errorf("ParseSeeds(%q): no error", in)
		}
	}
}

func TestSweepCells(t *testing.T) {
	k, _ := ParseParam("surrogate.k=1,5")
	h, _ := ParseParam("surrogate.hidden=[16,16],[64,64]")
	s := Sweep{Config: "configs/cnon.yaml", Params: []Param{k, h}, Seeds: []uint64{1, 2, 3}, Sets: []string{"local.samples=1"}, Iterations: 7}
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	st := s.Settings()
	if len(st) != 4 || st[0].Name != "surrogate.k=1,surrogate.hidden=_16_16_" || st[1].Label != "surrogate.k=1 surrogate.hidden=[64,64]" || st[2].Values[0] != "5" {
		t.Fatalf("settings %+v", st)
	}
	cs := s.Cells()
	if len(cs) != 12 {
		t.Fatalf("%d cells", len(cs))
	}
	c := cs[4] // setting 1, seed 2
	if c.Dir() != filepath.Join("surrogate.k=1,surrogate.hidden=_64_64_", "s2") {
		t.Errorf("dir %s", c.Dir())
	}
	want := "run configs/cnon.yaml -q --out D --seed 2 --iterations 7 --set local.samples=1 --set surrogate.k=1 --set surrogate.hidden=[64,64]"
	if got := strings.Join(c.Args("D"), " "); got != want {
		t.Errorf("args %q, want %q", got, want)
	}
	// Without --iterations the config's count; no parameter: one setting.
	s = Sweep{Config: "c.yaml", Seeds: []uint64{4}}
	if cs := s.Cells(); len(cs) != 1 || cs[0].Dir() != filepath.Join("default", "s4") || slices.Contains(cs[0].Args("D"), "--iterations") {
		t.Errorf("default sweep: %+v", cs)
	}
	// Two values that would share a directory.
	bad, _ := ParseParam("objective.target=a/b,a_b")
	if err := (Sweep{Config: "c.yaml", Params: []Param{bad}, Seeds: []uint64{1}}).Check(); err == nil || !strings.Contains(err.Error(), "share the directory") {
		t.Errorf("collision: %v", err)
	}
	if err := (Sweep{Config: "c.yaml"}).Check(); err == nil {
		t.Error("no seeds accepted")
	}
}

func TestSweepReport(t *testing.T) {
	ctx := context.Background()
	out := t.TempDir()
	m, _ := ParseParam("method=gradpie,random")
	s := Sweep{Config: "cnon.yaml", Params: []Param{m}, Seeds: []uint64{1, 2}, Iterations: 4}
	var f fakeExec
	// One run missing: the row says so.
	cells := s.Cells()
	if _, err := RunCells(ctx, "sweep", cells[:3], Options{Out: out, Exec: f.exec}); err != nil {
		t.Fatal(err)
	}
	rows, at, err := WriteSweepReport(ctx, s, out, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(at, []int{4}) || len(rows) != 2 || rows[0].Runs != 2 || rows[1].Runs != 1 || rows[1].Missing != 1 {
		t.Fatalf("at %v, rows %+v", at, rows)
	}
	if math.IsNaN(rows[0].At[0]) || rows[0].SD[0] < 0 || len(rows[0].Final) != 2 {
		t.Errorf("row 0: %+v", rows[0])
	}
	// Welch's t against the first setting, by hand: the second has one run.
	m0 := (rows[0].Final[0] + rows[0].Final[1]) / 2
	v0 := math.Pow(rows[0].Final[0]-m0, 2) + math.Pow(rows[0].Final[1]-m0, 2) // n − 1 = 1
	if want := (rows[1].Final[0] - m0) / math.Sqrt(v0/2); !math.IsNaN(rows[0].Test.T) || math.Abs(rows[1].Test.T-want) > 1e-9*math.Abs(want) || !math.IsNaN(rows[1].Test.P) {
		t.Errorf("t = %v, %v (p %v); want NaN, %v (no p with one run)", rows[0].Test.T, rows[1].Test.T, rows[1].Test.P, want)
	}
	md, err := os.ReadFile(filepath.Join(out, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"# Sweep of `cnon.yaml`", "method ∈ {gradpie, random}; seeds 1..2; 4 iterations", "| setting | runs | @ 4 | final best, median (25–75 %) | t | p | controller |",
		"| method=gradpie | 2 | ", "| method=random | 1 (**1 not finished**) | ", "![best objective against queries per setting](sweep.png)"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	if fi, err := os.Stat(filepath.Join(out, "sweep.png")); err != nil || fi.Size() == 0 {
		t.Errorf("sweep.png: %v", err)
	}
	// Marks asked for: one past the runs is a dash.
	if rows, _, err := WriteSweepReport(ctx, s, out, []int{2, 9}, false); err != nil || !math.IsNaN(rows[0].At[1]) || math.IsNaN(rows[0].At[0]) {
		t.Errorf("marks 2, 9: %+v, %v", rows, err)
	}
}

func TestSweepTitleNamesKeysAndSeeds(t *testing.T) {
	s := Sweep{Config: "configs/owms.yaml", Params: []Param{{Key: "surrogate.k"}, {Key: "method"}}, Seeds: []uint64{1, 2, 3}}
	if got, want := s.title(), "owms.yaml: surrogate.k × method, 3 seeds"; got != want {
		t.Errorf("title %q, want %q", got, want)
	}
	s.Params, s.Seeds = s.Params[1:], []uint64{7}
	if got, want := s.title(), "owms.yaml: method, seed 7"; got != want {
		t.Errorf("title %q, want %q", got, want)
	}
}

// A sweep with a second block runs its seeds too (not twice a seed of the
// first), and the report sets its final best beside the first block's and
// states the comparisons under the seeds rule.
func TestSweepSecondBlock(t *testing.T) {
	ctx := context.Background()
	out := t.TempDir()
	m, _ := ParseParam("method=gradpie,random")
	s := Sweep{Config: "cnon.yaml", Params: []Param{m}, Seeds: []uint64{1, 2}, Second: []uint64{2, 11, 12}, Iterations: 3}
	cs := s.Cells()
	var dirs []string
	for _, c := range cs {
		dirs = append(dirs, c.Dir())
	}
	if len(cs) != 8 || !slices.Contains(dirs, filepath.Join("method=random", "s12")) {
		t.Fatalf("cells %v", dirs)
	}
	var f fakeExec
	if _, err := RunCells(ctx, "sweep", cs, Options{Out: out, Exec: f.exec}); err != nil {
		t.Fatal(err)
	}
	rows, _, err := WriteSweepReport(ctx, s, out, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows[0].Final) != 2 || len(rows[0].Final2) != 2 || rows[1].Runs2 != 2 {
		t.Fatalf("rows %+v", rows)
	}
	md, err := os.ReadFile(filepath.Join(out, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"a second block of seeds 11..12 drawn after the settings were fixed", "| runs ² | final best ² |",
		"| comparison | seeds 1..2 | seeds 11..12 ² | verdict |", "| method=gradpie vs method=random |", "no verdict: fewer than 10 seeds"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
}
