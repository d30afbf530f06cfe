package journal

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// SaveCheckpoint stores the named parts of a checkpoint (surrogate weights,
// optimizer and RNG states, loop state) in one transaction, committed at
// once together with any pending Finishes, so a checkpoint never refers to
// a result the journal could lose. Only the newest few checkpoints are kept.
func (j *Journal) SaveCheckpoint(ctx context.Context, iteration int, parts map[string][]byte) error {
	for name := range parts {
		if name == "" {
			return j.errorf("save checkpoint", errors.New("part with an empty name"))
		}
	}
	op := fmt.Sprintf("save checkpoint of iteration %d", iteration)
	return j.write(ctx, op, commitNow, func(ctx context.Context, c *sql.Conn) error {
		res, err := c.ExecContext(ctx, "INSERT INTO checkpoints (iteration, created_at) VALUES (?, ?)", iteration, time.Now().UnixNano())
		if err != nil {
			return err
		}
		id, err := res.LastInsertId()
		if err != nil {
			return err
		}
		for name, data := range parts {
			if data == nil {
				data = []byte{} // the column is NOT NULL; an empty part is still a part
			}
			if _, err := c.ExecContext(ctx, "INSERT INTO checkpoint_parts (checkpoint_id, name, data, sum) VALUES (?, ?, ?, ?)",
				id, name, data, checkpointPartChecksum(name, data)); err != nil {
				return fmt.Errorf("part %q: %w", name, err)
			}
		}
		// Parts go with their checkpoint (ON DELETE CASCADE). Freed pages are
		// reused by the next checkpoint, which bounds the file size.
		_, err = c.ExecContext(ctx, "DELETE FROM checkpoints WHERE id NOT IN (SELECT id FROM checkpoints ORDER BY id DESC LIMIT ?)", j.opts.keep)
		return err
	})
}

// LatestCheckpoint returns the most recently saved checkpoint; ok is false
// when there is none. Each part is checked against its checksum.
func (j *Journal) LatestCheckpoint(ctx context.Context) (iteration int, parts map[string][]byte, ok bool, err error) {
	err = j.read(ctx, "latest checkpoint", func(ctx context.Context, c *sql.Conn) error {
		var id int64
		err := c.QueryRowContext(ctx, "SELECT id, iteration FROM checkpoints ORDER BY id DESC LIMIT 1").Scan(&id, &iteration)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		sum := "sum"
		if !j.querySums() {
			sum = "NULL"
		}
		rows, err := c.QueryContext(ctx, "SELECT name, data, "+sum+" FROM checkpoint_parts WHERE checkpoint_id = ?", id)
		if err != nil {
			return err
		}
		defer rows.Close()
		parts = map[string][]byte{}
		for rows.Next() {
			var name string
			var data []byte
			var sum sql.NullInt64
			if err := rows.Scan(&name, &data, &sum); err != nil {
				return err
			}
			if j.querySums() {
				if err := checkPart(id, name, data, sum); err != nil {
					return err
				}
			}
			if data == nil {
				data = []byte{}
			}
			parts[name] = data
		}
		if err := rows.Err(); err != nil {
			return err
		}
		ok = true
		return nil
	})
	if err != nil || !ok {
		return 0, nil, false, err
	}
	return iteration, parts, true, nil
}
