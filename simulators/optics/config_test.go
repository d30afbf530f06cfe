package optics

import (
	"math"
	"strings"
	"testing"

	"github.com/insitu-lab/insitu/simulators/twintest"
)

func TestValidateNamesEachKey(t *testing.T) {
	cases := []twintest.ConfigCase[Config]{
		{Key: "n", Edit: func(c *Config) { c.N = 0 }},
		{Key: "n", Edit: func(c *Config) { c.N = MaxN + 1 }},
		{Key: "pitch", Edit: func(c *Config) { c.Pitch = 0 }},
		{Key: "wavelength", Edit: func(c *Config) { c.Wavelength = math.NaN() }},
		{Key: "distance", Edit: func(c *Config) { c.Distance = -0.01 }},
		{Key: "waist", Edit: func(c *Config) { c.Waist = math.Inf(1) }},
		{Key: "target_waist", Edit: func(c *Config) { c.TargetWaist = 0 }},
		{Key: "target_offset", Edit: func(c *Config) { c.TargetOffset = math.NaN() }},
		{Key: "method", Edit: func(c *Config) { c.Method = "fresnel" }},
		{Key: "pad", Edit: func(c *Config) { c.Pad = 100 }},
		{Key: "pad", Edit: func(c *Config) { c.Pad = 64 }}, // < 2·60−1: would wrap around
		{Key: "pad", Edit: func(c *Config) { c.Pad = MaxPad * 2 }},
		{Key: "quantize_bits", Edit: func(c *Config) { c.QuantizeBits = -1 }},
		{Key: "quantize_bits", Edit: func(c *Config) { c.QuantizeBits = 17 }},
		{Key: "lut", Edit: func(c *Config) { c.LUT = []float64{1} }},
		{Key: "lut", Edit: func(c *Config) { c.LUT = []float64{0, 2, 1} }},
		{Key: "lut", Edit: func(c *Config) { c.LUT = []float64{0, math.Inf(1)} }},
		{Key: "lut", Edit: func(c *Config) { c.LUT = []float64{-1e300, 1e300} }},
		{Key: "crosstalk", Edit: func(c *Config) { c.Crosstalk = -0.5 }},
		{Key: "output", Edit: func(c *Config) { c.Output = "hologram" }},
		{Key: "camera.binning", Edit: func(c *Config) { c.Camera.Binning = 7 }},
		{Key: "camera.exposure", Edit: func(c *Config) { c.Camera.Exposure = 0 }},
		{Key: "camera.gain", Edit: func(c *Config) { c.Camera.Gain = math.NaN() }},
		{Key: "camera.read_noise", Edit: func(c *Config) { c.Camera.ReadNoise = -1 }},
		{Key: "camera.bit_depth", Edit: func(c *Config) { c.Camera.BitDepth = 33 }},
		{Key: "camera.saturation", Edit: func(c *Config) { c.Camera.Saturation = -1 }},
	}
	twintest.ConfigErrors(t, "owms", DefaultConfig, Config.Validate, func(c Config) error { _, err := New(c); return err }, cases)
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
