package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/spf13/cobra"

	"github.com/insitu-lab/insitu"
	"github.com/insitu-lab/insitu/loop/live"
	"github.com/insitu-lab/insitu/safety"
)

// addServeFlags gives a command that runs a loop the --serve and
// --serve-public flags. The address is bound before the command does
// anything else, so that a refused or busy address stops it before a run
// directory or a device exists; the command's execute starts the server on
// that listener (startConsole).
func addServeFlags(cmd *cobra.Command) {
	cmd.Flags().String("serve", "", "serve a live view of the run (curve, images, guard, STOP/PAUSE) on ADDR, e.g. 127.0.0.1:8080 (port 0: a free one); prints its URL with an access token")
	cmd.Flags().Bool("serve-public", false, "allow --serve on a non-loopback address (the token and the data travel in clear over HTTP; prefer ssh -L)")
	run := cmd.RunE
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		addr, _ := cmd.Flags().GetString("serve")
		public, _ := cmd.Flags().GetBool("serve-public")
		if addr == "" {
			if public {
				return errors.New("--serve-public: give the address with --serve ADDR")
			}
			return run(cmd, args)
		}
		ln, err := live.Listen(addr, public)
		if err != nil {
			return fmt.Errorf("--serve: %w", err)
		}
		b := &boundAddr{ln: ln}
		defer b.closeUnused()
		cmd.SetContext(context.WithValue(cmd.Context(), boundAddrKey{}, b))
		return run(cmd, args)
	}
}

type boundAddrKey struct{}

// boundAddr is the listener --serve bound, until startConsole takes it.
type boundAddr struct {
	mu    sync.Mutex
	ln    net.Listener
	taken bool
}

func (b *boundAddr) take() net.Listener {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.taken {
		return nil
	}
	b.taken = true
	return b.ln
}

// closeUnused closes the listener when the command ended before a run
// started (a config error, say).
func (b *boundAddr) closeUnused() {
	if ln := b.take(); ln != nil {
		ln.Close()
	}
}

// console is the live view of one run; a nil console (no --serve) does
// nothing.
type console struct {
	srv    *live.Server
	hold   *live.Hold
	cancel context.CancelCauseFunc
	guard  atomic.Pointer[safety.Guard]
}

// startConsole starts the live view when --serve was given. It returns the
// run's context, which STOP cancels with the cause a first Ctrl-C uses:
// the query in flight finishes, the device goes to its safe state, and the
// run is left interrupted and resumable. spec describes the black box's
// inputs and outputs, to draw them.
func startConsole(ctx context.Context, cmd *cobra.Command, out string, info live.RunInfo, spec insitu.Spec) (context.Context, *console, error) {
	b, _ := ctx.Value(boundAddrKey{}).(*boundAddr)
	if b == nil {
		return ctx, nil, nil
	}
	ln := b.take()
	if ln == nil {
		return ctx, nil, nil
	}
	runCtx, cancel := context.WithCancelCause(ctx)
	c := &console{hold: live.NewHold(runCtx.Done()), cancel: cancel}
	info.Command, info.Dir = cmd.Name(), out
	srv, err := live.Start(ln, live.Options{
		Dir: out, Info: info, In: spec.In, Out: spec.Out,
		Guard: func() (safety.Counters, bool) {
			if g := c.guard.Load(); g != nil {
				return g.Counters(), true
			}
			return safety.Counters{}, false
		},
		Hold: c.hold,
		Stop: func() {
			// Said where the signal handler says it: the process's stderr.
			fmt.Fprintln(os.Stderr, "\ninsitu: STOP from the live view: finishing the query in flight, then safe state")
			cancel(errInterrupted)
		},
	})
	if err != nil {
		cancel(nil)
		ln.Close()
		return ctx, nil, fmt.Errorf("--serve: %w", err)
	}
	c.srv = srv
	fmt.Fprintf(cmd.ErrOrStderr(), "live view: %s\n", srv.URL())
	return runCtx, c, nil
}

// wrap puts the PAUSE hold between the loop and the guard.
func (c *console) wrap(box insitu.BlackBox) insitu.BlackBox {
	if c == nil {
		return box
	}
	return c.hold.Wrap(box)
}

// watch lets the live view read the guard's counters.
func (c *console) watch(g *safety.Guard) {
	if c != nil {
		c.guard.Store(g)
	}
}

// close sends the final state (the run's status must be set by now) and
// stops the server.
func (c *console) close() {
	if c == nil {
		return
	}
	c.srv.Close()
	c.cancel(nil)
}

// runInfo describes a run for the live view.
func runInfo(cfg runConfig, out string) live.RunInfo {
	kind, _ := cfg.BlackBox["kind"].(string)
	obj := cfg.Objective.Kind
	if obj == "" {
		obj = "distance"
	}
	return live.RunInfo{
		Name: nameOr(cfg.Name, out), Method: cfg.Method, Kind: kind, Objective: true, ObjectiveKind: obj,
		Budget: cfg.EffectiveBudget(), Iterations: cfg.Iterations, Unit: "iteration",
	}
}

// trainInfo describes a training for the live view: its queries have no
// objective, its iterations are epochs.
func trainInfo(cfg trainConfig, out string) live.RunInfo {
	kind, _ := cfg.BlackBox["kind"].(string)
	return live.RunInfo{
		Name: nameOr(cfg.Name, out), Method: cfg.Method, Kind: kind,
		Iterations: cfg.Epochs, Unit: "epoch",
	}
}

func nameOr(name, out string) string {
	if name != "" {
		return name
	}
	return filepath.Base(out)
}
