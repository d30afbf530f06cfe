package journal

import (
	"context"
	"database/sql"
	"time"
)

// KindPrediction is the event kind of a prediction record: how far the
// surrogate's prediction, made before a query, was from its measurement.
const KindPrediction = "prediction"

// Prediction records the surrogate's prediction error for the query id
// (in the surrogate's normalized output units). It is written with the
// query's result, in the same transaction under SyncPerIteration, as an
// event of kind KindPrediction whose value is the error.
func (j *Journal) Prediction(ctx context.Context, id int64, e float64) error {
	r := storedEvent{
		time:  time.Now().UnixNano(),
		kind:  KindPrediction,
		value: sql.NullFloat64{Float64: e, Valid: true},
		query: sql.NullInt64{Int64: id, Valid: true},
	}
	return j.write(ctx, "prediction", batched, func(ctx context.Context, c *sql.Conn) error {
		return insertEvent(ctx, c, r)
	})
}
