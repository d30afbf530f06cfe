package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/insitu-lab/insitu/loop/study"
)

// A list in the file replaces the default list: a setting does not inherit
// the keys of the default setting at its index, and the blackbox section
// of another twin does not inherit CNON's keys.
func TestConfigListsReplaceDefaults(t *testing.T) {
	file := writeFile(t, "study.yaml", `
blackbox: {kind: pnn-optical, eta: 0.1}
settings:
  - {name: a, points: 100}
`)
	cfg := study.DefaultGradientConfig()
	if err := loadConfig(file, nil, nil, nil, &cfg); err != nil {
		t.Fatal(err)
	}
	if len(cfg.Settings) != 1 || cfg.Settings[0].Name != "a" || len(cfg.Settings[0].BlackBox) != 0 {
		t.Errorf("settings %+v: want the file's one setting, without the default's blackbox keys", cfg.Settings)
	}
	if len(cfg.BlackBox) != 2 || cfg.BlackBox["kind"] != "pnn-optical" {
		t.Errorf("blackbox %v: want the file's kind and eta only", cfg.BlackBox)
	}
	// Defaults the file does not touch are kept.
	if cfg.Epochs != 100 || len(cfg.Ks) != 6 {
		t.Errorf("defaults lost: epochs %d, ks %v", cfg.Epochs, cfg.Ks)
	}
}

// head is a valid run config of two lines; the cases below add from line 3.
const head = "method: gradpie\nblackbox: {kind: cnon, n: 4, horizon: 2, steps: 20}\n"

// Every problem of a config names where its value came from (file:line,
// --set, the environment, the defaults), the key's dotted path, the value
// and what is wanted; the message is the configuration's, not the
// decoder's.
func TestConfigErrorsNameSourceKeyAndValue(t *testing.T) {
	cases := []struct {
		name string
		body string   // after head
		sets []string // --set
		env  []string // NAME=value
		want string
	}{
		// A duration without a unit, from every source and YAML type.
		{"duration int", "safety: {timeout: 10}\n", nil, nil, "bad.yaml:3: safety.timeout: 10 has no unit: write 10s (or 10ms, 10us)"},
		{"duration float", "safety:\n  max_step: 2\n  timeout: 2.5\n", nil, nil, "bad.yaml:5: safety.timeout: 2.5 has no unit: write 2.5s (or 2.5ms, 2.5us)"},
		{"duration string", "safety: {grace: \"10\"}\n", nil, nil, "bad.yaml:3: safety.grace: 10 has no unit: write 10s"},
		{"duration --set", "", []string{"safety.timeout=10"}, nil, "--set safety.timeout=10: safety.timeout: 10 has no unit: write 10s (or 10ms, 10us)"},
		{"duration env", "", nil, []string{"INSITU_SAFETY_TIMEOUT=10"}, "environment INSITU_SAFETY_TIMEOUT=10: safety.timeout: 10 has no unit: write 10s (or 10ms, 10us)"},
		{"duration unit", "safety: {min_interval: 10 secs}\n", nil, nil, `bad.yaml:3: safety.min_interval: "10 secs" has an unknown unit: want ns, us, ms, s, m or h`},
		// Counts that do not fit, are not whole, are negative or are too large.
		{"iterations 3e18", "iterations: 3e18\n", nil, nil, "bad.yaml:3: iterations: 3000000000000000000: want 1 to 1000000"},
		{"budget 1e30", "budget: 1e30\n", nil, nil, "bad.yaml:3: budget: 1e30 does not fit an int (at most 9223372036854775807)"},
		{"iterations 2.5", "iterations: 2.5\n", nil, nil, "bad.yaml:3: iterations: 2.5 is not a whole number"},
		{"seed -1", "seed: -1\n", nil, nil, "bad.yaml:3: seed: -1 is negative: want a whole number ≥ 0"},
		{"hidden 1e8", "surrogate: {hidden: [1e8, 1e8]}\n", nil, nil, "bad.yaml:3: surrogate.hidden[0]: 100000000: want 1 to 65536"},
		{"hidden item line", "surrogate:\n  hidden:\n    - 16\n    - 2.5\n", nil, nil, "bad.yaml:6: surrogate.hidden[1]: 2.5 is not a whole number"},
		{"init points 1e12", "init: {points: 1e12}\n", nil, nil, "bad.yaml:3: init.points: 1000000000000: want 1 to 1000000"},
		{"seed env", "", nil, []string{"INSITU_SEED=-1"}, "environment INSITU_SEED=-1: seed: -1 is negative"},
		{"budget --set", "budget: 10\n", []string{"budget=1e30"}, nil, "--set budget=1e30: budget: 1e30 does not fit an int"},
		{"top_k --set", "", []string{"top_k=0"}, nil, "--set top_k=0: top_k: 0: want 1 to 10000"},
		// Wrong types and unknown keys.
		{"abc --set", "iterations: 5\n", []string{"iterations=abc"}, nil, `--set iterations=abc: iterations: "abc" is not a number: want a whole number`},
		{"abc env", "iterations: 5\n", nil, []string{"INSITU_ITERATIONS=abc"}, `environment INSITU_ITERATIONS=abc: iterations: "abc" is not a number: want a whole number`},
		{"list for a number", "iterations: [1, 2]\n", nil, nil, "bad.yaml:3: iterations: want a whole number, not a list"},
		{"scalar for a section", "surrogate: 5\n", nil, nil, "bad.yaml:3: surrogate: want a map of keys, not 5"},
		{"unknown key", "top_k: 3\ntopk: 3\n", nil, nil, "bad.yaml:4: topk: unknown key (did you mean top_k?)"},
		{"unknown nested key", "surrogate:\n  hiden: [4]\n", nil, nil, "bad.yaml:4: surrogate.hiden: unknown key (did you mean hidden?)"},
		{"unknown key --set", "", []string{"surogate.k=3"}, nil, "--set surogate.k=3: surogate: unknown key (did you mean surrogate?)"},
		{"map key", "safety: {max_step: {x0: abc}}\n", nil, nil, `bad.yaml:3: safety.max_step.x0: "abc" is not a number`},
		{"safety key", "safety: {rate: 0}\n", nil, nil, "bad.yaml:3: safety.rate: must be positive and finite"},
		{"precision", "surrogate:\n  precision: float16\n", nil, nil, `bad.yaml:4: surrogate.precision: "float16": want float64 or float32`},
		{"precision --set", "", []string{"surrogate.precision=half"}, nil, `--set surrogate.precision=half: surrogate.precision: "half": want float64 or float32`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, e := range c.env {
				name, val, _ := strings.Cut(e, "=")
				t.Setenv(name, val)
			}
			file := writeFile(t, "bad.yaml", head+c.body)
			cfg := defaultRunConfig()
			err := loadConfig(file, nil, nil, c.sets, &cfg)
			if err == nil {
				t.Fatal("bad config accepted")
			}
			msg := strings.ReplaceAll(err.Error(), file, "bad.yaml")
			if !strings.Contains(msg, c.want) {
				t.Errorf("error\n%s\nlacks\n%s", msg, c.want)
			}
			if (len(c.sets) > 0 || len(c.env) > 0) && strings.Contains(msg, "bad.yaml") {
				t.Errorf("error blames the file for a value it did not give:\n%s", msg)
			}
			for _, internal := range []string{"invalid keys", "cannot parse", "strconv", "expected type", "decoding failed"} {
				if strings.Contains(msg, internal) {
					t.Errorf("error reads as the decoder's (%q):\n%s", internal, msg)
				}
			}
		})
	}
}

// Without a file the values are the defaults', and errors say so.
func TestConfigErrorsFromTheDefaults(t *testing.T) {
	cfg := defaultRunConfig()
	err := loadConfig("", nil, nil, nil, &cfg)
	if err == nil || !strings.Contains(err.Error(), "defaults: blackbox.kind: missing") {
		t.Errorf("got %v", err)
	}
}

// Zero needs no unit, and durations with units decode.
func TestConfigDurations(t *testing.T) {
	file := writeFile(t, "ok.yaml", head+"safety: {timeout: 1m30s, grace: 0, safe_state_timeout: 150ms}\n")
	cfg := defaultRunConfig()
	if err := loadConfig(file, nil, nil, nil, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Safety.Timeout != 90*time.Second || cfg.Safety.Grace != 0 || cfg.Safety.SafeStateTimeout != 150*time.Millisecond {
		t.Errorf("safety %+v", cfg.Safety)
	}
}

// A run whose counts are out of range is refused before its directory, its
// journal or its black box is made.
func TestRunRefusesBadCountsBeforeOpeningAnything(t *testing.T) {
	for _, body := range []string{"iterations: 3e18\n", "budget: 1e30\n", "surrogate: {hidden: [1e8, 1e8]}\n", "seed: -1\n", "iterations: 2.5\n"} {
		file := writeFile(t, "bad.yaml", head+body)
		dir := filepath.Join(t.TempDir(), "r")
		_, _, err := run(t, "run", file, "--out", dir, "-q")
		if err == nil || !strings.Contains(err.Error(), "bad.yaml:3: ") {
			t.Errorf("%s: %v", body, err)
		}
		if _, serr := os.Stat(dir); serr == nil {
			t.Errorf("%s: the run directory was made", body)
		}
	}
}
