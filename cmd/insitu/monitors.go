package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/insitu-lab/insitu/drivers/x11"
)

// probeMonitors lists the monitors of an X display, for choosing an SLM's
// `display: {type: x11, output: …}`.
func probeMonitors(ctx context.Context, out io.Writer, display string) error {
	ms, err := x11.Monitors(ctx, display)
	if err != nil {
		return fmt.Errorf("probe --monitors: %w", err)
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tGEOMETRY\tPRIMARY\tOUTPUTS\tSLM")
	var free []string
	for _, m := range ms {
		prim, use := "", "yes"
		if m.Primary {
			prim = "yes"
		}
		if (x11.Selector{}).CoversDesktop(m, ms) {
			use = "desktop: needs allow_primary"
		} else {
			free = append(free, m.Name)
		}
		outs := strings.Join(m.Outputs, ",")
		if outs == "" {
			outs = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", m.Name, x11.FormatGeometry(m.Rect), prim, outs, use)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(free) > 0 {
		fmt.Fprintf(out, "\nan SLM part on %s: display: {type: x11, output: %s}\n", free[0], free[0])
	}
	return nil
}
