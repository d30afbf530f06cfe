package cameraslm

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"time"

	"go.yaml.in/yaml/v3"
	"gonum.org/v1/gonum/mat"
)

// Map is the affine map from spatial frequency k (cycles per SLM display
// pixel) to camera sensor pixel: [x, y] = A·[kx, ky] + B.
type Map struct {
	A [2][2]float64 `yaml:"a"`
	B [2]float64    `yaml:"b"`
}

// Apply maps k to the camera.
func (m Map) Apply(kx, ky float64) (x, y float64) {
	return m.A[0][0]*kx + m.A[0][1]*ky + m.B[0], m.A[1][0]*kx + m.A[1][1]*ky + m.B[1]
}

// Det is the determinant of A: camera pixels² per (cycle per pixel)².
func (m Map) Det() float64 { return m.A[0][0]*m.A[1][1] - m.A[0][1]*m.A[1][0] }

// Invert maps a camera position back to k.
func (m Map) Invert(x, y float64) (kx, ky float64) {
	d := m.Det()
	dx, dy := x-m.B[0], y-m.B[1]
	return (m.A[1][1]*dx - m.A[0][1]*dy) / d, (-m.A[1][0]*dx + m.A[0][0]*dy) / d
}

// Geometry is what A says about the optics, for people: the mean scale
// (camera pixels per cycle per SLM pixel, √|det A|), the rotation of the
// camera about the optical axis (degrees, of A's closest rotation after
// undoing a mirror), whether the image is mirrored (det A < 0), the ratio
// of the scales along the SLM's x and y, and the shear: how far the
// images of the SLM's axes are from perpendicular (degrees).
type Geometry struct {
	Scale      float64 `yaml:"scale_px_per_cycle_per_pixel"`
	Rotation   float64 `yaml:"rotation_deg"`
	Mirrored   bool    `yaml:"mirrored"`
	Anisotropy float64 `yaml:"anisotropy"`
	Shear      float64 `yaml:"shear_deg"`
}

// Geometry decomposes m.
func (m Map) Geometry() Geometry {
	a := m.A
	g := Geometry{Scale: math.Sqrt(math.Abs(m.Det())), Mirrored: m.Det() < 0}
	if g.Mirrored { // undo the mirror of x
		a[0][0], a[1][0] = -a[0][0], -a[1][0]
	}
	g.Rotation = math.Atan2(a[1][0]-a[0][1], a[0][0]+a[1][1]) * 180 / math.Pi
	sx, sy := math.Hypot(m.A[0][0], m.A[1][0]), math.Hypot(m.A[0][1], m.A[1][1])
	g.Anisotropy = sx / sy
	cos := (m.A[0][0]*m.A[0][1] + m.A[1][0]*m.A[1][1]) / (sx * sy)
	g.Shear = 90 - math.Acos(max(-1, min(1, cos)))*180/math.Pi
	return g
}

// FitMap fits the affine map taking ks to xs by linear least squares (QR)
// and returns it with each point's residual (fitted − measured, pixels).
// It needs three points not on a line.
func FitMap(ks, xs [][2]float64) (Map, [][2]float64, error) {
	n := len(ks)
	if n != len(xs) || n < 3 {
		return Map{}, nil, fmt.Errorf("fitting an affine map needs 3 or more points, have %d", n)
	}
	design := mat.NewDense(n, 3, nil)
	rhs := mat.NewDense(n, 2, nil)
	for i := range n {
		design.SetRow(i, []float64{ks[i][0], ks[i][1], 1})
		rhs.SetRow(i, xs[i][:])
	}
	var qr mat.QR
	qr.Factorize(design)
	// A rank-deficient design (points on a line) shows in R's diagonal.
	var r mat.Dense
	qr.RTo(&r)
	scale := 0.0
	for i := range 3 {
		scale = max(scale, math.Abs(r.At(i, i)))
	}
	for i := range 3 {
		if math.Abs(r.At(i, i)) <= 1e-12*scale {
			return Map{}, nil, errors.New("the grating vectors lie on a line: the map is not determined")
		}
	}
	var sol mat.Dense
	if err := qr.SolveTo(&sol, false, rhs); err != nil {
		return Map{}, nil, err
	}
	m := Map{
		A: [2][2]float64{{sol.At(0, 0), sol.At(1, 0)}, {sol.At(0, 1), sol.At(1, 1)}},
		B: [2]float64{sol.At(2, 0), sol.At(2, 1)},
	}
	res := make([][2]float64, n)
	for i, k := range ks {
		x, y := m.Apply(k[0], k[1])
		res[i] = [2]float64{x - xs[i][0], y - xs[i][1]}
	}
	return m, res, nil
}

// FourierOptions are the gratings of a Fourier calibration and how their
// spots are found.
type FourierOptions struct {
	Grid Grid
	// Periods are the gratings' periods in controls (≥ 2; default 4 and
	// 8), each shown along Directions vectors evenly spaced in angle from
	// the x axis (default 8: both signs of x, y and the diagonals).
	Periods    []float64
	Directions int
	Spot       SpotOptions
	// ExcludeZeroOrder leaves the flat pattern's spot out of the search for
	// each grating's, when an SLM leaves light there that outshines the
	// first order.
	ExcludeZeroOrder bool
}

func (o *FourierOptions) defaults() error {
	if err := o.Grid.Validate(); err != nil {
		return err
	}
	if len(o.Periods) == 0 {
		o.Periods = []float64{4, 8}
	}
	if o.Directions == 0 {
		o.Directions = 8
	}
	if o.Directions < 3 {
		return fmt.Errorf("directions: %d: want 3 or more (an affine map needs vectors off a line)", o.Directions)
	}
	for _, p := range o.Periods {
		if !(p >= 2) || math.IsInf(p, 0) {
			return fmt.Errorf("periods: %v: a grating needs 2 or more controls per period", p)
		}
	}
	return nil
}

// Gratings is the calibration's spatial frequencies, the flat pattern
// (k = 0, the zeroth order) first.
func (o FourierOptions) Gratings() [][2]float64 {
	ks := [][2]float64{{0, 0}}
	for _, p := range o.Periods {
		k := o.Grid.MaxK(p)
		for d := range o.Directions {
			s, c := math.Sincos(2 * math.Pi * float64(d) / float64(o.Directions))
			ks = append(ks, [2]float64{snap(k * c), snap(k * s)})
		}
	}
	return ks
}

// FourierPoint is one grating of a Fourier calibration: its frequency,
// where its spot was measured, where the fitted map puts it, and the
// spot's signal.
type FourierPoint struct {
	Kx       float64 `yaml:"kx"`
	Ky       float64 `yaml:"ky"`
	X        float64 `yaml:"x"`
	Y        float64 `yaml:"y"`
	FitX     float64 `yaml:"fit_x"`
	FitY     float64 `yaml:"fit_y"`
	Residual float64 `yaml:"residual_px"`
	Sum      float64 `yaml:"sum_adu"`
	SNR      float64 `yaml:"snr"`
	Radius   float64 `yaml:"window_px"`
}

// FourierResult is a fitted Fourier calibration.
type FourierResult struct {
	Map      Map
	Geometry Geometry
	RMS      float64 // of the residuals, pixels
	Points   []FourierPoint
	Frames   []Frame // the images, in the order of Points
}

// CalibrateFourier shows the flat pattern and every grating of o, finds
// each one's spot and fits the map. Every grating whose spot is missing,
// saturated or cut by the window's edge is reported, together, as an
// error: a spot that cannot be measured is not fitted around.
func CalibrateFourier(ctx context.Context, b Bench, o FourierOptions) (*FourierResult, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	ks := o.Gratings()
	shots := make([]Shot, len(ks))
	for i, k := range ks {
		shots[i] = Shot{Phase: o.Grid.Blaze(k[0], k[1], 0), Settle: RigSettle}
	}
	frames, err := b.Shoot(ctx, "fourier", shots)
	if err != nil {
		return nil, err
	}
	res := &FourierResult{Frames: frames, Points: make([]FourierPoint, len(ks))}
	var errs []error
	var zero Spot
	pos := make([][2]float64, len(ks))
	for i, k := range ks {
		so := o.Spot
		if i > 0 && o.ExcludeZeroOrder && zero.Radius > 0 {
			so.Exclude, so.Excluded = [3]float64{zero.X, zero.Y, 2 * zero.Radius}, true
		}
		s, err := FindSpot(frames[i].Image, so)
		if err != nil {
			what := "flat pattern (zeroth order)"
			if i > 0 {
				what = fmt.Sprintf("grating k = (%.4g, %.4g) cycles/pixel", k[0], k[1])
			}
			errs = append(errs, fmt.Errorf("%s: %w", what, err))
			continue
		}
		if i == 0 {
			zero = s
		}
		pos[i] = [2]float64{s.X, s.Y}
		res.Points[i] = FourierPoint{Kx: k[0], Ky: k[1], X: s.X, Y: s.Y, Sum: s.Sum, SNR: s.SNR, Radius: s.Radius}
	}
	if len(errs) > 0 {
		return res, fmt.Errorf("fourier calibration: %d of %d spots could not be measured:\n%w", len(errs), len(ks), errors.Join(errs...))
	}
	m, r, err := FitMap(ks, pos)
	if err != nil {
		return res, fmt.Errorf("fourier calibration: %w", err)
	}
	res.Map, res.Geometry = m, m.Geometry()
	var ss float64
	for i := range res.Points {
		p := &res.Points[i]
		p.FitX, p.FitY = pos[i][0]+r[i][0], pos[i][1]+r[i][1]
		p.Residual = math.Hypot(r[i][0], r[i][1])
		ss += p.Residual * p.Residual
	}
	res.RMS = math.Sqrt(ss / float64(len(ks)))
	return res, nil
}

// FourierFile is a Fourier calibration as written beside its run: the map
// and what it was measured on.
type FourierFile struct {
	Kind       string            `yaml:"kind"` // always "fourier"
	Units      string            `yaml:"units"`
	Date       time.Time         `yaml:"date"`
	Config     string            `yaml:"config"`      // the config file the run was made from
	ConfigHash string            `yaml:"config_hash"` // sha256 of the run's resolved config
	RunDir     string            `yaml:"run_dir"`
	Devices    map[string]string `yaml:"devices"` // part → what identifies its device
	SLM        FileSLM           `yaml:"slm"`
	Camera     FileCamera        `yaml:"camera"`
	Map        Map               `yaml:"map"`
	Geometry   Geometry          `yaml:"geometry"`
	RMS        float64           `yaml:"rms_px"`
	Points     []FourierPoint    `yaml:"points"`
}

// FileSLM names the SLM part a calibration drew on.
type FileSLM struct {
	Part       string `yaml:"part"`
	N          int    `yaml:"n"`
	MacroPixel int    `yaml:"macro_pixel"`
}

// FileCamera names the camera part and the window it read.
type FileCamera struct {
	Part string `yaml:"part"`
	ROI  [4]int `yaml:"roi"` // x, y, w, h in sensor pixels
}

// FourierKind is the kind of a Fourier calibration file.
const FourierKind = "fourier"

// FourierUnits says what the map's numbers mean.
const FourierUnits = "k in cycles per SLM display pixel (x along columns, y along rows); x, y in camera sensor pixels: [x, y] = a·[kx, ky] + b"

// Write writes f as YAML to path.
func (f FourierFile) Write(path string) error {
	data, err := f.marshal()
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}

func (f FourierFile) marshal() ([]byte, error) {
	f.Kind, f.Units = FourierKind, FourierUnits
	return yaml.Marshal(f)
}

// LoadFourier reads a Fourier calibration file and checks its map.
func LoadFourier(path string) (FourierFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return FourierFile{}, err
	}
	return ParseFourier(data, path)
}

// ParseFourier reads a Fourier calibration from data, path naming it in
// errors, and checks its map.
func ParseFourier(data []byte, path string) (FourierFile, error) {
	var f FourierFile
	if err := yaml.Unmarshal(data, &f); err != nil {
		return f, fmt.Errorf("%s: %w", path, err)
	}
	if f.Kind != FourierKind {
		return f, fmt.Errorf("%s: kind %q: not a Fourier calibration (insitu calibrate fourier writes one)", path, f.Kind)
	}
	for _, v := range []float64{f.Map.A[0][0], f.Map.A[0][1], f.Map.A[1][0], f.Map.A[1][1], f.Map.B[0], f.Map.B[1]} {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return f, fmt.Errorf("%s: the map holds %v", path, v)
		}
	}
	if !(math.Abs(f.Map.Det()) > 0) {
		return f, fmt.Errorf("%s: the map is singular", path)
	}
	return f, nil
}

// snap makes the rounding error of a sine or cosine at a multiple of π/2
// the zero it stands for.
func snap(v float64) float64 {
	if math.Abs(v) < 1e-12 {
		return 0
	}
	return v
}
