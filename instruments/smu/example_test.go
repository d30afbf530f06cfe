package smu_test

import (
	"context"
	"fmt"

	"github.com/insitu-lab/insitu/drivers/lxi"
	"github.com/insitu-lab/insitu/drivers/scpi/emulator"
	"github.com/insitu-lab/insitu/drivers/transport"
	"github.com/insitu-lab/insitu/instruments/smu"
	"github.com/insitu-lab/insitu/simulators/bench"
)

// Drive the SMU twin over loopback TCP, as a bench config pointing at
// `insitu twin serve smu --tcp 127.0.0.1:0` would.
func Example() {
	tw, _ := bench.NewSMU(bench.SMUConfig{NoNoise: true, NoDiode: true}) // 1 kΩ
	ln, _ := emulator.Listen("127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go tw.Instrument().ServeTCP(ctx, ln)

	s, err := smu.Open(ctx, smu.Config{
		Transport:  transport.Config{Type: "lxi", LXI: lxi.Config{Address: ln.Addr().String()}},
		IDN:        "twin", // a real bench leaves the default, which refuses twins
		Range:      20,
		Compliance: 10e-3,
		Step:       0.5, // volts per set: 0 → 2 V is four sets
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()
	s.Apply(ctx, []float64{2})
	r, _ := s.Read(ctx)
	fmt.Printf("%.3g V, %.3g A, compliance %v\n", r.Voltage, r.Current, r.Compliance())
	s.SafeState(ctx) // ramp to 0 V, output off (high impedance)
	fmt.Println("output on:", s.OutputOn())
	// Output:
	// 2 V, 0.002 A, compliance false
	// output on: false
}
