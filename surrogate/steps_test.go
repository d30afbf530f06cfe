package surrogate

import (
	"bytes"
	"math"
	"slices"
	"testing"
)

// TestSharedEpochVisitsEveryPointOnce: with Share an epoch still makes
// every point an anchor exactly once, each minibatch's rows are its
// anchors and their neighbours, and fewer rows are forwarded per anchor
// than with independent anchors.
func TestSharedEpochVisitsEveryPointOnce(t *testing.T) {
	const n, k, batch = 600, 5, 32
	rowsPerAnchor := map[bool]float64{}
	for _, share := range []bool{false, true} {
		m := newSinModel(t, Arch{Hidden: []int{8}}, 1)
		d := sinData(t, m, n, 2)
		tr, err := NewTrainer(m, TrainConfig{Loss: LossGradPIE, K: k, Batch: batch, Share: share}, 3)
		if err != nil {
			t.Fatal(err)
		}
		var norm [][]float64
		for i := range n {
			norm = append(norm, m.NormalizeInput(d.X(i)))
		}
		knn := naiveNeighbors(norm, k)
		var seen []int
		tr.onBatch = func(anchors, unique []int) {
			seen = append(seen, anchors...)
			if len(anchors) > batch+k {
				t.Errorf("a minibatch of %d anchors (batch %d, k %d)", len(anchors), batch, k)
			}
			if want := expectedRows(anchors, knn); !slices.Equal(unique, want) {
				t.Fatalf("rows %v, want the anchors then their other neighbours %v", unique, want)
			}
		}
		if _, err := tr.Fit(t.Context(), d, 1, nil); err != nil {
			t.Fatal(err)
		}
		slices.Sort(seen)
		for i, a := range seen {
			if a != i {
				t.Fatalf("share %v: an epoch did not make every point an anchor exactly once", share)
			}
		}
		rowsPerAnchor[share] = tr.RowsPerAnchor()
	}
	t.Logf("rows per anchor: independent %.2f, shared %.2f", rowsPerAnchor[false], rowsPerAnchor[true])
	if !(rowsPerAnchor[true] < 0.8*rowsPerAnchor[false]) {
		t.Errorf("rows per anchor: shared %.2f, independent %.2f: want shared < 0.8× independent", rowsPerAnchor[true], rowsPerAnchor[false])
	}
}

// TestStepsCostDoesNotGrow: a step's anchors are at most Batch distinct
// points (all of them while the dataset is smaller), so the rows forwarded
// per step are bounded by Batch·(1+K) at any dataset size, and by Rows when
// that is set (then a large dataset's steps forward nearly Rows rows).
func TestStepsCostDoesNotGrow(t *testing.T) {
	const k, batch = 4, 24
	for _, rows := range []int{0, 40} {
		for _, share := range []bool{false, true} {
			for _, n := range []int{10, 100, 3000} {
				m := newSinModel(t, Arch{Hidden: []int{8}}, 1)
				d := sinData(t, m, n, 2)
				tr, err := NewTrainer(m, TrainConfig{Loss: LossGradPIE, K: k, Batch: batch, Share: share, Rows: rows}, 3)
				if err != nil {
					t.Fatal(err)
				}
				steps, forwarded := 0, 0
				tr.onBatch = func(anchors, unique []int) {
					steps++
					forwarded += len(unique)
					if want := min(n, batch); rows == 0 && len(anchors) != want {
						t.Errorf("n %d: %d anchors, want %d", n, len(anchors), want)
					}
					if len(anchors) == 0 || len(anchors) > batch {
						t.Errorf("n %d: %d anchors", n, len(anchors))
					}
					s := slices.Clone(anchors)
					slices.Sort(s)
					if len(slices.Compact(s)) != len(anchors) {
						t.Errorf("n %d: repeated anchors %v", n, anchors)
					}
					if s[0] < 0 || s[len(s)-1] >= n {
						t.Errorf("n %d: anchor out of range", n)
					}
					if len(unique) > batch*(1+k) || (rows > 0 && n > batch && len(unique) > rows) {
						t.Errorf("n %d, rows %d: %d rows in a step", n, rows, len(unique))
					}
				}
				if _, err := tr.Steps(t.Context(), d, 7, Focus{Recent: 50, Near: []int{0, n - 1}}); err != nil {
					t.Fatal(err)
				}
				if steps != 7 {
					t.Errorf("n %d: %d steps, want 7", n, steps)
				}
				if mean := float64(forwarded) / 7; rows > 0 && n == 3000 && mean < 0.75*float64(rows) {
					t.Errorf("n %d, rows %d: %.1f rows per step, want close to the cap", n, rows, mean)
				}
			}
		}
	}
}

// TestFocusFavoursRecentAndNear counts how often each point anchors: the
// newest points and the neighbourhoods of the focus points are drawn at the
// rates Focus promises (a quarter of the anchors each, beside a uniform
// half), within sampling error. The sets are large enough that a batch
// rarely draws a point twice (a repeat is redrawn from the whole mixture).
func TestFocusFavoursRecentAndNear(t *testing.T) {
	const n, k, batch, recent, steps = 4000, 5, 64, 400, 400
	m := newSinModel(t, Arch{Hidden: []int{4}}, 1)
	d := sinData(t, m, n, 2)
	tr, err := NewTrainer(m, TrainConfig{Loss: LossMAE, K: k, Batch: batch}, 3)
	if err != nil {
		t.Fatal(err)
	}
	near := []int{17, 234, 480, 1234, 1500, 2222, 2600, 3000}
	d.useK(k)
	hood := map[int]bool{}
	for _, c := range near {
		hood[c] = true
		for _, j := range d.neighbors(c) {
			hood[j] = true
		}
	}
	count := make([]int, n)
	tr.onBatch = func(anchors, _ []int) {
		for _, a := range anchors {
			count[a]++
		}
	}
	if _, err := tr.Steps(t.Context(), d, steps, Focus{Recent: recent, Near: near}); err != nil {
		t.Fatal(err)
	}
	var inRecent, nRecent, inHood, other, nOther float64
	for i, c := range count {
		switch {
		case hood[i]:
			inHood += float64(c)
		case i >= n-recent:
			inRecent += float64(c)
			nRecent++
		default:
			other += float64(c)
			nOther++
		}
	}
	perHood := inHood / float64(len(hood)) / steps
	perRecent := inRecent / nRecent / steps
	perOther := other / nOther / steps
	// Uniform half: batch/2/n per point per step; the others add a quarter
	// of the batch spread over their sets.
	wantOther := float64(batch) / 2 / n
	wantRecent := float64(batch)/4/recent + wantOther
	wantHood := float64(batch)/4/float64(len(hood)) + wantOther
	t.Logf("anchor rate per step: neighbourhood %.3f (want %.3f), recent %.4f (%.4f), other %.4f (%.4f)",
		perHood, wantHood, perRecent, wantRecent, perOther, wantOther)
	if math.Abs(perOther-wantOther) > 0.1*wantOther {
		t.Errorf("other points anchor at %.4f per step, want %.4f", perOther, wantOther)
	}
	if math.Abs(perRecent-wantRecent) > 0.1*wantRecent {
		t.Errorf("recent points anchor at %.4f per step, want %.4f", perRecent, wantRecent)
	}
	if math.Abs(perHood-wantHood) > 0.15*wantHood {
		t.Errorf("neighbourhood points anchor at %.3f per step, want %.3f", perHood, wantHood)
	}
}

// TestStepsReducesLossAndResumes: steps train (the full-data loss falls),
// and a trainer restored from a checkpoint continues exactly as the
// original does.
func TestStepsReducesLossAndResumes(t *testing.T) {
	for _, cfg := range []TrainConfig{
		{Loss: LossMAE, Batch: 32, LR: 3e-3},
		{Loss: LossGradPIE, K: 5, Batch: 32, LR: 3e-3},
		{Loss: LossGradPIE, K: 5, Batch: 32, LR: 3e-3, Share: true},
	} {
		t.Run(string(cfg.Loss), func(t *testing.T) {
			m := newSinModel(t, Arch{Hidden: []int{32, 32}}, 1)
			d := sinData(t, m, 400, 2)
			tr, err := NewTrainer(m, cfg, 1)
			if err != nil {
				t.Fatal(err)
			}
			focus := Focus{Recent: 64, Near: []int{3, 99}}
			initial, _ := tr.Loss(d)
			if _, err := tr.Steps(t.Context(), d, 300, focus); err != nil {
				t.Fatal(err)
			}
			final, _ := tr.Loss(d)
			t.Logf("loss %.4f → %.4f after 300 steps", initial, final)
			if !(final < 0.3*initial) {
				t.Errorf("loss %.4f → %.4f after 300 steps, want < 0.3× initial", initial, final)
			}

			state, err := tr.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			var weights bytes.Buffer
			if err := m.Save(&weights); err != nil {
				t.Fatal(err)
			}
			m2, err := Load(bytes.NewReader(weights.Bytes()))
			if err != nil {
				t.Fatal(err)
			}
			tr2, err := NewTrainer(m2, cfg, 99)
			if err != nil {
				t.Fatal(err)
			}
			if err := tr2.UnmarshalBinary(state); err != nil {
				t.Fatal(err)
			}
			d2 := NewDataset(m2)
			for i := range d.Len() {
				d2.Append(d.X(i), d.Y(i))
			}
			if _, err := tr.Steps(t.Context(), d, 20, focus); err != nil {
				t.Fatal(err)
			}
			if _, err := tr2.Steps(t.Context(), d2, 20, focus); err != nil {
				t.Fatal(err)
			}
			if !sameBits(m.mlp.Params(), m2.mlp.Params()) {
				t.Errorf("a restored trainer's steps differ from the original's")
			}
		})
	}
}

// TestStepsRefusesBadFocus: a focus point outside the dataset is an error,
// not an index panic.
func TestStepsRefusesBadFocus(t *testing.T) {
	m := newSinModel(t, Arch{Hidden: []int{4}}, 1)
	d := sinData(t, m, 20, 2)
	tr, err := NewTrainer(m, TrainConfig{Loss: LossGradPIE, K: 3}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Steps(t.Context(), d, 1, Focus{Near: []int{20}}); err == nil {
		t.Error("focus point 20 of 20 accepted")
	}
	if _, err := tr.Steps(t.Context(), d, -1, Focus{}); err == nil {
		t.Error("-1 steps accepted")
	}
}

// TestCloneIsIndependent: a clone predicts what the original did, and
// keeps doing so while the original trains.
func TestCloneIsIndependent(t *testing.T) {
	m := newSinModel(t, Arch{Hidden: []int{8}, LayerNorm: true}, 1)
	d := sinData(t, m, 100, 2)
	tr, err := NewTrainer(m, TrainConfig{Loss: LossMAE}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Fit(t.Context(), d, 2, nil); err != nil {
		t.Fatal(err)
	}
	c := m.Clone()
	x := d.X(5)
	before := m.Predict(x)
	if !sameBits(c.Predict(x), before) || !sameBits(c.VJP(x, []float64{1, -1}), m.VJP(x, []float64{1, -1})) {
		t.Fatal("a clone predicts differently from its original")
	}
	if _, err := tr.Fit(t.Context(), d, 2, nil); err != nil {
		t.Fatal(err)
	}
	if sameBits(m.Predict(x), before) {
		t.Fatal("training did not change the original: the check proves nothing")
	}
	if !sameBits(c.Predict(x), before) {
		t.Error("training the original changed its clone")
	}
	// Cloned again into the first clone: the same storage, today's weights.
	if c2 := m.CloneInto(c); c2 != c || !sameBits(c2.Predict(x), m.Predict(x)) {
		t.Error("CloneInto did not reuse an earlier clone, or copied stale weights")
	}
	other := newSinModel(t, Arch{Hidden: []int{4}}, 1)
	if c3 := m.CloneInto(other); c3 == other || !sameBits(c3.Predict(x), m.Predict(x)) {
		t.Error("CloneInto reused a model of another shape")
	}
}

// sameBits reports whether a and b hold the same float64 bit patterns.
func sameBits(a, b []float64) bool {
	return slices.EqualFunc(a, b, func(x, y float64) bool { return math.Float64bits(x) == math.Float64bits(y) })
}
