package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"image/png"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/insitu-lab/insitu/loop"
	"github.com/insitu-lab/insitu/loop/journal"
)

// exportRuns are the runs the export tests read: two CNON runs of
// different lengths (one problem), an SMU bench's dry run and a PNN
// training, made once.
type exportRuns struct {
	cnon, cnon2, smu, pnn string
}

var (
	exportOnce sync.Once
	exportSet  exportRuns
	exportErr  string
)

func makeExportRuns(t *testing.T) exportRuns {
	t.Helper()
	exportOnce.Do(func() {
		root, err := os.MkdirTemp("", "insitu-export-")
		if err != nil {
			exportErr = err.Error()
			return
		}
		exportSet = exportRuns{
			cnon: filepath.Join(root, "cnon-gradpie"), cnon2: filepath.Join(root, "cnon-random"),
			smu: filepath.Join(root, "smu"), pnn: filepath.Join(root, "pnn"),
		}
		for _, args := range [][]string{
			{"run", "../../configs/cnon.yaml", "-q", "--iterations", "3", "--set", "init.points=20", "--set", "surrogate.hidden=[16,16]", "-o", exportSet.cnon},
			{"run", "../../configs/cnon.yaml", "-q", "--iterations", "5", "--method", "random", "--seed", "2", "--set", "init.points=20", "-o", exportSet.cnon2},
			{"run", "../../configs/bench-smu.yaml", "--dry-run", "-q", "--iterations", "3", "-o", exportSet.smu},
			{"train", "../../configs/pnn-cnon.yaml", "-q", "--set", "epochs=1", "--set", "data.n=60", "-o", exportSet.pnn},
		} {
			root := newRoot()
			var out, errOut bytes.Buffer
			root.SetOut(&out)
			root.SetErr(&errOut)
			root.SetArgs(args)
			if err := root.Execute(); err != nil {
				exportErr = strings.Join(args, " ") + ": " + err.Error() + "\n" + errOut.String()
				return
			}
		}
		exportSet.smu += "-dryrun"
	})
	if exportErr != "" {
		t.Fatal(exportErr)
	}
	return exportSet
}

// pythonWith returns Debian's python3 if it imports modules; it skips the
// test when not, and fails under CI, whose .ci/run installs them.
func pythonWith(t *testing.T, modules ...string) string {
	t.Helper()
	const py = "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import "+strings.Join(modules, ", ")).Run(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s with %v is needed under CI (apt-get install python3-xarray python3-netcdf4): %v", py, modules, err)
		}
		t.Skipf("%s with %v not available: %v", py, modules, err)
	}
	return py
}

// xarrayDump prints a NetCDF file as xarray.open_dataset decodes it:
// sizes, global attributes, and every variable's dimensions, dtype,
// attributes and values (times as integer nanoseconds, NaN and NaT as
// null).
const xarrayDump = `
import json, sys, warnings
import numpy as np, xarray as xr
warnings.simplefilter("ignore", RuntimeWarning)
ds = xr.open_dataset(sys.argv[1])
def enc(a):
    a = np.asarray(a)
    if a.dtype.kind == "M":
        return [None if np.isnat(x) else int(x.astype("datetime64[ns]").astype("int64")) for x in a.ravel()]
    if a.dtype.kind == "f":
        return [float(x) if np.isfinite(x) else None for x in a.ravel()]
    if a.dtype.kind in "iu":
        return [int(x) for x in a.ravel()]
    return [str(x) for x in a.ravel()]
out = {"sizes": dict(ds.sizes), "attrs": {k: str(v) for k, v in ds.attrs.items()}, "vars": {}}
for name, v in ds.variables.items():
    out["vars"][name] = {"dims": list(v.dims), "dtype": str(v.dtype), "attrs": {k: str(x) for k, x in v.attrs.items()}, "values": enc(v.values)}
print(json.dumps(out))
`

type xrVar struct {
	Dims   []string
	Dtype  string
	Attrs  map[string]string
	Values []any
}

type xrDataset struct {
	Sizes map[string]int
	Attrs map[string]string
	Vars  map[string]xrVar
}

func openXarray(t *testing.T, py, path string) xrDataset {
	t.Helper()
	out, err := exec.Command(py, "-c", xarrayDump, path).CombinedOutput()
	if err != nil {
		t.Fatalf("xarray.open_dataset(%s): %v\n%s", path, err, out)
	}
	var ds xrDataset
	if err := json.Unmarshal(out, &ds); err != nil {
		t.Fatalf("%v\n%.2000s", err, out)
	}
	return ds
}

func readJournal(t *testing.T, dir string) ([]journal.Query, []journal.Iteration, []journal.EventRecord, journal.Meta, []byte) {
	t.Helper()
	j, err := journal.OpenReadOnly(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	ctx := t.Context()
	qs, err := j.Queries(ctx)
	if err != nil {
		t.Fatal(err)
	}
	its, err := j.Iterations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	evs, err := j.Events(ctx)
	if err != nil {
		t.Fatal(err)
	}
	m, err := j.Meta(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := j.Config(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return qs, its, evs, m, cfg
}

// float is a JSON value as xarray gave it: null is NaN.
func float(v any) float64 {
	if v == nil {
		return math.NaN()
	}
	return v.(float64)
}

func sameFloat(a, b float64) bool { return a == b || math.IsNaN(a) && math.IsNaN(b) }

// expected names and units of the three problems, written out here rather
// than asked of the describers the export uses.
var exportWant = map[string]struct {
	inputs, inUnits, inRoles, outputs, outUnits []string
	objective                                   bool
}{
	"cnon": {
		inputs:   []string{"q0[0]", "q0[1]", "q0[2]", "q0[3]", "q0[4]", "q0[5]", "q0[6]", "q0[7]", "q0[8]", "q0[9]"},
		inUnits:  []string{"rad", "rad", "rad", "rad", "rad", "rad", "rad", "rad", "rad", "rad"},
		inRoles:  []string{"setpoint", "setpoint", "setpoint", "setpoint", "setpoint", "setpoint", "setpoint", "setpoint", "setpoint", "setpoint"},
		outputs:  []string{"qT[0]", "qT[1]", "qT[2]", "qT[3]", "qT[4]", "qT[5]", "qT[6]", "qT[7]", "qT[8]", "qT[9]"},
		outUnits: []string{"rad", "rad", "rad", "rad", "rad", "rad", "rad", "rad", "rad", "rad"}, objective: true,
	},
	"smu": {inputs: []string{"smu/voltage"}, inUnits: []string{"V"}, inRoles: []string{"setpoint"},
		outputs: []string{"smu/voltage", "smu/current", "smu/compliance"}, outUnits: []string{"V", "A", ""}, objective: true},
	"pnn": {
		inputs:   []string{"u0", "u1", "theta0", "theta1", "theta2", "theta3", "theta4", "theta5", "theta6", "theta7"},
		inUnits:  []string{"", "", "", "", "", "", "", "", "", ""},
		inRoles:  []string{"data", "data", "parameter", "parameter", "parameter", "parameter", "parameter", "parameter", "parameter", "parameter"},
		outputs:  []string{"c0", "c1"},
		outUnits: []string{"", ""},
	},
}

// checkRun compares run r (position k along run, or the whole dataset
// when run is false) with its journal: every name, unit and value.
func checkRun(t *testing.T, ds xrDataset, dir, problem string, k int, multi bool) {
	t.Helper()
	want := exportWant[problem]
	qs, its, evs, meta, cfg := readJournal(t, dir)
	nq := ds.Sizes["query"]
	d, m := len(want.inputs), len(want.outputs)
	strs := func(name string) []string {
		var out []string
		for _, v := range ds.Vars[name].Values {
			out = append(out, v.(string))
		}
		return out
	}
	if got := strs("input"); !slices.Equal(got, want.inputs) {
		t.Errorf("%s: input %q, want %q", problem, got, want.inputs)
	}
	if got := strs("input_unit"); !slices.Equal(got, want.inUnits) {
		t.Errorf("%s: input_unit %q, want %q", problem, got, want.inUnits)
	}
	if got := strs("output"); !slices.Equal(got, want.outputs) {
		t.Errorf("%s: output %q, want %q", problem, got, want.outputs)
	}
	if got := strs("output_unit"); !slices.Equal(got, want.outUnits) {
		t.Errorf("%s: output_unit %q, want %q", problem, got, want.outUnits)
	}
	if got := strs("input_role"); !slices.Equal(got, want.inRoles) {
		t.Errorf("%s: input_role %q, want %q", problem, got, want.inRoles)
	}
	if ds.Sizes["input"] != d || ds.Sizes["output"] != m {
		t.Errorf("%s: sizes %v", problem, ds.Sizes)
	}
	if !multi && nq != len(qs) {
		t.Errorf("%s: %d queries, the journal has %d", problem, nq, len(qs))
	}
	x, y, obj := ds.Vars["x"], ds.Vars["y"], ds.Vars["objective"]
	wantDims := func(v xrVar, name string, dims ...string) {
		if multi {
			dims = append([]string{"run"}, dims...)
		}
		if !slices.Equal(v.Dims, dims) {
			t.Errorf("%s: %s dims %v, want %v", problem, name, v.Dims, dims)
		}
	}
	wantDims(x, "x", "query", "input")
	wantDims(y, "y", "query", "output")
	if _, ok := ds.Vars["objective"]; ok != want.objective {
		t.Errorf("%s: objective present %v, want %v", problem, ok, want.objective)
	}
	at := func(v xrVar, i int) any { return v.Values[k*(len(v.Values)/max(ds.Sizes["run"], 1))+i] }
	for i := range nq {
		if i >= len(qs) {
			// Padding after a shorter run.
			if float(at(x, i*d)) == float(at(x, i*d)) || at(ds.Vars["query_id"], i) != nil || at(ds.Vars["status"], i) != "" {
				t.Errorf("%s: padding at query %d is not NaN/fill/empty", problem, i)
			}
			continue
		}
		q := qs[i]
		for c := range d {
			if g := float(at(x, i*d+c)); !sameFloat(g, q.X[c]) {
				t.Fatalf("%s: x[%d, %d] = %v, journal %v", problem, i, c, g, q.X[c])
			}
		}
		for c := range m {
			w := math.NaN()
			if q.Y != nil {
				w = q.Y[c]
			}
			if g := float(at(y, i*m+c)); !sameFloat(g, w) {
				t.Fatalf("%s: y[%d, %d] = %v, journal %v", problem, i, c, g, w)
			}
		}
		if want.objective {
			if g := float(at(obj, i)); !sameFloat(g, q.Objective) {
				t.Fatalf("%s: objective[%d] = %v, journal %v", problem, i, g, q.Objective)
			}
		}
		for _, c := range []struct {
			name string
			want float64
		}{{"query_id", float64(q.ID)}, {"iteration", float64(q.Iteration)}, {"slot", float64(q.Slot)}} {
			if g := float(at(ds.Vars[c.name], i)); g != c.want {
				t.Fatalf("%s: %s[%d] = %v, journal %v", problem, c.name, i, g, c.want)
			}
		}
		if g := at(ds.Vars["role"], i); g != string(q.Role) {
			t.Fatalf("%s: role[%d] = %v, journal %v", problem, i, g, q.Role)
		}
		if g := at(ds.Vars["status"], i); g != string(q.Status) {
			t.Fatalf("%s: status[%d] = %v, journal %v", problem, i, g, q.Status)
		}
		for _, c := range []struct {
			name string
			ns   int64
		}{{"started_at", q.StartedAt.UnixNano()}, {"finished_at", q.FinishedAt.UnixNano()}} {
			g := at(ds.Vars[c.name], i)
			if g == nil || math.Abs(g.(float64)-float64(c.ns)) > 1000 {
				t.Fatalf("%s: %s[%d] = %v ns, journal %d ns", problem, c.name, i, g, c.ns)
			}
		}
	}
	if multi {
		if g := at(ds.Vars["run"], 0); g != filepath.Base(dir) {
			t.Errorf("run[%d] = %v, want %s", k, g, filepath.Base(dir))
		}
		if g := at(ds.Vars["run_method"], 0); g != meta.Method {
			t.Errorf("run_method[%d] = %v, want %s", k, g, meta.Method)
		}
		if g := at(ds.Vars["run_config"], 0); g != string(cfg) {
			t.Errorf("run_config[%d] differs from the journal's", k)
		}
	} else {
		for key, w := range map[string]string{"method": meta.Method, "seed": strconv.FormatUint(meta.Seed, 10),
			"status": string(meta.Status), "config": string(cfg), "kind": kindOf(meta.Kind)} {
			if ds.Attrs[key] != w {
				t.Errorf("%s: attribute %s = %.80q, want %.80q", problem, key, ds.Attrs[key], w)
			}
		}
	}
	// Iterations (a training's epochs) and safety events.
	best := "iter_best"
	if !want.objective {
		best = "iter_test_accuracy"
	}
	for i, it := range its {
		if g := float(at(ds.Vars["iter_iteration"], i)); g != float64(it.Iteration) {
			t.Errorf("%s: iter_iteration[%d] = %v, want %d", problem, i, g, it.Iteration)
		}
		if g := float(at(ds.Vars[best], i)); !sameFloat(g, it.Best) {
			t.Errorf("%s: %s[%d] = %v, want %v", problem, best, i, g, it.Best)
		}
		if g := float(at(ds.Vars["iter_controller_time"], i)); math.Abs(g-it.Controller.Seconds()) > 1e-9 {
			t.Errorf("%s: iter_controller_time[%d] = %v, want %v", problem, i, g, it.Controller.Seconds())
		}
	}
	for i, e := range evs {
		if g := at(ds.Vars["event_kind"], i); g != e.Kind {
			t.Errorf("%s: event_kind[%d] = %v, want %v", problem, i, g, e.Kind)
		}
		if g := at(ds.Vars["event_detail"], i); g != e.Detail {
			t.Errorf("%s: event_detail[%d] = %v, want %v", problem, i, g, e.Detail)
		}
		if g := float(at(ds.Vars["event_value"], i)); !sameFloat(g, e.Value) {
			t.Errorf("%s: event_value[%d] = %v, want %v", problem, i, g, e.Value)
		}
	}
}

// kindOf is the config's blackbox.kind a journal's Kind is made from.
func kindOf(kind string) string { return strings.TrimSuffix(kind, " (dry run)") }

// Each run exports to a NetCDF file that xarray opens with every name,
// unit and value of the journal; two CNON runs make one dataset along run,
// padded; runs of different problems are refused and leave no file.
func TestExportNetCDFOpensInXarray(t *testing.T) {
	py := pythonWith(t, "xarray", "netCDF4")
	rs := makeExportRuns(t)
	out := t.TempDir()
	for _, c := range []struct{ dir, problem string }{{rs.cnon, "cnon"}, {rs.smu, "smu"}, {rs.pnn, "pnn"}} {
		path := filepath.Join(out, c.problem+".nc")
		if _, stderr, err := run(t, "export", c.dir, "--format", "netcdf", "-o", path); err != nil {
			t.Fatalf("%s: %v\n%s", c.problem, err, stderr)
		}
		checkRun(t, openXarray(t, py, path), c.dir, c.problem, 0, false)
	}

	both := filepath.Join(out, "both.nc")
	if _, stderr, err := run(t, "export", rs.cnon, rs.cnon2, "--format", "netcdf", "-o", both); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	ds := openXarray(t, py, both)
	if ds.Sizes["run"] != 2 {
		t.Fatalf("sizes %v, want run 2", ds.Sizes)
	}
	checkRun(t, ds, rs.cnon, "cnon", 0, true)
	checkRun(t, ds, rs.cnon2, "cnon", 1, true)

	mixed := filepath.Join(out, "mixed.nc")
	_, _, err := run(t, "export", rs.cnon, rs.smu, "--format", "netcdf", "-o", mixed)
	if err == nil || !strings.Contains(err.Error(), "one problem") {
		t.Errorf("mixing CNON and SMU runs: %v", err)
	}
	if ents, _ := os.ReadDir(out); len(ents) != 4 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("files left: %v, want the 4 datasets", names)
	}
}

// The CSV export names inputs and outputs apart, so pandas keeps every
// column (an SMU's set and measured voltage share a name); its units sit
// in FILE.units.csv; the npy export writes the names beside the arrays.
func TestExportCSVAndNPYNames(t *testing.T) {
	rs := makeExportRuns(t)
	out := t.TempDir()
	path := filepath.Join(out, "smu.csv")
	if _, stderr, err := run(t, "export", rs.smu, "-o", path); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	data, _ := os.ReadFile(path)
	header, _, _ := strings.Cut(string(data), "\n")
	for _, w := range []string{"in:smu/voltage", "out:smu/voltage", "out:smu/current", "objective", "started_at"} {
		if !strings.Contains(header, w) {
			t.Errorf("header %q lacks %s", header, w)
		}
	}
	units, err := os.ReadFile(filepath.Join(out, "smu.units.csv"))
	if err != nil || !strings.Contains(string(units), "in:smu/voltage,V,setpoint,") {
		t.Errorf("units sidecar: %v\n%s", err, units)
	}
	stdout, _, err := run(t, "export", rs.smu, "--units-row")
	if lines := strings.Split(stdout, "\n"); err != nil || len(lines) < 2 || !strings.Contains(lines[1], ",V,") {
		t.Errorf("--units-row: %v\n%.300s", err, stdout)
	}
	npy := filepath.Join(out, "npy")
	if _, _, err := run(t, "export", rs.smu, "--format", "npy", "-o", npy); err != nil {
		t.Fatal(err)
	}
	py := pythonWith(t, "numpy", "pandas")
	script := `
import json, sys, numpy as np, pandas as pd
d = sys.argv[1]
df = pd.read_csv(sys.argv[2])
print(json.dumps({"columns": list(df.columns), "x_names": np.load(d + "/x_names.npy").tolist(),
  "y_names": np.load(d + "/y_names.npy").tolist(), "x_units": np.load(d + "/x_units.npy").tolist(),
  "x": np.load(d + "/x.npy").shape, "ids": np.load(d + "/query_id.npy").tolist()[:3]}))
`
	raw, err := exec.Command(py, "-c", script, npy, path).CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, raw)
	}
	var got struct {
		Columns, XNames, YNames, XUnits []string
		X                               []int
		IDs                             []int
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&struct {
		Columns *[]string `json:"columns"`
		XNames  *[]string `json:"x_names"`
		YNames  *[]string `json:"y_names"`
		XUnits  *[]string `json:"x_units"`
		X       *[]int    `json:"x"`
		IDs     *[]int    `json:"ids"`
	}{&got.Columns, &got.XNames, &got.YNames, &got.XUnits, &got.X, &got.IDs}); err != nil {
		t.Fatalf("%v\n%s", err, raw)
	}
	if !slices.Contains(got.Columns, "in:smu/voltage") || !slices.Contains(got.Columns, "out:smu/voltage") || slices.Contains(got.Columns, "smu/voltage.1") {
		t.Errorf("pandas columns %v", got.Columns)
	}
	if !slices.Equal(got.XNames, []string{"smu/voltage"}) || !slices.Equal(got.XUnits, []string{"V"}) ||
		!slices.Equal(got.YNames, exportWant["smu"].outputs) || len(got.X) != 2 || got.X[1] != 1 || !slices.Equal(got.IDs, []int{1, 2, 3}) {
		t.Errorf("npy: %+v", got)
	}
}

// docKey is what event-model (1.24) allows as a top-level key of a start,
// descriptor or stop document beside the schema's own properties (their
// patternProperties): no '.' and no '/'.
var docKey = regexp.MustCompile(`^([^./]+)$`)

// The Bluesky export checked against the event-model schemas' required
// fields (event_model is not installable here, so they are written out):
// run_start {uid, time}; event_descriptor {uid, time, run_start,
// data_keys}, each data key {dtype (string, number, array, boolean,
// integer), shape (integers), source}; event {uid, time, descriptor,
// seq_num, data, timestamps}, whose data and timestamps have the
// descriptor's keys; run_stop {uid, time, run_start, exit_status (success,
// abort, fail)}. One event per query in primary, one per iteration record
// in iterations, one per safety event in safety.
func TestExportBlueskyDocuments(t *testing.T) {
	rs := makeExportRuns(t)
	for _, c := range []struct{ dir, problem string }{{rs.cnon, "cnon"}, {rs.smu, "smu"}, {rs.pnn, "pnn"}} {
		stdout, stderr, err := run(t, "export", c.dir, "--format", "bluesky")
		if err != nil {
			t.Fatalf("%s: %v\n%s", c.problem, err, stderr)
		}
		qs, its, evs, meta, cfg := readJournal(t, c.dir)
		var (
			names       []string
			start, stop map[string]any
			descs       = map[string]map[string]any{} // uid → descriptor
			streams     = map[string]string{}         // uid → stream name
			events      = map[string][]map[string]any{}
		)
		sc := bufio.NewScanner(strings.NewReader(stdout))
		sc.Buffer(nil, 1<<24)
		for sc.Scan() {
			var pair []json.RawMessage
			if err := json.Unmarshal(sc.Bytes(), &pair); err != nil || len(pair) != 2 {
				t.Fatalf("%s: line %.200q is not [name, doc]: %v", c.problem, sc.Text(), err)
			}
			var name string
			var doc map[string]any
			if err := json.Unmarshal(pair[0], &name); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(pair[1], &doc); err != nil {
				t.Fatal(err)
			}
			names = append(names, name)
			required := map[string][]string{
				"start": {"uid", "time"}, "descriptor": {"uid", "time", "run_start", "data_keys"},
				"event": {"uid", "time", "descriptor", "seq_num", "data", "timestamps"}, "stop": {"uid", "time", "run_start", "exit_status"},
			}[name]
			if required == nil {
				t.Fatalf("%s: unknown document %q", c.problem, name)
			}
			for _, k := range required {
				if _, ok := doc[k]; !ok {
					t.Errorf("%s: %s document lacks %s", c.problem, name, k)
				}
			}
			if _, ok := doc["uid"].(string); !ok {
				t.Errorf("%s: %s uid is not a string", c.problem, name)
			}
			if _, ok := doc["time"].(float64); !ok {
				t.Errorf("%s: %s time is not a number", c.problem, name)
			}
			if name != "event" {
				for k := range doc {
					if !docKey.MatchString(k) {
						t.Errorf("%s: %s key %q not allowed", c.problem, name, k)
					}
				}
			}
			switch name {
			case "start":
				start = doc
			case "descriptor":
				if doc["run_start"] != start["uid"] {
					t.Errorf("%s: descriptor's run_start is not the start's uid", c.problem)
				}
				for key, raw := range doc["data_keys"].(map[string]any) {
					dk := raw.(map[string]any)
					if !slices.Contains([]string{"string", "number", "array", "boolean", "integer"}, dk["dtype"].(string)) {
						t.Errorf("%s: data key %s dtype %v", c.problem, key, dk["dtype"])
					}
					if _, ok := dk["source"].(string); !ok {
						t.Errorf("%s: data key %s has no source", c.problem, key)
					}
					shape, ok := dk["shape"].([]any)
					if !ok {
						t.Errorf("%s: data key %s shape %v", c.problem, key, dk["shape"])
					}
					for _, s := range shape {
						if f, ok := s.(float64); !ok || f != math.Trunc(f) {
							t.Errorf("%s: data key %s shape %v", c.problem, key, shape)
						}
					}
					if _, ok := dk["units"]; !ok {
						t.Errorf("%s: data key %s has no units entry", c.problem, key)
					}
				}
				descs[doc["uid"].(string)] = doc
				streams[doc["uid"].(string)] = doc["name"].(string)
			case "event":
				desc, ok := descs[doc["descriptor"].(string)]
				if !ok {
					t.Fatalf("%s: event before its descriptor", c.problem)
				}
				keys := desc["data_keys"].(map[string]any)
				data, ts := doc["data"].(map[string]any), doc["timestamps"].(map[string]any)
				if len(data) != len(keys) || len(ts) != len(keys) {
					t.Errorf("%s: event has %d data and %d timestamps for %d data keys", c.problem, len(data), len(ts), len(keys))
				}
				for k := range keys {
					if _, ok := data[k]; !ok {
						t.Errorf("%s: event lacks data %s", c.problem, k)
					}
				}
				s := streams[doc["descriptor"].(string)]
				if got := int(doc["seq_num"].(float64)); got != len(events[s])+1 {
					t.Errorf("%s: %s seq_num %d, want %d", c.problem, s, got, len(events[s])+1)
				}
				events[s] = append(events[s], doc)
			case "stop":
				stop = doc
			}
		}
		if names[0] != "start" || names[len(names)-1] != "stop" {
			t.Errorf("%s: documents %v…%v: want start first and stop last", c.problem, names[0], names[len(names)-1])
		}
		if start["config"] != string(cfg) || start["method"] != meta.Method || start["seed"] != float64(meta.Seed) {
			t.Errorf("%s: start has config/method/seed %.40v %v %v", c.problem, start["config"], start["method"], start["seed"])
		}
		if _, ok := start["provenance"].(map[string]any)["insitu_version"]; !ok {
			t.Errorf("%s: start lacks provenance.insitu_version", c.problem)
		}
		if stop["run_start"] != start["uid"] || stop["exit_status"] != "success" {
			t.Errorf("%s: stop %v", c.problem, stop)
		}
		nsafety := 0
		for _, e := range evs {
			if e.Kind != journal.KindPrediction {
				nsafety++
			}
		}
		if len(events["primary"]) != len(qs) || len(events["iterations"]) != len(its) || len(events["safety"]) != nsafety {
			t.Errorf("%s: events primary %d iterations %d safety %d; journal %d queries, %d iterations, %d safety events",
				c.problem, len(events["primary"]), len(events["iterations"]), len(events["safety"]), len(qs), len(its), nsafety)
		}
		num := stop["num_events"].(map[string]any)
		if num["primary"] != float64(len(qs)) {
			t.Errorf("%s: stop num_events %v", c.problem, num)
		}
		// The first query's values, by data key.
		ev := events["primary"][0]["data"].(map[string]any)
		switch c.problem {
		case "smu":
			if ev["smu_voltage_setpoint"] != qs[0].X[0] || ev["smu_voltage"] != qs[0].Y[0] || ev["smu_current"] != qs[0].Y[1] {
				t.Errorf("smu: first event %v, query x %v y %v", ev, qs[0].X, qs[0].Y)
			}
			dk := descs[events["primary"][0]["descriptor"].(string)]["data_keys"].(map[string]any)["smu_voltage_setpoint"].(map[string]any)
			if dk["units"] != "V" || dk["object_name"] != "smu" {
				t.Errorf("smu: data key %v", dk)
			}
		case "cnon":
			arr, ok := ev["q0_setpoint"].([]any)
			if !ok || len(arr) != 10 || arr[3] != qs[0].X[3] {
				t.Errorf("cnon: q0_setpoint %v, query x %v", ev["q0_setpoint"], qs[0].X)
			}
			if ev["objective"] != qs[0].Objective {
				t.Errorf("cnon: objective %v, want %v", ev["objective"], qs[0].Objective)
			}
		case "pnn":
			if _, ok := ev["objective"]; ok {
				t.Error("pnn: a training's queries have no objective")
			}
			if th, ok := ev["theta_setpoint"].([]any); !ok || len(th) != 8 || th[0] != qs[0].X[2] {
				t.Errorf("pnn: theta_setpoint %v, query x %v", ev["theta_setpoint"], qs[0].X)
			}
		}
	}
}

// runs compare and plot on a mixed directory (two CNON runs, an SMU dry
// run, a training and a directory that is no run) group by problem, never
// average across problems, and exit cleanly; a plot that cannot be written
// leaves no file.
func TestMixedRunsCompareAndPlot(t *testing.T) {
	rs := makeExportRuns(t)
	notRun := t.TempDir()
	dirs := []string{rs.cnon, rs.cnon2, rs.smu, rs.pnn, notRun}
	stdout, stderr, err := run(t, append([]string{"runs", "compare"}, dirs...)...)
	if err != nil {
		t.Fatalf("compare: %v\n%s", err, stderr)
	}
	if !strings.Contains(stderr, "skipping "+notRun) {
		t.Errorf("compare does not say it skips %s:\n%s", notRun, stderr)
	}
	for _, w := range []string{"problem cnon (distance, minimized): 2 run(s)", "problem bench-smu (distance, minimized): 1 run(s)",
		"problem pnn-cnon (training: test accuracy, maximized): 1 run(s)", "test accuracy"} {
		if !strings.Contains(stdout, w) {
			t.Errorf("compare output lacks %q:\n%s", w, stdout)
		}
	}
	// Each method's row counts the runs of its own problem only.
	for _, line := range strings.Split(stdout, "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "gradpie" && f[1] != "1" {
			t.Errorf("gradpie averages %s runs: %q", f[1], line)
		}
	}

	img := filepath.Join(t.TempDir(), "x.png")
	if _, stderr, err := run(t, append([]string{"plot", "--log", "-o", img}, dirs...)...); err != nil {
		t.Fatalf("plot --log: %v\n%s", err, stderr)
	}
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if p, err := png.Decode(f); err != nil || 10*p.Bounds().Dy() < 14*p.Bounds().Dx() {
		t.Errorf("plot: %v; want three panels one above the other", err)
	}

	bad := filepath.Join(t.TempDir(), "none.png")
	if _, _, err := run(t, "plot", "-o", bad, notRun); err == nil {
		t.Error("plot of no run succeeded")
	}
	missingDir := filepath.Join(t.TempDir(), "no", "such", "x.png")
	if _, _, err := run(t, "plot", "-o", missingDir, rs.cnon); err == nil {
		t.Error("plot into a missing directory succeeded")
	}
	for _, p := range []string{bad, missingDir} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s left behind", p)
		}
	}
	ents, _ := os.ReadDir(filepath.Dir(bad))
	if len(ents) != 0 {
		t.Errorf("files left beside the failed plot: %v", ents)
	}

	stdout, _, err = run(t, "runs", "list", filepath.Dir(rs.pnn))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(stdout, "\n") {
		if strings.HasPrefix(line, rs.pnn+" ") && !strings.Contains(line, "test acc.") {
			t.Errorf("runs list shows a training without its accuracy: %q", line)
		}
	}
}

// The training progress never shows a NaN loss: epoch 0 has no minibatch
// loss, and shows the loss over the training set instead.
func TestTrainDescriptionHasNoNaN(t *testing.T) {
	d := trainDescription(loop.EpochMetrics{Epoch: 0, TrainLoss: math.NaN(), TrainEval: 0.75, TrainAcc: 0.5, TestAcc: 0.5, Queries: 300})
	if strings.Contains(d, "NaN") || !strings.Contains(d, "loss 0.75") {
		t.Errorf("epoch 0: %q", d)
	}
	d = trainDescription(loop.EpochMetrics{Epoch: 3, TrainLoss: 0.6, TrainEval: math.NaN(), TrainAcc: math.NaN(), TestAcc: math.NaN(), Queries: 900})
	if strings.Contains(d, "NaN") || !strings.Contains(d, "loss 0.6") {
		t.Errorf("an epoch not evaluated: %q", d)
	}
}
