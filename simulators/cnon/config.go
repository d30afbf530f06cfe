package cnon

import (
	"context"
	"math"

	"github.com/insitu-lab/insitu"
)

// Config holds the parameters of a twin. The mapstructure tags are the keys
// of a configuration file's blackbox section.
type Config struct {
	N       int     `mapstructure:"n" doc:"oscillators: the input and output dimension"`
	Horizon float64 `mapstructure:"horizon" doc:"integration time T of the oscillators (q(T) is the output)"`
	Steps   int     `mapstructure:"steps" doc:"RK4 steps; dt = horizon/steps"`

	// C = C0·ones + C1·U(−1,1) and e = E0·ones + E1·U(−1,1), drawn once
	// from Seed.
	C0 float64 `mapstructure:"c0" doc:"coupling C = c0·ones + c1·U(−1, 1), drawn from seed"`
	C1 float64 `mapstructure:"c1" doc:"random part of the coupling"`
	E0 float64 `mapstructure:"e0" doc:"drive e = e0·ones + e1·U(−1, 1), drawn from seed"`
	E1 float64 `mapstructure:"e1" doc:"random part of the drive"`

	Seed uint64 `mapstructure:"seed" doc:"draws C, e, the coupling perturbation and every noise stream"`

	// The reality gap, off by default. Eta and CouplingNoise change the
	// system itself (VJP includes them); InputNoise and OutputNoise are
	// per-query noise (VJP ignores them).
	Eta           float64 `mapstructure:"eta" doc:"reality gap: nonlinearity sin((1+η)q)"`
	CouplingNoise float64 `mapstructure:"coupling_noise" doc:"reality gap: std of a fixed seeded perturbation of C"`
	InputNoise    float64 `mapstructure:"input_noise" doc:"std of Gaussian noise on q(0), every query"`
	OutputNoise   float64 `mapstructure:"output_noise" doc:"std of Gaussian noise on q(T), every query"`
}

// DefaultConfig returns the ideal twin of the spec: N = 10, T = 5 in 50 RK4
// steps (dt = 0.1), c0 = c1 = e0 = e1 = 0.1, seed 1, no reality gap.
func DefaultConfig() Config {
	return Config{
		N:       10,
		Horizon: 5,
		Steps:   50,
		C0:      0.1,
		C1:      0.1,
		E0:      0.1,
		E1:      0.1,
		Seed:    1,
	}
}

// Limits that catch a typo before it allocates gigabytes: the coupling
// matrix has N² entries and the VJP tape 4·Steps·N.
const (
	MaxN     = 1024
	MaxSteps = 1_000_000
	maxTape  = 1 << 26 // entries of the VJP tape (512 MiB)
)

// ConfigError is one problem with a Config, naming its key.
type ConfigError = insitu.ConfigError

// Validate reports every problem with c at once, each a *ConfigError
// naming its key, joined with errors.Join; nil when c is usable.
func (c Config) Validate() error { return c.problems().Err() }

func (c Config) problems() *insitu.Problems {
	ps := &insitu.Problems{Kind: "cnon"}
	bad := ps.Add
	finite := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

	if c.N < 1 || c.N > MaxN {
		bad("n", "must be in [1, %d], got %d", MaxN, c.N)
	}
	if !finite(c.Horizon) || c.Horizon <= 0 {
		bad("horizon", "must be positive and finite, got %v", c.Horizon)
	}
	switch {
	case c.Steps < 1:
		bad("steps", "must be ≥ 1, got %d", c.Steps)
	case c.Steps > MaxSteps:
		bad("steps", "must be ≤ %d, got %d", MaxSteps, c.Steps)
	case c.N >= 1 && c.N <= MaxN && 4*c.Steps*c.N > maxTape:
		bad("steps", "%d steps at n = %d need a VJP tape of %d values, more than %d", c.Steps, c.N, 4*c.Steps*c.N, maxTape)
	}
	for _, f := range []struct {
		key string
		v   float64
	}{{"c0", c.C0}, {"c1", c.C1}, {"e0", c.E0}, {"e1", c.E1}} {
		if !finite(f.v) {
			bad(f.key, "must be finite, got %v", f.v)
		}
	}
	// η ≤ −1 flips or removes the restoring force: no longer a pendulum.
	if !finite(c.Eta) || c.Eta <= -1 {
		bad("eta", "must be finite and > −1, got %v", c.Eta)
	}
	for _, f := range []struct {
		key string
		v   float64
	}{{"coupling_noise", c.CouplingNoise}, {"input_noise", c.InputNoise}, {"output_noise", c.OutputNoise}} {
		if !finite(f.v) || f.v < 0 {
			bad(f.key, "must be a finite standard deviation ≥ 0, got %v", f.v)
		}
	}
	return ps
}

func init() {
	insitu.Register("cnon", factory)
	insitu.RegisterKeys("cnon", func() any { c := DefaultConfig(); return &c })
}

// factory builds a twin from a configuration file's blackbox section: keys
// left out keep their defaults, unknown keys are errors.
func factory(_ context.Context, p insitu.Params) (insitu.BlackBox, error) {
	cfg := DefaultConfig()
	if err := p.Decode(&cfg); err != nil {
		return nil, err
	}
	if err := cfg.problems().In(p); err != nil {
		return nil, err
	}
	return New(cfg)
}
