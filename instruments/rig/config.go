package rig

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/insitu-lab/insitu"
	"github.com/insitu-lab/insitu/instruments/camera"
	"github.com/insitu-lab/insitu/instruments/cameraslm"
	"github.com/insitu-lab/insitu/instruments/daq"
	"github.com/insitu-lab/insitu/instruments/slm"
)

// PartFactory builds a part from its config section (name, type and bounds
// removed). built holds the parts made so far, by name, for parts that
// depend on another (a twin camera watching an SLM).
type PartFactory func(ctx context.Context, p insitu.Params, built map[string]Part) (Part, error)

// PartSpec is what a part adds to a rig's Spec: In is what an Actuator's
// Coordinates return (names without the part prefix, the device's ranges),
// Out what a Sensor's Outputs return. A part that only senses has an empty
// In; one that only acts, no Out.
type PartSpec struct {
	In       insitu.Space
	Out      []string
	OutUnits []string // the units of Out, as the open part's OutputUnits reports them (SensorUnits); none if it has none
}

// PartDescriber computes a part's PartSpec from its config section alone,
// exactly as the part Open builds would report it. It must open nothing,
// send nothing and block on nothing, and reject every config Open would
// reject before touching a device, with the same errors where it can (the
// same decoding, the same checks). When the PartSpec depends on what only
// the device tells, it returns an error wrapping insitu.ErrNeedsDevice
// that names the key and says how to avoid it. With another error it may
// still return the PartSpec, when the config gives it despite its other
// problems (an SMU's range, whatever its step), so that the part's bounds
// and the rig's names can be checked in the same pass.
type PartDescriber func(p insitu.Params) (PartSpec, error)

// PartType is a kind of part rig configs can name: how to open one, how
// to describe one without opening it (insitu config check), and its
// configuration keys (insitu config keys TYPE).
type PartType struct {
	Open     PartFactory
	Describe PartDescriber
	// Keys returns the struct the part's section decodes into, with its
	// defaults (see insitu.Key): what `insitu config keys TYPE` and the
	// configuration reference list.
	Keys insitu.KeysFunc
	// Requires, if set, checks that this build can drive the device the
	// config section names (a backend behind a build tag), opening
	// nothing. A hardware rig's config check and build call it before
	// anything else; a twin rig does not, since twins open no device.
	Requires func(p insitu.Params) error
}

var parts = insitu.NewRegistry[PartType]("part type")

// RegisterPart makes a part type available to rig configs. Like
// insitu.Register it panics on a duplicate type, or a nil Open or Describe.
func RegisterPart(typ string, t PartType) {
	if t.Open == nil || t.Describe == nil {
		panic("rig: RegisterPart needs both Open and Describe for type " + typ)
	}
	parts.Register(typ, t)
}

// PartTypes returns the registered part types, sorted.
func PartTypes() []string { return parts.Names() }

// PartConfig returns the defaults of a part type's configuration struct;
// false when the type is unknown or declares none.
func PartConfig(typ string) (any, bool) {
	pt, err := parts.Lookup(typ)
	if err != nil || pt.Keys == nil {
		return nil, false
	}
	return pt.Keys(), true
}

// PartKeys lists the keys of a part type's section, under
// blackbox.parts[], the rig's own (name, type, bounds) first; false when
// the type is unknown or declares no keys.
func PartKeys(typ string) ([]insitu.Key, bool) {
	c, ok := PartConfig(typ)
	if !ok {
		return nil, false
	}
	ks := insitu.Keys("blackbox.parts[]", &partSection{Type: typ})
	for _, k := range insitu.Keys("blackbox.parts[]", c) {
		// The rig reads name, type and bounds itself; a part's own name
		// field is set from the section's name.
		if !slices.ContainsFunc(ks, func(r insitu.Key) bool { return r.Path == k.Path }) {
			ks = append(ks, k)
		}
	}
	return ks, true
}

// partSection is what the rig reads of every part's section before the
// part type reads the rest.
type partSection struct {
	Name   string `mapstructure:"name" doc:"the part's name: the prefix of its inputs and outputs (smu/voltage)"`
	Type   string `mapstructure:"type" doc:"the part type: slm, camera, daq, smu, powermeter, …"`
	Bounds bounds `mapstructure:"bounds" doc:"the optimizer's search range of the part's inputs, within the device's range"`
}

// FrameSource makes the frame function of a memory camera from the parts
// built before it; w and h are the camera's size.
type FrameSource func(built map[string]Part, w, h int) (camera.FrameFunc, error)

// Scene is a frame source with settings: the keys of the memory
// backend's scene section. Check decodes and checks them alone (a config
// check, before anything is built); Open makes the frame function.
type Scene struct {
	Check func(p insitu.Params) error
	Open  func(built map[string]Part, w, h int, p insitu.Params) (camera.FrameFunc, error)
}

var frames = insitu.NewRegistry[Scene]("frame source")

// RegisterFrameSource names a frame source for memory cameras in configs
// (`backend: {type: memory, source: NAME}`); twins register theirs.
// It panics on an empty or duplicate name or a nil source.
func RegisterFrameSource(name string, f FrameSource) {
	if f == nil {
		panic("rig: RegisterFrameSource " + name + ": nil source")
	}
	none := func(p insitu.Params) error {
		if len(p.Values) > 0 {
			return p.Errorf("", "frame source %q has no settings", name)
		}
		return nil
	}
	frames.Register(name, Scene{Check: none, Open: func(built map[string]Part, w, h int, p insitu.Params) (camera.FrameFunc, error) {
		if err := none(p); err != nil {
			return nil, err
		}
		return f(built, w, h)
	}})
}

// RegisterScene names a frame source with settings
// (`backend: {type: memory, source: NAME, scene: {...}}`). It panics on an
// empty or duplicate name or a scene without Check or Open.
func RegisterScene(name string, s Scene) {
	if s.Check == nil || s.Open == nil {
		panic("rig: RegisterScene " + name + ": needs Check and Open")
	}
	frames.Register(name, s)
}

// frameSource returns the frame source a memory camera names.
func frameSource(p insitu.Params, name string) (Scene, error) {
	fs, err := frames.Lookup(name)
	if err != nil {
		return Scene{}, p.Errorf("backend.source", "%w", err)
	}
	return fs, nil
}

func init() {
	insitu.Register("rig", factory)
	insitu.RegisterDescriber("rig", describe)
	insitu.RegisterKeys("rig", func() any { return &rigConfig{} })
	RegisterPart("slm", PartType{Open: openSLM, Describe: describeSLM, Keys: func() any { return &slmConfig{} }})
	RegisterPart("daq", PartType{Open: openDAQ, Describe: describeDAQ, Keys: func() any { return &daq.Config{} }})
	RegisterPart("camera", PartType{Open: openCamera, Describe: describeCamera, Requires: requireCamera, Keys: func() any { return &cameraConfig{} }})
}

// Decode decodes a part's config. It is insitu.Params.Decode, which reads
// durations written as "300ms"; part factories and describers call it.
func Decode(p insitu.Params, into any) error { return p.Decode(into) }

// DecodeChecked decodes p into a C, fills in its defaults and validates it:
// the checks an instrument's Open makes before it touches the device.
// Every problem is reported: those of decoding, and those Validate finds
// at the other keys.
func DecodeChecked[C any, PC interface {
	*C
	Defaults()
	Validate() error
}](p insitu.Params) (C, error) {
	var c C
	derr := Decode(p, &c)
	PC(&c).Defaults()
	return c, errors.Join(derr, besides(p, derr, PC(&c).Validate()))
}

// besides is err, a check's problems (*insitu.FieldError at keys of p),
// without those at keys that did not decode (derr, Decode's error): a
// value that did not decode is left zero, and checking it would only
// repeat the problem.
func besides(p insitu.Params, derr, err error) error {
	if derr == nil || err == nil {
		return err
	}
	bad := map[string]bool{}
	var keys func(error)
	keys = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				keys(e)
			}
		} else if ke, ok := e.(*insitu.KeyError); ok {
			bad[ke.Key] = true
		}
	}
	keys(derr)
	prefix := prefixOf(p) + "."
	var kept []error
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		if fe, ok := e.(*insitu.FieldError); ok && bad[prefix+fe.Key] {
			return
		}
		kept = append(kept, e)
	}
	walk(err)
	return errors.Join(kept...)
}

type bounds struct {
	Lower []float64 `mapstructure:"lower" doc:"lower bound of each input, in the inputs' units (default: the device's range)"`
	Upper []float64 `mapstructure:"upper" doc:"upper bound of each input, in the inputs' units (default: the device's range)"`
}

type rigConfig struct {
	Name   string           `mapstructure:"name" doc:"the rig's name in errors and the journal; default rig"`
	Settle time.Duration    `mapstructure:"settle" doc:"wait after every part has applied its inputs, before the sensors measure"`
	Parts  []map[string]any `mapstructure:"parts" doc:"the instruments: each an entry with name, type, bounds and its type's keys"`
	// Twin builds every part as its in-process twin (see NewTwin); the
	// Spec is the same.
	Twin bool `mapstructure:"twin" doc:"build every part as its in-process twin (what run --dry-run does)"`
}

// section is one entry of a rig config's parts, checked as far as the
// rig can without the part type: a name used once, a registered type and
// well-formed bounds.
type section struct {
	name, typ string
	params    insitu.Params // the part's own keys (name, type and bounds removed)
	bounds    bounds
	pt        PartType
}

// wrap places the problems of a part's check at their keys in the file
// (see insitu.Params.Wrap).
func (s section) wrap(err error) error { return s.params.Wrap(err) }

// parseRig decodes a rig's blackbox section and splits its parts. Every
// part is checked: the error joins the problems of all of them, and the
// sections returned are those of the parts without a problem.
func parseRig(p insitu.Params) (rigConfig, []section, error) {
	var rc rigConfig
	if err := Decode(p, &rc); err != nil {
		return rc, nil, err
	}
	if rc.Name == "" {
		rc.Name = "rig"
	}
	if len(rc.Parts) == 0 {
		return rc, nil, p.Errorf("parts", "a rig needs at least one part")
	}
	secs := make([]section, 0, len(rc.Parts))
	seen := map[string]bool{}
	var errs []error
	for i, raw := range rc.Parts {
		pp := insitu.Params{File: p.File, Prefix: fmt.Sprintf("%s.parts[%d]", prefixOf(p), i), Values: map[string]any{}, Line: p.Line}
		maps.Copy(pp.Values, raw)
		name, _ := pp.Values["name"].(string)
		typ, _ := pp.Values["type"].(string)
		delete(pp.Values, "name")
		delete(pp.Values, "type")
		var perrs []error
		switch {
		case name == "":
			perrs = append(perrs, pp.Errorf("name", "every part needs a name (a string)"))
		case seen[name]:
			perrs = append(perrs, pp.Errorf("name", "part name %q used twice", name))
		}
		seen[name] = true
		pt, err := parts.Lookup(typ)
		if err != nil {
			perrs = append(perrs, pp.Errorf("type", "%w", err))
		}
		var b bounds
		if raw, ok := pp.Values["bounds"]; ok {
			delete(pp.Values, "bounds")
			bp := insitu.Params{File: p.File, Prefix: pp.Prefix + ".bounds", Line: p.Line}
			if bp.Values, ok = raw.(map[string]any); !ok {
				perrs = append(perrs, bp.Errorf("", "want {lower: ..., upper: ...}"))
			} else if err := Decode(bp, &b); err != nil {
				perrs = append(perrs, err)
			}
		}
		if len(perrs) > 0 {
			errs = append(errs, perrs...)
			continue
		}
		pp.Kind = typ
		secs = append(secs, section{name: name, typ: typ, params: pp, bounds: b, pt: pt})
	}
	return rc, secs, errors.Join(errs...)
}

// requireBuild checks that this build can drive every part of a hardware
// rig.
func requireBuild(secs []section) error {
	for _, s := range secs {
		if s.pt.Requires != nil {
			if err := s.pt.Requires(s.params); err != nil {
				return s.wrap(err)
			}
		}
	}
	return nil
}

// describeParts describes every part and checks its bounds against its
// device's range. The error joins the problems of every part. views is
// nil unless every part's PartSpec is known, which it can be despite
// problems with other keys (see PartDescriber). A part whose PartSpec
// needs its device does not stop the others from being checked; when no
// part has a problem the first such error is returned.
func describeParts(secs []section) (views []partView, err error) {
	views = make([]partView, len(secs))
	var needs error
	var errs []error
	complete := true
	for i, s := range secs {
		ps, err := s.pt.Describe(s.params)
		switch {
		case errors.Is(err, insitu.ErrNeedsDevice):
			if needs == nil {
				needs = s.wrap(err)
			}
			complete = false
			continue
		case err != nil:
			errs = append(errs, s.wrap(err))
		}
		if ps.In.Dim() == 0 && len(ps.Out) == 0 {
			complete = false
			continue
		}
		v := partView{name: s.name, lower: s.bounds.Lower, upper: s.bounds.Upper, in: ps.In, out: ps.Out, outUnits: ps.OutUnits}
		if ps.In.Dim() > 0 {
			if _, err := intersect(ps.In, s.bounds.Lower, s.bounds.Upper); err != nil {
				errs = append(errs, s.wrap(err))
				v.lower, v.upper = nil, nil // the rest is checked against the device's range
			}
		}
		views[i] = v
	}
	if !complete {
		views = nil
	}
	if len(errs) > 0 {
		return views, errors.Join(errs...)
	}
	if needs != nil {
		return nil, needs
	}
	return views, nil
}

// describe is the rig's insitu.Describer: the Spec factory's rig would
// have, from the config alone; with the config's problems, the Spec too
// when every part's coordinates and outputs are known despite them.
func describe(p insitu.Params) (insitu.Spec, error) {
	rc, secs, perr := parseRig(p)
	if !rc.Twin {
		if err := requireBuild(secs); err != nil {
			perr = errors.Join(perr, err)
		}
	}
	views, err := describeParts(secs)
	if perr != nil {
		if errors.Is(err, insitu.ErrNeedsDevice) {
			err = nil // the parts' own problems come first
		}
		return insitu.Spec{}, errors.Join(perr, err)
	}
	if views == nil {
		return insitu.Spec{}, err
	}
	spec, serr := buildSpec(rc.Name, rc.Settle, views)
	switch {
	case serr != nil && err != nil:
		return insitu.Spec{}, err // the parts' own problems, as building reports them
	case serr != nil:
		return insitu.Spec{}, p.Errorf("parts", "%w", serr)
	}
	return spec, err
}

// factory builds a rig from a config's blackbox section. Every part's
// config, and the rig's Spec when it can be known without the devices, is
// checked before any part is opened; parts are then opened in order, and
// if one fails, those already opened are closed.
func factory(ctx context.Context, p insitu.Params) (_ insitu.BlackBox, err error) {
	rc, secs, err := parseRig(p)
	if err != nil {
		return nil, err
	}
	if rc.Twin {
		r, err := buildTwin(ctx, p, rc, secs)
		if err != nil {
			return nil, err
		}
		return r, nil
	}
	if err := requireBuild(secs); err != nil {
		return nil, err
	}
	switch views, err := describeParts(secs); {
	case err == nil:
		if _, err := buildSpec(rc.Name, rc.Settle, views); err != nil {
			return nil, p.Errorf("parts", "%w", err)
		}
	case !errors.Is(err, insitu.ErrNeedsDevice):
		return nil, err
	}
	var comps []Component
	built := map[string]Part{}
	defer func() {
		if err != nil {
			closeAll(comps)
		}
	}()
	for _, s := range secs {
		part, err := s.pt.Open(ctx, s.params, built)
		if err != nil {
			return nil, s.wrap(err)
		}
		built[s.name] = part
		comps = append(comps, Component{Name: s.name, Part: part, Lower: s.bounds.Lower, Upper: s.bounds.Upper, Type: s.typ})
	}
	r, err := New(rc.Name, rc.Settle, comps...)
	if err != nil {
		return nil, p.Errorf("parts", "%w", err)
	}
	return r, nil
}

func prefixOf(p insitu.Params) string {
	if p.Prefix == "" {
		return "blackbox"
	}
	return p.Prefix
}

type slmConfig struct {
	Display         slm.DisplayConfig `mapstructure:"display" doc:"where frames are shown"`
	CorrectionFile  string            `mapstructure:"correction_file" doc:"a phase-correction image (PNG or CSV, N×N or display-sized), added to every pattern"`
	CorrectionScale float64           `mapstructure:"correction_scale" unit:"rad" doc:"phase per 8-bit level of a PNG correction file; 0: 2π/256"`
	slm.Config      `mapstructure:",squash"`
}

// decodeSLM decodes an slm part's config and loads its correction file (a
// calibration file, not a device: describing the part reads it too, so a
// missing or malformed one is found by a config check).
func decodeSLM(p insitu.Params) (slmConfig, error) {
	var c slmConfig
	if err := Decode(p, &c); err != nil {
		return c, err
	}
	if c.CorrectionFile != "" {
		if len(c.Correction) != 0 {
			return c, p.Errorf("correction_file", "give correction or correction_file, not both")
		}
		ph, _, _, err := slm.LoadCorrection(c.CorrectionFile, c.CorrectionScale)
		if err != nil {
			return c, p.Errorf("correction_file", "%w", err)
		}
		c.Correction = ph
	}
	return c, nil
}

func openSLM(ctx context.Context, p insitu.Params, _ map[string]Part) (Part, error) {
	c, err := decodeSLM(p)
	if err != nil {
		return nil, err
	}
	d, err := slm.OpenDisplay(ctx, c.Display)
	if err != nil {
		return nil, p.Errorf("display", "%w", err)
	}
	s, err := slm.New(d, c.Config)
	if err != nil {
		if cl, ok := d.(io.Closer); ok {
			cl.Close()
		}
		return nil, err
	}
	return SLM{s}, nil
}

// describeSLM checks the config against the display size the config gives
// (a framebuffer's comes from the kernel unless width and height are set);
// the phases are N² whatever the display.
func describeSLM(p insitu.Params) (PartSpec, error) {
	c, err := decodeSLM(p)
	if err != nil {
		return PartSpec{}, err
	}
	w, h, err := c.Display.Size()
	if err != nil {
		return PartSpec{}, p.Errorf("display", "%w", err)
	}
	if err := c.Config.Validate(w, h); err != nil {
		return PartSpec{}, err
	}
	return PartSpec{In: slmSpace(c.N)}, nil
}

func decodeDAQ(p insitu.Params) (daq.Config, error) {
	var c daq.Config
	err := Decode(p, &c)
	return c, err
}

func openDAQ(ctx context.Context, p insitu.Params, _ map[string]Part) (Part, error) {
	c, err := decodeDAQ(p)
	if err != nil {
		return nil, err
	}
	d, err := daq.Open(ctx, c)
	if err != nil {
		return nil, err
	}
	return DAQ{d}, nil
}

// describeDAQ makes every check daq.Open makes but finding the bus.
func describeDAQ(p insitu.Params) (PartSpec, error) {
	c, err := decodeDAQ(p)
	if err != nil {
		return PartSpec{}, err
	}
	if err := daq.Check(c); err != nil {
		return PartSpec{}, err
	}
	lo, hi := c.Range()
	return PartSpec{In: daqSpace(c.OutputNames(), lo, hi), Out: c.InputNames(), OutUnits: volts(len(c.InputNames()))}, nil
}

type cameraBackend struct {
	Type string `mapstructure:"type" doc:"v4l2 (a video device), genicam (a GigE Vision / USB3 Vision camera through Aravis; builds with make build-aravis) or memory (frames from a registered source, a twin)"`
	// v4l2
	Path    string `mapstructure:"path" doc:"v4l2: the video device, e.g. /dev/video0"`
	Format  string `mapstructure:"format" doc:"v4l2: pixel format grey (8-bit) or y16 (16-bit)"`
	Buffers int    `mapstructure:"buffers" doc:"v4l2: mmap buffers, 0: the driver's default; genicam: stream buffers, 0: 4"`
	Skip    int    `mapstructure:"skip" doc:"v4l2: frames dropped after a setting changes (stale frames)"`
	// genicam (see camera.GenICamOpts)
	Device       string        `mapstructure:"device" doc:"genicam: Aravis device ID (Vendor-Model-Serial), IP address or serial; empty: the only camera"`
	PixelFormat  string        `mapstructure:"pixel_format" doc:"genicam: Mono8 (default), Mono10, Mono12 or Mono16 (unpacked)"`
	Gain         *float64      `mapstructure:"gain" unit:"dB" doc:"genicam: the Gain feature (or GainRaw on cameras without Gain); unset: the camera's"`
	OffsetX      int           `mapstructure:"offset_x" unit:"px" doc:"genicam: camera-side region's left edge (binned pixels)"`
	OffsetY      int           `mapstructure:"offset_y" unit:"px" doc:"genicam: camera-side region's top edge (binned pixels)"`
	Binning      []int         `mapstructure:"binning" doc:"genicam: [horizontal, vertical] binning, or one value for both; empty: 1×1"`
	Trigger      string        `mapstructure:"trigger" doc:"genicam: software (one triggered frame per query, the default) or free_run"`
	FrameTimeout time.Duration `mapstructure:"frame_timeout" doc:"genicam: the wait for a frame after the trigger; 0: one second plus the exposure"`
	PacketSize   int           `mapstructure:"packet_size" unit:"B" doc:"genicam: GigE Vision stream packet size (at most the network's MTU); 0: Aravis' negotiation"`
	PacketResend *bool         `mapstructure:"packet_resend" doc:"genicam: ask a GigE Vision camera to resend lost packets; unset: yes"`
	// memory: frames from a registered source at a reference exposure
	Source     string         `mapstructure:"source" doc:"memory: the registered frame source (a twin's)"`
	Scene      map[string]any `mapstructure:"scene" doc:"memory: the frame source's settings, if it has any (the fourier source's geometry, beam, noise, aberration)"`
	Reference  time.Duration  `mapstructure:"reference_exposure" doc:"memory: the exposure the source's frames are at"`
	Saturation float64        `mapstructure:"saturation" doc:"memory: full-scale level of a pixel; 0: none"`
	// all: requested (v4l2), camera-side region (genicam) or actual
	// (memory) size
	Width  int `mapstructure:"width" doc:"v4l2: requested width; genicam: camera-side region width (0: the largest from the offset); memory: the frame width, in pixels"`
	Height int `mapstructure:"height" doc:"v4l2: requested height; genicam: camera-side region height (0: the largest from the offset); memory: the frame height, in pixels"`
}

func (b cameraBackend) v4l2Opts() camera.V4L2Opts {
	return camera.V4L2Opts{Width: b.Width, Height: b.Height, Format: b.Format, Buffers: b.Buffers, Skip: b.Skip}
}

// genicamOpts are a genicam backend's options; exposure is the part's.
func (b cameraBackend) genicamOpts(exposure time.Duration) camera.GenICamOpts {
	return camera.GenICamOpts{Device: b.Device, PixelFormat: b.PixelFormat, Exposure: exposure, Gain: b.Gain,
		OffsetX: b.OffsetX, OffsetY: b.OffsetY, Width: b.Width, Height: b.Height, Binning: b.Binning,
		Trigger: b.Trigger, FrameTimeout: b.FrameTimeout, PacketSize: b.PacketSize, PacketResend: b.PacketResend,
		Buffers: b.Buffers}
}

// foreignKeys names the backend keys set that belong to other types than
// typ, so that `format: y16` on a GenICam camera is an error rather than
// ignored.
func (b cameraBackend) foreignKeys(typ string) []string {
	keys := []struct {
		name, typ string
		set       bool
	}{
		{"path", "v4l2", b.Path != ""}, {"format", "v4l2", b.Format != ""}, {"skip", "v4l2", b.Skip != 0},
		{"device", "genicam", b.Device != ""}, {"pixel_format", "genicam", b.PixelFormat != ""},
		{"gain", "genicam", b.Gain != nil}, {"offset_x", "genicam", b.OffsetX != 0}, {"offset_y", "genicam", b.OffsetY != 0},
		{"binning", "genicam", b.Binning != nil}, {"trigger", "genicam", b.Trigger != ""},
		{"frame_timeout", "genicam", b.FrameTimeout != 0}, {"packet_size", "genicam", b.PacketSize != 0},
		{"packet_resend", "genicam", b.PacketResend != nil},
		{"source", "memory", b.Source != ""}, {"reference_exposure", "memory", b.Reference != 0},
		{"saturation", "memory", b.Saturation != 0},
		{"buffers", "v4l2 genicam", b.Buffers != 0},
	}
	var bad []string
	for _, k := range keys {
		if k.set && !strings.Contains(k.typ, typ) {
			bad = append(bad, k.name)
		}
	}
	return bad
}

type cameraConfig struct {
	Backend cameraBackend `mapstructure:"backend" doc:"where frames come from"`
	Measure string        `mapstructure:"measure" doc:"the outputs: sum (one, the ROI's sum), regions (one per region and spot) or image (every ROI pixel, px_ROW_COL)"`
	Regions []Region      `mapstructure:"regions" doc:"named rectangles of the image, for measure regions"`
	// Spots are regions placed in the SLM's spatial frequencies through
	// the Fourier calibration file Calibration (insitu calibrate fourier).
	Spots       []Spot `mapstructure:"spots" doc:"named discs in the SLM's spatial frequencies, for measure regions, placed on the camera through calibration"`
	Calibration string `mapstructure:"calibration" doc:"the Fourier calibration file (insitu calibrate fourier) that places spots on the camera"`
	// SaturatedOutput adds the output "saturated": the number of ROI
	// pixels at the camera's full scale (the largest count in the frames
	// averaged), for the guard's saturation flags and interlocks.
	SaturatedOutput bool `mapstructure:"saturated_output" doc:"add the output saturated: ROI pixels at the camera's full scale, for the guard's saturation flags and interlocks"`
	camera.Config   `mapstructure:",squash"`
}

// cameraSetup is a camera part's config with its backend checked as far
// as it can be without opening it.
type cameraSetup struct {
	cameraConfig
	source Scene // a memory backend's
	scene  insitu.Params
	spots  []spotArea // the spots on the ROI
	name   string     // the backend's name as the camera reports it
	// The sensor size: a memory camera's; a GenICam camera's when its
	// width and height are set; else 0×0 (a V4L2 driver may change the
	// size asked for, a GenICam camera's sensor decides).
	w, h int
	// full is the value of a saturated pixel, as the open camera would
	// report it (0: none).
	full float64
}

// decodeCamera decodes a camera part's config and checks it as far as can
// be without opening the camera.
func decodeCamera(p insitu.Params) (cameraSetup, error) {
	var s cameraSetup
	if err := Decode(p, &s.cameraConfig); err != nil {
		return s, err
	}
	b := s.Backend
	switch b.Type {
	case "v4l2", "genicam", "memory":
		if bad := b.foreignKeys(b.Type); len(bad) > 0 {
			return s, p.Errorf("backend", "%s: %s not a key of this backend type", b.Type, strings.Join(bad, ", "))
		}
	}
	switch b.Type {
	case "v4l2":
		s.name = "v4l2(" + b.Path + ")"
		if b.Path == "" {
			return s, p.Errorf("backend.path", "missing (the video device, e.g. /dev/video0)")
		}
		if err := b.v4l2Opts().Validate(); err != nil {
			return s, p.Errorf("backend", "%s: %w", s.name, err)
		}
		s.full = 255
		if b.Format == "y16" {
			s.full = 65535
		}
		if len(b.Scene) > 0 {
			return s, p.Errorf("backend.scene", "a memory camera's frame source settings; %s films the bench", s.name)
		}
	case "genicam":
		o := b.genicamOpts(s.Exposure)
		s.name = "genicam(" + b.Device + ")"
		if err := o.Validate(); err != nil {
			return s, p.Errorf("backend", "%s: %w", s.name, err)
		}
		s.w, s.h = o.Size()
		s.full = o.FullScale()
		if len(b.Scene) > 0 {
			return s, p.Errorf("backend.scene", "a memory camera's frame source settings; %s films the bench", s.name)
		}
	case "memory":
		fs, err := frameSource(p, b.Source)
		if err != nil {
			return s, err
		}
		s.scene = insitu.Params{File: p.File, Prefix: prefixOf(p) + ".backend.scene", Kind: b.Source, Values: b.Scene}
		if err := fs.Check(s.scene); err != nil {
			return s, err
		}
		if b.Width <= 0 || b.Height <= 0 || b.Reference < 0 {
			return s, p.Errorf("backend", "memory: width %d and height %d must be positive, reference_exposure %v not negative", b.Width, b.Height, b.Reference)
		}
		s.source, s.name, s.w, s.h, s.full = fs, fmt.Sprintf("memory %dx%d", b.Width, b.Height), b.Width, b.Height, b.Saturation
	default:
		return s, p.Errorf("backend.type", "%q: want v4l2, genicam or memory", b.Type)
	}
	if s.SaturatedOutput && s.full <= 0 {
		return s, p.Errorf("saturated_output", "%s has no full scale to count saturated pixels at (give the memory backend a saturation)", s.name)
	}
	if err := s.Config.Validate(s.w, s.h); err != nil {
		return s, fmt.Errorf("camera(%s): %w", s.name, err)
	}
	if err := s.placeSpots(p); err != nil {
		return s, err
	}
	return s, nil
}

// requireCamera refuses a genicam backend in a build without Aravis, at
// config check time.
func requireCamera(p insitu.Params) error {
	var c struct {
		Backend struct {
			Type string `mapstructure:"type"`
		} `mapstructure:"backend"`
	}
	// Decoding errors are left to describeCamera, which reports them.
	if b, ok := p.Values["backend"].(map[string]any); ok {
		c.Backend.Type, _ = b["type"].(string)
	}
	if c.Backend.Type == "genicam" && !camera.AravisBuiltIn() {
		return p.Errorf("backend.type", "genicam: %w", camera.ErrNoAravis)
	}
	return nil
}

// placeSpots maps the spots onto the ROI through the calibration file (a
// calibration, not a device: describing the part reads it too).
func (s *cameraSetup) placeSpots(p insitu.Params) error {
	if len(s.Spots) == 0 {
		if s.Calibration != "" {
			return p.Errorf("calibration", "a Fourier calibration places spots; this camera part has none")
		}
		return nil
	}
	if s.Calibration == "" {
		return p.Errorf("spots", "spots are in the SLM's spatial frequencies: give calibration, the Fourier calibration file (insitu calibrate fourier)")
	}
	f, err := cameraslm.LoadFourier(s.Calibration)
	if err != nil {
		return p.Errorf("calibration", "%w", err)
	}
	x0, y0, w, h := 0, 0, s.w, s.h
	if len(s.ROI) == 4 {
		x0, y0, w, h = s.ROI[0], s.ROI[1], s.ROI[2], s.ROI[3]
	}
	if w == 0 || h == 0 {
		return p.Errorf("roi", "spots need the camera window: give roi: [x, y, w, h] (%s tells the frame size only when it is opened)", s.name)
	}
	if s.spots, err = spotAreas(s.Spots, f.Map, x0, y0, w, h); err != nil {
		return p.Errorf("spots", "%s: %w", s.Calibration, err)
	}
	return nil
}

func openCamera(ctx context.Context, p insitu.Params, built map[string]Part) (Part, error) {
	c, err := decodeCamera(p)
	if err != nil {
		return nil, err
	}
	var src camera.Source
	switch b := c.Backend; b.Type {
	case "v4l2":
		v, err := camera.OpenV4L2(b.Path, b.v4l2Opts())
		if err != nil {
			return nil, p.Errorf("backend", "%w", err)
		}
		src = v
	case "genicam":
		g, err := camera.OpenGenICam(ctx, b.genicamOpts(c.Exposure))
		if err != nil {
			return nil, p.Errorf("backend", "%w", err)
		}
		src = g
	case "memory":
		m, err := c.memory(p, built)
		if err != nil {
			return nil, err
		}
		src = m
	}
	s, err := newCameraPart(ctx, src, c)
	if err != nil {
		return nil, err // not a nil *Camera in a Part
	}
	return s, nil
}

// memory makes a memory backend's source from its frame source.
func (c cameraSetup) memory(p insitu.Params, built map[string]Part) (*camera.Memory, error) {
	b := c.Backend
	ff, err := c.source.Open(built, b.Width, b.Height, c.scene)
	if err != nil {
		return nil, p.Errorf("backend.source", "%w", err)
	}
	ref := b.Reference
	if ref == 0 {
		ref = time.Millisecond
	}
	m, err := camera.NewMemory(b.Width, b.Height, ref, b.Saturation, ff)
	if err != nil {
		return nil, p.Errorf("backend", "%w", err)
	}
	return m, nil
}

// newCameraPart makes the camera part of c on src, closing src on error.
func newCameraPart(ctx context.Context, src camera.Source, c cameraSetup) (*Camera, error) {
	cam, err := camera.New(ctx, src, c.Config)
	if err == nil {
		var s *Camera
		if s, err = newCamera(cam, c.Measure, c.Regions, c.spots); err == nil {
			s.saturated = c.SaturatedOutput
			if s.saturated {
				s.names = append(s.names, SaturatedOutput)
			}
			return s, nil
		}
	}
	return nil, errors.Join(err, src.Close())
}

// describeCamera names the outputs from the measure mode, the regions and
// the ROI (the configured one, or a memory camera's full frame). In image
// mode without a roi on a V4L2 camera the outputs are the pixels of a frame
// whose size only the open device reports: that is an error wrapping
// insitu.ErrNeedsDevice.
func describeCamera(p insitu.Params) (PartSpec, error) {
	c, err := decodeCamera(p)
	if err != nil {
		return PartSpec{}, err
	}
	w, h := c.w, c.h
	if len(c.ROI) == 4 {
		w, h = c.ROI[2], c.ROI[3]
	}
	if w == 0 && c.Measure == MeasureImage {
		why := fmt.Sprintf("the V4L2 driver of %s only tells when the device is opened (backend width and height are a request it may change)", c.Backend.Path)
		if c.Backend.Type == "genicam" {
			why = fmt.Sprintf("%s only tells when it is opened (or give backend width and height)", c.name)
		}
		return PartSpec{}, p.Errorf("roi",
			"measure image without a roi: the outputs are the pixels of the full frame, whose size %s: give roi: [x, y, w, h], or use `insitu probe --config`, which opens the devices: %w",
			why, insitu.ErrNeedsDevice)
	}
	_, _, names, err := measurement(c.Measure, c.Regions, c.spots, w, h)
	if err != nil {
		return PartSpec{}, fmt.Errorf("camera camera(%s): %w", c.name, err)
	}
	if c.SaturatedOutput {
		names = append(names, SaturatedOutput)
	}
	return PartSpec{Out: names}, nil
}
