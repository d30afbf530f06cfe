package report

import (
	"bytes"
	"context"
	"image/png"
	"math"
	"testing"

	"github.com/insitu-lab/insitu/loop/journal"
)

func TestSummarizeMatchesDirectQuantiles(t *testing.T) {
	curves := []Curve{
		{Label: "a", Best: []float64{5, 4, 3, 2}},
		{Label: "b", Best: []float64{9, 9}},
		{Label: "a", Best: []float64{6, 2, 1}},
		{Label: "a", Best: []float64{7, 7, 7, 0}},
	}
	bands := Summarize(curves)
	if len(bands) != 2 || bands[0].Label != "a" || bands[1].Label != "b" {
		t.Fatalf("bands %+v", bands)
	}
	a := bands[0]
	// Three runs, cut to the shortest (3 queries).
	if a.Runs != 3 || len(a.Queries) != 3 {
		t.Fatalf("band a: %d runs, %d points", a.Runs, len(a.Queries))
	}
	// Query 2: values {4, 2, 7}: median 4, mean 13/3.
	if a.Median[1] != 4 || math.Abs(a.Mean[1]-13.0/3) > 1e-15 {
		t.Errorf("query 2: median %v, mean %v", a.Median[1], a.Mean[1])
	}
	// numpy.percentile([2, 4, 7], [25, 75]) = [3, 5.5].
	if a.Q25[1] != 3 || a.Q75[1] != 5.5 {
		t.Errorf("query 2: quartiles %v, %v; want 3, 5.5", a.Q25[1], a.Q75[1])
	}
	var buf bytes.Buffer
	if err := PlotBestVsQueries(&buf, "t", bands, true); err != nil {
		t.Fatal(err)
	}
	if _, err := png.Decode(&buf); err != nil {
		t.Fatal(err)
	}
}

func TestSummarizeIterations(t *testing.T) {
	it := func(q int, best float64) journal.Iteration { return journal.Iteration{Queries: q, Best: best} }
	curves := []Curve{
		{Label: "m", Iters: []journal.Iteration{it(100, 0.5), it(200, 0.6), it(300, 0.9)}},
		{Label: "m", Iters: []journal.Iteration{it(110, 0.4), it(210, 0.8)}},
	}
	b := SummarizeIterations(curves)
	// Cut to 2 iterations; x is the mean query count, y the records' Best.
	if len(b) != 1 || b[0].Runs != 2 || len(b[0].Queries) != 2 {
		t.Fatalf("bands %+v", b)
	}
	if b[0].Queries[1] != 205 || math.Abs(b[0].Median[1]-0.7) > 1e-15 || math.Abs(b[0].Q25[0]-0.425) > 1e-15 {
		t.Errorf("band %+v", b[0])
	}
	var buf bytes.Buffer
	if err := PlotBands(&buf, "t", "test accuracy", b, false); err != nil {
		t.Fatal(err)
	}
	if _, err := png.Decode(&buf); err != nil {
		t.Fatal(err)
	}
}

func TestLoadRunningBestAndAt(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	j, err := journal.Create(dir, journal.Meta{Method: "m", Direction: journal.Maximize}, nil)
	if err != nil {
		t.Fatal(err)
	}
	objs := []float64{1, 3, 2, 5, 4}
	for i, f := range objs {
		id, err := j.Begin(ctx, journal.Intent{Slot: journal.NoSlot, Role: journal.RoleInit, X: []float64{float64(i)}})
		if err != nil {
			t.Fatal(err)
		}
		if err := j.Finish(ctx, id, []float64{f}, f, nil); err != nil {
			t.Fatal(err)
		}
		if err := j.RecordIteration(ctx, journal.Iteration{Iteration: i, Queries: i + 1, Best: f}); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	c, err := Load(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []float64{1, 3, 3, 5, 5} // maximized
	for i := range want {
		if c.Best[i] != want[i] {
			t.Fatalf("running best %v, want %v", c.Best, want)
		}
	}
	mean, sd, vals, ok := At([]Curve{c, c}, 3)
	if !ok || mean != 5 || sd != 0 || len(vals) != 2 {
		t.Errorf("At 3: %v ± %v %v %v", mean, sd, vals, ok)
	}
	if _, _, _, ok := At([]Curve{c}, 9); ok {
		t.Error("At an iteration no run reached reported ok")
	}
}

// A sweep of ten settings gets ten colours a reader can tell apart.
func TestPaletteHasTenDistinctColours(t *testing.T) {
	if len(palette) < 10 {
		t.Fatalf("%d colours", len(palette))
	}
	for i := range palette {
		for j := range i {
			if palette[i] == palette[j] {
				t.Errorf("colours %d and %d are the same", i, j)
			}
		}
	}
}

// Quantile is numpy's default (type 7): numpy.percentile([1, 2, 3, 4],
// [0, 25, 50, 75, 100]) = [1, 1.75, 2.5, 3.25, 4].
func TestQuantileIsType7(t *testing.T) {
	x := []float64{1, 2, 3, 4}
	for _, c := range []struct{ p, want float64 }{{0, 1}, {0.25, 1.75}, {0.5, 2.5}, {0.75, 3.25}, {1, 4}} {
		if got := Quantile(x, c.p); got != c.want {
			t.Errorf("Quantile(%v) = %v, want %v", c.p, got, c.want)
		}
	}
	if got := Quantile([]float64{7}, 0.25); got != 7 {
		t.Errorf("one value: %v", got)
	}
}
