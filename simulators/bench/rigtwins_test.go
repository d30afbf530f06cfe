package bench

import (
	"context"
	"math"
	"testing"

	"periph.io/x/conn/v3/i2c/i2creg"
	"periph.io/x/conn/v3/physic"

	"github.com/insitu-lab/insitu/instruments/rig"
	"github.com/insitu-lab/insitu/instruments/slm"
	"github.com/insitu-lab/insitu/simulators/optics"
)

// pnnTargetInput is the DAC setting whose response is the target of
// configs/bench-analog-pnn-twin.yaml.
var pnnTargetInput = [4]float64{1.2, 3.4, 0.8, 2.6}

func TestPNNResponse(t *testing.T) {
	y := PNNResponse([4]float64{2.5, 2.5, 2.5, 2.5})
	for _, v := range y {
		if math.Abs(v-2.5) > 1e-12 {
			t.Fatalf("mid-supply response %v, want 2.5 V everywhere", y)
		}
	}
	for _, v := range []([4]float64){{0, 0, 0, 0}, {5, 5, 5, 5}, {0, 5, 0, 5}, pnnTargetInput} {
		for _, yi := range PNNResponse(v) {
			if !(yi > 0 && yi < 5) {
				t.Errorf("response to %v: %v outside (0, 5) V", v, PNNResponse(v))
			}
		}
	}
	// Nonlinear: the response to a sum is not the sum of responses.
	a, b := PNNResponse([4]float64{4, 2.5, 2.5, 2.5}), PNNResponse([4]float64{4.5, 2.5, 2.5, 2.5})
	if math.Abs((b[0]-2.5)-(a[0]-2.5)*4.5/4) < 1e-6 {
		t.Error("the response looks linear")
	}
	t.Logf("target (response to %v): %.4f", pnnTargetInput, PNNResponse(pnnTargetInput))
}

func TestPNNBusRegistered(t *testing.T) {
	bus, err := i2creg.Open(PNNBusName)
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close()
	if bus != PNNBus() {
		t.Fatalf("i2creg %q opens %v, not PNNBus()", PNNBusName, bus)
	}
	// The response through the emulated chips: a fresh bus, not the
	// registered one, so the test leaves it alone.
	b := NewPNNBus()
	if b.Outputs() != [4]physic.ElectricPotential{} {
		t.Errorf("power-on outputs %v", b.Outputs())
	}
	in := b.Inputs()
	want := PNNResponse([4]float64{})
	for i := range in {
		if got := float64(in[i]) / float64(physic.Volt); math.Abs(got-want[i]) > 1e-6 {
			t.Errorf("AIN%d = %v V, want %v", i, got, want[i])
		}
	}
}

func memSLM(t *testing.T, n int, cfg slm.Config) rig.SLM {
	t.Helper()
	cfg.N = n
	s, err := slm.New(slm.NewMemory(n+4, n+2), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return rig.SLM{SLM: s}
}

func TestGrayPhases(t *testing.T) {
	ph, err := GrayPhases(memSLM(t, 8, slm.Config{}).SLM)
	if err != nil {
		t.Fatal(err)
	}
	for g, v := range ph {
		if v != GrayToPhase(uint8(g)) {
			t.Fatalf("two_pi_gray 256: level %d → %v, want %v", g, v, GrayToPhase(uint8(g)))
		}
	}
	s := memSLM(t, 8, slm.Config{TwoPiGray: 218}).SLM
	if ph, err = GrayPhases(s); err != nil {
		t.Fatal(err)
	}
	for g := range 218 {
		if want := 2 * math.Pi * float64(g) / 218; math.Abs(ph[g]-want) > 1e-9 {
			t.Fatalf("two_pi_gray 218: level %d → %v, want %v", g, ph[g], want)
		}
		if got := s.Gray(0, ph[g]+1e-9); int(got) != g {
			t.Fatalf("level %d: its phase renders as %d", g, got)
		}
	}
	if ph[255] != ph[218] || math.Abs(ph[218]-2*math.Pi) > 1e-9 {
		t.Errorf("levels above 2π: %v, want held at level 218's %v ≈ 2π", ph[255], ph[218])
	}
	corr := make([]float64, 64)
	corr[5] = 1
	if _, err := GrayPhases(memSLM(t, 8, slm.Config{Correction: corr}).SLM); err == nil {
		t.Error("an SLM with a correction was accepted")
	}
}

// TestOWMSFrames: a frame of the "owms" source is the OWMS twin's
// intensity × OWMSScale under the phases the SLM shows, quantized by it.
func TestOWMSFrames(t *testing.T) {
	const n = 60
	s := memSLM(t, n, slm.Config{})
	built := map[string]rig.Part{"slm": s}
	ff, err := OWMSFrames(built, n, n, false)
	if err != nil {
		t.Fatal(err)
	}
	x := make([]float64, n*n)
	for i := range x {
		x[i] = math.Mod(0.37*float64(i), 2*math.Pi)
	}
	ctx := context.Background()
	if err := s.Show(ctx, x); err != nil {
		t.Fatal(err)
	}
	got := make([]float64, n*n)
	if err := ff(ctx, got); err != nil {
		t.Fatal(err)
	}
	cfg := optics.DefaultConfig()
	cfg.Output = optics.OutputIntensity
	tw, _ := optics.New(cfg)
	q := make([]float64, n*n)
	for i, v := range x {
		q[i] = GrayToPhase(s.Gray(i, v))
	}
	want, _ := tw.Query(ctx, q)
	for i := range want {
		if math.Abs(got[i]-OWMSScale*want[i]) > 1e-9*OWMSScale {
			t.Fatalf("pixel %d: %v, want %v", i, got[i], OWMSScale*want[i])
		}
	}
	// A flat pattern keeps most of the beam on the grid.
	if err := s.Show(ctx, make([]float64, n*n)); err != nil {
		t.Fatal(err)
	}
	if err := ff(ctx, got); err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, v := range got {
		sum += v
	}
	if sum < 0.5*OWMSScale || sum > OWMSScale*1.0001 {
		t.Errorf("frame total %v, want most of %v", sum, OWMSScale)
	}
	noisy, err := OWMSFrames(built, n, n, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := noisy(ctx, got); err != nil {
		t.Fatal(err)
	}
	var nsum float64
	for _, v := range got {
		nsum += v
	}
	if math.Abs(nsum-sum) > 0.05*sum || nsum == sum {
		t.Errorf("noisy frame total %v, noiseless %v", nsum, sum)
	}
	for _, tc := range []struct {
		built map[string]rig.Part
		w     int
	}{{built, 30}, {map[string]rig.Part{}, n}, {map[string]rig.Part{"a": s, "b": memSLM(t, n, slm.Config{})}, n}} {
		if _, err := OWMSFrames(tc.built, tc.w, tc.w, false); err == nil {
			t.Errorf("built %v, camera %d: accepted", tc.built, tc.w)
		}
	}
}

// A macro-pixel SLM (10×10 controls of 6×6 pixels) in front of the camera
// twin: the frame is what the OWMS twin with macro_pixel 6 gives for the
// same (gray-quantized) controls.
func TestOWMSFramesMacroPixel(t *testing.T) {
	const n, mp = 10, 6
	sl, err := slm.New(slm.NewMemory(n*mp+4, n*mp+2), slm.Config{N: n, MacroPixel: mp})
	if err != nil {
		t.Fatal(err)
	}
	s := rig.SLM{SLM: sl}
	ff, err := OWMSFrames(map[string]rig.Part{"slm": s}, n*mp, n*mp, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OWMSFrames(map[string]rig.Part{"slm": s}, n, n, false); err == nil {
		t.Error("a 10×10 camera accepted for a 60×60-pixel pattern")
	}
	x := make([]float64, n*n)
	for i := range x {
		x[i] = math.Mod(1.3*float64(i), 2*math.Pi)
	}
	ctx := context.Background()
	if err := s.Show(ctx, x); err != nil {
		t.Fatal(err)
	}
	got := make([]float64, n*mp*n*mp)
	if err := ff(ctx, got); err != nil {
		t.Fatal(err)
	}
	cfg := optics.DefaultConfig()
	cfg.Output, cfg.MacroPixel = optics.OutputIntensity, mp
	tw, err := optics.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	q := make([]float64, n*n)
	for i, v := range x {
		q[i] = GrayToPhase(s.Gray(0, v)) // no correction: every pixel of a block shows the same gray
	}
	want, _ := tw.Query(ctx, q)
	for i := range want {
		if math.Abs(got[i]-OWMSScale*want[i]) > 1e-9*OWMSScale {
			t.Fatalf("pixel %d: %v, want %v", i, got[i], OWMSScale*want[i])
		}
	}
}
