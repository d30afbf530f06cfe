package main

import (
	"strings"
	"testing"
	"time"

	"github.com/insitu-lab/insitu/safety"
)

// The safety section of a config goes through resolveConfig, the decoder
// every command uses: a scalar max_step through safety's hook, durations
// with units, pointers for rate and budget, a list of interlocks. viper
// lower-cases map keys (saturation.I arrives as "i"); safety.New matches
// names case-insensitively.
func TestSafetyConfigThroughResolveConfig(t *testing.T) {
	const doc = `
safety:
  bounds_mode: clamp
  lower: {x0: -1}
  upper: {x0: 1, x3: 0.5}
  max_step: 0.25
  slew_mode: ramp
  rate: 20
  burst: 2
  min_interval: 10ms
  budget: 500
  timeout: 2s
  check_outputs: trip
  output_ranges:
    y: {lo: -10, hi: 10}
  saturation: {I: 0.12}
  interlocks:
    - {name: overcurrent, output: I, above: 0.1}
`
	var out struct {
		Safety safety.Config `mapstructure:"safety"`
	}
	if err := resolveConfig("safety.yaml", []byte(doc), nil, nil, nil, &out); err != nil {
		t.Fatal(err)
	}
	c := out.Safety
	if c.BoundsMode != safety.ModeClamp || c.Lower["x0"] != -1 || c.Upper["x0"] != 1 || c.Upper["x3"] != 0.5 ||
		c.MaxStep[safety.AnyKey] != 0.25 || c.SlewMode != safety.ModeRamp || c.Rate == nil || *c.Rate != 20 || c.Burst != 2 ||
		c.MinInterval != 10*time.Millisecond || c.Budget == nil || *c.Budget != 500 || c.Timeout != 2*time.Second ||
		c.CheckOutputs != safety.ModeTrip || c.OutputRanges["y"] != (safety.Range{Lo: -10, Hi: 10}) || c.Saturation["i"] != 0.12 ||
		len(c.Interlocks) != 1 || c.Interlocks[0].Name != "overcurrent" || c.Interlocks[0].Output != "I" ||
		c.Interlocks[0].Above == nil || *c.Interlocks[0].Above != 0.1 || c.Interlocks[0].Below != nil {
		t.Errorf("decoded %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}

	// A per-name max_step and a --set on top of the file.
	const perName = "safety:\n  max_step: {x1: 0.5, '*': 1}\n"
	out.Safety = safety.Config{}
	if err := resolveConfig("safety.yaml", []byte(perName), nil, nil, []string{"safety.max_step.x2=0.75"}, &out); err != nil {
		t.Fatal(err)
	}
	if m := out.Safety.MaxStep; m["x1"] != 0.5 || m[safety.AnyKey] != 1 || m["x2"] != 0.75 {
		t.Errorf("per-name max_step = %v", m)
	}

	// An unknown key in the section is an error, not silently dropped.
	if err := resolveConfig("safety.yaml", []byte("safety:\n  max_stp: 1\n"), nil, nil, nil, &out); err == nil {
		t.Error("unknown key safety.max_stp accepted")
	}
}

// When the same key is set twice, the last --set wins, and an error in it
// names that --set, not the earlier one.
func TestConfigErrorNamesTheLastSet(t *testing.T) {
	var out struct {
		Safety safety.Config `mapstructure:"safety"`
	}
	err := resolveConfig("", nil, nil, nil, []string{"safety.burst=2", "safety.burst=many"}, &out)
	if err == nil || !strings.Contains(err.Error(), "--set safety.burst=many") || strings.Contains(err.Error(), "safety.burst=2") {
		t.Errorf("error %v, want it to name --set safety.burst=many only", err)
	}
	if err := resolveConfig("", nil, nil, nil, []string{"safety.burst=many", "safety.burst=2"}, &out); err != nil || out.Safety.Burst != 2 {
		t.Errorf("a later good --set: burst %d, %v; want 2, nil", out.Safety.Burst, err)
	}
}
