package journal

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// schemaV1 is the layout of version 1; schemaV2 turns it into version 2.
// A new journal runs both, so that a new journal and a migrated one have
// the same layout. The CHECK constraints repeat the Go enums so that a file
// written by a buggy or foreign tool fails loudly instead of confusing a
// resume.
const schemaV1 = `
CREATE TABLE meta (
	key   TEXT PRIMARY KEY,
	value NOT NULL
);
CREATE TABLE queries (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	iteration   INTEGER NOT NULL,
	slot        INTEGER NOT NULL CHECK (slot >= -1),
	role        TEXT NOT NULL CHECK (role IN ('init', 'step', 'local', 'baseline', 'eval')),
	status      TEXT NOT NULL CHECK (status IN ('started', 'done', 'failed', 'remeasured')),
	key         TEXT UNIQUE,
	x           BLOB NOT NULL,
	y           BLOB,
	objective   REAL,
	error       TEXT,
	started_at  INTEGER NOT NULL,
	finished_at INTEGER
);
CREATE INDEX queries_status ON queries (status, role);
CREATE TABLE events (
	id       INTEGER PRIMARY KEY AUTOINCREMENT,
	time     INTEGER NOT NULL,
	kind     TEXT NOT NULL,
	detail   TEXT NOT NULL,
	name     TEXT,
	value    REAL,
	query_id INTEGER
);
CREATE TABLE iterations (
	iteration      INTEGER PRIMARY KEY,
	queries        INTEGER NOT NULL,
	best           REAL,
	step_objective REAL,
	train_loss     REAL,
	controller_s   REAL NOT NULL,
	box_s          REAL NOT NULL,
	projected      INTEGER NOT NULL,
	time           INTEGER NOT NULL
);
CREATE TABLE checkpoints (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	iteration  INTEGER NOT NULL,
	created_at INTEGER NOT NULL
);
CREATE TABLE checkpoint_parts (
	checkpoint_id INTEGER NOT NULL REFERENCES checkpoints (id) ON DELETE CASCADE,
	name          TEXT NOT NULL,
	data          BLOB NOT NULL,
	PRIMARY KEY (checkpoint_id, name)
);
`

// schemaV2 adds the checksums Verify checks (see storedQuery and
// checkpointPartChecksum) and the remeasured flag, which is set by Remeasure
// whatever its outcome, so that a failed remeasure still counts as a device
// query (QueryCounts). The checksum columns are nullable only because ALTER
// TABLE cannot add them otherwise; every row of a version 2 journal has them.
// The partial index makes counting remeasured queries cheap: the columns
// come after the BLOBs, which can span many pages.
const schemaV2 = `
ALTER TABLE queries ADD COLUMN remeasured INTEGER NOT NULL DEFAULT 0 CHECK (remeasured IN (0, 1));
ALTER TABLE queries ADD COLUMN intent_sum INTEGER;
ALTER TABLE queries ADD COLUMN result_sum INTEGER;
ALTER TABLE checkpoint_parts ADD COLUMN sum INTEGER;
CREATE INDEX queries_remeasured ON queries (remeasured) WHERE remeasured = 1;
`

// Keys of the meta table.
const (
	keySchema    = "schema_version"
	keyVersion   = "insitu_version"
	keyMethod    = "method"
	keyKind      = "kind"
	keySeed      = "seed"
	keyDirection = "direction"
	keyCreated   = "created"
	keyStatus    = "status"
	keyConfig    = "config"
)

func (j *Journal) initSchema(m Meta, configYAML []byte) error {
	ctx := context.Background()
	return j.write(ctx, "create", commitNow, func(ctx context.Context, c *sql.Conn) error {
		if _, err := c.ExecContext(ctx, schemaV1+schemaV2); err != nil {
			return err
		}
		kv := [][2]any{
			{keySchema, strconv.Itoa(SchemaVersion)},
			{keyVersion, m.Version},
			{keyMethod, m.Method},
			{keyKind, m.Kind},
			{keySeed, strconv.FormatUint(m.Seed, 10)}, // text: a uint64 does not fit SQLite's INTEGER
			{keyDirection, string(m.Direction)},
			{keyCreated, strconv.FormatInt(m.Created.UnixNano(), 10)},
			{keyStatus, string(m.Status)},
			{keyConfig, string(configYAML)},
		}
		for _, p := range kv {
			if _, err := c.ExecContext(ctx, "INSERT INTO meta (key, value) VALUES (?, ?)", p[0], p[1]); err != nil {
				return err
			}
		}
		return nil
	})
}

// checkSchema returns the journal's schema version, 1 or 2.
func (j *Journal) checkSchema() (int, error) {
	var v string
	err := j.conn.QueryRowContext(context.Background(), "SELECT value FROM meta WHERE key = ?", keySchema).Scan(&v)
	if err != nil {
		if errors.Is(err, sql.ErrNoRows) || strings.Contains(err.Error(), "no such table") {
			return 0, fmt.Errorf("%w: not an insitu journal (no schema version)", ErrSchema)
		}
		return 0, err
	}
	switch v {
	case "1":
		return 1, nil
	case strconv.Itoa(SchemaVersion):
		return SchemaVersion, nil
	}
	return 0, fmt.Errorf("%w: schema version %s, this build reads versions 1 to %d", ErrSchema, v, SchemaVersion)
}

// migrate turns a version 1 journal into version 2 in one transaction:
// the new columns, the remeasured flag of remeasured queries (a failed
// remeasure cannot be told from a failed query in version 1), and every
// row's checksums. The caller has checked the file's structure first; the
// checksums can vouch for the data only from now on.
func (j *Journal) migrate(ctx context.Context) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	err := j.writeLocked(ctx, false, func(ctx context.Context, c *sql.Conn) error {
		if _, err := c.ExecContext(ctx, schemaV2); err != nil {
			return err
		}
		if _, err := c.ExecContext(ctx, "UPDATE queries SET remeasured = 1 WHERE status = ?", string(StatusRemeasured)); err != nil {
			return err
		}
		type sums struct{ id, intent, result int64 }
		var qs []sums
		j.sums = true // the columns exist now
		rows, err := c.QueryContext(ctx, "SELECT "+j.queryColumns()+" FROM queries ORDER BY id")
		if err != nil {
			return err
		}
		for rows.Next() {
			r, err := scanQuery(rows)
			if err != nil {
				rows.Close()
				return err
			}
			qs = append(qs, sums{r.id, r.intentChecksum(), r.resultChecksum()})
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		update, err := c.PrepareContext(ctx, "UPDATE queries SET intent_sum = ?, result_sum = ? WHERE id = ?")
		if err != nil {
			return err
		}
		defer update.Close()
		for _, q := range qs {
			if _, err := update.ExecContext(ctx, q.intent, q.result, q.id); err != nil {
				return err
			}
		}
		// Checkpoint parts are few and small next to the queries.
		type part struct {
			id   int64
			name string
			sum  int64
		}
		var ps []part
		prows, err := c.QueryContext(ctx, "SELECT checkpoint_id, name, data FROM checkpoint_parts")
		if err != nil {
			return err
		}
		for prows.Next() {
			var p part
			var data []byte
			if err := prows.Scan(&p.id, &p.name, &data); err != nil {
				prows.Close()
				return err
			}
			p.sum = checkpointPartChecksum(p.name, data)
			ps = append(ps, p)
		}
		prows.Close()
		if err := prows.Err(); err != nil {
			return err
		}
		for _, p := range ps {
			if _, err := c.ExecContext(ctx, "UPDATE checkpoint_parts SET sum = ? WHERE checkpoint_id = ? AND name = ?", p.sum, p.id, p.name); err != nil {
				return err
			}
		}
		_, err = c.ExecContext(ctx, "UPDATE meta SET value = ? WHERE key = ?", strconv.Itoa(SchemaVersion), keySchema)
		return err
	})
	if err != nil {
		j.sums = false
		return fmt.Errorf("migrate to schema version %d: %w", SchemaVersion, err)
	}
	return nil
}

// Meta returns the run's metadata.
func (j *Journal) Meta(ctx context.Context) (Meta, error) {
	var m Meta
	err := j.read(ctx, "meta", func(ctx context.Context, c *sql.Conn) error {
		kv, err := readMeta(ctx, c)
		if err != nil {
			return err
		}
		m, err = parseMeta(kv)
		return err
	})
	return m, err
}

func readMeta(ctx context.Context, c *sql.Conn) (map[string]string, error) {
	rows, err := c.QueryContext(ctx, "SELECT key, value FROM meta WHERE key != ?", keyConfig)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	kv := map[string]string{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return nil, err
		}
		kv[k] = v
	}
	return kv, rows.Err()
}

func parseMeta(kv map[string]string) (Meta, error) {
	m := Meta{
		Version:   kv[keyVersion],
		Method:    kv[keyMethod],
		Kind:      kv[keyKind],
		Direction: Direction(kv[keyDirection]),
		Status:    RunStatus(kv[keyStatus]),
	}
	var err error
	if m.Seed, err = strconv.ParseUint(kv[keySeed], 10, 64); err != nil {
		return m, fmt.Errorf("meta %s: %w", keySeed, err)
	}
	ns, err := strconv.ParseInt(kv[keyCreated], 10, 64)
	if err != nil {
		return m, fmt.Errorf("meta %s: %w", keyCreated, err)
	}
	m.Created = time.Unix(0, ns)
	return m, nil
}

// Config returns the resolved config the run was created with.
func (j *Journal) Config(ctx context.Context) ([]byte, error) {
	var b []byte
	err := j.read(ctx, "config", func(ctx context.Context, c *sql.Conn) error {
		return c.QueryRowContext(ctx, "SELECT value FROM meta WHERE key = ?", keyConfig).Scan(&b)
	})
	return b, err
}

// SetStatus records the run's status, committed at once. It is tried even
// after ErrRolledBack, so that a run that ends in an error is not left
// running: the caller sets failed or interrupted on every exit path, Close
// never changes the status.
func (j *Journal) SetStatus(ctx context.Context, s RunStatus) error {
	if !s.valid() {
		return j.errorf("set status", fmt.Errorf("unknown run status %q", s))
	}
	return j.write(ctx, "set status", evenIfLost, func(ctx context.Context, c *sql.Conn) error {
		_, err := c.ExecContext(ctx, "UPDATE meta SET value = ? WHERE key = ?", string(s), keyStatus)
		return err
	})
}
