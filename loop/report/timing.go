package report

import (
	"math"
	"slices"
	"time"

	"github.com/insitu-lab/insitu"
	"github.com/insitu-lab/insitu/loop/journal"
)

// Stages are the instants of a query in the order they happen: the loop's
// start and end around the marks its devices report (insitu.MarkQuery). A
// query has the ones its devices mark.
var Stages = []string{
	journal.MarkStart, insitu.MarkWritten, insitu.MarkShown, insitu.MarkSettled,
	insitu.MarkExposureStart, insitu.MarkExposureEnd, insitu.MarkMeasured, journal.MarkEnd,
}

// Interval is the time from one stage of a query to the next one it
// marked, over the queries that marked both.
type Interval struct {
	From, To    string
	Queries     int
	Median, P95 time.Duration
}

// Timing summarizes the journaled timing of queries.
type Timing struct {
	Queries   int        // queries with marks
	Intervals []Interval // consecutive stages, in the order of Stages
	Total     Interval   // start to end: the whole query, guard included
}

// QueryTiming summarizes the marks of qs. In each query a stage is at its
// last mark, whichever part made it (a query has shown its patterns when
// the last SLM has), and each interval runs from a stage to the next stage
// the query marked. Queries without marks (journals older than schema
// version 3) are left out.
func QueryTiming(qs []journal.Query) Timing {
	type key struct{ from, to string }
	spans := map[key][]float64{}
	var order []key
	var t Timing
	at := make([]time.Time, len(Stages))
	for _, q := range qs {
		if len(q.Marks) == 0 {
			continue
		}
		t.Queries++
		clear(at)
		for _, m := range q.Marks {
			if i := slices.Index(Stages, m.Event); i >= 0 && m.At.After(at[i]) {
				at[i] = m.At
			}
		}
		prev := -1
		for i := range Stages {
			if at[i].IsZero() {
				continue
			}
			if prev >= 0 {
				k := key{Stages[prev], Stages[i]}
				if _, ok := spans[k]; !ok {
					order = append(order, k)
				}
				spans[k] = append(spans[k], at[i].Sub(at[prev]).Seconds())
			}
			prev = i
		}
		if first, last := at[0], at[len(at)-1]; !first.IsZero() && !last.IsZero() {
			spans[key{}] = append(spans[key{}], last.Sub(first).Seconds())
		}
	}
	// Intervals in the order of their first stage, then of their second.
	slices.SortStableFunc(order, func(a, b key) int {
		if d := slices.Index(Stages, a.from) - slices.Index(Stages, b.from); d != 0 {
			return d
		}
		return slices.Index(Stages, a.to) - slices.Index(Stages, b.to)
	})
	summary := func(from, to string, v []float64) Interval {
		slices.Sort(v)
		d := func(s float64) time.Duration { return time.Duration(math.Round(s * float64(time.Second))) }
		return Interval{From: from, To: to, Queries: len(v), Median: d(quantile(v, 0.5)), P95: d(quantile(v, 0.95))}
	}
	for _, k := range order {
		t.Intervals = append(t.Intervals, summary(k.from, k.to, spans[k]))
	}
	if v := spans[key{}]; len(v) > 0 {
		t.Total = summary(journal.MarkStart, journal.MarkEnd, v)
	}
	return t
}
