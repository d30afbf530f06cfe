package journal

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
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

// schemaV3 checksums the rest: every meta, event and iteration row gets a
// sum, so that no stored byte a resume or a report relies on goes
// unchecked. Queries get the rejected flag (the guard refused the query
// before any device was touched: not a fault a resume retries) and their
// timing marks (JSON, see Mark). Both enter a query's result_sum only when
// set, so the checksums of version 2 rows stay valid and the migration
// reads no query.
const schemaV3 = `
ALTER TABLE meta ADD COLUMN sum INTEGER;
ALTER TABLE events ADD COLUMN sum INTEGER;
ALTER TABLE iterations ADD COLUMN sum INTEGER;
ALTER TABLE queries ADD COLUMN rejected INTEGER NOT NULL DEFAULT 0 CHECK (rejected IN (0, 1));
ALTER TABLE queries ADD COLUMN marks TEXT;
`

// Keys of the meta table.
const (
	keySchema      = "schema_version"
	keyVersion     = "insitu_version"
	keyMethod      = "method"
	keyKind        = "kind"
	keySeed        = "seed"
	keyDirection   = "direction"
	keyCreated     = "created"
	keyStatus      = "status"
	keyStop        = "stop"          // why the run ended; "" while it runs
	keyConfig      = "config"        // the resolved config (YAML)
	keyConfigHash  = "config_sha256" // ConfigHash of it
	keyDescription = "description"   // Description, JSON
)

// ConfigHash is the SHA-256 of a resolved config, in hex: what Meta,
// Description and files written beside a run (a calibration) name the
// config by.
func ConfigHash(configYAML []byte) string {
	h := sha256.Sum256(configYAML)
	return hex.EncodeToString(h[:])
}

// metaChecksum covers a meta row's key and value.
func metaChecksum(key, value string) int64 {
	var s summer
	s.text(key)
	s.text(value)
	return s.sum()
}

// putMeta inserts or replaces a meta row with its checksum.
func putMeta(ctx context.Context, c *sql.Conn, key, value string) error {
	_, err := c.ExecContext(ctx, "INSERT OR REPLACE INTO meta (key, value, sum) VALUES (?, ?, ?)", key, value, metaChecksum(key, value))
	return err
}

func (j *Journal) initSchema(m Meta, configYAML []byte) error {
	ctx := context.Background()
	var desc []byte
	if m.Description != nil {
		var err error
		if desc, err = json.Marshal(m.Description); err != nil {
			return j.errorf("create", fmt.Errorf("description: %w", err))
		}
	}
	return j.write(ctx, "create", commitNow, func(ctx context.Context, c *sql.Conn) error {
		if _, err := c.ExecContext(ctx, schemaV1+schemaV2+schemaV3); err != nil {
			return err
		}
		kv := [][2]string{
			{keySchema, strconv.Itoa(SchemaVersion)},
			{keyVersion, m.Version},
			{keyMethod, m.Method},
			{keyKind, m.Kind},
			{keySeed, strconv.FormatUint(m.Seed, 10)}, // text: a uint64 does not fit SQLite's INTEGER
			{keyDirection, string(m.Direction)},
			{keyCreated, strconv.FormatInt(m.Created.UnixNano(), 10)},
			{keyStatus, string(m.Status)},
			{keyStop, ""},
			{keyConfig, string(configYAML)},
			{keyConfigHash, ConfigHash(configYAML)},
		}
		if desc != nil {
			kv = append(kv, [2]string{keyDescription, string(desc)})
		}
		for _, p := range kv {
			if err := putMeta(ctx, c, p[0], p[1]); err != nil {
				return err
			}
		}
		return nil
	})
}

// checkSchema returns the journal's schema version, 1 to SchemaVersion.
func (j *Journal) checkSchema() (int, error) {
	var v string
	err := j.conn.QueryRowContext(context.Background(), "SELECT value FROM meta WHERE key = ?", keySchema).Scan(&v)
	if err != nil {
		if errors.Is(err, sql.ErrNoRows) || strings.Contains(err.Error(), "no such table") {
			return 0, fmt.Errorf("%w: not an insitu journal (no schema version)", ErrSchema)
		}
		return 0, err
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > SchemaVersion {
		return 0, fmt.Errorf("%w: schema version %s, this build reads versions 1 to %d", ErrSchema, v, SchemaVersion)
	}
	return n, nil
}

// migrate brings an older journal to SchemaVersion in one transaction. The
// caller has checked the file's structure and whatever checksums its
// version has; the checksums the migration adds vouch for the data only
// from now on.
func (j *Journal) migrate(ctx context.Context) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	from := j.version
	err := j.writeLocked(ctx, false, func(ctx context.Context, c *sql.Conn) error {
		if j.version < 2 {
			if err := j.migrateV2(ctx, c); err != nil {
				return err
			}
			j.version = 2
		}
		if err := migrateV3(ctx, c); err != nil {
			return err
		}
		j.version = SchemaVersion
		return putMeta(ctx, c, keySchema, strconv.Itoa(SchemaVersion))
	})
	if err != nil {
		j.version = from
		return fmt.Errorf("migrate from schema version %d to %d: %w", from, SchemaVersion, err)
	}
	return nil
}

// migrateV2 turns a version 1 journal into version 2: the new columns, the
// remeasured flag of remeasured queries (a failed remeasure cannot be told
// from a failed query in version 1), and every row's checksums.
func (j *Journal) migrateV2(ctx context.Context, c *sql.Conn) error {
	if _, err := c.ExecContext(ctx, schemaV2); err != nil {
		return err
	}
	if _, err := c.ExecContext(ctx, "UPDATE queries SET remeasured = 1 WHERE status = ?", string(StatusRemeasured)); err != nil {
		return err
	}
	type sums struct{ id, intent, result int64 }
	var qs []sums
	j.version = 2 // the columns exist now: scan them
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
	return nil
}

// migrateV3 turns a version 2 journal into version 3: the new columns and
// the checksums of every meta, event and iteration row. Queries keep
// theirs (see schemaV3).
func migrateV3(ctx context.Context, c *sql.Conn) error {
	if _, err := c.ExecContext(ctx, schemaV3); err != nil {
		return err
	}
	kv := map[string]string{}
	rows, err := c.QueryContext(ctx, "SELECT key, value FROM meta")
	if err != nil {
		return err
	}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			rows.Close()
			return err
		}
		kv[k] = v
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if _, ok := kv[keyStop]; !ok {
		kv[keyStop] = ""
	}
	if cfg, ok := kv[keyConfig]; ok {
		kv[keyConfigHash] = ConfigHash([]byte(cfg))
	}
	for k, v := range kv {
		if err := putMeta(ctx, c, k, v); err != nil {
			return err
		}
	}
	type rowSum struct{ id, sum int64 }
	var es []rowSum
	erows, err := c.QueryContext(ctx, "SELECT "+eventColumns+" FROM events ORDER BY id")
	if err != nil {
		return err
	}
	for erows.Next() {
		e, err := scanEvent(erows)
		if err != nil {
			erows.Close()
			return err
		}
		es = append(es, rowSum{e.id, e.checksum()})
	}
	erows.Close()
	if err := erows.Err(); err != nil {
		return err
	}
	for _, e := range es {
		if _, err := c.ExecContext(ctx, "UPDATE events SET sum = ? WHERE id = ?", e.sum, e.id); err != nil {
			return err
		}
	}
	var is []rowSum
	irows, err := c.QueryContext(ctx, "SELECT "+iterationColumns+" FROM iterations ORDER BY iteration")
	if err != nil {
		return err
	}
	for irows.Next() {
		it, err := scanIteration(irows)
		if err != nil {
			irows.Close()
			return err
		}
		is = append(is, rowSum{it.iteration, it.checksum()})
	}
	irows.Close()
	if err := irows.Err(); err != nil {
		return err
	}
	for _, it := range is {
		if _, err := c.ExecContext(ctx, "UPDATE iterations SET sum = ? WHERE iteration = ?", it.sum, it.id); err != nil {
			return err
		}
	}
	return nil
}

// Meta returns the run's metadata (Description excluded: see Describe).
func (j *Journal) Meta(ctx context.Context) (Meta, error) {
	var m Meta
	err := j.read(ctx, "meta", func(ctx context.Context, c *sql.Conn) error {
		kv, err := j.readMeta(ctx, c)
		if err != nil {
			return err
		}
		m, err = parseMeta(kv)
		return err
	})
	return m, err
}

// readMeta reads the small meta rows (not the config or the description),
// each checked against its checksum from version 3 on.
func (j *Journal) readMeta(ctx context.Context, c *sql.Conn) (map[string]string, error) {
	rows, err := c.QueryContext(ctx, "SELECT key, value, "+j.metaSumColumn()+" FROM meta WHERE key NOT IN (?, ?)", keyConfig, keyDescription)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	kv := map[string]string{}
	for rows.Next() {
		var k, v string
		var sum sql.NullInt64
		if err := rows.Scan(&k, &v, &sum); err != nil {
			return nil, err
		}
		if err := j.checkMeta(k, v, sum); err != nil {
			return nil, err
		}
		kv[k] = v
	}
	return kv, rows.Err()
}

// metaSumColumn is the meta table's checksum column, NULL before version 3.
func (j *Journal) metaSumColumn() string {
	if j.rowSums() {
		return "sum"
	}
	return "NULL"
}

// checkMeta compares a meta row with its checksum (version 3 on).
func (j *Journal) checkMeta(key, value string, sum sql.NullInt64) error {
	if !j.rowSums() {
		return nil
	}
	if !sum.Valid {
		return corruptf("meta %s: stored row has no checksum", key)
	}
	if metaChecksum(key, value) != sum.Int64 {
		return corruptf("meta %s: stored value does not match its checksum", key)
	}
	return nil
}

// readMetaValue reads one meta row, checked; ok is false when it is absent.
func (j *Journal) readMetaValue(ctx context.Context, c *sql.Conn, key string) (value string, ok bool, err error) {
	var sum sql.NullInt64
	err = c.QueryRowContext(ctx, "SELECT value, "+j.metaSumColumn()+" FROM meta WHERE key = ?", key).Scan(&value, &sum)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	if err := j.checkMeta(key, value, sum); err != nil {
		return "", false, err
	}
	return value, true, nil
}

func parseMeta(kv map[string]string) (Meta, error) {
	m := Meta{
		Version:    kv[keyVersion],
		Method:     kv[keyMethod],
		Kind:       kv[keyKind],
		Direction:  Direction(kv[keyDirection]),
		Status:     RunStatus(kv[keyStatus]),
		Stop:       kv[keyStop],
		ConfigHash: kv[keyConfigHash],
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

// Config returns the resolved config the run was created with, checked
// against its checksum (version 3 on).
func (j *Journal) Config(ctx context.Context) ([]byte, error) {
	var b []byte
	err := j.read(ctx, "config", func(ctx context.Context, c *sql.Conn) error {
		v, ok, err := j.readMetaValue(ctx, c, keyConfig)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%w: the journal holds no config", ErrCorrupt)
		}
		b = []byte(v)
		return nil
	})
	return b, err
}

// SetStatus records the run's status, committed at once, and forgets why
// an earlier session ended. It is tried even after ErrRolledBack, so that
// a run that ends in an error is not left running: the caller sets failed
// or interrupted on every exit path (SetOutcome, to say why), Close never
// changes the status.
func (j *Journal) SetStatus(ctx context.Context, s RunStatus) error {
	return j.SetOutcome(ctx, s, "")
}

// SetOutcome records the run's status and why it is in it (Meta.Stop): the
// stop rule that ended it, or the error. It is written like SetStatus.
func (j *Journal) SetOutcome(ctx context.Context, s RunStatus, stop string) error {
	if !s.valid() {
		return j.errorf("set status", fmt.Errorf("unknown run status %q", s))
	}
	return j.write(ctx, "set status", evenIfLost, func(ctx context.Context, c *sql.Conn) error {
		if err := putMeta(ctx, c, keyStatus, string(s)); err != nil {
			return err
		}
		return putMeta(ctx, c, keyStop, stop)
	})
}
