package opamp

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/insitu-lab/insitu"
)

// Backends.
const (
	Analytic = "analytic" // square-law small-signal model, the default
	Ngspice  = "ngspice"  // the real circuit simulator, `ngspice -b`
)

// Config holds the parameters of a twin. The mapstructure tags are the keys
// of a configuration file's blackbox section.
type Config struct {
	Backend string `mapstructure:"backend" doc:"analytic (a square-law small-signal model) or ngspice (AC analysis of a netlist)"`

	// ngspice backend only.
	NgspicePath string        `mapstructure:"ngspice" doc:"ngspice binary, by name (looked up in PATH) or path"`
	Timeout     time.Duration `mapstructure:"timeout" doc:"bound on one ngspice simulation"`
	Workers     int           `mapstructure:"workers" doc:"simulations run at once in a batch; 0: GOMAXPROCS"`

	Seed uint64 `mapstructure:"seed" doc:"draws the mismatch and every noise stream"`

	// The reality gap, off by default. Mismatch changes the devices (a fixed
	// seeded perturbation of KP, VTO and λ, the same for both backends);
	// OutputNoise is fresh per query.
	Mismatch    float64 `mapstructure:"mismatch" doc:"relative std of KP, |VTO| and λ (a process corner)"`
	OutputNoise float64 `mapstructure:"output_noise" doc:"relative std of Gaussian noise on gain, phase margin and bandwidth"`
}

// DefaultConfig returns the ideal analytic twin: seed 1, no mismatch, no
// noise; for ngspice, the binary "ngspice" from PATH and a 30 s timeout.
func DefaultConfig() Config {
	return Config{
		Backend:     Analytic,
		NgspicePath: "ngspice",
		Timeout:     30 * time.Second,
		Seed:        1,
	}
}

// MaxWorkers bounds the parallel ngspice processes of one twin.
const MaxWorkers = 256

// ConfigError is one problem with a Config, naming its key.
type ConfigError = insitu.ConfigError

// Validate reports every problem with c at once, each a *ConfigError
// naming its key, joined with errors.Join; nil when c is usable. It does
// not look for the ngspice binary: New does.
func (c Config) Validate() error { return c.problems().Err() }

func (c Config) problems() *insitu.Problems {
	ps := &insitu.Problems{Kind: "opamp"}
	bad := ps.Add
	finite := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

	switch c.Backend {
	case Analytic:
	case Ngspice:
		if c.NgspicePath == "" {
			bad("ngspice", "must name the ngspice binary, got an empty string")
		}
	default:
		bad("backend", "must be %q or %q, got %q", Analytic, Ngspice, c.Backend)
	}
	if c.Timeout <= 0 {
		bad("timeout", "must be positive, got %v", c.Timeout)
	}
	if c.Workers < 0 || c.Workers > MaxWorkers {
		bad("workers", "must be in [0, %d] (0: GOMAXPROCS), got %d", MaxWorkers, c.Workers)
	}
	// Above 0.5 a relative perturbation of KP or λ is negative one draw in
	// 50: no longer a transistor.
	if !finite(c.Mismatch) || c.Mismatch < 0 || c.Mismatch > 0.5 {
		bad("mismatch", "must be a finite relative standard deviation in [0, 0.5], got %v", c.Mismatch)
	}
	if !finite(c.OutputNoise) || c.OutputNoise < 0 || c.OutputNoise > 1 {
		bad("output_noise", "must be a finite relative standard deviation in [0, 1], got %v", c.OutputNoise)
	}
	return ps
}

func init() {
	insitu.Register("opamp", factory)
	insitu.RegisterKeys("opamp", func() any { c := DefaultConfig(); return &c })
}

// factory builds a twin from a configuration file's blackbox section: keys
// left out keep their defaults, unknown keys are errors.
func factory(ctx context.Context, p insitu.Params) (insitu.BlackBox, error) {
	cfg := DefaultConfig()
	// timeout arrives as "30s" from YAML or as a number of seconds; the
	// plain decoder would read a number as nanoseconds.
	if v, ok := p.Values["timeout"]; ok {
		d, err := parseDuration(v)
		if err != nil {
			return nil, p.Errorf("timeout", "%w", err)
		}
		vals := make(map[string]any, len(p.Values))
		for k, v := range p.Values {
			vals[k] = v
		}
		vals["timeout"] = d
		p.Values = vals
	}
	if err := p.Decode(&cfg); err != nil {
		return nil, err
	}
	if err := cfg.problems().In(p); err != nil {
		return nil, err
	}
	t, err := New(cfg)
	if err != nil { // validated above: only the binary lookup can fail
		return nil, p.Errorf("ngspice", "%w", err)
	}
	return t, nil
}

func parseDuration(v any) (time.Duration, error) {
	switch v := v.(type) {
	case time.Duration:
		return v, nil
	case string:
		d, err := time.ParseDuration(v)
		if err != nil {
			return 0, fmt.Errorf("%q is not a duration like 30s", v)
		}
		return d, nil
	case int:
		return time.Duration(v) * time.Second, nil
	case int64:
		return time.Duration(v) * time.Second, nil
	case uint64:
		return time.Duration(v) * time.Second, nil
	case float64:
		if !(v > 0 && v < 1e9) {
			return 0, fmt.Errorf("%v seconds is not a usable timeout", v)
		}
		return time.Duration(v * float64(time.Second)), nil
	}
	return 0, fmt.Errorf("%v (%T) is not a duration like 30s", v, v)
}
