package rig_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/insitu-lab/insitu"
	"github.com/insitu-lab/insitu/instruments/camera"
	"github.com/insitu-lab/insitu/instruments/rig"
)

// twinOf builds the twin rig of a config's blackbox section through the
// registry, as a dry run does: twin: true in the section.
func twinOf(t *testing.T, p insitu.Params) *rig.Rig {
	t.Helper()
	p.Values["twin"] = true
	b, err := insitu.New(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	r := b.(*rig.Rig)
	t.Cleanup(func() { r.Close() })
	if !r.IsTwin() {
		t.Fatal("twin: true built a hardware rig")
	}
	return r
}

// Every bench config's twin rig, built from the hardware config alone (no
// device here), has the Spec its describer gives, answers a query at the
// lower bounds with finite values, and records its safe state.
func TestTwinOfEveryBenchConfig(t *testing.T) {
	// Configs name files (a calibration) from the repository's root, as
	// the command line is run from there.
	t.Chdir("../..")
	paths, err := filepath.Glob("configs/bench-*.yaml")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no bench configs: %v", err)
	}
	for _, path := range paths {
		t.Run(filepath.Base(path), func(t *testing.T) {
			p, _ := benchBlackbox(t, path)
			want, err := insitu.Describe(context.Background(), p)
			if errors.Is(err, camera.ErrNoAravis) {
				t.Skip("a GenICam camera: runs in the aravis build (make test-aravis)")
			}
			if err != nil {
				t.Fatal(err)
			}
			r := twinOf(t, p)
			if !reflect.DeepEqual(r.Spec(), want) {
				t.Fatalf("twin spec\n%+v\ndescribed\n%+v", r.Spec(), want)
			}
			nt, err := rig.NewTwin(context.Background(), p)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(nt.Spec(), want) {
				t.Errorf("NewTwin's spec differs from the described one")
			}
			nt.Close()
			y, err := r.Query(context.Background(), want.In.Lower)
			if err != nil {
				t.Fatal(err)
			}
			if len(y) != len(want.Out) {
				t.Fatalf("%d outputs, want %d", len(y), len(want.Out))
			}
			if err := r.SafeState(context.Background()); err != nil {
				t.Fatal(err)
			}
			rep, ok := r.TwinReport()
			if !ok || rep.Queries != 1 || len(rep.Parts) != len(p.Values["parts"].([]any)) {
				t.Fatalf("report %+v", rep)
			}
			for _, pr := range rep.Parts {
				if !pr.SafeStateRan || pr.SafeStateErr != "" || pr.Device == "" {
					t.Errorf("part %s: %+v", pr.Name, pr)
				}
				if pr.Actuator && (pr.Applies != 1 || pr.SafeState == "") {
					t.Errorf("actuator %s: %d applies, safe state %q", pr.Name, pr.Applies, pr.SafeState)
				}
				if pr.Sensor && pr.Measures != 1 {
					t.Errorf("sensor %s: %d measures", pr.Name, pr.Measures)
				}
			}
		})
	}
}

// The twin waits no bench time but hands it to the sleep it is given: the
// SMU's settle and the step delays between the level sets of its ramp,
// less the time the twin took.
func TestTwinBenchTime(t *testing.T) {
	p, _ := benchBlackbox(t, "../../configs/bench-smu.yaml")
	r := twinOf(t, p)
	var mu sync.Mutex
	var slept []time.Duration
	r.SetTwinSleep(func(_ context.Context, d time.Duration) error {
		mu.Lock()
		slept = append(slept, d)
		mu.Unlock()
		return nil
	})
	start := time.Now()
	if _, err := r.Query(context.Background(), []float64{0.3}); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el > 40*time.Millisecond {
		t.Errorf("the twin query took %v: it waited the bench's time", el)
	}
	// 0 → 0.3 V in 6 sets of 0.05 V, 20 ms apart, then the 50 ms settle,
	// less what the twin query itself took: the settle first, before the
	// measurement, as on the bench, then the rest.
	want := 5*20*time.Millisecond + 50*time.Millisecond
	var total time.Duration
	for _, d := range slept {
		total += d
	}
	if len(slept) != 2 || slept[0] != 50*time.Millisecond || total > want || total < want-40*time.Millisecond {
		t.Errorf("slept %v, want the 50ms settle then the rest of %v less the query's own time", slept, want)
	}
	rep, _ := r.TwinReport()
	sp := rep.Parts[0]
	if rep.Device != want || sp.Busy != 100*time.Millisecond || sp.Counts["level sets"] != 6 {
		t.Errorf("report: device %v, part %+v", rep.Device, sp)
	}
	if !strings.Contains(sp.SafeState, "ramp 0.3 V → 0 V in ") || !strings.Contains(sp.SafeState, "OUTP OFF into HIMP") {
		t.Errorf("planned safe state %q", sp.SafeState)
	}
	if !strings.Contains(strings.Join(sp.Notes, "\n"), "refuses the twin") {
		t.Errorf("the bill does not say the identity pattern was replaced: %q", sp.Notes)
	}
	if err := r.SafeState(context.Background()); err != nil {
		t.Fatal(err)
	}
	rep, _ = r.TwinReport()
	after := rep.Parts[0]
	// The plan counts the level sets the driver then made.
	steps := after.Counts["level sets"] - sp.Counts["level sets"]
	if !after.SafeStateRan || after.SafeState != sp.SafeState || !strings.Contains(after.SafeState, fmt.Sprintf(" in %d steps ", steps)) {
		t.Errorf("after the safe state (%d level sets): %+v", steps, after)
	}
}

func init() {
	rig.RegisterPart("twin-test-untwinned", rig.PartType{
		Open: func(context.Context, insitu.Params, map[string]rig.Part) (rig.Part, error) {
			panic("twin mode opened a part")
		},
		Describe: func(insitu.Params) (rig.PartSpec, error) {
			return rig.PartSpec{In: insitu.Box(1, 0, 1), Out: []string{"y"}}, nil
		},
	})
}

// A part type without a registered twin cannot be built in twin mode.
func TestTwinNeedsARegisteredTwin(t *testing.T) {
	p := params(t, `
kind: rig
twin: true
parts:
  - {name: x, type: twin-test-untwinned}
`)
	_, err := insitu.New(context.Background(), p)
	if err == nil || !strings.Contains(err.Error(), `no twin registered for part type "twin-test-untwinned"`) {
		t.Fatalf("got %v", err)
	}
}
