package bench_test

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/insitu-lab/insitu/drivers/fbdev"
	"github.com/insitu-lab/insitu/drivers/scpi"
	"github.com/insitu-lab/insitu/drivers/scpi/emulator"
	"github.com/insitu-lab/insitu/drivers/scpi/scpitest"
	"github.com/insitu-lab/insitu/drivers/serial"
	"github.com/insitu-lab/insitu/simulators/bench"
	"github.com/insitu-lab/insitu/simulators/optics"
)

func client(t *testing.T, in *emulator.Instrument) *scpi.Client {
	t.Helper()
	c, _ := scpitest.ServeTCP(t, in)
	cl := scpi.NewClient(c, scpi.WithTimeout(300*time.Millisecond))
	t.Cleanup(func() { cl.Close() })
	return cl
}

func TestIdentitiesSayTwin(t *testing.T) {
	for _, idn := range []string{bench.SMUIDN, bench.PowerMeterIDN} {
		id, err := scpi.ParseIDN(idn)
		if err != nil || !strings.Contains(id.Model, "twin") {
			t.Errorf("%q: %v", idn, err)
		}
	}
}

func TestSMUTwin(t *testing.T) {
	tw, err := bench.NewSMU(bench.SMUConfig{NoNoise: true, Resistance: 100})
	if err != nil {
		t.Fatal(err)
	}
	c := client(t, tw.Instrument())
	ctx := context.Background()
	// READ? with the output off: no reading, error +803, as on a 2400 (the
	// client reads the queue after the timeout).
	_, err = c.Query(ctx, ":READ?")
	var op *scpi.OpError
	if !errors.Is(err, scpi.ErrTimeout) || !errors.As(err, &op) || len(op.Queue) != 1 || op.Queue[0].Code != 803 {
		t.Errorf("READ? with output off: %v; want a timeout and +803 in the queue", err)
	}
	if err := c.Write(ctx, ":SENS:CURR:PROT 0.01;:FORM:ELEM CURR,STAT;:SOUR:VOLT 0.5;:OUTP ON"); err != nil {
		t.Fatal(err)
	}
	// Status word: front terminals (bit 2), current measured (12), voltage
	// sourced (14); bit 3 is compliance.
	const status, compliance = 1<<2 | 1<<12 | 1<<14, 1 << 3
	v, err := c.QueryFloats(ctx, ":READ?")
	if err != nil {
		t.Fatal(err)
	}
	if want := tw.Current(0.5); len(v) != 2 || math.Abs(v[0]-want) > 1e-6*want || v[1] != status {
		t.Errorf("READ? %v, want [%v %v]", v, want, status)
	}
	// 2 V into 100 Ω ∥ diode wants far more than 10 mA: clamped, status bit 3.
	if err := c.Write(ctx, ":SOUR:VOLT 2"); err != nil {
		t.Fatal(err)
	}
	if v, err = c.QueryFloats(ctx, ":READ?"); err != nil || v[0] != 0.01 || v[1] != status|compliance {
		t.Errorf("READ? in compliance: %v, %v", v, err)
	}
	if trip, err := c.QueryFloat(ctx, ":SENS:CURR:PROT:TRIP?"); err != nil || trip != 1 {
		t.Errorf("TRIP? %v, %v", trip, err)
	}
	if err := c.Write(ctx, "*RST"); err != nil {
		t.Fatal(err)
	}
	if err := c.OPC(ctx); err != nil { // the twin has processed *RST
		t.Fatal(err)
	}
	if st := tw.State(); st.Output || st.Level != 0 || st.OffMode != "NORM" || len(st.Elements) != 5 {
		t.Errorf("after *RST: %+v", st)
	}
	// A level beyond the range is refused (−222) and not applied.
	if err := c.Write(ctx, ":SOUR:VOLT 50"); err != nil {
		t.Fatal(err)
	}
	if errs, _ := c.Errors(ctx); len(errs) != 1 || errs[0].Code != -222 || tw.State().Level != 0 {
		t.Errorf("out-of-range level: %v, state %+v", errs, tw.State())
	}
}

// TestSMUTwinComplianceLikeA2400: a voltage source into a resistor,
// limited by its current compliance, sits at I_comp·R with the compliance
// bit set; the VOLT element reports that voltage only when voltage is
// measured, and the programmed level otherwise, as a 2400 does.
func TestSMUTwinComplianceLikeA2400(t *testing.T) {
	tw, err := bench.NewSMU(bench.SMUConfig{NoNoise: true, NoDiode: true}) // 1 kΩ
	if err != nil {
		t.Fatal(err)
	}
	c := client(t, tw.Instrument())
	ctx := context.Background()
	if err := c.Write(ctx, ":SENS:CURR:PROT 1E-3;:SOUR:VOLT 1.5;:OUTP ON"); err != nil {
		t.Fatal(err)
	}
	read := func() []float64 {
		t.Helper()
		v, err := c.QueryFloats(ctx, ":READ?") // VOLT,CURR,RES,TIME,STAT
		if len(v) != 5 || (err != nil && !errors.Is(err, scpi.ErrNotANumber)) {
			t.Fatalf("READ? %v, %v", v, err)
		}
		return v
	}
	// Current only measured (*RST): the voltage element is the programmed level.
	v := read()
	if v[0] != 1.5 || v[1] != 1e-3 || uint32(v[4])&(1<<3) == 0 || uint32(v[4])&(1<<11) != 0 {
		t.Errorf("current measured only: %v; want 1.5 V (programmed), 1 mA, compliance bit, no V-meas bit", v)
	}
	if err := c.Write(ctx, `:SENS:FUNC:CONC ON;:SENS:FUNC "VOLT","CURR"`); err != nil {
		t.Fatal(err)
	}
	v = read()
	if math.Abs(v[0]-1) > 1e-6 || v[1] != 1e-3 || uint32(v[4])&(1<<3) == 0 || uint32(v[4])&(1<<11) == 0 {
		t.Errorf("voltage measured too: %v; want 1 V (1 mA × 1 kΩ), 1 mA, compliance and V-meas bits", v)
	}
	if !tw.State().Tripped {
		t.Error("twin state not tripped")
	}
	// Below the limit: the programmed level, no compliance.
	if err := c.Write(ctx, ":SOUR:VOLT 0.5"); err != nil {
		t.Fatal(err)
	}
	if v = read(); v[0] != 0.5 || v[1] != 0.5e-3 || uint32(v[4])&(1<<3) != 0 {
		t.Errorf("below compliance: %v", v)
	}
	if errs, err := c.Errors(ctx); err != nil || len(errs) != 0 {
		t.Errorf("error queue %v, %v", errs, err)
	}
}

func TestReadGrayFormats(t *testing.T) {
	const w, h = 7, 5
	img := make([]uint8, w*h)
	for i := range img {
		img[i] = uint8(i * 37)
	}
	for _, f := range []fbdev.Format{fbdev.Gray8, fbdev.RGB565, fbdev.RGB888, fbdev.XRGB8888} {
		g := fbdev.Geometry{Width: w, Height: h, Format: f, Stride: w*f.BytesPerPixel() + 6, Offset: 4}
		mem := make([]byte, g.Size())
		d, err := fbdev.New(mem, g)
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Show(context.Background(), img); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "fb")
		if err := os.WriteFile(path, mem, 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := bench.ReadGray(path, g, 2, 1, 4, 3)
		if err != nil {
			t.Fatal(err)
		}
		tol := 0
		if f == fbdev.RGB565 {
			tol = 3 // 6-bit green
		}
		for y := range 3 {
			for x := range 4 {
				want := int(img[(y+1)*w+x+2])
				if d := int(got[y*4+x]) - want; d < -tol || d > tol {
					t.Errorf("%v: pixel (%d,%d) = %d, want %d", f, x+2, y+1, got[y*4+x], want)
				}
			}
		}
	}
	if _, err := bench.ReadGray(filepath.Join(t.TempDir(), "none"), fbdev.Geometry{Width: 1, Height: 1, Format: fbdev.Gray8}, 0, 0, 1, 1); err == nil {
		t.Error("missing file read")
	}
}

func TestPowerMeterTwinNoiseAndAveraging(t *testing.T) {
	ocfg := optics.DefaultConfig()
	ocfg.N = 16
	ocfg.Waist = 30e-6
	cfg := bench.PowerMeterConfig{Optics: ocfg, Noise: 0.05, Seed: 7}
	read := func(avg string) []float64 {
		pm, err := bench.NewPowerMeter(cfg)
		if err != nil {
			t.Fatal(err)
		}
		c := client(t, pm.Instrument())
		ctx := context.Background()
		if err := c.Write(ctx, "SENS:AVER:COUN "+avg); err != nil {
			t.Fatal(err)
		}
		var out []float64
		for range 200 {
			p, err := c.QueryFloat(ctx, "MEAS:POW?")
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, p)
		}
		return out
	}
	a, b, avg := read("1"), read("1"), read("100")
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("same seed, different readings at %d: %v vs %v", i, a[i], b[i])
		}
	}
	if sa, s100 := std(a), std(avg); !(s100 < sa/5) {
		t.Errorf("averaging 100 samples: std %v, single samples %v; want ≈ 10× smaller", s100, sa)
	}
}

func std(x []float64) float64 {
	var m, v float64
	for _, e := range x {
		m += e
	}
	m /= float64(len(x))
	for _, e := range x {
		v += (e - m) * (e - m)
	}
	return math.Sqrt(v / float64(len(x)-1))
}

func TestServePTY(t *testing.T) {
	tw, err := bench.NewSMU(bench.SMUConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	paths := make(chan string, 1)
	var wg sync.WaitGroup
	var serr error
	wg.Go(func() { serr = bench.ServePTY(ctx, tw.Instrument(), func(p string) { paths <- p }) })
	defer func() {
		cancel()
		wg.Wait()
		if serr != nil && !errors.Is(serr, context.Canceled) {
			t.Errorf("ServePTY: %v", serr)
		}
	}()
	var path string
	select {
	case path = <-paths:
	case <-time.After(5 * time.Second):
		t.Fatal("no pty")
	}
	for range 2 { // a second client on the same path is served too
		p, err := serial.Open(ctx, serial.Config{Port: path})
		if err != nil {
			t.Fatal(err)
		}
		c := scpi.NewClient(p, scpi.WithTimeout(time.Second))
		id, err := c.Identify(ctx, "twin")
		c.Close()
		if err != nil || id.Serial != "TWIN-SMU-0001" {
			t.Fatalf("identity over %s: %v, %v", path, id, err)
		}
	}
}
