package rig_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
	"periph.io/x/conn/v3/i2c/i2creg"

	"github.com/insitu-lab/insitu"
	"github.com/insitu-lab/insitu/drivers/i2c/i2cemu"
	"github.com/insitu-lab/insitu/drivers/scpi/emulator"
	"github.com/insitu-lab/insitu/instruments/camera"
	"github.com/insitu-lab/insitu/instruments/rig"
	"github.com/insitu-lab/insitu/simulators/bench"
	"github.com/insitu-lab/insitu/simulators/optics"
)

// zeros is a frame source for memory cameras standing in for a V4L2 one.
const zeros = "describe-test-zeros"

func init() {
	rig.RegisterFrameSource(zeros, func(_ map[string]rig.Part, _, _ int) (camera.FrameFunc, error) {
		return func(_ context.Context, dst []float64) error { clear(dst); return nil }, nil
	})
}

// params reads a blackbox section written in YAML.
func params(t testing.TB, src string) insitu.Params {
	t.Helper()
	var v map[string]any
	if err := yaml.Unmarshal([]byte(src), &v); err != nil {
		t.Fatal(err)
	}
	kind, _ := v["kind"].(string)
	delete(v, "kind")
	return insitu.Params{Kind: kind, Values: v, File: "test.yaml", Prefix: "blackbox"}
}

// built is the Spec of the black box New builds from p, closed again.
func built(t testing.TB, p insitu.Params) insitu.Spec {
	t.Helper()
	b, err := insitu.New(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	defer b.(*rig.Rig).Close()
	return b.Spec()
}

// serve serves an emulated instrument on loopback TCP until the test ends.
func serve(t testing.TB, in *emulator.Instrument) string {
	t.Helper()
	ln, err := emulator.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = in.ServeTCP(ctx, ln) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	return ln.Addr().String()
}

func smuTwin(t testing.TB) string {
	tw, err := bench.NewSMU(bench.SMUConfig{NoNoise: true})
	if err != nil {
		t.Fatal(err)
	}
	return serve(t, tw.Instrument())
}

func powerMeterTwin(t testing.TB) string {
	oc := optics.DefaultConfig()
	oc.N = 16
	pm, err := bench.NewPowerMeter(bench.PowerMeterConfig{Optics: oc})
	if err != nil {
		t.Fatal(err)
	}
	return serve(t, pm.Instrument())
}

var busN atomic.Int64

// emulatedBus registers an emulated MCP4728 + ADS1115 bus under a fresh name.
func emulatedBus(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("EMU-describe-%d", busN.Add(1))
	if err := i2cemu.New(nil).Register(name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { i2creg.Unregister(name) })
	return name
}

// framebufferFile makes a plain file standing in for a w×h 32-bit framebuffer.
func framebufferFile(t testing.TB, w, h int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "fb")
	if err := os.WriteFile(path, make([]byte, w*h*4), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

const memSLM = `
  - name: slm
    type: slm
    display: {type: memory, width: 20, height: 18}
    n: 4
`

// Every part type is described as it is built: names, units, bounds after
// the part's bounds, periodic flags and outputs.
func TestDescribeEqualsTheBuiltRig(t *testing.T) {
	smuAddr, pmAddr := smuTwin(t), powerMeterTwin(t)
	cases := map[string]string{
		"slm memory, narrowed": `
kind: rig
name: narrowed
settle: 1ms
parts:
  - name: slm
    type: slm
    display: {type: memory, width: 20, height: 18}
    n: 3
    origin: [2, 1]
    two_pi_gray: 218
    wavelength: 700e-9
    lut_wavelength: 633e-9
    bounds: {lower: 0.5}
  - {name: cam, type: camera, backend: {type: memory, source: ` + zeros + `, width: 8, height: 6}}
`,
		"slm framebuffer file, per-coordinate bounds": `
kind: rig
parts:
  - name: slm
    type: slm
    display: {type: fbdev, path: ` + framebufferFile(t, 6, 5) + `, width: 6, height: 5, bits: 32}
    n: 2
    bounds: {upper: [6.28, 1, 6.28, 2]}
  - {name: cam, type: camera, backend: {type: memory, source: ` + zeros + `, width: 4, height: 4}, measure: image}
`,
		"daq": daqSection(emulatedBus(t)),
		"camera regions in a roi": `
kind: rig
parts:` + memSLM + `
  - name: cam
    type: camera
    backend: {type: memory, source: ` + zeros + `, width: 40, height: 30, reference_exposure: 2ms}
    exposure: 1ms
    roi: [5, 4, 20, 10]
    average: 2
    measure: regions
    regions:
      - {name: a, roi: [0, 0, 10, 10]}
      - {name: b, roi: [10, 0, 10, 10]}
`,
		"camera image of a roi": `
kind: rig
parts:` + memSLM + `
  - {name: cam, type: camera, backend: {type: memory, source: ` + zeros + `, width: 40, height: 30}, roi: [1, 2, 3, 2], measure: image}
`,
		"camera image of the full frame": `
kind: rig
parts:` + memSLM + `
  - {name: cam, type: camera, backend: {type: memory, source: ` + zeros + `, width: 5, height: 3}, measure: image}
`,
		"smu and powermeter": `
kind: rig
name: diode
parts:
  - name: bias
    type: smu
    idn: "(?i)twin"
    transport: {type: lxi, lxi: {address: "` + smuAddr + `"}}
    range: 21
    compliance: 1e-3
    step: 0.5
    min: -1
    max: 5
    bounds: {lower: 0, upper: 3.3}
  - name: pm
    type: powermeter
    idn: "(?i)twin"
    transport: {type: lxi, lxi: {address: "` + pmAddr + `"}}
    wavelength: 700
`,
		"smu with the default envelope": `
kind: rig
parts:
  - {name: smu, type: smu, idn: "(?i)twin", transport: {type: lxi, lxi: {address: "` + smuAddr + `"}}, range: 2, compliance: 1e-4, step: 0.1}
`,
	}
	for name, src := range cases {
		t.Run(name, func(t *testing.T) {
			p := params(t, src)
			got, err := insitu.Describe(context.Background(), p)
			if errors.Is(err, camera.ErrNoAravis) {
				t.Skip("a GenICam camera: runs in the aravis build (make test-aravis)")
			}
			if err != nil {
				t.Fatal(err)
			}
			if want := built(t, p); !reflect.DeepEqual(got, want) {
				t.Errorf("described\n%+v\nbuilt\n%+v", got, want)
			}
		})
	}
}

func daqSection(bus string) string {
	return `
kind: rig
name: analog
parts:
  - name: pnn
    type: daq
    bus: ` + bus + `
    vdd: 5
    outputs:
      - {name: w0, chip: mcp4728, addr: 0x60, channel: 0, ref: internal, gain2: true, min: 0, max: 4}
      - {name: w1, chip: mcp4728, addr: 0x60, channel: 1, min: 0.5, max: 2}
    inputs:
      - {name: y0, input: ain0, full_scale: 4.096}
      - {name: y1, input: diff23, full_scale: 6.144, rate: 128}
    bounds: {upper: [3.3, 1.5]}
`
}

// benchBlackbox reads the blackbox section of a config file, and the names
// its objective and safety sections use.
func benchBlackbox(t *testing.T, path string) (insitu.Params, []string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		BlackBox  map[string]any `yaml:"blackbox"`
		Objective struct {
			Outputs []string `yaml:"outputs"`
		} `yaml:"objective"`
		Safety struct {
			Initial      map[string]any `yaml:"initial"`
			OutputRanges map[string]any `yaml:"output_ranges"`
			Saturation   map[string]any `yaml:"saturation"`
			Interlocks   []struct {
				Output string `yaml:"output"`
			} `yaml:"interlocks"`
		} `yaml:"safety"`
	}
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	kind, _ := cfg.BlackBox["kind"].(string)
	delete(cfg.BlackBox, "kind")
	names := slices.Clone(cfg.Objective.Outputs)
	for _, m := range []map[string]any{cfg.Safety.Initial, cfg.Safety.OutputRanges, cfg.Safety.Saturation} {
		for k := range m {
			names = append(names, k)
		}
	}
	for _, il := range cfg.Safety.Interlocks {
		names = append(names, il.Output)
	}
	return insitu.Params{Kind: kind, Values: cfg.BlackBox, File: path, Prefix: "blackbox"}, names
}

// onEmulators returns a copy of a rig section whose parts reach emulated
// devices where the config names hardware: a framebuffer file of the
// configured size (256×256 when the kernel would say), a memory camera of
// the V4L2 camera's size, an emulated I²C bus for one not registered here,
// twins over loopback for SCPI instruments. Names, bounds, ranges and
// measurement stay as they are, so the Spec does too.
func onEmulators(t *testing.T, values map[string]any) map[string]any {
	t.Helper()
	b, err := yaml.Marshal(values)
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := yaml.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	registered := map[string]bool{}
	for _, r := range i2creg.All() {
		registered[r.Name] = true
	}
	for _, raw := range v["parts"].([]any) {
		part := raw.(map[string]any)
		switch part["type"] {
		case "slm":
			d := part["display"].(map[string]any)
			if d["type"] == "x11" {
				part["display"] = map[string]any{"type": "memory", "width": d["width"], "height": d["height"]}
				continue
			}
			if d["type"] != "fbdev" {
				continue
			}
			if d["width"] == nil || d["height"] == nil {
				d["width"], d["height"] = 256, 256
			}
			d["bits"] = 32
			d["path"] = framebufferFile(t, d["width"].(int), d["height"].(int))
			d["sysfs_dir"] = filepath.Join(t.TempDir(), "no-sysfs")
		case "camera":
			bk := part["backend"].(map[string]any)
			if bk["type"] == "v4l2" || bk["type"] == "genicam" {
				part["backend"] = map[string]any{"type": "memory", "source": zeros, "width": bk["width"], "height": bk["height"]}
			}
		case "daq":
			if bus, _ := part["bus"].(string); !registered[bus] {
				part["bus"] = emulatedBus(t)
			}
		case "powermeter":
			part["transport"] = map[string]any{"type": "lxi", "lxi": map[string]any{"address": powerMeterTwin(t)}}
			part["idn"] = "(?i)twin"
		case "smu":
			part["transport"] = map[string]any{"type": "lxi", "lxi": map[string]any{"address": smuTwin(t)}}
			part["idn"] = "(?i)twin"
		}
	}
	return v
}

// Every bench config's rig is described, without its devices, as it is
// built on twins and emulators; and the names its objective and safety
// sections use are all in that description.
func TestDescribeBenchConfigs(t *testing.T) {
	// Configs name files (a calibration) from the repository's root, as
	// the command line is run from there.
	t.Chdir("../..")
	paths, err := filepath.Glob("configs/bench-*.yaml")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no bench configs: %v", err)
	}
	for _, path := range paths {
		t.Run(filepath.Base(path), func(t *testing.T) {
			p, names := benchBlackbox(t, path)
			if p.Kind != "rig" {
				t.Skipf("kind %q", p.Kind)
			}
			got, err := insitu.Describe(context.Background(), p)
			if errors.Is(err, camera.ErrNoAravis) {
				t.Skip("a GenICam camera: runs in the aravis build (make test-aravis)")
			}
			if err != nil {
				t.Fatal(err)
			}
			emu := p
			emu.Values = onEmulators(t, p.Values)
			if again, err := insitu.Describe(context.Background(), emu); err != nil || !reflect.DeepEqual(again, got) {
				t.Errorf("on emulators described as %+v, %v", again, err)
			}
			if want := built(t, emu); !reflect.DeepEqual(got, want) {
				t.Errorf("described\n%+v\nbuilt on emulators\n%+v", got, want)
			}
			for _, n := range names {
				if !slices.Contains(got.In.Names, n) && !slices.Contains(got.Out, n) {
					t.Errorf("%s names %q, which the rig does not have (inputs %v, outputs %v)", path, n, got.In.Names, got.Out)
				}
			}
		})
	}
}

// countingListener counts the connections made to a loopback port.
type countingListener struct {
	ln    net.Listener
	mu    sync.Mutex
	peers []string
}

func listen(t *testing.T) *countingListener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &countingListener{ln: ln}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			l.mu.Lock()
			l.peers = append(l.peers, c.RemoteAddr().String())
			l.mu.Unlock()
			c.Close()
		}
	})
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return l
}

// accepted returns how many connections came in before a marker
// connection made now (a listener accepts in the order connections were
// made, so any earlier one is counted).
func (l *countingListener) accepted(t *testing.T) int {
	t.Helper()
	c, err := net.Dial("tcp", l.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	marker := c.LocalAddr().String()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		l.mu.Lock()
		i := slices.Index(l.peers, marker)
		l.mu.Unlock()
		if i >= 0 {
			return i
		}
	}
	t.Fatal("the marker connection was never accepted")
	return 0
}

// Describe opens nothing: the SCPI instruments point at a port that counts
// connections (the SMU with reset: true), the framebuffer, the V4L2 camera,
// the USBTMC device and the serial port at paths that do not exist, the
// DAQ at a bus nobody registered. Describing succeeds and nobody connects;
// building the same rig does try the devices.
func TestDescribeOpensNothing(t *testing.T) {
	l := listen(t)
	dir := t.TempDir()
	addr := l.ln.Addr().String()
	src := `
kind: rig
parts:
  - name: smu
    type: smu
    transport: {type: lxi, lxi: {address: "` + addr + `"}}
    reset: true
    range: 2
    compliance: 1e-3
    step: 0.1
  - name: slm
    type: slm
    display: {type: fbdev, path: ` + filepath.Join(dir, "fb1") + `}
    n: 60
  - name: pm
    type: powermeter
    transport: {type: lxi, lxi: {address: "` + addr + `"}}
    wavelength: 700
  - name: pm2
    type: powermeter
    transport: {type: usbtmc, usbtmc: {path: ` + filepath.Join(dir, "usbtmc0") + `}}
    wavelength: 700
  - name: smu2
    type: smu
    transport: {type: serial, serial: {port: ` + filepath.Join(dir, "ttyUSB0") + `}}
    range: 2
    compliance: 1e-3
    step: 0.1
  - name: cam
    type: camera
    backend: {type: v4l2, path: ` + filepath.Join(dir, "video0") + `, width: 640, height: 480}
    roi: [0, 0, 4, 3]
    measure: image
  - name: pnn
    type: daq
    bus: describe-test-no-such-bus
    vdd: 5
    outputs: [{name: v0, chip: mcp4728, min: 0, max: 4}]
`
	p := params(t, src)
	sp, err := insitu.Describe(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if n := l.accepted(t); n != 0 {
		t.Errorf("Describe made %d connections", n)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("Describe left %v behind", entries)
	}
	if len(sp.In.Names) != 1+60*60+1+1 || len(sp.Out) != 3+1+1+3+12 {
		t.Errorf("spec of %d inputs, %d outputs", len(sp.In.Names), len(sp.Out))
	}
	// The listener does count: building dials the SMU first.
	if _, err := insitu.New(context.Background(), p); err == nil {
		t.Fatal("a rig of absent devices was built")
	}
	if n := l.accepted(t); n == 0 {
		t.Error("building made no connection: the listener counts nothing")
	}
}

// Describe rejects what New rejects before touching a device, with the
// same error, and says when only the device can tell.
func TestDescribeErrors(t *testing.T) {
	slmPart := `{name: slm, type: slm, display: {type: memory, width: 8, height: 8}, n: 2}`
	smuAt := func(transport, extra string) string {
		return "kind: rig\nparts: [{name: s, type: smu, transport: " + transport + ", range: 2, compliance: 1e-3, step: 0.1" + extra + "}]"
	}
	smu := func(extra string) string { return smuAt(`{type: lxi, lxi: {address: "127.0.0.1:1"}}`, extra) }
	pm := func(extra string) string {
		return "kind: rig\nparts: [" + slmPart + ", {name: pm, type: powermeter, transport: {type: lxi, lxi: {address: \"127.0.0.1:1\"}}" + extra + "}]"
	}
	cam := func(extra string) string {
		return "kind: rig\nparts: [" + slmPart + ", {name: c, type: camera" + extra + "}]"
	}
	const mem = `backend: {type: memory, source: ` + zeros + `, width: 8, height: 6}`
	for _, tc := range []struct {
		src, want string
	}{
		{"kind: rig\nparts: []", "at least one part"},
		{"kind: rig\nsettle: -1s\nparts: [" + slmPart + "]", "settle"},
		{"kind: rig\nparts: [" + slmPart + ", " + slmPart + "]", `part name "slm" used twice`},
		{"kind: rig\nparts: [{name: a, type: laser}]", "unknown part type"},
		{"kind: rig\nparts: [{name: slm, type: slm, display: {type: memory, width: 8, height: 8}, n: 2, bounds: {lower: [1, 2, 3]}}]", "bounds.lower: 3 values, want 1 or 4"},
		{"kind: rig\nparts: [{name: slm, type: slm, display: {type: memory, width: 8, height: 8}, n: 2, bounds: [0, 1]}]", "want {lower: ..., upper: ...}"},
		{"kind: rig\nparts: [{name: slm, type: slm, display: {type: memory, width: 8, height: 8}, n: 9}]", "n=9"},
		{"kind: rig\nparts: [{name: slm, type: slm, display: {type: memory, width: 8, height: 8}, n: 2, background: 300}]", "background"},
		{"kind: rig\nparts: [{name: slm, type: slm, display: {type: fbdev, path: /dev/fb9, bits: 12}, n: 2}]", "bits 12"},
		{"kind: rig\nparts: [{name: slm, type: slm, display: {type: fbdev, path: /dev/fb9, width: 8, height: 8}, n: 2, origin: [7, 0]}]", "origin"},
		{"kind: rig\nparts: [{name: slm, type: slm, display: {type: memory, width: 8, height: 8}, n: 2, correction_file: /nonexistent/flat.bmp}]", "correction_file"},
		{smu(", reste: true"), "reste"},
		{smu(", max: 5"), "outside the ±2 V range"},
		{smu(", bounds: {lower: 3}"), "leave nothing"},
		// A bound outside the device's range is an error naming both.
		{smu(", max: 0.7, bounds: {upper: 1.5}"), "blackbox.parts[0].bounds.upper: 1.5 V is above the device's range [-2, 0.7] V of voltage"},
		{smu(", bounds: {lower: -3}"), "blackbox.parts[0].bounds.lower: -3 V is below the device's range [-2, 2] V of voltage"},
		{smuAt("{type: gpib}", ""), `transport.type: "gpib"`},
		{smuAt("{type: lxi}", ""), "address: missing"},
		{smuAt("{type: serial, serial: {port: /dev/ttyUSB9, parity: sometimes}}", ""), "parity"},
		{smuAt("{type: usbtmc}", ""), "path: missing"},
		{smu(", idn: \"(\""), "identity pattern"},
		{pm(""), "wavelength"},
		{pm(", wavelength: 700, read: fetch"), "read"},
		{"kind: rig\nparts: [{name: pnn, type: daq, bus: x, vdd: 5, outputs: [{name: v, chip: mcp4728, min: 0, max: 6}]}]", "full scale"},
		{"kind: rig\nparts: [{name: pnn, type: daq, bus: x, vdd: 5, outputs: [{name: v, chip: mcp4728, max: 1}], inputs: [{name: v, full_scale: 4.096, input: ain0}]}]", "distinct"},
		{"kind: rig\nparts: [{name: pnn, type: daq, bus: x, inputs: [{name: y, full_scale: 4.096, input: ain0}]}]", "no actuator"},
		{cam(", " + mem + ", measure: pixels"), "measure"},
		{cam(", " + mem + ", roi: [4, 4, 8, 8]"), "outside the 8×6 sensor"},
		{cam(", " + mem + ", measure: regions, regions: [{name: r, roi: [0, 0, 9, 1]}]"), "outside the 8×6 ROI"},
		{cam(", " + mem + ", measure: regions"), "no regions"},
		{cam(", backend: {type: memory, source: nope, width: 2, height: 2}"), "unknown frame source"},
		{cam(", backend: {type: v4l2, path: /dev/video9, format: rgb}"), `format "rgb"`},
		{cam(", backend: {type: v4l2}"), "backend.path"},
		{cam(", backend: {type: usb}"), "backend.type"},
		{cam(", " + mem + ", average: -1"), "average"},
	} {
		p := params(t, tc.src)
		_, err := insitu.Describe(context.Background(), p)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s\nDescribe: %v\nwant it to mention %q", tc.src, err, tc.want)
			continue
		}
		if _, nerr := insitu.New(context.Background(), p); nerr == nil || nerr.Error() != err.Error() {
			t.Errorf("%s\nDescribe: %v\nNew:      %v", tc.src, err, nerr)
		}
	}
}

// A V4L2 camera measuring whole images has outputs only its device knows.
func TestDescribeNeedsTheDevice(t *testing.T) {
	video := filepath.Join(t.TempDir(), "video0")
	src := "kind: rig\nparts:\n" + memSLM + `
  - {name: cam, type: camera, backend: {type: v4l2, path: ` + video + `, width: 640, height: 480}, measure: image}
  - {name: pm, type: powermeter, transport: {type: lxi}, wavelength: 700}
`
	_, err := insitu.Describe(context.Background(), params(t, src))
	// The other parts are still checked, and a config error wins.
	if err == nil || !strings.Contains(err.Error(), "address: missing") || errors.Is(err, insitu.ErrNeedsDevice) {
		t.Errorf("with a broken power meter: %v", err)
	}
	src = strings.Replace(src, "transport: {type: lxi}", "transport: {type: lxi, lxi: {address: \"127.0.0.1:1\"}}", 1)
	_, err = insitu.Describe(context.Background(), params(t, src))
	if !errors.Is(err, insitu.ErrNeedsDevice) {
		t.Fatalf("Describe = %v, want insitu.ErrNeedsDevice", err)
	}
	for _, want := range []string{"blackbox.parts[1].roi", video, "give roi", "insitu probe --config"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	// Building such a rig is not refused: it opens the camera to know.
	_, err = insitu.New(context.Background(), params(t, src))
	if errors.Is(err, insitu.ErrNeedsDevice) || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("New = %v, want the camera's open error", err)
	}
	// With a roi the outputs are known.
	src = strings.Replace(src, "measure: image", "measure: image, roi: [0, 0, 2, 2]", 1)
	sp, err := insitu.Describe(context.Background(), params(t, src))
	if err != nil || strings.Join(sp.Out, ",") != "cam/px_0_0,cam/px_0_1,cam/px_1_0,cam/px_1_1,pm/power" {
		t.Errorf("with a roi: %v, %v", sp.Out, err)
	}
}

// Errors from opening a part keep their cause.
func TestOpenErrorsKeepTheCause(t *testing.T) {
	dir := t.TempDir()
	src := "kind: rig\nparts: [{name: slm, type: slm, display: {type: fbdev, path: " + filepath.Join(dir, "fb") + ", width: 4, height: 4, bits: 8}, n: 2}, " +
		"{name: c, type: camera, backend: {type: memory, source: " + zeros + ", width: 2, height: 2}}]"
	_, err := insitu.New(context.Background(), params(t, src))
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "blackbox.parts[0].display") {
		t.Errorf("absent framebuffer: %v", err)
	}
	src = "kind: rig\nparts:\n" + memSLM + "\n  - {name: c, type: camera, backend: {type: v4l2, path: " + filepath.Join(dir, "video") + "}}"
	_, err = insitu.New(context.Background(), params(t, src))
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "blackbox.parts[1].backend") {
		t.Errorf("absent camera: %v", err)
	}
}

// A part type needs both Open and Describe; the rules every registry
// shares (duplicates, unknown names) are tested with insitu.Registry.
func TestRegisterPartNeedsOpenAndDescribe(t *testing.T) {
	open := func(context.Context, insitu.Params, map[string]rig.Part) (rig.Part, error) { return nil, nil }
	describe := func(insitu.Params) (rig.PartSpec, error) { return rig.PartSpec{}, nil }
	for name, pt := range map[string]rig.PartType{
		"no describe": {Open: open},
		"no open":     {Describe: describe},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: registered", name)
				}
			}()
			rig.RegisterPart("describe-test-"+strings.ReplaceAll(name, " ", "-"), pt)
		}()
	}
}

// TestRigDevicesAndUnits: a rig of SCPI instruments reports each part's
// *IDN? reply, read from the instrument when it was opened, and the units
// of its outputs; a part that has no identity says so.
func TestRigDevicesAndUnits(t *testing.T) {
	smuAddr, pmAddr := smuTwin(t), powerMeterTwin(t)
	p := params(t, `
kind: rig
parts:
  - {name: bias, type: smu, idn: "(?i)twin", transport: {type: lxi, lxi: {address: "`+smuAddr+`"}}, range: 2, compliance: 1e-4, step: 0.1}
  - {name: pm, type: powermeter, idn: "(?i)twin", transport: {type: lxi, lxi: {address: "`+pmAddr+`"}}, wavelength: 700}
  - {name: cam, type: camera, backend: {type: memory, source: `+zeros+`, width: 4, height: 4}, measure: sum}
`)
	b, err := insitu.New(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	r := b.(*rig.Rig)
	defer r.Close()
	if got, want := r.Spec().OutUnits, []string{"V", "A", "", "W", ""}; !reflect.DeepEqual(got, want) {
		t.Errorf("output units %q, want %q (outputs %q)", got, want, r.Spec().Out)
	}
	ds := r.Devices(context.Background())
	if len(ds) != 3 {
		t.Fatalf("%d devices, want 3", len(ds))
	}
	for i, want := range []struct{ name, typ, idn string }{{"bias", "smu", "twin"}, {"pm", "powermeter", "twin"}} {
		d := ds[i]
		if d.Name != want.name || d.Type != want.typ || d.Err != nil || !strings.Contains(strings.ToLower(d.Identity), want.idn) || strings.Count(d.Identity, ",") < 3 {
			t.Errorf("device %d: %+v, want %s (%s) with its *IDN? reply", i, d, want.name, want.typ)
		}
	}
	if ds[2].Name != "cam" || ds[2].Type != "camera" || ds[2].Err == nil && ds[2].Identity == "" {
		t.Errorf("device 2: %+v", ds[2])
	}
}
