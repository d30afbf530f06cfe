package slm

import (
	"math"
	"testing"
)

func FuzzParsePattern(f *testing.F) {
	for _, s := range []string{"blank", "checker:8", "grating:12", "grating:12.5:45", "grating:2:-90", "checker:", "grating:1", "blank:1", "checker:8:1", "grating:NaN", "grating:4:Inf", "x.npy", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePattern(s)
		if err != nil {
			return
		}
		back, err := ParsePattern(p.String())
		if err != nil || back != p {
			t.Fatalf("%q → %+v → %q → %+v, %v", s, p, p.String(), back, err)
		}
		img := p.Image(7, 5)
		for i, v := range img {
			if !(v >= 0 && v < 2*math.Pi) {
				t.Fatalf("%q: phase %v at %d outside [0, 2π)", s, v, i)
			}
		}
	})
}

func TestPatternImage(t *testing.T) {
	// checker:2 on 6×4: squares of 2 from the centre (3, 2).
	p, _ := ParsePattern("checker:2")
	img := p.Image(6, 4)
	want := []float64{
		1, 0, 0, 1, 1, 0,
		1, 0, 0, 1, 1, 0,
		0, 1, 1, 0, 0, 1,
		0, 1, 1, 0, 0, 1,
	}
	for i := range want {
		if img[i] != want[i]*math.Pi {
			t.Fatalf("checker:2 pixel (%d, %d) = %v, want %v·π", i%6, i/6, img[i], want[i])
		}
	}
	// grating:4:90 ramps along y: 2π·frac((y−cy)/4).
	p, _ = ParsePattern("grating:4:90")
	img = p.Image(3, 8)
	for y := range 8 {
		f := float64(y-4) / 4
		w := 2 * math.Pi * (f - math.Floor(f))
		for x := range 3 {
			if math.Abs(img[y*3+x]-w) > 1e-12 {
				t.Fatalf("grating:4:90 at (%d, %d) = %v, want %v", x, y, img[y*3+x], w)
			}
		}
	}
	p, _ = ParsePattern("blank")
	for _, v := range p.Image(4, 4) {
		if v != 0 {
			t.Fatal("blank is not zero")
		}
	}
}
