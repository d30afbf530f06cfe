package bench

import (
	"context"
	"math"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/insitu-lab/insitu"
	"github.com/insitu-lab/insitu/instruments/rig"
	"github.com/insitu-lab/insitu/simulators/optics"
)

// twinRig builds the twin of a rig section written in YAML.
func twinRig(t *testing.T, src string) *rig.Rig {
	t.Helper()
	var v map[string]any
	if err := yaml.Unmarshal([]byte(src), &v); err != nil {
		t.Fatal(err)
	}
	r, err := rig.NewTwin(context.Background(), insitu.Params{Kind: "rig", Values: v, File: "test.yaml", Prefix: "blackbox"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// The power-meter twin reads what the OWMS twin puts on its detector under
// the pattern the SLM part shows, through the SLM's own LUT (here 2π at
// gray 218, scaled from 633 to 700 nm), and the meter's time is its
// averaged samples.
func TestPowerMeterTwinReadsTheSLMPart(t *testing.T) {
	r := twinRig(t, `
name: pm-test
parts:
  - name: slm
    type: slm
    display: {type: fbdev, path: /dev/fb-not-here}
    n: 60
    two_pi_gray: 218
    wavelength: 700e-9
    lut_wavelength: 633e-9
  - name: pm
    type: powermeter
    transport: {type: usbtmc, usbtmc: {path: /dev/usbtmc-not-here}}
    wavelength: 700
    average: 100
`)
	tw, err := optics.New(optics.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	mask := DetectorMask(optics.DefaultConfig(), TwinPowerMeter.Detector)
	n := 60
	// A blazed grating steering the beam towards the detector at +140 µm.
	tilt := make([]float64, n*n)
	for i := range tilt {
		c := i % n
		tilt[i] = math.Mod(2*math.Pi*float64(c)*10e-6*140e-6/(700e-9*2e-2)+4*math.Pi, 2*math.Pi)
	}
	flat := make([]float64, n*n)
	for _, x := range [][]float64{flat, tilt} {
		y, err := r.Query(context.Background(), x)
		if err != nil {
			t.Fatal(err)
		}
		want := DetectedPower(tw, mask, TwinPowerMeter.InputPower, x)
		if math.Abs(y[0]-want) > 0.02*want {
			t.Errorf("reading %g W, the detector gets %g W", y[0], want)
		}
	}
	rep, _ := r.TwinReport()
	if pm := rep.Parts[1]; pm.Acquire != 100*PM100Sample || !strings.Contains(strings.Join(pm.Notes, "\n"), "usbtmc /dev/usbtmc-not-here") {
		t.Errorf("power meter twin: %+v", pm)
	}
}

// The DAQ twin puts its chips at the configured addresses; the bus holds
// one MCP4728 and one ADS1115, and other chips are refused by name.
func TestDAQTwinAddresses(t *testing.T) {
	r := twinRig(t, `
parts:
  - name: d
    type: daq
    bus: "7"
    vdd: 5
    average: 3
    outputs:
      - {name: v0, chip: mcp4728, addr: 0x61, channel: 0, min: 0, max: 4.5}
      - {name: v1, chip: mcp4728, addr: 0x61, channel: 1, min: 0, max: 4.5}
    inputs:
      - {name: y0, chip: ads1115, addr: 0x49, input: ain0, full_scale: 6.144, rate: 250}
`)
	y, err := r.Query(context.Background(), []float64{1.2, 3.4})
	if err != nil {
		t.Fatal(err)
	}
	want := PNNResponse([4]float64{1.2, 3.4, 0, 0})[0]
	if math.Abs(y[0]-want) > 5e-3 {
		t.Errorf("y0 = %v V, want %v", y[0], want)
	}
	rep, _ := r.TwinReport()
	if d := rep.Parts[0]; d.Acquire != 12*time.Millisecond || !strings.Contains(d.Device, "MCP4728 at 0x61, ADS1115 at 0x49") {
		t.Errorf("daq twin: acquire %v, %s", d.Acquire, d.Device)
	}

	_, err = rig.NewTwin(context.Background(), insitu.Params{Kind: "rig", Values: map[string]any{"parts": []any{map[string]any{
		"name": "d", "type": "daq", "bus": "7", "vdd": 5,
		"outputs": []any{map[string]any{"name": "v", "chip": "mcp4725", "addr": 0x62, "min": 0, "max": 4}},
		"inputs":  []any{map[string]any{"name": "y", "chip": "ads1115", "input": "ain0", "full_scale": 6.144}},
	}}}})
	if err == nil || !strings.Contains(err.Error(), "chip mcp4725") {
		t.Errorf("a twin of an MCP4725: %v", err)
	}
}

// A configured identity pattern is kept when it accepts the twin, and
// replaced by the twin's exact identity, with a note, when it refuses it.
func TestTwinIdentity(t *testing.T) {
	if p, notes, err := twinIdentity("(?i)twin", SMUIDN); err != nil || p != "(?i)twin" || notes != nil {
		t.Errorf("a pattern accepting the twin: %q, %q, %v", p, notes, err)
	}
	p, notes, err := twinIdentity(`(?i)^KEITHLEY`, SMUIDN)
	if err != nil || len(notes) != 1 || !strings.Contains(notes[0], "refuses the twin") {
		t.Fatalf("%q, %q, %v", p, notes, err)
	}
	if !regexp.MustCompile(p).MatchString(SMUIDN) {
		t.Errorf("the substituted pattern %q refuses the twin", p)
	}
	if regexp.MustCompile(p).MatchString("insitu,MODEL 2400 twin,TWIN-SMU-0001,0x1") {
		t.Errorf("the substituted pattern %q is not exact", p)
	}
}
