package opamp

import (
	"bytes"
	"context"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func ngspiceTwin(tb testing.TB, edit func(*Config)) *Twin {
	tb.Helper()
	if _, err := exec.LookPath("ngspice"); err != nil {
		tb.Skip("ngspice not installed (apt-get install -y ngspice)")
	}
	return newTwin(tb, func(c *Config) {
		c.Backend = Ngspice
		if edit != nil {
			edit(c)
		}
	})
}

// fakeNgspice writes an executable shell script standing in for ngspice
// and returns its path.
func fakeNgspice(t *testing.T, script string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ngspice")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// Agreement tolerances between the backends, on sizings where the analytic
// operating point has every device saturated (SaturationMargin ≥ 0.05 V):
// the analytic model is the level-1 device equations at that operating
// point and the exact transfer function of the same small-signal circuit,
// so what is left is M1's input offset (ignored in the operating point)
// and ngspice's log-frequency interpolation. Observed on 1000 random
// sizings (982 with margin ≥ 0.05 V): gain ≤ 0.41 %, UGBW ≤ 0.21 %,
// PM ≤ 0.17°. Below the margin devices leave saturation and ngspice's
// gain can collapse (5 of the 18: down to no crossing at all), which the
// square-law model cannot see.
const (
	tolGain = 0.01 // relative
	tolUGBW = 0.01 // relative
	tolPM   = 0.5  // degrees
)

func TestNgspiceAgreesWithAnalytic(t *testing.T) {
	ctx := context.Background()
	sim := ngspiceTwin(t, nil)
	ana := newTwin(t, nil)
	rng := rand.New(rand.NewPCG(2026, 4))
	xs := [][]float64{nominal}
	skipped := 0
	for len(xs) < 9 {
		x := randomSizing(rng)
		if ana.Process().SaturationMargin(SizingOf(x)) < 0.05 {
			skipped++
			continue
		}
		xs = append(xs, x)
	}
	t.Logf("%d random sizings skipped for a saturation margin < 50 mV", skipped)
	ys, err := sim.QueryBatch(ctx, xs)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%-8s %10s %10s %7s | %6s %6s %5s | %9s %9s %7s", "sizing", "G ana", "G spice", "ΔG", "PM ana", "spice", "ΔPM", "UGBW ana", "spice", "ΔUGBW")
	for i, x := range xs {
		ya, _ := ana.Query(ctx, x)
		yn := ys[i]
		dg, du, dp := yn[0]/ya[0]-1, yn[2]/ya[2]-1, yn[1]-ya[1]
		t.Logf("%-8d %10.1f %10.1f %+6.2f%% | %6.1f %6.1f %+5.1f | %9.3g %9.3g %+6.2f%%", i, ya[0], yn[0], 100*dg, ya[1], yn[1], dp, ya[2], yn[2], 100*du)
		if math.Abs(dg) > tolGain || math.Abs(du) > tolUGBW || math.Abs(dp) > tolPM {
			t.Errorf("sizing %d %v: analytic %v, ngspice %v: outside tolerance (gain %g, UGBW %g, PM %g°)", i, x, ya, yn, tolGain, tolUGBW, tolPM)
		}
	}
}

func TestNgspiceBatchEqualsSequential(t *testing.T) {
	ctx := context.Background()
	a, b := ngspiceTwin(t, nil), ngspiceTwin(t, nil)
	rng := rand.New(rand.NewPCG(9, 9))
	xs := make([][]float64, 6)
	for i := range xs {
		xs[i] = randomSizing(rng)
	}
	ys, err := a.QueryBatch(ctx, xs)
	if err != nil {
		t.Fatal(err)
	}
	for i, x := range xs {
		y, err := b.Query(ctx, x)
		if err != nil {
			t.Fatal(err)
		}
		for j := range y {
			if y[j] != ys[i][j] {
				t.Errorf("query %d %s: batch %v, sequential %v", i, OutputNames[j], ys[i][j], y[j])
			}
		}
	}
}

func TestNgspiceMissingBinary(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Backend, cfg.NgspicePath = Ngspice, "/nonexistent/dir/ngspice-missing"
	_, err := New(cfg)
	if err == nil {
		t.Fatal("New accepted a missing ngspice binary")
	}
	for _, want := range []string{"ngspice-missing", "apt-get install -y ngspice", "opamp:"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

// A hung simulator is killed at the timeout, with its children: the query
// returns quickly with an error and no process is left.
func TestNgspiceTimeoutKills(t *testing.T) {
	const marker = "31.41592"
	bin := fakeNgspice(t, "sleep "+marker+"\n")
	tw := newTwin(t, func(c *Config) { c.Backend, c.NgspicePath, c.Timeout = Ngspice, bin, 300*time.Millisecond })
	start := time.Now()
	_, err := tw.Query(context.Background(), nominal)
	if err == nil || !strings.Contains(err.Error(), "timeout") || !strings.Contains(err.Error(), bin) {
		t.Errorf("error %v, want a timeout naming the command", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("query took %v with a 300 ms timeout", d)
	}
	// The sleep child must be gone (reaped by init after the group kill).
	deadline := time.Now().Add(3 * time.Second)
	for {
		left := processesWith(marker)
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes left behind: %v", left)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// Cancellation by the caller also stops it.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	tw = newTwin(t, func(c *Config) { c.Backend, c.NgspicePath = Ngspice, bin })
	if _, err := tw.QueryBatch(ctx, [][]float64{nominal, nominal, nominal}); err == nil {
		t.Error("cancelled batch returned no error")
	}
}

func processesWith(s string) []string {
	var out []string
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "cmdline"))
		if err == nil && bytes.Contains(b, []byte(s)) {
			// A zombie has an empty cmdline; a live one matches.
			out = append(out, d+": "+strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
	return out
}

func TestNgspiceFailures(t *testing.T) {
	for _, c := range []struct {
		name, script string
		want         []string
	}{
		{"exit 1", "echo 'Error: no such device'; exit 1\n", []string{"failed", "exit status 1", "no such device", "-b opamp.cir"}},
		{"no data", "echo 'doAnalyses: iteration limit reached'\n", []string{"wrote no DC-gain data", "iteration limit"}},
		{"garbage", "echo 'frequency v(out) v(out)' > dc.txt; echo 'x y z' >> dc.txt; cp dc.txt ac.txt\n", []string{"DC data", "not a finite number"}},
		{"nan", "printf '1e-3 nan 0\\n' > dc.txt; printf '1 1 0\\n' > ac.txt\n", []string{"DC data"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			bin := fakeNgspice(t, c.script)
			tw := newTwin(t, func(cf *Config) { cf.Backend, cf.NgspicePath = Ngspice, bin })
			_, err := tw.Query(context.Background(), nominal)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// A simulated response that never reaches unity gain gives the penalty.
func TestNgspicePenalty(t *testing.T) {
	bin := fakeNgspice(t, `printf 'frequency v(out) v(out)\n1e-3 0.5 0\n' > dc.txt
printf 'frequency v(out) v(out)\n1 0.5 -0.01\n10 0.4 -0.1\n100 0.1 -0.2\n' > ac.txt
`)
	tw := newTwin(t, func(c *Config) { c.Backend, c.NgspicePath = Ngspice, bin })
	y, err := tw.Query(context.Background(), nominal)
	if err != nil {
		t.Fatal(err)
	}
	if y[0] != 0.5 || y[1] != PenaltyPM || y[2] != 0 {
		t.Errorf("outputs %v, want [0.5 %v 0]", y, PenaltyPM)
	}
	if f := (FoM{}).Value(y); f > -3 {
		t.Errorf("penalty FoM %v, want about −3.2", f)
	}
}

func TestExtractInterpolates(t *testing.T) {
	// Single pole at 1 kHz, A0 = 1000: UGBW ≈ 1 MHz, PM ≈ 90°.
	h := func(f float64) complex128 { return 1000 / complex(1, f/1e3) }
	var dc, ac bytes.Buffer
	dc.WriteString("frequency v(out) v(out)\n")
	z := h(1e-3)
	dc.WriteString(num(1e-3) + " " + num(real(z)) + " " + num(imag(z)) + "\n")
	ac.WriteString("frequency v(out) v(out)\n")
	for k := 0; k <= 1000; k++ {
		f := math.Pow(10, float64(k)/100)
		z := h(f)
		ac.WriteString(num(f) + " " + num(real(z)) + " " + num(imag(z)) + "\n")
	}
	g, pm, u, err := Extract(dc.Bytes(), ac.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	wantU := 1e3 * math.Sqrt(1000*1000-1)
	near(t, "G", g, 1000, 1e-6)
	near(t, "UGBW", u, wantU, 1e-4)
	near(t, "PM", pm, 180-math.Atan(wantU/1e3)*180/math.Pi, 1e-4)
}

func FuzzParseWrdata(f *testing.F) {
	f.Add([]byte("frequency v(out) v(out)\n1e-3 1 -6e-6\n"))
	f.Add([]byte(" 1.00000000e+00  9.99960523e-01 -6.28293727e-03 \n 3.16e+00 1 0\n"))
	f.Add([]byte("1 2\n"))
	f.Add([]byte("1 nan 0\n"))
	f.Add([]byte("2 1 0\n1 1 0\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseWrdata(data)
		if err != nil {
			return
		}
		if len(r.Freq) == 0 || len(r.Freq) != len(r.H) {
			t.Fatalf("accepted %d frequencies and %d values", len(r.Freq), len(r.H))
		}
		for i, fr := range r.Freq {
			if !(fr > 0) || math.IsInf(fr, 0) || (i > 0 && fr <= r.Freq[i-1]) {
				t.Fatalf("frequency %d = %v", i, fr)
			}
			if z := r.H[i]; math.IsNaN(real(z)) || math.IsNaN(imag(z)) || math.IsInf(real(z), 0) || math.IsInf(imag(z), 0) {
				t.Fatalf("value %d = %v", i, z)
			}
		}
		// Whatever parses, Extract gives finite numbers or an error.
		g, pm, u, err := Extract(data, data)
		if err == nil && (math.IsNaN(g+pm+u) || math.IsInf(g+pm+u, 0) || u < 0) {
			t.Fatalf("Extract = %v, %v, %v", g, pm, u)
		}
	})
}
