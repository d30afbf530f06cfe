// Command insitu drives black boxes — instruments or their software twins —
// with gradient-based optimization through locality-aware surrogates.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/spf13/cobra"

	_ "github.com/insitu-lab/insitu/instruments/rig"   // registers kind rig (SLM, camera, DAQ, SMU, power meter parts)
	_ "github.com/insitu-lab/insitu/simulators/cnon"   // registers kind cnon
	_ "github.com/insitu-lab/insitu/simulators/opamp"  // registers kind opamp
	_ "github.com/insitu-lab/insitu/simulators/optics" // registers kind owms
	_ "github.com/insitu-lab/insitu/simulators/pnn"    // registers kinds pnn-cnon, pnn-optical and data kinds moons, blobs, circles
)

// errInterrupted is the cause of the context a signal cancels.
var errInterrupted = errors.New("interrupted")

var (
	hardMu   sync.Mutex
	hardStop func()
)

// setHardStop registers what a second Ctrl-C does before the process
// exits: put the device in its safe state at once.
func setHardStop(f func()) {
	hardMu.Lock()
	hardStop = f
	hardMu.Unlock()
}

// handleSignals cancels the returned context on the first SIGINT or
// SIGTERM, which lets the query in flight finish and be journaled; on the
// second it runs the hard stop and exits.
func handleSignals() (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(context.Background())
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-sig
		fmt.Fprintf(os.Stderr, "\ninsitu: %v: finishing the query in flight, then safe state (again to stop at once)\n", s)
		cancel(errInterrupted)
		s = <-sig
		fmt.Fprintf(os.Stderr, "insitu: %v again: safe state now\n", s)
		hardMu.Lock()
		f := hardStop
		hardMu.Unlock()
		if f != nil {
			f()
		}
		os.Exit(130)
	}()
	return ctx, func() { signal.Stop(sig); cancel(nil) }
}

func main() {
	ctx, stop := handleSignals()
	err := newRoot().ExecuteContext(ctx)
	stop()
	if perr := stopProfile(); perr != nil && err == nil {
		err = perr
	}
	if err != nil {
		if errors.Is(err, context.Canceled) {
			fmt.Fprintln(os.Stderr, "insitu: interrupted")
			os.Exit(130)
		}
		fmt.Fprintln(os.Stderr, "insitu:", err)
		os.Exit(1)
	}
}

func newRoot() *cobra.Command {
	var (
		verbose    bool
		cpuprofile string
	)
	root := &cobra.Command{
		Use:           "insitu",
		Short:         "Hardware-in-the-loop optimization with locality-aware surrogate gradients",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			level := slog.LevelInfo
			if verbose {
				level = slog.LevelDebug
			}
			slog.SetDefault(slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level})))
			if cpuprofile != "" {
				return startProfile(cpuprofile)
			}
			return nil
		},
		PersistentPostRunE: func(*cobra.Command, []string) error { return stopProfile() },
	}
	root.PersistentFlags().BoolVarP(&verbose, "verbose", "v", false, "debug logging on stderr")
	root.PersistentFlags().StringVar(&cpuprofile, "cpuprofile", "", "write a CPU profile of the command to FILE (go tool pprof -top bin/insitu FILE)")
	root.AddCommand(newStudyCmd(), newRunCmd(), newResumeCmd(), newTrainCmd(), newRunsCmd(), newExportCmd(), newPlotCmd(), newConfigCmd(), newTwinCmd(), newProbeCmd(), newShowCmd(), newReproduceCmd(), newSweepCmd(), newCalibrateCmd())
	return root
}
