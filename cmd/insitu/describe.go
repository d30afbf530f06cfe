package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/insitu-lab/insitu"
	"github.com/insitu-lab/insitu/instruments/rig"
	"github.com/insitu-lab/insitu/loop/journal"
	"github.com/insitu-lab/insitu/safety"
)

// runFacts is what a run's description is made of besides its guarded
// Spec: the config's kind, safety section and objective, and for a
// training the number of data inputs.
type runFacts struct {
	kind      string
	safety    safety.Config
	objective journal.Objective
	du        int // a training's data inputs at the front; 0 for a run
	config    []byte
}

// describe is the journal's description of a run on box, whose guarded
// Spec is spec: the variables with their roles, units and bounds, the
// devices' identities, the config's hash and this binary's build.
func describe(ctx context.Context, spec insitu.Spec, box insitu.BlackBox, f runFacts) journal.Description {
	d := journal.Description{
		Box: spec.Name, Kind: f.kind, Objective: f.objective,
		Devices: identify(ctx, box), ConfigHash: journal.ConfigHash(f.config), Build: build(),
	}
	bound := func(v float64) *float64 {
		if math.IsInf(v, 0) || math.IsNaN(v) {
			return nil
		}
		return &v
	}
	for i := range spec.In.Dim() {
		role := journal.RoleSetpoint
		if f.du > 0 {
			role = journal.RoleParameter
			if i < f.du {
				role = journal.RoleData
			}
		}
		unit := ""
		if i < len(spec.In.Units) {
			unit = spec.In.Units[i]
		}
		name := spec.In.Name(i)
		d.Inputs = append(d.Inputs, journal.Variable{
			Name: name, Role: role, Unit: unit, Lower: bound(spec.In.Lower[i]), Upper: bound(spec.In.Upper[i]),
			Periodic: spec.In.IsPeriodic(i), Shape: []int{}, DType: "<f8", Source: source(f.kind, name),
		})
	}
	for k, name := range spec.Out {
		v := journal.Variable{Name: name, Role: journal.RoleMeasurement, Unit: spec.OutUnit(k), Shape: []int{}, DType: "<f8", Source: source(f.kind, name)}
		if r, ok := outputRange(f.safety.OutputRanges, name); ok {
			v.Lower, v.Upper = bound(r.Lo), bound(r.Hi)
		}
		d.Outputs = append(d.Outputs, v)
	}
	return d
}

// source is the device a rig's variable belongs to: its part, the name's
// prefix. A twin's variables have none.
func source(kind, name string) string {
	if kind != "rig" {
		return ""
	}
	part, _, ok := strings.Cut(name, rig.Sep)
	if !ok {
		return ""
	}
	return part
}

// outputRange finds name's plausible range in safety.output_ranges: by
// its exact name, or the one key that matches it ignoring case, as the
// guard resolves it.
func outputRange(ranges map[string]safety.Range, name string) (safety.Range, bool) {
	if r, ok := ranges[name]; ok {
		return r, true
	}
	var found []safety.Range
	for k, r := range ranges {
		if strings.EqualFold(k, name) {
			found = append(found, r)
		}
	}
	if len(found) == 1 {
		return found[0], true
	}
	return safety.Range{}, false
}

// identify asks the devices behind box who they are: each part of a rig,
// or the box itself if it is an insitu.Identifier. A software twin has
// none. A device that does not answer within a few seconds is listed with
// the error.
func identify(ctx context.Context, box insitu.BlackBox) []journal.Device {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	errText := func(err error) string {
		if err == nil {
			return ""
		}
		return err.Error()
	}
	switch b := box.(type) {
	case *rig.Rig:
		var ds []journal.Device
		for _, d := range b.Devices(ctx) {
			ds = append(ds, journal.Device{Name: d.Name, Type: d.Type, Identity: d.Identity, Error: errText(d.Err)})
		}
		return ds
	case insitu.Identifier:
		id, err := b.Identify(ctx)
		return []journal.Device{{Name: box.Spec().Name, Identity: id, Error: errText(err)}}
	}
	return nil
}

// build identifies this binary: the version string, and what the Go
// toolchain recorded of the module and the VCS state it was built from.
func build() journal.Build {
	b := journal.Build{Version: version, GoVersion: runtime.Version()}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return b
	}
	b.Module = bi.Main.Version
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Revision = s.Value
		case "vcs.time":
			b.Time = s.Value
		case "vcs.modified":
			b.Modified = s.Value == "true"
		}
	}
	return b
}

// storeDescription stores the run's description in j at the start of its
// first session. A resume of a described run checks the devices are the
// ones that began it, and says so in the journal (an event of kind
// "identity") and on w when one is not; a journal older than descriptions
// gets one now.
func storeDescription(ctx context.Context, j *journal.Journal, d journal.Description, warn func(string)) error {
	old, err := j.Describe(ctx)
	if errors.Is(err, journal.ErrNoDescription) {
		return j.SetDescription(ctx, d)
	}
	if err != nil {
		return err
	}
	was := map[string]string{}
	for _, dev := range old.Devices {
		was[dev.Name] = dev.Identity
	}
	for _, dev := range d.Devices {
		before, ok := was[dev.Name]
		if !ok || before == dev.Identity || dev.Identity == "" {
			continue
		}
		msg := fmt.Sprintf("%s is %q, the run began with %q", dev.Name, dev.Identity, before)
		warn("insitu: warning: " + msg)
		if err := j.Event(ctx, journal.EventRecord{Kind: "identity", Detail: msg, Name: dev.Name, Value: math.NaN()}); err != nil {
			return err
		}
	}
	return nil
}

// runDescription is the stored description of the run in j, or, for a
// journal older than descriptions, one made by describing its config with
// this binary (stored false): the names and units this build gives the
// config's box, which may differ from those of the build that ran it.
func runDescription(ctx context.Context, j *journal.Journal) (d journal.Description, stored bool, err error) {
	d, err = j.Describe(ctx)
	if err == nil {
		return d, true, nil
	}
	if !errors.Is(err, journal.ErrNoDescription) {
		return d, false, err
	}
	spec, ok := describeRun(ctx, j)
	if !ok {
		return journal.Description{}, false, err
	}
	m, merr := j.Meta(ctx)
	if merr != nil {
		return journal.Description{}, false, merr
	}
	kind, _, _ := strings.Cut(m.Kind, " ") // "rig (dry run)"
	d = describe(ctx, spec, nil, runFacts{kind: kind, objective: journal.Objective{Direction: m.Direction}})
	d.ConfigHash, d.Build = m.ConfigHash, journal.Build{Version: m.Version}
	return d, false, nil
}
