package export

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/insitu-lab/insitu/loop/export/netcdf"
	"github.com/insitu-lab/insitu/loop/journal"
)

// NetCDF builds the dataset of one run, or of several runs of one problem
// along a leading run dimension. xarray.open_dataset reads it as:
//
//	dimensions  query, input, output (and iter, event when the runs have
//	            iteration records or safety events; run for several runs)
//	x           (query, input)   the inputs, per query
//	y           (query, output)  the measured outputs (NaN when none)
//	objective   (query)          with units and its direction (not for a training)
//	query_id, iteration, slot, role, status, remeasured, error,
//	started_at, finished_at      per query; times decode to datetime64
//	input, output                the names, as coordinates, with
//	input_unit, input_role, input_lower, input_upper, input_source,
//	output_unit, output_role, output_source
//	iter_*                       the iteration records (a training's epochs:
//	                             test_accuracy, train_accuracy, loss)
//	event_*                      the safety events
//
// and the run's metadata as global attributes (for several runs, what
// differs between them — method, seed, status, config… — as variables
// along run). Shorter runs are padded: NaN, the fill value of integers, an
// empty string. Runs of different problems, or with different inputs or
// outputs, are refused.
func NetCDF(runs []*Run) (*netcdf.File, error) {
	if len(runs) == 0 {
		return nil, errors.New("netcdf: no run")
	}
	if err := sameProblem(runs); err != nil {
		return nil, err
	}
	b := &ncBuilder{runs: runs, multi: len(runs) > 1}
	return b.build()
}

// sameProblem refuses runs that cannot share one dataset.
func sameProblem(runs []*Run) error {
	first := runs[0]
	p0 := first.Problem
	for _, r := range runs[1:] {
		if p := r.Problem; p != p0 {
			return fmt.Errorf("%s is %s but %s is %s: export runs of one problem together (insitu runs list shows them)", first.Dir, p0, r.Dir, p)
		}
		if err := sameVariables("input", first, r, first.Desc.Inputs, r.Desc.Inputs); err != nil {
			return err
		}
		if err := sameVariables("output", first, r, first.Desc.Outputs, r.Desc.Outputs); err != nil {
			return err
		}
	}
	return nil
}

func sameVariables(what string, a, b *Run, va, vb []Variable) error {
	if len(va) != len(vb) {
		return fmt.Errorf("%s has %d %ss but %s has %d: not one problem", a.Dir, len(va), what, b.Dir, len(vb))
	}
	for i := range va {
		if va[i].Name != vb[i].Name || va[i].Unit != vb[i].Unit {
			return fmt.Errorf("%s %d is %s [%s] in %s but %s [%s] in %s: not one problem", what, i, va[i].Name, va[i].Unit, a.Dir, vb[i].Name, vb[i].Unit, b.Dir)
		}
	}
	return nil
}

type ncBuilder struct {
	runs  []*Run
	multi bool
	f     netcdf.File
	ref   time.Time // the time origin of every time variable
}

// lead is the dimensions before a per-run variable's own.
func (b *ncBuilder) lead(dims ...string) []string {
	if b.multi {
		return append([]string{"run"}, dims...)
	}
	return dims
}

func (b *ncBuilder) dim(name string, n int) {
	b.f.Dims = append(b.f.Dims, netcdf.Dim{Name: name, Len: n})
}

func (b *ncBuilder) addVar(name string, dims []string, data any, attrs ...netcdf.Attr) {
	b.f.Vars = append(b.f.Vars, netcdf.Var{Name: name, Dims: dims, Data: data, Attrs: attrs})
}

func attr(name string, v any) netcdf.Attr { return netcdf.Attr{Name: name, Value: v} }

// text makes s a valid attribute: valid UTF-8 without NUL bytes.
func text(s string) string {
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

// strings adds a variable of strings: a char array whose last dimension,
// NAME_strlen, is the longest string's byte length (at least 1), padded
// with NUL; _Encoding tells xarray to decode it to str.
func (b *ncBuilder) strings(name string, dims []string, vals []string, attrs ...netcdf.Attr) {
	n := 1
	for i, s := range vals {
		vals[i] = strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "")
		n = max(n, len(vals[i]))
	}
	strlen := name + "_strlen"
	b.dim(strlen, n)
	data := make([]byte, len(vals)*n)
	for i, s := range vals {
		copy(data[i*n:], s)
	}
	b.addVar(name, append(slices.Clone(dims), strlen), data, append([]netcdf.Attr{attr("_Encoding", "utf-8")}, attrs...)...)
}

// ints adds an integer variable, with a _FillValue only when some value is
// the fill value (padding or a missing value): xarray turns a variable
// with a _FillValue into floats, to hold NaN.
func (b *ncBuilder) ints(name string, dims []string, data []int32, attrs ...netcdf.Attr) {
	if slices.Contains(data, netcdf.FillInt) {
		attrs = append(attrs, fillInt)
	}
	b.addVar(name, dims, data, attrs...)
}

func nan(n int) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = math.NaN()
	}
	return v
}

func fillInts(n int) []int32 {
	v := make([]int32, n)
	for i := range v {
		v[i] = netcdf.FillInt
	}
	return v
}

var (
	fillNaN  = attr("_FillValue", math.NaN())
	fillInt  = attr("_FillValue", netcdf.FillInt)
	fillByte = attr("_FillValue", netcdf.FillByte)
)

// seconds is t as seconds after the time origin, NaN for a zero time.
func (b *ncBuilder) seconds(t time.Time) float64 {
	if t.IsZero() {
		return math.NaN()
	}
	return float64(t.Sub(b.ref).Nanoseconds()) / 1e9
}

func (b *ncBuilder) timeAttrs(long string) []netcdf.Attr {
	return []netcdf.Attr{
		attr("long_name", long),
		attr("units", "seconds since "+b.ref.Format("2006-01-02 15:04:05")),
		attr("calendar", "proleptic_gregorian"),
		fillNaN,
	}
}

// uniform is the unit every variable shares, or "".
func uniform(vs []Variable) string {
	if len(vs) == 0 {
		return ""
	}
	u := vs[0].Unit
	for _, v := range vs[1:] {
		if v.Unit != u {
			return ""
		}
	}
	return u
}

func (b *ncBuilder) build() (*netcdf.File, error) {
	runs := b.runs
	first := runs[0]
	b.ref = first.Meta.Created.UTC().Truncate(time.Second)
	for _, r := range runs[1:] {
		if c := r.Meta.Created.UTC().Truncate(time.Second); c.Before(b.ref) {
			b.ref = c
		}
	}
	nq, ni, ne := 0, 0, 0
	for _, r := range runs {
		nq, ni, ne = max(nq, len(r.Queries)), max(ni, len(r.Iterations)), max(ne, len(r.Events))
	}
	if nq == 0 {
		return nil, fmt.Errorf("%s: no query to export", first.Dir)
	}
	d, m := len(first.Desc.Inputs), len(first.Desc.Outputs)
	for _, r := range runs {
		for _, q := range r.Queries {
			if len(q.X) != d || q.Y != nil && len(q.Y) != m {
				return nil, fmt.Errorf("%s: query %d has %d inputs and %d outputs, the run describes %d and %d", r.Dir, q.ID, len(q.X), len(q.Y), d, m)
			}
		}
	}
	if b.multi {
		b.dim("run", len(runs))
	}
	b.dim("query", nq)
	b.dim("input", d)
	b.dim("output", m)
	b.globals()
	if b.multi {
		b.runVars()
	}
	b.variables("input", first.Desc.Inputs)
	b.variables("output", first.Desc.Outputs)
	b.queries(nq, d, m)
	if ni > 0 {
		b.iterations(ni)
	}
	if ne > 0 {
		b.events(ne)
	}
	return &b.f, nil
}

func (b *ncBuilder) globals() {
	first := b.runs[0]
	p := first.Problem
	g := []netcdf.Attr{
		attr("Conventions", "CF-1.8"),
		attr("source", text(first.Desc.Build.Version)),
		attr("history", text(time.Now().UTC().Format(time.RFC3339)+" insitu export --format netcdf")),
		attr("name", text(p.Name)),
		attr("kind", text(first.Desc.Kind)),
		attr("box", text(first.Desc.Box)),
		attr("direction", string(p.Direction)),
		attr("training", boolText(first.Training)),
	}
	if first.Training {
		g = append(g, attr("title", text("insitu training "+p.Name)))
	} else {
		g = append(g, attr("title", text("insitu run "+p.Name)), attr("objective", text(first.Desc.Objective.Kind)))
	}
	if !b.multi {
		r := first
		g = append(g,
			attr("run", text(filepath.Base(r.Dir))),
			attr("method", text(r.Meta.Method)),
			attr("seed", strconv.FormatUint(r.Meta.Seed, 10)),
			attr("status", text(string(r.Meta.Status))),
			attr("created", r.Meta.Created.UTC().Format(time.RFC3339Nano)),
			attr("insitu_version", text(r.Meta.Version)),
			attr("config", text(string(r.Config))),
			attr("config_sha256", r.Desc.ConfigHash),
			attr("devices", text(devices(r.Desc.Devices))),
			attr("description", text(descriptionSource(r))),
		)
	}
	b.f.Attrs = g
}

func boolText(v bool) string {
	if v {
		return "true"
	}
	return "false"
}

// devices lists the devices, one per line: name (type): identity.
func devices(ds []journal.Device) string {
	var lines []string
	for _, d := range ds {
		id := d.Identity
		if id == "" {
			id = "no identity: " + d.Error
		}
		lines = append(lines, fmt.Sprintf("%s (%s): %s", d.Name, d.Type, id))
	}
	return strings.Join(lines, "\n")
}

func descriptionSource(r *Run) string {
	if !r.Stored {
		return "names, units and bounds described from the config by the exporting insitu (the journal holds none)"
	}
	return "names, units and bounds as the journal recorded them at the start of the run"
}

// runVars are the per-run metadata of several runs.
func (b *ncBuilder) runVars() {
	n := len(b.runs)
	col := func(f func(r *Run) string) []string {
		v := make([]string, n)
		for i, r := range b.runs {
			v[i] = f(r)
		}
		return v
	}
	b.strings("run", []string{"run"}, col(func(r *Run) string { return filepath.Base(r.Dir) }), attr("long_name", "run directory"))
	b.strings("run_method", []string{"run"}, col(func(r *Run) string { return r.Meta.Method }))
	b.strings("run_seed", []string{"run"}, col(func(r *Run) string { return strconv.FormatUint(r.Meta.Seed, 10) }),
		attr("long_name", "the run's seed (a uint64, in decimal)"))
	b.strings("run_status", []string{"run"}, col(func(r *Run) string { return string(r.Meta.Status) }))
	created := make([]float64, n)
	queries := make([]int32, n)
	for i, r := range b.runs {
		created[i] = b.seconds(r.Meta.Created)
		queries[i] = int32(len(r.Queries))
	}
	b.addVar("run_created", []string{"run"}, created, b.timeAttrs("run created")...)
	b.addVar("run_queries", []string{"run"}, queries, attr("long_name", "journaled queries of the run (the rest of query is padding)"))
	b.strings("run_insitu_version", []string{"run"}, col(func(r *Run) string { return r.Meta.Version }))
	b.strings("run_config", []string{"run"}, col(func(r *Run) string { return string(r.Config) }), attr("long_name", "resolved config (YAML)"))
	b.strings("run_config_sha256", []string{"run"}, col(func(r *Run) string { return r.Desc.ConfigHash }))
	b.strings("run_devices", []string{"run"}, col(func(r *Run) string { return devices(r.Desc.Devices) }))
}

// variables are the coordinate of the inputs or the outputs (their names)
// and their units, roles, bounds and sources.
func (b *ncBuilder) variables(dim string, vs []Variable) {
	n := len(vs)
	names, units, roles, sources := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	lo, hi := nan(n), nan(n)
	periodic := make([]int8, n)
	bounded := false
	for i, v := range vs {
		names[i], units[i], roles[i], sources[i] = v.Name, v.Unit, v.Role, v.Source
		if v.Lower != nil {
			lo[i], bounded = *v.Lower, true
		}
		if v.Upper != nil {
			hi[i], bounded = *v.Upper, true
		}
		if v.Periodic {
			periodic[i] = 1
		}
	}
	long := map[string]string{"input": "input coordinate", "output": "output component"}[dim]
	b.strings(dim, []string{dim}, names, attr("long_name", long))
	b.strings(dim+"_unit", []string{dim}, units, attr("long_name", "unit of each "+long+" (empty: dimensionless or unknown)"))
	b.strings(dim+"_role", []string{dim}, roles, attr("long_name", "role: setpoint, data or parameter (inputs), measurement (outputs)"))
	b.strings(dim+"_source", []string{dim}, sources, attr("long_name", "device (rig part) of each "+long+"; empty for a twin"))
	if dim == "input" || bounded {
		b.addVar(dim+"_lower", []string{dim}, lo, attr("long_name", "lower bound"), fillNaN)
		b.addVar(dim+"_upper", []string{dim}, hi, attr("long_name", "upper bound"), fillNaN)
	}
	if dim == "input" {
		b.addVar("input_periodic", []string{dim}, periodic, attr("long_name", "1: an angle whose bounds are one setting"),
			attr("flag_values", []int8{0, 1}), attr("flag_meanings", "interval periodic"))
	}
}

func (b *ncBuilder) queries(nq, d, m int) {
	first := b.runs[0]
	nr := len(b.runs)
	x, y, obj := nan(nr*nq*d), nan(nr*nq*m), nan(nr*nq)
	started, finished := nan(nr*nq), nan(nr*nq)
	id, iter, slot := fillInts(nr*nq), fillInts(nr*nq), fillInts(nr*nq)
	remeasured := make([]int8, nr*nq)
	for i := range remeasured {
		remeasured[i] = netcdf.FillByte
	}
	role, status, errs := make([]string, nr*nq), make([]string, nr*nq), make([]string, nr*nq)
	anyErr := false
	for r, run := range b.runs {
		for k, q := range run.Queries {
			at := r*nq + k
			copy(x[at*d:], q.X)
			if q.Y != nil {
				copy(y[at*m:], q.Y)
			}
			obj[at] = q.Objective
			started[at], finished[at] = b.seconds(q.StartedAt), b.seconds(q.FinishedAt)
			id[at], iter[at], slot[at] = int32(q.ID), int32(q.Iteration), int32(q.Slot)
			remeasured[at] = 0
			if q.Remeasured {
				remeasured[at] = 1
			}
			role[at], status[at], errs[at] = string(q.Role), string(q.Status), q.Err
			anyErr = anyErr || q.Err != ""
		}
	}
	qdims := b.lead("query")
	pos := make([]int32, nq)
	for i := range pos {
		pos[i] = int32(i)
	}
	b.addVar("query", []string{"query"}, pos, attr("long_name", "position of the query in the run's journal (0-based)"))
	xa := []netcdf.Attr{attr("long_name", "input x of each query"), fillNaN}
	if u := uniform(first.Desc.Inputs); u != "" {
		xa = append(xa, attr("units", text(u)))
	}
	b.addVar("x", b.lead("query", "input"), x, xa...)
	ya := []netcdf.Attr{attr("long_name", "measured output y of each query (NaN: none)"), fillNaN}
	if u := uniform(first.Desc.Outputs); u != "" {
		ya = append(ya, attr("units", text(u)))
	}
	b.addVar("y", b.lead("query", "output"), y, ya...)
	if !first.Training {
		oa := []netcdf.Attr{attr("long_name", text("objective ("+first.Desc.Objective.Kind+")")), attr("direction", string(first.Problem.Direction)), fillNaN}
		if first.Desc.Objective.Unit != "" {
			oa = append(oa, attr("units", text(first.Desc.Objective.Unit)))
		}
		b.addVar("objective", qdims, obj, oa...)
	}
	b.ints("query_id", qdims, id, attr("long_name", "the query's id in the journal"))
	b.ints("iteration", qdims, iter, attr("long_name", "iteration (a training's epoch) the query belongs to"))
	b.ints("slot", qdims, slot, attr("long_name", "which selected point of the iteration (-1: none)"))
	b.strings("role", qdims, role, attr("long_name", "why the query was made"),
		attr("description", "init: initial design; step: the point an optimizer step chose; local: a local sample around it; baseline: a baseline method's query; eval: an evaluation"))
	b.strings("status", qdims, status, attr("long_name", "started (no result), done, failed or remeasured (measured again on resume)"))
	ra := []netcdf.Attr{attr("long_name", "1: measured again on resume")}
	if slices.Contains(remeasured, netcdf.FillByte) {
		ra = append(ra, fillByte)
	}
	b.addVar("remeasured", qdims, remeasured, ra...)
	b.addVar("started_at", qdims, started, b.timeAttrs("query started (intent journaled, before the device was touched)")...)
	b.addVar("finished_at", qdims, finished, b.timeAttrs("query finished (its result journaled)")...)
	if anyErr {
		b.strings("error", qdims, errs, attr("long_name", "the failure of a failed query"))
	}
}

func (b *ncBuilder) iterations(ni int) {
	nr := len(b.runs)
	it := fillInts(nr * ni)
	queries, projected := fillInts(nr*ni), fillInts(nr*ni)
	best, step, loss, ctrl, box, at := nan(nr*ni), nan(nr*ni), nan(nr*ni), nan(nr*ni), nan(nr*ni), nan(nr*ni)
	for r, run := range b.runs {
		for k, rec := range run.Iterations {
			i := r*ni + k
			it[i], queries[i], projected[i] = int32(rec.Iteration), int32(rec.Queries), int32(rec.Projected)
			best[i], step[i], loss[i] = rec.Best, rec.StepObjective, rec.TrainLoss
			ctrl[i], box[i], at[i] = rec.Controller.Seconds(), rec.Box.Seconds(), b.seconds(rec.Time)
		}
	}
	dims := b.lead("iter")
	// The coordinate is the position; the iteration numbers are a variable,
	// since several runs need not share them.
	pos := make([]int32, ni)
	for i := range pos {
		pos[i] = int32(i)
	}
	b.dim("iter", ni)
	b.addVar("iter", []string{"iter"}, pos, attr("long_name", "position of the iteration record"))
	first := b.runs[0]
	b.ints("iter_iteration", dims, it, attr("long_name", "iteration (a training's epoch; 0: the initial design or θ)"))
	b.ints("iter_queries", dims, queries, attr("long_name", "queries so far, this iteration's included"))
	if first.Training {
		b.addVar("iter_test_accuracy", dims, best, attr("long_name", "accuracy on the test set, measured on the black box"), attr("units", "1"), fillNaN)
		b.addVar("iter_train_accuracy", dims, step, attr("long_name", "accuracy on the training set, measured on the black box"), attr("units", "1"), fillNaN)
		b.addVar("iter_loss", dims, loss, attr("long_name", "mean cross-entropy of the epoch's minibatches (NaN at epoch 0)"), fillNaN)
	} else {
		oa := []netcdf.Attr{attr("long_name", "best objective so far"), fillNaN}
		sa := []netcdf.Attr{attr("long_name", "best objective among this iteration's step queries"), fillNaN}
		if u := first.Desc.Objective.Unit; u != "" {
			oa = append(oa, attr("units", text(u)))
			sa = append(sa, attr("units", text(u)))
		}
		b.addVar("iter_best", dims, best, oa...)
		b.addVar("iter_step_objective", dims, step, sa...)
		b.addVar("iter_train_loss", dims, loss, attr("long_name", "surrogate training loss of the iteration (NaN: no surrogate)"), fillNaN)
	}
	b.addVar("iter_controller_time", dims, ctrl, attr("long_name", "time in the controller (surrogate, optimizer, journal)"), attr("units", "s"), fillNaN)
	b.addVar("iter_box_time", dims, box, attr("long_name", "time waiting for the black box"), attr("units", "s"), fillNaN)
	b.ints("iter_projected", dims, projected, attr("long_name", "steps projected back into the box so far"))
	b.addVar("iter_time", dims, at, b.timeAttrs("iteration recorded")...)
}

func (b *ncBuilder) events(ne int) {
	nr := len(b.runs)
	at, value := nan(nr*ne), nan(nr*ne)
	qid := fillInts(nr * ne)
	kind, name, detail := make([]string, nr*ne), make([]string, nr*ne), make([]string, nr*ne)
	for r, run := range b.runs {
		for k, e := range run.Events {
			i := r*ne + k
			at[i], value[i] = b.seconds(e.Time), e.Value
			if e.QueryID != 0 {
				qid[i] = int32(e.QueryID)
			}
			kind[i], name[i], detail[i] = e.Kind, e.Name, e.Detail
		}
	}
	dims := b.lead("event")
	pos := make([]int32, ne)
	for i := range pos {
		pos[i] = int32(i)
	}
	b.dim("event", ne)
	b.addVar("event", []string{"event"}, pos, attr("long_name", "position of the event in the run"))
	b.addVar("event_time", dims, at, b.timeAttrs("event time")...)
	b.strings("event_kind", dims, kind, attr("long_name", "bounds, clamp, slew, rate, watchdog, output, interlock, safestate, prediction, …"))
	b.strings("event_name", dims, name, attr("long_name", "input or output concerned (empty: none)"))
	b.addVar("event_value", dims, value, attr("long_name", "requested or measured value (NaN: none)"), fillNaN)
	b.strings("event_detail", dims, detail)
	b.ints("event_query_id", dims, qid, attr("long_name", "the journaled query concerned"))
}
