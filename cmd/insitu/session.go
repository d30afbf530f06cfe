package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/insitu-lab/insitu/loop/journal"
	"github.com/insitu-lab/insitu/safety"
)

// checkRunName refuses a run name that is not a plain name: it becomes a
// directory under runs/, so a separator or a dot-dot would put the run
// somewhere else.
func checkRunName(name string) error {
	if name == "" {
		return nil
	}
	switch {
	case strings.ContainsAny(name, `/\`):
		return fmt.Errorf("name: %q contains a path separator: a name is not a path (use --out DIR to choose the directory)", name)
	case name == "." || name == ".." || strings.HasPrefix(name, "."):
		return fmt.Errorf("name: %q starts with a dot: want a plain name such as bench-smu", name)
	case strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return fmt.Errorf("name: %q contains a control character", name)
	case len(name) > 128:
		return fmt.Errorf("name: %d characters: at most 128", len(name))
	}
	return nil
}

// executableKeys are the black-box keys, per kind, that name a program the
// twin executes. A journal's config is data: on resume such a key is not
// trusted from the journal but must agree with the current environment.
var executableKeys = map[string][]string{
	"opamp": {"ngspice"},
}

// checkStoredExecutables refuses to resume a run whose stored config names
// an executable by path, unless the current environment names the same path
// (INSITU_BLACKBOX_<KEY>). A bare program name is looked up in the current
// PATH, as a new run would.
func checkStoredExecutables(where string, box map[string]any) error {
	kind, _ := box["kind"].(string)
	for _, key := range executableKeys[kind] {
		v, ok := box[key].(string)
		if !ok || v == "" || !strings.ContainsRune(v, filepath.Separator) {
			continue
		}
		env := "INSITU_BLACKBOX_" + strings.ToUpper(key)
		if cur, ok := os.LookupEnv(env); ok && filepath.Clean(cur) == filepath.Clean(v) {
			continue
		}
		return fmt.Errorf("%s: blackbox.%s: the journal names the executable %s; a resume does not run a program named by a journal: set %s=%s to confirm it",
			where, key, v, env, v)
	}
	return nil
}

// eventLog journals the guard's events and keeps the first write error, so
// a trip whose record could not be written is reported, not lost.
type eventLog struct {
	j     *journal.Journal
	mu    sync.Mutex
	first error
}

func (l *eventLog) record(e journal.EventRecord) {
	// The write completes even when the run's context is cancelled: a trip
	// is most often recorded while the run is being stopped.
	if err := l.j.Event(context.Background(), e); err != nil {
		l.mu.Lock()
		if l.first == nil {
			l.first = fmt.Errorf("journaling safety event %s (%s): %w", e.Kind, e.Detail, err)
		}
		l.mu.Unlock()
	}
}

// err returns the first write error.
func (l *eventLog) err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.first
}

// closeBox releases a black box that holds something (a connection, a
// process): after its safe state, or when a run stops before using it.
func closeBox(b any) {
	if c, ok := b.(io.Closer); ok {
		_ = c.Close()
	}
}

// claimRunDir makes the directory of a new run (0700: measurements can be
// private), takes its lock before any device is opened, and writes the
// resolved config cfg there (config.yaml; the bytes also go into the
// journal). release unlocks it; if the run never got a journal, release
// also removes what was made, so a run that could not open its devices
// leaves nothing behind.
func claimRunDir(out string, cfg any) (release func(), resolved []byte, err error) {
	_, statErr := os.Stat(out)
	made := os.IsNotExist(statErr)
	if err := os.MkdirAll(out, 0o700); err != nil {
		return nil, nil, err
	}
	lock, err := journal.LockDir(out)
	if err != nil {
		if made {
			os.RemoveAll(out)
		}
		return nil, nil, err
	}
	release = func() {
		if _, err := os.Stat(filepath.Join(out, journal.FileName)); os.IsNotExist(err) && made {
			os.RemoveAll(out)
		}
		lock.Unlock()
	}
	if resolved, err = writeResolved(out, cfg); err != nil {
		release()
		return nil, nil, err
	}
	return release, resolved, nil
}

// lockRun takes the lock of an existing run directory before its journal
// is reopened and its devices opened.
func lockRun(dir string) (release func(), err error) {
	if _, err := os.Stat(filepath.Join(dir, journal.FileName)); err != nil {
		return nil, fmt.Errorf("%s holds no run: %w", dir, err)
	}
	lock, err := journal.LockDir(dir)
	if err != nil {
		return nil, err
	}
	return func() { lock.Unlock() }, nil
}

// deviceQueriesUsed counts the device queries earlier processes of a run
// made, from its journal, so that safety.budget holds per run across
// resumes: every journaled query (its intent is written before the device
// is touched, so one that never reached the device is counted too), every
// remeasurement, and every ramp's extra steps (a ramp event's value is its
// number of device queries, the last of which is the journaled query).
func deviceQueriesUsed(ctx context.Context, j *journal.Journal) (int, error) {
	begun, remeasured, err := j.QueryCounts(ctx)
	if err != nil {
		return 0, err
	}
	evs, err := j.Events(ctx)
	if err != nil {
		return 0, err
	}
	n := begun + remeasured
	for _, e := range evs {
		if e.Kind == string(safety.KindRamp) && e.Value > 1 && e.Value < math.MaxInt32 {
			n += int(e.Value) - 1
		}
	}
	return n, nil
}

// fidelity hands the loop's prediction errors to the guard's model-fidelity
// interlock. Its pause action holds the run at the live view's PAUSE when
// one is served (the operator looks at the bench and resumes, or stops);
// without a live view it stops the run, resumable, like a first Ctrl-C.
type fidelity struct {
	guard *safety.Guard
	con   *console
}

func (f fidelity) ObservePrediction(ctx context.Context, e float64) error {
	err := f.guard.ObservePrediction(ctx, e)
	if err != nil && f.con != nil && errors.Is(err, safety.ErrFidelity) && !errors.Is(err, safety.ErrInterlock) {
		if f.con.hold.Pause() {
			fmt.Fprintf(os.Stderr, "\ninsitu: %v: paused; RESUME or STOP in the live view\n", err)
		}
		return nil
	}
	return err
}
