package safety

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"time"

	"github.com/go-viper/mapstructure/v2"

	"github.com/insitu-lab/insitu"
)

// Config is the safety section of a run configuration. The zero Config is
// valid and only enforces what is always enforced: finite inputs inside the
// device's own space, and SafeState exactly once.
//
// Limits whose zero value would mean "nothing is allowed" (rate, budget) are
// pointers: absent means no limit, and an explicit 0 is a configuration
// error rather than a silent "disabled". In Go 1.26
// they are set with new(100.0) or new(500).
type Config struct {
	// BoundsMode is what happens to an input outside the bounds: "reject"
	// (the default, also "") or "clamp" (projected, counted, reported).
	BoundsMode string `mapstructure:"bounds_mode" yaml:"bounds_mode,omitempty" doc:"an input outside the bounds: reject (the query fails before any device is touched) or clamp (projected, counted, reported)"`
	// Lower and Upper narrow the device's space by coordinate name; the
	// guard enforces the intersection with the device's Spec.
	Lower map[string]float64 `mapstructure:"lower" yaml:"lower,omitempty" doc:"narrower lower bounds, by coordinate name, in its unit"`
	Upper map[string]float64 `mapstructure:"upper" yaml:"upper,omitempty" doc:"narrower upper bounds, by coordinate name, in its unit"`

	// MaxStep is the largest |Δ| per query for each coordinate, by name, or
	// for every coordinate under the key "*" (a scalar in YAML).
	MaxStep PerName `mapstructure:"max_step" yaml:"max_step,omitempty" doc:"largest change per query of each coordinate, by name, or of all under '*' (a number alone), in its unit"`
	// SlewMode is what happens to a larger step: "reject" (default, also
	// "") or "ramp" (QCoDeS step semantics: split into device queries).
	SlewMode string `mapstructure:"slew_mode" yaml:"slew_mode,omitempty" doc:"a larger change: reject, or ramp (split into device queries of at most max_step, QCoDeS step)"`
	// Initial is the device's state before the first query (e.g. read
	// back), by coordinate name. Without it the first query has no slew
	// limit. It must name every coordinate and lie inside the bounds.
	Initial map[string]float64 `mapstructure:"initial" yaml:"initial,omitempty" doc:"the device's state before the first query, by coordinate name, for the first slew check"`

	// Rate is the largest sustained number of device queries per second,
	// Burst how many may go back to back (default 1). MinInterval is the
	// least time between the starts of two device queries (QCoDeS
	// inter_delay). Ramp steps are device queries.
	Rate        *float64      `mapstructure:"rate" yaml:"rate,omitempty" doc:"largest sustained device queries per second; unset: no limit"`
	Burst       int           `mapstructure:"burst" yaml:"burst,omitempty" doc:"device queries that may go back to back under rate (default 1)"`
	MinInterval time.Duration `mapstructure:"min_interval" yaml:"min_interval,omitempty" doc:"least time between the starts of two device queries (QCoDeS inter_delay)"`

	// Budget is the largest number of device queries over the guard's
	// life, ramp steps included; over a resumed run's life when the guard
	// is told the earlier sessions' queries (WithDeviceQueriesUsed).
	Budget *int `mapstructure:"budget" yaml:"budget,omitempty" doc:"most device queries over the run's life, ramp steps and resumed sessions included; unset: no limit"`

	// Timeout is the watchdog: the longest one device query may take
	// before the device state counts as unknown and the guard trips. 0
	// means no watchdog (the query runs on the caller's goroutine and only
	// the caller's context bounds it). Grace is how long the guard waits
	// for a query it has cancelled, and how long safe state waits for a
	// device call in flight (default 1 s): a query still running after
	// that is abandoned on its goroutine — the guard has tripped, so no
	// other query starts — and safe state runs anyway, its outcome an
	// ErrQueryInFlight error. SafeStateTimeout bounds the safe-state call
	// (default 10 s), which is likewise abandoned after a further Grace.
	Timeout          time.Duration `mapstructure:"timeout" yaml:"timeout,omitempty" doc:"watchdog: the longest a device query may take before the guard trips to safe state; 0: none"`
	Grace            time.Duration `mapstructure:"grace" yaml:"grace,omitempty" doc:"how long a cancelled query, or safe state, waits for a device call in flight (default 1s)"`
	SafeStateTimeout time.Duration `mapstructure:"safe_state_timeout" yaml:"safe_state_timeout,omitempty" doc:"bound on the safe-state call (default 10s)"`

	// CheckOutputs is what a non-finite output does: "error" (default,
	// also ""), "trip" (error, safe state, refuse further queries) or
	// "off".
	CheckOutputs string `mapstructure:"check_outputs" yaml:"check_outputs,omitempty" doc:"a non-finite output: error, trip (error, safe state, no further query) or off"`
	// OutputRanges are the plausible values of outputs, by name; a value
	// outside is an ErrOutput error (the device is not tripped).
	OutputRanges map[string]Range `mapstructure:"output_ranges" yaml:"output_ranges,omitempty" doc:"plausible range of outputs, by name: a reading outside is an error"`
	// Saturation is the full-scale level of outputs, by name or "*": a
	// reading with |y| ≥ level is flagged and counted, not an error.
	Saturation PerName `mapstructure:"saturation" yaml:"saturation,omitempty" doc:"full-scale level of outputs, by name or '*': a reading at or above it is flagged and counted"`
	// Interlocks trip the guard (safe state, ErrInterlock) when an output
	// crosses a limit.
	Interlocks []Interlock `mapstructure:"interlocks" yaml:"interlocks,omitempty" doc:"trip the guard (safe state, run ends resumable) when an output crosses a limit"`
	// ModelFidelity compares the surrogate's prediction, made before each
	// query, with the measurement, and pauses or trips the run when the
	// surrogate stops explaining the device (drift, a moved fibre, a
	// saturated camera). Nil: off.
	ModelFidelity *FidelityConfig `mapstructure:"model_fidelity" yaml:"model_fidelity,omitempty" doc:"pause or trip when the surrogate's predictions stop explaining the device (drift, a moved fibre)"`
}

// Range is a closed interval [Lo, Hi]; either end may be infinite.
type Range struct {
	Lo float64 `mapstructure:"lo" yaml:"lo" doc:"lowest plausible value, in the output's unit"`
	Hi float64 `mapstructure:"hi" yaml:"hi" doc:"highest plausible value, in the output's unit"`
}

// Interlock acts when output Output is above Above or below Below. At
// least one of them must be set; pointers because 0 is a real limit (a
// current above 0).
//
// Its Action is "trip" (the default, also ""): safe state, and the run
// ends, resumable. Or "suspend", Bluesky's suspender: the query that saw
// the output out of range is held — no query reaches the device — while
// the guard reads the outputs every Poll without applying an input (the
// black box must be an insitu.Reader, as a rig is); once the output has
// been back in range for ResumeAfter the held query is made again and the
// run goes on, so the loop sees one valid result. Hold says what the
// devices do meanwhile: "current" (default) leaves them as the last query
// left them, "safe" puts them in their safe state until the query is made
// again. A suspension longer than GiveUpAfter (0: no limit) trips the
// guard, ending the run resumable. Every suspension and resumption is an
// event.
type Interlock struct {
	Name   string   `mapstructure:"name" yaml:"name,omitempty" doc:"names the interlock in events and errors; default: the condition"`
	Output string   `mapstructure:"output" yaml:"output" doc:"the output watched, by name"`
	Above  *float64 `mapstructure:"above" yaml:"above,omitempty" doc:"trip when the output exceeds this, in its unit"`
	Below  *float64 `mapstructure:"below" yaml:"below,omitempty" doc:"trip when the output falls under this, in its unit"`

	Action      string        `mapstructure:"action" yaml:"action,omitempty" doc:"trip (default: safe state, the run ends resumable) or suspend (hold the run while out of range)"`
	Hold        string        `mapstructure:"hold" yaml:"hold,omitempty" doc:"suspend: the devices while held, current (default: as the last query left them) or safe"`
	Poll        time.Duration `mapstructure:"poll" yaml:"poll,omitempty" doc:"suspend: how often the outputs are read while held (default 1s)"`
	ResumeAfter time.Duration `mapstructure:"resume_after" yaml:"resume_after,omitempty" doc:"suspend: how long the output must be back in range before the held query is made again"`
	GiveUpAfter time.Duration `mapstructure:"give_up_after" yaml:"give_up_after,omitempty" doc:"suspend: the longest suspension before the guard trips, ending the run resumable; 0: no limit"`
}

// Interlock actions and suspension holds.
const (
	ActionTrip    = "trip"
	ActionSuspend = "suspend"
	HoldCurrent   = "current"
	HoldSafe      = "safe"
)

// DefaultPoll is how often a suspended run reads its outputs when the
// interlock sets no poll.
const DefaultPoll = time.Second

func (il Interlock) suspends() bool { return il.Action == ActionSuspend }

// label names the interlock in events and errors.
func (il Interlock) label() string {
	if il.Name != "" {
		return il.Name
	}
	s := il.Output
	if il.Above != nil {
		s += fmt.Sprintf(">%v", *il.Above)
	}
	if il.Below != nil {
		s += fmt.Sprintf("<%v", *il.Below)
	}
	return s
}

// PerName holds one value per coordinate or output name; the key "*"
// applies to every name without its own entry. In YAML a bare number means
// {"*": number}; for mapstructure/viper install DecodeHook.
type PerName map[string]float64

// All is the PerName that gives v to every name.
func All(v float64) PerName { return PerName{AnyKey: v} }

// AnyKey is the key of a PerName that applies to every name without its
// own entry; configs spell it "*".
const AnyKey = "*"

func (p PerName) get(name string) (float64, bool) {
	if v, ok := p[name]; ok {
		return v, true
	}
	v, ok := p[AnyKey]
	return v, ok
}

// UnmarshalYAML accepts a number (for every name) or a map. It uses the
// yaml.v2/v3 function form so this package need not import a YAML library.
func (p *PerName) UnmarshalYAML(unmarshal func(any) error) error {
	var v float64
	if err := unmarshal(&v); err == nil {
		*p = All(v)
		return nil
	}
	var m map[string]float64
	if err := unmarshal(&m); err != nil {
		return fmt.Errorf("want a number or a map of name to number: %w", err)
	}
	*p = m
	return nil
}

var perNameType = reflect.TypeFor[PerName]()

// DecodeHook lets mapstructure (and viper's Unmarshal) decode a scalar
// max_step or saturation into a PerName for every name. Compose it with the
// decoder's other hooks:
//
//	c.DecodeHook = mapstructure.ComposeDecodeHookFunc(c.DecodeHook, safety.DecodeHook())
func DecodeHook() mapstructure.DecodeHookFuncType {
	return func(from, to reflect.Type, data any) (any, error) {
		if to != perNameType {
			return data, nil
		}
		switch from.Kind() {
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
			reflect.Float32, reflect.Float64, reflect.String:
			return map[string]any{AnyKey: data}, nil
		}
		return data, nil
	}
}

// Modes.
const (
	ModeReject = "reject"
	ModeClamp  = "clamp"
	ModeRamp   = "ramp"
	ModeError  = "error"
	ModeTrip   = "trip"
	ModeOff    = "off"
)

// ConfigError is one problem with a Config, naming its key, e.g.
// "max_step.x3" or "interlocks[0].above". It is the black boxes' config
// error with Kind "safety", so its message reads
// "safety: max_step.x3: ...".
type ConfigError = insitu.ConfigError

// configKind is the Kind of every ConfigError this package makes.
const configKind = "safety"

// Validate reports every problem with c that needs no device to see, each
// a *ConfigError naming its key, joined with errors.Join. New also checks
// the names against the device.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, &ConfigError{Kind: configKind, Key: key, Msg: fmt.Sprintf(format, args...)})
	}
	oneOf := func(key, v string, ok ...string) {
		if v != "" && !slices.Contains(ok, v) {
			bad(key, "must be one of %q, got %q", ok, v)
		}
	}
	oneOf("bounds_mode", c.BoundsMode, ModeReject, ModeClamp)
	oneOf("slew_mode", c.SlewMode, ModeReject, ModeRamp)
	oneOf("check_outputs", c.CheckOutputs, ModeError, ModeTrip, ModeOff)

	for _, k := range sortedKeys(c.Lower) {
		if !finite(c.Lower[k]) {
			bad("lower."+k, "must be finite, got %v", c.Lower[k])
		}
	}
	for _, k := range sortedKeys(c.Upper) {
		v := c.Upper[k]
		if !finite(v) {
			bad("upper."+k, "must be finite, got %v", v)
		} else if lo, ok := c.Lower[k]; ok && finite(lo) && lo > v {
			bad("upper."+k, "%v is below lower.%s = %v", v, k, lo)
		}
	}
	for _, k := range sortedKeys(c.MaxStep) {
		if v := c.MaxStep[k]; !finite(v) || v <= 0 {
			bad("max_step."+k, "must be positive and finite, got %v", v)
		}
	}
	if c.SlewMode == ModeRamp && len(c.MaxStep) == 0 {
		bad("slew_mode", "ramp needs max_step")
	}
	for _, k := range sortedKeys(c.Initial) {
		if !finite(c.Initial[k]) {
			bad("initial."+k, "must be finite, got %v", c.Initial[k])
		}
	}
	if c.Rate != nil && (!finite(*c.Rate) || *c.Rate <= 0) {
		bad("rate", "must be positive and finite, got %v (omit it for no rate limit)", *c.Rate)
	}
	switch {
	case c.Burst < 0:
		bad("burst", "must be ≥ 1, got %d", c.Burst)
	case c.Burst > 0 && c.Rate == nil:
		bad("burst", "needs rate")
	}
	if c.MinInterval < 0 {
		bad("min_interval", "must be ≥ 0, got %v", c.MinInterval)
	}
	if c.Budget != nil && *c.Budget < 1 {
		bad("budget", "must be ≥ 1, got %d (omit it for no budget)", *c.Budget)
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"timeout", c.Timeout}, {"grace", c.Grace}, {"safe_state_timeout", c.SafeStateTimeout}} {
		if d.v < 0 {
			bad(d.key, "must be ≥ 0, got %v", d.v)
		}
	}
	for _, k := range sortedKeys(c.OutputRanges) {
		r := c.OutputRanges[k]
		switch {
		case math.IsNaN(r.Lo) || math.IsNaN(r.Hi):
			bad("output_ranges."+k, "must not be NaN, got [%v, %v]", r.Lo, r.Hi)
		case r.Lo > r.Hi:
			bad("output_ranges."+k, "lo %v exceeds hi %v", r.Lo, r.Hi)
		}
	}
	for _, k := range sortedKeys(c.Saturation) {
		if v := c.Saturation[k]; !finite(v) || v <= 0 {
			bad("saturation."+k, "must be positive and finite, got %v", v)
		}
	}
	if c.ModelFidelity != nil {
		c.ModelFidelity.problems(bad)
	}
	for i, il := range c.Interlocks {
		key := fmt.Sprintf("interlocks[%d]", i)
		if il.Output == "" {
			bad(key+".output", "is required")
		}
		if il.Above == nil && il.Below == nil {
			bad(key, "needs above or below")
		}
		if il.Above != nil && !finite(*il.Above) {
			bad(key+".above", "must be finite, got %v", *il.Above)
		}
		if il.Below != nil && !finite(*il.Below) {
			bad(key+".below", "must be finite, got %v", *il.Below)
		}
		oneOf(key+".action", il.Action, ActionTrip, ActionSuspend)
		if !il.suspends() {
			for _, k := range []struct {
				key string
				set bool
			}{{"hold", il.Hold != ""}, {"poll", il.Poll != 0}, {"resume_after", il.ResumeAfter != 0}, {"give_up_after", il.GiveUpAfter != 0}} {
				if k.set {
					bad(key+"."+k.key, "only an interlock with action: suspend holds a run; this one trips")
				}
			}
			continue
		}
		oneOf(key+".hold", il.Hold, HoldCurrent, HoldSafe)
		if il.Poll < 0 {
			bad(key+".poll", "must be > 0 (omit it for %v), got %v", DefaultPoll, il.Poll)
		}
		if il.ResumeAfter < 0 {
			bad(key+".resume_after", "must be ≥ 0, got %v", il.ResumeAfter)
		}
		switch {
		case il.GiveUpAfter < 0:
			bad(key+".give_up_after", "must be ≥ 0 (0: never), got %v", il.GiveUpAfter)
		case il.GiveUpAfter > 0 && il.GiveUpAfter <= il.ResumeAfter:
			bad(key+".give_up_after", "%v would give up before the output could be back in range for resume_after %v", il.GiveUpAfter, il.ResumeAfter)
		}
	}
	return errors.Join(errs...)
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
