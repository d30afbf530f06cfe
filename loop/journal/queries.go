package journal

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// Role says why a query was made.
type Role string

const (
	RoleInit     Role = "init"     // initial design
	RoleStep     Role = "step"     // the point an optimizer step chose
	RoleLocal    Role = "local"    // a local sample around it, for the surrogate
	RoleBaseline Role = "baseline" // a baseline method's query
	RoleEval     Role = "eval"     // an evaluation, not used for training decisions
)

// Valid reports whether r is one of the Role constants.
func (r Role) Valid() bool {
	switch r {
	case RoleInit, RoleStep, RoleLocal, RoleBaseline, RoleEval:
		return true
	}
	return false
}

// QueryStatus is where a query is in its life.
type QueryStatus string

const (
	StatusStarted    QueryStatus = "started"    // intent committed, no result (yet, or lost in a crash)
	StatusDone       QueryStatus = "done"       // result recorded
	StatusFailed     QueryStatus = "failed"     // the device or the guard returned an error (Query.Rejected tells which)
	StatusRemeasured QueryStatus = "remeasured" // started before a crash, measured again on resume
)

// Valid reports whether s is one of the QueryStatus constants.
func (s QueryStatus) Valid() bool {
	switch s {
	case StatusStarted, StatusDone, StatusFailed, StatusRemeasured:
		return true
	}
	return false
}

// NoSlot is the Slot of a query that is not one of an iteration's selected
// points.
const NoSlot = -1

// Intent is a query about to be made.
type Intent struct {
	Iteration int
	Slot      int // which selected point of the iteration, or NoSlot
	Role      Role
	// Key names the query so that a resumed loop can find it, e.g.
	// "iter 12 slot 3 step". Optional; unique within a journal when set.
	Key string
	X   []float64
}

// Query is one journaled query.
type Query struct {
	ID         int64 // monotonic in the order of Begin
	Iteration  int
	Slot       int
	Role       Role
	Status     QueryStatus
	Remeasured bool // measured again on resume (Remeasure), whatever the outcome
	Key        string
	X          []float64
	Y          []float64 // nil while started, and when a failure had no output
	Objective  float64   // NaN while unknown
	Err        string    // the failure, for StatusFailed
	// Rejected is set on a failed query that the guard refused before any
	// device was touched (a non-finite or out-of-bounds input, a step over
	// the slew limit, the budget spent): the refusal is its result, and a
	// resume does not try it again.
	Rejected   bool
	StartedAt  time.Time // when Begin committed the intent
	FinishedAt time.Time // when its outcome was recorded; zero while started
	// Marks are the instants the black box reported while it answered
	// (insitu.MarkQuery), with the loop's own MarkStart and MarkEnd, in the
	// order they were made; nil in journals older than schema version 3.
	Marks []Mark
}

// Mark is one named instant of a query: Event is one of insitu's Mark*
// names (written, shown, settled, exposure_start, exposure_end, measured)
// or the loop's start and end; Part the rig part that made it, "" for the
// whole black box.
type Mark struct {
	Part  string
	Event string
	At    time.Time
}

// Outcome is what became of a query: its output and objective, or the
// error that stopped it, and the marks of its timing.
type Outcome struct {
	Y         []float64 // nil when the query failed without an output
	Objective float64   // NaN when unknown
	Err       error     // the failure; nil for a result
	Rejected  bool      // Err is the guard's refusal, made before any device was touched
	Marks     []Mark
}

// Begin commits the intent to make query q (status started) and returns its
// id. Call it before the device is touched. A key already in the journal is
// refused, naming the query that holds it: use Lookup on resume.
func (j *Journal) Begin(ctx context.Context, q Intent) (int64, error) {
	ids, err := j.begin(ctx, "begin", []Intent{q})
	if err != nil {
		return 0, err
	}
	return ids[0], nil
}

// BeginBatch commits the intents of several queries in one transaction, for
// an iteration that measures its points together; ids are in order of qs.
// Either all are committed or none is.
func (j *Journal) BeginBatch(ctx context.Context, qs []Intent) ([]int64, error) {
	return j.begin(ctx, "begin batch", qs)
}

func (j *Journal) begin(ctx context.Context, op string, qs []Intent) ([]int64, error) {
	for i, q := range qs {
		if !q.Role.Valid() {
			return nil, j.errorf(op, fmt.Errorf("intent %d: unknown role %q", i, q.Role))
		}
		if q.Slot < NoSlot {
			return nil, j.errorf(op, fmt.Errorf("intent %d: slot %d, want >= -1", i, q.Slot))
		}
	}
	// A cancelled loop starts no new query; once writing, Begin completes.
	if err := ctx.Err(); err != nil {
		return nil, j.errorf(op, err)
	}
	ids := make([]int64, 0, len(qs))
	err := j.write(ctx, op, commitNow, func(ctx context.Context, c *sql.Conn) error {
		find, err := c.PrepareContext(ctx, "SELECT id, status FROM queries WHERE key = ?")
		if err != nil {
			return err
		}
		defer find.Close()
		insert, err := c.PrepareContext(ctx,
			`INSERT INTO queries (iteration, slot, role, status, key, x, started_at, remeasured, intent_sum, result_sum)
			VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?)`)
		if err != nil {
			return err
		}
		defer insert.Close()
		for _, q := range qs {
			r := storedQuery{
				iteration: int64(q.Iteration),
				slot:      int64(q.Slot),
				role:      string(q.Role),
				status:    string(StatusStarted),
				key:       sql.NullString{String: q.Key, Valid: q.Key != ""},
				x:         EncodeFloats(q.X),
				startedAt: time.Now().UnixNano(),
			}
			var key any
			if q.Key != "" {
				// UNIQUE would refuse it too; this names the query that holds the key.
				var id int64
				var st string
				err := find.QueryRowContext(ctx, q.Key).Scan(&id, &st)
				if err == nil {
					return fmt.Errorf("key %q is already query %d (%s): look it up instead of querying again", q.Key, id, st)
				}
				if !errors.Is(err, sql.ErrNoRows) {
					return err
				}
				key = q.Key
			}
			res, err := insert.ExecContext(ctx, r.iteration, r.slot, r.role, r.status, key, r.x, r.startedAt,
				r.intentChecksum(), r.resultChecksum())
			if err != nil {
				return err
			}
			id, err := res.LastInsertId()
			if err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return ids, nil
}

// Finish records the result of query id: y and objective (NaN when not
// known), or the error that stopped it (status failed; y may be nil). It is
// committed now under SyncEvery, or by the next Sync under SyncPerIteration.
// Only a started query can be finished.
func (j *Journal) Finish(ctx context.Context, id int64, y []float64, objective float64, err error) error {
	return j.FinishOutcome(ctx, id, Outcome{Y: y, Objective: objective, Err: err})
}

// FinishOutcome is Finish with the whole outcome: a refusal of the guard
// (Rejected) and the query's marks.
func (j *Journal) FinishOutcome(ctx context.Context, id int64, o Outcome) error {
	status := StatusDone
	if o.Err != nil {
		status = StatusFailed
	}
	return j.finish(ctx, "finish", id, status, false, o)
}

// Remeasure records the result of measuring again a query found started on
// resume: status remeasured (or failed if err is set), the original
// started_at kept, and the query marked remeasured either way (see
// QueryCounts). Durability is as for Finish.
func (j *Journal) Remeasure(ctx context.Context, id int64, y []float64, objective float64, err error) error {
	return j.RemeasureOutcome(ctx, id, Outcome{Y: y, Objective: objective, Err: err})
}

// RemeasureOutcome is Remeasure with the whole outcome.
func (j *Journal) RemeasureOutcome(ctx context.Context, id int64, o Outcome) error {
	status := StatusRemeasured
	if o.Err != nil {
		status = StatusFailed
	}
	return j.finish(ctx, "remeasure", id, status, true, o)
}

func (j *Journal) finish(ctx context.Context, op string, id int64, status QueryStatus, remeasure bool, o Outcome) error {
	if o.Err == nil && o.Y == nil {
		return j.errorf(op+fmt.Sprintf(" query %d", id), errors.New("a result without y: pass an error or the output"))
	}
	if o.Rejected && o.Err == nil {
		return j.errorf(op+fmt.Sprintf(" query %d", id), errors.New("a rejection without the guard's error"))
	}
	// r is the row's result as SQLite will return it, which its checksum
	// covers: a NaN objective is stored as NULL, -0 as +0.
	r := storedQuery{status: string(status), remeasured: remeasure, rejected: o.Rejected,
		finishedAt: sql.NullInt64{Int64: time.Now().UnixNano(), Valid: true}}
	var yb, obj, msg, marks any
	if o.Y != nil {
		r.y, r.yValid = EncodeFloats(o.Y), true
		yb = r.y
	}
	objective := o.Objective
	if !math.IsNaN(objective) {
		if objective == 0 {
			objective = 0
		}
		r.objective = sql.NullFloat64{Float64: objective, Valid: true}
		obj = objective
	}
	if o.Err != nil {
		r.err = sql.NullString{String: o.Err.Error(), Valid: true}
		msg = r.err.String
	}
	if len(o.Marks) > 0 {
		r.marks = sql.NullString{String: encodeMarks(o.Marks), Valid: true}
		marks = r.marks.String
	}
	mode := commitNow
	if j.opts.sync == SyncPerIteration {
		mode = batched
	}
	return j.write(ctx, fmt.Sprintf("%s query %d", op, id), mode, func(ctx context.Context, c *sql.Conn) error {
		res, err := c.ExecContext(ctx,
			`UPDATE queries SET status = ?, remeasured = ?, y = ?, objective = ?, error = ?, finished_at = ?, rejected = ?, marks = ?, result_sum = ?
			WHERE id = ? AND status = ?`,
			r.status, r.remeasured, yb, obj, msg, r.finishedAt.Int64, r.rejected, marks, r.resultChecksum(), id, string(StatusStarted))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 1 {
			return nil
		}
		var st string
		err = c.QueryRowContext(ctx, "SELECT status FROM queries WHERE id = ?", id).Scan(&st)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		return fmt.Errorf("query is %s, not started", st)
	})
}

// Lookup finds the query with key. ok is false when there is none; the
// query's Status says whether it is done, failed, or started but not
// finished (then measure again and call Remeasure).
func (j *Journal) Lookup(ctx context.Context, key string) (q Query, ok bool, err error) {
	err = j.read(ctx, fmt.Sprintf("lookup %q", key), func(ctx context.Context, c *sql.Conn) error {
		qs, err := j.selectQueries(ctx, c, "WHERE key = ?", key)
		if err != nil {
			return err
		}
		if len(qs) == 1 {
			q, ok = qs[0], true
		}
		return nil
	})
	return q, ok, err
}

// Get returns the query with id.
func (j *Journal) Get(ctx context.Context, id int64) (Query, error) {
	var q Query
	err := j.read(ctx, fmt.Sprintf("get query %d", id), func(ctx context.Context, c *sql.Conn) error {
		qs, err := j.selectQueries(ctx, c, "WHERE id = ?", id)
		if err != nil {
			return err
		}
		if len(qs) == 0 {
			return ErrNotFound
		}
		q = qs[0]
		return nil
	})
	return q, err
}

// Queries returns every query in id order.
func (j *Journal) Queries(ctx context.Context) ([]Query, error) {
	return j.QueriesWhere(ctx, Filter{})
}

// Filter selects queries; an empty list matches everything.
type Filter struct {
	Statuses []QueryStatus
	Roles    []Role
}

// QueriesWhere returns the queries that match f, in id order.
func (j *Journal) QueriesWhere(ctx context.Context, f Filter) ([]Query, error) {
	var where []string
	var args []any
	in := func(col string, vals []string) {
		if len(vals) == 0 {
			return
		}
		where = append(where, col+" IN (?"+strings.Repeat(", ?", len(vals)-1)+")")
		for _, v := range vals {
			args = append(args, v)
		}
	}
	st := make([]string, len(f.Statuses))
	for i, s := range f.Statuses {
		st[i] = string(s)
	}
	ro := make([]string, len(f.Roles))
	for i, r := range f.Roles {
		ro[i] = string(r)
	}
	in("status", st)
	in("role", ro)
	clause := ""
	if len(where) > 0 {
		clause = "WHERE " + strings.Join(where, " AND ")
	}
	var qs []Query
	err := j.read(ctx, "queries", func(ctx context.Context, c *sql.Conn) error {
		var err error
		qs, err = j.selectQueries(ctx, c, clause, args...)
		return err
	})
	return qs, err
}

// Dataset returns the inputs and outputs of every done or remeasured query,
// in id order: what the surrogate trains on. Each row is checked against its
// checksums, so a damaged result is never trained on.
func (j *Journal) Dataset(ctx context.Context) (xs, ys [][]float64, err error) {
	err = j.read(ctx, "dataset", func(ctx context.Context, c *sql.Conn) error {
		// Nearly every query is done: reading the table in id order beats
		// the status index (+status), whose rows would have to be sorted,
		// BLOBs and all.
		return j.scanQueries(ctx, c, "WHERE +status IN (?, ?)", []any{string(StatusDone), string(StatusRemeasured)}, func(r *storedQuery) error {
			x, err := DecodeFloats(r.x)
			if err != nil {
				return fmt.Errorf("query %d: x: %w", r.id, err)
			}
			y, err := DecodeFloats(r.y)
			if err != nil {
				return fmt.Errorf("query %d: y: %w", r.id, err)
			}
			xs, ys = append(xs, x), append(ys, y)
			return nil
		})
	})
	if err != nil {
		return nil, nil, err
	}
	return xs, ys, nil
}

// QueryCounts counts the device queries the journal holds, cheaply (from
// indexes). begun is every query: its intent is committed before the device
// is touched. remeasured is the queries measured again on resume (Remeasure),
// whether that measurement succeeded or failed. Their sum is the number of
// device queries of the run across resumes, but for a remeasure that a crash
// lost before it was synced: its query reads back as started and is
// remeasured, and counted, once more.
func (j *Journal) QueryCounts(ctx context.Context) (begun, remeasured int, err error) {
	err = j.read(ctx, "query counts", func(ctx context.Context, c *sql.Conn) error {
		again := "SELECT COUNT(*) FROM queries WHERE remeasured = 1"
		if !j.querySums() { // version 1: a failed remeasure is not marked
			again = "SELECT COUNT(*) FROM queries WHERE status = 'remeasured'"
		}
		return c.QueryRowContext(ctx, "SELECT (SELECT COUNT(*) FROM queries), ("+again+")").Scan(&begun, &remeasured)
	})
	return begun, remeasured, err
}

// scanQueries calls fn for each row of queries that clause selects, in id
// order, after checking it against its checksums.
func (j *Journal) scanQueries(ctx context.Context, c *sql.Conn, clause string, args []any, fn func(*storedQuery) error) error {
	rows, err := c.QueryContext(ctx, "SELECT "+j.queryColumns()+" FROM queries "+clause+" ORDER BY id", args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		r, err := scanQuery(rows)
		if err != nil {
			return err
		}
		if err := r.check(j.querySums()); err != nil {
			return err
		}
		if err := fn(&r); err != nil {
			return err
		}
	}
	return rows.Err()
}

func (j *Journal) selectQueries(ctx context.Context, c *sql.Conn, clause string, args ...any) ([]Query, error) {
	var qs []Query
	err := j.scanQueries(ctx, c, clause, args, func(r *storedQuery) error {
		q := Query{
			ID:         r.id,
			Iteration:  int(r.iteration),
			Slot:       int(r.slot),
			Role:       Role(r.role),
			Status:     QueryStatus(r.status),
			Remeasured: r.remeasured,
			Key:        r.key.String,
			Err:        r.err.String,
			Rejected:   r.rejected,
			Objective:  math.NaN(),
			StartedAt:  time.Unix(0, r.startedAt),
		}
		var err error
		if r.marks.Valid {
			if q.Marks, err = decodeMarks(r.marks.String); err != nil {
				return fmt.Errorf("query %d: marks: %w", q.ID, err)
			}
		}
		if q.X, err = DecodeFloats(r.x); err != nil {
			return fmt.Errorf("query %d: x: %w", q.ID, err)
		}
		if r.yValid {
			if q.Y, err = DecodeFloats(r.y); err != nil {
				return fmt.Errorf("query %d: y: %w", q.ID, err)
			}
		}
		if r.objective.Valid {
			q.Objective = r.objective.Float64
		}
		if r.finishedAt.Valid {
			q.FinishedAt = time.Unix(0, r.finishedAt.Int64)
		}
		qs = append(qs, q)
		return nil
	})
	return qs, err
}
