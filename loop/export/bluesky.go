package export

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/insitu-lab/insitu/loop/journal"
)

// Bluesky writes a run as event-model documents, one JSON array
// [name, document] per line as suitcase-jsonl writes them: a start
// document with the config and provenance; a descriptor and events for
// the streams primary (one event per query), iterations (one per
// iteration record or epoch), safety (one per safety event) and, when the
// surrogate's predictions were journaled, predictions; and a stop document
// with the exit status and reason.
//
// In the primary stream, inputs are keys NAME_setpoint and outputs NAME
// (Bluesky's convention for a positioner and its readback): coordinates
// named alike with an index (q0[0]…q0[9], phi_0_0…phi_59_59, theta0…) are
// one array key of that shape, and the coordinates' names are in the data
// key's "names". Every data key has dtype, shape, source and units. UIDs
// are derived from the journal, so exporting a run twice gives the same
// documents. NaN readings are null.
func Bluesky(w io.Writer, r *Run) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	emit := func(name string, doc map[string]any) error {
		return enc.Encode([]any{name, doc})
	}
	d := bluesky{r: r}
	d.startUID = d.uid("start")
	if err := emit("start", d.start()); err != nil {
		return err
	}
	counts := map[string]int{}
	for _, s := range d.streams() {
		desc := map[string]any{
			"uid": d.uid("descriptor " + s.name), "time": d.unix(r.Meta.Created), "run_start": d.startUID,
			"name": s.name, "data_keys": s.keys, "configuration": map[string]any{}, "hints": map[string]any{},
			"object_keys": s.objects,
		}
		if err := emit("descriptor", desc); err != nil {
			return err
		}
		for i, ev := range s.events {
			ev["uid"] = d.uid(fmt.Sprintf("event %s %d", s.name, i+1))
			ev["descriptor"] = desc["uid"]
			ev["seq_num"] = i + 1
			ev["filled"] = map[string]any{}
			if err := emit("event", ev); err != nil {
				return err
			}
		}
		counts[s.name] = len(s.events)
	}
	status, reason := d.exit()
	stop := map[string]any{
		"uid": d.uid("stop"), "time": d.unix(d.end()), "run_start": d.startUID,
		"exit_status": status, "reason": reason, "num_events": counts,
	}
	if err := emit("stop", stop); err != nil {
		return err
	}
	return bw.Flush()
}

type bluesky struct {
	r        *Run
	startUID string
}

// uid is a UUID (version 5) of the run's identity and what: the same run
// exports the same documents.
func (d bluesky) uid(what string) string {
	ns := uuid.NewSHA1(uuid.NameSpaceURL, []byte("insitu:"+d.r.Desc.ConfigHash+":"+strconv.FormatInt(d.r.Meta.Created.UnixNano(), 10)))
	return uuid.NewSHA1(ns, []byte(what)).String()
}

func (bluesky) unix(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

// num is v for JSON: null when it is not finite.
func num(v float64) any {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return v
}

func (d bluesky) start() map[string]any {
	r := d.r
	p := r.Problem
	plan := "insitu run"
	if r.Training {
		plan = "insitu train"
	}
	var motors, detectors []string
	for _, g := range groups(r.Desc.Inputs, "_setpoint") {
		motors = append(motors, g.key)
	}
	seen := map[string]bool{}
	for _, v := range r.Desc.Outputs {
		obj := v.Source
		if obj == "" {
			obj = r.Desc.Box
		}
		if !seen[obj] {
			seen[obj] = true
			detectors = append(detectors, obj)
		}
	}
	var devs []map[string]any
	for _, dv := range r.Desc.Devices {
		devs = append(devs, map[string]any{"name": dv.Name, "type": dv.Type, "identity": dv.Identity, "error": dv.Error})
	}
	objective := map[string]any{"kind": r.Desc.Objective.Kind, "direction": string(p.Direction), "unit": r.Desc.Objective.Unit}
	if r.Training {
		objective = map[string]any{"kind": "test accuracy", "direction": "max", "unit": "1"}
	}
	return map[string]any{
		"uid": d.startUID, "time": d.unix(r.Meta.Created),
		"plan_name": plan, "plan_type": "insitu",
		"scan_id":    1,
		"name":       p.Name,
		"method":     r.Meta.Method,
		"kind":       r.Desc.Kind,
		"seed":       r.Meta.Seed,
		"objective":  objective,
		"num_points": len(r.Queries),
		"motors":     motors,
		"detectors":  detectors,
		"config":     string(r.Config),
		"provenance": map[string]any{
			"insitu_version": r.Meta.Version,
			"build":          r.Desc.Build,
			"journal":        filepath.Join(r.Dir, journal.FileName),
			"config_sha256":  r.Desc.ConfigHash,
			"devices":        devs,
			"description":    descriptionSource(r),
			"exported_by":    "insitu export --format bluesky",
		},
	}
}

// exit is the stop document's exit status and reason: the journal's run
// status, and why the run ended as the run recorded it (an older journal:
// the last event that ends a run).
func (d bluesky) exit() (string, string) {
	reason := d.r.Meta.Stop
	if reason == "" {
		for _, e := range d.r.Events {
			switch e.Kind {
			case "interlock", "watchdog", "abort", "panic", "trip", "budget", "fidelity":
				reason = e.Kind + ": " + e.Detail
			}
		}
	}
	switch d.r.Meta.Status {
	case journal.RunFinished:
		return "success", reason
	case journal.RunInterrupted:
		if reason == "" {
			reason = "interrupted (Ctrl-C, SIGTERM or STOP); resumable with insitu resume"
		}
		return "abort", reason
	case journal.RunFailed:
		if reason == "" {
			reason = "the run failed (see its log)"
		}
		return "fail", reason
	}
	return "fail", fmt.Sprintf("the journal says %q: the run is in progress or ended without recording how (a crash); resumable with insitu resume", d.r.Meta.Status)
}

// end is the time of the last record.
func (d bluesky) end() time.Time {
	t := d.r.Meta.Created
	for _, q := range d.r.Queries {
		if q.FinishedAt.After(t) {
			t = q.FinishedAt
		}
		if q.StartedAt.After(t) {
			t = q.StartedAt
		}
	}
	for _, it := range d.r.Iterations {
		if it.Time.After(t) {
			t = it.Time
		}
	}
	for _, e := range d.r.Events {
		if e.Time.After(t) {
			t = e.Time
		}
	}
	return t
}

type stream struct {
	name    string
	keys    map[string]any
	objects map[string][]string
	events  []map[string]any
}

// group is consecutive coordinates that make one data key: one scalar, or
// an array of a base name with indices.
type group struct {
	key     string
	first   int // index of the first variable
	shape   []int
	members []Variable
}

// splitIndex splits a name into a base and trailing indices: q0[3] → q0
// [3], theta5 → theta [5], phi_12_3 → phi [12 3], px_0_1 → px [0 1].
var (
	bracketed = regexp.MustCompile(`^(.+)\[(\d+)\]$`)
	suffixed  = regexp.MustCompile(`^(.*[^0-9_])_?(\d+)(?:_(\d+))?$`)
)

func splitIndex(name string) (base string, idx []int, ok bool) {
	m := bracketed.FindStringSubmatch(name)
	if m == nil {
		m = suffixed.FindStringSubmatch(name)
	}
	if m == nil {
		return name, nil, false
	}
	for _, s := range m[2:] {
		if s != "" {
			n, err := strconv.Atoi(s)
			if err != nil {
				return name, nil, false
			}
			idx = append(idx, n)
		}
	}
	return m[1], idx, true
}

// keyName makes a data key of an insitu name: characters other than
// letters, digits and '_' become '_' (event-model keys must not hold '.',
// and Bluesky's tools address keys as Python identifiers).
func keyName(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	k := strings.Trim(b.String(), "_")
	if k == "" {
		k = "v"
	}
	return k
}

// groups makes the data keys of a list of variables: a run of consecutive
// variables with one base and indices 0, 1, … (or a full row-major grid of
// two indices) is an array key, any other variable a scalar key; suffix is
// appended to every key. Keys are unique.
func groups(vs []Variable, suffix string) []group {
	var gs []group
	used := map[string]int{}
	add := func(g group) {
		k := g.key + suffix
		if n := used[k]; n > 0 {
			used[k] = n + 1
			k = fmt.Sprintf("%s_%d", k, n+1)
		}
		used[k]++
		g.key = k
		gs = append(gs, g)
	}
	for i := 0; i < len(vs); {
		base, idx, ok := splitIndex(vs[i].Name)
		if !ok || idx[0] != 0 || len(idx) == 2 && idx[1] != 0 {
			add(group{key: keyName(vs[i].Name), first: i, members: vs[i : i+1]})
			i++
			continue
		}
		j := i + 1
		cols := 0
		rows := 1
		for ; j < len(vs); j++ {
			b2, idx2, ok2 := splitIndex(vs[j].Name)
			if !ok2 || b2 != base || len(idx2) != len(idx) {
				break
			}
			k := j - i
			if len(idx) == 1 {
				if idx2[0] != k {
					break
				}
				continue
			}
			// Two indices: row-major, the width set by the first row.
			if cols == 0 && idx2[0] == 1 {
				cols = k
			}
			c := cols
			if c == 0 {
				c = k + 1
			}
			if idx2[0] != k/c || idx2[1] != k%c {
				break
			}
		}
		n := j - i
		shape := []int{n}
		if len(idx) == 2 {
			if cols == 0 {
				cols = n
			}
			if n%cols != 0 {
				n = n / cols * cols
				j = i + n
			}
			rows = n / cols
			shape = []int{rows, cols}
		}
		if n == 1 {
			add(group{key: keyName(vs[i].Name), first: i, members: vs[i : i+1]})
			i++
			continue
		}
		add(group{key: keyName(base), first: i, shape: shape, members: vs[i:j]})
		i = j
	}
	return gs
}

// dataKey describes a group for a descriptor.
func (d bluesky) dataKey(g group, kind string) map[string]any {
	v := g.members[0]
	obj := v.Source
	if obj == "" {
		obj = d.r.Desc.Box
	}
	k := map[string]any{
		"dtype": "number", "dtype_numpy": "<f8", "shape": []int{},
		"source":      fmt.Sprintf("insitu:%s:%s:%s", d.r.Desc.Kind, kind, v.Name),
		"object_name": obj,
		"units":       nil,
		"role":        v.Role,
	}
	if u := uniform(g.members); u != "" {
		k["units"] = u
	}
	if len(g.shape) > 0 {
		names := make([]string, len(g.members))
		for i, m := range g.members {
			names[i] = m.Name
		}
		k["dtype"], k["shape"], k["names"] = "array", g.shape, names
		k["source"] = fmt.Sprintf("insitu:%s:%s:%s…%s", d.r.Desc.Kind, kind, names[0], names[len(names)-1])
	}
	lo, hi, same := math.NaN(), math.NaN(), true
	for i, m := range g.members {
		if m.Lower == nil || m.Upper == nil {
			same = false
			break
		}
		if i == 0 {
			lo, hi = *m.Lower, *m.Upper
		} else if *m.Lower != lo || *m.Upper != hi {
			same = false
		}
	}
	if same && !math.IsNaN(lo) {
		k["limits"] = map[string]any{"control": map[string]any{"low": lo, "high": hi}}
	}
	return k
}

// value is a group's value in one query: a number, or nested arrays.
func value(g group, v []float64) any {
	if v == nil {
		if len(g.shape) == 0 {
			return nil
		}
		v = make([]float64, len(g.members)+g.first)
		for i := range v {
			v[i] = math.NaN()
		}
	}
	part := v[g.first : g.first+len(g.members)]
	if len(g.shape) == 0 {
		return num(part[0])
	}
	row := func(p []float64) []any {
		out := make([]any, len(p))
		for i, x := range p {
			out[i] = num(x)
		}
		return out
	}
	if len(g.shape) == 1 {
		return row(part)
	}
	rows := make([]any, g.shape[0])
	for i := range rows {
		rows[i] = row(part[i*g.shape[1] : (i+1)*g.shape[1]])
	}
	return rows
}

// itKey is a data key of the iterations stream.
type itKey struct {
	key, dtype, unit, desc string
	get                    func(journal.Iteration) any
}

func (d bluesky) streams() []stream {
	r := d.r
	ins := groups(r.Desc.Inputs, "_setpoint")
	outs := groups(r.Desc.Outputs, "")
	// An output key equal to an input key (impossible with the suffix
	// unless a name ends in _setpoint) gets its own suffix.
	inKeys := map[string]bool{}
	for _, g := range ins {
		inKeys[g.key] = true
	}
	for i := range outs {
		if inKeys[outs[i].key] {
			outs[i].key += "_readback"
		}
	}
	primary := stream{name: "primary", keys: map[string]any{}, objects: map[string][]string{}}
	addKey := func(key string, dk map[string]any) {
		primary.keys[key] = dk
		obj, _ := dk["object_name"].(string)
		primary.objects[obj] = append(primary.objects[obj], key)
	}
	for _, g := range ins {
		addKey(g.key, d.dataKey(g, "input"))
	}
	for _, g := range outs {
		addKey(g.key, d.dataKey(g, "output"))
	}
	meta := func(dtype, desc string) map[string]any {
		return map[string]any{"dtype": dtype, "shape": []int{}, "source": "insitu:journal", "object_name": "insitu", "units": nil, "description": desc}
	}
	if !r.Training {
		ok := meta("number", "objective ("+r.Desc.Objective.Kind+", "+string(r.Problem.Direction)+")")
		if r.Desc.Objective.Unit != "" {
			ok["units"] = r.Desc.Objective.Unit
		}
		addKey("objective", ok)
	}
	roleKey := meta("string", "why the query was made")
	roleKey["choices"] = []string{"init", "step", "local", "baseline", "eval"}
	statusKey := meta("string", "done, failed, started (no result) or remeasured")
	statusKey["choices"] = []string{"started", "done", "failed", "remeasured"}
	addKey("query_id", meta("integer", "the query's id in the journal"))
	addKey("iteration", meta("integer", "iteration (a training's epoch)"))
	addKey("slot", meta("integer", "which selected point of the iteration (-1: none)"))
	addKey("role", roleKey)
	addKey("status", statusKey)
	addKey("error", meta("string", "the failure of a failed query"))
	for _, q := range r.Queries {
		t := q.FinishedAt
		if t.IsZero() {
			t = q.StartedAt
		}
		data, ts := map[string]any{}, map[string]any{}
		for _, g := range ins {
			data[g.key], ts[g.key] = value(g, q.X), d.unix(q.StartedAt)
		}
		for _, g := range outs {
			data[g.key], ts[g.key] = value(g, q.Y), d.unix(t)
		}
		put := func(k string, v any) { data[k], ts[k] = v, d.unix(t) }
		if !r.Training {
			put("objective", num(q.Objective))
		}
		put("query_id", q.ID)
		put("iteration", q.Iteration)
		put("slot", q.Slot)
		put("role", string(q.Role))
		put("status", string(q.Status))
		put("error", q.Err)
		primary.events = append(primary.events, map[string]any{"time": d.unix(t), "data": data, "timestamps": ts})
	}

	its := stream{name: "iterations", keys: map[string]any{}, objects: map[string][]string{"insitu": nil}}
	itKeys := []itKey{
		{"iteration", "integer", "", "iteration (a training's epoch; 0: before the first step)", func(i journal.Iteration) any { return i.Iteration }},
		{"queries", "integer", "", "queries so far", func(i journal.Iteration) any { return i.Queries }},
		{"controller_time", "number", "s", "time in the controller", func(i journal.Iteration) any { return i.Controller.Seconds() }},
		{"box_time", "number", "s", "time waiting for the black box", func(i journal.Iteration) any { return i.Box.Seconds() }},
		{"projected", "integer", "", "steps projected back into the box so far", func(i journal.Iteration) any { return i.Projected }},
	}
	if r.Training {
		itKeys = append(itKeys,
			itKey{"test_accuracy", "number", "1", "accuracy on the test set, on the black box", func(i journal.Iteration) any { return num(i.Best) }},
			itKey{"train_accuracy", "number", "1", "accuracy on the training set, on the black box", func(i journal.Iteration) any { return num(i.StepObjective) }},
			itKey{"loss", "number", "", "mean cross-entropy of the epoch (null at epoch 0)", func(i journal.Iteration) any { return num(i.TrainLoss) }})
	} else {
		itKeys = append(itKeys,
			itKey{"best", "number", r.Desc.Objective.Unit, "best objective so far", func(i journal.Iteration) any { return num(i.Best) }},
			itKey{"step_objective", "number", r.Desc.Objective.Unit, "best objective among the iteration's steps", func(i journal.Iteration) any { return num(i.StepObjective) }},
			itKey{"train_loss", "number", "", "surrogate training loss (null: no surrogate)", func(i journal.Iteration) any { return num(i.TrainLoss) }})
	}
	for _, k := range itKeys {
		dk := meta(k.dtype, k.desc)
		if k.unit != "" {
			dk["units"] = k.unit
		}
		its.keys[k.key] = dk
		its.objects["insitu"] = append(its.objects["insitu"], k.key)
	}
	for _, rec := range r.Iterations {
		data, ts := map[string]any{}, map[string]any{}
		for _, k := range itKeys {
			data[k.key], ts[k.key] = k.get(rec), d.unix(rec.Time)
		}
		its.events = append(its.events, map[string]any{"time": d.unix(rec.Time), "data": data, "timestamps": ts})
	}

	safety := stream{name: "safety", keys: map[string]any{}, objects: map[string][]string{"guard": nil}}
	preds := stream{name: "predictions", keys: map[string]any{}, objects: map[string][]string{"surrogate": nil}}
	for _, k := range []string{"kind", "name", "value", "detail", "query_id"} {
		dtype := map[string]string{"kind": "string", "name": "string", "value": "number", "detail": "string", "query_id": "integer"}[k]
		dk := meta(dtype, map[string]string{
			"kind": "bounds, clamp, slew, rate, watchdog, output, interlock, safestate, …", "name": "input or output concerned",
			"value": "requested or measured value", "detail": "what happened", "query_id": "the query concerned (0: none)"}[k])
		dk["source"], dk["object_name"] = "insitu:guard", "guard"
		safety.keys[k] = dk
		safety.objects["guard"] = append(safety.objects["guard"], k)
	}
	for _, k := range []string{"error", "query_id"} {
		dk := meta(map[string]string{"error": "number", "query_id": "integer"}[k],
			map[string]string{"error": "the surrogate's prediction error of the query's output, normalized units", "query_id": "the query predicted"}[k])
		dk["source"], dk["object_name"] = "insitu:surrogate", "surrogate"
		preds.keys[k] = dk
		preds.objects["surrogate"] = append(preds.objects["surrogate"], k)
	}
	for _, e := range r.Events {
		t := d.unix(e.Time)
		if e.Kind == journal.KindPrediction {
			preds.events = append(preds.events, map[string]any{"time": t,
				"data":       map[string]any{"error": num(e.Value), "query_id": e.QueryID},
				"timestamps": map[string]any{"error": t, "query_id": t}})
			continue
		}
		safety.events = append(safety.events, map[string]any{"time": t,
			"data":       map[string]any{"kind": e.Kind, "name": e.Name, "value": num(e.Value), "detail": e.Detail, "query_id": e.QueryID},
			"timestamps": map[string]any{"kind": t, "name": t, "value": t, "detail": t, "query_id": t}})
	}
	out := []stream{primary, its, safety}
	if len(preds.events) > 0 {
		out = append(out, preds)
	}
	return out
}
