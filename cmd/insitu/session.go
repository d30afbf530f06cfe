package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"

	"github.com/insitu-lab/insitu/loop/journal"
	"github.com/insitu-lab/insitu/loop/reproduce"
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
// private), takes its lock before any device is opened, checks that it is
// still empty (runDir checked it before), and returns the resolved config
// cfg as YAML, which goes into the journal and, once the journal exists,
// to config.yaml (writeConfigCopy). release unlocks it; if the run never
// got a journal, release also removes what was made, so a run that could
// not open its devices leaves nothing behind.
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
	if err := checkEmpty(out); err != nil {
		release()
		return nil, nil, err
	}
	if resolved, err = yaml.Marshal(cfg); err != nil {
		release()
		return nil, nil, err
	}
	return release, resolved, nil
}

// writeConfigCopy writes the resolved config beside the journal, as
// DIR/config.yaml: a resume refuses to go on when the two differ.
func writeConfigCopy(out string, resolved []byte) error {
	return os.WriteFile(filepath.Join(out, "config.yaml"), resolved, 0o600)
}

// runStartFiles are the files a new run's directory may hold before its
// journal exists: the lock, what a Create that crashed left, and the log
// that reproduce and sweep open for the cell before they start its run.
var runStartFiles = map[string]bool{
	reproduce.CellLog:                 true,
	journal.LockFileName:              true,
	journal.FileName + ".new":         true,
	journal.FileName + ".new-wal":     true,
	journal.FileName + ".new-shm":     true,
	journal.FileName + ".new-journal": true,
}

// checkEmpty refuses a directory for a new run unless it is missing,
// empty or holds only what a run that died before its journal left
// (runStartFiles): a directory of someone's files is never written into.
func checkEmpty(dir string) error {
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("--out %s: %w", dir, err)
	}
	var names []string
	for _, e := range entries {
		if !runStartFiles[e.Name()] {
			names = append(names, e.Name())
		}
	}
	if len(names) == 0 {
		return nil
	}
	shown := names[:min(len(names), 3)]
	more := ""
	if len(names) > len(shown) {
		more = fmt.Sprintf(" and %d more", len(names)-len(shown))
	}
	return fmt.Errorf("--out %s is not empty and holds no run (%s%s): choose a new or empty directory", dir, strings.Join(shown, ", "), more)
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
// is touched, so one that never reached the device is counted too, and so
// is every try of a query a device fault failed), every remeasurement, and
// every ramp's extra steps (a ramp event's value is its number of device
// queries, the last of which is the journaled query).
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

// sameConfig refuses to continue a run whose DIR/config.yaml differs from
// the config its journal holds, naming the keys that differ: someone
// changed one of them, and a resume goes on with the config the run began
// with. A missing config.yaml is not refused (the journal's config is
// checksummed): the run goes on with what the journal holds.
func sameConfig(dir string, journaled []byte) error {
	path := filepath.Join(dir, "config.yaml")
	file, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	var a, b any
	if err := yaml.Unmarshal(journaled, &a); err != nil {
		return fmt.Errorf("%s: the journal's config: %w", filepath.Join(dir, journal.FileName), err)
	}
	if err := yaml.Unmarshal(file, &b); err != nil {
		return fmt.Errorf("%s: %w (it should hold the config the run began with)", path, err)
	}
	var keys []string
	configDiff("", a, b, &keys)
	if len(keys) == 0 {
		return nil
	}
	shown := keys[:min(len(keys), 8)]
	more := ""
	if len(keys) > len(shown) {
		more = fmt.Sprintf(" and %d more", len(keys)-len(shown))
	}
	return fmt.Errorf("%s differs from the config the run began with (in %s) at %s%s: a resume goes on with the config the run began with; "+
		"put %s back as it was, or start a new run with the new config", path, journal.FileName, strings.Join(shown, ", "), more, filepath.Base(path))
}

// configDiff appends to keys the dotted paths at which a and b, decoded
// YAML, differ.
func configDiff(prefix string, a, b any, keys *[]string) {
	join := func(k string) string {
		if prefix == "" {
			return k
		}
		return prefix + "." + k
	}
	switch av := a.(type) {
	case map[string]any:
		bv, ok := b.(map[string]any)
		if !ok {
			break
		}
		names := map[string]bool{}
		for k := range av {
			names[k] = true
		}
		for k := range bv {
			names[k] = true
		}
		for _, k := range slices.Sorted(maps.Keys(names)) {
			x, inA := av[k]
			y, inB := bv[k]
			if inA != inB {
				*keys = append(*keys, join(k))
				continue
			}
			configDiff(join(k), x, y, keys)
		}
		return
	case []any:
		bv, ok := b.([]any)
		if !ok || len(av) != len(bv) {
			break
		}
		for i := range av {
			configDiff(fmt.Sprintf("%s[%d]", prefix, i), av[i], bv[i], keys)
		}
		return
	}
	if !reflect.DeepEqual(a, b) {
		*keys = append(*keys, cmp.Or(prefix, "(the whole file)"))
	}
}

// budgetLeft refuses, before any device is opened, to resume a run whose
// safety.budget of device queries its earlier sessions have spent: the
// guard would refuse its first query.
func budgetLeft(ctx context.Context, dir string, j *journal.Journal, sc safety.Config) error {
	if sc.Budget == nil {
		return nil
	}
	used, err := deviceQueriesUsed(ctx, j)
	if err != nil {
		return err
	}
	if used >= *sc.Budget {
		return fmt.Errorf("%s: the run has used %d device queries of its safety.budget of %d: nothing is left to resume with (the run is left as it was)", dir, used, *sc.Budget)
	}
	return nil
}
