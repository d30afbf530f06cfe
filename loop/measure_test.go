package loop

import (
	"context"
	"math"
	"testing"

	"github.com/insitu-lab/insitu"
	"github.com/insitu-lab/insitu/loop/journal"
)

type ctxKey struct{}

// A Measurer journals a fixed sequence as a run journals its queries; a
// second Measurer on the same journal serves what it holds and measures
// again what it holds only the intent of, and ends with the same outputs.
func TestMeasurerResumes(t *testing.T) {
	p := cnonProblem(t, 4, 2)
	xs := make([][]float64, 7)
	for i := range xs {
		xs[i] = []float64{0.1 * float64(i), -0.2, 0.3, 0.05 * float64(i)}
	}
	seen := map[int]bool{}
	decorate := func(ctx context.Context, i int) context.Context { return context.WithValue(ctx, ctxKey{}, i) }
	ref := NewMeasurer(p.Box, nil, 0)
	want, err := ref.Measure(context.Background(), xs, decorate)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	j := createJournal(t, dir, "calibrate")
	m := NewMeasurer(p.Box, j, 0)
	made, err := m.Measure(context.Background(), xs[:3], nil)
	if err != nil {
		t.Fatal(err)
	}
	var firstMarks [][]journal.Mark
	for _, r := range made {
		firstMarks = append(firstMarks, r.Marks)
	}
	// The next query's intent, as a crash would leave it.
	if _, err := j.Begin(context.Background(), journal.Intent{Iteration: 1, Role: journal.RoleEval, Slot: journal.NoSlot, Key: "q0000003", X: xs[3]}); err != nil {
		t.Fatal(err)
	}
	m = NewMeasurer(seenBox{p.Box, seen}, j, 0)
	first, err := m.Measure(context.Background(), xs[:3], nil)
	if err != nil {
		t.Fatal(err)
	}
	rest, err := m.Measure(context.Background(), xs[3:], func(ctx context.Context, i int) context.Context { return decorate(ctx, i+3) })
	if err != nil {
		t.Fatal(err)
	}
	got := append(first, rest...)
	for i := range want {
		for k := range want[i].Y {
			if math.Float64bits(got[i].Y[k]) != math.Float64bits(want[i].Y[k]) {
				t.Fatalf("query %d: %v, uninterrupted %v", i, got[i].Y, want[i].Y)
			}
		}
		// Served or measured, each query has its marks: the loop's start
		// and end around the box's, the served ones as first journaled.
		ms := got[i].Marks
		if len(ms) < 2 || ms[0].Event != journal.MarkStart || ms[len(ms)-1].Event != journal.MarkEnd || ms[len(ms)-1].At.Before(ms[0].At) {
			t.Errorf("query %d: marks %+v", i, ms)
			continue
		}
		if i < 3 && !ms[0].At.Equal(firstMarks[i][0].At) {
			t.Errorf("query %d served with marks %+v, journaled %+v", i, ms, firstMarks[i])
		}
	}
	if m.Replayed() != 3 || m.Remeasured() != 1 || len(seen) != 4 || seen[0] || seen[2] || !seen[3] || !seen[6] {
		t.Errorf("replayed %d, remeasured %d, the device saw %v", m.Replayed(), m.Remeasured(), seen)
	}
	its, _ := j.Iterations(context.Background())
	qs, _ := j.Queries(context.Background())
	if len(its) != 2 || its[0].Queries != 3 || its[1].Queries != 7 || len(qs) != 7 {
		t.Errorf("iterations %+v, %d queries", its, len(qs))
	}
	j.Close()
}

// seenBox records which queries (by the index decorate put in the
// context) reached the device.
type seenBox struct {
	insitu.BlackBox
	seen map[int]bool
}

func (b seenBox) Query(ctx context.Context, x []float64) ([]float64, error) {
	if i, ok := ctx.Value(ctxKey{}).(int); ok {
		b.seen[i] = true
	}
	return b.BlackBox.Query(ctx, x)
}
