package insitu

import (
	"context"
	"errors"
	"io"
)

// Describer computes the Spec of a black box of its kind from its
// parameters alone: the names, units, bounds and periodic flags of the
// inputs and the names of the outputs that New would give the box. It must
// open nothing, send nothing and block on nothing (it takes no context),
// and it rejects every parameter New would reject before touching a device,
// with the same errors where it can. With an error it may still return the
// Spec, when the parameters give it despite their other problems, so that
// a config check can go on to check names and bounds against it.
type Describer func(p Params) (Spec, error)

// ErrNeedsDevice is what a Describer returns, wrapped in an error that
// says which key and why, when the Spec depends on something only the open
// device can tell (a camera's full-frame size read from the kernel). The
// parameters are not known to be wrong; checking them needs the device.
var ErrNeedsDevice = errors.New("the spec depends on the device")

var describers = NewRegistry[Describer]("kind")

// RegisterDescriber makes Describe compute the Spec of kind without
// building it. Like Register it is meant for the init function of the
// package that implements the kind, and panics if the kind gets a second
// describer or d is nil.
func RegisterDescriber(kind string, d Describer) { describers.Register(kind, d) }

// Describe returns the Spec a black box of kind p.Kind built from p would
// have, checked as New checks it, without opening any device: it is what
// validating a config needs (bound and output names in a safety section)
// when the config must not reach the bench. With an error, the Spec is
// the zero Spec, or the one the describer still gave (see Describer).
//
// A kind with a Describer is described by it and never built. A kind
// without one is taken to be a software twin, which opens no hardware: it
// is built with New, its Spec taken, and it is closed if it is an
// io.Closer. So any kind that touches hardware (opens a port, a bus, a
// framebuffer, a camera, or sends anything to an instrument) MUST register
// a Describer, or Describe will open it.
//
// ctx is only used to build a kind without a Describer.
func Describe(ctx context.Context, p Params) (Spec, error) {
	if _, err := kinds.Lookup(p.Kind); err != nil {
		return Spec{}, p.Errorf("kind", "%w", err)
	}
	if p.Values == nil {
		p.Values = map[string]any{}
	}
	d, err := describers.Lookup(p.Kind)
	if err != nil {
		return describeByBuilding(ctx, p)
	}
	spec, err := d(p)
	if err != nil {
		if spec.In.Dim() > 0 && spec.Validate() == nil {
			return spec.clone(), err // the Spec is known; other keys have problems
		}
		return Spec{}, err
	}
	if err := spec.Validate(); err != nil {
		return Spec{}, p.Errorf("", "%w", err)
	}
	return spec.clone(), nil
}

// describeByBuilding builds a twin, takes its Spec and closes it.
func describeByBuilding(ctx context.Context, p Params) (spec Spec, err error) {
	b, err := New(ctx, p)
	if err != nil {
		return Spec{}, err
	}
	if c, ok := b.(io.Closer); ok {
		defer func() {
			if cerr := c.Close(); cerr != nil && err == nil {
				spec, err = Spec{}, p.Errorf("", "close: %w", cerr)
			}
		}()
	}
	return b.Spec().clone(), nil
}

// clone returns a deep copy of s.
func (s Spec) clone() Spec {
	return Spec{Name: s.Name, In: s.In.Clone(), Out: clone(s.Out), OutUnits: clone(s.OutUnits)}
}

// Describes reports whether kind has a Describer, that is whether it is
// hardware whose Spec comes from its config without building it.
func Describes(kind string) bool { return describers.Has(kind) }
