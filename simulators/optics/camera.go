package optics

import (
	"math"
	"math/rand/v2"
)

// camera turns the power in each grid cell into a camera image in ADU.
type camera struct {
	cfg   CameraConfig
	n, b  int     // grid side, binning
	side  int     // camera pixels per side, n/b
	sat   float64 // clip level in ADU; 0: none
	noisy bool
}

func newCamera(c Config) *camera {
	cam := &camera{cfg: c.Camera, n: c.N, b: c.Camera.Binning, side: c.N / c.Camera.Binning}
	cam.sat = c.Camera.Saturation
	if cam.sat == 0 && c.Camera.BitDepth > 0 {
		cam.sat = math.Ldexp(1, c.Camera.BitDepth) - 1
	}
	cam.noisy = c.Camera.ShotNoise || c.Camera.ReadNoise > 0
	return cam
}

// bin sums cell powers (n×n) into camera pixels (side×side).
func (c *camera) bin(power, out []float64) {
	clear(out)
	for r := range c.n {
		row := (r / c.b) * c.side
		for col := range c.n {
			out[row+col/c.b] += power[r*c.n+col]
		}
	}
}

// expected is the noiseless, unrounded, unclipped image: Gain·Exposure·P.
// It is what the VJP differentiates and what Target returns.
func (c *camera) expected(power, out []float64) {
	c.bin(power, out)
	s := c.cfg.Gain * c.cfg.Exposure
	for i := range out {
		out[i] *= s
	}
}

// capture fills out with one noisy exposure and returns how many pixels
// saturated. rng is only read when the camera is noisy.
func (c *camera) capture(power, out []float64, rng *rand.Rand) (saturated int) {
	c.bin(power, out)
	cfg := c.cfg
	for i, p := range out {
		e := cfg.Exposure * p // mean photoelectrons
		if cfg.ShotNoise {
			e = poisson(rng, e)
		}
		if cfg.ReadNoise > 0 {
			e += cfg.ReadNoise * rng.NormFloat64()
		}
		adu := cfg.Gain * e
		if cfg.BitDepth > 0 {
			adu = max(0, math.Round(adu))
		}
		if c.sat > 0 && adu > c.sat {
			adu = c.sat
			saturated++
		}
		out[i] = adu
	}
	return saturated
}

// poisson draws a Poisson count of mean mu: exactly by multiplying uniforms
// below mean 30, and from the rounded Gaussian approximation above, where
// its error is far below the read noise.
func poisson(rng *rand.Rand, mu float64) float64 {
	if mu <= 0 {
		return 0
	}
	if mu < 30 {
		l := math.Exp(-mu)
		k, p := 0, rng.Float64()
		for p > l {
			k++
			p *= rng.Float64()
		}
		return float64(k)
	}
	return max(0, math.Round(mu+math.Sqrt(mu)*rng.NormFloat64()))
}
