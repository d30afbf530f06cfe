package cnon

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/insitu-lab/insitu"
	"github.com/insitu-lab/insitu/simulators/twintest"
)

func TestValidateNamesEachKey(t *testing.T) {
	cases := []twintest.ConfigCase[Config]{
		{Key: "n", Edit: func(c *Config) { c.N = 0 }},
		{Key: "n", Edit: func(c *Config) { c.N = MaxN + 1 }},
		{Key: "horizon", Edit: func(c *Config) { c.Horizon = 0 }},
		{Key: "horizon", Edit: func(c *Config) { c.Horizon = math.Inf(1) }},
		{Key: "steps", Edit: func(c *Config) { c.Steps = 0 }},
		{Key: "steps", Edit: func(c *Config) { c.Steps = MaxSteps + 1 }},
		{Key: "steps", Edit: func(c *Config) { c.N, c.Steps = 1000, 100_000 }},
		{Key: "c0", Edit: func(c *Config) { c.C0 = math.NaN() }},
		{Key: "c1", Edit: func(c *Config) { c.C1 = math.Inf(-1) }},
		{Key: "e0", Edit: func(c *Config) { c.E0 = math.NaN() }},
		{Key: "e1", Edit: func(c *Config) { c.E1 = math.NaN() }},
		{Key: "eta", Edit: func(c *Config) { c.Eta = -1 }},
		{Key: "eta", Edit: func(c *Config) { c.Eta = math.NaN() }},
		{Key: "coupling_noise", Edit: func(c *Config) { c.CouplingNoise = -0.1 }},
		{Key: "input_noise", Edit: func(c *Config) { c.InputNoise = math.Inf(1) }},
		{Key: "output_noise", Edit: func(c *Config) { c.OutputNoise = -1e-9 }},
	}
	twintest.ConfigErrors(t, "cnon", DefaultConfig, Config.Validate, func(c Config) error { _, err := New(c); return err }, cases)
	// Every problem at once.
	cfg := DefaultConfig()
	cfg.N, cfg.Steps, cfg.OutputNoise = 0, 0, -1
	msg := cfg.Validate().Error()
	for _, k := range []string{"n:", "steps: must be ≥ 1, got 0", "output_noise:"} {
		if !strings.Contains(msg, k) {
			t.Errorf("joined error %q lacks %q", msg, k)
		}
	}
}

func TestRegistry(t *testing.T) {
	ctx := context.Background()
	b, err := insitu.New(ctx, insitu.Params{Kind: "cnon", Values: map[string]any{"n": 12}})
	if err != nil {
		t.Fatal(err)
	}
	tw, ok := b.(*Twin)
	if !ok {
		t.Fatalf("built a %T", b)
	}
	want := DefaultConfig()
	want.N = 12
	if tw.Config() != want {
		t.Errorf("config %+v, want defaults with n = 12", tw.Config())
	}
	if tw.Spec().In.Dim() != 12 {
		t.Errorf("dimension %d", tw.Spec().In.Dim())
	}
	var _ insitu.Differentiable = tw
	var _ insitu.Batcher = tw
	var _ insitu.Sequenced = tw

	// Every key decodes, numbers weakly typed as from a flag or env var.
	b, err = insitu.New(ctx, insitu.Params{Kind: "cnon", Values: map[string]any{
		"n": "4", "horizon": 2.5, "steps": 25, "c0": 0.2, "c1": 0, "e0": 0.3, "e1": 0.05,
		"seed": 7, "eta": 0.1, "coupling_noise": 0.01, "input_noise": 0.02, "output_noise": "1e-3",
	}})
	if err != nil {
		t.Fatal(err)
	}
	got := b.(*Twin).Config()
	wantAll := Config{N: 4, Horizon: 2.5, Steps: 25, C0: 0.2, C1: 0, E0: 0.3, E1: 0.05,
		Seed: 7, Eta: 0.1, CouplingNoise: 0.01, InputNoise: 0.02, OutputNoise: 1e-3}
	if got != wantAll {
		t.Errorf("decoded %+v, want %+v", got, wantAll)
	}

	bad := []struct {
		values map[string]any
		want   []string
	}{
		{map[string]any{"n": 12, "warp": 9}, []string{"cfg.yaml", "warp"}},
		{map[string]any{"steps": 0}, []string{"cfg.yaml", "blackbox.steps", "must be ≥ 1, got 0"}},
		{map[string]any{"n": "many"}, []string{"cfg.yaml", "n"}},
		{map[string]any{"eta": -2, "input_noise": -1}, []string{"blackbox.eta", "blackbox.input_noise"}},
	}
	for _, c := range bad {
		_, err := insitu.New(ctx, insitu.Params{Kind: "cnon", Values: c.values, File: "cfg.yaml"})
		if err == nil {
			t.Errorf("%v: no error", c.values)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v: error %q lacks %q", c.values, err, w)
			}
		}
	}
}
