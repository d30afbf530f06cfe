package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/insitu-lab/insitu/loop/journal"
)

// benchConfig is configs/bench-slm-powermeter-twin.yaml pointed at a twin
// served by the test and a framebuffer file of its own.
func benchConfig(t *testing.T, addr, fb string, iterations int) string {
	t.Helper()
	b, err := os.ReadFile("../../configs/bench-slm-powermeter-twin.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := strings.NewReplacer(
		"127.0.0.1:5025", addr,
		"runs/twin-slm.fb", fb,
		"iterations: 30", "iterations: "+strconv.Itoa(iterations),
	).Replace(string(b))
	return writeFile(t, "bench.yaml", s)
}

// blank reports whether the framebuffer file is all zeros: the SLM's safe
// state.
func blank(t *testing.T, fb string) bool {
	t.Helper()
	b, err := os.ReadFile(fb)
	if err != nil {
		t.Fatal(err)
	}
	return len(b) > 0 && bytes.Count(b, []byte{0}) == len(b)
}

func statuses(t *testing.T, dir string) map[journal.QueryStatus]int {
	t.Helper()
	j, err := journal.OpenReadOnly(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	qs, err := j.Queries(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	m := map[journal.QueryStatus]int{}
	for _, q := range qs {
		m[q.Status]++
	}
	return m
}

// TestBenchTwinEndToEnd optimizes through the real SLM (framebuffer file)
// and power-meter (SCPI over TCP) drivers against the served twin.
func TestBenchTwinEndToEnd(t *testing.T) {
	fb := filepath.Join(t.TempDir(), "slm.fb")
	addr := serveInProcess(t, "powermeter", "--tcp", "127.0.0.1:0", "--fb", fb)
	cfg := benchConfig(t, addr, fb, 5)
	dir := filepath.Join(t.TempDir(), "run")
	stdout, stderr, err := run(t, "run", cfg, "--out", dir, "-q")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	// 30 initial patterns + 5 iterations × 3 steps, each with a local sample.
	if !strings.Contains(stdout, "60 queries") || !strings.Contains(stdout, "1 safe-state calls") {
		t.Errorf("summary:\n%s", stdout)
	}
	if st := statuses(t, dir); st[journal.StatusDone] != 60 || len(st) != 1 {
		t.Errorf("journal statuses %v, want 60 done", st)
	}
	if !blank(t, fb) {
		t.Error("the SLM was not blanked at the end of the run")
	}
}

// TestBenchTwinFaultEndsSafely: the twin hangs up in the middle of the run;
// the run ends with an error naming the instrument, its address and the
// command, the SLM is blanked, and every completed query is journaled.
func TestBenchTwinFaultEndsSafely(t *testing.T) {
	fb := filepath.Join(t.TempDir(), "slm.fb")
	// The meter's set-up takes a few lines; then about 40 readings.
	addr := serveInProcess(t, "powermeter", "--tcp", "127.0.0.1:0", "--fb", fb, "--hangup-after", "50")
	cfg := benchConfig(t, addr, fb, 5)
	dir := filepath.Join(t.TempDir(), "run")
	_, stderr, err := run(t, "run", cfg, "--out", dir, "-q")
	if err == nil {
		t.Fatalf("the run survived a hang-up\n%s", stderr)
	}
	msg := err.Error()
	for _, want := range []string{"pm", addr, "MEAS"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not name %q: %v", want, msg)
		}
	}
	st := statuses(t, dir)
	if st[journal.StatusDone] < 20 || st[journal.StatusStarted] != 0 || st[journal.StatusFailed] != 1 {
		t.Errorf("journal statuses %v: want the completed readings done and the one that failed marked", st)
	}
	if !blank(t, fb) {
		t.Error("the SLM was not blanked after the fault")
	}
}

// TestBenchTwinCtrlC: SIGINT to a bench run finishes the query in flight,
// blanks the SLM and leaves a resumable journal.
func TestBenchTwinCtrlC(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	fb := filepath.Join(t.TempDir(), "slm.fb")
	addr := serveInProcess(t, "powermeter", "--tcp", "127.0.0.1:0", "--fb", fb, "--latency", "20ms")
	cfg := benchConfig(t, addr, fb, 1000)
	dir := filepath.Join(t.TempDir(), "run")
	cmd, out := child(t, "run", cfg, "--out", dir, "-q")
	waitQueries(t, dir, 35, 30*time.Second)
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 130 {
		t.Fatalf("exit code %d, want 130\n%s", code, out)
	}
	if st := statuses(t, dir); st[journal.StatusStarted] != 0 || st[journal.StatusDone] < 35 {
		t.Errorf("journal statuses %v", st)
	}
	if !blank(t, fb) {
		t.Error("the SLM was not blanked after Ctrl-C")
	}
}
