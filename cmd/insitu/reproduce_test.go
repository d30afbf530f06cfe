package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func runReproduce(t *testing.T, args ...string) (stdout, stderr string) {
	t.Helper()
	root := newRoot()
	var o, e bytes.Buffer
	root.SetOut(&o)
	root.SetErr(&e)
	root.SetArgs(append([]string{"reproduce", "--scale", "test", "--configs", filepath.Join("..", "..", "configs"), "-q"}, args...))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := root.ExecuteContext(ctx); err != nil {
		t.Fatalf("reproduce %v: %v\n%s", args, err, e.String())
	}
	return o.String(), e.String()
}

func TestReproduceEndToEnd(t *testing.T) {
	out := t.TempDir()
	_, stderr := runReproduce(t, "--out", out)
	if !strings.Contains(stderr, "7 cells, 0 already finished, 7 started, 0 resumed, 0 failed") {
		t.Fatalf("first run: %s", stderr)
	}
	md, err := os.ReadFile(filepath.Join(out, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"## CNON, N = 10, M = 0", "## Op-amp, analytic backend", "| exact |", "| random |", "Query reduction ratio",
		"## Knobs: CNON, N = 10, M = 0", "| k = 1 | `surrogate.k=1` |", "- Knobs: CNON, N = 10, M = 0: GradPIE better than MAE in"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report lacks %q", want)
		}
	}
	for _, png := range []string{"cnon-N10-M0.png", "opamp-analytic.png", "knobs-cnon-N10-M0.png"} {
		if _, err := os.Stat(filepath.Join(out, png)); err != nil {
			t.Error(err)
		}
	}
	// Again: every cell is finished, nothing runs.
	_, stderr = runReproduce(t, "--out", out)
	if !strings.Contains(stderr, "7 cells, 7 already finished, 0 started, 0 resumed") {
		t.Fatalf("second run: %s", stderr)
	}
	stdout, _ := runReproduce(t, "--out", out, "--list")
	if n := strings.Count(stdout, "finished "); n != 7 {
		t.Errorf("--list shows %d finished cells:\n%s", n, stdout)
	}
}

func TestReproduceRejectsUnknownScale(t *testing.T) {
	root := newRoot()
	root.SetOut(&bytes.Buffer{})
	root.SetErr(&bytes.Buffer{})
	root.SetArgs([]string{"reproduce", "--scale", "huge", "--list"})
	if err := root.Execute(); err == nil || !strings.Contains(err.Error(), "huge") {
		t.Errorf("err %v", err)
	}
}

// --tasks runs those tasks only; the next full run does the rest; an
// unknown task is refused with the list of known ones.
func TestReproduceTasks(t *testing.T) {
	out := t.TempDir()
	_, stderr := runReproduce(t, "--out", out, "--tasks", "opamp-analytic")
	if !strings.Contains(stderr, "3 cells, 0 already finished, 3 started") {
		t.Fatalf("--tasks opamp-analytic: %s", stderr)
	}
	_, stderr = runReproduce(t, "--out", out)
	if !strings.Contains(stderr, "7 cells, 3 already finished, 4 started") {
		t.Fatalf("then the whole grid: %s", stderr)
	}
	root := newRoot()
	root.SetOut(&bytes.Buffer{})
	root.SetErr(&bytes.Buffer{})
	root.SetArgs([]string{"reproduce", "--scale", "test", "--configs", filepath.Join("..", "..", "configs"), "--out", out, "--tasks", "owms"})
	if err := root.Execute(); err == nil || !strings.Contains(err.Error(), `task "owms"`) || !strings.Contains(err.Error(), "cnon-N10-M0") {
		t.Errorf("unknown task: %v", err)
	}
}
