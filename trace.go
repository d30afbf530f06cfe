package insitu

import (
	"context"
	"sync"
	"time"
)

// Names of the instants of one query that instruments report through
// MarkQuery. A part reports the ones it sees; the journal keeps every mark
// with the query, so a bench's timing can be read after the run.
const (
	MarkWritten       = "written"        // pattern or setpoint handed to the device
	MarkShown         = "shown"          // the device confirmed it (X round trip, vblank, fbdev write, SCPI *OPC?)
	MarkSettled       = "settled"        // the settle time after MarkShown has passed
	MarkExposureStart = "exposure_start" // camera exposure began (the camera's clock where it gives one)
	MarkExposureEnd   = "exposure_end"   // camera exposure ended
	MarkMeasured      = "measured"       // the last reading of the query arrived
)

// Mark is one named instant of a query. Part names the rig part that made
// it ("" for a whole black box).
type Mark struct {
	Part  string
	Event string
	At    time.Time
}

// QueryTrace collects the marks of one query, in the manner of
// net/http/httptrace: the caller attaches a trace to the query's context
// and the instruments below record into it without knowing who listens.
// It is safe for concurrent use, since a rig may drive parts in parallel.
type QueryTrace struct {
	mu    sync.Mutex
	marks []Mark
}

type traceKey struct{}

// WithQueryTrace returns ctx carrying t; marks made under the returned
// context go to t.
func WithQueryTrace(ctx context.Context, t *QueryTrace) context.Context {
	return context.WithValue(ctx, traceKey{}, t)
}

// MarkQuery records that event happened at at for the query ctx belongs
// to. It does nothing when ctx carries no trace, so instruments call it
// unconditionally.
func MarkQuery(ctx context.Context, part, event string, at time.Time) {
	t, _ := ctx.Value(traceKey{}).(*QueryTrace)
	if t == nil {
		return
	}
	t.mu.Lock()
	t.marks = append(t.marks, Mark{Part: part, Event: event, At: at})
	t.mu.Unlock()
}

// Marks returns a copy of the marks recorded so far, in the order they
// were made.
func (t *QueryTrace) Marks() []Mark {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]Mark(nil), t.marks...)
}

// Reset forgets every mark, so one trace can serve successive queries.
func (t *QueryTrace) Reset() {
	t.mu.Lock()
	t.marks = t.marks[:0]
	t.mu.Unlock()
}
