package reproduce

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/insitu-lab/insitu/loop/journal"
	"github.com/insitu-lab/insitu/loop/report"
)

// Sweep is a grid of `insitu run` of one config: every combination of the
// parameters' values (the first parameter varies slowest), each with every
// seed, on top of fixed overrides.
type Sweep struct {
	Config string   `json:"config"`
	Params []Param  `json:"params"`
	Seeds  []uint64 `json:"seeds"`
	// Second is a second block of seeds drawn after the settings were fixed:
	// the report sets its results beside the Seeds' and states the
	// comparisons under the seeds rule (Claim).
	Second     []uint64 `json:"second,omitempty"`
	Sets       []string `json:"sets,omitempty"`       // --set overrides of every cell
	Iterations int      `json:"iterations,omitempty"` // 0: the config's
}

// title names the plot of the sweep: the config, the swept keys and the
// seeds, e.g. "owms.yaml: surrogate.k × method, 3 seeds".
func (s Sweep) title() string {
	keys := make([]string, len(s.Params))
	for i, p := range s.Params {
		keys[i] = p.Key
	}
	seeds := fmt.Sprintf("%d seeds", len(s.Seeds))
	if len(s.Seeds) == 1 {
		seeds = fmt.Sprintf("seed %d", s.Seeds[0])
	}
	return fmt.Sprintf("%s: %s, %s", filepath.Base(s.Config), strings.Join(keys, " × "), seeds)
}

// Param is one swept config key and its values.
type Param struct {
	Key    string   `json:"key"`
	Values []string `json:"values"`
}

// Setting is one combination of parameter values.
type Setting struct {
	Name   string   // directory: key=value pairs joined by ",", unsafe characters as "_"
	Label  string   // key=value pairs joined by " "
	Values []string // one per parameter
	Sets   []string // key=value overrides
}

// ParseParam reads "key=v1,v2,…". Commas inside brackets or braces belong
// to the value: "surrogate.hidden=[16,16],[64,64]" is two values.
func ParseParam(s string) (Param, error) {
	k, vs, ok := strings.Cut(s, "=")
	k = strings.TrimSpace(k)
	if !ok || k == "" || strings.TrimSpace(vs) == "" {
		return Param{}, fmt.Errorf("--param %q: want key=value1,value2,…", s)
	}
	p := Param{Key: k}
	depth, start := 0, 0
	for i, r := range vs + "," {
		switch r {
		case '[', '{', '(':
			depth++
		case ']', '}', ')':
			depth--
		case ',':
			if depth == 0 {
				v := strings.TrimSpace(vs[start:i])
				if v == "" {
					return Param{}, fmt.Errorf("--param %q: an empty value", s)
				}
				if slices.Contains(p.Values, v) {
					return Param{}, fmt.Errorf("--param %q: value %q twice", s, v)
				}
				p.Values = append(p.Values, v)
				start = i + 1
			}
		}
	}
	if depth != 0 {
		return Param{}, fmt.Errorf("--param %q: unbalanced brackets", s)
	}
	return p, nil
}

// ParseSeeds reads "1..20", "1,2,7", "3..5,9" or "4".
func ParseSeeds(s string) ([]uint64, error) {
	var out []uint64
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		lo, hi, isRange := strings.Cut(part, "..")
		a, err := strconv.ParseUint(strings.TrimSpace(lo), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("--seeds %q: %q is not a seed", s, part)
		}
		b := a
		if isRange {
			if b, err = strconv.ParseUint(strings.TrimSpace(hi), 10, 64); err != nil || b < a {
				return nil, fmt.Errorf("--seeds %q: %q is not a range lo..hi", s, part)
			}
			if b-a >= 100000 {
				return nil, fmt.Errorf("--seeds %q: more than 100000 seeds", s)
			}
		}
		for x := a; x <= b; x++ {
			if slices.Contains(out, x) {
				return nil, fmt.Errorf("--seeds %q: seed %d twice", s, x)
			}
			out = append(out, x)
		}
	}
	return out, nil
}

// FormatSeeds writes seeds back compactly: runs of consecutive seeds as lo..hi.
func FormatSeeds(seeds []uint64) string {
	var parts []string
	for i := 0; i < len(seeds); {
		j := i
		for j+1 < len(seeds) && seeds[j+1] == seeds[j]+1 {
			j++
		}
		if j > i {
			parts = append(parts, fmt.Sprintf("%d..%d", seeds[i], seeds[j]))
		} else {
			parts = append(parts, strconv.FormatUint(seeds[i], 10))
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}

// Describe lists the swept keys and their values.
func (s Sweep) Describe() string {
	var parts []string
	for _, p := range s.Params {
		parts = append(parts, p.Key+" ∈ {"+strings.Join(p.Values, ", ")+"}")
	}
	return strings.Join(parts, ", ")
}

// Settings lists every combination of the parameters' values; with no
// parameter, one setting ("default") of the config as it is.
func (s Sweep) Settings() []Setting {
	combos := [][]string{nil}
	for _, p := range s.Params {
		var next [][]string
		for _, c := range combos {
			for _, v := range p.Values {
				next = append(next, append(slices.Clone(c), v))
			}
		}
		combos = next
	}
	var out []Setting
	for _, vs := range combos {
		st := Setting{Values: vs}
		var names, labels []string
		for i, v := range vs {
			kv := s.Params[i].Key + "=" + v
			st.Sets = append(st.Sets, kv)
			names = append(names, safeName(kv))
			labels = append(labels, kv)
		}
		st.Name, st.Label = strings.Join(names, ","), strings.Join(labels, " ")
		if len(vs) == 0 {
			st.Name, st.Label = "default", "the config's"
		}
		out = append(out, st)
	}
	return out
}

// safeName keeps letters, digits and . _ = + - of s, and writes any other
// character as "_", so that a setting is one directory name.
func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', strings.ContainsRune("._=+-", r):
			return r
		}
		return '_'
	}, s)
}

// Check refuses a sweep with no seed, or whose settings would share a
// directory.
func (s Sweep) Check() error {
	if len(s.Seeds) == 0 {
		return fmt.Errorf("no seeds")
	}
	seen := map[string]string{}
	for _, st := range s.Settings() {
		if o, ok := seen[st.Name]; ok {
			return fmt.Errorf("settings %q and %q would share the directory %s: choose values that differ in letters or digits", o, st.Label, st.Name)
		}
		seen[st.Name] = st.Label
	}
	return nil
}

// Cells lists the sweep's runs, setting by setting, seed by seed (the
// second block after the first): each in SETTING/sSEED, its method the
// config's (or a swept "method").
func (s Sweep) Cells() []Cell { return s.cellsOf(append(slices.Clone(s.Seeds), s.second()...)) }

// second is the second block without the seeds of the first.
func (s Sweep) second() []uint64 {
	var out []uint64
	for _, c := range s.Second {
		if !slices.Contains(s.Seeds, c) {
			out = append(out, c)
		}
	}
	return out
}

func (s Sweep) cellsOf(seeds []uint64) []Cell {
	var cs []Cell
	for _, st := range s.Settings() {
		for _, seed := range seeds {
			cs = append(cs, Cell{Task: st.Name, Kind: KindRun, Config: s.Config,
				Sets: append(slices.Clone(s.Sets), st.Sets...), Seed: seed, Iterations: s.Iterations})
		}
	}
	return cs
}

// SweepRow is one setting's results.
type SweepRow struct {
	Setting Setting
	Runs    int       // finished runs
	Missing int       // cells not finished
	At      []float64 // mean best objective at each mark (NaN: not every run got there)
	SD      []float64
	Final   []float64 // every run's best objective at its last iteration
	Test    Test      // Welch's t test of Final against the first setting's (T NaN for the first)
	// The second block: its finished runs, its unfinished cells and every
	// run's final best.
	Runs2, Missing2 int
	Final2          []float64
	// Controller is the median controller time per iteration over every
	// iteration of every run (wall time minus time in the black box).
	Controller time.Duration
	Curves     []report.Curve
	LastIter   int
}

// SweepTable reads the finished runs of every setting and summarizes
// them at the marks (iterations; none: Checkpoints of the longest run).
func SweepTable(ctx context.Context, s Sweep, out string, marks []int) (rows []SweepRow, at []int, dir journal.Direction) {
	last := 0
	for _, st := range s.Settings() {
		r := SweepRow{Setting: st}
		var cs, cs2 []Cell
		for _, c := range s.cellsOf(s.Seeds) {
			if c.Task == st.Name {
				cs = append(cs, c)
			}
		}
		for _, c := range s.cellsOf(s.second()) {
			if c.Task == st.Name {
				cs2 = append(cs2, c)
			}
		}
		r.Curves, r.Missing = loadCells(ctx, cs, out)
		var curves2 []report.Curve
		curves2, r.Missing2 = loadCells(ctx, cs2, out)
		r.Runs2 = len(curves2)
		for _, c := range curves2 {
			r.Final2 = append(r.Final2, c.Iters[len(c.Iters)-1].Best)
		}
		r.Runs = len(r.Curves)
		for i := range r.Curves {
			r.Curves[i].Label = st.Label
			its := r.Curves[i].Iters
			it := its[len(its)-1]
			r.Final = append(r.Final, it.Best)
			r.LastIter = max(r.LastIter, it.Iteration)
			dir = r.Curves[i].Dir
		}
		last = max(last, r.LastIter)
		r.Controller = medianController(r.Curves)
		r.Test = Test{T: math.NaN(), P: math.NaN()}
		if len(rows) > 0 {
			_, r.Test = Compare(r.Final, rows[0].Final, dir)
		}
		rows = append(rows, r)
	}
	at = marks
	if len(at) == 0 && last > 0 {
		at = Checkpoints(last)
	}
	for i := range rows {
		for _, m := range at {
			mean, sd, _, ok := report.At(rows[i].Curves, m)
			if !ok {
				mean, sd = math.NaN(), math.NaN()
			}
			rows[i].At = append(rows[i].At, mean)
			rows[i].SD = append(rows[i].SD, sd)
		}
	}
	return rows, at, dir
}

// medianController is the median controller time of the iterations after
// the initial design, over all curves (0 without any).
func medianController(cs []report.Curve) time.Duration {
	var ts []float64
	for _, c := range cs {
		for _, it := range c.Iters {
			if it.Iteration > 0 {
				ts = append(ts, float64(it.Controller))
			}
		}
	}
	if len(ts) == 0 {
		return 0
	}
	return time.Duration(quantile(ts, 0.5))
}

// WriteSweepReport writes OUT/report.md (a table of the best objective at
// the marks, mean ± std over seeds, per setting, and each setting's final
// best, its median and 25–75 %) and OUT/sweep.png (best objective against
// queries, median and 25–75 % band per setting); it returns the table.
func WriteSweepReport(ctx context.Context, s Sweep, out string, marks []int, logY bool) ([]SweepRow, []int, error) {
	rows, at, dir := SweepTable(ctx, s, out, marks)
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Sweep of `%s`\n\n", s.Config)
	fmt.Fprintf(&b, "Generated by `insitu sweep` from the journals under `%s`: %s; seeds %s", out, s.Describe(), FormatSeeds(s.Seeds))
	if len(s.second()) > 0 {
		fmt.Fprintf(&b, ", and a second block of seeds %s drawn after the settings were fixed (columns marked ²)", FormatSeeds(s.second()))
	}
	if len(s.Sets) > 0 {
		fmt.Fprintf(&b, "; every run with `--set %s`", strings.Join(s.Sets, " --set "))
	}
	if s.Iterations > 0 {
		fmt.Fprintf(&b, "; %d iterations", s.Iterations)
	}
	better := "lower is better"
	if dir == journal.Maximize {
		better = "higher is better"
	}
	fmt.Fprintf(&b, ". Best objective so far (%s) after each iteration shown, mean ± std over the finished runs of each setting; "+
		"t and p are Welch's t test of the final best against the first setting's (two-sided; p < 0.05: a difference, a claim needs ≥ 10 seeds and a second block; t's sign follows the objective's, not better/worse); "+
		"controller is the median time per iteration spent outside the black box.\n\n", better)
	b.WriteString("| setting | runs |")
	for _, m := range at {
		fmt.Fprintf(&b, " @ %d |", m)
	}
	two := len(s.second()) > 0
	b.WriteString(" final best, median (25–75 %) | t | p | controller |")
	if two {
		b.WriteString(" runs ² | final best ² |")
	}
	b.WriteString("\n|---|---|" + strings.Repeat("---|", len(at)) + "---|---|---|---|")
	if two {
		b.WriteString("---|---|")
	}
	b.WriteString("\n")
	for _, r := range rows {
		runs := strconv.Itoa(r.Runs)
		if r.Missing > 0 {
			runs += fmt.Sprintf(" (**%d not finished**)", r.Missing)
		}
		fmt.Fprintf(&b, "| %s | %s |", r.Setting.Label, runs)
		for i := range at {
			if math.IsNaN(r.At[i]) {
				b.WriteString(" – |")
			} else {
				fmt.Fprintf(&b, " %s ± %s |", num(r.At[i]), num(r.SD[i]))
			}
		}
		if len(r.Final) > 0 {
			fmt.Fprintf(&b, " %s (%s–%s) |", num(quantile(r.Final, 0.5)), num(quantile(r.Final, 0.25)), num(quantile(r.Final, 0.75)))
		} else {
			b.WriteString(" – |")
		}
		if math.IsNaN(r.Test.T) {
			b.WriteString(" – | – |")
		} else if math.IsNaN(r.Test.P) {
			fmt.Fprintf(&b, " %.2f | – |", r.Test.T)
		} else {
			fmt.Fprintf(&b, " %.2f | %s |", r.Test.T, pval(r.Test.P))
		}
		fmt.Fprintf(&b, " %s |", r.Controller.Round(100*time.Microsecond))
		if two {
			runs := strconv.Itoa(r.Runs2)
			if r.Missing2 > 0 {
				runs += fmt.Sprintf(" (**%d not finished**)", r.Missing2)
			}
			if len(r.Final2) > 0 {
				m, v := meanVar(r.Final2)
				fmt.Fprintf(&b, " %s | %s ± %s |", runs, num(m), num(math.Sqrt(v)))
			} else {
				fmt.Fprintf(&b, " %s | – |", runs)
			}
		}
		b.WriteString("\n")
	}
	if len(rows) > 1 && rows[0].LastIter > 0 {
		labels := make([]string, len(rows))
		tuned, check := map[string][]float64{}, map[string][]float64{}
		for i, r := range rows {
			labels[i] = r.Setting.Label
			tuned[r.Setting.Label], check[r.Setting.Label] = r.Final, r.Final2
		}
		writeClaims(&b, labels, tuned, check, two, dir, "Final best objective", rows[0].LastIter, s.Seeds, s.second())
	}
	var curves []report.Curve
	for _, r := range rows {
		curves = append(curves, r.Curves...)
	}
	if len(curves) > 0 {
		if err := writePNG(filepath.Join(out, "sweep.png"), func(f io.Writer) error {
			return report.PlotBestVsQueries(f, s.title(), report.Summarize(curves), logY)
		}); err != nil {
			return rows, at, err
		}
		b.WriteString("\n![best objective against queries per setting](sweep.png)\n")
	}
	return rows, at, writeFile(filepath.Join(out, "report.md"), b.Bytes())
}
