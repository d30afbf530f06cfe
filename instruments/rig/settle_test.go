package rig

import (
	"context"
	"testing"
	"time"

	"github.com/insitu-lab/insitu"
)

// settlingPart is a one-coordinate actuator that records when it was last
// applied and asks for settle after it.
type settlingPart struct {
	settle  time.Duration
	applied time.Time
}

func (p *settlingPart) Coordinates() insitu.Space {
	return insitu.Space{Names: []string{"v"}, Lower: []float64{0}, Upper: []float64{1}}
}
func (p *settlingPart) Apply(context.Context, []float64) error { p.applied = time.Now(); return nil }
func (p *settlingPart) Settle() time.Duration                  { return p.settle }
func (p *settlingPart) SafeState(context.Context) error        { return nil }

// waitSensor reports how long after the last apply of each actuator it was
// read.
type waitSensor struct{ parts []*settlingPart }

func (s *waitSensor) Outputs() []string { return []string{"waited"} }
func (s *waitSensor) Measure(context.Context) ([]float64, error) {
	least := time.Duration(1<<63 - 1)
	for _, p := range s.parts {
		least = min(least, time.Since(p.applied))
	}
	return []float64{least.Seconds()}, nil
}
func (s *waitSensor) SafeState(context.Context) error { return nil }

// A query waits for the slowest actuator's settle plus the rig's own
// before measuring, whatever the order of the actuators.
func TestQueryWaitsForTheSlowestSettle(t *testing.T) {
	const slow, rigSettle = 60 * time.Millisecond, 20 * time.Millisecond
	for _, order := range [][2]time.Duration{{slow, 0}, {0, slow}} {
		a, b := &settlingPart{settle: order[0]}, &settlingPart{settle: order[1]}
		s := &waitSensor{parts: []*settlingPart{a, b}}
		r, err := New("t", rigSettle, Component{Name: "a", Part: a}, Component{Name: "b", Part: b}, Component{Name: "s", Part: s})
		if err != nil {
			t.Fatal(err)
		}
		y, err := r.Query(context.Background(), []float64{0.5, 0.5})
		if err != nil {
			t.Fatal(err)
		}
		if waited := time.Duration(y[0] * float64(time.Second)); waited < slow+rigSettle {
			t.Errorf("settles %v: measured %v after the last apply, want at least %v", order, waited, slow+rigSettle)
		}
	}
}
