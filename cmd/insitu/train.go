package main

import (
	"context"
	"errors"
	"fmt"
	"image/color"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/insitu-lab/insitu"
	"github.com/insitu-lab/insitu/loop"
	"github.com/insitu-lab/insitu/loop/journal"
	"github.com/insitu-lab/insitu/safety"
)

// trainConfig is a whole `insitu train` config file: the training settings
// at the top level, the real black box, optionally the ideal twin, the data,
// and the safety and journal sections.
type trainConfig struct {
	Name             string `mapstructure:"name" yaml:"name,omitempty" doc:"names the training: its run directory and the problem runs compare and plot group by"`
	loop.TrainConfig `mapstructure:",squash" yaml:",inline"`
	BlackBox         map[string]any `mapstructure:"blackbox" yaml:"blackbox" doc:"the physical network: a black box whose input is [u; θ] (data, then trainable parameters)"`
	// IdealBlackBox is the twin without reality gap for insilico and pat;
	// empty: the real box's own Ideal() (loop.Idealizer).
	IdealBlackBox map[string]any  `mapstructure:"ideal_blackbox" yaml:"ideal_blackbox,omitempty" doc:"the twin without reality gap, for the insilico and pat methods"`
	Data          loop.DataConfig `mapstructure:"data" yaml:"data" doc:"the classification dataset, generated from a seed (nothing is downloaded)"`
	Safety        safety.Config   `mapstructure:"safety" yaml:"safety" doc:"the guard every query passes (as in a run config)"`
	Journal       journalConfig   `mapstructure:"journal" yaml:"journal" doc:"how results are committed to DIR/journal.db"`
}

func defaultTrainConfig() trainConfig {
	return trainConfig{
		TrainConfig: loop.DefaultTrainConfig(),
		BlackBox:    map[string]any{},
		Data:        loop.DataConfig{N: 200, Noise: 0.1, TestFraction: 0.25}, // seed 0: the run's
		Journal:     journalConfig{Sync: "iteration"},
	}
}

// data is the data section with its seed resolved: data.seed 0 draws the
// dataset (and its train/test split) from the run's seed, so that runs of
// different seeds see different data, as repeated experiments do; a
// nonzero data.seed fixes the dataset across runs.
func (c trainConfig) data() loop.DataConfig {
	d := c.Data
	if d.Seed == 0 {
		d.Seed = c.Seed
	}
	return d
}

// validate reports every problem of the config, each naming its key.
func (c trainConfig) validate() error {
	errs := []error{c.TrainConfig.Validate(), loop.ValidateData(c.Data)}
	if err := c.Safety.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := checkRunName(c.Name); err != nil {
		errs = append(errs, err)
	}
	for key, sec := range map[string]map[string]any{"blackbox": c.BlackBox, "ideal_blackbox": c.IdealBlackBox} {
		if key == "ideal_blackbox" && len(sec) == 0 {
			continue
		}
		if k, _ := sec["kind"].(string); k == "" {
			errs = append(errs, fmt.Errorf("%s.kind: missing (known kinds: %v)", key, insitu.Kinds()))
		} else if !insitu.IsRegistered(k) {
			errs = append(errs, fmt.Errorf("%s.kind: unknown kind %q (known kinds: %v)", key, k, insitu.Kinds()))
		}
	}
	switch c.Journal.Sync {
	case "iteration", "query":
	default:
		errs = append(errs, fmt.Errorf("journal.sync: %q: want iteration or query", c.Journal.Sync))
	}
	return errors.Join(errs...)
}

// checkOffline checks the black boxes' keys and the safety section
// against the box's coordinates and outputs without opening any device.
func (c trainConfig) checkOffline(ctx context.Context, file string) error {
	if _, err := checkOffline(ctx, file, c.BlackBox, c.Safety, nil); err != nil {
		return err
	}
	if len(c.IdealBlackBox) > 0 {
		if _, err := insitu.Describe(ctx, params(c.IdealBlackBox, file, "ideal_blackbox")); err != nil {
			return err
		}
	}
	return nil
}

// newBox builds the box of one config section from the registry.
func newBox(ctx context.Context, sec map[string]any, file, prefix string) (insitu.BlackBox, error) {
	kind, _ := sec["kind"].(string)
	values := map[string]any{}
	for k, v := range sec {
		if k != "kind" {
			values[k] = v
		}
	}
	return insitu.New(ctx, insitu.Params{Kind: kind, Values: values, File: file, Prefix: prefix})
}

// trainParts are the unguarded boxes and the data of a training.
type trainParts struct {
	box, ideal insitu.BlackBox
	du         int
	data       loop.TrainData
}

// build makes the boxes and the dataset; file names the config in errors.
func (c trainConfig) build(ctx context.Context, file string) (trainParts, error) {
	var p trainParts
	var err error
	if p.box, err = newBox(ctx, c.BlackBox, file, "blackbox"); err != nil {
		return p, err
	}
	if c.UsesIdeal() {
		if len(c.IdealBlackBox) > 0 {
			if p.ideal, err = newBox(ctx, c.IdealBlackBox, file, "ideal_blackbox"); err != nil {
				return p, err
			}
		} else if id, ok := p.box.(loop.Idealizer); ok {
			p.ideal = id.Ideal()
		} else {
			return p, prefixFile(file, fmt.Errorf("ideal_blackbox: missing, and %s has no ideal twin of its own (method %s needs one)", p.box.Spec().Name, c.Method))
		}
		if _, ok := p.ideal.(insitu.Differentiable); !ok {
			return p, prefixFile(file, fmt.Errorf("ideal_blackbox: %s has no exact VJP (method %s needs one)", p.ideal.Spec().Name, c.Method))
		}
	}
	p.du = c.Du
	if s, ok := p.box.(loop.Splitter); ok && p.du == 0 {
		p.du, _ = s.Split()
	}
	if p.du == 0 {
		return p, prefixFile(file, fmt.Errorf("du: missing, and %s does not say how many of its inputs are data", p.box.Spec().Name))
	}
	if p.data, err = loop.NewDataset(ctx, c.data()); err != nil {
		return p, prefixFile(file, err)
	}
	return p, nil
}

func newTrainCmd() *cobra.Command {
	var (
		out, resume string
		sets        []string
		quiet       bool
	)
	cmd := &cobra.Command{
		Use:   "train CONFIG.yaml | train --resume DIR",
		Short: "Train the physical parameters θ of a black box with input [u; θ] in situ, journaling every query",
		Long: `Trains θ by minibatch gradient descent where every forward pass is a query of
the (guarded) black box: softmax cross-entropy on its outputs (one score per
class), the backward pass through the method's VJP restricted to θ, Adam on θ,
projection into the bounds. Methods: insitu-gradpie and insitu-mae (an online
surrogate trained on every query), exact (the box's own VJP), pat (the ideal
twin's VJP), insilico (train on the ideal twin, deploy on the real box).
Accuracy and loss on the train and test sets are measured on the real box.

Writes DIR/journal.db, DIR/config.yaml and DIR/training.png and prints a
summary with the confusion matrix. 'insitu train --resume DIR' continues an
interrupted training without repeating a recorded query.`,
		Args: cobra.RangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			cfg := defaultTrainConfig()
			if resume != "" {
				if len(args) > 0 {
					return errors.New("train --resume DIR takes no CONFIG: the config is the journal's")
				}
				return resumeTrain(cmd, resume, quiet)
			}
			if len(args) != 1 {
				return errors.New("train: want CONFIG.yaml (or --resume DIR)")
			}
			file := args[0]
			bind := map[string]string{"seed": "seed", "method": "method", "epochs": "epochs"}
			if err := loadConfig(file, cmd.Flags(), bind, sets, &cfg); err != nil {
				return err
			}
			if err := cfg.validate(); err != nil {
				return prefixFile(file, err)
			}
			if err := cfg.checkOffline(ctx, file); err != nil {
				return err
			}
			out, err := runDir(out, file, cfg.Name, cfg.Method, cfg.Seed, "insitu train --resume")
			if err != nil {
				return err
			}
			release, resolved, err := claimRunDir(out, cfg)
			if err != nil {
				return err
			}
			defer release()
			parts, err := cfg.build(ctx, file)
			if err != nil {
				return err
			}
			kind, _ := cfg.BlackBox["kind"].(string)
			j, err := journal.Create(out, journal.Meta{
				Version: version, Method: cfg.Method, Kind: kind, Seed: cfg.Seed, Direction: journal.Maximize,
			}, resolved, journal.WithSync(cfg.Journal.policy()))
			if err != nil {
				return err
			}
			defer j.Close()
			if err := writeConfigCopy(out, resolved); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "train %s: %s on %s, %d train / %d test samples, journal %s\n",
				filepath.Base(out), cfg.Method, kind, parts.data.Train.Len(), parts.data.Test.Len(), j.Path())
			return executeTrain(ctx, cmd, cfg, out, j, parts, quiet)
		},
	}
	cmd.Flags().StringVarP(&out, "out", "o", "", "run directory (default runs/NAME-METHOD-sSEED-TIME)")
	cmd.Flags().StringVar(&resume, "resume", "", "continue the interrupted training in DIR")
	cmd.Flags().StringArrayVar(&sets, "set", nil, "override a config key: --set key=value (repeatable)")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "no progress bar")
	cmd.Flags().Uint64("seed", 0, "the training's seed (overrides seed)")
	cmd.Flags().String("method", "", strings.Join(loop.TrainMethods(), ", ")+" (overrides method)")
	cmd.Flags().Int("epochs", 0, "epochs (overrides epochs)")
	addServeFlags(cmd)
	return cmd
}

// executeTrain trains behind the guard, records how it ended, and writes
// the plot and the summary.
func executeTrain(ctx context.Context, cmd *cobra.Command, cfg trainConfig, out string, j *journal.Journal, parts trainParts, quiet bool) error {
	var res *loop.TrainResult
	defer closeBox(parts.box)
	if len(cfg.IdealBlackBox) > 0 { // built from its own section, not borrowed from the box
		defer closeBox(parts.ideal)
	}
	ctx, con, err := startConsole(ctx, cmd, out, trainInfo(cfg, out), parts.box.Spec())
	if err != nil {
		return err
	}
	defer con.close()
	kind, _ := cfg.BlackBox["kind"].(string)
	setup := guardSetup{
		facts: &runFacts{kind: kind, safety: cfg.Safety, objective: journal.Objective{Direction: journal.Maximize}, du: parts.du},
		stop: func() string {
			if res == nil {
				return ""
			}
			return res.Stop
		},
	}
	guard, err := guardedWith(ctx, cmd, parts.box, cfg.Safety, j, "insitu train --resume "+out, setup, func(ctx context.Context, guard *safety.Guard) error {
		con.watch(guard)
		p := loop.TrainProblem{Box: con.wrap(guard), Du: parts.du, Ideal: parts.ideal}
		if d, ok := guard.Differentiable(); ok {
			p.Exact = d
		}
		if d, ok := parts.ideal.(insitu.Differentiable); ok {
			p.IdealExact = d
		}
		bar := newTrainProgress(cmd.ErrOrStderr(), cfg, quiet)
		defer bar.finish()
		var err error
		res, err = loop.Train(ctx, cfg.TrainConfig, p, parts.data, j, bar.update)
		return err
	})
	if res != nil && len(res.Epochs) > 0 && guard != nil {
		res.Stop = stopLine(res.Stop, err)
		if werr := writeTrainOutputs(cmd.OutOrStdout(), out, cfg, res, guard.Counters()); werr != nil {
			err = errors.Join(err, werr)
		}
	}
	return err
}

// writeTrainOutputs writes DIR/training.png and prints the summary.
func writeTrainOutputs(w io.Writer, out string, cfg trainConfig, res *loop.TrainResult, c safety.Counters) error {
	png := filepath.Join(out, "training.png")
	f, err := os.Create(png)
	if err != nil {
		return err
	}
	err = plotTraining(f, fmt.Sprintf("%s: %s, seed %d", filepath.Base(out), cfg.Method, cfg.Seed), res.Epochs)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", png, err)
	}
	last := res.Epochs[len(res.Epochs)-1]
	fmt.Fprintf(w, "method %s, %d epochs, %d queries to the black box (%d replayed from the journal, %d remeasured, %d retried after a fault), stop: %s\n",
		cfg.Method, last.Epoch, res.Queries, res.Replayed, res.Remeasured, res.Retried, res.Stop)
	if res.Restored > 0 {
		fmt.Fprintf(w, "resumed from the checkpoint of epoch %d\n", res.Restored)
	}
	fmt.Fprintf(w, "initial: train accuracy %.4f, test accuracy %.4f (loss %.4g)\n", res.Epochs[0].TrainAcc, res.Epochs[0].TestAcc, res.Epochs[0].TestLoss)
	fmt.Fprintf(w, "final:   train accuracy %.4f, test accuracy %.4f (loss %.4g), measured on the black box\n", last.TrainAcc, last.TestAcc, last.TestLoss)
	fmt.Fprintf(w, "θ = %.5g\n", res.Theta)
	if len(res.Confusion) > 0 {
		fmt.Fprintln(w, "confusion matrix (test set; rows: true class, columns: predicted):")
		for i, row := range res.Confusion {
			fmt.Fprintf(w, "  %3d |", i)
			for _, v := range row {
				fmt.Fprintf(w, " %5d", v)
			}
			fmt.Fprintln(w)
		}
	}
	fmt.Fprintf(w, "guard: %d passed, %d rejected, %d clamped, %d ramp steps, %d trips, %d safe-state calls; %d steps projected into the θ box\n",
		c.Passed, c.RejectedTotal(), c.Clamped, c.RampSteps, c.Trips, c.SafeStates, res.Projected)
	fmt.Fprintf(w, "wrote %s/journal.db, %s\n", out, png)
	return nil
}

// plotTraining draws loss (top) and accuracy (bottom) per epoch, train and
// test, as measured on the black box.
func plotTraining(w io.Writer, title string, eps []loop.EpochMetrics) error {
	series := func(f func(loop.EpochMetrics) float64) plotter.XYs {
		var xy plotter.XYs
		for _, m := range eps {
			if v := f(m); !math.IsNaN(v) && !math.IsInf(v, 0) {
				xy = append(xy, plotter.XY{X: float64(m.Epoch), Y: v})
			}
		}
		return xy
	}
	type curve struct {
		label string
		col   color.Color
		dash  bool
		f     func(loop.EpochMetrics) float64
	}
	blue, orange := color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}, color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff}
	panels := []struct {
		ylabel string
		curves []curve
	}{
		{"cross-entropy loss", []curve{
			{"train (minibatches)", blue, true, func(m loop.EpochMetrics) float64 { return m.TrainLoss }},
			{"train", blue, false, func(m loop.EpochMetrics) float64 { return m.TrainEval }},
			{"test", orange, false, func(m loop.EpochMetrics) float64 { return m.TestLoss }},
		}},
		{"accuracy", []curve{
			{"train", blue, false, func(m loop.EpochMetrics) float64 { return m.TrainAcc }},
			{"test", orange, false, func(m loop.EpochMetrics) float64 { return m.TestAcc }},
		}},
	}
	plots := [][]*plot.Plot{{}, {}}
	for i, pn := range panels {
		p := plot.New()
		if i == 0 {
			p.Title.Text = title
		}
		p.X.Label.Text = "epoch"
		p.Y.Label.Text = pn.ylabel
		for _, c := range pn.curves {
			xy := series(c.f)
			if len(xy) == 0 {
				continue
			}
			line, err := plotter.NewLine(xy)
			if err != nil {
				return err
			}
			line.Color, line.Width = c.col, vg.Points(1.5)
			if c.dash {
				line.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
			}
			p.Add(line)
			p.Legend.Add(c.label, line)
		}
		if i == 1 {
			p.Y.Min, p.Y.Max = 0, 1
			p.Legend.Top = false
		} else {
			p.Legend.Top = true
		}
		p.Add(plotter.NewGrid())
		plots[i] = []*plot.Plot{p}
	}
	img := vgimg.New(9*vg.Inch, 8*vg.Inch)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 2, Cols: 1, PadY: vg.Millimeter * 4, PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2,
		PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 2}
	canvases := plot.Align(plots, tiles, dc)
	for i := range plots {
		plots[i][0].Draw(canvases[i][0])
	}
	_, err := vgimg.PngCanvas{Canvas: img}.WriteTo(w)
	return err
}

// trainProgress is the progress bar of a training: epochs, loss, accuracies.
type trainProgress struct {
	bar *progressbar.ProgressBar
}

func newTrainProgress(w io.Writer, cfg trainConfig, quiet bool) *trainProgress {
	if quiet {
		return &trainProgress{}
	}
	return &trainProgress{bar: progressbar.NewOptions(cfg.Epochs,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(cfg.Method),
		progressbar.OptionShowCount(),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
	)}
}

func (p *trainProgress) update(pr loop.TrainProgress) {
	if p.bar == nil {
		return
	}
	desc := trainDescription(pr.Metrics)
	if pr.Replayed > 0 {
		desc += fmt.Sprintf("  (%d replayed)", pr.Replayed)
	}
	_ = p.bar.Set(min(pr.Epoch, pr.Epochs))
	p.bar.Describe(desc)
}

// trainDescription is the progress bar's text for an epoch: the loss of
// its minibatches (at epoch 0, before any step, the loss over the training
// set), and the accuracies when the epoch was evaluated.
func trainDescription(m loop.EpochMetrics) string {
	var b strings.Builder
	fmt.Fprintf(&b, "epoch %d", m.Epoch)
	switch {
	case !math.IsNaN(m.TrainLoss):
		fmt.Fprintf(&b, "  loss %.4g", m.TrainLoss)
	case !math.IsNaN(m.TrainEval):
		fmt.Fprintf(&b, "  loss %.4g (training set, before the first step)", m.TrainEval)
	}
	if !math.IsNaN(m.TrainAcc) {
		fmt.Fprintf(&b, "  train %.3f", m.TrainAcc)
	}
	if !math.IsNaN(m.TestAcc) {
		fmt.Fprintf(&b, "  test %.3f", m.TestAcc)
	}
	fmt.Fprintf(&b, "  queries %d", m.Queries)
	return b.String()
}

func (p *trainProgress) finish() {
	if p.bar != nil {
		_ = p.bar.Finish()
	}
}

// resumeTrain continues the interrupted training in dir with the config its
// journal holds.
func resumeTrain(cmd *cobra.Command, dir string, quiet bool) error {
	if nothingToDo(cmd, dir) {
		return nil
	}
	ctx := cmd.Context()
	release, err := lockRun(dir)
	if err != nil {
		return err
	}
	defer release()
	cfg := defaultTrainConfig()
	j, where, err := reopen(ctx, dir, &cfg)
	if err != nil {
		return err
	}
	defer j.Close()
	if err := budgetLeft(ctx, dir, j, cfg.Safety); err != nil {
		return err
	}
	if err := cfg.checkOffline(ctx, where); err != nil {
		return err
	}
	parts, err := cfg.build(ctx, where)
	if err != nil {
		return err
	}
	if err := j.SetStatus(ctx, journal.RunRunning); err != nil {
		closeBox(parts.box)
		return err
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "resuming %s: %s\n", dir, cfg.Method)
	return executeTrain(ctx, cmd, cfg, dir, j, parts, quiet)
}
