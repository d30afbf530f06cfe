package journal

import (
	"context"
	"database/sql"
	"errors"
	"math"
	"time"
)

// EventRecord is a safety event: a rejected or clamped query, a slew or rate
// limit, a watchdog, an output out of range, an interlock. It mirrors the
// guard's events without importing package safety; the caller converts.
type EventRecord struct {
	Time    time.Time // now when zero
	Kind    string    // e.g. "bounds", "clamp", "slew", "watchdog", "output"
	Detail  string    // human-readable
	Name    string    // input coordinate or output concerned, "" if none
	Value   float64   // requested or measured value; NaN if none
	QueryID int64     // the journaled query concerned, 0 if none
}

// storedEvent is a row of the events table as stored; its checksum covers
// every column but the id.
type storedEvent struct {
	id     int64
	time   int64
	kind   string
	detail string
	name   sql.NullString
	value  sql.NullFloat64
	query  sql.NullInt64
	sum    sql.NullInt64
}

func (e *storedEvent) checksum() int64 {
	var s summer
	s.int(e.time)
	s.text(e.kind)
	s.text(e.detail)
	s.nullText(e.name)
	s.real(e.value)
	s.nullInt(e.query)
	return s.sum()
}

// eventColumns is what scanEvent reads, in its order; the sum is read
// separately (eventSumColumn) because a version 2 journal has none.
const eventColumns = "id, time, kind, detail, name, value, query_id"

func scanEvent(rows *sql.Rows, extra ...any) (storedEvent, error) {
	var e storedEvent
	err := rows.Scan(append([]any{&e.id, &e.time, &e.kind, &e.detail, &e.name, &e.value, &e.query}, extra...)...)
	return e, err
}

// check compares the row with its checksum (version 3 on).
func (e *storedEvent) check() error {
	if !e.sum.Valid {
		return corruptf("event %d: stored row has no checksum", e.id)
	}
	if e.checksum() != e.sum.Int64 {
		return corruptf("event %d: stored event (time, kind, detail, name, value, query) does not match its checksum", e.id)
	}
	return nil
}

func (e *storedEvent) record() EventRecord {
	r := EventRecord{Time: time.Unix(0, e.time), Kind: e.kind, Detail: e.detail, Name: e.name.String, Value: math.NaN(), QueryID: e.query.Int64}
	if e.value.Valid {
		r.Value = e.value.Float64
	}
	return r
}

// insertEvent writes e with its checksum. NaN is stored as NULL, as the
// checksum assumes.
func insertEvent(ctx context.Context, c *sql.Conn, e storedEvent) error {
	var name, value, qid any
	if e.name.Valid {
		name = e.name.String
	}
	if e.value.Valid && !math.IsNaN(e.value.Float64) {
		value = e.value.Float64
	} else {
		e.value = sql.NullFloat64{}
	}
	if e.query.Valid {
		qid = e.query.Int64
	}
	_, err := c.ExecContext(ctx, "INSERT INTO events (time, kind, detail, name, value, query_id, sum) VALUES (?, ?, ?, ?, ?, ?, ?)",
		e.time, e.kind, e.detail, name, value, qid, e.checksum())
	return err
}

// Event records a safety event, committed at once. Like SetStatus it is
// tried even after ErrRolledBack: the shutdown path logs why the run ended.
func (j *Journal) Event(ctx context.Context, e EventRecord) error {
	if e.Kind == "" {
		return j.errorf("event", errors.New("event without a kind"))
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	r := storedEvent{
		time:   e.Time.UnixNano(),
		kind:   e.Kind,
		detail: e.Detail,
		name:   sql.NullString{String: e.Name, Valid: e.Name != ""},
		value:  sql.NullFloat64{Float64: e.Value, Valid: !math.IsNaN(e.Value)},
		query:  sql.NullInt64{Int64: e.QueryID, Valid: e.QueryID != 0},
	}
	return j.write(ctx, "event "+e.Kind, evenIfLost, func(ctx context.Context, c *sql.Conn) error {
		return insertEvent(ctx, c, r)
	})
}

// Events returns every safety event in the order recorded, each checked
// against its checksum (version 3 on).
func (j *Journal) Events(ctx context.Context) ([]EventRecord, error) {
	var es []EventRecord
	err := j.read(ctx, "events", func(ctx context.Context, c *sql.Conn) error {
		return j.scanEvents(ctx, c, func(e *storedEvent) error {
			es = append(es, e.record())
			return nil
		})
	})
	return es, err
}

// scanEvents calls fn for every event in id order, after checking it.
func (j *Journal) scanEvents(ctx context.Context, c *sql.Conn, fn func(*storedEvent) error) error {
	sum := "NULL"
	if j.rowSums() {
		sum = "sum"
	}
	rows, err := c.QueryContext(ctx, "SELECT "+eventColumns+", "+sum+" FROM events ORDER BY id")
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var s sql.NullInt64
		e, err := scanEvent(rows, &s)
		if err != nil {
			return err
		}
		e.sum = s
		if j.rowSums() {
			if err := e.check(); err != nil {
				return err
			}
		}
		if err := fn(&e); err != nil {
			return err
		}
	}
	return rows.Err()
}
