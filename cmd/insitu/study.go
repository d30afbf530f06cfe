package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/insitu-lab/insitu/loop/study"
)

func newStudyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "study",
		Short: "Measurements that need no optimizer run",
	}
	cmd.AddCommand(newGradientStudyCmd())
	return cmd
}

func newGradientStudyCmd() *cobra.Command {
	var (
		out   string
		sets  []string
		quiet bool
	)
	cmd := &cobra.Command{
		Use:   "gradient [CONFIG.yaml]",
		Short: "Compare surrogate VJPs (MAE vs GradPIE-kNN for each k) with a twin's exact VJP",
		Long: `Trains, for each setting, a base surrogate (MAE) and one locality-aware
surrogate (GradPIE-kNN) per k, all with the same architecture, init, optimizer
and epochs on the same training set, and reports on held-out points the
relative error and cosine similarity of their input VJPs against the twin's
exact VJP. Writes a table to stdout and gradient.csv, gradient.png and the
resolved config.yaml to --out.

Settings come from the defaults, then CONFIG.yaml, then INSITU_* environment
variables, then flags, then --set key=value (YAML values: --set ks=[1,5]).`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var file string
			if len(args) == 1 {
				file = args[0]
			}
			cfg := study.DefaultGradientConfig()
			bind := map[string]string{"epochs": "epochs", "seed": "seed", "test_points": "test-points", "workers": "workers"}
			if err := loadConfig(file, cmd.Flags(), bind, sets, &cfg); err != nil {
				return err
			}
			cfg.File = file
			if err := cfg.Validate(); err != nil {
				if file != "" {
					return fmt.Errorf("%s: %w", file, err)
				}
				return err
			}
			if err := os.MkdirAll(out, 0o755); err != nil {
				return err
			}
			resolved, err := yaml.Marshal(cfg)
			if err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(out, "config.yaml"), resolved, 0o644); err != nil {
				return err
			}
			progress := newStudyProgress(cmd, cfg, quiet)
			res, err := study.RunGradient(cmd.Context(), cfg, progress.update)
			progress.finish()
			if err != nil {
				return err
			}
			if err := res.WriteTable(cmd.OutOrStdout()); err != nil {
				return err
			}
			var csvBuf, pngBuf bytes.Buffer
			if err := res.WriteCSV(&csvBuf); err != nil {
				return err
			}
			if err := res.WritePNG(&pngBuf); err != nil {
				return fmt.Errorf("plot: %w", err)
			}
			csvPath, pngPath := filepath.Join(out, "gradient.csv"), filepath.Join(out, "gradient.png")
			if err := os.WriteFile(csvPath, csvBuf.Bytes(), 0o644); err != nil {
				return err
			}
			if err := os.WriteFile(pngPath, pngBuf.Bytes(), 0o644); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s and %s\n", csvPath, pngPath)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&out, "out", "o", "out/study-gradient", "directory for gradient.csv, gradient.png and config.yaml")
	f.StringArrayVar(&sets, "set", nil, "override a config key: --set key=value (repeatable)")
	f.Int("epochs", 0, "training epochs per model (overrides epochs)")
	f.Uint64("seed", 0, "seed for data, init and minibatches (overrides seed)")
	f.Int("test-points", 0, "held-out points (overrides test_points)")
	f.Int("workers", 0, "models trained at once; 0 = one per core (overrides workers)")
	f.BoolVarP(&quiet, "quiet", "q", false, "no progress bar")
	return cmd
}

// studyProgress renders one bar over every epoch of every model.
type studyProgress struct {
	bar *progressbar.ProgressBar
}

func newStudyProgress(cmd *cobra.Command, cfg study.GradientConfig, quiet bool) *studyProgress {
	if quiet {
		return &studyProgress{}
	}
	bar := progressbar.NewOptions(cfg.TotalEpochs(),
		progressbar.OptionSetWriter(cmd.ErrOrStderr()),
		progressbar.OptionSetDescription("training"),
		progressbar.OptionShowCount(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionThrottle(200*time.Millisecond),
		progressbar.OptionSetWidth(30),
		progressbar.OptionShowDescriptionAtLineEnd(),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(cmd.ErrOrStderr()) }),
	)
	return &studyProgress{bar: bar}
}

func (p *studyProgress) update(ev study.Progress) {
	if p.bar == nil || ev.Done {
		return
	}
	p.bar.Describe(fmt.Sprintf("%s %s loss %.4g", ev.Setting, ev.Model, ev.Loss))
	p.bar.Add(1)
}

func (p *studyProgress) finish() {
	if p.bar != nil {
		p.bar.Finish()
	}
}
