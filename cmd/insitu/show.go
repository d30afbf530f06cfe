package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"time"

	"codeberg.org/sbinet/npyio/npy"
	"github.com/spf13/cobra"
	"gonum.org/v1/gonum/mat"

	"github.com/insitu-lab/insitu"
	"github.com/insitu-lab/insitu/instruments/rig"
	"github.com/insitu-lab/insitu/instruments/slm"
	"github.com/insitu-lab/insitu/safety"
)

type showFlags struct {
	part, pattern string
	hold          time.Duration
	sets          []string
}

func newShowCmd() *cobra.Command {
	var f showFlags
	c := &cobra.Command{
		Use:   "show CONFIG --part NAME --pattern blank|checker:N|grating:PERIOD[:ANGLE_DEG]|FILE.npy [--for DURATION]",
		Short: "Put an alignment pattern on an SLM of a rig and hold it",
		Long: `Build the rig of a run config, put an alignment pattern over the whole
display of its SLM part through the safety guard (the config's safety
section applies), read the rig's sensors once, and hold the pattern until
Ctrl-C or --for has passed; then every part goes to its safe state.

Patterns are phases in radians, like the SLM's coordinates, and go through
the SLM's correction, wavelength scaling and LUT:

  blank                  phase 0 everywhere (what the correction alone shows)
  checker:N              squares of N display pixels, phases 0 and π, from the display's centre
  grating:PERIOD[:DEG]   a blazed grating: 0 → 2π over PERIOD pixels, the ramp at DEG degrees
  FILE.npy               a 2-D array of phases: the display's height × width,
                         or the part's n × n controls (shown as a query is)

The other actuators of the rig are not driven. Examples:

  insitu show configs/bench-slm-camera.yaml --part slm --pattern checker:8 --for 5s
  insitu show configs/bench-slm-camera.yaml --part slm --pattern grating:12:45`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runShow(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), args[0], f)
		},
	}
	fl := c.Flags()
	fl.StringVar(&f.part, "part", "", "the SLM part of the rig (required)")
	fl.StringVar(&f.pattern, "pattern", "", "blank, checker:N, grating:PERIOD[:ANGLE_DEG] or FILE.npy (required)")
	fl.DurationVar(&f.hold, "for", 0, "hold the pattern this long (default: until Ctrl-C)")
	fl.StringArrayVar(&f.sets, "set", nil, "override a config key: --set key=value (repeatable)")
	c.MarkFlagRequired("part")
	c.MarkFlagRequired("pattern")
	return c
}

// showPattern is a parsed --pattern: a generated pattern, or a .npy's
// rows × cols phases.
type showPattern struct {
	name       string
	pattern    *slm.Pattern
	data       []float64 // from a .npy
	rows, cols int
}

// resolve makes pat the display image of s, or, for an n×n .npy, the
// controls' phases.
func (pat showPattern) resolve(s *slm.SLM) (image, controls []float64, err error) {
	w, h := s.Display().Size()
	switch {
	case pat.pattern != nil:
		return pat.pattern.Image(w, h), nil, nil
	case pat.rows == h && pat.cols == w:
		return pat.data, nil, nil
	case pat.rows == s.N() && pat.cols == s.N():
		return nil, pat.data, nil
	}
	return nil, nil, fmt.Errorf("pattern %s is %d×%d: want the display's %d×%d (height × width) or the part's %d×%d controls",
		pat.name, pat.rows, pat.cols, h, w, s.N(), s.N())
}

// parseShowPattern reads --pattern; a .npy is read here, before any device
// is opened.
func parseShowPattern(s string) (showPattern, error) {
	if !strings.HasSuffix(strings.ToLower(s), ".npy") {
		p, err := slm.ParsePattern(s)
		if err != nil {
			return showPattern{}, err
		}
		return showPattern{name: p.String(), pattern: &p}, nil
	}
	f, err := os.Open(s)
	if err != nil {
		return showPattern{}, fmt.Errorf("pattern: %w", err)
	}
	defer f.Close()
	var m mat.Dense
	if err := npy.Read(f, &m); err != nil {
		return showPattern{}, fmt.Errorf("pattern %s: %w (want a 2-D array of phases in radians)", s, err)
	}
	r, c := m.Dims()
	data := make([]float64, 0, r*c)
	for i := range r {
		data = append(data, m.RawRowView(i)...)
	}
	for i, v := range data {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return showPattern{}, fmt.Errorf("pattern %s: element [%d, %d] is %v", s, i/c, i%c, v)
		}
	}
	return showPattern{name: s, data: data, rows: r, cols: c}, nil
}

// runShow builds the rig, shows the pattern through the guard and holds it.
func runShow(ctx context.Context, out, errOut io.Writer, file string, f showFlags) error {
	pat, err := parseShowPattern(f.pattern)
	if err != nil {
		return err
	}
	var c probeSections
	if err := loadConfig(file, nil, nil, f.sets, &c); err != nil {
		return err
	}
	if err := c.Safety.Validate(); err != nil {
		return prefixFile(file, err)
	}
	if k, _ := c.BlackBox["kind"].(string); k != "rig" {
		return fmt.Errorf("%s: blackbox.kind is %q: show drives the SLM part of a rig", file, k)
	}
	if twin, _ := c.BlackBox["twin"].(bool); twin {
		return fmt.Errorf("%s: blackbox.twin is true: show puts patterns on real displays", file)
	}
	box, err := insitu.New(ctx, params(c.BlackBox, file, "blackbox"))
	if err != nil {
		return err
	}
	defer closeBox(box)
	r := box.(*rig.Rig)
	shown, s, x, err := showRig(r, f.part, pat)
	if err != nil {
		return prefixFile(file, err)
	}
	guard, err := safety.New(shown, c.Safety, safety.WithEvents(func(e safety.Event) {
		if e.Kind != safety.KindSafeState {
			fmt.Fprintf(errOut, "safety: %s\n", e.Detail)
		}
	}))
	if err != nil {
		if ss, ok := box.(insitu.SafeStater); ok {
			err = errors.Join(err, ss.SafeState(context.WithoutCancel(ctx)))
		}
		return prefixFile(file, err)
	}
	setHardStop(func() { _ = guard.Abort() })
	defer setHardStop(nil)
	err = guard.Do(ctx, func(ctx context.Context) error {
		y, err := guard.Query(ctx, x)
		if err != nil {
			return err
		}
		w, h := s.Display().Size()
		fmt.Fprintf(out, "%s: %s on %v (%d×%d)\n", f.part, pat.name, s.Display(), w, h)
		spec := guard.Spec()
		for i, v := range y {
			fmt.Fprintf(out, "  %s = %g\n", spec.Out[i], v)
		}
		return hold(ctx, out, s.Display(), f.hold)
	})
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		err = nil // Ctrl-C is how a hold ends
	}
	if err == nil {
		fmt.Fprintf(out, "%s: every part in its safe state\n", f.part)
	}
	return err
}

// hold waits for d (0: until ctx is done), or until the display is lost.
func hold(ctx context.Context, out io.Writer, d slm.Display, dur time.Duration) error {
	var lost <-chan struct{}
	if w, ok := d.(slm.Watcher); ok {
		lost = w.Done()
	}
	var timer <-chan time.Time
	if dur > 0 {
		fmt.Fprintf(out, "holding for %v (Ctrl-C to stop)\n", dur)
		t := time.NewTimer(dur)
		defer t.Stop()
		timer = t.C
	} else {
		fmt.Fprintln(out, "holding until Ctrl-C")
	}
	select {
	case <-timer:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-lost:
		return fmt.Errorf("%v: %w", d, d.(slm.Watcher).Err())
	}
}

// showRig is r with its SLM part name showing pat instead of a query's
// phases and its other actuators not driven; the Spec is r's, so the
// config's safety section applies unchanged. x is the query for the guard:
// the pattern's phase at the centre of each control's block for the SLM
// (the controls themselves for an n×n .npy), the held actuators' values
// clamped to 0 (they are not applied).
func showRig(r *rig.Rig, name string, pat showPattern) (shown *rig.Rig, s *slm.SLM, x []float64, err error) {
	comps := r.Components()
	var names []string
	var image, controls []float64
	for i, c := range comps {
		names = append(names, c.Name)
		sp, isSLM := c.Part.(rig.SLM)
		switch {
		case c.Name == name && !isSLM:
			return nil, nil, nil, fmt.Errorf("part %s is a %T, not an SLM", name, c.Part)
		case c.Name == name:
			s = sp.SLM
			if image, controls, err = pat.resolve(s); err != nil {
				return nil, nil, nil, err
			}
			ip := &imagePart{SLM: sp, image: image}
			if image != nil {
				controls = controlSamples(s, image)
				ip.want = controls
			}
			comps[i].Part = ip
		default:
			if a, ok := c.Part.(rig.Actuator); ok {
				comps[i].Part = held(a)
			}
		}
	}
	if s == nil {
		return nil, nil, nil, fmt.Errorf("no part %q in the rig (its parts: %s)", name, strings.Join(names, ", "))
	}
	if shown, err = rig.New(r.Spec().Name, r.Settle(), comps...); err != nil {
		return nil, nil, nil, err
	}
	spec := shown.Spec()
	x = make([]float64, spec.In.Dim())
	lo, hi := math.Inf(1), math.Inf(-1)
	k := 0
	for i, n := range spec.In.Names {
		if strings.HasPrefix(n, name+rig.Sep) {
			x[i] = controls[k]
			k++
			lo, hi = min(lo, spec.In.Lower[i]), max(hi, spec.In.Upper[i])
			continue
		}
		x[i] = min(max(0, spec.In.Lower[i]), spec.In.Upper[i])
	}
	// Every phase of the image, not only the samples the guard sees, must
	// lie within the SLM's range.
	for i, v := range image {
		if v < lo || v > hi {
			w, _ := s.Display().Size()
			return nil, nil, nil, fmt.Errorf("pattern %s: phase %g at pixel (%d, %d) is outside the SLM's range [%g, %g]: %w", pat.name, v, i%w, i/w, lo, hi, safety.ErrOutOfBounds)
		}
	}
	return shown, s, x, nil
}

// controlSamples is a display image's phase at each control's centre.
func controlSamples(s *slm.SLM, img []float64) []float64 {
	w, _ := s.Display().Size()
	n, mp := s.N(), s.Side()/s.N()
	x0, y0 := s.Origin()
	out := make([]float64, n*n)
	for r := range n {
		for c := range n {
			out[r*n+c] = img[(y0+r*mp+mp/2)*w+x0+c*mp+mp/2]
		}
	}
	return out
}

// imagePart is an SLM part that shows a display-sized image for the
// query the guard passed, having checked it is the one made of that image.
type imagePart struct {
	rig.SLM
	image []float64 // nil: show the query's phases
	want  []float64 // the samples of image the query must carry
}

func (p *imagePart) Apply(ctx context.Context, x []float64) error {
	if p.image == nil {
		return p.SLM.Apply(ctx, x)
	}
	for i := range x {
		if x[i] != p.want[i] {
			return fmt.Errorf("the guard changed control %d of the pattern (%g → %g; bounds_mode clamp?): not showing it", i, p.want[i], x[i])
		}
	}
	return p.SLM.ShowImage(ctx, p.image)
}

// held returns an actuator that keeps a's coordinates, outputs and safe
// state but is not driven.
func held(a rig.Actuator) rig.Part {
	if s, ok := a.(rig.Sensor); ok {
		return heldSensor{heldActuator{a}, s}
	}
	return heldActuator{a}
}

type heldActuator struct{ rig.Actuator }

func (heldActuator) Apply(context.Context, []float64) error { return nil }

type heldSensor struct {
	heldActuator
	s rig.Sensor
}

func (h heldSensor) Outputs() []string                              { return h.s.Outputs() }
func (h heldSensor) Measure(ctx context.Context) ([]float64, error) { return h.s.Measure(ctx) }
