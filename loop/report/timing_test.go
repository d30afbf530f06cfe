package report

import (
	"testing"
	"time"

	"github.com/insitu-lab/insitu"
	"github.com/insitu-lab/insitu/loop/journal"
)

// TestQueryTiming: intervals between consecutive stages, a stage at its
// last part's mark, median and 95th percentile as numpy computes them.
func TestQueryTiming(t *testing.T) {
	t0 := time.Unix(1700000000, 0)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	var qs []journal.Query
	// Query i (i = 1…20): written at 1 ms, two SLMs shown at 1+i and 2+i ms
	// (the stage is the later), settled 300 ms after, measured 5 ms after
	// that, end 1 ms later.
	for i := 1; i <= 20; i++ {
		shown := 2 + i
		qs = append(qs, journal.Query{Marks: []journal.Mark{
			{Event: journal.MarkStart, At: ms(0)},
			{Part: "slm1", Event: insitu.MarkWritten, At: ms(1)},
			{Part: "slm1", Event: insitu.MarkShown, At: ms(shown - 1)},
			{Part: "slm2", Event: insitu.MarkShown, At: ms(shown)},
			{Event: insitu.MarkSettled, At: ms(shown + 300)},
			{Part: "pm", Event: insitu.MarkMeasured, At: ms(shown + 305)},
			{Event: journal.MarkEnd, At: ms(shown + 306)},
		}})
	}
	qs = append(qs, journal.Query{}) // an old query without marks
	tm := QueryTiming(qs)
	if tm.Queries != 20 {
		t.Fatalf("%d queries with marks, want 20", tm.Queries)
	}
	// written→shown is 1+i ms for i = 1…20: 2…21 ms. numpy.percentile
	// (linear): median 11.5 ms, p95 at h = 19·0.95 = 18.05 → 20.05 ms.
	want := []Interval{
		{journal.MarkStart, insitu.MarkWritten, 20, time.Millisecond, time.Millisecond},
		{insitu.MarkWritten, insitu.MarkShown, 20, 11500 * time.Microsecond, 20050 * time.Microsecond},
		{insitu.MarkShown, insitu.MarkSettled, 20, 300 * time.Millisecond, 300 * time.Millisecond},
		{insitu.MarkSettled, insitu.MarkMeasured, 20, 5 * time.Millisecond, 5 * time.Millisecond},
		{insitu.MarkMeasured, journal.MarkEnd, 20, time.Millisecond, time.Millisecond},
	}
	if len(tm.Intervals) != len(want) {
		t.Fatalf("intervals %+v, want %+v", tm.Intervals, want)
	}
	for i, w := range want {
		if tm.Intervals[i] != w {
			t.Errorf("interval %d: %+v, want %+v", i, tm.Intervals[i], w)
		}
	}
	// start→end is 308+i ms: median 318.5 ms, p95 327.05 ms.
	if w := (Interval{journal.MarkStart, journal.MarkEnd, 20, 318500 * time.Microsecond, 327050 * time.Microsecond}); tm.Total != w {
		t.Errorf("total %+v, want %+v", tm.Total, w)
	}
}
