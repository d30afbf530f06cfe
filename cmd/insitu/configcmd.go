package main

import (
	"fmt"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"
)

func newConfigCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Check run configurations"}
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
which opens them.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			file := args[0]
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
	cmd.AddCommand(check)
	return cmd
}
