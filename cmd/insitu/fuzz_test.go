package main

import (
	"regexp"
	"strings"
	"testing"
)

// keyed matches an error that names a key: "top_k: …", "surrogate.hidden[1]: …",
// mapstructure's "'init.points' expected …", or a YAML syntax error's line.
var keyed = regexp.MustCompile(`[a-z_0-9]+(\[\d+\])?(\.[a-z_0-9]+(\[\d+\])?)*: |'[^']+'|line \d+`)

// FuzzRunConfig: any bytes as a run config file either resolve to a valid
// config or give an error that names the file and a key (or the YAML line);
// nothing panics.
func FuzzRunConfig(f *testing.F) {
	f.Add([]byte(tinyRun))
	f.Add([]byte("method: gradpie\ntop_k: 0\n"))
	f.Add([]byte("surrogate: {hidden: [4, -1], norm: l3}\n"))
	f.Add([]byte("safety: {max_step: {x0: 0.1}, rate: 0, slew_mode: teleport}\n"))
	f.Add([]byte("init: {x: [[0.1, 0.2], [1]]}\nblackbox: {kind: cnon, n: 2}\n"))
	f.Add([]byte("iterations: [1, 2]\n"))
	f.Add([]byte(": :\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg := defaultRunConfig()
		err := resolveConfig("fuzz.yaml", data, nil, nil, nil, &cfg)
		if err == nil {
			err = prefixFile("fuzz.yaml", cfg.validate())
		}
		if err == nil {
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
