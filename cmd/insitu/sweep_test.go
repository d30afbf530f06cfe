package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// sweepRoot is the insitu command tree with the sweep command.
func sweepRoot() *cobra.Command {
	root := newRoot()
	if c, _, err := root.Find([]string{"sweep"}); err != nil || c == root {
		root.AddCommand(newSweepCmd())
	}
	return root
}

func sweepCmd(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	root := sweepRoot()
	var o, e strings.Builder
	root.SetOut(&o)
	root.SetErr(&e)
	root.SetArgs(append([]string{"sweep"}, args...))
	err = root.ExecuteContext(t.Context())
	return o.String(), e.String(), err
}

// A sweep of the CNON config over two methods and two seeds, as two
// shards into their own directories, merged: the table of one unsharded
// sweep; the runs' directories named from the setting and seed.
func TestSweepShardsMerge(t *testing.T) {
	tmp := t.TempDir()
	cfg := filepath.Join("..", "..", "configs", "cnon.yaml")
	grid := []string{cfg, "-q", "--param", "method=gradpie,random", "--seeds", "1..2", "--iterations", "3",
		"--set", "blackbox.n=4", "--set", "init.points=10", "--set", "surrogate.hidden=[8]", "--set", "surrogate.initial_epochs=2", "--set", "surrogate.epochs=1"}
	var shards []string
	total := 0
	for i, sh := range []string{"0/2", "1/2"} {
		dir := filepath.Join(tmp, "shard-"+sh[:1])
		shards = append(shards, dir)
		_, stderr, err := sweepCmd(t, append(grid, "--out", dir, "--shard", sh)...)
		if err != nil {
			t.Fatalf("shard %s: %v\n%s", sh, err, stderr)
		}
		var n int
		k := strings.Index(stderr, "sweep shard "+sh+": ")
		if k < 0 || !strings.Contains(stderr, "0 failed") {
			t.Fatalf("shard %d: %s", i, stderr)
		}
		if _, err := fmt.Sscanf(stderr[k:], "sweep shard "+sh+": %d cells", &n); err != nil || n == 0 {
			t.Fatalf("shard %d: %s", i, stderr)
		}
		total += n
	}
	if total != 4 {
		t.Fatalf("the shards ran %d runs of 4", total)
	}
	for _, run := range []string{"method=gradpie/s1", "method=random/s2"} {
		found := false
		for _, d := range shards {
			if _, err := os.Stat(filepath.Join(d, run, "journal.db")); err == nil {
				found = true
			}
		}
		if !found {
			t.Errorf("no shard ran %s", run)
		}
	}
	merged := filepath.Join(tmp, "merged")
	mergedTable, stderr, err := sweepCmd(t, append([]string{"merge", "--out", merged}, shards...)...)
	if err != nil || !strings.Contains(stderr, "merged 4 runs from 2 directories") {
		t.Fatalf("merge: %v\n%s", err, stderr)
	}
	single := filepath.Join(tmp, "single")
	singleTable, stderr, err := sweepCmd(t, append(grid, "--out", single)...)
	if err != nil {
		t.Fatalf("unsharded: %v\n%s", err, stderr)
	}
	// The controller column is a timing: it differs between any two runs.
	withoutTimes := func(table string) string {
		var b strings.Builder
		for _, line := range strings.Split(strings.TrimSpace(table), "\n") {
			f := strings.Fields(line)
			b.WriteString(strings.Join(f[:len(f)-1], " ") + "\n")
		}
		return b.String()
	}
	if !strings.Contains(mergedTable, "best @ 3") || !strings.Contains(mergedTable, "method=gradpie     2") ||
		withoutTimes(mergedTable) != withoutTimes(singleTable) {
		t.Errorf("merged table:\n%s\nunsharded:\n%s", mergedTable, singleTable)
	}
	md, err := os.ReadFile(filepath.Join(merged, "report.md"))
	if err != nil || !strings.Contains(string(md), "| method=random | 2 | ") {
		t.Errorf("report: %v\n%s", err, md)
	}
	if _, err := os.Stat(filepath.Join(merged, "sweep.png")); err != nil {
		t.Error(err)
	}
	// The merged directory remembers the sweep: --list and --report-only
	// need no CONFIG.
	stdout, _, err := sweepCmd(t, "--list", "--out", merged)
	if err != nil || strings.Count(stdout, "finished ") != 4 || !strings.Contains(stdout, "insitu run "+cfg) {
		t.Errorf("--list: %v\n%s", err, stdout)
	}
	if again, _, err := sweepCmd(t, "--report-only", "--out", merged); err != nil || again != mergedTable {
		t.Errorf("--report-only: %v\n%s", err, again)
	}
	// Another sweep into the same directory is refused.
	if _, _, err := sweepCmd(t, cfg, "--param", "method=mae", "--seeds", "1", "--out", merged); err == nil || !strings.Contains(err.Error(), "cannot be mixed") {
		t.Errorf("another sweep into the directory: %v", err)
	}
}
