package rig_test

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/insitu-lab/insitu"
	"github.com/insitu-lab/insitu/instruments/camera"
	"github.com/insitu-lab/insitu/instruments/rig"
	"github.com/insitu-lab/insitu/instruments/slm"
)

// A rig built in Go: a 2×2 phase pattern on an in-memory 4×4 SLM, watched
// by an in-memory "camera" that sees the gray levels on display.
func Example() {
	ctx := context.Background()
	mem := slm.NewMemory(4, 4)
	s, err := slm.New(mem, slm.Config{N: 2}) // centred at (1, 1), linear LUT, 256 levels per 2π
	if err != nil {
		panic(err)
	}
	src, err := camera.NewMemory(4, 4, time.Millisecond, 0, func(_ context.Context, dst []float64) error {
		for i, g := range mem.Last() {
			dst[i] = float64(g)
		}
		return nil
	})
	if err != nil {
		panic(err)
	}
	cam, err := camera.New(ctx, src, camera.Config{})
	if err != nil {
		panic(err)
	}
	sensor, err := rig.NewCamera(cam, rig.MeasureSum, nil)
	if err != nil {
		panic(err)
	}
	r, err := rig.New("demo", 0,
		rig.Component{Name: "slm", Part: rig.SLM{SLM: s}},
		rig.Component{Name: "cam", Part: sensor})
	if err != nil {
		panic(err)
	}
	defer r.SafeState(ctx) // blanks the SLM
	y, err := r.Query(ctx, []float64{0, math.Pi / 2, math.Pi, 3 * math.Pi / 2})
	fmt.Println(r.Spec().In.Names, r.Spec().Out, y, err)
	// Output: [slm/phi_0_0 slm/phi_0_1 slm/phi_1_0 slm/phi_1_1] [cam/sum] [384] <nil>
}

// A bench config's rig described without its devices: nothing is opened,
// so the SLM's framebuffer and the power meter need not be there. This is
// what checking a config's safety section against the rig needs.
func Example_describe() {
	p := insitu.Params{Kind: "rig", File: "bench.yaml", Prefix: "blackbox", Values: map[string]any{
		"name": "slm-powermeter",
		"parts": []map[string]any{
			{"name": "slm", "type": "slm", "display": map[string]any{"type": "fbdev", "path": "/dev/fb1"}, "n": 2,
				"bounds": map[string]any{"upper": 3.1416}},
			{"name": "pm", "type": "powermeter", "wavelength": 700,
				"transport": map[string]any{"type": "usbtmc", "usbtmc": map[string]any{"path": "/dev/usbtmc0"}}},
		},
	}}
	spec, err := insitu.Describe(context.Background(), p)
	if err != nil {
		panic(err)
	}
	fmt.Println(spec.In.Names, spec.In.Upper, spec.In.Periodic, spec.Out)
	// Output: [slm/phi_0_0 slm/phi_0_1 slm/phi_1_0 slm/phi_1_1] [3.1416 3.1416 3.1416 3.1416] [false false false false] [pm/power]
}
