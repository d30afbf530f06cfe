package rig

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
	"periph.io/x/conn/v3/i2c/i2creg"
	"periph.io/x/conn/v3/physic"

	"github.com/insitu-lab/insitu"
	"github.com/insitu-lab/insitu/drivers/i2c/i2cemu"
	"github.com/insitu-lab/insitu/instruments/camera"
	"github.com/insitu-lab/insitu/instruments/cameraslm"
	"github.com/insitu-lab/insitu/instruments/slm"
	"github.com/insitu-lab/insitu/simulators/optics"
)

const n = 16 // SLM pattern side and twin grid

func twinConfig() optics.Config {
	c := optics.DefaultConfig()
	c.N, c.Output = n, optics.OutputIntensity
	c.Waist, c.TargetOffset, c.TargetWaist = 40e-6, 40e-6, 30e-6
	return c
}

var twinOnce sync.Once

// registerTwin registers frame source "owms-test": the OWMS twin's
// intensity (×1e6 ADU) under the phases the memory SLM named "slm" shows,
// read back from its display through the linear 256-level LUT.
func registerTwin(t testing.TB) {
	twinOnce.Do(func() {
		RegisterFrameSource("owms-test", func(built map[string]Part, w, h int) (camera.FrameFunc, error) {
			s, ok := built["slm"].(SLM)
			if !ok || w != n || h != n {
				return nil, fmt.Errorf("owms-test wants an SLM part named slm before it and a %d×%d camera", n, n)
			}
			mem, ok := s.Display().(*slm.Memory)
			if !ok {
				return nil, errors.New("owms-test needs a memory display")
			}
			tw, err := optics.New(twinConfig())
			if err != nil {
				return nil, err
			}
			dw, _ := mem.Size()
			x0, y0 := s.Origin()
			phase := make([]float64, n*n)
			return func(ctx context.Context, dst []float64) error {
				frame := mem.Last()
				for r := range n {
					for c := range n {
						phase[r*n+c] = float64(frame[(y0+r)*dw+x0+c]) * 2 * math.Pi / 256
					}
				}
				y, err := tw.Query(ctx, phase)
				if err != nil {
					return err
				}
				for i, v := range y {
					dst[i] = 1e6 * v
				}
				return nil
			}, nil
		})
	})
}

func build(t testing.TB, src string) *Rig {
	t.Helper()
	var v map[string]any
	if err := yaml.Unmarshal([]byte(src), &v); err != nil {
		t.Fatal(err)
	}
	kind, _ := v["kind"].(string)
	delete(v, "kind")
	b, err := insitu.New(context.Background(), insitu.Params{Kind: kind, Values: v, File: "test.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	r := b.(*Rig)
	t.Cleanup(func() { r.Close() })
	return r
}

const owmsRig = `
kind: rig
name: owms-bench
parts:
  - name: slm
    type: slm
    display: {type: memory, width: 20, height: 18}
    n: 16
    settle: 1ms
  - name: cam
    type: camera
    backend: {type: memory, source: owms-test, width: 16, height: 16}
    measure: regions
    regions:
      - {name: left, roi: [0, 0, 8, 16]}
      - {name: right, roi: [8, 0, 8, 16]}
`

func TestOWMSRig(t *testing.T) {
	registerTwin(t)
	r := build(t, owmsRig)
	sp := r.Spec()
	if sp.In.Dim() != n*n || sp.In.Names[17] != "slm/phi_1_1" || sp.In.Upper[0] != 2*math.Pi {
		t.Fatalf("spec inputs: dim %d, name %q, upper %v", sp.In.Dim(), sp.In.Names[17], sp.In.Upper[0])
	}
	if strings.Join(sp.Out, ",") != "cam/left,cam/right" {
		t.Fatalf("outputs %v", sp.Out)
	}
	if len(sp.In.Periodic) != n*n || !sp.In.IsPeriodic(0) || !sp.In.IsPeriodic(n*n-1) {
		t.Errorf("SLM phases behind the rig are not periodic: %v", sp.In.Periodic)
	}
	x := make([]float64, n*n)
	for i := range x {
		x[i] = math.Mod(0.37*float64(i), 2*math.Pi)
	}
	y, err := r.Query(context.Background(), x)
	if err != nil {
		t.Fatal(err)
	}
	// The same phases, quantized as the SLM does, straight into the twin.
	tw, _ := optics.New(twinConfig())
	q := make([]float64, n*n)
	for i, v := range x {
		q[i] = math.Floor(v/(2*math.Pi)*256+1e-9) * 2 * math.Pi / 256
	}
	img, _ := tw.Query(context.Background(), q)
	var left, right float64
	for i, v := range img {
		if i%n < n/2 {
			left += 1e6 * v
		} else {
			right += 1e6 * v
		}
	}
	if math.Abs(y[0]-left) > 1e-9*left || math.Abs(y[1]-right) > 1e-9*right {
		t.Errorf("query = %v, want [%v %v]", y, left, right)
	}
	if err := r.SafeState(context.Background()); err != nil {
		t.Fatal(err)
	}
	slmPart := r.parts[0].Part.(SLM)
	for i, g := range slmPart.Display().(*slm.Memory).Last() {
		if g != 0 {
			t.Fatalf("pixel %d = %d after safe state", i, g)
		}
	}
}

var busN atomic.Int64

func emuBus(t testing.TB) (*i2cemu.Bus, string) {
	// AIN0 = DAC A / 2, AIN1 = DAC A + DAC B.
	b := i2cemu.New(&i2cemu.Opts{Response: func(d [4]physic.ElectricPotential) [4]physic.ElectricPotential {
		return [4]physic.ElectricPotential{d[0] / 2, d[0] + d[1]}
	}})
	name := fmt.Sprintf("EMU-rig-%d", busN.Add(1))
	if err := b.Register(name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { i2creg.Unregister(name) })
	return b, name
}

func daqRig(bus string) string {
	return `
kind: rig
name: analog-pnn
parts:
  - name: pnn
    type: daq
    bus: ` + bus + `
    vdd: 5
    settle: 100us
    outputs:
      - {name: w0, chip: mcp4728, addr: 0x60, channel: 0, ref: internal, gain2: true, min: 0, max: 4}
      - {name: w1, chip: mcp4728, addr: 0x60, channel: 1, ref: internal, min: 0, max: 2}
    inputs:
      - {name: y0, input: ain0, full_scale: 4.096}
      - {name: y1, input: ain1, full_scale: 6.144}
    bounds: {upper: [3.3, 1.5]}
`
}

func TestDAQRig(t *testing.T) {
	emu, bus := emuBus(t)
	r := build(t, daqRig(bus))
	sp := r.Spec()
	if strings.Join(sp.In.Names, ",") != "pnn/w0,pnn/w1" || sp.In.Upper[0] != 3.3 || sp.In.Upper[1] != 1.5 ||
		strings.Join(sp.Out, ",") != "pnn/y0,pnn/y1" {
		t.Fatalf("spec %+v", sp)
	}
	y, err := r.Query(context.Background(), []float64{3, 1})
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(y[0]-1.5) > 2e-3 || math.Abs(y[1]-4) > 2e-3 {
		t.Errorf("query = %v, want [1.5 4]", y)
	}
	// Outside the configured bound (the device allows 4 V): refused before
	// the bus.
	before := emu.Transactions()
	if _, err := r.Query(context.Background(), []float64{3.5, 1}); err == nil || !strings.Contains(err.Error(), "pnn/w0") {
		t.Errorf("query above the bound: %v", err)
	}
	if emu.Transactions() != before {
		t.Error("a refused query reached the bus")
	}
	if err := r.SafeState(context.Background()); err != nil {
		t.Fatal(err)
	}
	if emu.Outputs() != [4]physic.ElectricPotential{} {
		t.Errorf("DAC after safe state: %v", emu.Outputs())
	}
}

func TestConfigErrors(t *testing.T) {
	_, bus := emuBus(t)
	for _, tc := range []struct{ src, want string }{
		{"kind: rig\nparts: []", "parts"},
		{"kind: rig\nparts: [{name: a, type: laser}]", "unknown part type"},
		{"kind: rig\nparts: [{type: slm}]", "name"},
		{"kind: rig\nparts: [{name: s, type: slm, display: {type: memory, width: 4, height: 4}, n: 2, colour: red}]", "colour"},
		{"kind: rig\nparts: [{name: s, type: slm, display: {type: hdmi}, n: 2}]", "display"},
		{"kind: rig\nparts: [{name: s, type: slm, display: {type: memory, width: 4, height: 4}, n: 2, background: 300}]", "background"},
		{"kind: rig\nparts: [{name: s, type: slm, display: {type: memory, width: 4, height: 4}, n: 2, bounds: {lower: 7}}]", "leave nothing"},
		{"kind: rig\nparts: [{name: c, type: camera, backend: {type: memory, source: nope, width: 2, height: 2}}]", "unknown frame source"},
		{"kind: rig\nparts: [{name: s, type: slm, display: {type: memory, width: 4, height: 4}, n: 2}, {name: c, type: camera, backend: {type: v4l2, path: /dev/null}}]", "/dev/null"},
		// The rig's own checks come before any part is opened.
		{"kind: rig\nparts: [{name: c, type: camera, backend: {type: v4l2, path: /dev/null}}]", "no actuator"},
		{strings.Replace(daqRig(bus), "max: 4}", "max: 5}", 1), "full scale"},
	} {
		var v map[string]any
		if err := yaml.Unmarshal([]byte(tc.src), &v); err != nil {
			t.Fatal(err)
		}
		delete(v, "kind")
		_, err := insitu.New(context.Background(), insitu.Params{Kind: "rig", Values: v})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want it to mention %q", tc.src, err, tc.want)
		}
	}
}

// fake is an actuator and/or sensor that counts calls.
type fake struct {
	dim, outs    int
	lo, hi       float64
	safeErr      error
	safe, applys atomic.Int64
	inflight     atomic.Int64
	overlap      atomic.Bool
}

func (f *fake) Coordinates() insitu.Space { return insitu.Box(f.dim, f.lo, f.hi) }
func (f *fake) Apply(ctx context.Context, x []float64) error {
	if f.inflight.Add(1) > 1 {
		f.overlap.Store(true)
	}
	time.Sleep(50 * time.Microsecond)
	f.inflight.Add(-1)
	f.applys.Add(1)
	return nil
}
func (f *fake) SafeState(context.Context) error { f.safe.Add(1); return f.safeErr }

type fakeSensor struct{ fake }

func (f *fakeSensor) Outputs() []string { return []string{"v"} }
func (f *fakeSensor) Measure(context.Context) ([]float64, error) {
	if f.inflight.Add(1) > 1 {
		f.overlap.Store(true)
	}
	f.inflight.Add(-1)
	return []float64{float64(f.applys.Load())}, nil
}

func TestSafeStateEveryPartOnce(t *testing.T) {
	boom := errors.New("boom")
	a, b, s := &fake{dim: 1, hi: 1}, &fake{dim: 1, hi: 1, safeErr: boom}, &fakeSensor{}
	r, err := New("t", 0, Component{Name: "a", Part: a}, Component{Name: "b", Part: b}, Component{Name: "s", Part: s})
	if err != nil {
		t.Fatal(err)
	}
	err = r.SafeState(context.Background())
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "safe state of b") {
		t.Errorf("SafeState = %v, want boom naming part b", err)
	}
	for name, f := range map[string]*fake{"a": a, "b": b, "s": &s.fake} {
		if got := f.safe.Load(); got != 1 {
			t.Errorf("part %s reached %d times, want 1", name, got)
		}
	}
}

func TestSpecIntersection(t *testing.T) {
	dev := &fake{dim: 2, lo: 0, hi: 10}
	r, err := New("t", 0, Component{Name: "d", Part: dev, Lower: []float64{2}, Upper: []float64{10, 5}}, Component{Name: "s", Part: &fakeSensor{}})
	if err != nil {
		t.Fatal(err)
	}
	in := r.Spec().In
	if fmt.Sprint(in.Lower, in.Upper, in.Names) != "[2 2] [10 5] [d/x[0] d/x[1]]" {
		t.Errorf("space %v %v %v", in.Lower, in.Upper, in.Names)
	}
	for _, c := range []struct {
		c    Component
		want string // in the error
	}{
		{Component{Name: "d", Part: dev, Lower: []float64{11}}, "leave nothing"},
		{Component{Name: "d", Part: dev, Upper: []float64{1, 2, 3}}, "3 values"},
		// Bounds narrow the device's range, never widen it: a bound
		// outside it is an error naming both numbers.
		{Component{Name: "d", Part: dev, Upper: []float64{20, 5}}, "bounds.upper[0]: 20 is above the device's range [0, 10]"},
		{Component{Name: "d", Part: dev, Lower: []float64{-1}}, "bounds.lower: -1 is below the device's range [0, 10]"},
	} {
		if _, err := New("t", 0, c.c, Component{Name: "s", Part: &fakeSensor{}}); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("bounds %v %v: %v, want an error saying %q", c.c.Lower, c.c.Upper, err, c.want)
		}
	}
	if _, err := New("t", 0, Component{Name: "s", Part: &fakeSensor{}}); err == nil {
		t.Error("a rig with no actuator was accepted")
	}
}

func TestConcurrentQueriesSerialized(t *testing.T) {
	a := &fake{dim: 1, hi: 1}
	r, err := New("t", 0, Component{Name: "a", Part: a}, Component{Name: "s", Part: &sharedSensor{a}})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 20 {
				if _, err := r.Query(context.Background(), []float64{0.5}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if a.overlap.Load() {
		t.Error("two queries overlapped")
	}
	if a.applys.Load() != 160 {
		t.Errorf("%d applies, want 160", a.applys.Load())
	}
}

// sharedSensor measures through the actuator's in-flight counter, so an
// apply overlapping a measure is seen too.
type sharedSensor struct{ a *fake }

func (s *sharedSensor) Outputs() []string { return []string{"v"} }
func (s *sharedSensor) Measure(context.Context) ([]float64, error) {
	if s.a.inflight.Add(1) > 1 {
		s.a.overlap.Store(true)
	}
	defer s.a.inflight.Add(-1)
	return []float64{1}, nil
}
func (s *sharedSensor) SafeState(context.Context) error { return nil }

func TestQueryErrors(t *testing.T) {
	a := &fake{dim: 1, hi: 1}
	r, _ := New("t", time.Hour, Component{Name: "a", Part: a}, Component{Name: "s", Part: &fakeSensor{}})
	// A deadline, so that a NaN let through fails the test after its
	// hour-long settle is cut short instead of hanging it.
	nan, stop := context.WithTimeout(context.Background(), 10*time.Second)
	defer stop()
	if _, err := r.Query(nan, []float64{math.NaN()}); err == nil || errors.Is(err, context.DeadlineExceeded) || a.applys.Load() != 0 {
		t.Errorf("NaN query: %v, %d applies", err, a.applys.Load())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
	defer cancel()
	if _, err := r.Query(ctx, []float64{1}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("settle past the deadline: %v", err)
	}
}

func BenchmarkOWMSRigQuery(b *testing.B) {
	registerTwin(b)
	r := build(b, strings.Replace(owmsRig, "settle: 1ms", "settle: 0s", 1))
	x := make([]float64, n*n)
	ctx := context.Background()
	for b.Loop() {
		if _, err := r.Query(ctx, x); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDAQRigQuery(b *testing.B) {
	_, bus := emuBus(b)
	r := build(b, strings.Replace(daqRig(bus), "settle: 100us", "settle: 0s", 1))
	ctx := context.Background()
	for b.Loop() {
		if _, err := r.Query(ctx, []float64{1, 1}); err != nil {
			b.Fatal(err)
		}
	}
}

// A query's marks: the SLM part's written and shown, settled, then the
// camera's exposure and its measurement, in that order and named by part;
// WithSettle sets the wait between shown and the exposure.
func TestQueryMarks(t *testing.T) {
	registerTwin(t)
	for _, twin := range []bool{false, true} {
		src := owmsRig
		if twin {
			src += "twin: true\n"
		}
		r := build(t, src)
		x := make([]float64, n*n)
		tr := &insitu.QueryTrace{}
		ctx := insitu.WithQueryTrace(context.Background(), tr)
		if _, err := r.Query(WithSettle(ctx, 30*time.Millisecond), x); err != nil {
			t.Fatal(err)
		}
		var got []string
		at := map[string]time.Time{}
		for _, m := range tr.Marks() {
			got = append(got, m.Part+"/"+m.Event)
			at[m.Part+"/"+m.Event] = m.At
		}
		want := "slm/written slm/shown slm/settled cam/exposure_start cam/exposure_end cam/measured"
		if strings.Join(got, " ") != want {
			t.Fatalf("twin %v: marks %v, want %s", twin, got, want)
		}
		if d := at["cam/exposure_start"].Sub(at["slm/shown"]); d < 30*time.Millisecond || d > 200*time.Millisecond {
			t.Errorf("twin %v: exposure %v after the frame was shown, want the 30ms settle", twin, d)
		}
	}
}

// Spots placed in k-space through a Fourier calibration file measure the
// pixels inside the ellipse the map makes of each disc: checked against
// the ellipse's quadratic form (p − c)ᵀ(A·Aᵀ)⁻¹(p − c) ≤ r².
func TestCameraSpots(t *testing.T) {
	RegisterFrameSource("index-test", func(_ map[string]Part, w, h int) (camera.FrameFunc, error) {
		return func(_ context.Context, dst []float64) error {
			for i := range dst {
				dst[i] = float64(i)
			}
			return nil
		}, nil
	})
	m := cameraslm.Map{A: [2][2]float64{{120, -25}, {30, 110}}, B: [2]float64{40.3, 29.8}}
	file := filepath.Join(t.TempDir(), "fourier.yaml")
	if err := (cameraslm.FourierFile{Map: m}).Write(file); err != nil {
		t.Fatal(err)
	}
	src := func(spots string) string {
		return `
kind: rig
parts:
  - {name: slm, type: slm, display: {type: memory, width: 8, height: 8}, n: 4}
  - name: cam
    type: camera
    backend: {type: memory, source: index-test, width: 80, height: 60}
    roi: [10, 5, 64, 50]
    measure: regions
    calibration: ` + file + `
    regions: [{name: all, roi: [0, 0, 64, 50]}]
    spots: ` + spots + "\n"
	}
	r := build(t, src("[{name: a, kx: 0.1, ky: 0.05, radius: 0.03}, {name: b, kx: -0.08, ky: 0, radius: 0.05}]"))
	if got := strings.Join(r.Spec().Out, ","); got != "cam/all,cam/a,cam/b" {
		t.Fatalf("outputs %s", got)
	}
	y, err := r.Query(context.Background(), make([]float64, 16))
	if err != nil {
		t.Fatal(err)
	}
	// (A·Aᵀ)⁻¹ for the ellipse's quadratic form.
	a, b, c := m.A[0][0]*m.A[0][0]+m.A[0][1]*m.A[0][1], m.A[0][0]*m.A[1][0]+m.A[0][1]*m.A[1][1], m.A[1][0]*m.A[1][0]+m.A[1][1]*m.A[1][1]
	det := a*c - b*b
	for i, s := range []struct{ kx, ky, r float64 }{{0.1, 0.05, 0.03}, {-0.08, 0, 0.05}} {
		cx, cy := m.Apply(s.kx, s.ky)
		var want float64
		n := 0
		for py := 5; py < 55; py++ {
			for px := 10; px < 74; px++ {
				dx, dy := float64(px)-cx, float64(py)-cy
				if (c*dx*dx-2*b*dx*dy+a*dy*dy)/det <= s.r*s.r {
					want += float64(py*80 + px) // the frame's value: its sensor index
					n++
				}
			}
		}
		if n < 20 || math.Abs(y[1+i]-want) > 1e-6*want {
			t.Errorf("spot %d: %v over the window, want %v over %d pixels", i, y[1+i], want, n)
		}
	}
	for _, bad := range []struct{ spots, want string }{
		{"[{name: far, kx: 0.3, ky: 0, radius: 0.02}]", "past the 64×50 camera window"},
		{"[{name: a, kx: 0, ky: 0, radius: 0}]", "radius > 0"},
		{"[{name: all, kx: 0, ky: 0, radius: 0.01}]", `"all" used twice`},
	} {
		var v map[string]any
		if err := yaml.Unmarshal([]byte(src(bad.spots)), &v); err != nil {
			t.Fatal(err)
		}
		delete(v, "kind")
		_, err := insitu.New(context.Background(), insitu.Params{Kind: "rig", Values: v, File: "test.yaml"})
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s: %v, want %q", bad.spots, err, bad.want)
		}
	}
}
