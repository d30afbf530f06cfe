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
	StatusFailed     QueryStatus = "failed"     // the device or the guard returned an error
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
	Key        string
	X          []float64
	Y          []float64 // nil while started, and when a failure had no output
	Objective  float64   // NaN while unknown
	Err        string    // the failure, for StatusFailed
	StartedAt  time.Time
	FinishedAt time.Time // zero while started
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
			"INSERT INTO queries (iteration, slot, role, status, key, x, started_at) VALUES (?, ?, ?, ?, ?, ?, ?)")
		if err != nil {
			return err
		}
		defer insert.Close()
		for _, q := range qs {
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
			res, err := insert.ExecContext(ctx, q.Iteration, q.Slot, string(q.Role), string(StatusStarted), key, EncodeFloats(q.X), time.Now().UnixNano())
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
	status := StatusDone
	if err != nil {
		status = StatusFailed
	}
	return j.finish(ctx, "finish", id, status, y, objective, err)
}

// Remeasure records the result of measuring again a query found started on
// resume: status remeasured (or failed if err is set), the original
// started_at kept. Durability is as for Finish.
func (j *Journal) Remeasure(ctx context.Context, id int64, y []float64, objective float64, err error) error {
	status := StatusRemeasured
	if err != nil {
		status = StatusFailed
	}
	return j.finish(ctx, "remeasure", id, status, y, objective, err)
}

func (j *Journal) finish(ctx context.Context, op string, id int64, status QueryStatus, y []float64, objective float64, qerr error) error {
	if qerr == nil && y == nil {
		return j.errorf(op+fmt.Sprintf(" query %d", id), errors.New("a result without y: pass an error or the output"))
	}
	var yb, obj, msg any
	if y != nil {
		yb = EncodeFloats(y)
	}
	if !math.IsNaN(objective) { // SQLite stores NaN as NULL anyway; say so explicitly
		obj = objective
	}
	if qerr != nil {
		msg = qerr.Error()
	}
	mode := commitNow
	if j.opts.sync == SyncPerIteration {
		mode = batched
	}
	return j.write(ctx, fmt.Sprintf("%s query %d", op, id), mode, func(ctx context.Context, c *sql.Conn) error {
		res, err := c.ExecContext(ctx,
			"UPDATE queries SET status = ?, y = ?, objective = ?, error = ?, finished_at = ? WHERE id = ? AND status = ?",
			string(status), yb, obj, msg, time.Now().UnixNano(), id, string(StatusStarted))
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
		qs, err := selectQueries(ctx, c, "WHERE key = ?", key)
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
		qs, err := selectQueries(ctx, c, "WHERE id = ?", id)
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
		qs, err = selectQueries(ctx, c, clause, args...)
		return err
	})
	return qs, err
}

// Dataset returns the inputs and outputs of every done or remeasured query,
// in id order: what the surrogate trains on. It reads only x and y, because
// the loop calls it every iteration.
func (j *Journal) Dataset(ctx context.Context) (xs, ys [][]float64, err error) {
	err = j.read(ctx, "dataset", func(ctx context.Context, c *sql.Conn) error {
		rows, err := c.QueryContext(ctx, "SELECT id, x, y FROM queries WHERE status IN (?, ?) ORDER BY id",
			string(StatusDone), string(StatusRemeasured))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id int64
			var xb, yb []byte
			if err := rows.Scan(&id, &xb, &yb); err != nil {
				return err
			}
			x, err := DecodeFloats(xb)
			if err != nil {
				return fmt.Errorf("query %d: x: %w", id, err)
			}
			y, err := DecodeFloats(yb)
			if err != nil {
				return fmt.Errorf("query %d: y: %w", id, err)
			}
			xs, ys = append(xs, x), append(ys, y)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, nil, err
	}
	return xs, ys, nil
}

func selectQueries(ctx context.Context, c *sql.Conn, clause string, args ...any) ([]Query, error) {
	rows, err := c.QueryContext(ctx, `SELECT id, iteration, slot, role, status, key, x, y, y IS NOT NULL, objective, error, started_at, finished_at
		FROM queries `+clause+` ORDER BY id`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var qs []Query
	for rows.Next() {
		var (
			q         Query
			role, st  string
			key, msg  sql.NullString
			xb, yb    []byte
			obj       sql.NullFloat64
			start     int64
			fin       sql.NullInt64
			yNotNull  bool // a zero-length BLOB may scan as nil
			decodeErr error
		)
		if err := rows.Scan(&q.ID, &q.Iteration, &q.Slot, &role, &st, &key, &xb, &yb, &yNotNull, &obj, &msg, &start, &fin); err != nil {
			return nil, err
		}
		q.Role, q.Status, q.Key, q.Err = Role(role), QueryStatus(st), key.String, msg.String
		if q.X, decodeErr = DecodeFloats(xb); decodeErr != nil {
			return nil, fmt.Errorf("query %d: x: %w", q.ID, decodeErr)
		}
		if yNotNull {
			if q.Y, decodeErr = DecodeFloats(yb); decodeErr != nil {
				return nil, fmt.Errorf("query %d: y: %w", q.ID, decodeErr)
			}
		}
		q.Objective = math.NaN()
		if obj.Valid {
			q.Objective = obj.Float64
		}
		q.StartedAt = time.Unix(0, start)
		if fin.Valid {
			q.FinishedAt = time.Unix(0, fin.Int64)
		}
		qs = append(qs, q)
	}
	return qs, rows.Err()
}
