package slm

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Pattern is an alignment pattern over a whole display: phases in radians,
// as the SLM's coordinates are, that go through the same correction and
// LUT as a query's phases (see ShowImage).
type Pattern struct {
	Kind   string  // "blank", "checker" or "grating"
	Cell   int     // checker: the side of a square, in display pixels
	Period float64 // grating: the period, in display pixels
	Angle  float64 // grating: the direction of the phase ramp, degrees from +x toward +y
}

// ParsePattern reads blank, checker:N (squares of N pixels, phases 0 and
// π) or grating:PERIOD[:ANGLE_DEG] (a blazed grating: the phase ramps from
// 0 to 2π over PERIOD pixels, at ANGLE degrees; 0 by default).
func ParsePattern(s string) (Pattern, error) {
	kind, rest, _ := strings.Cut(s, ":")
	args := strings.Split(rest, ":")
	if rest == "" {
		args = nil
	}
	bad := func(why string) (Pattern, error) {
		return Pattern{}, fmt.Errorf("pattern %q: %s (want blank, checker:N or grating:PERIOD[:ANGLE_DEG])", s, why)
	}
	switch kind {
	case "blank":
		if len(args) != 0 {
			return bad("blank takes no argument")
		}
		return Pattern{Kind: kind}, nil
	case "checker":
		if len(args) != 1 {
			return bad("checker takes the square's side in pixels")
		}
		n, err := strconv.Atoi(args[0])
		if err != nil || n < 1 || n > 1<<15 {
			return bad("the square's side must be a whole number of pixels in 1..32768")
		}
		return Pattern{Kind: kind, Cell: n}, nil
	case "grating":
		if len(args) < 1 || len(args) > 2 {
			return bad("grating takes a period in pixels and, optionally, an angle in degrees")
		}
		p, err := strconv.ParseFloat(args[0], 64)
		if err != nil || !(p >= 2 && p <= 1<<15) {
			return bad("the period must be a number of pixels in 2..32768 (below 2 the grating aliases)")
		}
		a := 0.0
		if len(args) == 2 {
			a, err = strconv.ParseFloat(args[1], 64)
			if err != nil || math.IsNaN(a) || math.IsInf(a, 0) || math.Abs(a) > 360 {
				return bad("the angle must be a number of degrees in -360..360")
			}
		}
		return Pattern{Kind: kind, Period: p, Angle: a}, nil
	}
	return bad("unknown kind " + strconv.Quote(kind))
}

// String writes p as ParsePattern reads it.
func (p Pattern) String() string {
	switch p.Kind {
	case "checker":
		return "checker:" + strconv.Itoa(p.Cell)
	case "grating":
		s := "grating:" + strconv.FormatFloat(p.Period, 'g', -1, 64)
		if p.Angle != 0 {
			s += ":" + strconv.FormatFloat(p.Angle, 'g', -1, 64)
		}
		return s
	}
	return p.Kind
}

// Image renders p over a w×h display, row-major, in [0, 2π). Checker
// squares and grating lines are laid out from the display's centre, where
// alignment starts.
func (p Pattern) Image(w, h int) []float64 {
	img := make([]float64, w*h)
	cx, cy := w/2, h/2
	switch p.Kind {
	case "checker":
		for y := range h {
			ry := floorDiv(y-cy, p.Cell)
			for x := range w {
				if (floorDiv(x-cx, p.Cell)+ry)&1 != 0 {
					img[y*w+x] = math.Pi
				}
			}
		}
	case "grating":
		s, c := math.Sincos(p.Angle * math.Pi / 180)
		for y := range h {
			for x := range w {
				t := (float64(x-cx)*c + float64(y-cy)*s) / p.Period
				v := 2 * math.Pi * (t - math.Floor(t))
				if v >= 2*math.Pi { // t a hair below a whole number
					v = 0
				}
				img[y*w+x] = v
			}
		}
	}
	return img
}

func floorDiv(a, b int) int {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}
