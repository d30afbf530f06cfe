package powermeter_test

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/insitu-lab/insitu/drivers/fbdev"
	"github.com/insitu-lab/insitu/drivers/lxi"
	"github.com/insitu-lab/insitu/drivers/scpi"
	"github.com/insitu-lab/insitu/drivers/scpi/emulator"
	"github.com/insitu-lab/insitu/drivers/scpi/scpitest"
	"github.com/insitu-lab/insitu/drivers/transport"
	"github.com/insitu-lab/insitu/instruments/powermeter"
	"github.com/insitu-lab/insitu/instruments/rig"
	"github.com/insitu-lab/insitu/simulators/bench"
	"github.com/insitu-lab/insitu/simulators/optics"
)

var _ rig.Sensor = (*powermeter.PM100)(nil)

func twinConfig() powermeter.Config {
	return powermeter.Config{IDN: "twin", Wavelength: 700, Average: 4, Timeout: 2 * time.Second}
}

// fixture is a power-meter twin looking at a file-backed framebuffer that
// the test draws into like the SLM driver does.
type fixture struct {
	tw    *bench.PowerMeter
	fb    *fbdev.Dev
	cfg   bench.PowerMeterConfig
	ocfg  optics.Config
	fpath string
}

func newFixture(t testing.TB, opts ...emulator.Option) *fixture {
	t.Helper()
	ocfg := optics.DefaultConfig()
	ocfg.N = 32
	ocfg.Waist = 50e-6
	n := ocfg.N
	geo := fbdev.Geometry{Width: n + 8, Height: n + 4, Format: fbdev.XRGB8888, Stride: (n + 8) * 4}
	path := filepath.Join(t.TempDir(), "fb")
	if err := os.WriteFile(path, make([]byte, geo.Size()), 0o600); err != nil {
		t.Fatal(err)
	}
	fb, err := fbdev.Open(path, &fbdev.Opts{Geometry: geo})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fb.Close() })
	cfg := bench.PowerMeterConfig{
		Optics:     ocfg,
		FB:         bench.Framebuffer{Path: path, Geometry: geo},
		Detector:   bench.Detector{X: 40e-6, Radius: 60e-6},
		InputPower: 2e-3,
	}
	tw, err := bench.NewPowerMeter(cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{tw: tw, fb: fb, cfg: cfg, ocfg: ocfg, fpath: path}
}

// show draws the N×N gray pattern centred on the framebuffer, as
// instruments/slm does by default, and flushes it to the file.
func (f *fixture) show(t testing.TB, gray func(r, c int) uint8) {
	t.Helper()
	n := f.ocfg.N
	w, h := f.fb.Size()
	x0, y0 := (w-n)/2, (h-n)/2
	err := f.fb.ShowFunc(context.Background(), func(x, y int) uint8 {
		if x < x0 || y < y0 || x >= x0+n || y >= y0+n {
			return 0
		}
		return gray(y-y0, x-x0)
	})
	if err == nil {
		err = f.fb.Sync()
	}
	if err != nil {
		t.Fatal(err)
	}
}

// expected is the detector power computed directly from the OWMS twin in
// intensity mode: input power × the sum of the pixel powers on the disc.
func (f *fixture) expected(t testing.TB, gray func(r, c int) uint8) float64 {
	t.Helper()
	ocfg := f.ocfg
	ocfg.Output = optics.OutputIntensity
	tw, err := optics.New(ocfg)
	if err != nil {
		t.Fatal(err)
	}
	n := ocfg.N
	x := make([]float64, n*n)
	for r := range n {
		for c := range n {
			x[r*n+c] = 2 * math.Pi * float64(gray(r, c)) / 256
		}
	}
	y, err := tw.Query(context.Background(), x)
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for r := range n {
		for c := range n {
			px := (float64(c) - float64(n-1)/2) * ocfg.Pitch
			py := (float64(r) - float64(n-1)/2) * ocfg.Pitch
			if math.Hypot(px-f.cfg.Detector.X, py-f.cfg.Detector.Y) <= f.cfg.Detector.Radius {
				sum += y[r*n+c]
			}
		}
	}
	return f.cfg.InputPower * sum
}

func open(t testing.TB, f *fixture, serve func(testing.TB, *emulator.Instrument) (scpi.Conn, string), cfg powermeter.Config) (*powermeter.PM100, string) {
	t.Helper()
	conn, port := serve(t, f.tw.Instrument())
	pm, err := powermeter.New(context.Background(), conn, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pm.Close() })
	return pm, port
}

func TestPowerMeterFollowsFramebuffer(t *testing.T) {
	flat := func(r, c int) uint8 { return 0 }
	// A blazed grating along x steers light sideways, off the detector's
	// share of the undeflected beam.
	grating := func(r, c int) uint8 { return uint8((c * 256 / 4) % 256) }
	for _, tr := range scpitest.Transports {
		t.Run(tr.Name, func(t *testing.T) {
			f := newFixture(t)
			pm, _ := open(t, f, tr.Serve, twinConfig())
			ctx := context.Background()
			if pm.Wavelength() != 700 || f.tw.Wavelength() != 700 || f.tw.Average() != 4 {
				t.Errorf("settings: driver λ %v, twin λ %v, average %d", pm.Wavelength(), f.tw.Wavelength(), f.tw.Average())
			}
			var powers []float64
			for _, img := range []func(r, c int) uint8{flat, grating} {
				f.show(t, img)
				p, err := pm.Power(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if want := f.expected(t, img); math.Abs(p-want) > 1e-6*want {
					t.Errorf("power %v W, want %v W (OWMS twin, computed directly)", p, want)
				}
				powers = append(powers, p)
			}
			if math.Abs(powers[0]-powers[1]) < 1e-3*powers[0] {
				t.Errorf("reading did not follow the framebuffer: %v", powers)
			}
			if y, err := pm.Measure(ctx); err != nil || len(y) != 1 {
				t.Errorf("Measure: %v, %v", y, err)
			}
			if err := pm.SafeState(ctx); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestPowerMeterReadMode(t *testing.T) {
	f := newFixture(t)
	cfg := twinConfig()
	cfg.Read = "read"
	cfg.Range = 1e-2
	pm, _ := open(t, f, scpitest.ServeTCP, cfg)
	if _, err := pm.Power(context.Background()); err != nil {
		t.Fatal(err)
	}
	log := strings.Join(f.tw.Instrument().Commands(), "\n")
	for _, want := range []string{"CONFIGURE:POWER", "READ?", "SENSE:POWER:DC:RANGE:UPPER 0.01", "SENSE:CORRECTION:WAVELENGTH 700"} {
		if !strings.Contains(log, want) {
			t.Errorf("twin never saw %q:\n%s", want, log)
		}
	}
}

func TestPowerMeterStartupChecks(t *testing.T) {
	t.Run("identity", func(t *testing.T) {
		f := newFixture(t)
		conn, _ := scpitest.ServeTCP(t, f.tw.Instrument())
		cfg := twinConfig()
		cfg.IDN = "" // the default matches real Thorlabs meters only
		if _, err := powermeter.New(context.Background(), conn, cfg); !errors.Is(err, scpi.ErrIdentity) {
			t.Fatalf("twin accepted as hardware: %v", err)
		}
	})
	t.Run("error queue", func(t *testing.T) {
		f := newFixture(t, emulator.WithFaults(emulator.Faults{ErrorRate: 1}))
		conn, port := scpitest.ServeTCP(t, f.tw.Instrument())
		_, err := powermeter.New(context.Background(), conn, twinConfig())
		// Every command, SYST:ERR? included, queues an error: the bounded
		// drain gives up rather than loop forever.
		if !errors.Is(err, scpi.ErrErrorQueue) || !strings.Contains(err.Error(), port) {
			t.Fatalf("queued errors not reported: %v", err)
		}
	})
	t.Run("no wavelength", func(t *testing.T) {
		cfg := twinConfig()
		cfg.Wavelength = 0
		cfg.Defaults()
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "wavelength") {
			t.Fatalf("missing wavelength: %v", err)
		}
	})
}

func TestPowerMeterFaults(t *testing.T) {
	cases := []struct {
		name   string
		inject func(*emulator.Instrument)
		is     error
	}{
		{"garbled", func(in *emulator.Instrument) { in.GarbleNext(1) }, scpi.ErrGarbled},
		{"dropped", func(in *emulator.Instrument) { in.DropNext(1) }, scpi.ErrTimeout},
		{"hangup", func(in *emulator.Instrument) { in.HangUpNext() }, nil},
	}
	for _, tr := range scpitest.Transports {
		for _, c := range cases {
			t.Run(tr.Name+"/"+c.name, func(t *testing.T) {
				f := newFixture(t)
				cfg := twinConfig()
				cfg.Timeout = 300 * time.Millisecond
				pm, port := open(t, f, tr.Serve, cfg)
				c.inject(f.tw.Instrument())
				_, err := pm.Power(context.Background())
				if err == nil {
					t.Fatal("no error")
				}
				for _, want := range []string{"powermeter", port, "MEASURE:POWER?"} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q does not name %q", err, want)
					}
				}
				if c.is != nil && !errors.Is(err, c.is) {
					t.Errorf("error %v is not %v", err, c.is)
				}
			})
		}
	}
}

// BenchmarkPowerMeterRead is one MEAS:POW? over loopback TCP: framebuffer
// read, OWMS propagation (N = 32) and the SCPI round trip.
func BenchmarkPowerMeterRead(b *testing.B) {
	f := newFixture(b)
	pm, _ := open(b, f, scpitest.ServeTCP, twinConfig())
	ctx := context.Background()
	for b.Loop() {
		if _, err := pm.Power(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "queries/s")
}

// TestPowerMeterOpenOverLXI opens through the config path (lxi transport),
// as a bench config pointing at `insitu twin serve powermeter --tcp` does.
func TestPowerMeterOpenOverLXI(t *testing.T) {
	f := newFixture(t)
	ln, err := emulator.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- f.tw.Instrument().ServeTCP(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-served })
	cfg := twinConfig()
	cfg.Transport = transport.Config{Type: "lxi", LXI: lxi.Config{Address: ln.Addr().String()}}
	pm, err := powermeter.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pm.Close()
	if !strings.Contains(pm.String(), ln.Addr().String()) || pm.Identity().Serial != "TWIN-PM-0001" {
		t.Errorf("opened %v, identity %v", pm, pm.Identity())
	}
	if _, err := pm.Power(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestPowerMeterTransportTimeout: with no timeout key of its own, the
// meter's exchanges are bounded by the transport's configured timeout,
// even under a caller's 5 s deadline.
func TestPowerMeterTransportTimeout(t *testing.T) {
	f := newFixture(t)
	ln, err := emulator.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- f.tw.Instrument().ServeTCP(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-served })
	cfg := twinConfig()
	cfg.Timeout = 0
	cfg.Transport = transport.Config{Type: "lxi", LXI: lxi.Config{Address: ln.Addr().String(), Timeout: 300 * time.Millisecond}}
	pm, err := powermeter.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pm.Close()
	f.tw.Instrument().DropNext(1)
	watchdog, stop := context.WithTimeout(ctx, 5*time.Second)
	defer stop()
	start := time.Now()
	_, err = pm.Power(watchdog)
	if !errors.Is(err, scpi.ErrTimeout) || !strings.Contains(err.Error(), "no reply within 300ms; instrument error queue: empty") {
		t.Errorf("dropped reading: %v", err)
	}
	if d := time.Since(start); d > 300*time.Millisecond+scpi.DefaultDrainTimeout+300*time.Millisecond {
		t.Errorf("failed after %v under a 5 s deadline; transport timeout 300 ms", d)
	}
}
