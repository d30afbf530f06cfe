package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// smuCheck is an SMU rig config as a new user writes one, with its lines
// numbered by the tests below (line 1 is "name: …").
const smuCheck = `name: smu-check
method: gradpie
seed: 1
iterations: 30
checkpoint_every: 10
blackbox:
  kind: rig
  name: smu-bias
  parts:
    - name: smu
      type: smu
      idn: "(?i)twin"
      transport:
        type: lxi
        lxi: {address: 127.0.0.1:1, timeout: 2s}
      range: 2
      compliance: 1e-3
      min: 0
      max: 0.7
      step: 0.05
      settle: 0s
      bounds: {lower: 0, upper: 0.7}
objective:
  kind: distance
  outputs: [smu/current]
  target: [5.0e-4]
init: {points: 12}
safety:
  max_step: 0.2
  slew_mode: ramp
  initial: {smu/voltage: 0}
  rate: 1000
  budget: 400
  timeout: 5s
  upper: {smu/voltage: 0.7}
`

// edit replaces each old line of smuCheck by its new one.
func edit(t *testing.T, pairs ...string) string {
	t.Helper()
	s := smuCheck
	for i := 0; i < len(pairs); i += 2 {
		if !strings.Contains(s, pairs[i]) {
			t.Fatalf("smuCheck has no %q", pairs[i])
		}
		s = strings.Replace(s, pairs[i], pairs[i+1], 1)
	}
	return s
}

// TestConfigCheckBoundsWithinTheDevice: a part's bounds and the safety
// section's bounds must lie within the device's range; one outside it is
// an error naming both numbers, with the file and line, in config check
// and when a run starts (before any run directory or device).
func TestConfigCheckBoundsWithinTheDevice(t *testing.T) {
	if _, _, err := run(t, "config", "check", writeFile(t, "good.yaml", smuCheck)); err != nil {
		t.Fatalf("the good config: %v", err)
	}
	for _, c := range []struct {
		name, old, new, want string
	}{
		{"part bounds above max", "bounds: {lower: 0, upper: 0.7}", "bounds: {lower: 0, upper: 1.5}",
			"bench.yaml:22: blackbox.parts[0].bounds.upper: 1.5 V is above the device's range [0, 0.7] V of voltage"},
		{"part bounds below min", "bounds: {lower: 0, upper: 0.7}", "bounds: {lower: -0.1, upper: 0.7}",
			"bench.yaml:22: blackbox.parts[0].bounds.lower: -0.1 V is below the device's range [0, 0.7] V of voltage"},
		{"safety upper above the range", "upper: {smu/voltage: 0.7}", "upper: {smu/voltage: 5}",
			"bench.yaml:35: safety.upper.smu/voltage: 5 V is above the device's range [0, 0.7] V of smu/voltage"},
		{"safety lower below the part's bounds", "upper: {smu/voltage: 0.7}", "lower: {smu/voltage: -1}",
			"bench.yaml:35: safety.lower.smu/voltage: -1 V is below the device's range [0, 0.7] V of smu/voltage"},
	} {
		t.Run(c.name, func(t *testing.T) {
			file := writeFile(t, "bench.yaml", edit(t, c.old, c.new))
			_, _, err := run(t, "config", "check", file)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("config check: %v\nwant %s", err, c.want)
			}
			dir := filepath.Join(t.TempDir(), "r")
			_, _, err = run(t, "run", file, "--out", dir, "-q")
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("run: %v\nwant %s", err, c.want)
			}
			if _, serr := os.Stat(dir); serr == nil {
				t.Error("the run directory was made")
			}
		})
	}
}

// TestConfigCheckReportsEveryProblemOnce: eight mistakes at every level of
// a config (a misspelt key, a value of the wrong type, a negative count, a
// duration without a unit at the top and in a part, a part's own check,
// a part's bound and a safety bound outside the device) are all reported
// by one config check, each once, with its file and line, in the order of
// the lines, and none repeats its key.
func TestConfigCheckReportsEveryProblemOnce(t *testing.T) {
	src := edit(t,
		"iterations: 30", "iterationz: 30",
		"checkpoint_every: 10", "checkpoint_every: ten",
		"step: 0.05", "step: -0.05",
		"settle: 0s", "settle: 0.3",
		"bounds: {lower: 0, upper: 0.7}", "bounds: {lower: 0, upper: 1.5}",
		"init: {points: 12}", "init: {points: -12}",
		"timeout: 5s", "timeout: 5",
		"upper: {smu/voltage: 0.7}", "upper: {smu/voltage: 5}",
	)
	file := writeFile(t, "bench.yaml", src)
	_, _, err := run(t, "config", "check", file)
	if err == nil {
		t.Fatal("a config with eight mistakes passed")
	}
	want := []string{
		"bench.yaml:4: iterationz: unknown key (did you mean iterations?)",
		`bench.yaml:5: checkpoint_every: "ten" is not a number: want a whole number`,
		"bench.yaml:20: blackbox.parts[0].step: -0.05 V: must be positive (ramped changes are mandatory)",
		"bench.yaml:21: blackbox.parts[0].settle: 0.3 has no unit: write 0.3s (or 0.3ms, 0.3us)",
		"bench.yaml:22: blackbox.parts[0].bounds.upper: 1.5 V is above the device's range [0, 0.7] V of voltage",
		"bench.yaml:27: init.points: -12: want 1 to 1000000",
		"bench.yaml:34: safety.timeout: 5 has no unit: write 5s (or 5ms, 5us)",
		"bench.yaml:35: safety.upper.smu/voltage: 5 V is above the device's range [0, 0.7] V of smu/voltage",
	}
	if got := inDir(file, err); got != strings.Join(want, "\n") {
		t.Errorf("config check reported\n%s\nwant\n%s", got, strings.Join(want, "\n"))
	}
	// A required key the part leaves out is placed at the part.
	file = writeFile(t, "bench.yaml", edit(t, "      compliance: 1e-3\n", ""))
	if _, _, err := run(t, "config", "check", file); inDir(file, err) != "bench.yaml:10: blackbox.parts[0].compliance: 0 A: want (0, 1.05]" {
		t.Errorf("a missing compliance: %v", err)
	}
}

// inDir is err's message with file's directory taken out of it ("" for
// no error).
func inDir(file string, err error) string {
	if err == nil {
		return ""
	}
	return strings.ReplaceAll(err.Error(), filepath.Dir(file)+string(filepath.Separator), "")
}

// TestConfigSizeLimits: a config file over the size limit, with a list
// longer than the limit, or with more values in all than the limit, is
// refused with an error naming the file (and the key and line of the
// list), before anything is decoded.
func TestConfigSizeLimits(t *testing.T) {
	var b bytes.Buffer
	b.WriteString("init:\n  x:\n")
	row := "    - [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]\n"
	for b.Len() <= maxConfigBytes {
		b.WriteString(row)
	}
	big := writeFile(t, "big.yaml", "blackbox: {kind: cnon, n: 10}\n"+b.String())
	_, _, err := run(t, "config", "check", big)
	want := fmt.Sprintf("big.yaml is %d.0 MiB, more than the %d MiB a config may hold", maxConfigBytes>>20, maxConfigBytes>>20)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("a config over the limit: %v\nwant %s", err, want)
	}
	dir := filepath.Join(t.TempDir(), "r")
	if _, _, err := run(t, "run", big, "--out", dir, "-q"); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("run of a config over the limit: %v", err)
	}
	if _, serr := os.Stat(dir); serr == nil {
		t.Error("the run directory was made")
	}

	var long strings.Builder
	long.WriteString("blackbox: {kind: cnon, n: 1}\ninit:\n  x: [")
	for i := range maxConfigItems + 1 {
		if i > 0 {
			long.WriteString(",")
		}
		long.WriteString("[0]")
	}
	long.WriteString("]\n")
	file := writeFile(t, "long.yaml", long.String())
	_, _, err = run(t, "config", "check", file)
	if want := fmt.Sprintf("long.yaml:3: init.x: a list of %d entries: at most %d", maxConfigItems+1, maxConfigItems); inDir(file, err) != want {
		t.Errorf("a list of %d points: %v\nwant %s", maxConfigItems+1, err, want)
	}

	// Lists within the limit, values over it, bytes under it.
	var many strings.Builder
	many.WriteString("blackbox: {kind: cnon, n: 1}\ninit:\n  x:\n")
	zeros := "    - [0" + strings.Repeat(",0", maxConfigItems-1) + "]\n"
	rows := maxConfigValues/maxConfigItems + 1
	for range rows {
		many.WriteString(zeros)
	}
	if many.Len() > maxConfigBytes {
		t.Fatalf("%d bytes: over the size limit", many.Len())
	}
	file = writeFile(t, "many.yaml", many.String())
	_, _, err = run(t, "config", "check", file)
	if want := fmt.Sprintf("many.yaml: %d values in all: at most %d", rows*maxConfigItems+2, maxConfigValues); !strings.HasPrefix(inDir(file, err), want) {
		t.Errorf("a config of %d values: %v\nwant %s", rows*maxConfigItems+2, err, want)
	}
}

// TestConfigCheckInitPoints: an init.x point of the wrong length or with a
// value that is not finite is reported at its line by config check, with
// the config's other problems, as the run would refuse it.
func TestConfigCheckInitPoints(t *testing.T) {
	file := writeFile(t, "init.yaml", `blackbox: {kind: cnon, n: 3}
top_k: 1
init:
  x:
    - [0, 0]
    - [0, 0, .nan]
    - [0.1, 0.2, 0.3]
iterations: -1
`)
	_, _, err := run(t, "config", "check", file)
	want := "init.yaml:5: init.x[0]: 2 values, cnon has 3 inputs\n" +
		"init.yaml:6: init.x[1][2]: NaN: want a finite value\n" +
		"init.yaml:8: iterations: -1: want 1 to 1000000"
	if got := inDir(file, err); got != want {
		t.Errorf("config check:\n%s\nwant\n%s", got, want)
	}
}

// TestResolvedConfigOverTheFileLimit: a config within the limits resolves
// to a larger document (defaults, one value per line); stored in a run's
// journal, it is read back whole, so that the run can be resumed.
func TestResolvedConfigOverTheFileLimit(t *testing.T) {
	var b strings.Builder
	b.WriteString("blackbox: {kind: cnon, n: 10}\niterations: 1\ninit:\n  x:\n")
	row := "    - [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]\n"
	for b.Len() < maxConfigBytes*2/5 {
		b.WriteString(row)
	}
	cfg := defaultRunConfig()
	if err := loadConfig(writeFile(t, "points.yaml", b.String()), nil, nil, nil, &cfg); err != nil {
		t.Fatal(err)
	}
	resolved, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(resolved) <= maxConfigBytes {
		t.Fatalf("resolved config of %d bytes: want one over the file limit", len(resolved))
	}
	back := defaultRunConfig()
	if err := resolveConfig("journal.db (config)", resolved, nil, nil, nil, &back); err != nil {
		t.Fatalf("a run's resolved config of %.1f MiB: %v", float64(len(resolved))/(1<<20), err)
	}
	if len(back.Init.X) != len(cfg.Init.X) || len(back.Init.X[0]) != 10 {
		t.Errorf("read back %d points, want %d", len(back.Init.X), len(cfg.Init.X))
	}
}
