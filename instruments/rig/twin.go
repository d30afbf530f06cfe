package rig

import (
	"context"
	"errors"
	"fmt"
	"image"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/insitu-lab/insitu"
	"github.com/insitu-lab/insitu/instruments/camera"
	"github.com/insitu-lab/insitu/instruments/slm"
)

// Twin mode.
//
// A rig config with `twin: true` in its blackbox section (or any rig config
// given to NewTwin) is built with every part replaced by its in-process
// twin, registered for the part's type with RegisterPartTwin. A part twin
// is built from the part's hardware config section and is, wherever it can
// be, the part's real driver on a twin of the device: the SLM driver on a
// memory display, the camera driver on a memory source whose frames come
// from the twin scene, the SMU and power-meter drivers talking SCPI to
// instrument twins served in process, the DAQ driver on an emulated I²C
// bus. No device is opened. The twin rig's Spec is the hardware rig's (the
// build fails otherwise), so a run's safety section and objective apply
// unchanged.
//
// The bench's times are not waited in twin mode: each part twin reports
// the settle and acquisition times its device would take, the rig adds
// them up per query (with its own settle) and hands what the twins did
// not already spend to the sleep function set with SetTwinSleep — a dry
// run's simulated clock — or, by default, to nothing. TwinReport gives
// what the parts did for the bill.
//
// This package registers the twins of the parts that need no simulator:
// "slm" (the driver on a memory display) and "camera" (a memory camera
// whose frames come from the frame source registered as TwinFrameSource).
// simulators/bench registers the others and the twin scene.

// TwinInfo is what a part twin tells about itself for a dry run's bill.
// Every field is optional.
type TwinInfo struct {
	// Device says what stands in for the configured device.
	Device string
	// Notes say where the twin departs from the configured device: an
	// identity pattern substituted, a display size assumed, a correction
	// not applied.
	Notes []string
	// Settle is the part's configured settle time after an apply: the
	// bench waits it, the twin (built with none) does not.
	Settle time.Duration
	// Acquire is the bench time of one measurement: exposures and averaged
	// frames, conversions, a meter's averaged samples.
	Acquire time.Duration
	// Busy returns the bench time the part has spent so far beyond Settle
	// and Acquire, such as the waits between the level sets of a ramp.
	Busy func() time.Duration
	// SetClock, when set, is given the twin rig's clock once the rig is
	// built: the bench's time as the twins see it, which moves on by the
	// settles, acquisitions and waits the rig accounts (see
	// Rig.SetTwinClock), so a twin whose state depends on time (a panel's
	// liquid-crystal response) sees them pass.
	SetClock func(now func() time.Time)
	// SafeState says what the part's safe state does from its present
	// state; the rig asks right before running it. Nil: it does nothing
	// (a sensor).
	SafeState func() string
	// Counts returns counters for the bill: frames shown, level sets,
	// readings, bus transactions.
	Counts func() map[string]int
}

// PartTwinFactory builds the in-process twin of a part from the part's
// config section, as PartType.Open builds the part (name, type and bounds
// removed; built holds the twins made so far). It must open no device and
// must give the part Open would build the same coordinates and outputs. A
// twin holding something (a served instrument, a goroutine) is an
// io.Closer that releases it.
type PartTwinFactory func(ctx context.Context, p insitu.Params, built map[string]Part) (Part, TwinInfo, error)

var partTwins = insitu.NewRegistry[PartTwinFactory]("part type")

// RegisterPartTwin makes f the twin of part type typ. It panics on an
// empty type, a nil f or a second twin for the same type.
func RegisterPartTwin(typ string, f PartTwinFactory) { partTwins.Register(typ, f) }

// PartTwins returns the part types that have a twin, sorted.
func PartTwins() []string { return partTwins.Names() }

// TwinFrameSource is the name of the frame source a twin camera shows: the
// scene in front of the bench, registered by simulators/bench.
const TwinFrameSource = "twin"

func init() {
	RegisterPartTwin("slm", twinSLM)
	RegisterPartTwin("camera", twinCamera)
}

// NewTwin builds the rig a config's blackbox section describes with every
// part replaced by its twin, whether or not the section sets twin: true.
func NewTwin(ctx context.Context, p insitu.Params) (*Rig, error) {
	rc, secs, err := parseRig(p)
	if err != nil {
		return nil, err
	}
	return buildTwin(ctx, p, rc, secs)
}

// buildTwin builds the twin rig of a parsed config: the hardware rig's Spec
// from the describers first, then each part's twin in order, and the
// twins' Spec checked against it.
func buildTwin(ctx context.Context, p insitu.Params, rc rigConfig, secs []section) (_ *Rig, err error) {
	views, err := describeParts(secs)
	if err != nil {
		return nil, fmt.Errorf("twin of rig %s: the hardware rig's spec must be known from its config: %w", rc.Name, err)
	}
	want, err := buildSpec(rc.Name, rc.Settle, views)
	if err != nil {
		return nil, p.Errorf("parts", "%w", err)
	}
	var comps []Component
	infos := make([]partTwin, 0, len(secs))
	built := map[string]Part{}
	defer func() {
		if err != nil {
			closeAll(comps)
		}
	}()
	for _, s := range secs {
		f, lerr := partTwins.Lookup(s.typ)
		if lerr != nil {
			return nil, s.wrap(fmt.Errorf("no twin registered for part type %q (twins: %v; simulators/bench registers the bench's)", s.typ, PartTwins()))
		}
		part, info, err := f(ctx, s.params, built)
		if err != nil {
			return nil, s.wrap(fmt.Errorf("twin: %w", err))
		}
		if part == nil {
			return nil, s.wrap(errors.New("twin: the factory returned no part"))
		}
		built[s.name] = part
		comps = append(comps, Component{Name: s.name, Part: part, Lower: s.bounds.Lower, Upper: s.bounds.Upper, Type: s.typ})
		infos = append(infos, partTwin{typ: s.typ, info: info})
	}
	r, err := New(rc.Name, 0, comps...)
	if err != nil {
		return nil, p.Errorf("parts", "%w", err)
	}
	if !reflect.DeepEqual(r.spec, want) {
		return nil, fmt.Errorf("twin of rig %s: the twins' spec\n%+v\ndiffers from the hardware rig's\n%+v", rc.Name, r.spec, want)
	}
	r.twin = &twinState{settle: rc.Settle, parts: infos}
	for _, pt := range infos {
		if pt.info.SetClock != nil {
			pt.info.SetClock(r.twin.now)
		}
	}
	return r, nil
}

// partTwin is one part's twin information and what it did.
type partTwin struct {
	typ      string
	info     TwinInfo
	applies  int
	measures int
	busy     time.Duration // Busy at the end of the last query
	safe     string        // what its safe state did, once it ran
	safeRan  bool
	safeErr  error
}

// twinState is a twin rig's bookkeeping.
type twinState struct {
	settle time.Duration // the rig's configured settle

	mu      sync.Mutex
	parts   []partTwin
	sleep   func(ctx context.Context, d time.Duration) error
	clock   Clock         // the dry run's, when set; else the wall clock moved on by offset
	offset  time.Duration // bench time accounted so far, without a clock
	queries int
	reads   int           // readings without an apply (a suspended run's polls)
	device  time.Duration // bench time of all queries and readings
	maxOne  time.Duration // of the longest query
	settled time.Duration // of which settling
	acq     time.Duration // of which acquisition
	busyAll time.Duration // of which the parts' other waits
}

// Clock is the time a twin rig's bench runs on: a dry run's simulated
// clock, whose Sleep moves Now on.
type Clock interface {
	Now() time.Time
	Sleep(ctx context.Context, d time.Duration) error
}

// SetTwinClock makes a twin rig spend the bench time of each query
// (settles, acquisitions, ramp waits) beyond the time the twins took on
// c, and makes c the clock its twins see: a dry run passes its simulated
// clock, so the guard's rate limit sees the bench's pace and a panel's
// response sees the settle pass. Without one, the twin rig's clock is the
// wall clock moved on by the bench time it accounts, which nobody waits.
// It does nothing on a hardware rig.
func (r *Rig) SetTwinClock(c Clock) {
	if r.twin == nil {
		return
	}
	r.twin.mu.Lock()
	r.twin.clock, r.twin.sleep = c, c.Sleep
	r.twin.mu.Unlock()
}

// now is the twin rig's clock.
func (t *twinState) now() time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.clock != nil {
		return t.clock.Now()
	}
	return time.Now().Add(t.offset)
}

// SetTwinSleep sets what a twin rig does with the bench time each query
// would take (settles, acquisitions, ramp waits) beyond the time the
// twins took: a dry run passes its simulated clock's Sleep, so the
// guard's rate limit sees the bench's pace. Unset, the time is only
// counted. It does nothing on a hardware rig.
func (r *Rig) SetTwinSleep(sleep func(ctx context.Context, d time.Duration) error) {
	if r.twin == nil {
		return
	}
	r.twin.mu.Lock()
	r.twin.sleep = sleep
	r.twin.mu.Unlock()
}

// IsTwin reports whether the rig was built in twin mode.
func (r *Rig) IsTwin() bool { return r.twin != nil }

// queryTime accounts one query of a twin rig: the slowest settle of the
// parts applied plus the rig's own, the acquisition of each part measured,
// and what the parts spent beyond that; it returns the total.
func (t *twinState) queryTime(applied, measured map[int]bool, settle time.Duration) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(applied) > 0 {
		t.queries++
	} else {
		t.reads++
	}
	var acq, busy time.Duration
	for i := range t.parts {
		pt := &t.parts[i]
		if applied[i] {
			pt.applies++
		}
		if measured[i] {
			pt.measures++
			acq += pt.info.Acquire
		}
		if pt.info.Busy != nil {
			b := pt.info.Busy()
			busy += b - pt.busy
			pt.busy = b
		}
	}
	d := settle + acq + busy
	t.device += d
	t.maxOne = max(t.maxOne, d)
	t.settled += settle
	t.acq += acq
	t.busyAll += busy
	return d
}

func (t *twinState) wait(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t.mu.Lock()
	sleep := t.sleep
	if t.clock == nil {
		t.offset += d
	}
	t.mu.Unlock()
	if sleep == nil {
		return nil
	}
	return sleep(ctx, d)
}

// settleTime is the settle of a query that applied the parts in applied:
// the slowest part's plus the rig's, or what ctx asks (WithSettle).
func (t *twinState) settleTime(ctx context.Context, applied map[int]bool) time.Duration {
	if d, ok := settleOf(ctx); ok {
		return d
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	var settle time.Duration
	for i := range t.parts {
		if applied[i] {
			settle = max(settle, t.parts[i].info.Settle)
		}
	}
	return settle + t.settle
}

// twinQuery is Query on a twin rig (x checked, r.mu held): apply all,
// measure all, and hand the twin sleep the bench time the query would
// take, less the time the twins took (a driver's own waits, such as an
// ADC's conversion time, are real on the twin too), instead of waiting it.
//
// The settle is spent on the twin clock between the apply and the
// measurement, as on the bench, so a twin that depends on time sees it
// pass; the rest of the bench time (acquisitions, ramp waits), less the
// time the measurement took here, after it.
func (r *Rig) twinQuery(ctx context.Context, x []float64) ([]float64, error) {
	name := r.spec.Name
	applied, measured := map[int]bool{}, map[int]bool{}
	var settle time.Duration
	var start time.Time
	defer func() {
		// A failed query is accounted as far as it got.
		if len(applied) > 0 || len(measured) > 0 {
			_ = r.twin.wait(ctx, r.twin.queryTime(applied, measured, settle)-settle-time.Since(start))
		}
	}()
	for _, s := range r.acts {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("rig %s: apply %s: %w", name, s.c.Name, err)
		}
		applied[s.i] = true
		xs := x[s.off : s.off+s.n : s.off+s.n]
		if err := traced(ctx, s.c.Name, func(ctx context.Context) error { return s.a.Apply(ctx, xs) }); err != nil {
			return nil, fmt.Errorf("rig %s: apply %s: %w", name, s.c.Name, err)
		}
	}
	settle = r.twin.settleTime(ctx, applied)
	if err := r.twin.wait(ctx, settle); err != nil {
		return nil, fmt.Errorf("rig %s: settle %v: %w", name, settle, err)
	}
	r.markSettled(ctx, r.twin.now())
	start = time.Now()
	return r.measure(ctx, func(i int) { measured[i] = true })
}

// twinRead is Read on a twin rig (r.mu held): measure all, accounted like
// a query that applied nothing.
func (r *Rig) twinRead(ctx context.Context) ([]float64, error) {
	measured := map[int]bool{}
	start := time.Now()
	defer func() {
		if len(measured) > 0 {
			_ = r.twin.wait(ctx, r.twin.queryTime(nil, measured, 0)-time.Since(start))
		}
	}()
	return r.measure(ctx, func(i int) { measured[i] = true })
}

// TwinReport is what a twin rig's parts did: the bill of a dry run.
type TwinReport struct {
	Rig     string
	Settle  time.Duration // the rig's configured settle after the parts'
	Queries int           // queries that reached the parts
	// Device is the bench time of those queries: Settled + Acquired +
	// Busy; MaxQuery is that of the longest one.
	Device, MaxQuery        time.Duration
	Settled, Acquired, Busy time.Duration
	Parts                   []PartReport
}

// PartReport is one part of a TwinReport.
type PartReport struct {
	Name, Type       string
	Actuator, Sensor bool
	Device           string
	Notes            []string
	Settle, Acquire  time.Duration // configured, per query
	Busy             time.Duration // beyond them, over the run
	Applies          int           // queries that applied it (an SLM's frames shown)
	Measures         int           // queries that measured it
	Counts           map[string]int
	// SafeState is what its safe state did when it ran (SafeStateRan), or
	// would do from the present state; "" for a part whose safe state does
	// nothing. SafeStateErr is how it failed.
	SafeState    string
	SafeStateRan bool
	SafeStateErr string
}

// TwinReport returns what the twin rig's parts did so far; false for a
// hardware rig.
func (r *Rig) TwinReport() (TwinReport, bool) {
	t := r.twin
	if t == nil {
		return TwinReport{}, false
	}
	t.mu.Lock()
	rep := TwinReport{Rig: r.spec.Name, Settle: t.settle, Queries: t.queries, Device: t.device, MaxQuery: t.maxOne,
		Settled: t.settled, Acquired: t.acq, Busy: t.busyAll}
	parts := slices.Clone(t.parts)
	t.mu.Unlock()
	// The parts are asked without the lock: they may wait for a query.
	for i, c := range r.parts {
		pt := parts[i]
		pr := PartReport{Name: c.Name, Type: pt.typ, Device: pt.info.Device, Notes: slices.Clone(pt.info.Notes),
			Settle: pt.info.Settle, Acquire: pt.info.Acquire, Applies: pt.applies, Measures: pt.measures,
			SafeState: pt.safe, SafeStateRan: pt.safeRan}
		for _, s := range r.acts {
			pr.Actuator = pr.Actuator || s.i == i
		}
		for _, s := range r.sens {
			pr.Sensor = pr.Sensor || s.i == i
		}
		if pt.info.Busy != nil {
			pr.Busy = pt.info.Busy()
		}
		if pt.info.Counts != nil {
			pr.Counts = pt.info.Counts()
		}
		if !pt.safeRan && pt.info.SafeState != nil {
			pr.SafeState = pt.info.SafeState()
		}
		if pt.safeErr != nil {
			pr.SafeStateErr = pt.safeErr.Error()
		}
		rep.Parts = append(rep.Parts, pr)
	}
	return rep, true
}

// safeState runs a twin rig's safe state, recording what each part's did.
func (t *twinState) safeState(ctx context.Context, r *Rig) error {
	var errs []error
	for i, c := range r.parts {
		plan := ""
		if f := t.parts[i].info.SafeState; f != nil { // info is not written after the build
			plan = f()
		}
		err := c.Part.SafeState(ctx)
		t.mu.Lock()
		if !t.parts[i].safeRan {
			t.parts[i].safe, t.parts[i].safeRan, t.parts[i].safeErr = plan, true, err
		}
		t.mu.Unlock()
		if err != nil {
			errs = append(errs, fmt.Errorf("rig %s: safe state of %s: %w", r.spec.Name, c.Name, err))
		}
	}
	return errors.Join(errs...)
}

// twinSLM is the SLM's real driver on a memory display: the configured
// display when it is memory, otherwise one of the framebuffer's configured
// size, or, when the kernel would give the size, the smallest holding the
// pattern at its origin. The LC settle is reported, not waited; a flatness
// correction is not applied to a hardware display's twin (its panel is
// flat).
func twinSLM(_ context.Context, p insitu.Params, _ map[string]Part) (Part, TwinInfo, error) {
	c, err := decodeSLM(p)
	if err != nil {
		return nil, TwinInfo{}, err
	}
	w, h, err := c.Display.Size()
	if err != nil {
		return nil, TwinInfo{}, p.Errorf("display", "%w", err)
	}
	var notes []string
	if c.Display.Type != "memory" {
		if w == 0 || h == 0 {
			side := c.N * max(1, c.MacroPixel) // the pattern in display pixels
			w, h = side, side
			if len(c.Origin) == 2 {
				w, h = c.Origin[0]+side, c.Origin[1]+side
			}
			notes = append(notes, fmt.Sprintf("display %s: its size comes from the device; the twin's memory display is %d×%d, which holds the %d×%d pattern", c.Display, w, h, side, side))
		} else {
			notes = append(notes, fmt.Sprintf("display %s replaced by a %d×%d memory display (8-bit gray; the device's pixel format is not modelled)", c.Display, w, h))
		}
	}
	if len(c.Correction) > 0 && c.Display.Type != "memory" {
		// A memory display's panel is the twin scene's, which says what a
		// correction does to it (a scene with an aberration takes it).
		c.Correction = nil
		what := "correction"
		if c.CorrectionFile != "" {
			what = "correction_file " + c.CorrectionFile
		}
		notes = append(notes, what+" not applied: the twin's panel is flat")
	}
	settle := c.Settle
	c.Settle = 0
	mem := slm.NewMemory(w, h)
	mem.SetResponse(c.Display.Response, nil) // a memory display's liquid crystal, if it has one
	s, err := slm.New(mem, c.Config)
	if err != nil {
		return nil, TwinInfo{}, err
	}
	return SLM{s}, TwinInfo{
		Device:    fmt.Sprintf("SLM driver on a %d×%d memory display", w, h),
		Notes:     notes,
		Settle:    settle,
		SetClock:  mem.SetClock,
		SafeState: func() string { return "blank: show an all-zero frame" },
		Counts:    func() map[string]int { return map[string]int{"frames shown (blanks included)": mem.Frames()} },
	}, nil
}

// twinCamera is the camera driver (ROI, averaging, exposure, measurement)
// on a memory source. A memory backend is kept as configured. A V4L2 one
// becomes a memory camera of its configured size (or just large enough
// for the ROI), at a 1 ms reference exposure, clipping at the format's
// full scale, whose frames show the twin scene (the frame source
// TwinFrameSource) in the ROI and nothing elsewhere.
func twinCamera(ctx context.Context, p insitu.Params, built map[string]Part) (Part, TwinInfo, error) {
	c, err := decodeCamera(p)
	if err != nil {
		return nil, TwinInfo{}, err
	}
	avg := max(c.Average, 1)
	if c.Backend.Type == "memory" {
		m, err := c.memory(p, built)
		if err != nil {
			return nil, TwinInfo{}, err
		}
		part, err := newCameraPart(ctx, m, c)
		if err != nil {
			return nil, TwinInfo{}, err
		}
		exp := c.Exposure
		if exp == 0 {
			exp = max(c.Backend.Reference, time.Millisecond)
		}
		return part, TwinInfo{
			Device:   fmt.Sprintf("camera driver on a %s (frame source %q), as configured", m, c.Backend.Source),
			Acquire:  time.Duration(avg) * exp,
			Counts:   grabs(m),
			SetClock: m.SetClock,
		}, nil
	}
	b := c.Backend
	w, h := b.Width, b.Height
	roi := image.Rect(0, 0, w, h)
	if len(c.ROI) == 4 {
		roi = image.Rect(c.ROI[0], c.ROI[1], c.ROI[0]+c.ROI[2], c.ROI[1]+c.ROI[3])
		if w == 0 || h == 0 {
			w, h = roi.Max.X, roi.Max.Y
		}
	}
	if w <= 0 || h <= 0 || roi.Empty() || !roi.In(image.Rect(0, 0, w, h)) {
		return nil, TwinInfo{}, p.Errorf("backend", "the twin of %s needs the frame size: give backend width and height, or a roi inside them", c.name)
	}
	fs, err := frameSource(p, TwinFrameSource)
	if err != nil {
		return nil, TwinInfo{}, fmt.Errorf("no twin scene (simulators/bench registers it): %w", err)
	}
	scene, err := fs.Open(built, roi.Dx(), roi.Dy(), insitu.Params{File: p.File, Prefix: prefixOf(p) + ".backend.scene", Kind: TwinFrameSource})
	if err != nil {
		return nil, TwinInfo{}, p.Errorf("backend", "twin scene: %w", err)
	}
	window := make([]float64, roi.Dx()*roi.Dy())
	frame := func(ctx context.Context, dst []float64) error {
		if err := scene(ctx, window); err != nil {
			return err
		}
		clear(dst)
		for y := range roi.Dy() {
			copy(dst[(roi.Min.Y+y)*w+roi.Min.X:], window[y*roi.Dx():(y+1)*roi.Dx()])
		}
		return nil
	}
	full := c.full // the format's: V4L2 grey or y16, a GenICam pixel format
	m, err := camera.NewMemory(w, h, time.Millisecond, full, frame)
	if err != nil {
		return nil, TwinInfo{}, p.Errorf("backend", "%w", err)
	}
	part, err := newCameraPart(ctx, m, c)
	if err != nil {
		return nil, TwinInfo{}, err
	}
	exp := c.Exposure
	notes := []string{fmt.Sprintf("camera %s replaced by a %d×%d memory source showing the twin scene in the ROI %v (1 ms reference exposure, clipped at %g ADU)", c.name, w, h, roi, full)}
	if exp == 0 {
		exp = time.Millisecond
		notes = append(notes, "exposure not set: the device keeps its own; the twin's is 1 ms")
	}
	return part, TwinInfo{
		Device:   fmt.Sprintf("camera driver on a %s", m),
		Notes:    notes,
		Acquire:  time.Duration(avg*(1+b.Skip)) * exp,
		Counts:   grabs(m),
		SetClock: m.SetClock,
	}, nil
}

// grabs counts the frames a memory source grabbed.
func grabs(m *camera.Memory) func() map[string]int {
	return func() map[string]int { return map[string]int{"frames grabbed": m.Grabs()} }
}
