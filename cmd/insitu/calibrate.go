package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/insitu-lab/insitu"
	"github.com/insitu-lab/insitu/instruments/cameraslm"
	"github.com/insitu-lab/insitu/instruments/rig"
	"github.com/insitu-lab/insitu/loop"
	"github.com/insitu-lab/insitu/loop/journal"
	"github.com/insitu-lab/insitu/loop/live"
	"github.com/insitu-lab/insitu/safety"
)

// The calibrations, in the order a bench is calibrated.
const (
	calSettle    = "settle"
	calFourier   = "fourier"
	calWavefront = "wavefront"
)

// calMethod is a calibration's method in its journal and run directory.
func calMethod(kind string) string { return "calibrate-" + kind }

// calibrationOf reports which calibration a journal's method names.
func calibrationOf(method string) (string, bool) {
	kind, ok := strings.CutPrefix(method, "calibrate-")
	return kind, ok && slices.Contains([]string{calSettle, calFourier, calWavefront}, kind)
}

func newCalibrateCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "calibrate",
		Short: "Calibrate an SLM against the camera in its Fourier plane: settle time, Fourier map, wavefront",
		Long: `Calibrations of a rig with an slm part and a camera part that sees the
SLM's Fourier plane, in the order a bench is calibrated:

  insitu calibrate settle CONFIG     how long the liquid crystal takes to settle
  insitu calibrate fourier CONFIG    where a spatial frequency on the SLM lands on the camera
  insitu calibrate wavefront CONFIG  the SLM's flat-field phase error (needs the Fourier map)

Each is a run like any other: its patterns go through the safety guard, every
image is journaled in DIR/journal.db, Ctrl-C leaves the bench in its safe
state and 'insitu resume DIR' continues it; --dry-run runs it on the rig's
twins and writes the hardware bill, --serve shows it live. The result is
written beside the run: DIR/settle.yaml, DIR/fourier.yaml (the file camera
spots in k-space name with calibration: FILE) or DIR/wavefront-correction.png
(the file an slm part's correction_file reads), each with a plot.

The config's calibration section tunes them (see docs/bench.md).`,
	}
	for _, kind := range []string{calSettle, calFourier, calWavefront} {
		cmd.AddCommand(newCalibrationCmd(kind))
	}
	return cmd
}

func newCalibrationCmd(kind string) *cobra.Command {
	var (
		out, fourier string
		sets         []string
		quiet        bool
		dryRun       bool
	)
	short := map[string]string{
		calSettle:    "Measure the SLM's settle time: the camera sampled at increasing delays after each frame",
		calFourier:   "Fit the affine map from the SLM's spatial frequencies to camera pixels with blazed gratings",
		calWavefront: "Measure the SLM's phase error by superpixel interference and write its correction",
	}[kind]
	cmd := &cobra.Command{
		Use:   kind + " CONFIG.yaml",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			file := args[0]
			cfg := defaultRunConfig()
			if err := loadConfig(file, cmd.Flags(), nil, sets, &cfg); err != nil {
				return err
			}
			if err := cfg.validate(); err != nil {
				return prefixFile(file, err)
			}
			if kind == calWavefront {
				if fourier != "" {
					cfg.Calibration.Wavefront.Fourier = fourier
				}
				if cfg.Calibration.Wavefront.Fourier == "" {
					return fmt.Errorf("%s: the wavefront calibration needs the Fourier map: give --fourier FILE (the fourier.yaml of an 'insitu calibrate fourier' run) or calibration.wavefront.fourier", file)
				}
				abs, err := filepath.Abs(cfg.Calibration.Wavefront.Fourier)
				if err != nil {
					return err
				}
				cfg.Calibration.Wavefront.Fourier = abs
			}
			return startCalibration(cmd, kind, file, cfg, out, quiet, dryRun)
		},
	}
	cmd.Flags().StringVarP(&out, "out", "o", "", "run directory (default runs/NAME-calibrate-"+kind+"-sSEED-TIME)")
	cmd.Flags().StringArrayVar(&sets, "set", nil, "override a config key: --set calibration.fourier.periods=[3,6] (repeatable)")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "no progress bar")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "calibrate the rig's twins, opening no device, into DIR-dryrun, and write the hardware bill")
	if kind == calWavefront {
		cmd.Flags().StringVar(&fourier, "fourier", "", "the Fourier calibration file (fourier.yaml of an 'insitu calibrate fourier' run)")
	}
	addServeFlags(cmd)
	return cmd
}

// calPlan is a calibration rig: its config section, which parts the
// calibration draws on and reads, and what it needs to know of them.
type calPlan struct {
	kind      string
	box       map[string]any // the rig section, the camera measuring its image
	slm, cam  string         // part names
	grid      cameraslm.Grid
	roi       [4]int  // the camera window, sensor pixels
	sat       float64 // the camera's full scale (0: not known)
	hold      map[string]float64
	fourier   *cameraslm.FourierFile // the wavefront calibration's map
	fourierAt string
	notes     []string
}

// planCalibration makes the calibration rig from a config: the rig section
// with the camera part measuring its image over the calibration window.
func planCalibration(kind string, cfg runConfig) (*calPlan, error) {
	if k, _ := cfg.BlackBox["kind"].(string); k != "rig" {
		return nil, fmt.Errorf("blackbox.kind %q: a calibration needs a rig with an slm part and a camera part", k)
	}
	box, err := deepCopy(cfg.BlackBox)
	if err != nil {
		return nil, err
	}
	cal := cfg.Calibration
	p := &calPlan{kind: kind, box: box, hold: map[string]float64{}}
	parts, _ := box["parts"].([]any)
	var slmPart, camPart map[string]any
	var slms, cams []string
	for _, raw := range parts {
		part, ok := raw.(map[string]any)
		if !ok {
			continue
		}
		name, _ := part["name"].(string)
		switch part["type"] {
		case "slm":
			slms = append(slms, name)
			if cal.SLM == "" || cal.SLM == name {
				slmPart = part
			}
		case "camera":
			cams = append(cams, name)
			if cal.Camera == "" || cal.Camera == name {
				camPart = part
			}
		}
	}
	pick := func(what, key, want string, have []string, part map[string]any) error {
		switch {
		case len(have) == 0:
			return fmt.Errorf("a calibration needs a %s part; the rig has none", what)
		case want == "" && len(have) > 1:
			return fmt.Errorf("calibration.%s: the rig has %d %s parts %v: name the one to calibrate", key, len(have), what, have)
		case part == nil:
			return fmt.Errorf("calibration.%s: %q is not one of the rig's %s parts %v", key, want, what, have)
		}
		return nil
	}
	if err := pick("slm", "slm", cal.SLM, slms, slmPart); err != nil {
		return nil, err
	}
	if err := pick("camera", "camera", cal.Camera, cams, camPart); err != nil {
		return nil, err
	}
	p.slm, _ = slmPart["name"].(string)
	p.cam, _ = camPart["name"].(string)
	p.grid = cameraslm.Grid{N: intOf(slmPart["n"]), MacroPixel: intOf(slmPart["macro_pixel"])}
	if err := p.grid.Validate(); err != nil {
		return nil, fmt.Errorf("the slm part %s: %w", p.slm, err)
	}

	// The camera window: the calibration's, else the part's, else the
	// backend's whole frame.
	backend, _ := camPart["backend"].(map[string]any)
	roi := cal.ROI
	if kind == calWavefront {
		if p.fourier, err = loadFourier(cal.Wavefront.Fourier, p); err != nil {
			return nil, err
		}
		p.fourierAt = cal.Wavefront.Fourier
		if len(cal.Wavefront.ROI) == 4 {
			roi = cal.Wavefront.ROI
		} else {
			// A square around the point, inside the Fourier calibration's
			// window.
			o := cal.wavefrontOptions(p.grid, p.fourier.Map)
			pt := o.Point
			if pt == [2]float64{} {
				pt = [2]float64{p.grid.MaxK(4), 0}
			}
			x, y := p.fourier.Map.Apply(pt[0], pt[1])
			r := p.fourier.Camera.ROI
			half := 15
			x0 := min(max(int(math.Round(x))-half, r[0]), r[0]+r[2]-(2*half+1))
			y0 := min(max(int(math.Round(y))-half, r[1]), r[1]+r[3]-(2*half+1))
			roi = []int{max(x0, r[0]), max(y0, r[1]), min(2*half+1, r[2]), min(2*half+1, r[3])}
		}
	}
	if len(roi) == 0 {
		if r, ok := camPart["roi"].([]any); ok && len(r) == 4 {
			for _, v := range r {
				roi = append(roi, intOf(v))
			}
		}
	}
	if len(roi) == 0 {
		w, h := intOf(backend["width"]), intOf(backend["height"])
		if w == 0 || h == 0 {
			return nil, fmt.Errorf("the camera part %s: give calibration.roi [x, y, w, h]: its frame size is not in the config", p.cam)
		}
		roi = []int{0, 0, w, h}
	}
	p.roi = [4]int{roi[0], roi[1], roi[2], roi[3]}
	camPart["measure"] = rig.MeasureImage
	camPart["roi"] = []any{roi[0], roi[1], roi[2], roi[3]}
	delete(camPart, "regions")
	delete(camPart, "spots")
	delete(camPart, "calibration")

	p.sat = cal.Saturation
	if p.sat == 0 && backend != nil {
		switch backend["type"] {
		case "memory":
			p.sat = floatOf(backend["saturation"])
		case "v4l2":
			p.sat = 255
			if backend["format"] == "y16" {
				p.sat = 65535
			}
		}
	}
	if p.sat == 0 {
		p.notes = append(p.notes, fmt.Sprintf("the camera %s's full scale is not known: spots are not checked for saturation (give calibration.saturation)", p.cam))
	}
	return p, nil
}

// loadFourier reads the wavefront calibration's Fourier map and checks it
// was made on this SLM part's grid.
func loadFourier(path string, p *calPlan) (*cameraslm.FourierFile, error) {
	f, err := cameraslm.LoadFourier(path)
	if err != nil {
		return nil, fmt.Errorf("calibration.wavefront.fourier: %w", err)
	}
	if f.SLM.N != p.grid.N || max(f.SLM.MacroPixel, 1) != max(p.grid.MacroPixel, 1) {
		return nil, fmt.Errorf("calibration.wavefront.fourier: %s was made on an SLM of %d controls of %d pixels, the slm part %s has %d of %d",
			path, f.SLM.N, max(f.SLM.MacroPixel, 1), p.slm, p.grid.N, max(p.grid.MacroPixel, 1))
	}
	return &f, nil
}

func intOf(v any) int {
	switch x := v.(type) {
	case int:
		return x
	case int64:
		return int(x)
	case uint64:
		return int(x)
	case float64:
		return int(x)
	}
	return 0
}

func floatOf(v any) float64 {
	switch x := v.(type) {
	case int:
		return float64(x)
	case int64:
		return float64(x)
	case uint64:
		return float64(x)
	case float64:
		return x
	}
	return 0
}

// deepCopy copies a config section through YAML.
func deepCopy(m map[string]any) (map[string]any, error) {
	b, err := yaml.Marshal(m)
	if err != nil {
		return nil, err
	}
	var out map[string]any
	return out, yaml.Unmarshal(b, &out)
}

// calSession is what a calibration needs to run on its rig: the spec's
// layout of inputs and outputs and the safety section it runs under.
type calSession struct {
	plan   *calPlan
	spec   insitu.Spec
	sc     safety.Config
	base   []float64 // the rig's input with the SLM part's coordinates to fill
	slmOff int
	camIdx []int // the camera part's outputs in the rig's output vector
}

// describeCalibration checks the calibration rig and its safety section
// without opening a device.
func describeCalibration(ctx context.Context, file string, cfg runConfig, p *calPlan) (*calSession, error) {
	spec, err := insitu.Describe(ctx, params(p.box, file, "blackbox"))
	if err != nil {
		if errors.Is(err, insitu.ErrNeedsDevice) {
			return nil, fmt.Errorf("%w (check it on the bench with: insitu probe --config %s)", err, file)
		}
		return nil, err
	}
	sc, notes := calibrationSafety(cfg.Safety, spec.Out)
	p.notes = append(p.notes, notes...)
	if err := safety.Check(spec, sc); err != nil {
		return nil, prefixFile(file, err)
	}
	s := &calSession{plan: p, spec: spec, sc: sc, slmOff: -1}
	s.base = make([]float64, spec.In.Dim())
	hold := maps.Clone(cfg.Calibration.Hold)
	if hold == nil {
		hold = map[string]float64{}
	}
	for k, v := range cfg.Safety.Initial {
		if _, ok := hold[k]; !ok {
			hold[k] = v
		}
	}
	prefix := p.slm + rig.Sep
	var missing []string
	for i, name := range spec.In.Names {
		if strings.HasPrefix(name, prefix) {
			if s.slmOff < 0 {
				s.slmOff = i
			}
			continue
		}
		v, ok := hold[name]
		if !ok {
			missing = append(missing, name)
			continue
		}
		s.base[i] = v
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%s: the calibration drives the slm part %s and holds the rig's other inputs: give calibration.hold (or safety.initial) for %v", file, p.slm, missing)
	}
	slmIn := 0
	for _, name := range spec.In.Names {
		if strings.HasPrefix(name, prefix) {
			slmIn++
		}
	}
	if s.slmOff < 0 || slmIn != p.grid.N*p.grid.N {
		return nil, fmt.Errorf("%s: the slm part %s has %d inputs in the rig, not its %d×%d controls", file, p.slm, slmIn, p.grid.N, p.grid.N)
	}
	// The image's pixels, px_<row>_<col>: a camera may report more (a
	// count of saturated pixels).
	camPrefix := p.cam + rig.Sep + "px_"
	for i, o := range spec.Out {
		if strings.HasPrefix(o, camPrefix) {
			s.camIdx = append(s.camIdx, i)
		}
	}
	if len(s.camIdx) != p.roi[2]*p.roi[3] {
		return nil, fmt.Errorf("%s: the camera part %s measures %d pixels, its window %v has %d", file, p.cam, len(s.camIdx), p.roi, p.roi[2]*p.roi[3])
	}
	return s, nil
}

// startCalibration is `insitu calibrate KIND FILE` for a resolved,
// validated config.
func startCalibration(cmd *cobra.Command, kind, file string, cfg runConfig, out string, quiet, dry bool) error {
	ctx := cmd.Context()
	if dry {
		if k, _ := cfg.BlackBox["kind"].(string); k == "rig" {
			// The stored config says so: a resume builds the twins again.
			cfg.BlackBox["twin"] = true
		}
	}
	plan, err := planCalibration(kind, cfg)
	if err != nil {
		return prefixFile(file, err)
	}
	sess, err := describeCalibration(ctx, file, cfg, plan)
	if err != nil {
		return err
	}
	method := calMethod(kind)
	out, err = runDir(out, file, cfg.Name, method, cfg.Seed, "insitu resume")
	if err != nil {
		return err
	}
	if dry && !strings.HasSuffix(filepath.Clean(out), dryRunSuffix) {
		if out, err = runDir(filepath.Clean(out)+dryRunSuffix, file, cfg.Name, method, cfg.Seed, "insitu resume"); err != nil {
			return err
		}
	}
	release, resolved, err := claimRunDir(out, cfg)
	if err != nil {
		return err
	}
	defer release()
	r, err := buildCalibrationRig(ctx, file, sess, dry)
	if err != nil {
		return err
	}
	kindName := "rig"
	if dry {
		kindName += " (dry run)"
	}
	j, err := journal.Create(out, journal.Meta{Version: version, Method: method, Kind: kindName, Seed: cfg.Seed, Direction: journal.Maximize},
		resolved, journal.WithSync(cfg.Journal.policy()))
	if err != nil {
		closeBox(r)
		return err
	}
	defer j.Close()
	what := "the bench"
	if dry {
		what = "the twins of rig " + r.Spec().Name + " (no device is opened)"
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "calibrate %s %s: on %s, journal %s\n", kind, filepath.Base(out), what, j.Path())
	return executeCalibration(ctx, cmd, calRun{file: file, cfg: cfg, out: out, j: j, r: r, sess: sess, resolved: resolved, quiet: quiet, dry: dry})
}

// buildCalibrationRig opens the calibration rig (its twins in a dry run).
func buildCalibrationRig(ctx context.Context, file string, sess *calSession, dry bool) (*rig.Rig, error) {
	b, err := insitu.New(ctx, params(sess.plan.box, file, "blackbox"))
	if err != nil {
		return nil, err
	}
	r, ok := b.(*rig.Rig)
	if !ok || r.IsTwin() != dry {
		closeBox(b)
		return nil, fmt.Errorf("%s: the calibration built %T (twin %v), want a rig (twin %v)", file, b, ok && r.IsTwin(), dry)
	}
	if !reflectSpec(r.Spec(), sess.spec) {
		closeBox(r)
		return nil, fmt.Errorf("%s: the rig built has %d inputs and %d outputs, described %d and %d", file, r.Spec().In.Dim(), len(r.Spec().Out), sess.spec.In.Dim(), len(sess.spec.Out))
	}
	return r, nil
}

func reflectSpec(a, b insitu.Spec) bool {
	return slices.Equal(a.In.Names, b.In.Names) && slices.Equal(a.Out, b.Out)
}

// calRun is one calibration run, started or resumed.
type calRun struct {
	file, out string
	cfg       runConfig
	j         *journal.Journal
	r         *rig.Rig
	sess      *calSession
	resolved  []byte
	quiet     bool
	dry       bool
}

// executeCalibration runs the calibration behind the guard (on the dry
// run's clock for twins), then writes its files, its plot and, for a dry
// run, the bill.
func executeCalibration(ctx context.Context, cmd *cobra.Command, c calRun) error {
	defer closeBox(c.r)
	plan := c.sess.plan
	info := live.RunInfo{Name: nameOr(c.cfg.Name, c.out), Method: calMethod(plan.kind), Kind: "rig", Iterations: 1, Unit: "stage"}
	ctx, con, err := startConsole(ctx, cmd, c.out, info, c.r.Spec())
	if err != nil {
		return err
	}
	defer con.close()
	for _, n := range plan.notes {
		fmt.Fprintf(cmd.ErrOrStderr(), "note: %s\n", n)
	}
	setup := guardSetup{}
	clock := &dryClock{}
	if c.dry {
		c.r.SetTwinClock(clock)
		setup = guardSetup{opts: []safety.Option{safety.WithClock(clock)}, safe: "every twin"}
	}
	var evs []safety.Event
	setup.record = func(e safety.Event) { evs = append(evs, e) }
	start, wall := clock.Now(), time.Now()
	var result any
	var m *loop.Measurer
	// The journal describes what the calibration measures: the SLM's
	// controls and the camera's image (not the run's regions).
	setup.facts = &runFacts{kind: "rig", safety: c.sess.sc, objective: journal.Objective{Kind: "sum", Direction: journal.Maximize}}
	setup.stop = func() string {
		if result == nil {
			return ""
		}
		return fmt.Sprintf("%s calibration fitted", plan.kind)
	}
	guard, err := guardedWith(ctx, cmd, c.r, c.sess.sc, c.j, "insitu resume "+c.out, setup, func(ctx context.Context, g *safety.Guard) error {
		con.watch(g)
		m = loop.NewMeasurer(con.wrap(g), c.j, 0)
		b := &guardBench{m: m, sess: c.sess, w: cmd.ErrOrStderr(), quiet: c.quiet}
		defer b.finish()
		var err error
		result, err = runCalibrationOn(ctx, b, c)
		return err
	})
	elapsed, wallElapsed := clock.Now().Sub(start), time.Since(wall)
	if result != nil {
		if werr := writeCalibration(cmd.OutOrStdout(), c, result); werr != nil {
			err = errors.Join(err, werr)
		}
	}
	if c.dry && guard != nil {
		res := &loop.Result{}
		if m != nil {
			res.Queries = m.Queries()
		}
		rc := c.cfg
		rc.Method = calMethod(plan.kind)
		b, berr := makeBill(context.WithoutCancel(ctx), billInput{file: c.file, out: c.out, cfg: rc, j: c.j, r: c.r, res: res, c: guard.Counters(),
			events: evs, elapsed: elapsed, wall: wallElapsed, runErr: err})
		if berr == nil {
			berr = b.write(c.out)
		}
		if berr != nil {
			return errors.Join(err, fmt.Errorf("dry run bill: %w", berr))
		}
		b.print(cmd.OutOrStdout())
	}
	return err
}

// runCalibrationOn runs the calibration of c's kind on bench b.
func runCalibrationOn(ctx context.Context, b cameraslm.Bench, c calRun) (any, error) {
	plan, cal := c.sess.plan, c.cfg.Calibration
	var res any
	var err error
	switch plan.kind {
	case calFourier:
		res, err = cameraslm.CalibrateFourier(ctx, b, cal.fourierOptions(plan.grid, plan.sat))
	case calSettle:
		res, err = cameraslm.CalibrateSettle(ctx, b, cal.settleOptions(plan.grid))
	case calWavefront:
		res, err = cameraslm.CalibrateWavefront(ctx, b, cal.wavefrontOptions(plan.grid, plan.fourier.Map))
	default:
		err = fmt.Errorf("unknown calibration %q", plan.kind)
	}
	if err != nil {
		return nil, err // the images are journaled; nothing is fitted
	}
	return res, nil
}

// guardBench is the calibrations' bench: each shot a query of the guarded
// rig through the Measurer, the SLM part's coordinates set to its pattern
// and the rig's others held, the settle asked of the rig, the camera's
// pixels read out of the outputs and the delay out of the query's marks.
type guardBench struct {
	m     *loop.Measurer
	sess  *calSession
	w     io.Writer
	quiet bool
	bar   *progressbar.ProgressBar
}

func (b *guardBench) Shoot(ctx context.Context, stage string, shots []cameraslm.Shot) ([]cameraslm.Frame, error) {
	s := b.sess
	n := s.plan.grid.N * s.plan.grid.N
	xs := make([][]float64, len(shots))
	for i, sh := range shots {
		if len(sh.Phase) != n {
			return nil, fmt.Errorf("%s: a pattern of %d phases for %d controls", stage, len(sh.Phase), n)
		}
		x := slices.Clone(s.base)
		copy(x[s.slmOff:s.slmOff+n], sh.Phase)
		xs[i] = x
	}
	if !b.quiet {
		b.finish()
		b.bar = progressbar.NewOptions(len(shots), progressbar.OptionSetWriter(b.w), progressbar.OptionSetDescription(stage),
			progressbar.OptionShowCount(), progressbar.OptionSetElapsedTime(true), progressbar.OptionSetPredictTime(true),
			progressbar.OptionSetWidth(30), progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionClearOnFinish())
	}
	rs, err := b.m.Measure(ctx, xs, func(ctx context.Context, i int) context.Context {
		if b.bar != nil {
			_ = b.bar.Set(i)
		}
		if d := shots[i].Settle; d != cameraslm.RigSettle {
			ctx = rig.WithSettle(ctx, d)
		}
		return ctx
	})
	if err != nil {
		return nil, err
	}
	roi := s.plan.roi
	frames := make([]cameraslm.Frame, len(rs))
	for i, r := range rs {
		pix := make([]float64, len(s.camIdx))
		for k, j := range s.camIdx {
			pix[k] = r.Y[j]
		}
		f := cameraslm.Frame{Image: cameraslm.Image{W: roi[2], H: roi[3], X0: roi[0], Y0: roi[1], Pix: pix}, Delay: max(shots[i].Settle, 0)}
		// The delay between the frame shown and the exposure, from the
		// query's marks as journaled (a resumed run's served ones too).
		marks := make([]insitu.Mark, len(r.Marks))
		for k, m := range r.Marks {
			marks[k] = insitu.Mark{Part: m.Part, Event: m.Event, At: m.At}
		}
		if d, e, ok := cameraslm.Delay(marks, s.plan.slm, s.plan.cam); ok {
			f.Delay, f.Exposure, f.Measured = d, e, true
		}
		frames[i] = f
	}
	return frames, nil
}

func (b *guardBench) finish() {
	if b.bar != nil {
		_ = b.bar.Finish()
		b.bar = nil
	}
}

// configHash is the SHA-256 of a run's resolved config.
func configHash(resolved []byte) string {
	h := sha256.Sum256(resolved)
	return hex.EncodeToString(h[:])
}

// devices says what each part of the rig is, for the calibration file.
func devices(r *rig.Rig) map[string]string {
	d := map[string]string{}
	for _, c := range r.Components() {
		if s, ok := c.Part.(fmt.Stringer); ok {
			d[c.Name] = s.String()
		} else {
			d[c.Name] = fmt.Sprintf("%T", c.Part)
		}
	}
	return d
}

// writeCalibration writes a calibration's files beside its run and prints
// its summary.
func writeCalibration(w io.Writer, c calRun, result any) error {
	plan := c.sess.plan
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	defer tw.Flush()
	switch res := result.(type) {
	case *cameraslm.FourierResult:
		f := cameraslm.FourierFile{
			Date: time.Now().UTC(), Config: c.file, ConfigHash: configHash(c.resolved), RunDir: c.out, Devices: devices(c.r),
			SLM:    cameraslm.FileSLM{Part: plan.slm, N: plan.grid.N, MacroPixel: max(plan.grid.MacroPixel, 1)},
			Camera: cameraslm.FileCamera{Part: plan.cam, ROI: plan.roi},
			Map:    res.Map, Geometry: res.Geometry, RMS: res.RMS, Points: res.Points,
		}
		path := filepath.Join(c.out, "fourier.yaml")
		if err := f.Write(path); err != nil {
			return err
		}
		png := filepath.Join(c.out, "fourier.png")
		if err := plotFourier(png, res, plan); err != nil {
			return err
		}
		g := res.Geometry
		fmt.Fprintf(tw, "Fourier map\t[x, y] = A·[kx, ky] + b, k in cycles per SLM pixel, x, y in camera pixels\n")
		fmt.Fprintf(tw, "A\t[[%.4f, %.4f], [%.4f, %.4f]]\n", res.Map.A[0][0], res.Map.A[0][1], res.Map.A[1][0], res.Map.A[1][1])
		fmt.Fprintf(tw, "b\t[%.4f, %.4f] (the zeroth order)\n", res.Map.B[0], res.Map.B[1])
		fmt.Fprintf(tw, "geometry\tscale %.4g px per cycle/pixel, rotation %.3f°, mirrored %v, anisotropy %.4f, shear %.3f°\n", g.Scale, g.Rotation, g.Mirrored, g.Anisotropy, g.Shear)
		fmt.Fprintf(tw, "residuals\tRMS %.3f px over %d spots, largest %.3f px\n", res.RMS, len(res.Points), maxResidual(res.Points))
		fmt.Fprintf(tw, "wrote\t%s, %s\n", path, png)
	case *cameraslm.SettleResult:
		path := filepath.Join(c.out, "settle.yaml")
		if err := writeYAML(path, settleFile{Kind: "settle", Date: time.Now().UTC(), Config: c.file, ConfigHash: configHash(c.resolved), Devices: devices(c.r),
			Model: settleModel, Rise: res.Rise, Fall: res.Fall, Settle: res.Settle, Samples: res.Samples}); err != nil {
			return err
		}
		png := filepath.Join(c.out, "settle.png")
		if err := plotSettle(png, res); err != nil {
			return err
		}
		fmt.Fprintf(tw, "model\t%s\n", settleModel)
		for _, d := range []struct {
			name string
			r    cameraslm.Response
		}{{"rise (A → B)", res.Rise}, {"fall (B → A)", res.Fall}} {
			fmt.Fprintf(tw, "%s\tτ %v, dead time %v: within 5 %% after %v, within 1 %% after %v (fit RMS %.3f of the step)\n",
				d.name, d.r.Tau.Round(10*time.Microsecond), d.r.DeadTime.Round(10*time.Microsecond), d.r.Within5.Round(10*time.Microsecond), d.r.Within1.Round(10*time.Microsecond), d.r.RMS)
		}
		fmt.Fprintf(tw, "recommended\tsettle: %v (the slower step's 1 %% time)\n", res.Settle)
		if cur := configuredSettle(c.cfg.BlackBox, plan.slm); cur > 0 {
			fmt.Fprintf(tw, "configured\tthe slm part %s waits %v: %s\n", plan.slm, cur, compareSettle(cur, res.Settle))
		}
		fmt.Fprintf(tw, "wrote\t%s, %s\n", path, png)
	case *cameraslm.WavefrontResult:
		corr := res.Correction
		side := plan.grid.Side()
		if prev := currentCorrection(c.r, plan.slm); len(prev) == side*side {
			// The SLM applied its correction throughout: what was measured
			// is what it leaves.
			corr = slices.Clone(corr)
			for i := range corr {
				corr[i] += prev[i]
			}
		}
		file := filepath.Join(c.out, "wavefront-correction.png")
		if err := cameraslm.WriteCorrection(file, corr, side); err != nil {
			return err
		}
		path := filepath.Join(c.out, "wavefront.yaml")
		if err := writeYAML(path, wavefrontFile(c, res)); err != nil {
			return err
		}
		png := filepath.Join(c.out, "wavefront.png")
		if err := plotWavefront(png, res); err != nil {
			return err
		}
		lit := 0
		for _, l := range res.Lit {
			if l {
				lit++
			}
		}
		fmt.Fprintf(tw, "superpixels\t%d×%d of %d×%d controls; %d interfere with the reference, the others take their neighbours' phase\n", res.Side, res.Side, res.Superpixel, res.Superpixel, lit)
		fmt.Fprintf(tw, "interference\tat sensor pixel %v; tilt removed (%.4g, %.4g) cycles per pixel\n", res.At, res.Tilt[0], res.Tilt[1])
		fmt.Fprintf(tw, "phase error\tRMS %.3f rad (piston and tilt removed)\n", rmsPhase(res.Phase))
		fmt.Fprintf(tw, "correction\t%s: set the slm part's correction_file to it\n", file)
		fmt.Fprintf(tw, "wrote\t%s, %s, %s\n", file, path, png)
	}
	return nil
}

func maxResidual(ps []cameraslm.FourierPoint) float64 {
	m := 0.0
	for _, p := range ps {
		m = max(m, p.Residual)
	}
	return m
}

func rmsPhase(p []float64) float64 {
	var s float64
	for _, v := range p {
		s += v * v
	}
	return math.Sqrt(s / float64(len(p)))
}

// settleModel says what the settle calibration fits.
const settleModel = "first order: the fraction of a step done t after the frame is shown is 1 − exp(−(t − dead time)/τ), " +
	"read from the image against settled patterns between the two (a blazed grating at two depths)"

type settleFile struct {
	Kind       string                   `yaml:"kind"`
	Date       time.Time                `yaml:"date"`
	Config     string                   `yaml:"config"`
	ConfigHash string                   `yaml:"config_hash"`
	Devices    map[string]string        `yaml:"devices"`
	Model      string                   `yaml:"model"`
	Rise       cameraslm.Response       `yaml:"rise"`
	Fall       cameraslm.Response       `yaml:"fall"`
	Settle     time.Duration            `yaml:"recommended_settle"`
	Samples    []cameraslm.SettleSample `yaml:"samples"`
}

type wavefrontSuper struct {
	Column, Row int
	Phase       float64 `yaml:"phase_rad"`
	Modulation  float64 `yaml:"modulation"`
	R2          float64 `yaml:"r2"`
	Lit         bool    `yaml:"lit"`
}

type wavefrontSummary struct {
	Kind        string            `yaml:"kind"`
	Date        time.Time         `yaml:"date"`
	Config      string            `yaml:"config"`
	ConfigHash  string            `yaml:"config_hash"`
	Devices     map[string]string `yaml:"devices"`
	Fourier     string            `yaml:"fourier"`
	Correction  string            `yaml:"correction_file"`
	Superpixel  int               `yaml:"superpixel_controls"`
	At          [2]int            `yaml:"interference_pixel"`
	Tilt        [2]float64        `yaml:"tilt_removed"`
	Superpixels []wavefrontSuper  `yaml:"superpixels"`
}

func wavefrontFile(c calRun, res *cameraslm.WavefrontResult) wavefrontSummary {
	s := wavefrontSummary{Kind: "wavefront", Date: time.Now().UTC(), Config: c.file, ConfigHash: configHash(c.resolved), Devices: devices(c.r),
		Fourier: c.sess.plan.fourierAt, Correction: "wavefront-correction.png", Superpixel: res.Superpixel, At: res.At, Tilt: res.Tilt}
	for i := range res.Phase {
		s.Superpixels = append(s.Superpixels, wavefrontSuper{Column: i % res.Side, Row: i / res.Side, Phase: res.Phase[i], Modulation: res.Modulation[i], R2: res.R2[i], Lit: res.Lit[i]})
	}
	return s
}

func writeYAML(path string, v any) error {
	data, err := yaml.Marshal(v)
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}

// configuredSettle is the settle the config gives the slm part.
func configuredSettle(box map[string]any, slmName string) time.Duration {
	for _, raw := range asList(box["parts"]) {
		part, _ := raw.(map[string]any)
		if part["name"] != slmName {
			continue
		}
		switch v := part["settle"].(type) {
		case string:
			d, _ := time.ParseDuration(v)
			return d
		case time.Duration:
			return v
		}
	}
	return 0
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

func compareSettle(cur, rec time.Duration) string {
	r := cur.Seconds() / rec.Seconds()
	switch {
	case r < 1:
		return fmt.Sprintf("%.2f of the recommended %v: queries would read the panel before it settles", r, rec)
	case r > 2:
		return fmt.Sprintf("%.1f times the recommended %v: every query waits longer than it needs", r, rec)
	}
	return fmt.Sprintf("%.2f times the recommended %v", r, rec)
}

// currentCorrection is the correction the rig's slm part applies under
// its pattern, or nil.
func currentCorrection(r *rig.Rig, slmName string) []float64 {
	for _, c := range r.Components() {
		if s, ok := c.Part.(rig.SLM); ok && c.Name == slmName {
			return s.PatternCorrection()
		}
	}
	return nil
}

// resumeCalibration continues the calibration run in dir.
func resumeCalibration(cmd *cobra.Command, dir, kind string, quiet bool) error {
	ctx := cmd.Context()
	release, err := lockRun(dir)
	if err != nil {
		return err
	}
	defer release()
	cfg := defaultRunConfig()
	j, where, err := reopen(ctx, dir, &cfg)
	if err != nil {
		return err
	}
	defer j.Close()
	plan, err := planCalibration(kind, cfg)
	if err != nil {
		return prefixFile(where, err)
	}
	sess, err := describeCalibration(ctx, where, cfg, plan)
	if err != nil {
		return err
	}
	dry, _ := cfg.BlackBox["twin"].(bool)
	r, err := buildCalibrationRig(ctx, where, sess, dry)
	if err != nil {
		return err
	}
	if err := j.SetStatus(ctx, journal.RunRunning); err != nil {
		closeBox(r)
		return err
	}
	resolved, err := j.Config(ctx)
	if err != nil {
		closeBox(r)
		return err
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "resuming %s: calibrate %s\n", dir, kind)
	return executeCalibration(ctx, cmd, calRun{file: where, cfg: cfg, out: dir, j: j, r: r, sess: sess, resolved: resolved, quiet: quiet, dry: dry})
}
