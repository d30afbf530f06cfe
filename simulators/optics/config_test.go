package optics

import (
	"errors"
	"math"
	"strings"
	"testing"
)

func TestValidateNamesEachKey(t *testing.T) {
	cases := []struct {
		key  string
		edit func(*Config)
	}{
		{"n", func(c *Config) { c.N = 0 }},
		{"n", func(c *Config) { c.N = MaxN + 1 }},
		{"pitch", func(c *Config) { c.Pitch = 0 }},
		{"wavelength", func(c *Config) { c.Wavelength = math.NaN() }},
		{"distance", func(c *Config) { c.Distance = -0.01 }},
		{"waist", func(c *Config) { c.Waist = math.Inf(1) }},
		{"target_waist", func(c *Config) { c.TargetWaist = 0 }},
		{"target_offset", func(c *Config) { c.TargetOffset = math.NaN() }},
		{"method", func(c *Config) { c.Method = "fresnel" }},
		{"pad", func(c *Config) { c.Pad = 100 }},
		{"pad", func(c *Config) { c.Pad = 64 }}, // < 2·60−1: would wrap around
		{"pad", func(c *Config) { c.Pad = MaxPad * 2 }},
		{"quantize_bits", func(c *Config) { c.QuantizeBits = -1 }},
		{"quantize_bits", func(c *Config) { c.QuantizeBits = 17 }},
		{"lut", func(c *Config) { c.LUT = []float64{1} }},
		{"lut", func(c *Config) { c.LUT = []float64{0, 2, 1} }},
		{"lut", func(c *Config) { c.LUT = []float64{0, math.Inf(1)} }},
		{"lut", func(c *Config) { c.LUT = []float64{-1e300, 1e300} }},
		{"crosstalk", func(c *Config) { c.Crosstalk = -0.5 }},
		{"output", func(c *Config) { c.Output = "hologram" }},
		{"camera.binning", func(c *Config) { c.Camera.Binning = 7 }},
		{"camera.exposure", func(c *Config) { c.Camera.Exposure = 0 }},
		{"camera.gain", func(c *Config) { c.Camera.Gain = math.NaN() }},
		{"camera.read_noise", func(c *Config) { c.Camera.ReadNoise = -1 }},
		{"camera.bit_depth", func(c *Config) { c.Camera.BitDepth = 33 }},
		{"camera.saturation", func(c *Config) { c.Camera.Saturation = -1 }},
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
		if !strings.HasPrefix(err.Error(), "owms: "+c.key+": ") {
			t.Errorf("%s: error %q should start with %q", c.key, err, "owms: "+c.key+": ")
		}
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: New accepted an invalid config", c.key)
		}
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Errorf("default config: %v", err)
	}
	// Angular spectrum needs no 2N−1 padding; any size is allowed.
	for _, edit := range []func(*Config){
		func(c *Config) { c.Method, c.Pad = MethodAngular, 64 },
		func(c *Config) { c.N = 7 },
		func(c *Config) { c.N = 1 },
		func(c *Config) { c.N, c.Camera.Binning = 12, 3 },
	} {
		cfg := DefaultConfig()
		edit(&cfg)
		if _, err := New(cfg); err != nil {
			t.Errorf("%+v: %v", cfg, err)
		}
	}
	// Every problem at once.
	cfg := DefaultConfig()
	cfg.N, cfg.Method, cfg.Camera.Gain = 0, "x", -1
	msg := cfg.Validate().Error()
	for _, k := range []string{"n:", "method:", "camera.gain:"} {
		if !strings.Contains(msg, k) {
			t.Errorf("joined error %q lacks %q", msg, k)
		}
	}
	// A target outside the window is an error, not NaN outputs.
	cfg = DefaultConfig()
	cfg.TargetOffset = 1
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "target") {
		t.Errorf("target outside the window: %v", err)
	}
}

// FuzzConfig feeds arbitrary values to New: it either fails with an error
// or builds a twin whose target and first query are finite.
func FuzzConfig(f *testing.F) {
	f.Add(6, 10e-6, 700e-9, 0.02, 70e-6, 0, 2, 0.5, 1.0, 3.0)
	f.Add(3, 1e-3, 1e-9, 1e-9, 1e-3, 16, 0, 0.0, math.NaN(), 2.0)
	f.Add(5, 1e-6, 1e-6, 1e-200, 1e-200, 0, 0, 0.0, 0.0, 1.0)
	f.Add(4, 10e-6, 700e-9, 0.02, 70e-6, 0, 0, 1e-300, -1e300, 1e300)
	f.Fuzz(func(t *testing.T, n int, pitch, wl, z, waist float64, pad, bits int, xt, lut0, lut1 float64) {
		if n > 16 || pad > 64 {
			t.Skip() // keep each case cheap
		}
		c := DefaultConfig()
		c.N, c.Pitch, c.Wavelength, c.Distance, c.Waist = n, pitch, wl, z, waist
		c.Pad, c.QuantizeBits, c.Crosstalk = pad, bits, xt
		c.LUT = []float64{lut0, lut1}
		tw, err := New(c)
		if err != nil {
			return
		}
		_, y := tw.Target(0)
		y = append(y, mustQuery(t, tw, make([]float64, n*n))...)
		for _, v := range y {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				t.Fatalf("non-finite output with %+v", c)
			}
		}
	})
}
