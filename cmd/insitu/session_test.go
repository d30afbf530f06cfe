package main

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/insitu-lab/insitu/loop/journal"
)

func TestRunNameIsNotAPath(t *testing.T) {
	for _, name := range []string{"../../x", "a/b", `a\b`, "..", ".hidden", "x\ny", strings.Repeat("n", 129)} {
		if err := checkRunName(name); err == nil || !strings.Contains(err.Error(), "name") {
			t.Errorf("name %q: %v, want an error naming the key", name, err)
		}
	}
	for _, name := range []string{"", "bench-smu", "cnon_N10.s1"} {
		if err := checkRunName(name); err != nil {
			t.Errorf("name %q: %v", name, err)
		}
	}
	// End to end: the run is refused before any directory is made.
	wd := t.TempDir()
	t.Chdir(wd)
	cfg := writeFile(t, "tiny.yaml", "name: ../../escaped\n"+tinyRun)
	_, _, err := run(t, "run", cfg, "-q")
	if err == nil || !strings.Contains(err.Error(), "name") {
		t.Fatalf("run with name ../../escaped: %v", err)
	}
	for _, p := range []string{filepath.Join(wd, "runs"), filepath.Join(wd, "..", "..", "escaped")} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s exists after a refused run", p)
		}
	}
}

func TestStoredExecutableIsNotRun(t *testing.T) {
	box := map[string]any{"kind": "opamp", "backend": "ngspice", "ngspice": "/tmp/evil/ngspice"}
	err := checkStoredExecutables("j.db (config)", box)
	if err == nil || !strings.Contains(err.Error(), "/tmp/evil/ngspice") || !strings.Contains(err.Error(), "INSITU_BLACKBOX_NGSPICE") {
		t.Fatalf("a path from the journal: %v", err)
	}
	t.Setenv("INSITU_BLACKBOX_NGSPICE", "/tmp/evil/ngspice")
	if err := checkStoredExecutables("j.db (config)", box); err != nil {
		t.Errorf("confirmed by the environment: %v", err)
	}
	t.Setenv("INSITU_BLACKBOX_NGSPICE", "/usr/bin/ngspice")
	if err := checkStoredExecutables("j.db (config)", box); err == nil {
		t.Error("a different path in the environment confirmed the journal's")
	}
	for _, b := range []map[string]any{
		{"kind": "opamp", "ngspice": "ngspice"}, // a bare name is looked up in today's PATH
		{"kind": "cnon", "ngspice": "/x/y"},     // not an executable key of this kind
	} {
		if err := checkStoredExecutables("j", b); err != nil {
			t.Errorf("%v: %v", b, err)
		}
	}
}

func TestEventLogKeepsTheFirstWriteError(t *testing.T) {
	dir := t.TempDir()
	j, err := journal.Create(dir, journal.Meta{Version: "test", Method: "random", Kind: "cnon", Seed: 1, Direction: journal.Minimize}, []byte("x: 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	log := &eventLog{j: j}
	log.record(journal.EventRecord{Kind: "clamp", Detail: "first", Value: 1})
	if err := log.err(); err != nil {
		t.Fatalf("a good write: %v", err)
	}
	j.Close() // every later write fails, as on a full disk
	log.record(journal.EventRecord{Kind: "interlock", Detail: "trip", Value: 2})
	log.record(journal.EventRecord{Kind: "safestate", Detail: "later", Value: 3})
	err = log.err()
	if err == nil || !strings.Contains(err.Error(), "interlock") || strings.Contains(err.Error(), "later") {
		t.Errorf("first error: %v", err)
	}
}

func TestPrintEventsTable(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	evs := []journal.EventRecord{
		{Time: t0, Kind: "clamp", Name: "smu/voltage", Value: 2.5, Detail: "input smu/voltage = 2.5 clamped to 2"},
		{Time: t0.Add(time.Second), Kind: "interlock", Name: "smu/compliance", Value: 1, Detail: "interlock compliance"},
		{Time: t0.Add(2 * time.Second), Kind: "safestate", Value: math.NaN(), Detail: "device in safe state"},
	}
	var b bytes.Buffer
	printEvents(&b, evs, 2)
	out := b.String()
	for _, want := range []string{"safety events: 3 (clamp 1, interlock 1, safestate 1)", "KIND", "smu/compliance", "10:00:02.000", "last 2"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
	if strings.Contains(out, "map[") || strings.Contains(out, "clamped to 2") {
		t.Errorf("Go map syntax or a row beyond the last 2:\n%s", out)
	}
	b.Reset()
	printEvents(&b, nil, 2)
	if !strings.Contains(b.String(), "none") {
		t.Errorf("no events: %q", b.String())
	}
}

func TestCPUProfile(t *testing.T) {
	cfg := writeFile(t, "tiny.yaml", tinyRun)
	prof := filepath.Join(t.TempDir(), "cpu.pprof")
	if _, stderr, err := run(t, "run", cfg, "--out", filepath.Join(t.TempDir(), "r"), "-q", "--cpuprofile", prof); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	b, err := os.ReadFile(prof)
	// A pprof profile is gzip-compressed protobuf.
	if err != nil || len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
		t.Fatalf("profile %s: %v, %d bytes", prof, err, len(b))
	}
	if err := stopProfile(); err != nil {
		t.Errorf("the profile was left running: %v", err)
	}
}
