package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/insitu-lab/insitu/instruments/rig"
	"github.com/insitu-lab/insitu/loop"
	"github.com/insitu-lab/insitu/loop/journal"
	"github.com/insitu-lab/insitu/loop/report"
	"github.com/insitu-lab/insitu/safety"
	_ "github.com/insitu-lab/insitu/simulators/bench" // registers the rig's part twins
)

// The dry run: `insitu run CONFIG --dry-run` runs the configured run —
// same config, same seed, the real loop behind the real guard, journaled
// as usual — on the rig's twins instead of its devices (the rig section
// gets twin: true, see instruments/rig), opens no device, and writes the
// hardware bill, DIR/bill.json, into a run directory named …-dryrun.
//
// The bench's time is simulated, not waited: the guard runs on a clock
// whose Sleep only moves it forward, and the twin rig moves it to the end
// of each query's device time (settles, exposures, conversions, ramp step
// delays), so the guard's rate limit paces the queries as on the bench.
// The clock's elapsed time at the end is the bench wall-time estimate:
// this process's own time (controller, journal, the twins' computing
// beyond the device time) plus the rate-limit waits plus the device time.

// dryRunSuffix ends the name of a dry run's directory.
const dryRunSuffix = "-dryrun"

// runDry is `insitu run FILE --dry-run` for a resolved, validated config.
func runDry(cmd *cobra.Command, file string, cfg runConfig, out, timing string, quiet bool) error {
	ctx := cmd.Context()
	// The measured timing is read first: a bad --timing wastes no dry run.
	var measured *BillMeasured
	if timing != "" {
		var err error
		if measured, err = measuredTiming(ctx, timing); err != nil {
			return err
		}
	}
	kind, _ := cfg.BlackBox["kind"].(string)
	if kind != "rig" {
		return fmt.Errorf("%s: --dry-run runs a rig's parts as their twins; blackbox.kind %q is not a rig (a software twin needs no dry run: run it as it is)", file, kind)
	}
	// The resolved config says it is a dry run, so a resume of the run
	// directory builds the twins again, never the bench.
	cfg.BlackBox["twin"] = true
	if _, err := checkOffline(ctx, file, cfg.BlackBox, cfg.Safety, &cfg.Objective); err != nil {
		return err
	}
	out, err := runDir(out, file, cfg.Name, cfg.Method, cfg.Seed, "insitu resume")
	if err != nil {
		return err
	}
	if !strings.HasSuffix(filepath.Clean(out), dryRunSuffix) {
		if out, err = runDir(filepath.Clean(out)+dryRunSuffix, file, cfg.Name, cfg.Method, cfg.Seed, "insitu resume"); err != nil {
			return err
		}
	}
	release, resolved, err := claimRunDir(out, cfg)
	if err != nil {
		return err
	}
	defer release()
	box, obj, dir, err := cfg.build(ctx, file)
	if err != nil {
		return err
	}
	r, ok := box.(*rig.Rig)
	if !ok || !r.IsTwin() {
		closeBox(box)
		return fmt.Errorf("%s: the dry run built %T, not a twin rig", file, box)
	}
	j, err := journal.Create(out, journal.Meta{
		Version: version, Method: cfg.Method, Kind: kind + " (dry run)", Seed: cfg.Seed, Direction: journal.Direction(dir),
	}, resolved, journal.WithSync(cfg.Journal.policy()))
	if err != nil {
		closeBox(box)
		return err
	}
	defer j.Close()
	if err := writeConfigCopy(out, resolved); err != nil {
		closeBox(box)
		return err
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "dry run %s: %s on the twins of rig %s (no device is opened), journal %s\n",
		filepath.Base(out), cfg.Method, r.Spec().Name, j.Path())
	return executeDry(ctx, cmd, cfg, file, out, j, r, runParts{box: box, obj: obj, dir: dir}, measured, quiet)
}

// dryClock is the simulated clock of a dry run: the wall clock moved
// forward by every Sleep, which returns at once.
type dryClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *dryClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *dryClock) Sleep(ctx context.Context, d time.Duration) error {
	if d > 0 {
		c.mu.Lock()
		c.offset += d
		c.mu.Unlock()
	}
	return nil
}

// executeDry is execute on the twin rig r (with the live view of --serve),
// the guard on the dry run's clock; it writes the bill whatever the run's
// outcome.
func executeDry(ctx context.Context, cmd *cobra.Command, cfg runConfig, file, out string, j *journal.Journal, r *rig.Rig, parts runParts, measured *BillMeasured, quiet bool) error {
	defer closeBox(parts.box)
	ctx, con, err := startConsole(ctx, cmd, out, runInfo(cfg, out), parts.box.Spec())
	if err != nil {
		return err
	}
	defer con.close()
	clock := &dryClock{}
	r.SetTwinClock(clock)
	start, wall := clock.Now(), time.Now()
	var res *loop.Result
	var evMu sync.Mutex
	var events []safety.Event
	record := func(e safety.Event) {
		evMu.Lock()
		events = append(events, e)
		evMu.Unlock()
	}
	setup := runSetup(cfg, parts, &res)
	setup.opts, setup.record, setup.safe = []safety.Option{safety.WithClock(clock)}, record, "every twin"
	guard, err := guardedWith(ctx, cmd, parts.box, cfg.Safety, j, "insitu resume "+out, setup, loopBody(cmd, cfg, j, parts, con, quiet, &res))
	elapsed, wallElapsed := clock.Now().Sub(start), time.Since(wall)
	if guard == nil {
		return err
	}
	bctx := context.WithoutCancel(ctx)
	if res != nil {
		res.Stop = stopLine(res.Stop, err)
		if werr := writeRunOutputs(bctx, cmd.OutOrStdout(), out, cfg, res, guard.Counters()); werr != nil {
			err = errors.Join(err, werr)
		}
	}
	evMu.Lock()
	evs := slices.Clone(events)
	evMu.Unlock()
	b, berr := makeBill(bctx, billInput{file: file, out: out, cfg: cfg, j: j, r: r, res: res, c: guard.Counters(),
		events: evs, elapsed: elapsed, wall: wallElapsed, runErr: err, measured: measured})
	if berr == nil {
		berr = b.write(out)
	}
	if berr != nil {
		return errors.Join(err, fmt.Errorf("dry run bill: %w", berr))
	}
	b.print(cmd.OutOrStdout())
	return err
}

// Bill is DIR/bill.json, what the configured run would cost the bench.
// Times are in seconds.
type Bill struct {
	DryRun     bool   `json:"dry_run"` // always true: this run touched no device
	Config     string `json:"config"`
	RunDir     string `json:"run_dir"`
	Rig        string `json:"rig"`
	Method     string `json:"method"`
	Seed       uint64 `json:"seed"`
	Iterations int    `json:"iterations"`
	Status     string `json:"status"` // finished, interrupted or failed, as the journal says
	Error      string `json:"error,omitempty"`

	Queries   BillQueries    `json:"queries"`
	SLMFrames int            `json:"slm_frames"` // frames the SLM parts show, blanking not counted
	Time      BillTime       `json:"time"`
	Guard     BillGuard      `json:"guard"`
	Trips     BillTrips      `json:"interlocks"`
	SafeState []BillSafeStep `json:"safe_state"`
	Parts     []BillPart     `json:"parts"`
	// Measured is the device time a run on the bench measured (run
	// --dry-run --timing DIR), and the bench time estimated from it; null
	// without --timing.
	Measured *BillMeasured `json:"measured"`
}

// BillMeasured is the timing of the queries of a run on the bench, from
// the marks its journal holds (see `insitu runs show`), and what it makes
// of this bill's device time. Times are in seconds.
type BillMeasured struct {
	Run     string `json:"run"`
	Queries int    `json:"queries"` // its queries with marks
	// DeviceMedian and DeviceP95 are a query's device time: from the
	// first to the last mark a device made (written to measured), or the
	// whole query when the devices made none.
	DeviceMedian float64 `json:"device_median_s"`
	DeviceP95    float64 `json:"device_p95_s"`
	// Device is this bill's device queries times DeviceMedian, and
	// EstimatedBench the bench time with it instead of the twins' Device:
	// Process + RateWaited + Device.
	Device         float64        `json:"device_s"`
	EstimatedBench float64        `json:"estimated_bench_s"`
	Intervals      []BillInterval `json:"intervals"`
}

// BillInterval is one interval between consecutive marks of a query.
type BillInterval struct {
	From    string  `json:"from"`
	To      string  `json:"to"`
	Queries int     `json:"queries"`
	Median  float64 `json:"median_s"`
	P95     float64 `json:"p95_s"`
}

// measuredTiming reads the query timing of the bench run in dir.
func measuredTiming(ctx context.Context, dir string) (*BillMeasured, error) {
	j, err := journal.Peek(dir)
	if err != nil {
		return nil, fmt.Errorf("--timing: %w", err)
	}
	defer j.Close()
	qs, err := j.Queries(ctx)
	if err != nil {
		return nil, fmt.Errorf("--timing: %w", err)
	}
	var spans []float64
	for _, q := range qs {
		var first, last, start, end time.Time
		for _, m := range q.Marks {
			switch m.Event {
			case journal.MarkStart:
				start = m.At
			case journal.MarkEnd:
				end = m.At
			default:
				if first.IsZero() || m.At.Before(first) {
					first = m.At
				}
				if m.At.After(last) {
					last = m.At
				}
			}
		}
		switch {
		case !first.IsZero() && last.After(first):
			spans = append(spans, last.Sub(first).Seconds())
		case !start.IsZero() && !end.IsZero():
			spans = append(spans, end.Sub(start).Seconds())
		}
	}
	if len(spans) == 0 {
		return nil, fmt.Errorf("--timing %s: its journal holds no query timing (a run older than timing marks, or one without measured queries)", dir)
	}
	tm := report.QueryTiming(qs)
	m := &BillMeasured{Run: dir, Queries: len(spans)}
	m.DeviceMedian, m.DeviceP95 = report.Quantile(spans, 0.5), report.Quantile(spans, 0.95)
	for _, iv := range tm.Intervals {
		m.Intervals = append(m.Intervals, BillInterval{From: iv.From, To: iv.To, Queries: iv.Queries, Median: iv.Median.Seconds(), P95: iv.P95.Seconds()})
	}
	return m, nil
}

// BillQueries counts the device queries, ramp steps included.
type BillQueries struct {
	Device    uint64 `json:"device"`     // reached the twins: the guard's count
	Journal   int    `json:"journal"`    // the journal's count of the same (what a resume counts against the budget)
	Loop      int    `json:"loop"`       // the optimizer's queries
	RampSteps uint64 `json:"ramp_steps"` // device queries inside ramps, before their targets
	Budget    *int   `json:"budget"`     // safety.budget; null: none
}

// BillTime is the bench wall-time estimate: EstimatedBench = Process +
// RateWaited + Device.
type BillTime struct {
	EstimatedBench float64 `json:"estimated_bench_s"`
	// Process is this dry run's own wall time outside the device time:
	// the controller (the surrogate's initial training included), the
	// journal, and the twins' computing where it took longer than the
	// device would. Controller is the controller time the loop measures
	// per iteration, within it.
	Process    float64 `json:"process_s"`
	Controller float64 `json:"controller_s"`
	// The rate limit: safety.rate (queries per second; 0: none) and
	// safety.min_interval; RateWaited the time queries waited for it.
	Rate        float64 `json:"rate_per_s"`
	MinInterval float64 `json:"min_interval_s"`
	RateWaits   uint64  `json:"rate_waits"`
	RateWaited  float64 `json:"rate_waited_s"`
	// Device is the time the devices take inside the queries: Settle
	// (the slowest part's settle plus the rig's, per query), Acquire
	// (exposures, conversions, averaged samples) and RampWaits (an SMU's
	// step_delay between level sets). MaxQuery is that of the longest
	// query, against the watchdog's safety.timeout.
	Device    float64 `json:"device_s"`
	Settle    float64 `json:"settle_s"`
	Acquire   float64 `json:"acquire_s"`
	RampWaits float64 `json:"ramp_waits_s"`
	MaxQuery  float64 `json:"max_query_device_s"`
	Watchdog  float64 `json:"watchdog_s"`
}

// BillGuard is what the guard refused or changed.
type BillGuard struct {
	Attempted        uint64            `json:"attempted"`
	Passed           uint64            `json:"passed"`
	Rejected         map[string]uint64 `json:"rejected"` // by reason: bounds, slew, budget, rate, output, …
	Clamped          uint64            `json:"clamped"`
	Ramped           uint64            `json:"ramped"`
	RampSteps        uint64            `json:"ramp_steps"`
	OutputViolations uint64            `json:"output_violations"`
	Saturated        uint64            `json:"saturated"`
	Events           map[string]int    `json:"events"` // by kind
}

// BillTrips is what the interlocks and the watchdog did: each trip, and
// the safe state that followed.
type BillTrips struct {
	Trips  uint64      `json:"trips"`
	Events []BillEvent `json:"events"`
}

// BillEvent is one guard event.
type BillEvent struct {
	Kind   string  `json:"kind"`
	Name   string  `json:"name,omitempty"`
	Value  float64 `json:"value"`
	Detail string  `json:"detail"`
}

// BillSafeStep is what one part's safe state did.
type BillSafeStep struct {
	Part   string `json:"part"`
	Type   string `json:"type"`
	Action string `json:"action"`
	Ran    bool   `json:"ran"`
	Error  string `json:"error,omitempty"`
}

// BillPart is one part's twin.
type BillPart struct {
	Name     string         `json:"name"`
	Type     string         `json:"type"`
	Role     string         `json:"role"` // actuator, sensor, or actuator+sensor
	Twin     string         `json:"twin"`
	Notes    []string       `json:"notes,omitempty"`
	Settle   float64        `json:"settle_s"`
	Acquire  float64        `json:"acquire_s"`
	Busy     float64        `json:"ramp_waits_s"`
	Applies  int            `json:"applies"`
	Measures int            `json:"measures"`
	Counts   map[string]int `json:"counts,omitempty"`
}

type billInput struct {
	file, out     string
	cfg           runConfig
	j             *journal.Journal
	r             *rig.Rig
	res           *loop.Result
	c             safety.Counters
	events        []safety.Event
	elapsed, wall time.Duration
	runErr        error
	measured      *BillMeasured
}

// tripKinds are the events that stop a run or follow a stop, and a
// suspender's holds.
var tripKinds = []safety.Kind{safety.KindInterlock, safety.KindWatchdog, safety.KindOutput, safety.KindPanic, safety.KindAbort, safety.KindSafeState,
	safety.KindSuspend, safety.KindResume}

func makeBill(ctx context.Context, in billInput) (*Bill, error) {
	rep, ok := in.r.TwinReport()
	if !ok {
		return nil, errors.New("not a twin rig")
	}
	used, err := deviceQueriesUsed(ctx, in.j)
	if err != nil {
		return nil, err
	}
	sum, err := in.j.Summary(ctx)
	if err != nil {
		return nil, err
	}
	sec := func(d time.Duration) float64 { return d.Seconds() }
	b := &Bill{DryRun: true, Config: in.file, RunDir: in.out, Rig: rep.Rig, Method: in.cfg.Method, Seed: in.cfg.Seed,
		Iterations: in.cfg.Iterations, Status: string(sum.Status)}
	if in.runErr != nil {
		b.Error = in.runErr.Error()
	}
	b.Queries = BillQueries{Device: in.c.Inner, Journal: used, RampSteps: in.c.RampSteps, Budget: in.cfg.Safety.Budget}
	var ctrl time.Duration
	if in.res != nil {
		b.Queries.Loop = in.res.Queries
		for _, it := range in.res.Iterations {
			ctrl += it.Controller
		}
	}
	var rate float64
	if in.cfg.Safety.Rate != nil {
		rate = *in.cfg.Safety.Rate
	}
	b.Time = BillTime{
		EstimatedBench: sec(in.elapsed), Process: sec(in.elapsed - in.c.RateWaited - rep.Device), Controller: sec(ctrl),
		Rate: rate, MinInterval: sec(in.cfg.Safety.MinInterval), RateWaits: in.c.RateWaits, RateWaited: sec(in.c.RateWaited),
		Device: sec(rep.Device), Settle: sec(rep.Settled), Acquire: sec(rep.Acquired), RampWaits: sec(rep.Busy),
		MaxQuery: sec(rep.MaxQuery), Watchdog: sec(in.cfg.Safety.Timeout),
	}
	if m := in.measured; m != nil {
		mm := *m
		mm.Device = float64(b.Queries.Device) * mm.DeviceMedian
		mm.EstimatedBench = b.Time.Process + b.Time.RateWaited + mm.Device
		b.Measured = &mm
	}
	b.Guard = BillGuard{Attempted: in.c.Attempted, Passed: in.c.Passed, Rejected: in.c.Rejected, Clamped: in.c.Clamped,
		Ramped: in.c.Ramped, RampSteps: in.c.RampSteps, OutputViolations: in.c.OutputViolations, Saturated: in.c.Saturated,
		Events: map[string]int{}}
	b.Trips = BillTrips{Trips: in.c.Trips, Events: []BillEvent{}}
	for _, e := range in.events {
		b.Guard.Events[string(e.Kind)]++
		if slices.Contains(tripKinds, e.Kind) {
			b.Trips.Events = append(b.Trips.Events, BillEvent{Kind: string(e.Kind), Name: e.Name, Value: e.Value, Detail: e.Detail})
		}
	}
	for _, p := range rep.Parts {
		role := map[[2]bool]string{{true, false}: "actuator", {false, true}: "sensor", {true, true}: "actuator+sensor"}[[2]bool{p.Actuator, p.Sensor}]
		if p.Type == "slm" {
			b.SLMFrames += p.Applies
		}
		b.Parts = append(b.Parts, BillPart{Name: p.Name, Type: p.Type, Role: role, Twin: p.Device, Notes: p.Notes,
			Settle: sec(p.Settle), Acquire: sec(p.Acquire), Busy: sec(p.Busy), Applies: p.Applies, Measures: p.Measures, Counts: p.Counts})
		action := p.SafeState
		if action == "" {
			action = "nothing (a sensor emits nothing)"
		}
		b.SafeState = append(b.SafeState, BillSafeStep{Part: p.Name, Type: p.Type, Action: action, Ran: p.SafeStateRan, Error: p.SafeStateErr})
	}
	return b, nil
}

// BillFile is the bill's name in the run directory.
const BillFile = "bill.json"

func (b *Bill) write(dir string) error {
	data, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, BillFile), append(data, '\n'), 0o600)
}

// print writes the bill for a person.
func (b *Bill) print(w io.Writer) {
	d := func(s float64) string {
		return (time.Duration(s * float64(time.Second))).Round(time.Millisecond).String()
	}
	fmt.Fprintf(w, "\nhardware bill of %s (dry run on twins: no device was opened)\n", b.Config)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	budget := "no budget"
	if b.Queries.Budget != nil {
		budget = fmt.Sprintf("budget %d", *b.Queries.Budget)
	}
	fmt.Fprintf(tw, "device queries\t%d (%d ramp steps; journal %d; %s)\n", b.Queries.Device, b.Queries.RampSteps, b.Queries.Journal, budget)
	fmt.Fprintf(tw, "SLM frames\t%d\n", b.SLMFrames)
	t := b.Time
	pace := "no rate limit"
	if t.Rate > 0 {
		pace = fmt.Sprintf("rate %g/s", t.Rate)
	}
	if t.MinInterval > 0 {
		pace += fmt.Sprintf(", min_interval %s", d(t.MinInterval))
	}
	fmt.Fprintf(tw, "bench time\t~%s = rate-limit waits %s (%s) + device %s (settle %s, acquisition %s, ramp waits %s) + this process %s (controller %s, measured)\n",
		d(t.EstimatedBench), d(t.RateWaited), pace, d(t.Device), d(t.Settle), d(t.Acquire), d(t.RampWaits), d(t.Process), d(t.Controller))
	if m := b.Measured; m != nil {
		fmt.Fprintf(tw, "measured\tdevice time per query %s (95 %%: %s) over %d queries of %s: bench time ~%s = rate-limit waits %s + device %s + this process %s\n",
			d(m.DeviceMedian), d(m.DeviceP95), m.Queries, m.Run, d(m.EstimatedBench), d(t.RateWaited), d(m.Device), d(t.Process))
	}
	if t.Watchdog > 0 && t.MaxQuery >= t.Watchdog {
		fmt.Fprintf(tw, "WATCHDOG\tthe longest query takes %s on the bench, safety.timeout is %s: the watchdog would trip\n", d(t.MaxQuery), d(t.Watchdog))
	}
	g := b.Guard
	var rej []string
	for _, k := range slices.Sorted(maps.Keys(g.Rejected)) {
		rej = append(rej, fmt.Sprintf("%s %d", k, g.Rejected[k]))
	}
	rejected := "none rejected"
	if len(rej) > 0 {
		rejected = "rejected: " + strings.Join(rej, ", ")
	}
	fmt.Fprintf(tw, "guard\t%d passed, %s; %d clamped, %d ramped (%d steps); %d outputs out of range, %d saturated\n",
		g.Passed, rejected, g.Clamped, g.Ramped, g.RampSteps, g.OutputViolations, g.Saturated)
	trips := "no trip"
	if b.Trips.Trips > 0 {
		trips = fmt.Sprintf("%d trip(s)", b.Trips.Trips)
	}
	fmt.Fprintf(tw, "interlocks\t%s\n", trips)
	for _, e := range b.Trips.Events {
		if e.Kind != string(safety.KindSafeState) {
			fmt.Fprintf(tw, "\t%s: %s\n", e.Kind, e.Detail)
		}
	}
	for _, s := range b.SafeState {
		fmt.Fprintf(tw, "safe state\t%s (%s): %s\n", s.Part, s.Type, s.Action)
	}
	for _, p := range b.Parts {
		fmt.Fprintf(tw, "twin\t%s (%s): %s\n", p.Name, p.Type, p.Twin)
		for _, n := range p.Notes {
			fmt.Fprintf(tw, "\t  %s\n", n)
		}
	}
	if b.Error != "" {
		fmt.Fprintf(tw, "run ended\t%s: %s\n", b.Status, b.Error)
	}
	fmt.Fprintf(tw, "wrote\t%s\n", filepath.Join(b.RunDir, BillFile))
	tw.Flush()
}
