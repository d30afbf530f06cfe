package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/insitu-lab/insitu/loop/reproduce"
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

// insitu writes a script that runs this test binary as the insitu command
// (see TestMain) and returns its path.
func insituScript(t *testing.T) string {
	t.Helper()
	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "insitu")
	script := "#!/bin/sh\nINSITU_TEST_MAIN=1 INSITU_TEST_ARGS=\"$*\" exec " + bin + " -test.run=^$\n"
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// reproduceCmd runs insitu in this process and returns its output and error.
func reproduceCmd(args ...string) (stdout, stderr string, err error) {
	root := newRoot()
	var o, e bytes.Buffer
	root.SetOut(&o)
	root.SetErr(&e)
	root.SetArgs(args)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err = root.ExecuteContext(ctx)
	return o.String(), e.String(), err
}

// reportTables returns the report's table rows without the controller
// time column (a time, not a result).
func reportTables(md string) []string {
	var rows []string
	drop := -1
	for _, l := range strings.Split(md, "\n") {
		if !strings.HasPrefix(l, "|") {
			drop = -1
			continue
		}
		cols := strings.Split(l, "|")
		if i := slices.IndexFunc(cols, func(c string) bool { return strings.TrimSpace(c) == "controller ms/it" }); i >= 0 {
			drop = i
		}
		if drop >= 0 && drop < len(cols) {
			cols = slices.Delete(cols, drop, drop+1)
		}
		rows = append(rows, strings.Join(cols, "|"))
	}
	return rows
}

// The test grid as 3 shards, each a separate process started by the Slurm
// job script as array task 0, 1 and 2 (no Slurm: its variables), each into
// its own directory; merged, the report's tables are those of one
// unsharded run, --report-only on the merged tree writes the same report,
// and a cell lost is listed with its shard.
func TestReproduceShardsMerge(t *testing.T) {
	tmp := t.TempDir()
	configs, err := filepath.Abs(filepath.Join("..", "..", "configs"))
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join("..", "..", "deploy", "slurm", "reproduce.sbatch")
	insitu := insituScript(t)
	const iters = "2"
	var procs []*exec.Cmd
	var logs []*bytes.Buffer
	var shards []string
	for i := range 3 {
		dir := filepath.Join(tmp, fmt.Sprintf("shard-%d", i))
		shards = append(shards, dir)
		cmd := exec.Command("bash", script)
		cmd.Env = append(os.Environ(),
			"SLURM_SUBMIT_DIR="+tmp, "SLURM_ARRAY_JOB_ID=7", fmt.Sprintf("SLURM_ARRAY_TASK_ID=%d", i),
			"SLURM_ARRAY_TASK_MIN=0", "SLURM_ARRAY_TASK_MAX=2", "SLURM_ARRAY_TASK_COUNT=3", "SLURM_CPUS_PER_TASK=1",
			"SCALE=test", "OUT="+dir, "INSITU="+insitu, "CONFIGS="+configs, "REPRODUCE_ARGS=--iterations "+iters)
		var log bytes.Buffer
		cmd.Stdout, cmd.Stderr = &log, &log
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		procs, logs = append(procs, cmd), append(logs, &log)
	}
	total := 0
	for i, p := range procs {
		if err := p.Wait(); err != nil {
			t.Fatalf("shard %d: %v\n%s", i, err, logs[i])
		}
		s := logs[i].String()
		var n int
		if _, err := fmt.Sscanf(s[strings.Index(s, fmt.Sprintf("shard %d/3: ", i)):], fmt.Sprintf("shard %d/3: %%d cells", i), &n); err != nil || !strings.Contains(s, "0 failed") {
			t.Fatalf("shard %d: %v\n%s", i, err, s)
		}
		total += n
		if _, err := os.Stat(filepath.Join(shards[i], "report.md")); err == nil {
			t.Errorf("shard %d wrote a report", i)
		}
		if _, err := os.Stat(filepath.Join(shards[i], "shards", fmt.Sprintf("%d-of-3.json", i))); err != nil {
			t.Errorf("shard %d: %v", i, err)
		}
	}
	if total != 7 {
		t.Fatalf("the shards ran %d cells, the grid has 7", total)
	}

	merged := filepath.Join(tmp, "merged")
	_, stderr, err := reproduceCmd(append([]string{"reproduce", "merge", "--out", merged}, shards...)...)
	if err != nil || !strings.Contains(stderr, "merged 7 cells from 3 directories") || !strings.Contains(stderr, "7 hard-linked") {
		t.Fatalf("merge: %v\n%s", err, stderr)
	}
	single := filepath.Join(tmp, "single")
	if _, stderr, err := reproduceCmd("reproduce", "--scale", "test", "--iterations", iters, "--configs", configs, "-q", "--out", single); err != nil {
		t.Fatalf("unsharded: %v\n%s", err, stderr)
	}
	read := func(dir string) string {
		b, err := os.ReadFile(filepath.Join(dir, "report.md"))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	mergedMD, singleMD := read(merged), read(single)
	mt, st := reportTables(mergedMD), reportTables(singleMD)
	if len(mt) < 20 || !slices.Equal(mt, st) {
		t.Errorf("merged report's tables differ from an unsharded run's:\nmerged:\n%s\nsingle:\n%s", strings.Join(mt, "\n"), strings.Join(st, "\n"))
	}
	if !strings.Contains(mergedMD, "2 iterations") {
		t.Errorf("the merged report is not of the --iterations %s grid:\n%s", iters, mergedMD)
	}
	// --report-only on the merged tree: the grid from its manifest, the
	// same report.
	if _, stderr, err := reproduceCmd("reproduce", "--report-only", "--out", merged); err != nil {
		t.Fatalf("report-only: %v\n%s", err, stderr)
	}
	if again := read(merged); again != mergedMD {
		t.Errorf("--report-only on the merged tree wrote another report:\n%s\nmerge wrote:\n%s", again, mergedMD)
	}
	// A flag that contradicts the tree is refused.
	if _, _, err := reproduceCmd("reproduce", "--report-only", "--scale", "quick", "--out", merged); err == nil || !strings.Contains(err.Error(), "holds a --scale test grid") {
		t.Errorf("--scale quick on a test tree: %v", err)
	}

	// Lose one cell: --list shows it missing with the shard that runs it,
	// and merge fails naming that shard.
	lost := filepath.Join("opamp-analytic", "random-s1")
	owner := -1
	for i, d := range shards {
		if _, err := os.Stat(filepath.Join(d, lost)); err == nil {
			owner = i
		}
	}
	if err := os.RemoveAll(filepath.Join(merged, lost)); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, err := reproduceCmd("reproduce", "--list", "--out", merged)
	if err != nil {
		t.Fatal(err)
	}
	line := fmt.Sprintf("missing     %d/3     %s  insitu run", owner, lost)
	if !strings.Contains(stdout, line) || strings.Count(stdout, "finished ") != 6 {
		t.Errorf("--list lacks %q or 6 finished cells:\n%s", line, stdout)
	}
	if !strings.Contains(stderr, "7 cells: ") || !strings.Contains(stderr, fmt.Sprintf("shards with unfinished cells: %d/3 (1 cells)", owner)) {
		t.Errorf("--list summary:\n%s", stderr)
	}
	_, _, err = reproduceCmd("reproduce", "merge", "--out", merged)
	if err == nil || !strings.Contains(err.Error(), "missing "+lost+fmt.Sprintf(" (shard %d/3)", owner)) || !strings.Contains(err.Error(), fmt.Sprintf("re-run shard(s) %d/3", owner)) {
		t.Errorf("merge with a lost cell: %v", err)
	}
	// The shard that had it, merged again: complete.
	if _, stderr, err := reproduceCmd("reproduce", "merge", "--out", merged, shards[owner]); err != nil || !strings.Contains(stderr, "1 hard-linked") {
		t.Errorf("merge of the shard again: %v\n%s", err, stderr)
	}
}

// Shards sharing one directory, their index from an Indexed Kubernetes
// Job's JOB_COMPLETION_INDEX and --shards: merge in place checks and
// reports.
func TestReproduceShardsSharedDir(t *testing.T) {
	out := t.TempDir()
	var ran int
	for i := range 2 {
		t.Setenv("JOB_COMPLETION_INDEX", strconv.Itoa(i))
		_, stderr := runReproduce(t, "--out", out, "--shards", "2", "--tasks", "opamp-analytic")
		var n int
		if _, err := fmt.Sscanf(stderr[strings.Index(stderr, "shard "):], fmt.Sprintf("shard %d/2: %%d cells", i), &n); err != nil {
			t.Fatalf("shard %d: %v\n%s", i, err, stderr)
		}
		ran += n
	}
	if ran != 3 {
		t.Errorf("2 shards ran %d cells of opamp-analytic's 3", ran)
	}
	t.Setenv("JOB_COMPLETION_INDEX", "")
	_, stderr, err := reproduceCmd("reproduce", "merge", "--out", out)
	if err != nil || !strings.Contains(stderr, "3 already there") {
		t.Fatalf("merge in place: %v\n%s", err, stderr)
	}
	md, err := os.ReadFile(filepath.Join(out, "report.md"))
	if err != nil || !strings.Contains(string(md), "## Op-amp, analytic backend") || !strings.Contains(string(md), "| gradpie |") {
		t.Errorf("report: %v\n%s", err, md)
	}
	// Without --shards the Kubernetes index is refused: the pod cannot
	// know the completions.
	t.Setenv("JOB_COMPLETION_INDEX", "1")
	if _, _, err := reproduceCmd("reproduce", "--scale", "test", "--out", t.TempDir()); err == nil || !strings.Contains(err.Error(), "needs --shards") {
		t.Errorf("index without --shards: %v", err)
	}
}

// The Kubernetes Jobs' arguments are insitu's: every flag parses, and the
// last index is the last shard.
func TestReproduceDeployKubernetesArgs(t *testing.T) {
	var job struct {
		Spec struct {
			Completions int `yaml:"completions"`
			Template    struct {
				Spec struct {
					Containers []struct {
						Args []string `yaml:"args"`
					} `yaml:"containers"`
				} `yaml:"spec"`
			} `yaml:"template"`
		} `yaml:"spec"`
	}
	for _, f := range []string{"reproduce-job.yaml", "merge-job.yaml"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "deploy", "kubernetes", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.Unmarshal(b, &job); err != nil {
			t.Fatal(err)
		}
		args := job.Spec.Template.Spec.Containers[0].Args
		cmd, rest, err := newRoot().Find(args)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if err := cmd.ParseFlags(rest); err != nil {
			t.Fatalf("%s: %q: %v", f, args, err)
		}
		if cmd.Name() != "reproduce" {
			continue
		}
		shards, err := cmd.Flags().GetInt("shards")
		if err != nil {
			t.Fatal(err)
		}
		last := strconv.Itoa(job.Spec.Completions - 1)
		s, err := reproduce.ResolveShard("", shards, func(k string) string {
			if k == "JOB_COMPLETION_INDEX" {
				return last
			}
			return ""
		})
		if err != nil || s.Index != job.Spec.Completions-1 || s.Count != job.Spec.Completions {
			t.Errorf("%s: index %s resolves to %v, %v", f, last, s, err)
		}
	}
}
