package main

import (
	"errors"
	"fmt"

	"github.com/insitu-lab/insitu"
	"github.com/insitu-lab/insitu/loop"
	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"
)

func newConfigCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Check configurations, and list every config key with its default, unit and meaning"}
	var sets []string
	check := &cobra.Command{
		Use:   "check CONFIG.yaml",
		Short: "Print the resolved config, or every error found (each naming the key and the file); opens no device",
		Long: `Resolves CONFIG.yaml with the defaults, INSITU_* variables and --set, and
checks everything a run checks before it touches a device: every key and
value, the black box's own keys, the safety section's coordinate and output
names and bounds against the black box's coordinates and outputs, and the
objective's outputs. It opens no device, port, bus or framebuffer and sends
nothing to any instrument: a rig's coordinates and outputs come from its
config. What only the devices can tell (that they answer, their identity,
the limits they accept) is checked by 'insitu probe --config CONFIG.yaml',
which opens them. A training config (one with data, epochs or
ideal_blackbox) is checked as 'insitu train' checks it, its dataset
included.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			file := args[0]
			cf, err := readConfigFile(file)
			if err != nil {
				return err
			}
			if cf.training() {
				return checkTrainConfig(cmd, cf, sets)
			}
			cfg := defaultRunConfig()
			src, err := cf.resolve(cmd.Flags(), nil, sets, &cfg)
			if src == nil {
				return err
			}
			// The black box's keys, and the safety and objective names
			// against its coordinates and outputs, without opening any
			// device (the instrument may be in use by a run); checked even
			// when other keys have problems, so that one pass finds them
			// all.
			if kind, _ := cfg.BlackBox["kind"].(string); insitu.IsRegistered(kind) {
				spec, cerr := checkOfflineAt(cmd.Context(), src, cfg.BlackBox, cfg.Safety, &cfg.Objective)
				err = mergeProblems(err, cerr)
				if d := spec.In.Dim(); d > 0 {
					if probs := cfg.InitProblems(spec.Name, d, 20); len(probs) > 0 {
						err = mergeProblems(err, src.explain(probs))
					}
				}
			}
			if err != nil {
				return err
			}
			b, err := yaml.Marshal(cfg)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "# %s: valid; resolved with defaults, INSITU_* and --set\n%s", file, b)
			return nil
		},
	}
	check.Flags().StringArrayVar(&sets, "set", nil, "override a config key: --set key=value (repeatable)")
	cmd.AddCommand(check, newConfigKeysCmd())
	return cmd
}

// trainingDoc reports whether a YAML config document is an 'insitu train'
// one (loop.IsTrainingDoc).
func trainingDoc(doc []byte) (bool, error) { return loop.IsTrainingDoc(doc) }

// checkTrainConfig checks a training config as 'insitu train' does before
// it opens a device, builds its dataset (generated, nothing is fetched)
// and prints the resolved config.
func checkTrainConfig(cmd *cobra.Command, cf *configFile, sets []string) error {
	file := cf.name
	cfg := defaultTrainConfig()
	if _, err := cf.resolve(cmd.Flags(), nil, sets, &cfg); err != nil {
		return err
	}
	if err := cfg.validate(); err != nil {
		return prefixFile(file, err)
	}
	if err := cfg.checkOffline(cmd.Context(), file); err != nil {
		return err
	}
	if _, err := loop.NewDataset(cmd.Context(), cfg.data()); err != nil {
		return prefixFile(file, err)
	}
	b, err := yaml.Marshal(cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "# %s: valid training config; resolved with defaults, INSITU_* and --set\n%s", file, b)
	return nil
}

// mergeProblems joins the problems of two checks of one config, leaving
// out those of more at a key a problem of first already names (a value
// that did not decode, checked again), in the order of their lines.
func mergeProblems(first, more error) error {
	a, b := leaves(first), leaves(more)
	var keyed []*insitu.KeyError
	var other []error
	seen := func(k string) bool {
		for _, e := range keyed {
			if e.Key != "" && k != "" && (underKey(k, e.Key) || underKey(e.Key, k)) {
				return true
			}
		}
		return false
	}
	for i, e := range append(a, b...) {
		ke, ok := e.(*insitu.KeyError)
		switch {
		case !ok:
			other = append(other, e)
		case i >= len(a) && seen(ke.Key):
		default:
			keyed = append(keyed, ke)
		}
	}
	return errors.Join(joinProblems(keyed), errors.Join(other...))
}

// leaves flattens joined errors.
func leaves(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, leaves(e)...)
		}
		return out
	}
	return []error{err}
}
