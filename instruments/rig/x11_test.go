package rig

import (
	"context"
	"errors"
	"image"
	"strings"
	"testing"
	"time"

	"periph.io/x/conn/v3/physic"

	"github.com/insitu-lab/insitu"
	"github.com/insitu-lab/insitu/drivers/x11"
	"github.com/insitu-lab/insitu/drivers/x11/x11test"
	"github.com/insitu-lab/insitu/safety"
)

// x11Rig is an SLM on an X monitor and an analog board on an emulated I²C
// bus, whose DAC outputs show whether it reached its safe state.
func x11Rig(display, bus string) string {
	return `
kind: rig
name: x11-bench
parts:
  - name: slm
    type: slm
    display: {type: x11, x11_display: "` + display + `", output: SLM-1}
    n: 8
    macro_pixel: 16
    settle: 30ms
  - name: pnn
    type: daq
    bus: ` + bus + `
    vdd: 5
    outputs:
      - {name: w0, chip: mcp4728, addr: 0x60, channel: 0, ref: internal, gain2: true, min: 0, max: 4}
    inputs:
      - {name: y0, input: ain0, full_scale: 4.096}
`
}

func x11Server(t *testing.T) *x11test.Server {
	s := x11test.Start(t, 2048, 1024)
	s.AddMonitor(t, "DESK", image.Rect(0, 0, 1024, 1024), true)
	s.AddMonitor(t, "SLM-1", image.Rect(1024, 0, 1024+800, 600), false)
	return s
}

// The rig names the SLM's marks and starts the settle once the frame is
// confirmed on screen.
func TestX11QueryMarks(t *testing.T) {
	s := x11Server(t)
	_, bus := emuBus(t)
	r := build(t, x11Rig(s.Display, bus))
	x := make([]float64, 64+1)
	x[64] = 1
	var tr insitu.QueryTrace
	if _, err := r.Query(insitu.WithQueryTrace(context.Background(), &tr), x); err != nil {
		t.Fatal(err)
	}
	at := map[string]time.Time{}
	var order []string
	for _, m := range tr.Marks() {
		order = append(order, m.Part+":"+m.Event)
		at[m.Part+":"+m.Event] = m.At
	}
	if got := strings.Join(order, " "); got != "slm:written slm:shown slm:settled pnn:settled" {
		t.Fatalf("marks %s", got)
	}
	if at["slm:shown"].Before(at["slm:written"]) || at["slm:settled"].Sub(at["slm:shown"]) < 30*time.Millisecond {
		t.Fatalf("written %v, shown %v, settled %v: the settle must start at shown", at["slm:written"], at["slm:shown"], at["slm:settled"])
	}
}

// The X server dies in the middle of a run through the guard: the query
// fails naming the display, and every part reaches its safe state (the
// DAC back at 0 V) even though the SLM's window cannot be blanked.
func TestX11ServerKilledMidRun(t *testing.T) {
	s := x11Server(t)
	emu, bus := emuBus(t)
	r := build(t, x11Rig(s.Display, bus))
	g, err := safety.New(r, safety.Config{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	queries := 0
	err = g.Do(context.Background(), func(ctx context.Context) error {
		for k := range 1000 {
			x := make([]float64, 65)
			for i := range 64 {
				x[i] = float64((i+k)%6) + 0.1
			}
			x[64] = 2
			if _, err := g.Query(ctx, x); err != nil {
				return err
			}
			queries++
			if k == 2 {
				if emu.Outputs()[0] == 0 {
					t.Error("the DAC was not driven")
				}
				s.Kill()
			}
		}
		return nil
	})
	if err == nil {
		t.Fatal("the run survived the X server's death")
	}
	if queries != 3 {
		t.Errorf("%d queries went through, want 3 before the server died", queries)
	}
	if !errors.Is(err, x11.ErrLost) || !strings.Contains(err.Error(), s.Display) || !strings.Contains(err.Error(), "slm") {
		t.Errorf("error does not name the part, the display and the loss: %v", err)
	}
	if emu.Outputs() != [4]physic.ElectricPotential{} {
		t.Errorf("DAC after the run: %v, want its safe state 0 V", emu.Outputs())
	}
	if c := g.Counters(); c.SafeStates != 1 {
		t.Errorf("%d safe-state calls, want 1", c.SafeStates)
	}
	if _, qerr := g.Query(context.Background(), make([]float64, 65)); qerr == nil {
		t.Error("the guard still takes queries after the safe state")
	}
}
