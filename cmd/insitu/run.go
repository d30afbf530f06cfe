package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"github.com/insitu-lab/insitu/surrogate"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/insitu-lab/insitu"
	"github.com/insitu-lab/insitu/loop"
	"github.com/insitu-lab/insitu/loop/journal"
	"github.com/insitu-lab/insitu/loop/report"
	"github.com/insitu-lab/insitu/safety"
)

// version is written into every journal.
const version = "insitu 0.1.0-dev"

func newRunCmd() *cobra.Command {
	var (
		out    string
		sets   []string
		quiet  bool
		dryRun bool
		timing string
	)
	cmd := &cobra.Command{
		Use:   "run CONFIG.yaml",
		Short: "Optimize a black box (instrument or twin) behind the safety guard, journaling every query",
		Long: `Runs the configured method (gradpie, mae, mse, exact, random, spsa, fd,
cmaes, bayopt, turbo) against the configured black box. Every query passes the safety guard
and is journaled in DIR/journal.db before the device is touched; the run can
be continued with 'insitu resume DIR' after a crash or Ctrl-C.

The first Ctrl-C (or SIGTERM) lets the query in flight finish, journals it,
puts the device in its safe state and exits; a second one goes to the safe
state at once.

Settings come from the defaults, then CONFIG.yaml, then INSITU_* environment
variables (INSITU_SURROGATE_K=10), then flags, then --set key=value.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			file := args[0]
			cfg := defaultRunConfig()
			bind := map[string]string{"seed": "seed", "method": "method", "iterations": "iterations"}
			if err := loadConfig(file, cmd.Flags(), bind, sets, &cfg); err != nil {
				return err
			}
			if err := cfg.validate(); err != nil {
				return prefixFile(file, err)
			}
			if dryRun {
				return runDry(cmd, file, cfg, out, timing, quiet)
			}
			if timing != "" {
				return errors.New("--timing goes with --dry-run: it gives the hardware bill the device time a bench run measured")
			}
			ctx := cmd.Context()
			// Everything that can be checked without a device is checked
			// before a run directory exists or a device is opened.
			if _, err := checkOffline(ctx, file, cfg.BlackBox, cfg.Safety, &cfg.Objective); err != nil {
				return err
			}
			out, err := runDir(out, file, cfg.Name, cfg.Method, cfg.Seed, "insitu resume")
			if err != nil {
				return err
			}
			release, resolved, err := claimRunDir(out, cfg)
			if err != nil {
				return err
			}
			defer release()
			kind, _ := cfg.BlackBox["kind"].(string)
			box, obj, dir, err := cfg.build(ctx, file)
			if err != nil {
				return err
			}
			j, err := journal.Create(out, journal.Meta{
				Version: version, Method: cfg.Method, Kind: kind, Seed: cfg.Seed, Direction: journal.Direction(dir),
			}, resolved, journal.WithSync(cfg.Journal.policy()))
			if err != nil {
				return err
			}
			defer j.Close()
			if err := writeConfigCopy(out, resolved); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "run %s: %s on %s, journal %s\n", filepath.Base(out), cfg.Method, kind, j.Path())
			return execute(ctx, cmd, cfg, out, j, runParts{box: box, obj: obj, dir: dir}, quiet)
		},
	}
	cmd.Flags().StringVarP(&out, "out", "o", "", "run directory (default runs/NAME-METHOD-sSEED-TIME)")
	cmd.Flags().StringArrayVar(&sets, "set", nil, "override a config key: --set key=value (repeatable)")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "no progress bar")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "run on the rig's twins, opening no device, into DIR-dryrun, and write the hardware bill DIR-dryrun/bill.json")
	cmd.Flags().StringVar(&timing, "timing", "", "with --dry-run: the run directory of a run on the bench whose journaled query timing the bill uses for the device time")
	cmd.Flags().Uint64("seed", 0, "the run's seed (overrides seed)")
	cmd.Flags().String("method", "", "gradpie, mae, mse, exact, random, spsa, fd, cmaes, bayopt or turbo (overrides method)")
	cmd.Flags().Int("iterations", 0, "iterations T (overrides iterations)")
	addServeFlags(cmd)
	return cmd
}

func newResumeCmd() *cobra.Command {
	var quiet bool
	cmd := &cobra.Command{
		Use:   "resume DIR",
		Short: "Continue an interrupted run from its journal without repeating a recorded query",
		Long: `Replays the run from its journal: queries whose results are recorded are
served from the journal, a query that was started but not recorded is measured
again (and marked remeasured), and the run continues with new queries from
there. With a seeded twin the finished run equals an uninterrupted one.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			out := args[0]
			if nothingToDo(cmd, out) {
				return nil
			}
			if isTraining(cmd, out) {
				return resumeTrain(cmd, out, quiet)
			}
			if kind, ok := calibrationRun(cmd, out); ok {
				return resumeCalibration(cmd, out, kind, quiet)
			}
			ctx := cmd.Context()
			release, err := lockRun(out)
			if err != nil {
				return err
			}
			defer release()
			cfg := defaultRunConfig()
			j, where, err := reopen(ctx, out, &cfg)
			if err != nil {
				return err
			}
			defer j.Close()
			if err := budgetLeft(ctx, out, j, cfg.Safety); err != nil {
				return err
			}
			if _, err := checkOffline(ctx, where, cfg.BlackBox, cfg.Safety, &cfg.Objective); err != nil {
				return err
			}
			box, obj, dir, err := cfg.build(ctx, where)
			if err != nil {
				return err
			}
			if err := j.SetStatus(ctx, journal.RunRunning); err != nil {
				closeBox(box)
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "resuming %s: %s\n", out, cfg.Method)
			return execute(ctx, cmd, cfg, out, j, runParts{box: box, obj: obj, dir: dir}, quiet)
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "no progress bar")
	addServeFlags(cmd)
	return cmd
}

// nothingToDo reports whether the run in dir has finished, and says so: a
// resume of a finished run opens no device and touches nothing, its
// journal and plots included. Anything else (no journal, a damaged one) is
// for the resume to report.
func nothingToDo(cmd *cobra.Command, dir string) bool {
	j, err := journal.Peek(dir)
	if err != nil {
		return false
	}
	defer j.Close()
	m, err := j.Meta(cmd.Context())
	if err != nil || m.Status != journal.RunFinished {
		return false
	}
	fmt.Fprintf(cmd.OutOrStdout(), "%s: the run finished (stop: %s): nothing to do\n", dir, cmp.Or(m.Stop, "not recorded"))
	return true
}

// reopen opens the journal in dir to continue its run: cfg (holding the
// defaults) gets the journal's config, validated, with every executable it
// names checked against the current environment. It refuses, before any
// device is opened, a run whose DIR/config.yaml says something else than
// the journal, and one whose checkpoint it could not continue from. The
// status is left as it was: the caller marks the run running once its
// devices are open. where names the config in errors.
func reopen(ctx context.Context, dir string, cfg interface{ validate() error }) (*journal.Journal, string, error) {
	j, err := journal.Open(dir)
	if err != nil {
		return nil, "", err
	}
	where := j.Path() + " (config)"
	err = func() error {
		data, err := j.Config(ctx)
		if err != nil {
			return err
		}
		if err := sameConfig(dir, data); err != nil {
			return err
		}
		if err := loop.CheckCheckpoint(ctx, j); err != nil {
			return fmt.Errorf("%s: %w: the run cannot continue from it and is left as it was", j.Path(), err)
		}
		if c, ok := cfg.(interface{ precision() *surrogate.Precision }); ok {
			// A config that does not name the precision resumes in the
			// checkpoint's, whatever this release's default is.
			p, found, err := loop.CheckpointPrecision(ctx, j)
			if err != nil {
				return fmt.Errorf("%s: %w", j.Path(), err)
			}
			if found {
				*c.precision() = p
			}
		}
		if err := resolveConfig(where, data, nil, nil, nil, cfg); err != nil {
			return err
		}
		if err := cfg.validate(); err != nil {
			return prefixFile(where, err)
		}
		var top map[string]any
		if err := yaml.Unmarshal(data, &top); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		for _, key := range []string{"blackbox", "ideal_blackbox"} {
			if box, ok := top[key].(map[string]any); ok {
				if err := checkStoredExecutables(where, box); err != nil {
					return err
				}
			}
		}
		return nil
	}()
	if err != nil {
		j.Close()
		return nil, "", err
	}
	return j, where, nil
}

// runDir is the directory of a new run: out, or by default
// runs/NAME-METHOD-sSEED-TIME with NAME the config's name or file's base.
// It refuses a directory that already holds a run, naming the command
// (resume) that continues it.
func runDir(out, file, name, method string, seed uint64, resume string) (string, error) {
	if out == "" {
		if name == "" {
			name = strings.TrimSuffix(filepath.Base(file), filepath.Ext(file))
		}
		out = filepath.Join("runs", fmt.Sprintf("%s-%s-s%d-%s", name, method, seed, time.Now().Format("20060102-150405")))
	}
	if _, err := os.Stat(filepath.Join(out, journal.FileName)); err == nil {
		return "", fmt.Errorf("%s already holds a run: continue it with '%s %s' or choose another --out", out, resume, out)
	}
	if err := checkEmpty(out); err != nil {
		return "", err
	}
	return out, nil
}

type runParts struct {
	box insitu.BlackBox
	obj loop.Objective
	dir loop.Direction
}

// loopBody is what runs behind the guard: the loop on the guarded box
// (through the console), with a progress bar; its result goes to *res.
func loopBody(cmd *cobra.Command, cfg runConfig, j *journal.Journal, parts runParts, con *console, quiet bool, res **loop.Result) func(context.Context, *safety.Guard) error {
	return func(ctx context.Context, guard *safety.Guard) error {
		con.watch(guard)
		p := loop.Problem{Box: con.wrap(guard), Objective: parts.obj, Direction: parts.dir, Fidelity: fidelity{guard, con}}
		if d, ok := guard.Differentiable(); ok {
			p.Exact = d
		}
		bar := newRunProgress(cmd.ErrOrStderr(), cfg, quiet)
		defer bar.finish()
		var err error
		*res, err = loop.Run(ctx, cfg.Config, p, j, bar.update)
		return err
	}
}

// execute runs the loop behind the guard, records how it ended, and writes
// the plot and the summary.
func execute(ctx context.Context, cmd *cobra.Command, cfg runConfig, out string, j *journal.Journal, parts runParts, quiet bool) error {
	var res *loop.Result
	defer closeBox(parts.box)
	ctx, con, err := startConsole(ctx, cmd, out, runInfo(cfg, out), parts.box.Spec())
	if err != nil {
		return err
	}
	defer con.close()
	guard, err := guardedWith(ctx, cmd, parts.box, cfg.Safety, j, "insitu resume "+out, runSetup(cfg, parts, &res), loopBody(cmd, cfg, j, parts, con, quiet, &res))
	if res != nil && guard != nil {
		res.Stop = stopLine(res.Stop, err)
		if werr := writeRunOutputs(context.WithoutCancel(ctx), cmd.OutOrStdout(), out, cfg, res, guard.Counters()); werr != nil {
			err = errors.Join(err, werr)
		}
	}
	return err
}

// runSetup is what guardedWith needs of a run: its description's facts,
// and why it stopped once *res holds its result.
func runSetup(cfg runConfig, parts runParts, res **loop.Result) guardSetup {
	kind, _ := cfg.BlackBox["kind"].(string)
	return guardSetup{
		facts: &runFacts{kind: kind, safety: cfg.Safety, objective: journal.Objective{Kind: cfg.Objective.Kind, Direction: journal.Direction(parts.dir)}},
		stop: func() string {
			if *res == nil {
				return ""
			}
			return (*res).Stop
		},
	}
}

// stopLine is why a run stopped, for its summary and its journal: the
// loop's reason when it ended normally, else how it ended (interrupted or
// failed) and the error, on one line.
func stopLine(stop string, err error) string {
	if err == nil {
		return stop
	}
	return string(runStatus(err)) + ": " + oneLine(err.Error())
}

// oneLine joins the lines of a joined error.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", "; ")), " ")
}

// guardSetup is what a run, a training or a dry run adds to guarded.
type guardSetup struct {
	opts   []safety.Option    // more guard options (the dry run's clock)
	record func(safety.Event) // also given every event, when set
	safe   string             // what is in its safe state: "the device" by default
	facts  *runFacts          // the run's description is stored from these, when set
	stop   func() string      // why the body stopped when it returned no error, when set
}

// guardedWith runs body behind a guard on box whose events go to the
// journal, stores the run's description at its start (setup.facts),
// records in the journal how body ended and why, and on an interruption
// says that the device is safe and how to continue. Ctrl-C twice aborts
// the guard.
func guardedWith(ctx context.Context, cmd *cobra.Command, box insitu.BlackBox, sc safety.Config, j *journal.Journal, resume string,
	setup guardSetup, body func(context.Context, *safety.Guard) error) (*safety.Guard, error) {
	log := &eventLog{j: j}
	events := func(e safety.Event) {
		if setup.record != nil {
			setup.record(e)
		}
		if e.Kind == safety.KindSuspend || e.Kind == safety.KindResume {
			// A held run's progress stops: say why, and when it goes on.
			fmt.Fprintf(cmd.ErrOrStderr(), "\ninsitu: %s\n", e.Detail)
		}
		log.record(journal.EventRecord{Time: e.Time, Kind: string(e.Kind), Detail: e.Detail, Name: e.Name, Value: e.Value})
	}
	used, err := deviceQueriesUsed(ctx, j)
	if err != nil {
		return nil, err
	}
	opts := append([]safety.Option{safety.WithEvents(events), safety.WithDeviceQueriesUsed(used)}, setup.opts...)
	guard, err := safety.New(box, sc, opts...)
	if err != nil {
		_ = j.SetOutcome(context.WithoutCancel(ctx), journal.RunFailed, stopLine("", err))
		return nil, err
	}
	if setup.facts != nil {
		f := *setup.facts
		if f.config, err = j.Config(ctx); err != nil {
			return nil, err
		}
		warn := func(s string) { fmt.Fprintln(cmd.ErrOrStderr(), s) }
		if err := storeDescription(ctx, j, describe(ctx, guard.Spec(), box, f), warn); err != nil {
			return nil, err
		}
	}
	// The second Ctrl-C exits the process: safe state first, then the
	// journal says the run was interrupted, never running.
	setHardStop(func() {
		_ = guard.Abort()
		_ = j.SetOutcome(context.Background(), journal.RunInterrupted, "interrupted: a second interrupt put the device in its safe state at once")
	})
	defer setHardStop(nil)
	err = guard.Do(ctx, func(ctx context.Context) error { return body(ctx, guard) })
	if lerr := log.err(); lerr != nil {
		err = errors.Join(err, lerr)
	}
	status := runStatus(err)
	stop := ""
	if setup.stop != nil {
		stop = setup.stop()
	}
	if serr := j.SetOutcome(context.WithoutCancel(ctx), status, stopLine(stop, err)); serr != nil {
		err = errors.Join(err, serr)
	}
	if status == journal.RunInterrupted {
		fmt.Fprintf(cmd.ErrOrStderr(), "interrupted; %s is in its safe state. Continue with: %s\n", cmp.Or(setup.safe, "the device"), resume)
	}
	return guard, err
}

// runStatus is how a run that ended with err is recorded: interrupted
// (resumable) when it was stopped — Ctrl-C, STOP, a trip, an interlock,
// the watchdog, an abort, the model-fidelity band — failed otherwise.
func runStatus(err error) journal.RunStatus {
	switch {
	case err == nil:
		return journal.RunFinished
	case errors.Is(err, context.Canceled), errors.Is(err, safety.ErrTripped), errors.Is(err, safety.ErrInterlock),
		errors.Is(err, safety.ErrWatchdog), errors.Is(err, safety.ErrAborted), errors.Is(err, safety.ErrFidelity):
		return journal.RunInterrupted
	}
	return journal.RunFailed
}

// writeRunOutputs writes DIR/progress.png, DIR/surrogate.bin (surrogate
// methods) and prints the summary.
func writeRunOutputs(ctx context.Context, w io.Writer, out string, cfg runConfig, res *loop.Result, c safety.Counters) error {
	curve, err := report.Load(ctx, out)
	if err != nil {
		return err
	}
	png := filepath.Join(out, "progress.png")
	f, err := os.Create(png)
	if err != nil {
		return err
	}
	title := fmt.Sprintf("%s: %s, seed %d", filepath.Base(out), cfg.Method, cfg.Seed)
	err = report.PlotBestVsQueries(f, title, report.Summarize([]report.Curve{curve}), false)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", png, err)
	}
	if res.Model != nil {
		mf, err := os.Create(filepath.Join(out, "surrogate.bin"))
		if err != nil {
			return err
		}
		err = res.Model.Save(mf)
		if cerr := mf.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	var ctrl, box time.Duration
	for _, it := range res.Iterations {
		if it.Iteration > 0 {
			ctrl += it.Controller
			box += it.Box
		}
	}
	n := max(len(res.Iterations)-1, 1)
	fmt.Fprintf(w, "method %s, %d iterations, %d queries (%d replayed from the journal, %d remeasured, %d retried after a fault), stop: %s\n",
		cfg.Method, max(len(res.Iterations)-1, 0), res.Queries, res.Replayed, res.Remeasured, res.Retried, res.Stop)
	fmt.Fprintf(w, "best objective %.6g\n", res.Best.F)
	fmt.Fprintf(w, "time per iteration: controller %s, black box %s\n", (ctrl / time.Duration(n)).Round(time.Microsecond), (box / time.Duration(n)).Round(time.Microsecond))
	fmt.Fprintf(w, "guard: %d passed, %d rejected, %d clamped, %d ramp steps, %d trips, %d safe-state calls; %d steps projected into the box\n",
		c.Passed, c.RejectedTotal(), c.Clamped, c.RampSteps, c.Trips, c.SafeStates, res.Projected)
	fmt.Fprintf(w, "wrote %s/journal.db, %s\n", out, png)
	return nil
}

// runProgress is the progress bar of a run: iterations, queries, best
// objective, queries per second and time left.
type runProgress struct {
	bar   *progressbar.ProgressBar
	start time.Time
	last  int
}

func newRunProgress(w io.Writer, cfg runConfig, quiet bool) *runProgress {
	p := &runProgress{start: time.Now()}
	if quiet {
		return p
	}
	p.bar = progressbar.NewOptions(cfg.Iterations,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(cfg.Method),
		progressbar.OptionShowCount(),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
	)
	return p
}

func (p *runProgress) update(pr loop.Progress) {
	if p.bar == nil {
		return
	}
	qps := float64(pr.Queries) / math.Max(time.Since(p.start).Seconds(), 1e-9)
	desc := fmt.Sprintf("it %d  queries %d/%d  best %.5g  %.0f q/s", pr.Iteration, pr.Queries, pr.Budget, pr.Best, qps)
	if pr.Replayed > 0 {
		desc += fmt.Sprintf("  (%d replayed)", pr.Replayed)
	}
	_ = p.bar.Set(min(pr.Iteration, pr.Iterations))
	p.bar.Describe(desc)
}

func (p *runProgress) finish() {
	if p.bar != nil {
		_ = p.bar.Finish()
	}
}

// isTraining reports whether dir holds an `insitu train` run (trainingDoc
// of its journal's config), which resume hands to the training loop.
func isTraining(cmd *cobra.Command, dir string) bool {
	j, err := journal.Peek(dir)
	if err != nil {
		return false
	}
	defer j.Close()
	data, err := j.Config(cmd.Context())
	if err != nil {
		return false
	}
	train, err := trainingDoc(data)
	return err == nil && train
}

// calibrationRun reports whether dir holds an `insitu calibrate` run, and
// which calibration.
func calibrationRun(cmd *cobra.Command, dir string) (string, bool) {
	j, err := journal.OpenReadOnly(dir)
	if err != nil {
		return "", false
	}
	defer j.Close()
	m, err := j.Meta(cmd.Context())
	if err != nil {
		return "", false
	}
	return calibrationOf(m.Method)
}
