package main

import (
	"fmt"
	"os"

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
			train, err := isTrainConfig(file)
			if err != nil {
				return err
			}
			if train {
				return checkTrainConfig(cmd, file, sets)
			}
			cfg := defaultRunConfig()
			if err := loadConfig(file, cmd.Flags(), nil, sets, &cfg); err != nil {
				return err
			}
			if err := cfg.validate(); err != nil {
				return prefixFile(file, err)
			}
			// The black box's keys, and the safety and objective names
			// against its coordinates and outputs, without opening any
			// device: the instrument may be in use by a run.
			if _, err := checkOffline(cmd.Context(), file, cfg.BlackBox, cfg.Safety, &cfg.Objective); err != nil {
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

// isTrainConfig reports whether file is an 'insitu train' config.
func isTrainConfig(file string) (bool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return false, err
	}
	train, err := trainingDoc(b)
	if err != nil {
		return false, fmt.Errorf("%s: %w", file, err)
	}
	return train, nil
}

// trainingDoc reports whether a YAML config document is an 'insitu train'
// one (loop.IsTrainingDoc).
func trainingDoc(doc []byte) (bool, error) { return loop.IsTrainingDoc(doc) }

// checkTrainConfig checks a training config as 'insitu train' does before
// it opens a device, builds its dataset (generated, nothing is fetched)
// and prints the resolved config.
func checkTrainConfig(cmd *cobra.Command, file string, sets []string) error {
	cfg := defaultTrainConfig()
	if err := loadConfig(file, cmd.Flags(), nil, sets, &cfg); err != nil {
		return err
	}
	if err := cfg.validate(); err != nil {
		return prefixFile(file, err)
	}
	if err := cfg.checkOffline(cmd.Context(), file); err != nil {
		return err
	}
	if _, err := loop.NewDataset(cmd.Context(), cfg.Data); err != nil {
		return prefixFile(file, err)
	}
	b, err := yaml.Marshal(cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "# %s: valid training config; resolved with defaults, INSITU_* and --set\n%s", file, b)
	return nil
}
