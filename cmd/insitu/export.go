package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/insitu-lab/insitu/loop/export"
	"github.com/insitu-lab/insitu/loop/journal"
)

func newExportCmd() *cobra.Command {
	var (
		format, out string
		unitsRow    bool
	)
	cmd := &cobra.Command{
		Use:   "export DIR... [--format csv|npy|netcdf|bluesky] [-o OUT]",
		Short: "Export runs with their names, units and metadata: CSV, NumPy .npy, NetCDF (xarray) or Bluesky documents",
		Long: `Writes a run's queries, iterations and safety events in a format other
tools read, with the names, units and roles of the inputs and outputs and
the run's metadata (method, seed, config, status, insitu version):

  csv      one row per query; inputs in:NAME, outputs out:NAME; to stdout,
           or to FILE with FILE's units beside it in FILE.units.csv
           (column, unit, role, description); --units-row puts the units
           in a second header row instead
  npy      x.npy, y.npy, objective.npy, query_id.npy and the names and
           units x_names.npy, x_units.npy, y_names.npy, y_units.npy in
           -o DIR (default DIR/npy)
  netcdf   a NetCDF classic file for xarray.open_dataset (default
           DIR/run.nc); several runs of one problem go into one dataset
           along a run dimension (-o FILE needed)
  bluesky  event-model documents as JSON lines ([name, doc] per line):
           start, a descriptor per stream (primary: the queries;
           iterations; safety), the events and stop; to stdout or -o FILE

A file is written whole or not at all.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			switch format {
			case "csv", "npy", "netcdf", "bluesky":
			default:
				return fmt.Errorf("--format %q: want csv, npy, netcdf or bluesky", format)
			}
			if len(args) > 1 && format != "netcdf" {
				return fmt.Errorf("--format %s exports one run directory (%d given); --format netcdf takes several of one problem", format, len(args))
			}
			var runs []*export.Run
			for _, dir := range args {
				r, err := export.Load(ctx, dir, func(ctx context.Context, j *journal.Journal) (journal.Description, error) {
					d, _, err := runDescription(ctx, j)
					return d, err
				})
				if err != nil {
					return err
				}
				runs = append(runs, r)
			}
			r := runs[0]
			if !r.Stored {
				fmt.Fprintf(cmd.ErrOrStderr(), "%s: the journal does not describe its variables; names and units come from describing its config with this build\n", r.Dir)
			}
			stdout := cmd.OutOrStdout()
			switch format {
			case "csv":
				if out == "" || out == "-" {
					return export.CSV(stdout, r, unitsRow)
				}
				if err := export.WriteAtomic(out, func(w io.Writer) error { return export.CSV(w, r, unitsRow) }); err != nil {
					return err
				}
				if !unitsRow {
					units := strings.TrimSuffix(out, filepath.Ext(out)) + ".units.csv"
					if err := export.WriteAtomic(units, func(w io.Writer) error { return export.Units(w, r) }); err != nil {
						os.Remove(out)
						return err
					}
					fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s (%d queries) and its units %s\n", out, len(r.Queries), units)
					return nil
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s (%d queries)\n", out, len(r.Queries))
				return nil
			case "npy":
				if out == "" {
					out = filepath.Join(r.Dir, "npy")
				}
				if err := export.NPY(out, r); err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "wrote .npy files to %s\n", out)
				return nil
			case "netcdf":
				if out == "" {
					if len(runs) > 1 {
						return fmt.Errorf("%d runs: name the dataset with -o FILE.nc", len(runs))
					}
					out = filepath.Join(r.Dir, "run.nc")
				}
				f, err := export.NetCDF(runs)
				if err != nil {
					return err
				}
				version, err := f.Version()
				if err != nil {
					return err
				}
				if err := export.WriteAtomic(out, func(w io.Writer) error {
					_, err := f.WriteTo(w)
					return err
				}); err != nil {
					return err
				}
				n := 0
				for _, r := range runs {
					n += len(r.Queries)
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s (NetCDF CDF-%d, %d run(s), %d queries): xarray.open_dataset(%q)\n", out, version, len(runs), n, out)
				return nil
			}
			// bluesky
			if out == "" || out == "-" {
				w := bufio.NewWriter(stdout)
				if err := export.Bluesky(w, r); err != nil {
					return err
				}
				return w.Flush()
			}
			if err := export.WriteAtomic(out, func(w io.Writer) error { return export.Bluesky(w, r) }); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s (event-model documents, one [name, doc] per line)\n", out)
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "csv", "csv, npy, netcdf or bluesky")
	cmd.Flags().StringVarP(&out, "out", "o", "", "output file (csv, netcdf, bluesky) or directory (npy)")
	cmd.Flags().BoolVar(&unitsRow, "units-row", false, "csv: the units in a second header row instead of FILE.units.csv")
	return cmd
}
