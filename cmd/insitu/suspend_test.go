package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/insitu-lab/insitu"
	"github.com/insitu-lab/insitu/loop/journal"
)

// beamBox is a test bench behind a suspender: y_i = x_i², and a beam
// output that is 1 while the file beamFile says "on" (anything else: the
// beam is off, and the other outputs read 0, as a camera would in the
// dark). It can be read without applying an input, and its safe state
// appends a line to safeFile.
type beamBox struct {
	n        int
	delay    time.Duration
	beamFile string
	safeFile string
	mu       sync.Mutex
}

func (b *beamBox) Spec() insitu.Spec {
	return insitu.Spec{Name: "beam", In: insitu.Box(b.n, -1, 1), Out: append(names("y", b.n), "beam")}
}

func (b *beamBox) on() bool {
	data, err := os.ReadFile(b.beamFile)
	return err == nil && strings.TrimSpace(string(data)) == "on"
}

func (b *beamBox) outputs(x []float64) []float64 {
	y := make([]float64, b.n+1)
	if !b.on() {
		return y
	}
	for i, v := range x {
		y[i] = v * v
	}
	y[b.n] = 1
	return y
}

func (b *beamBox) Query(ctx context.Context, x []float64) ([]float64, error) {
	select {
	case <-time.After(b.delay):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return b.outputs(x), nil
}

func (b *beamBox) Read(context.Context) ([]float64, error) {
	return b.outputs(make([]float64, b.n)), nil
}

func (b *beamBox) SafeState(context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return recordSafeState(b.safeFile)
}

func init() {
	insitu.Register("test-beam", func(_ context.Context, p insitu.Params) (insitu.BlackBox, error) {
		var c struct {
			N        int    `mapstructure:"n"`
			DelayMS  int    `mapstructure:"delay_ms"`
			BeamFile string `mapstructure:"beam_file"`
			SafeFile string `mapstructure:"safe_file"`
		}
		if err := p.Decode(&c); err != nil {
			return nil, err
		}
		return &beamBox{n: c.N, delay: time.Duration(c.DelayMS) * time.Millisecond, beamFile: c.BeamFile, safeFile: c.SafeFile}, nil
	})
}

// beamRun is a run of the beam bench whose laser is watched by a
// suspender.
func beamRun(t *testing.T, dir string) (cfg, beamFile string) {
	beamFile = filepath.Join(dir, "beam")
	setBeam(t, beamFile, true)
	cfg = writeFile(t, "beam.yaml", fmt.Sprintf(`
method: random
seed: 3
iterations: 24
blackbox: {kind: test-beam, n: 3, delay_ms: 5, beam_file: %s, safe_file: %s}
objective: {kind: distance, outputs: [y0, y1, y2], target: [0.1, 0.2, 0.3]}
init: {points: 10}
safety:
  timeout: 5s
  interlocks:
    - {name: laser, output: beam, below: 0.5, action: suspend, poll: 20ms, resume_after: 100ms}
journal: {sync: query}
`, beamFile, filepath.Join(dir, "safe.log")))
	return cfg, beamFile
}

func setBeam(t *testing.T, file string, on bool) {
	t.Helper()
	s := "off"
	if on {
		s = "on"
	}
	if err := os.WriteFile(file, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// waitEvent waits until the run in dir has journaled n events of kind.
func waitEvent(t *testing.T, dir, kind string, n int, timeout time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		j, err := journal.OpenReadOnly(dir)
		if err != nil {
			continue
		}
		evs, err := j.Events(context.Background())
		j.Close()
		k := 0
		for _, e := range evs {
			if e.Kind == kind {
				k++
			}
		}
		if err == nil && k >= n {
			return
		}
	}
	t.Fatalf("%s: fewer than %d %s events after %v", dir, n, kind, timeout)
}

func eventKinds(t *testing.T, dir string) map[string]int {
	t.Helper()
	j, err := journal.OpenReadOnly(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	evs, err := j.Events(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	k := map[string]int{}
	for _, e := range evs {
		k[e.Kind]++
	}
	return k
}

// sameRun compares two runs' journals query by query, bit for bit, and
// checks that no query is missing, repeated or failed.
func sameRun(t *testing.T, got, want string) []row {
	t.Helper()
	w, g := journalRows(t, want), journalRows(t, got)
	if len(g) != len(w) {
		t.Fatalf("%d queries, the uninterrupted run %d", len(g), len(w))
	}
	for i := range w {
		if g[i].key != w[i].key || !sameFloats(g[i].x, w[i].x) || !sameFloats(g[i].y, w[i].y) {
			t.Fatalf("query %d differs from the uninterrupted run: %+v vs %+v", i, g[i], w[i])
		}
		if g[i].status != journal.StatusDone && g[i].status != journal.StatusRemeasured {
			t.Errorf("query %s has status %s", g[i].key, g[i].status)
		}
	}
	return g
}

// A suspender holds a run while the laser is off and resumes it when it
// is back: the run's queries are those of a run that never lost the beam,
// none lost, none repeated, none measured in the dark; the suspension and
// the resumption are journaled events.
func TestSuspendHoldsARun(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	tmp := t.TempDir()
	cfg, beamFile := beamRun(t, tmp)
	ref := filepath.Join(tmp, "ref")
	if _, stderr, err := run(t, "run", cfg, "--out", ref, "-q"); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	dir := filepath.Join(tmp, "held")
	cmd, out := child(t, "run", cfg, "--out", dir, "-q")
	waitQueries(t, dir, 20, 30*time.Second)
	setBeam(t, beamFile, false)
	waitEvent(t, dir, "suspend", 1, 30*time.Second)
	time.Sleep(300 * time.Millisecond) // held: nothing may be journaled meanwhile
	n := len(journalRows(t, dir))
	time.Sleep(200 * time.Millisecond)
	if again := len(journalRows(t, dir)); again != n {
		t.Errorf("%d queries journaled while suspended", again-n)
	}
	setBeam(t, beamFile, true)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	sameRun(t, dir, ref)
	if k := eventKinds(t, dir); k["suspend"] != 1 || k["resume"] != 1 {
		t.Errorf("events %v, want one suspend and one resume", k)
	}
	if s := journalSummary(t, dir); s.Status != journal.RunFinished {
		t.Errorf("status %s", s.Status)
	}
}

// SIGKILL while a suspender holds the run: the held query is journaled as
// started, and the resumed run measures it again once the beam is back
// and ends bit-identical to a run that never lost the beam.
func TestKillDuringSuspendResumes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	tmp := t.TempDir()
	cfg, beamFile := beamRun(t, tmp)
	ref := filepath.Join(tmp, "ref")
	if _, stderr, err := run(t, "run", cfg, "--out", ref, "-q"); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	dir := filepath.Join(tmp, "killed")
	cmd, _ := child(t, "run", cfg, "--out", dir, "-q")
	waitQueries(t, dir, 25, 30*time.Second)
	setBeam(t, beamFile, false)
	waitEvent(t, dir, "suspend", 1, 30*time.Second)
	time.Sleep(100 * time.Millisecond)
	cmd.Process.Kill()
	cmd.Wait()
	if st := statuses(t, dir); st[journal.StatusStarted] != 1 {
		t.Fatalf("after the kill: statuses %v, want the held query started", st)
	}
	setBeam(t, beamFile, true)
	if _, stderr, err := run(t, "resume", dir, "-q"); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	rows := sameRun(t, dir, ref)
	remeasured := 0
	for _, r := range rows {
		if r.status == journal.StatusRemeasured {
			remeasured++
		}
	}
	if remeasured != 1 {
		t.Errorf("%d queries remeasured, want the held one", remeasured)
	}
}

func journalSummary(t *testing.T, dir string) journal.Summary {
	t.Helper()
	j, err := journal.OpenReadOnly(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	s, err := j.Summary(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return s
}
