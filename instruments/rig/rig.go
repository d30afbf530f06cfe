package rig

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/insitu-lab/insitu"
	"github.com/insitu-lab/insitu/internal/sleep"
)

// Sep joins a part's name and its coordinate or output name: "slm/p0001",
// "pm/power". Not a dot, because config maps keyed by these names (safety
// bounds, output ranges) go through viper, which reads dots as nesting.
const Sep = "/"

// Part is anything a rig holds; every part has a safe state (a sensor's
// is usually a no-op).
type Part interface {
	SafeState(ctx context.Context) error
}

// Actuator is a part the query drives: its coordinates (names without the
// part prefix, device ranges) and Apply, which must not retain x.
type Actuator interface {
	Part
	Coordinates() insitu.Space
	Apply(ctx context.Context, x []float64) error
}

// Sensor is a part the query reads: its output names (without the part
// prefix) and Measure, returning one value per name.
type Sensor interface {
	Part
	Outputs() []string
	Measure(ctx context.Context) ([]float64, error)
}

// SensorUnits is a sensor that knows the units of its outputs, one per
// output ("" where dimensionless): the rig's Spec carries them
// (insitu.Spec.OutUnits) into the run's journal.
type SensorUnits interface {
	OutputUnits() []string
}

// Settler is an actuator that needs time after Apply before a measurement
// means anything (an SLM's liquid crystal, a DAC's filter).
type Settler interface {
	Settle() time.Duration
}

// Component is a named part with optional bounds from the config, which
// narrow the device's ranges. Lower and Upper hold one value per coordinate,
// or one value for all; nil leaves the device range.
type Component struct {
	Name         string
	Part         Part
	Lower, Upper []float64
	Type         string // the part type a config named ("smu", "slm"); "" for a part built in code
}

type actSlot struct {
	c      Component
	a      Actuator
	off, n int
	i      int // index in parts
}

type senSlot struct {
	c Component
	s Sensor
	n int
	i int // index in parts
}

// Rig is one BlackBox over several parts: Query applies every actuator in
// order, waits for the slowest to settle (plus the rig's own settle time),
// then measures every sensor in order, all under one lock.
type Rig struct {
	spec   insitu.Spec
	settle time.Duration
	parts  []Component
	acts   []actSlot
	sens   []senSlot
	twin   *twinState // nil for a hardware rig; see twin.go

	mu sync.Mutex // one query at a time
}

// New builds a rig named name from parts, in order. A part that is an
// Actuator with no coordinates, or a Sensor with no outputs, is only that
// which it has (a DAQ board may have only inputs).
func New(name string, settle time.Duration, parts ...Component) (*Rig, error) {
	views := make([]partView, len(parts))
	for i, c := range parts {
		if c.Part == nil {
			return nil, fmt.Errorf("rig %s: part %q: every part needs a distinct name and a device", name, c.Name)
		}
		views[i] = partView{name: c.Name, lower: c.Lower, upper: c.Upper}
		if a, ok := c.Part.(Actuator); ok {
			views[i].in = a.Coordinates()
		}
		if s, ok := c.Part.(Sensor); ok {
			views[i].out = s.Outputs()
			if u, ok := c.Part.(SensorUnits); ok {
				views[i].outUnits = u.OutputUnits()
			}
		}
	}
	spec, err := buildSpec(name, settle, views)
	if err != nil {
		return nil, err
	}
	r := &Rig{settle: settle, parts: parts, spec: spec}
	off := 0
	for i, c := range parts {
		if n := views[i].in.Dim(); n > 0 {
			r.acts = append(r.acts, actSlot{c: c, a: c.Part.(Actuator), off: off, n: n, i: i})
			off += n
		}
		if n := len(views[i].out); n > 0 {
			r.sens = append(r.sens, senSlot{c: c, s: c.Part.(Sensor), n: n, i: i})
		}
	}
	return r, nil
}

// partView is what a rig's Spec is made of for one part: its name, the
// bounds from the config, its coordinates (none: not an actuator) and its
// outputs (none: not a sensor), from the open part or from its config.
type partView struct {
	name         string
	lower, upper []float64
	in           insitu.Space
	out          []string
	outUnits     []string // one per out, or none
}

// buildSpec is the Spec of a rig of parts, in order: inputs
// <part>/<coordinate>, the device ranges narrowed by the bounds, then
// outputs <part>/<output>. New and the describer both make it here, so a
// rig and its description cannot disagree.
func buildSpec(name string, settle time.Duration, parts []partView) (insitu.Spec, error) {
	if settle < 0 {
		return insitu.Spec{}, fmt.Errorf("rig %s: settle %v is negative", name, settle)
	}
	spec := insitu.Spec{Name: name}
	in := &spec.In
	seen := map[string]bool{}
	acts := 0
	for _, c := range parts {
		if c.name == "" || seen[c.name] {
			return insitu.Spec{}, fmt.Errorf("rig %s: part %q: every part needs a distinct name and a device", name, c.name)
		}
		seen[c.name] = true
		used := false
		if c.in.Dim() > 0 {
			sp, err := intersect(c.in, c.lower, c.upper)
			if err != nil {
				return insitu.Spec{}, fmt.Errorf("rig %s: part %s: %w", name, c.name, err)
			}
			for i := range sp.Dim() {
				in.Names = append(in.Names, c.name+Sep+sp.Name(i))
				unit := ""
				if i < len(sp.Units) {
					unit = sp.Units[i]
				}
				in.Units = append(in.Units, unit)
				in.Periodic = append(in.Periodic, sp.IsPeriodic(i))
			}
			in.Lower, in.Upper = append(in.Lower, sp.Lower...), append(in.Upper, sp.Upper...)
			acts++
			used = true
		} else if c.lower != nil || c.upper != nil {
			return insitu.Spec{}, fmt.Errorf("rig %s: part %s: bounds given but the part has no inputs", name, c.name)
		}
		for k, o := range c.out {
			spec.Out = append(spec.Out, c.name+Sep+o)
			unit := ""
			if k < len(c.outUnits) {
				unit = c.outUnits[k]
			}
			spec.OutUnits = append(spec.OutUnits, unit)
			used = true
		}
		if !used {
			return insitu.Spec{}, fmt.Errorf("rig %s: part %s has neither inputs nor outputs", name, c.name)
		}
	}
	if acts == 0 {
		return insitu.Spec{}, fmt.Errorf("rig %s: no actuator: nothing for the optimizer to drive", name)
	}
	if err := spec.Validate(); err != nil {
		return insitu.Spec{}, fmt.Errorf("rig %s: %w", name, err)
	}
	return spec, nil
}

// intersect narrows the device space by the bounds lower and upper (one
// value for all coordinates, or one each; nil leaves the device's). A
// bound outside the device's range is an error naming both: bounds narrow
// the range, they never widen it. Errors are *insitu.FieldError at
// bounds.lower or bounds.upper (bounds.upper[i] for one of a list).
func intersect(dev insitu.Space, lower, upper []float64) (insitu.Space, error) {
	n := dev.Dim()
	sp := dev.Clone()
	pick := func(b []float64, key string) (func(i int) (float64, string), error) {
		switch len(b) {
		case 0:
			return nil, nil
		case 1:
			return func(int) (float64, string) { return b[0], key }, nil
		case n:
			return func(i int) (float64, string) { return b[i], fmt.Sprintf("%s[%d]", key, i) }, nil
		}
		return nil, insitu.FieldErrorf(key, "%d values, want 1 or %d", len(b), n)
	}
	lo, err := pick(lower, "bounds.lower")
	if err != nil {
		return sp, err
	}
	hi, err := pick(upper, "bounds.upper")
	if err != nil {
		return sp, err
	}
	var errs []error
	seen := map[string]bool{} // one error per key: a single bound applies to every coordinate
	outside := func(key string, v float64, i int, side string) {
		if !seen[key] {
			seen[key] = true
			errs = append(errs, insitu.FieldErrorf(key, "%v%s is %s the device's range [%v, %v]%s of %s",
				v, unit(dev, i), side, dev.Lower[i], dev.Upper[i], unit(dev, i), dev.Name(i)))
		}
	}
	for i := range n {
		if lo != nil {
			v, key := lo(i)
			if v < dev.Lower[i] {
				outside(key, v, i, "below")
			}
			sp.Lower[i] = v
		}
		if hi != nil {
			v, key := hi(i)
			if v > dev.Upper[i] {
				outside(key, v, i, "above")
			}
			sp.Upper[i] = v
		}
		if len(errs) == 0 && !(sp.Lower[i] <= sp.Upper[i]) {
			errs = append(errs, fmt.Errorf("coordinate %s: bounds [%g, %g] leave nothing of the device range [%g, %g]",
				sp.Name(i), sp.Lower[i], sp.Upper[i], dev.Lower[i], dev.Upper[i]))
		}
	}
	if len(errs) > 0 {
		return sp, errors.Join(errs...)
	}
	return dev.Narrowed(sp.Lower, sp.Upper), nil
}

// Components returns the rig's parts, in order, as they were given to New
// (a copy of the list; the parts are shared).
func (r *Rig) Components() []Component { return append([]Component(nil), r.parts...) }

// Settle returns the rig's own settle time, after the parts' own.
func (r *Rig) Settle() time.Duration { return r.settle }

// unit is " V" for a coordinate in volts, "" for one without a unit.
func unit(sp insitu.Space, i int) string {
	if i < len(sp.Units) && sp.Units[i] != "" {
		return " " + sp.Units[i]
	}
	return ""
}

// Spec implements insitu.BlackBox: inputs named <part>/<coordinate>, the
// device ranges narrowed by the config bounds; outputs <part>/<output>.
func (r *Rig) Spec() insitu.Spec { return r.spec }

// Query implements insitu.BlackBox: apply all, settle, measure all, as one
// step. x is checked against the Spec first, so nothing outside it reaches
// a device even without the guard.
func (r *Rig) Query(ctx context.Context, x []float64) ([]float64, error) {
	name := r.spec.Name
	if err := r.spec.In.Contains(x); err != nil {
		return nil, fmt.Errorf("rig %s: query: %w", name, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.twin != nil {
		return r.twinQuery(ctx, x)
	}
	var settle time.Duration
	for _, s := range r.acts {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("rig %s: apply %s: %w", name, s.c.Name, err)
		}
		xs := x[s.off : s.off+s.n : s.off+s.n]
		if err := traced(ctx, s.c.Name, func(ctx context.Context) error { return s.a.Apply(ctx, xs) }); err != nil {
			return nil, fmt.Errorf("rig %s: apply %s: %w", name, s.c.Name, err)
		}
		if st, ok := s.a.(Settler); ok {
			settle = max(settle, st.Settle())
		}
	}
	settle += r.settle
	if d, ok := settleOf(ctx); ok {
		settle = d
	}
	// Apply returns once the device has confirmed (an SLM's frame is on
	// screen), so the settle time starts from there.
	if err := sleep.For(ctx, settle); err != nil {
		return nil, fmt.Errorf("rig %s: settle %v: %w", name, settle, err)
	}
	r.markSettled(ctx, time.Now())
	return r.measure(ctx, nil)
}

// markSettled marks the query settled, at, for every part that settles.
func (r *Rig) markSettled(ctx context.Context, at time.Time) {
	for _, s := range r.acts {
		if _, ok := s.a.(Settler); ok {
			insitu.MarkQuery(ctx, s.c.Name, insitu.MarkSettled, at)
		}
	}
}

type settleKey struct{}

// WithSettle returns ctx asking the rig to wait d between applying a
// query's input and measuring, in place of the parts' settle times and
// the rig's: a settle calibration samples the response at chosen delays
// after the frame is shown this way.
func WithSettle(ctx context.Context, d time.Duration) context.Context {
	return context.WithValue(ctx, settleKey{}, d)
}

func settleOf(ctx context.Context) (time.Duration, bool) {
	d, ok := ctx.Value(settleKey{}).(time.Duration)
	return d, ok
}

// traced runs fn under a trace of its own and passes the marks it made on
// to ctx's trace under the part's name: instruments mark without knowing
// what the rig calls them.
func traced(ctx context.Context, part string, fn func(context.Context) error) error {
	var tr insitu.QueryTrace
	err := fn(insitu.WithQueryTrace(ctx, &tr))
	for _, m := range tr.Marks() {
		insitu.MarkQuery(ctx, part, m.Event, m.At)
	}
	return err
}

// Read implements insitu.Reader: every sensor is measured, in order, and
// no actuator is touched, so the outputs are what the bench shows in its
// present state (a suspended run's polls).
func (r *Rig) Read(ctx context.Context) ([]float64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.twin != nil {
		return r.twinRead(ctx)
	}
	return r.measure(ctx, nil)
}

// measure reads every sensor in order into one output vector, calling
// started (if not nil) with each sensor's component index before it reads.
func (r *Rig) measure(ctx context.Context, started func(i int)) ([]float64, error) {
	name := r.spec.Name
	y := make([]float64, 0, len(r.spec.Out))
	for _, s := range r.sens {
		if started != nil {
			started(s.i)
		}
		var v []float64
		err := traced(ctx, s.c.Name, func(ctx context.Context) (err error) {
			v, err = s.s.Measure(ctx)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("rig %s: measure %s: %w", name, s.c.Name, err)
		}
		if len(v) != s.n {
			return nil, fmt.Errorf("rig %s: measure %s: %d values for %d outputs", name, s.c.Name, len(v), s.n)
		}
		y = append(y, v...)
	}
	return y, nil
}

// closeAll closes the parts of comps that are Closers, last first: what a
// failed build leaves behind.
func closeAll(comps []Component) {
	for i := len(comps) - 1; i >= 0; i-- {
		if c, ok := comps[i].Part.(io.Closer); ok {
			c.Close()
		}
	}
}

// SafeState puts every part in its safe state, once each, in order, even
// if some fail; the errors are joined. It does not wait for a running query
// (the guard calls it when a query hangs); parts serialize their own I/O.
func (r *Rig) SafeState(ctx context.Context) error {
	if r.twin != nil {
		return r.twin.safeState(ctx, r)
	}
	var errs []error
	for _, c := range r.parts {
		if err := c.Part.SafeState(ctx); err != nil {
			errs = append(errs, fmt.Errorf("rig %s: safe state of %s: %w", r.spec.Name, c.Name, err))
		}
	}
	return errors.Join(errs...)
}

// Close releases every part that holds something (io.Closer), in reverse
// order. It does not put them in their safe state: the guard does, first.
func (r *Rig) Close() error {
	var errs []error
	for i := len(r.parts) - 1; i >= 0; i-- {
		if cl, ok := r.parts[i].Part.(io.Closer); ok {
			if err := cl.Close(); err != nil {
				errs = append(errs, fmt.Errorf("rig %s: close %s: %w", r.spec.Name, r.parts[i].Name, err))
			}
		}
	}
	return errors.Join(errs...)
}

var (
	_ insitu.BlackBox   = (*Rig)(nil)
	_ insitu.SafeStater = (*Rig)(nil)
	_ insitu.Reader     = (*Rig)(nil)
)

// Device is one part of a rig as a run's journal describes it: its name,
// its type, and the identity it reports (insitu.Identifier), or why it
// reports none.
type Device struct {
	Name, Type string
	Identity   string
	Err        error
}

// Devices lists the rig's parts in order with their identities. A part
// that is not an insitu.Identifier is listed with Err saying so; asking
// one does not go through the rig's lock, since identities are read when
// a part is opened.
func (r *Rig) Devices(ctx context.Context) []Device {
	ds := make([]Device, len(r.parts))
	for i, c := range r.parts {
		ds[i] = Device{Name: c.Name, Type: c.Type}
		id, ok := c.Part.(insitu.Identifier)
		if !ok {
			ds[i].Err = fmt.Errorf("%s: the part does not report an identity", c.Name)
			continue
		}
		ds[i].Identity, ds[i].Err = id.Identify(ctx)
	}
	return ds
}
