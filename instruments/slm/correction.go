package slm

import (
	"fmt"
	"image"
	_ "image/png" // vendors ship PNG or BMP correction maps
	"math"
	"os"

	_ "golang.org/x/image/bmp"
)

// LoadCorrection reads a vendor correction image (PNG or BMP, gray or
// color: the luma is used) and returns it in radians, row-major, with its
// width and height. radPerLevel converts an 8-bit level to radians; 0 means
// 2π/256. 16-bit PNGs are scaled to 8-bit levels first.
func LoadCorrection(path string, radPerLevel float64) (phase []float64, w, h int, err error) {
	if radPerLevel == 0 {
		radPerLevel = 2 * math.Pi / 256
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, 0, fmt.Errorf("slm: correction: %w", err)
	}
	defer f.Close()
	img, _, err := image.Decode(f)
	if err != nil {
		return nil, 0, 0, fmt.Errorf("slm: correction %s: %w", path, err)
	}
	b := img.Bounds()
	w, h = b.Dx(), b.Dy()
	phase = make([]float64, w*h)
	for y := range h {
		for x := range w {
			r, g, bl, _ := img.At(b.Min.X+x, b.Min.Y+y).RGBA()
			// Rec. 601 luma of 16-bit channels; gray images give r = g = b.
			l := (299*float64(r) + 587*float64(g) + 114*float64(bl)) / 1000
			phase[y*w+x] = l / 257 * radPerLevel
		}
	}
	return phase, w, h, nil
}
