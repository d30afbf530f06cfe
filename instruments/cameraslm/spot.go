package cameraslm

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// Errors a spot search returns, wrapped with what it saw.
var (
	ErrNoSpot    = errors.New("no spot")
	ErrSaturated = errors.New("spot saturated")
	ErrEdge      = errors.New("spot at the edge of the camera window")
)

// SpotOptions tune FindSpot.
type SpotOptions struct {
	// Saturation is the level (ADU) a saturated pixel reads; 0: none is
	// checked.
	Saturation float64
	// MinSNR is the least peak height above the background, in units of
	// the background's noise, for a spot to count (0: 10).
	MinSNR float64
	// Radius is the centroid window's radius in pixels; 0: three standard
	// deviations of the spot, measured on it (at least 2 px).
	Radius float64
	// Exclude, when Excluded, is a disc (sensor x, y, radius) the peak is
	// not looked for in: the zeroth order's, say.
	Exclude  [3]float64
	Excluded bool
}

// Spot is a spot found in an image: its background-subtracted centroid
// (sensor pixels), the sum of its pixels above the background, its peak,
// the background and noise it was measured against, its window's radius
// and its peak's signal-to-noise ratio.
type Spot struct {
	X, Y                  float64
	Sum, Peak             float64
	Background, Noise     float64
	Radius, Sigma, SNR    float64
	SaturatedPixels, Size int
}

// FindSpot finds the brightest spot of img with sub-pixel accuracy:
//
//  1. the background is the median of the image and its noise 1.4826 times
//     the median absolute deviation (robust to the spot itself);
//  2. the peak is the brightest pixel of the image smoothed by a 3×3 box,
//     and counts as a spot only if it stands MinSNR noise deviations (of
//     the smoothed image) above the background;
//  3. the centroid of the background-subtracted image in a disc around it
//     is iterated, the disc re-centred each time, until it moves less than
//     10⁻⁴ px: a window centred on a symmetric spot leaves its centroid
//     unbiased, and the background subtracted leaves the window's size
//     out of it; the window's radius is three standard deviations of the
//     spot measured the same way.
//
// A window reaching past the image is ErrEdge, a saturated pixel in the
// window ErrSaturated, no peak above the noise ErrNoSpot: each a clear
// error, not a biased centroid.
func FindSpot(img Image, o SpotOptions) (Spot, error) {
	w, h := img.W, img.H
	if w < 3 || h < 3 || len(img.Pix) != w*h {
		return Spot{}, fmt.Errorf("image of %d pixels, %d×%d: too small for a spot search", len(img.Pix), w, h)
	}
	minSNR := o.MinSNR
	if minSNR == 0 {
		minSNR = 10
	}
	bg, noise := background(img.Pix)
	// Peak of the 3×3 box-smoothed image, away from the border.
	best, bx, by := math.Inf(-1), -1, -1
	for y := 1; y < h-1; y++ {
		for x := 1; x < w-1; x++ {
			if o.Excluded {
				dx, dy := float64(x+img.X0)-o.Exclude[0], float64(y+img.Y0)-o.Exclude[1]
				if dx*dx+dy*dy <= o.Exclude[2]*o.Exclude[2] {
					continue
				}
			}
			var s float64
			for j := -1; j <= 1; j++ {
				for i := -1; i <= 1; i++ {
					s += img.Pix[(y+j)*w+x+i]
				}
			}
			if s > best {
				best, bx, by = s, x, y
			}
		}
	}
	s := Spot{Background: bg, Noise: noise}
	if bx < 0 {
		return s, fmt.Errorf("%w: nothing outside the excluded disc", ErrNoSpot)
	}
	height := best/9 - bg
	s.SNR = math.Inf(1)
	if noise > 0 {
		s.SNR = height / (noise / 3) // a 3×3 mean has a third of a pixel's noise
	}
	if !(height > 0) || s.SNR < minSNR {
		return s, fmt.Errorf("%w: the brightest place, sensor (%d, %d), is %.3g ADU above the background %.3g ADU, %.1f times its noise %.3g ADU (a spot needs %g)",
			ErrNoSpot, bx+img.X0, by+img.Y0, height, bg, s.SNR, noise/3, minSNR)
	}
	cx, cy := float64(bx), float64(by)
	r := o.Radius
	if r == 0 {
		// The spot's size: its second moment in a window grown from 4 px
		// until it holds three deviations.
		r = 4
		for range 8 {
			var sigma float64
			cx, cy, _, sigma = moments(img, bg, cx, cy, r)
			if !(sigma > 0) {
				break
			}
			next := max(2, 3*sigma)
			if math.Abs(next-r) < 0.05*r {
				r = next
				break
			}
			r = min(next, float64(max(w, h)))
		}
	}
	s.Radius = r
	for range 100 {
		x, y, sum, sigma := moments(img, bg, cx, cy, r)
		if !(sum > 0) {
			return s, fmt.Errorf("%w: the window around sensor (%.1f, %.1f) holds no light above the background", ErrNoSpot, cx+float64(img.X0), cy+float64(img.Y0))
		}
		moved := math.Hypot(x-cx, y-cy)
		cx, cy, s.Sum, s.Sigma = x, y, sum, sigma
		if moved < 1e-4 {
			break
		}
	}
	s.X, s.Y = cx+float64(img.X0), cy+float64(img.Y0)
	if cx-r < -0.5 || cy-r < -0.5 || cx+r > float64(w)-0.5 || cy+r > float64(h)-0.5 {
		return s, fmt.Errorf("%w: the spot at sensor (%.1f, %.1f) needs a window of radius %.1f px, which the %d×%d window at (%d, %d) cuts",
			ErrEdge, s.X, s.Y, r, w, h, img.X0, img.Y0)
	}
	for y := range h {
		for x := range w {
			dx, dy := float64(x)-cx, float64(y)-cy
			if dx*dx+dy*dy > r*r {
				continue
			}
			v := img.Pix[y*w+x]
			s.Size++
			s.Peak = max(s.Peak, v-bg)
			if o.Saturation > 0 && v >= o.Saturation {
				s.SaturatedPixels++
			}
		}
	}
	if s.SaturatedPixels > 0 {
		return s, fmt.Errorf("%w: %d of its %d pixels at sensor (%.1f, %.1f) read the full scale %g ADU: lower the exposure or the light",
			ErrSaturated, s.SaturatedPixels, s.Size, s.X, s.Y, o.Saturation)
	}
	return s, nil
}

// moments returns the centroid, the sum above bg and the RMS radius per
// axis of the disc of radius r around (cx, cy) (image pixels).
func moments(img Image, bg, cx, cy, r float64) (x, y, sum, sigma float64) {
	var sx, sy, sxx float64
	y0, y1 := max(0, int(math.Floor(cy-r))), min(img.H-1, int(math.Ceil(cy+r)))
	x0, x1 := max(0, int(math.Floor(cx-r))), min(img.W-1, int(math.Ceil(cx+r)))
	for j := y0; j <= y1; j++ {
		for i := x0; i <= x1; i++ {
			dx, dy := float64(i)-cx, float64(j)-cy
			if dx*dx+dy*dy > r*r {
				continue
			}
			v := img.Pix[j*img.W+i] - bg
			sum += v
			sx += v * float64(i)
			sy += v * float64(j)
			sxx += v * (dx*dx + dy*dy)
		}
	}
	if !(sum > 0) {
		return cx, cy, sum, 0
	}
	return sx / sum, sy / sum, sum, math.Sqrt(max(sxx/sum, 0) / 2)
}

// background returns the median of pix and its robust standard deviation,
// 1.4826 times the median absolute deviation.
func background(pix []float64) (median, sigma float64) {
	v := slices.Clone(pix)
	slices.Sort(v)
	median = quantile(v, 0.5)
	for i, p := range v {
		v[i] = math.Abs(p - median)
	}
	slices.Sort(v)
	return median, 1.4826 * quantile(v, 0.5)
}

// quantile of sorted values, linear between ranks.
func quantile(sorted []float64, q float64) float64 {
	pos := q * float64(len(sorted)-1)
	i := int(pos)
	if i+1 >= len(sorted) {
		return sorted[len(sorted)-1]
	}
	f := pos - float64(i)
	return sorted[i]*(1-f) + sorted[i+1]*f
}
