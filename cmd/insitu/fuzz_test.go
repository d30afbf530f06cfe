package main

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/insitu-lab/insitu/loop"
	"github.com/insitu-lab/insitu/surrogate"
)

// keyed matches an error that names a key: "top_k: …", "surrogate.hidden[1]: …",
// mapstructure's "'init.points' expected …", or a YAML syntax error's line.
var keyed = regexp.MustCompile(`[a-z_0-9]+(\[\d+\])?(\.[a-z_0-9]+(\[\d+\])?)*: |'[^']+'|line \d+`)

// FuzzRunConfig: any bytes as a run config file either resolve to a valid
// config or give an error that names the file and a key (or the YAML line);
// nothing panics, however large the counts and sizes.
func FuzzRunConfig(f *testing.F) {
	f.Add([]byte(tinyRun))
	f.Add([]byte("method: gradpie\ntop_k: 0\n"))
	f.Add([]byte("surrogate: {hidden: [4, -1], norm: l3}\n"))
	f.Add([]byte("safety: {max_step: {x0: 0.1}, rate: 0, slew_mode: teleport}\n"))
	f.Add([]byte("init: {x: [[0.1, 0.2], [1]]}\nblackbox: {kind: cnon, n: 2}\n"))
	f.Add([]byte("iterations: [1, 2]\n"))
	f.Add([]byte(": :\n"))
	f.Add([]byte("surrogate: {hidden: [1e8, 1e8]}\nblackbox: {kind: cnon}\n"))
	f.Add([]byte("iterations: 3e18\nblackbox: {kind: cnon}\n"))
	f.Add([]byte("init: {points: 1e12}\nblackbox: {kind: cnon}\n"))
	f.Add([]byte("budget: 1e30\nseed: -1\niterations: 2.5\n"))
	f.Add([]byte("safety: {timeout: 10, grace: \"10\", min_interval: 2.5}\n"))
	f.Add([]byte("topk: 1\nsurrogate: 5\nlocal: [1]\n"))
	f.Add([]byte("a: &x {b: 1}\nsurrogate: {<<: *x, hidden: [.inf, .nan, -1e400]}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg := defaultRunConfig()
		err := resolveConfig("fuzz.yaml", data, nil, nil, nil, &cfg)
		if err == nil {
			err = prefixFile("fuzz.yaml", cfg.validate())
		}
		if err == nil {
			// A valid config is one a run can hold: its budget and sizes
			// are bounded, whatever the file said.
			if b := cfg.EffectiveBudget(); b < 1 || b > loop.MaxQueries {
				t.Errorf("valid config with a budget of %d queries", b)
			}
			if n := cfg.InitPoints(); n > loop.MaxInitPoints {
				t.Errorf("valid config with %d initial points", n)
			}
			arch := surrogate.Arch{Hidden: cfg.Surrogate.Hidden, LayerNorm: cfg.Surrogate.LayerNorm}
			if len(arch.Hidden) > loop.MaxHiddenLayers || slices.Max(arch.Hidden) > loop.MaxHiddenWidth || arch.NumParams(1, 1) > loop.MaxParams {
				t.Errorf("valid config with surrogate.hidden %v", arch.Hidden)
			}
			return
		}
		msg := err.Error()
		if !strings.Contains(msg, "fuzz.yaml") {
			t.Errorf("error does not name the file: %v", msg)
		}
		if !keyed.MatchString(msg) {
			t.Errorf("error names no key: %v", msg)
		}
	})
}

// FuzzSetOverride: any --set on a valid config resolves or gives an error
// naming a key; nothing panics.
func FuzzSetOverride(f *testing.F) {
	f.Add("iterations", "3e18")
	f.Add("surrogate.hidden", "[1e8, 1e8]")
	f.Add("surrogate", "5")
	f.Add("safety.timeout", "10")
	f.Add("init.x", "[[1, 2], [abc]]")
	f.Add("seed", "-1")
	f.Add("a.b[0]", "{c: 1}")
	f.Fuzz(func(t *testing.T, key, value string) {
		cfg := defaultRunConfig()
		err := resolveConfig("fuzz.yaml", []byte(tinyRun), nil, nil, []string{key + "=" + value}, &cfg)
		if err == nil {
			err = prefixFile("fuzz.yaml", cfg.validate())
		}
		if err != nil && !keyed.MatchString(err.Error()) && !strings.Contains(err.Error(), "--set") {
			t.Errorf("error names no key: %v", err)
		}
	})
}
