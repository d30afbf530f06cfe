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
		Short: "Print the resolved config, or every error found (each naming the key and the file)",
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
			// Building the black box and the objective checks their keys too.
			if _, _, _, err := cfg.build(cmd.Context(), file); err != nil {
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
