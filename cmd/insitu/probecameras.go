package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/insitu-lab/insitu/instruments/camera"
)

// probeCameras lists the GenICam cameras Aravis finds, one a line, with
// what a camera part's device key accepts (ID, address or serial).
func probeCameras(ctx context.Context, out io.Writer, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, max(timeout, 3*time.Second)) // discovery takes about a second
	defer cancel()
	devs, err := camera.ListGenICam(ctx)
	if err != nil {
		return fmt.Errorf("probe --cameras: %w", err)
	}
	if len(devs) == 0 {
		fmt.Fprintln(out, "no GenICam cameras found (GigE Vision: same subnet, firewall open to UDP 3956; USB3 Vision: udev rules for the vendor)")
		return nil
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tVENDOR\tMODEL\tSERIAL\tADDRESS\tPROTOCOL")
	for _, d := range devs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", d.ID, d.Vendor, d.Model, d.Serial, d.Address, d.Protocol)
	}
	return tw.Flush()
}
