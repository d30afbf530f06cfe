package opamp

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/insitu-lab/insitu"
)

func TestValidateNamesEachKey(t *testing.T) {
	cases := []struct {
		key  string
		edit func(*Config)
	}{
		{"backend", func(c *Config) { c.Backend = "spectre" }},
		{"ngspice", func(c *Config) { c.Backend, c.NgspicePath = Ngspice, "" }},
		{"timeout", func(c *Config) { c.Timeout = 0 }},
		{"workers", func(c *Config) { c.Workers = -1 }},
		{"workers", func(c *Config) { c.Workers = MaxWorkers + 1 }},
		{"mismatch", func(c *Config) { c.Mismatch = -0.1 }},
		{"mismatch", func(c *Config) { c.Mismatch = math.NaN() }},
		{"mismatch", func(c *Config) { c.Mismatch = 0.6 }},
		{"output_noise", func(c *Config) { c.OutputNoise = math.Inf(1) }},
	}
	for _, c := range cases {
		cfg := DefaultConfig()
		c.edit(&cfg)
		err := cfg.Validate()
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Key != c.key {
			t.Errorf("%s: error %v, want a ConfigError for key %q", c.key, err, c.key)
			continue
		}
		if !strings.HasPrefix(err.Error(), "opamp: "+c.key+": ") {
			t.Errorf("%s: error %q should start with %q", c.key, err, "opamp: "+c.key+": ")
		}
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: New accepted an invalid config", c.key)
		}
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Errorf("default config: %v", err)
	}
	cfg := DefaultConfig()
	cfg.Backend, cfg.OutputNoise = "x", -1
	msg := cfg.Validate().Error()
	for _, k := range []string{"backend:", "output_noise:"} {
		if !strings.Contains(msg, k) {
			t.Errorf("joined error %q lacks %q", msg, k)
		}
	}
}

func TestFactory(t *testing.T) {
	ctx := context.Background()
	b, err := insitu.New(ctx, insitu.Params{Kind: "opamp", Values: map[string]any{"seed": 4, "timeout": "250ms"}, File: "op.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	tw := b.(*Twin)
	if tw.Config().Timeout != 250*time.Millisecond || tw.Config().Seed != 4 {
		t.Errorf("config %+v", tw.Config())
	}
	if s := b.Spec(); s.In.Dim() != 10 || len(s.Out) != 3 || s.In.Units[9] != "pF" {
		t.Errorf("spec %+v", s)
	}
	b, err = insitu.New(ctx, insitu.Params{Kind: "opamp", Values: map[string]any{"timeout": 2}})
	if err != nil || b.(*Twin).Config().Timeout != 2*time.Second {
		t.Errorf("timeout: 2 → %v, %v; want 2s", b, err)
	}
	for _, c := range []struct {
		vals map[string]any
		want string
	}{
		{map[string]any{"backend": "spice"}, "op.yaml: blackbox.backend"},
		{map[string]any{"timeout": "soon"}, "op.yaml: blackbox.timeout"},
		{map[string]any{"timeout": -1.0}, "op.yaml: blackbox.timeout"},
		{map[string]any{"mismatch": 2}, "op.yaml: blackbox.mismatch"},
		{map[string]any{"nosie": 0.1}, "nosie"},
		{map[string]any{"backend": "ngspice", "ngspice": "/nonexistent/ngspice-7"}, "ngspice-7"},
	} {
		_, err := insitu.New(ctx, insitu.Params{Kind: "opamp", Values: c.vals, File: "op.yaml"})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want one naming %q", c.vals, err, c.want)
		}
	}
}
