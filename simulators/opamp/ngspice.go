package opamp

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"math"
	"math/cmplx"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"text/template"
	"time"
)

//go:embed netlist.tmpl
var netlistText string

var netlistTmpl = template.Must(template.New("opamp.cir").Option("missingkey=error").Parse(netlistText))

// netlistData holds the template's values, already formatted for SPICE.
type netlistData struct {
	VDD, Iref, VCM, CL                 string
	Wb, Lb, W7, Wd, Ld, Wl, Ll, Wg, Lg string
	Cc, C1, C2x                        string
	KPn, KPp, VTn, VTp                 string
	LamB, LamD, LamL, LamG             string
}

func num(v float64) string { return strconv.FormatFloat(v, 'g', 12, 64) }

// Netlist renders the ngspice deck for sizing s on process p.
func (p Process) Netlist(s Sizing) ([]byte, error) {
	m := p.Model(s)
	um := func(v float64) string { return num(v * 1e-6) }
	d := netlistData{
		VDD: num(VDD), Iref: num(Iref), VCM: num(VCM), CL: num(CL),
		Wb: um(s.Wb), Lb: um(s.Lb), W7: um(float64(s.R) * s.Wb),
		Wd: um(s.Wd), Ld: um(s.Ld), Wl: um(s.Wl), Ll: um(s.Ll), Wg: um(s.Wg), Lg: um(s.Lg),
		Cc: num(s.Cc), C1: num(m.C1), C2x: num(m.C2 - CL),
		KPn: num(p.KPn), KPp: num(p.KPp), VTn: num(p.VTn), VTp: num(p.VTp),
		LamB: num(p.LambdaN / s.Lb), LamD: num(p.LambdaN / s.Ld),
		LamL: num(p.LambdaP / s.Ll), LamG: num(p.LambdaP / s.Lg),
	}
	var b bytes.Buffer
	if err := netlistTmpl.Execute(&b, d); err != nil {
		return nil, fmt.Errorf("opamp: netlist template: %w", err)
	}
	return b.Bytes(), nil
}

// ngspiceRunner runs one simulation per call, each in its own directory.
type ngspiceRunner struct {
	bin     string // resolved path
	timeout time.Duration
}

// maxOutput bounds how much of ngspice's console output is kept for error
// messages: a runaway process must not fill memory.
const maxOutput = 64 << 10

// run simulates sizing s and returns G, PM and UGBW.
func (r *ngspiceRunner) run(ctx context.Context, p Process, s Sizing) ([3]float64, error) {
	var out [3]float64
	deck, err := p.Netlist(s)
	if err != nil {
		return out, err
	}
	dir, err := os.MkdirTemp("", "insitu-opamp-*")
	if err != nil {
		return out, fmt.Errorf("opamp: ngspice work directory: %w", err)
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "opamp.cir"), deck, 0o644); err != nil {
		return out, fmt.Errorf("opamp: writing netlist: %w", err)
	}

	cmdline := r.bin + " -b opamp.cir"
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, r.bin, "-b", "opamp.cir")
	cmd.Dir = dir
	console := &limitedBuffer{max: maxOutput}
	cmd.Stdout, cmd.Stderr = console, console
	killGroup(cmd) // a wrapper script's children die with it
	// If a grandchild kept the pipes open, Wait would block: stop waiting.
	cmd.WaitDelay = time.Second
	err = cmd.Run()
	if err := parent.Err(); err != nil { // the caller gave up: not ngspice's fault
		return out, fmt.Errorf("opamp: %s: %w", cmdline, err)
	}
	if err := ctx.Err(); err != nil {
		return out, fmt.Errorf("opamp: %s in %s: killed after the %v timeout: %w", cmdline, dir, r.timeout, err)
	}
	if err != nil {
		return out, fmt.Errorf("opamp: %s failed: %w; output:\n%s", cmdline, err, console.tail())
	}
	dc, err := os.ReadFile(filepath.Join(dir, "dc.txt"))
	if err != nil {
		return out, fmt.Errorf("opamp: %s wrote no DC-gain data (simulation failed?): %w; output:\n%s", cmdline, err, console.tail())
	}
	ac, err := os.ReadFile(filepath.Join(dir, "ac.txt"))
	if err != nil {
		return out, fmt.Errorf("opamp: %s wrote no AC data (simulation failed?): %w; output:\n%s", cmdline, err, console.tail())
	}
	g, pm, ugbw, err := Extract(dc, ac)
	if err != nil {
		return out, fmt.Errorf("opamp: %s: %w; output:\n%s", cmdline, err, console.tail())
	}
	return [3]float64{g, pm, ugbw}, nil
}

// Response is a frequency response read from ngspice's wrdata output.
type Response struct {
	Freq []float64    // Hz, strictly increasing
	H    []complex128 // v(out) for a 1 V AC input
}

// ParseWrdata parses the text `wrdata` writes with wr_singlescale and
// wr_vecnames set: an optional header line, then one row per frequency of
// "f re im". Every value must be finite and the frequencies positive and
// strictly increasing; anything else is an error, never a NaN.
func ParseWrdata(data []byte) (Response, error) {
	var r Response
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		if line == 1 && fields[0] == "frequency" {
			continue // the vector names
		}
		if len(fields) != 3 {
			return Response{}, fmt.Errorf("wrdata line %d: %d fields, want 3 (frequency, real, imaginary)", line, len(fields))
		}
		var v [3]float64
		for i, f := range fields {
			x, err := strconv.ParseFloat(f, 64)
			if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
				return Response{}, fmt.Errorf("wrdata line %d: field %d %q is not a finite number", line, i+1, f)
			}
			v[i] = x
		}
		if v[0] <= 0 || (len(r.Freq) > 0 && v[0] <= r.Freq[len(r.Freq)-1]) {
			return Response{}, fmt.Errorf("wrdata line %d: frequency %v is not positive and increasing", line, v[0])
		}
		r.Freq = append(r.Freq, v[0])
		r.H = append(r.H, complex(v[1], v[2]))
	}
	if err := sc.Err(); err != nil {
		return Response{}, fmt.Errorf("wrdata: %w", err)
	}
	if len(r.Freq) == 0 {
		return Response{}, errors.New("wrdata: no data rows")
	}
	return r, nil
}

// Extract computes G, PM and UGBW from the DC point (a one-frequency
// sweep at 1 mHz) and the AC sweep:
//
//   - G = |H| at 1 mHz, where the loop is open and every pole is far above.
//   - UGBW: the last frequency where |H| falls through 1, interpolated
//     linearly in log|H| against log f between the two bracketing points.
//   - PM = 180° + (∠H(UGBW) − ∠H(DC)), the phase unwrapped point to point
//     from the DC point and interpolated like |H|. Measuring the phase from
//     its DC value makes PM independent of the amplifier's polarity.
//
// A response with |H| < 1 everywhere, or still ≥ 1 at the top of the
// sweep, has no measurable crossing: it gets the penalty (G, PenaltyPM, 0).
func Extract(dcData, acData []byte) (g, pm, ugbw float64, err error) {
	dc, err := ParseWrdata(dcData)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("DC data: %w", err)
	}
	ac, err := ParseWrdata(acData)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("AC data: %w", err)
	}
	h0 := dc.H[0]
	g = cmplx.Abs(h0)
	if !(g > 0) || math.IsInf(g, 0) {
		return 0, 0, 0, fmt.Errorf("DC gain %v is not positive and finite", g)
	}
	n := len(ac.Freq)
	last := -1 // last index with |H| ≥ 1 followed by one with |H| < 1
	for i := 0; i+1 < n; i++ {
		if cmplx.Abs(ac.H[i]) >= 1 && cmplx.Abs(ac.H[i+1]) < 1 {
			last = i
		}
	}
	if last < 0 || cmplx.Abs(ac.H[n-1]) >= 1 {
		return g, PenaltyPM, 0, nil
	}
	// Unwrap up to the bracket.
	prev := cmplx.Phase(h0)
	phase := make([]float64, last+2)
	for i := range phase {
		p := cmplx.Phase(ac.H[i])
		p += 2 * math.Pi * math.Round((prev-p)/(2*math.Pi))
		phase[i], prev = p, p
	}
	m0, m1 := math.Log(cmplx.Abs(ac.H[last])), math.Log(cmplx.Abs(ac.H[last+1]))
	l0, l1 := math.Log(ac.Freq[last]), math.Log(ac.Freq[last+1])
	t := 0.0
	if m0 != m1 {
		t = m0 / (m0 - m1) // log|H| = 0; m0 ≥ 0 > m1, so t ∈ [0, 1)
	}
	ugbw = math.Exp(l0 + t*(l1-l0))
	ph := phase[last] + t*(phase[last+1]-phase[last])
	pm = 180 + (ph-cmplx.Phase(h0))*180/math.Pi
	return g, pm, ugbw, nil
}

// limitedBuffer keeps the last max bytes written to it.
type limitedBuffer struct {
	buf []byte
	max int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.buf = append(b.buf, p...)
	if len(b.buf) > b.max {
		b.buf = append(b.buf[:0], b.buf[len(b.buf)-b.max:]...)
	}
	return len(p), nil
}

// tail returns the last lines of the console output, for error messages.
func (b *limitedBuffer) tail() string {
	s := strings.TrimSpace(string(b.buf))
	lines := strings.Split(s, "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return strings.Join(lines, "\n")
}
