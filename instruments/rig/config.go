package rig

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/insitu-lab/insitu"
	"github.com/insitu-lab/insitu/instruments/camera"
	"github.com/insitu-lab/insitu/instruments/daq"
	"github.com/insitu-lab/insitu/instruments/slm"
)

// PartFactory builds a part from its config section (name, type and bounds
// removed). built holds the parts made so far, by name, for parts that
// depend on another (a twin camera watching an SLM).
type PartFactory func(ctx context.Context, p insitu.Params, built map[string]Part) (Part, error)

var (
	partsMu sync.RWMutex
	parts   = map[string]PartFactory{}
)

// RegisterPart makes a part type available to rig configs. Like
// insitu.Register it panics on a duplicate or nil factory.
func RegisterPart(typ string, f PartFactory) {
	partsMu.Lock()
	defer partsMu.Unlock()
	if f == nil {
		panic("rig: RegisterPart factory is nil for type " + typ)
	}
	if _, dup := parts[typ]; dup {
		panic("rig: RegisterPart called twice for type " + typ)
	}
	parts[typ] = f
}

// PartTypes returns the registered part types, sorted.
func PartTypes() []string {
	partsMu.RLock()
	defer partsMu.RUnlock()
	return slices.Sorted(maps.Keys(parts))
}

// FrameSource makes the frame function of a memory camera from the parts
// built before it; w and h are the camera's size.
type FrameSource func(built map[string]Part, w, h int) (camera.FrameFunc, error)

var (
	framesMu sync.RWMutex
	frames   = map[string]FrameSource{}
)

// RegisterFrameSource names a frame source for memory cameras in configs
// (`backend: {type: memory, source: NAME}`); twins register theirs.
func RegisterFrameSource(name string, f FrameSource) {
	framesMu.Lock()
	defer framesMu.Unlock()
	if f == nil {
		panic("rig: RegisterFrameSource is nil for " + name)
	}
	if _, dup := frames[name]; dup {
		panic("rig: RegisterFrameSource called twice for " + name)
	}
	frames[name] = f
}

func init() {
	insitu.Register("rig", factory)
	RegisterPart("slm", slmPart)
	RegisterPart("daq", daqPart)
	RegisterPart("camera", cameraPart)
}

// Decode decodes a part's config. It is insitu.Params.Decode, which reads
// durations written as "300ms"; part factories call it.
func Decode(p insitu.Params, into any) error { return p.Decode(into) }

type bounds struct {
	Lower []float64 `mapstructure:"lower"`
	Upper []float64 `mapstructure:"upper"`
}

type rigConfig struct {
	Name   string           `mapstructure:"name"`
	Settle time.Duration    `mapstructure:"settle"`
	Parts  []map[string]any `mapstructure:"parts"`
}

// factory builds a rig from a config's blackbox section. Parts are opened
// in order; if one fails, those already opened are closed.
func factory(ctx context.Context, p insitu.Params) (_ insitu.BlackBox, err error) {
	var rc rigConfig
	if err := Decode(p, &rc); err != nil {
		return nil, err
	}
	if rc.Name == "" {
		rc.Name = "rig"
	}
	if len(rc.Parts) == 0 {
		return nil, p.Errorf("parts", "a rig needs at least one part")
	}
	var comps []Component
	built := map[string]Part{}
	defer func() {
		if err != nil {
			for i := len(comps) - 1; i >= 0; i-- {
				if c, ok := comps[i].Part.(io.Closer); ok {
					c.Close()
				}
			}
		}
	}()
	for i, raw := range rc.Parts {
		pp := insitu.Params{File: p.File, Prefix: fmt.Sprintf("%s.parts[%d]", prefixOf(p), i), Values: map[string]any{}}
		maps.Copy(pp.Values, raw)
		name, _ := pp.Values["name"].(string)
		typ, _ := pp.Values["type"].(string)
		delete(pp.Values, "name")
		delete(pp.Values, "type")
		if name == "" {
			return nil, pp.Errorf("name", "every part needs a name (a string)")
		}
		if _, dup := built[name]; dup {
			return nil, pp.Errorf("name", "part name %q used twice", name)
		}
		partsMu.RLock()
		f, ok := parts[typ]
		partsMu.RUnlock()
		if !ok {
			return nil, pp.Errorf("type", "unknown part type %q (known: %v)", typ, PartTypes())
		}
		var b bounds
		if raw, ok := pp.Values["bounds"]; ok {
			delete(pp.Values, "bounds")
			bp := insitu.Params{File: p.File, Prefix: pp.Prefix + ".bounds"}
			if bp.Values, ok = raw.(map[string]any); !ok {
				return nil, bp.Errorf("", "want {lower: ..., upper: ...}")
			}
			if err := Decode(bp, &b); err != nil {
				return nil, err
			}
		}
		pp.Kind = typ
		part, err := f(ctx, pp, built)
		if err != nil {
			return nil, fmt.Errorf("%s (%s %s): %w", pp.Prefix, typ, name, err)
		}
		built[name] = part
		comps = append(comps, Component{Name: name, Part: part, Lower: b.Lower, Upper: b.Upper})
	}
	r, err := New(rc.Name, rc.Settle, comps...)
	if err != nil {
		return nil, p.Errorf("parts", "%v", err)
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
	Display         slm.DisplayConfig `mapstructure:"display"`
	CorrectionFile  string            `mapstructure:"correction_file"`
	CorrectionScale float64           `mapstructure:"correction_scale"` // rad per 8-bit level; 0: 2π/256
	slm.Config      `mapstructure:",squash"`
}

func slmPart(_ context.Context, p insitu.Params, _ map[string]Part) (Part, error) {
	var c slmConfig
	if err := Decode(p, &c); err != nil {
		return nil, err
	}
	if c.CorrectionFile != "" {
		if len(c.Correction) != 0 {
			return nil, p.Errorf("correction_file", "give correction or correction_file, not both")
		}
		ph, _, _, err := slm.LoadCorrection(c.CorrectionFile, c.CorrectionScale)
		if err != nil {
			return nil, p.Errorf("correction_file", "%v", err)
		}
		c.Correction = ph
	}
	d, err := slm.OpenDisplay(c.Display)
	if err != nil {
		return nil, p.Errorf("display", "%v", err)
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

func daqPart(ctx context.Context, p insitu.Params, _ map[string]Part) (Part, error) {
	var c daq.Config
	if err := Decode(p, &c); err != nil {
		return nil, err
	}
	d, err := daq.Open(ctx, c)
	if err != nil {
		return nil, err
	}
	return DAQ{d}, nil
}

type cameraBackend struct {
	Type string `mapstructure:"type"` // v4l2 | memory
	// v4l2
	Path    string `mapstructure:"path"`
	Format  string `mapstructure:"format"` // grey | y16
	Buffers int    `mapstructure:"buffers"`
	Skip    int    `mapstructure:"skip"`
	// memory: frames from a registered source at a reference exposure
	Source     string        `mapstructure:"source"`
	Reference  time.Duration `mapstructure:"reference_exposure"`
	Saturation float64       `mapstructure:"saturation"`
	// both: requested (v4l2) or actual (memory) size
	Width  int `mapstructure:"width"`
	Height int `mapstructure:"height"`
}

type cameraConfig struct {
	Backend       cameraBackend `mapstructure:"backend"`
	Measure       string        `mapstructure:"measure"`
	Regions       []Region      `mapstructure:"regions"`
	camera.Config `mapstructure:",squash"`
}

func cameraPart(ctx context.Context, p insitu.Params, built map[string]Part) (Part, error) {
	var c cameraConfig
	if err := Decode(p, &c); err != nil {
		return nil, err
	}
	var src camera.Source
	switch b := c.Backend; b.Type {
	case "v4l2":
		v, err := camera.OpenV4L2(b.Path, camera.V4L2Opts{Width: b.Width, Height: b.Height, Format: b.Format, Buffers: b.Buffers, Skip: b.Skip})
		if err != nil {
			return nil, p.Errorf("backend", "%v", err)
		}
		src = v
	case "memory":
		framesMu.RLock()
		fs, ok := frames[b.Source]
		framesMu.RUnlock()
		if !ok {
			framesMu.RLock()
			known := slices.Collect(maps.Keys(frames))
			framesMu.RUnlock()
			sort.Strings(known)
			return nil, p.Errorf("backend.source", "unknown frame source %q (registered: %v)", b.Source, known)
		}
		ff, err := fs(built, b.Width, b.Height)
		if err != nil {
			return nil, p.Errorf("backend.source", "%v", err)
		}
		ref := b.Reference
		if ref == 0 {
			ref = time.Millisecond
		}
		m, err := camera.NewMemory(b.Width, b.Height, ref, b.Saturation, ff)
		if err != nil {
			return nil, p.Errorf("backend", "%v", err)
		}
		src = m
	default:
		return nil, p.Errorf("backend.type", "%q: want v4l2 or memory", b.Type)
	}
	cam, err := camera.New(ctx, src, c.Config)
	if err == nil {
		var s *Camera
		if s, err = NewCamera(cam, c.Measure, c.Regions); err == nil {
			return s, nil
		}
	}
	return nil, errors.Join(err, src.Close())
}
