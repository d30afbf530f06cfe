package smu_test

import (
	"context"
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/insitu-lab/insitu/drivers/lxi"
	"github.com/insitu-lab/insitu/drivers/scpi"
	"github.com/insitu-lab/insitu/drivers/scpi/emulator"
	"github.com/insitu-lab/insitu/drivers/scpi/scpitest"
	"github.com/insitu-lab/insitu/drivers/serial"
	"github.com/insitu-lab/insitu/drivers/transport"
	"github.com/insitu-lab/insitu/instruments/rig"
	"github.com/insitu-lab/insitu/instruments/smu"
	"github.com/insitu-lab/insitu/simulators/bench"
)

// The SMU plugs into a rig as actuator and sensor.
var (
	_ rig.Actuator = (*smu.SMU)(nil)
	_ rig.Sensor   = (*smu.SMU)(nil)
	_ rig.Settler  = (*smu.SMU)(nil)
)

func twinConfig() smu.Config {
	return smu.Config{IDN: "twin", Range: 20, Compliance: 10e-3, Step: 0.5, Timeout: 2 * time.Second}
}

func newTwin(t testing.TB, cfg bench.SMUConfig, opts ...emulator.Option) *bench.SMU {
	t.Helper()
	tw, err := bench.NewSMU(cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return tw
}

func open(t testing.TB, tw *bench.SMU, serve func(testing.TB, *emulator.Instrument) (scpi.Conn, string), cfg smu.Config) (*smu.SMU, string) {
	t.Helper()
	conn, port := serve(t, tw.Instrument())
	s, err := smu.New(context.Background(), conn, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, port
}

// since returns the commands the twin logged from index n on, after a
// query has made sure it processed everything sent (a Write returns once
// the bytes are sent, not once the twin has read them).
func since(t *testing.T, s *smu.SMU, tw *bench.SMU, n int) []string {
	t.Helper()
	if _, err := s.Errors(context.Background()); err != nil {
		t.Fatal(err)
	}
	log := tw.Instrument().Commands()[n:]
	for len(log) > 0 && log[len(log)-1] == "SYST:ERR?" {
		log = log[:len(log)-1]
	}
	return log
}

// levels returns the values of the :SOUR:VOLT:LEV commands in the log from
// index from on.
func levels(t *testing.T, log []string) []float64 {
	t.Helper()
	var out []float64
	for _, c := range log {
		if v, ok := strings.CutPrefix(c, ":SOUR:VOLT:LEV "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("log entry %q: %v", c, err)
			}
			out = append(out, f)
		}
	}
	return out
}

func checkSteps(t *testing.T, from float64, ls []float64, step float64) {
	t.Helper()
	prev := from
	for _, l := range ls {
		if d := math.Abs(l - prev); d > step+1e-12 {
			t.Errorf("step %v → %v is %v, more than %v (levels %v)", prev, l, d, step, ls)
		}
		prev = l
	}
}

func TestSMURampMeasureSafeState(t *testing.T) {
	for _, tr := range scpitest.Transports {
		t.Run(tr.Name, func(t *testing.T) {
			tw := newTwin(t, bench.SMUConfig{Seed: 1, NoNoise: true, NoDiode: true}) // 1 kΩ: 2.3 mA at 2.3 V
			s, _ := open(t, tw, tr.Serve, twinConfig())
			ctx := context.Background()
			if id := s.Identity(); !strings.Contains(id.Model, "twin") {
				t.Errorf("identity %v", id)
			}
			if st := tw.State(); st.OffMode != "HIMP" || st.Compliance != 10e-3 || st.Range != 21 || st.Output {
				t.Errorf("after open: %+v", st)
			}
			n0 := len(tw.Instrument().Commands())
			if err := s.Apply(ctx, []float64{2.3}); err != nil {
				t.Fatal(err)
			}
			log := since(t, s, tw, n0)
			ls := levels(t, log)
			checkSteps(t, 0, ls, 0.5)
			if want := []float64{0.5, 1, 1.5, 2, 2.3}; !equal(ls, want) {
				t.Errorf("ramp levels %v, want %v", ls, want)
			}
			if log[0] != ":OUTP ON" {
				t.Errorf("output not switched on at 0 V first: %v", log)
			}
			r, err := s.Read(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if want := tw.Current(2.3); r.Voltage != 2.3 || math.Abs(r.Current-want) > 1e-6*want || r.Compliance() {
				t.Errorf("reading %+v, want 2.3 V, %v A, not in compliance", r, want)
			}
			// Down to −1 V: the ramp crosses 0 in steps too.
			n1 := len(tw.Instrument().Commands())
			if err := s.Apply(ctx, []float64{-1}); err != nil {
				t.Fatal(err)
			}
			checkSteps(t, 2.3, levels(t, since(t, s, tw, n1)), 0.5)

			n2 := len(tw.Instrument().Commands())
			if err := s.SafeState(ctx); err != nil {
				t.Fatal(err)
			}
			log = since(t, s, tw, n2)
			ls = levels(t, log)
			checkSteps(t, -1, ls, 0.5)
			if len(ls) == 0 || ls[len(ls)-1] != 0 || !slices.Equal(log[len(log)-2:], []string{":OUTP OFF", "*OPC?"}) {
				t.Errorf("safe state sent %v, want a ramp to 0 then :OUTP OFF", log)
			}
			if st := tw.State(); st.Output || st.Level != 0 || st.OffMode != "HIMP" {
				t.Errorf("twin after safe state: %+v", st)
			}
			if _, err := s.Read(ctx); !errors.Is(err, smu.ErrOutputOff) {
				t.Errorf("read with output off: %v", err)
			}
			if err := s.SafeState(ctx); err != nil { // idempotent
				t.Fatal(err)
			}
		})
	}
}

func equal(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Abs(a[i]-b[i]) > 1e-12 {
			return false
		}
	}
	return true
}

func TestSMUStepDelay(t *testing.T) {
	tw := newTwin(t, bench.SMUConfig{NoNoise: true})
	cfg := twinConfig()
	cfg.StepDelay = 20 * time.Millisecond
	s, _ := open(t, tw, scpitest.ServeTCP, cfg)
	start := time.Now()
	if err := s.Apply(context.Background(), []float64{1.5}); err != nil { // 3 steps: 2 waits
		t.Fatal(err)
	}
	if el := time.Since(start); el < 40*time.Millisecond {
		t.Errorf("3-step ramp took %v, want ≥ 2 step delays", el)
	}

	// A cancelled context stops the ramp between steps. The delay is an
	// hour, and the context is cancelled once the first step has reached
	// the twin: however loaded the machine, the ramp is then waiting.
	tw2 := newTwin(t, bench.SMUConfig{NoNoise: true})
	cfg.StepDelay = time.Hour
	s2, _ := open(t, tw2, scpitest.ServeTCP, cfg)
	n := len(tw2.Instrument().Commands())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		defer cancel()
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
			for _, c := range tw2.Instrument().Commands()[n:] {
				if strings.HasPrefix(c, ":SOUR:VOLT:LEV ") {
					return
				}
			}
		}
	}()
	done := make(chan error, 1)
	go func() { done <- s2.Apply(ctx, []float64{-1.5}) }()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled ramp: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the ramp did not stop when its context was cancelled")
	}
	if l := s2.Level(); l != -0.5 {
		t.Errorf("level %v after a cancelled ramp, want -0.5 (one step)", l)
	}
}

func TestSMUCompliance(t *testing.T) {
	tw := newTwin(t, bench.SMUConfig{NoNoise: true, NoDiode: true}) // 1 kΩ
	cfg := twinConfig()
	cfg.Compliance = 1e-3
	cfg.Step = 5
	s, _ := open(t, tw, scpitest.ServeTCP, cfg)
	ctx := context.Background()
	if err := s.Apply(ctx, []float64{5}); err != nil {
		t.Fatal(err)
	}
	r, err := s.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Compliance() || r.Current != 1e-3 || math.Abs(r.Voltage-1) > 1e-6 {
		t.Errorf("reading %+v: want compliance at 1 mA, 1 V across 1 kΩ", r)
	}
	if !tw.State().Tripped {
		t.Error("twin did not record the trip")
	}
	if err := s.Apply(ctx, []float64{0.5}); err != nil {
		t.Fatal(err)
	}
	if r, err = s.Read(ctx); err != nil || r.Compliance() {
		t.Errorf("at 0.5 V: %+v, %v", r, err)
	}
	// The software envelope refuses a level before any byte is sent.
	n := len(tw.Instrument().Commands())
	if err := s.Apply(ctx, []float64{25}); err == nil {
		t.Error("level beyond max accepted")
	}
	if len(tw.Instrument().Commands()) != n {
		t.Error("a refused level reached the instrument")
	}
}

// TestSMUMeasureReportsCompliance: asking 1.5 V into 1 kΩ with a 1 mA
// limit, the source sits in compliance at 1 V, 1 mA, and Measure says so
// in its compliance output, which a rig exposes as smu/compliance for
// interlocks. Below the limit the flag is 0.
func TestSMUMeasureReportsCompliance(t *testing.T) {
	tw := newTwin(t, bench.SMUConfig{NoNoise: true, NoDiode: true}) // 1 kΩ
	cfg := twinConfig()
	cfg.Compliance = 1e-3
	s, _ := open(t, tw, scpitest.ServeTCP, cfg)
	ctx := context.Background()
	want := []string{"voltage", "current", "compliance"}
	if !slices.Equal(smu.OutputNames(), want) || !slices.Equal(s.Outputs(), want) {
		t.Fatalf("OutputNames %v, Outputs %v; want %v", smu.OutputNames(), s.Outputs(), want)
	}
	for _, c := range []struct {
		level, v, i, compliance float64
	}{
		{1.5, 1, 1e-3, 1},     // limited: I_comp·R = 1 V, not the 1.5 V asked for
		{1.24, 1, 1e-3, 1},    // just above the limit
		{0.5, 0.5, 0.5e-3, 0}, // below the limit
		{-1.74, -1, -1e-3, 1}, // negative levels are limited alike
		{0.999, 0.999, 0.999e-3, 0},
	} {
		if err := s.Apply(ctx, []float64{c.level}); err != nil {
			t.Fatal(err)
		}
		y, err := s.Measure(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(y) != 3 || math.Abs(y[0]-c.v) > 1e-6 || math.Abs(y[1]-c.i) > 1e-9 || y[2] != c.compliance {
			t.Errorf("at %v V: measured %v; want [%v %v %v]", c.level, y, c.v, c.i, c.compliance)
		}
	}
	if err := s.SafeState(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestSMURigOutputs: in a rig, the SMU's outputs include smu/compliance,
// and a query into compliance reports it.
func TestSMURigOutputs(t *testing.T) {
	tw := newTwin(t, bench.SMUConfig{NoNoise: true, NoDiode: true})
	cfg := twinConfig()
	cfg.Compliance = 1e-3
	s, _ := open(t, tw, scpitest.ServeTCP, cfg)
	r, err := rig.New("bench", 0, rig.Component{Name: "smu", Part: s})
	if err != nil {
		t.Fatal(err)
	}
	if out := r.Spec().Out; !slices.Equal(out, []string{"smu/voltage", "smu/current", "smu/compliance"}) {
		t.Errorf("rig outputs %v", out)
	}
	y, err := r.Query(context.Background(), []float64{1.5})
	if err != nil || len(y) != 3 || y[2] != 1 {
		t.Errorf("rig query at 1.5 V: %v, %v; want compliance 1", y, err)
	}
	if err := r.SafeState(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestReadingCompliance: every status bit that means the reading is not
// what was asked for counts; the bits describing the setup do not.
func TestReadingCompliance(t *testing.T) {
	const setup = 1<<2 | 1<<11 | 1<<12 | 1<<14 // front terminals, V and I measured, V sourced
	if (smu.Reading{Status: setup}).Compliance() {
		t.Errorf("setup bits %#x read as compliance", setup)
	}
	for _, bit := range []uint32{smu.StatusOverflow, smu.StatusCompliance, smu.StatusOVP, smu.StatusRangeCompliance, smu.StatusContactCheck} {
		if !(smu.Reading{Status: setup | bit}).Compliance() {
			t.Errorf("status bit %#x not reported as compliance", bit)
		}
	}
}

func TestSMUIdentityRefused(t *testing.T) {
	tw := newTwin(t, bench.SMUConfig{})
	conn, _ := scpitest.ServeTCP(t, tw.Instrument())
	cfg := twinConfig()
	cfg.IDN = "" // the default matches real Keithleys only
	if _, err := smu.New(context.Background(), conn, cfg); !errors.Is(err, scpi.ErrIdentity) {
		t.Fatalf("twin accepted as hardware: %v", err)
	}
}

// TestSMUFaults: each injected fault ends in an error naming the
// instrument, its port and the command.
func TestSMUFaults(t *testing.T) {
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
				tw := newTwin(t, bench.SMUConfig{})
				cfg := twinConfig()
				cfg.Timeout = 300 * time.Millisecond
				s, port := open(t, tw, tr.Serve, cfg)
				ctx := context.Background()
				if err := s.Apply(ctx, []float64{0.5}); err != nil {
					t.Fatal(err)
				}
				c.inject(tw.Instrument())
				_, err := s.Read(ctx)
				if err == nil {
					t.Fatal("no error")
				}
				msg := err.Error()
				for _, want := range []string{"smu", port, ":READ?"} {
					if !strings.Contains(msg, want) {
						t.Errorf("error %q does not name %q", msg, want)
					}
				}
				if c.is != nil && !errors.Is(err, c.is) {
					t.Errorf("error %v is not %v", err, c.is)
				}
				var op *scpi.OpError
				if !errors.As(err, &op) {
					t.Errorf("error %T is not an *scpi.OpError", err)
				}
			})
		}
	}
}

func benchmarkRead(b *testing.B, serve func(testing.TB, *emulator.Instrument) (scpi.Conn, string)) {
	tw := newTwin(b, bench.SMUConfig{})
	s, _ := open(b, tw, serve, twinConfig())
	ctx := context.Background()
	if err := s.Apply(ctx, []float64{1}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := s.Read(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "queries/s")
}

// BenchmarkSMUReadTCP is the READ? round trip over loopback TCP.
func BenchmarkSMUReadTCP(b *testing.B) { benchmarkRead(b, scpitest.ServeTCP) }

// BenchmarkSMUReadPTY is the READ? round trip over a pseudo-terminal.
func BenchmarkSMUReadPTY(b *testing.B) { benchmarkRead(b, scpitest.ServePTY) }

func TestSMUSafeStateInterruptsRamp(t *testing.T) {
	tw := newTwin(t, bench.SMUConfig{NoNoise: true, NoDiode: true})
	cfg := twinConfig()
	cfg.StepDelay = 30 * time.Millisecond
	s, _ := open(t, tw, scpitest.ServeTCP, cfg)
	ctx := context.Background()
	done := make(chan error, 1)
	go func() { done <- s.Apply(ctx, []float64{10}) }() // 20 steps, ≈ 600 ms
	time.Sleep(100 * time.Millisecond)
	if err := s.SafeState(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, smu.ErrAborted) {
		t.Errorf("interrupted ramp returned %v", err)
	}
	if st := tw.State(); st.Output || st.Level != 0 {
		t.Errorf("twin after safe state: %+v", st)
	}
	checkSteps(t, 0, levels(t, since(t, s, tw, 0)), 0.5)
}

// TestSMURampsFromReadBack: a new session starts its ramp from the level
// the instrument reports, not from an assumed 0 V.
func TestSMURampsFromReadBack(t *testing.T) {
	tw := newTwin(t, bench.SMUConfig{NoNoise: true, NoDiode: true})
	s, _ := open(t, tw, scpitest.ServeTCP, twinConfig())
	ctx := context.Background()
	if err := s.Apply(ctx, []float64{1.3}); err != nil {
		t.Fatal(err)
	}
	// A query makes sure the twin has taken the last level (a Write
	// returns once sent), before another connection reads it back.
	if _, err := s.Errors(ctx); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s2, _ := open(t, tw, scpitest.ServeTCP, twinConfig())
	if s2.Level() != 1.3 || !s2.OutputOn() {
		t.Fatalf("reopened: level %v, on %v; want 1.3 V, on", s2.Level(), s2.OutputOn())
	}
	n := len(tw.Instrument().Commands())
	if err := s2.Apply(ctx, []float64{0}); err != nil {
		t.Fatal(err)
	}
	if ls := levels(t, since(t, s2, tw, n)); !equal(ls, []float64{0.8, 0.3, 0}) {
		t.Errorf("ramp from read-back 1.3 V: %v", ls)
	}
}

// TestSMUOpenOverPTY opens through the config path: serial transport on a
// pseudo-terminal served by bench.ServePTY, as `insitu twin serve --pty`.
func TestSMUOpenOverPTY(t *testing.T) {
	tw := newTwin(t, bench.SMUConfig{})
	ctx, cancel := context.WithCancel(context.Background())
	paths := make(chan string, 1)
	served := make(chan error, 1)
	go func() { served <- bench.ServePTY(ctx, tw.Instrument(), func(p string) { paths <- p }) }()
	t.Cleanup(func() { cancel(); <-served })
	cfg := twinConfig()
	cfg.Transport = transport.Config{Type: "serial", Serial: serial.Config{Port: <-paths, Baud: 19200, ReadTerminator: "CRLF", WriteTerminator: "CRLF"}}
	s, err := smu.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Apply(ctx, []float64{0.2}); err != nil {
		t.Fatal(err)
	}
	if y, err := s.Measure(ctx); err != nil || y[0] != 0.2 {
		t.Errorf("measure %v, %v", y, err)
	}
	if err := s.SafeState(ctx); err != nil {
		t.Fatal(err)
	}
	cfg.Transport.Type = "gpib"
	if _, err := smu.Open(ctx, cfg); err == nil || !strings.Contains(err.Error(), "gpib") {
		t.Errorf("unknown transport: %v", err)
	}
}

// serveTCPAt serves tw on a loopback port until the test ends and returns
// its address, for tests that open the SMU through its config.
func serveTCPAt(t *testing.T, tw *bench.SMU) string {
	t.Helper()
	ln, err := emulator.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = tw.Instrument().ServeTCP(ctx, ln) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	return ln.Addr().String()
}

// TestSMUTimeoutOutputOffBehindDriver: the output is switched off behind
// the driver (another connection, as the front panel or the interlock
// would), so READ? gets no reply and queues +803. Under a 5 s deadline (a
// watchdog's), the configured transport.lxi.timeout of 300 ms holds, and
// the error names the SMU, its address and the command, ends with the
// instrument's error queue, and matches ErrOutputOff; the queue is left
// empty.
func TestSMUTimeoutOutputOffBehindDriver(t *testing.T) {
	tw := newTwin(t, bench.SMUConfig{NoNoise: true, NoDiode: true})
	addr := serveTCPAt(t, tw)
	cfg := twinConfig()
	cfg.Timeout = 0 // the transport's applies
	cfg.Transport = transport.Config{Type: "lxi", LXI: lxi.Config{Address: addr, Timeout: 300 * time.Millisecond}}
	ctx := context.Background()
	s, err := smu.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Apply(ctx, []float64{1}); err != nil {
		t.Fatal(err)
	}
	// A query makes sure the twin has processed the writes (:OUTP ON
	// among them) before the other connection switches the output off.
	if _, err := s.Errors(ctx); err != nil {
		t.Fatal(err)
	}
	panel, err := lxi.Dial(ctx, lxi.Config{Address: addr})
	if err != nil {
		t.Fatal(err)
	}
	front := scpi.NewClient(panel)
	defer front.Close()
	if err := front.Write(ctx, ":OUTP OFF"); err != nil {
		t.Fatal(err)
	}
	if err := front.OPC(ctx); err != nil {
		t.Fatal(err)
	}

	watchdog, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	start := time.Now()
	_, err = s.Measure(watchdog)
	elapsed := time.Since(start)
	want := "smu " + addr + `: :READ?: no reply within 300ms; instrument error queue: +803,"Output disabled"`
	if err == nil || err.Error() != want {
		t.Fatalf("error %v\nwant     %s", err, want)
	}
	if !errors.Is(err, scpi.ErrTimeout) || !errors.Is(err, smu.ErrOutputOff) {
		t.Errorf("error %v: want ErrTimeout and ErrOutputOff", err)
	}
	var op *scpi.OpError
	if !errors.As(err, &op) || !op.Timeout() {
		t.Errorf("error %T is not an *scpi.OpError timeout", err)
	}
	if elapsed > 300*time.Millisecond+scpi.DefaultDrainTimeout+300*time.Millisecond {
		t.Errorf("Measure failed after %v: the configured 300 ms did not hold under the 5 s deadline", elapsed)
	}
	if errs, err := s.Errors(ctx); err != nil || len(errs) != 0 {
		t.Errorf("error queue after the timeout: %v, %v; want it drained", errs, err)
	}
	// The safe state still works: ramp to 0 V, output off.
	if err := s.SafeState(ctx); err != nil {
		t.Fatal(err)
	}
	if st := tw.State(); st.Output || st.Level != 0 {
		t.Errorf("twin after safe state: %+v", st)
	}
}

// TestSMUTimeoutPrecedence: the most specific configured timeout wins —
// the SMU's own key, else the transport's, else 5 s.
func TestSMUTimeoutPrecedence(t *testing.T) {
	tw := newTwin(t, bench.SMUConfig{})
	addr := serveTCPAt(t, tw)
	for _, c := range []struct {
		own, transport, want time.Duration
	}{
		{150 * time.Millisecond, 2 * time.Second, 150 * time.Millisecond},
		{0, 2 * time.Second, 2 * time.Second},
		{0, 0, 5 * time.Second},
		{3 * time.Second, 0, 3 * time.Second},
	} {
		cfg := twinConfig()
		cfg.Timeout = c.own
		cfg.Transport = transport.Config{Type: "lxi", LXI: lxi.Config{Address: addr, Timeout: c.transport}}
		s, err := smu.Open(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.Timeout(); got != c.want {
			t.Errorf("smu timeout %v, transport %v: in effect %v, want %v", c.own, c.transport, got, c.want)
		}
		s.Close()
	}
}

// levelAtOn returns the source level programmed when the log's first
// :OUTP ON came: the last :SOUR:VOLT:LEV before it, or from if none. ok
// is false when the log has no :OUTP ON.
func levelAtOn(t *testing.T, log []string, from float64) (level float64, ok bool) {
	t.Helper()
	level = from
	for i, c := range log {
		if c == ":OUTP ON" {
			return level, true
		}
		if ls := levels(t, log[i:i+1]); len(ls) == 1 {
			level = ls[0]
		}
	}
	return level, false
}

// TestSMUSwitchesOnAtZero: the output goes on only at 0 V, whatever level
// the instrument was left programmed at with its output off (here 2 V, set
// from the front panel before the session): the driver ramps the level to
// 0 V first, switches on, then ramps up, so the load never sees a step
// larger than step.
func TestSMUSwitchesOnAtZero(t *testing.T) {
	tw := newTwin(t, bench.SMUConfig{NoNoise: true, NoDiode: true})
	addr := serveTCPAt(t, tw)
	ctx := context.Background()
	panel, err := lxi.Dial(ctx, lxi.Config{Address: addr})
	if err != nil {
		t.Fatal(err)
	}
	front := scpi.NewClient(panel)
	defer front.Close()
	if err := front.Write(ctx, ":SOUR:VOLT:LEV 2"); err != nil {
		t.Fatal(err)
	}
	if err := front.OPC(ctx); err != nil {
		t.Fatal(err)
	}
	cfg := twinConfig()
	cfg.Transport = transport.Config{Type: "lxi", LXI: lxi.Config{Address: addr}}
	s, err := smu.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.OutputOn() || s.Level() != 2 {
		t.Fatalf("opened at %v V, output on %v; want 2 V, off", s.Level(), s.OutputOn())
	}
	n := len(tw.Instrument().Commands())
	if err := s.Apply(ctx, []float64{0.7}); err != nil {
		t.Fatal(err)
	}
	log := since(t, s, tw, n)
	at, ok := levelAtOn(t, log, 2)
	if !ok || at != 0 {
		t.Errorf("output switched on at %v V (on: %v), want 0 V: %v", at, ok, log)
	}
	checkSteps(t, 2, levels(t, log), 0.5)
	if st := tw.State(); !st.Output || st.Level != 0.7 {
		t.Errorf("twin after Apply(0.7): %+v", st)
	}
}

// TestSMUSafeStateSwitchesOffWhenTheRampFails: a ramp to 0 V that cannot
// finish (the safe state's time runs out while the ramp waits its step
// delay) still ends with the output switched off, as SafeState promises,
// and the error says why the ramp stopped.
func TestSMUSafeStateSwitchesOffWhenTheRampFails(t *testing.T) {
	tw := newTwin(t, bench.SMUConfig{NoNoise: true, NoDiode: true})
	cfg := twinConfig()
	cfg.StepDelay = time.Hour // the ramp down waits an hour before its first step
	s, _ := open(t, tw, scpitest.ServeTCP, cfg)
	ctx := context.Background()
	if err := s.Apply(ctx, []float64{0.5}); err != nil { // one step: no wait
		t.Fatal(err)
	}
	n := len(tw.Instrument().Commands())
	sctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	err := s.SafeState(sctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("safe state with a ramp cut short: %v, want the deadline", err)
	}
	log := since(t, s, tw, n)
	if st := tw.State(); st.Output || s.OutputOn() {
		t.Errorf("output left on after a failed ramp to 0 V (twin %+v, sent %v)", st, log)
	}
	if !slices.Contains(log, ":OUTP OFF") {
		t.Errorf("safe state sent %v, want :OUTP OFF", log)
	}
}
