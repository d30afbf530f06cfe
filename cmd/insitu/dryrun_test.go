package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/insitu-lab/insitu/drivers/scpi/scpitest"
	"github.com/insitu-lab/insitu/loop/journal"
	"github.com/insitu-lab/insitu/simulators/bench"
)

// dryRun runs `insitu run CONFIG --dry-run` with two iterations and extra
// args into a fresh directory and returns the run directory and the bill.
func dryRun(t *testing.T, cfg string, args ...string) (string, Bill, string) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "r")
	stdout, stderr, err := run(t, append([]string{"run", cfg, "--dry-run", "-q", "--set", "iterations=2", "--out", out}, args...)...)
	if err != nil {
		t.Fatalf("dry run of %s: %v\n%s\n%s", cfg, err, stdout, stderr)
	}
	dir := out + dryRunSuffix
	data, err := os.ReadFile(filepath.Join(dir, BillFile))
	if err != nil {
		t.Fatal(err)
	}
	var b Bill
	if err := json.Unmarshal(data, &b); err != nil {
		t.Fatalf("%s: %v", BillFile, err)
	}
	return dir, b, stdout
}

// The device paths the hardware configs name; none exists here, so a run
// that opened one would fail.
var benchDevices = []string{"/dev/fb1", "/dev/video0", "/dev/usbtmc0", "/dev/ttyUSB0", "/dev/i2c-1"}

// Every hardware bench config dry-runs without its hardware: the bill
// parses, its device-query count is the guard's and the journal's, every
// part's safe state ran and says what it did, and the run directory and
// the journal say it was a dry run.
func TestDryRunEveryBenchConfig(t *testing.T) {
	for _, d := range benchDevices {
		if _, err := os.Stat(d); err == nil {
			t.Logf("%s exists on this machine: the test cannot show that the dry run leaves it alone", d)
		}
	}
	paths, err := filepath.Glob("../../configs/bench-*.yaml")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no bench configs: %v", err)
	}
	for _, path := range paths {
		if strings.HasSuffix(path, "-twin.yaml") {
			continue // the software-twin variants are run as they are
		}
		t.Run(filepath.Base(path), func(t *testing.T) {
			// The surrogate's training is not under test: one epoch keeps
			// the SLM configs' 3600-input networks quick.
			dir, b, stdout := dryRun(t, path, "--set", "surrogate.initial_epochs=1", "--set", "surrogate.epochs=1")
			if !strings.HasSuffix(dir, "-dryrun") || !b.DryRun || b.Status != string(journal.RunFinished) || b.Error != "" {
				t.Fatalf("bill: dry run %v, status %s, error %q", b.DryRun, b.Status, b.Error)
			}
			j, err := journal.OpenReadOnly(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer j.Close()
			used, err := deviceQueriesUsed(context.Background(), j)
			if err != nil {
				t.Fatal(err)
			}
			if b.Queries.Device == 0 || int(b.Queries.Device) != used || b.Queries.Journal != used {
				t.Errorf("device queries: bill %d (guard), %d (journal per the bill); the journal holds %d", b.Queries.Device, b.Queries.Journal, used)
			}
			if !strings.Contains(stdout, "hardware bill") || !strings.Contains(stdout, "bench time") {
				t.Errorf("the bill is not printed:\n%s", stdout)
			}
			cfg, err := j.Config(context.Background())
			if err != nil || !strings.Contains(string(cfg), "twin: true") {
				t.Errorf("the journal's config does not mark the dry run (twin: true): %v\n%s", err, cfg)
			}
			if s, _ := j.Summary(context.Background()); !strings.Contains(s.Kind, "dry run") {
				t.Errorf("journal kind %q", s.Kind)
			}
			if b.Time.EstimatedBench <= b.Time.Process || b.Time.Device <= 0 {
				t.Errorf("bench time %+v", b.Time)
			}
			if len(b.SafeState) != len(b.Parts) {
				t.Fatalf("%d safe-state steps for %d parts", len(b.SafeState), len(b.Parts))
			}
			for _, s := range b.SafeState {
				want := map[string]string{"smu": "OUTP OFF", "slm": "blank", "daq": "0 V", "camera": "nothing", "powermeter": "nothing"}[s.Type]
				if !s.Ran || s.Error != "" || !strings.Contains(s.Action, want) {
					t.Errorf("safe state of %s: %+v, want it ran and says %q", s.Part, s, want)
				}
			}
			for _, p := range b.Parts {
				if p.Type == "slm" && b.SLMFrames != int(b.Queries.Device) {
					t.Errorf("%d SLM frames for %d device queries", b.SLMFrames, b.Queries.Device)
				}
				if p.Type == "smu" || p.Type == "powermeter" {
					if !strings.Contains(strings.Join(p.Notes, "\n"), "identity check") {
						t.Errorf("%s: the bill does not say the identity pattern was replaced: %q", p.Name, p.Notes)
					}
				}
			}
		})
	}
}

// The dry run of configs/bench-smu.yaml records, for the same seed, the
// journal that configs/bench-smu-twin.yaml records against the SMU twin
// served over TCP: the same queries and the same readings.
func TestDryRunJournalEqualsServedTwin(t *testing.T) {
	tw, err := bench.NewSMU(bench.TwinSMU)
	if err != nil {
		t.Fatal(err)
	}
	_, addr := scpitest.ServeTCP(t, tw.Instrument())
	src := readConfig(t, "bench-smu-twin.yaml")
	twinCfg := writeFile(t, "bench-smu-twin.yaml", strings.ReplaceAll(src, "127.0.0.1:5025", addr))
	served := filepath.Join(t.TempDir(), "served")
	if _, stderr, err := run(t, "run", twinCfg, "-q", "--set", "iterations=2", "--out", served); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	dir, b, _ := dryRun(t, "../../configs/bench-smu.yaml")
	want, _, err := run(t, "export", served, "--format", "csv")
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := run(t, "export", dir, "--format", "csv")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(want, "\n") < 10 {
		t.Fatalf("the served run exported only:\n%s", want)
	}
	// Every column but the times the queries ran.
	got, want = withoutTimes(t, got), withoutTimes(t, want)
	if got != want {
		t.Errorf("the dry run's journal differs from the served twin's\ndry run:\n%s\nserved:\n%s", got, want)
	}
	if b.Queries.RampSteps == 0 {
		t.Error("the runs compared had no ramp")
	}
}

// A black box that is not a rig has no parts to replace.
func TestDryRunRefusesANonRig(t *testing.T) {
	out := filepath.Join(t.TempDir(), "r")
	_, _, err := run(t, "run", "../../configs/owms.yaml", "--dry-run", "-q", "--out", out)
	if err == nil || !strings.Contains(err.Error(), "not a rig") {
		t.Fatalf("got %v", err)
	}
	if _, err := os.Stat(out + dryRunSuffix); err == nil {
		t.Error("the refused dry run left a run directory")
	}
}

// withoutTimes drops the started_at and finished_at columns of an export.
func withoutTimes(t *testing.T, text string) string {
	t.Helper()
	rows, err := csv.NewReader(strings.NewReader(text)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var keep []int
	for i, h := range rows[0] {
		if h != "started_at" && h != "finished_at" {
			keep = append(keep, i)
		}
	}
	var b strings.Builder
	for _, r := range rows {
		for k, i := range keep {
			if k > 0 {
				b.WriteByte(',')
			}
			b.WriteString(r[i])
		}
		b.WriteByte('\n')
	}
	return b.String()
}
