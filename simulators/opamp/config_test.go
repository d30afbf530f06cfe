package opamp

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/insitu-lab/insitu"
	"github.com/insitu-lab/insitu/simulators/twintest"
)

func TestValidateNamesEachKey(t *testing.T) {
	cases := []twintest.ConfigCase[Config]{
		{Key: "backend", Edit: func(c *Config) { c.Backend = "spectre" }},
		{Key: "ngspice", Edit: func(c *Config) { c.Backend, c.NgspicePath = Ngspice, "" }},
		{Key: "timeout", Edit: func(c *Config) { c.Timeout = 0 }},
		{Key: "workers", Edit: func(c *Config) { c.Workers = -1 }},
		{Key: "workers", Edit: func(c *Config) { c.Workers = MaxWorkers + 1 }},
		{Key: "mismatch", Edit: func(c *Config) { c.Mismatch = -0.1 }},
		{Key: "mismatch", Edit: func(c *Config) { c.Mismatch = math.NaN() }},
		{Key: "mismatch", Edit: func(c *Config) { c.Mismatch = 0.6 }},
		{Key: "output_noise", Edit: func(c *Config) { c.OutputNoise = math.Inf(1) }},
	}
	twintest.ConfigErrors(t, "opamp", DefaultConfig, Config.Validate, func(c Config) error { _, err := New(c); return err }, cases)
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
