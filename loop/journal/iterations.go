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
	return j.write(ctx, "record iteration", batched, func(ctx context.Context, c *sql.Conn) error {
		_, err := c.ExecContext(ctx, `INSERT OR REPLACE INTO iterations
			(iteration, queries, best, step_objective, train_loss, controller_s, box_s, projected, time)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			it.Iteration, it.Queries, nullable(it.Best), nullable(it.StepObjective), nullable(it.TrainLoss),
			it.Controller.Seconds(), it.Box.Seconds(), it.Projected, it.Time.UnixNano())
		return err
	})
}

// Iterations returns the recorded iterations in order.
func (j *Journal) Iterations(ctx context.Context) ([]Iteration, error) {
	var out []Iteration
	err := j.read(ctx, "iterations", func(ctx context.Context, c *sql.Conn) error {
		rows, err := c.QueryContext(ctx, `SELECT iteration, queries, best, step_objective, train_loss,
			controller_s, box_s, projected, time FROM iterations ORDER BY iteration`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				it         Iteration
				best, step sql.NullFloat64
				loss       sql.NullFloat64
				ctrl, box  float64
				unixNano   int64
			)
			if err := rows.Scan(&it.Iteration, &it.Queries, &best, &step, &loss, &ctrl, &box, &it.Projected, &unixNano); err != nil {
				return err
			}
			orNaN := func(v sql.NullFloat64) float64 {
				if v.Valid {
					return v.Float64
				}
				return math.NaN()
			}
			it.Best, it.StepObjective, it.TrainLoss = orNaN(best), orNaN(step), orNaN(loss)
			it.Controller = time.Duration(ctrl * float64(time.Second))
			it.Box = time.Duration(box * float64(time.Second))
			it.Time = time.Unix(0, unixNano)
			out = append(out, it)
		}
		return rows.Err()
	})
	return out, err
}
