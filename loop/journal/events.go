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

// Event records a safety event, committed at once. Like SetStatus it is
// tried even after ErrRolledBack: the shutdown path logs why the run ended.
func (j *Journal) Event(ctx context.Context, e EventRecord) error {
	if e.Kind == "" {
		return j.errorf("event", errors.New("event without a kind"))
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	var name, value, qid any
	if e.Name != "" {
		name = e.Name
	}
	if !math.IsNaN(e.Value) {
		value = e.Value
	}
	if e.QueryID != 0 {
		qid = e.QueryID
	}
	return j.write(ctx, "event "+e.Kind, evenIfLost, func(ctx context.Context, c *sql.Conn) error {
		_, err := c.ExecContext(ctx, "INSERT INTO events (time, kind, detail, name, value, query_id) VALUES (?, ?, ?, ?, ?, ?)",
			e.Time.UnixNano(), e.Kind, e.Detail, name, value, qid)
		return err
	})
}

// Events returns every safety event in the order recorded.
func (j *Journal) Events(ctx context.Context) ([]EventRecord, error) {
	var es []EventRecord
	err := j.read(ctx, "events", func(ctx context.Context, c *sql.Conn) error {
		rows, err := c.QueryContext(ctx, "SELECT time, kind, detail, name, value, query_id FROM events ORDER BY id")
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				e     EventRecord
				t     int64
				name  sql.NullString
				value sql.NullFloat64
				qid   sql.NullInt64
			)
			if err := rows.Scan(&t, &e.Kind, &e.Detail, &name, &value, &qid); err != nil {
				return err
			}
			e.Time, e.Name, e.Value, e.QueryID = time.Unix(0, t), name.String, math.NaN(), qid.Int64
			if value.Valid {
				e.Value = value.Float64
			}
			es = append(es, e)
		}
		return rows.Err()
	})
	return es, err
}
