package journal

import (
	"context"
	"database/sql"
	"math"
	"time"
)

// Iteration is one optimizer iteration's summary, what progress plots and
// the run summary read.
type Iteration struct {
	Iteration     int
	Queries       int     // queries so far, this iteration's included
	Best          float64 // best objective so far; NaN if none
	StepObjective float64 // best objective among this iteration's step queries; NaN if none
	TrainLoss     float64 // surrogate training loss of the iteration; NaN if no surrogate
	Controller    time.Duration
	Box           time.Duration // time spent waiting for the black box
	Projected     int           // steps projected back into the box so far
	Time          time.Time     // now when zero
}

// storedIteration is a row of the iterations table as stored (REALs as
// SQLite returns them: NaN and ±Inf of the optional columns as NULL); its
// checksum covers every column.
type storedIteration struct {
	iteration, queries int64
	best, step, loss   sql.NullFloat64
	controller, box    sql.NullFloat64
	projected, time    int64
	sum                sql.NullInt64
}

func (it *storedIteration) checksum() int64 {
	var s summer
	s.int(it.iteration)
	s.int(it.queries)
	s.real(it.best)
	s.real(it.step)
	s.real(it.loss)
	s.real(it.controller)
	s.real(it.box)
	s.int(it.projected)
	s.int(it.time)
	return s.sum()
}

const iterationColumns = "iteration, queries, best, step_objective, train_loss, controller_s, box_s, projected, time"

func scanIteration(rows *sql.Rows, extra ...any) (storedIteration, error) {
	var it storedIteration
	err := rows.Scan(append([]any{&it.iteration, &it.queries, &it.best, &it.step, &it.loss, &it.controller, &it.box, &it.projected, &it.time}, extra...)...)
	return it, err
}

func (it *storedIteration) check() error {
	if !it.sum.Valid {
		return corruptf("iteration %d: stored row has no checksum", it.iteration)
	}
	if it.checksum() != it.sum.Int64 {
		return corruptf("iteration %d: stored record does not match its checksum", it.iteration)
	}
	return nil
}

// nullReal is v as the checksum sees it once stored: NaN and ±Inf are
// written as NULL.
func nullReal(v float64) sql.NullFloat64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return sql.NullFloat64{}
	}
	return sql.NullFloat64{Float64: v, Valid: true}
}

func nullable(v float64) any {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return v
}

// RecordIteration stores it, replacing a record of the same iteration (a
// resumed run recomputes the iterations it replays). It is committed with
// the next write, like Finish.
func (j *Journal) RecordIteration(ctx context.Context, it Iteration) error {
	if it.Time.IsZero() {
		it.Time = time.Now()
	}
	r := storedIteration{
		iteration: int64(it.Iteration), queries: int64(it.Queries),
		best: nullReal(it.Best), step: nullReal(it.StepObjective), loss: nullReal(it.TrainLoss),
		controller: sql.NullFloat64{Float64: it.Controller.Seconds(), Valid: true},
		box:        sql.NullFloat64{Float64: it.Box.Seconds(), Valid: true},
		projected:  int64(it.Projected), time: it.Time.UnixNano(),
	}
	return j.write(ctx, "record iteration", batched, func(ctx context.Context, c *sql.Conn) error {
		_, err := c.ExecContext(ctx, `INSERT OR REPLACE INTO iterations
			(iteration, queries, best, step_objective, train_loss, controller_s, box_s, projected, time, sum)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			r.iteration, r.queries, nullable(it.Best), nullable(it.StepObjective), nullable(it.TrainLoss),
			r.controller.Float64, r.box.Float64, r.projected, r.time, r.checksum())
		return err
	})
}

// Iterations returns the recorded iterations in order, each checked
// against its checksum (version 3 on).
func (j *Journal) Iterations(ctx context.Context) ([]Iteration, error) {
	var out []Iteration
	err := j.read(ctx, "iterations", func(ctx context.Context, c *sql.Conn) error {
		return j.scanIterations(ctx, c, func(r *storedIteration) error {
			orNaN := func(v sql.NullFloat64) float64 {
				if v.Valid {
					return v.Float64
				}
				return math.NaN()
			}
			out = append(out, Iteration{
				Iteration: int(r.iteration), Queries: int(r.queries),
				Best: orNaN(r.best), StepObjective: orNaN(r.step), TrainLoss: orNaN(r.loss),
				Controller: time.Duration(r.controller.Float64 * float64(time.Second)),
				Box:        time.Duration(r.box.Float64 * float64(time.Second)),
				Projected:  int(r.projected), Time: time.Unix(0, r.time),
			})
			return nil
		})
	})
	return out, err
}

// scanIterations calls fn for every iteration record in order, after
// checking it.
func (j *Journal) scanIterations(ctx context.Context, c *sql.Conn, fn func(*storedIteration) error) error {
	sum := "NULL"
	if j.rowSums() {
		sum = "sum"
	}
	rows, err := c.QueryContext(ctx, "SELECT "+iterationColumns+", "+sum+" FROM iterations ORDER BY iteration")
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var s sql.NullInt64
		r, err := scanIteration(rows, &s)
		if err != nil {
			return err
		}
		r.sum = s
		if j.rowSums() {
			if err := r.check(); err != nil {
				return err
			}
		}
		if err := fn(&r); err != nil {
			return err
		}
	}
	return rows.Err()
}
