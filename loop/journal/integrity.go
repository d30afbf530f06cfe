package journal

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"strings"

	sqlite "modernc.org/sqlite"
)

// ErrCorrupt: the journal file is damaged. SQLite's integrity check failed,
// SQLite reported a malformed database, or a stored row does not match its
// checksum.
var ErrCorrupt = errors.New("journal file is corrupted")

// corruptError marks err as ErrCorrupt without changing its message.
type corruptError struct{ err error }

func (e *corruptError) Error() string        { return e.err.Error() }
func (e *corruptError) Unwrap() error        { return e.err }
func (e *corruptError) Is(target error) bool { return target == ErrCorrupt }

func corruptf(format string, args ...any) error {
	return &corruptError{fmt.Errorf(format+" (corrupted file?)", args...)}
}

// SQLite's primary result codes for a damaged file.
const (
	sqliteCorrupt = 11
	sqliteNotADB  = 26
)

// markCorrupt makes SQLite's own reports of a damaged file match ErrCorrupt.
func markCorrupt(err error) error {
	var se *sqlite.Error
	if errors.As(err, &se) && !errors.Is(err, ErrCorrupt) {
		switch se.Code() & 0xff {
		case sqliteCorrupt, sqliteNotADB:
			return &corruptError{err}
		}
	}
	return err
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// summer computes a row's checksum, CRC-32C over its fields in turn. Each
// field is written with a type tag and, for BLOBs and text, its length, so
// that different rows never feed the same bytes; NULL has its own tag.
type summer struct {
	crc uint32
	buf [9]byte
}

func (s *summer) tag(t byte, v uint64) {
	s.buf[0] = t
	binary.LittleEndian.PutUint64(s.buf[1:], v)
	s.crc = crc32.Update(s.crc, castagnoli, s.buf[:])
}

func (s *summer) null()       { s.tag('0', 0) }
func (s *summer) int(v int64) { s.tag('i', uint64(v)) }
func (s *summer) blob(b []byte) {
	s.tag('b', uint64(len(b)))
	s.crc = crc32.Update(s.crc, castagnoli, b)
}
func (s *summer) text(v string) {
	s.tag('t', uint64(len(v)))
	s.crc = crc32.Update(s.crc, castagnoli, []byte(v))
}

// real adds a REAL column's value as SQLite returns it: NaN is stored as
// NULL and -0 reads back as +0.
func (s *summer) real(v sql.NullFloat64) {
	switch {
	case !v.Valid || math.IsNaN(v.Float64):
		s.null()
	case v.Float64 == 0:
		s.tag('f', 0)
	default:
		s.tag('f', math.Float64bits(v.Float64))
	}
}

func (s *summer) nullText(v sql.NullString) {
	if !v.Valid {
		s.null()
		return
	}
	s.text(v.String)
}

func (s *summer) nullInt(v sql.NullInt64) {
	if !v.Valid {
		s.null()
		return
	}
	s.int(v.Int64)
}

func (s *summer) sum() int64 { return int64(s.crc) }

// storedQuery is a row of the queries table as stored. Its two checksums
// cover what Begin writes (intent_sum: iteration, slot, role, key, x,
// started_at) and what Finish writes (result_sum: status, remeasured, y,
// objective, error, finished_at), so that Finish need not read x back.
type storedQuery struct {
	id         int64
	iteration  int64
	slot       int64
	role       string
	status     string
	key        sql.NullString
	x          []byte
	y          []byte
	yValid     bool // a zero-length BLOB may scan as nil
	objective  sql.NullFloat64
	err        sql.NullString
	startedAt  int64
	finishedAt sql.NullInt64
	remeasured bool
	rejected   bool
	marks      sql.NullString
	intentSum  sql.NullInt64
	resultSum  sql.NullInt64
}

func (r *storedQuery) intentChecksum() int64 {
	var s summer
	s.int(r.iteration)
	s.int(r.slot)
	s.text(r.role)
	s.nullText(r.key)
	s.blob(r.x)
	s.int(r.startedAt)
	return s.sum()
}

func (r *storedQuery) resultChecksum() int64 {
	var s summer
	s.text(r.status)
	if r.remeasured {
		s.int(1)
	} else {
		s.int(0)
	}
	if r.yValid {
		s.blob(r.y)
	} else {
		s.null()
	}
	s.real(r.objective)
	s.nullText(r.err)
	s.nullInt(r.finishedAt)
	// The columns of version 3 count only when set, so that the sums of
	// the rows a version 2 journal wrote stay what they were.
	if r.rejected {
		s.tag('r', 1)
	}
	if r.marks.Valid {
		s.tag('m', uint64(len(r.marks.String)))
		s.crc = crc32.Update(s.crc, castagnoli, []byte(r.marks.String))
	}
	return s.sum()
}

// check compares the row with its checksums. A row without them is from a
// version 1 journal opened read-only (sums false) and is not verified; in a
// journal of version 2 every row has them.
func (r *storedQuery) check(sums bool) error {
	if !sums {
		return nil
	}
	if !r.intentSum.Valid || !r.resultSum.Valid {
		return corruptf("query %d: stored row has no checksum", r.id)
	}
	if r.intentChecksum() != r.intentSum.Int64 {
		return corruptf("query %d: stored intent (x, key, role, iteration, slot) does not match its checksum", r.id)
	}
	if r.resultChecksum() != r.resultSum.Int64 {
		return corruptf("query %d: stored result (status, y, objective, error) does not match its checksum", r.id)
	}
	return nil
}

// queryColumns is what scanQuery reads, in its order. An older journal
// lacks some columns: it reads what they would hold (version 1 has no
// remeasured flag or checksums, version 2 no rejected flag or marks).
func (j *Journal) queryColumns() string {
	const common = "id, iteration, slot, role, status, key, x, y, y IS NOT NULL, objective, error, started_at, finished_at, "
	switch {
	case j.version < 2:
		return common + "status = 'remeasured', NULL, NULL, 0, NULL"
	case j.version < 3:
		return common + "remeasured, intent_sum, result_sum, 0, NULL"
	}
	return common + "remeasured, intent_sum, result_sum, rejected, marks"
}

// querySums reports whether the journal's queries and checkpoints carry
// checksums (version 2 on); rowSums whether every other row does too
// (version 3 on).
func (j *Journal) querySums() bool { return j.version >= 2 }
func (j *Journal) rowSums() bool   { return j.version >= 3 }

// scanQuery reads a row selected with queryColumns. Its x and y are only
// valid until the next row is read: the BLOBs are not copied again.
func scanQuery(rows *sql.Rows) (storedQuery, error) {
	var r storedQuery
	var x, y sql.RawBytes
	err := rows.Scan(&r.id, &r.iteration, &r.slot, &r.role, &r.status, &r.key, &x, &y, &r.yValid,
		&r.objective, &r.err, &r.startedAt, &r.finishedAt, &r.remeasured, &r.intentSum, &r.resultSum, &r.rejected, &r.marks)
	r.x, r.y = x, y
	return r, err
}

// checkpointPartChecksum covers a checkpoint part's name and data.
func checkpointPartChecksum(name string, data []byte) int64 {
	var s summer
	s.text(name)
	s.blob(data)
	return s.sum()
}

func checkPart(checkpoint int64, name string, data []byte, sum sql.NullInt64) error {
	if !sum.Valid {
		return corruptf("checkpoint %d part %q: stored part has no checksum", checkpoint, name)
	}
	if checkpointPartChecksum(name, data) != sum.Int64 {
		return corruptf("checkpoint %d part %q: stored data does not match its checksum", checkpoint, name)
	}
	return nil
}

// Verify checks the whole journal: SQLite's integrity check of the file's
// structure, then every stored row against its checksum: meta (the config
// among them), queries, events, iteration records and checkpoint parts. It
// returns the first problem, naming the row; the error matches ErrCorrupt
// when the file is damaged. Open calls it, so a resume refuses a damaged
// journal before any device is opened. An older journal opened read-only
// is checked for what its version has checksums for.
func (j *Journal) Verify(ctx context.Context) error {
	return j.read(ctx, "verify", j.verifyLocked)
}

func (j *Journal) verifyLocked(ctx context.Context, c *sql.Conn) error {
	if err := integrityCheck(ctx, c); err != nil {
		return err
	}
	if !j.querySums() {
		return nil
	}
	if j.rowSums() {
		if err := j.verifyMeta(ctx, c); err != nil {
			return err
		}
	}
	rows, err := c.QueryContext(ctx, "SELECT "+j.queryColumns()+" FROM queries ORDER BY id")
	if err != nil {
		return markCorrupt(err)
	}
	defer rows.Close()
	for rows.Next() {
		r, err := scanQuery(rows)
		if err != nil {
			return markCorrupt(err)
		}
		if err := r.check(true); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return markCorrupt(err)
	}
	if j.rowSums() {
		if err := j.scanEvents(ctx, c, func(*storedEvent) error { return nil }); err != nil {
			return markCorrupt(err)
		}
		if err := j.scanIterations(ctx, c, func(*storedIteration) error { return nil }); err != nil {
			return markCorrupt(err)
		}
	}
	parts, err := c.QueryContext(ctx, "SELECT checkpoint_id, name, data, sum FROM checkpoint_parts ORDER BY checkpoint_id, name")
	if err != nil {
		return markCorrupt(err)
	}
	defer parts.Close()
	for parts.Next() {
		var (
			id   int64
			name string
			data []byte
			sum  sql.NullInt64
		)
		if err := parts.Scan(&id, &name, &data, &sum); err != nil {
			return markCorrupt(err)
		}
		if err := checkPart(id, name, data, sum); err != nil {
			return err
		}
	}
	return markCorrupt(parts.Err())
}

// verifyMeta checks every meta row, and that the rows a journal always has
// are there.
func (j *Journal) verifyMeta(ctx context.Context, c *sql.Conn) error {
	rows, err := c.QueryContext(ctx, "SELECT key, value, sum FROM meta")
	if err != nil {
		return markCorrupt(err)
	}
	defer rows.Close()
	seen := map[string]bool{}
	for rows.Next() {
		var k, v string
		var sum sql.NullInt64
		if err := rows.Scan(&k, &v, &sum); err != nil {
			return markCorrupt(err)
		}
		if err := j.checkMeta(k, v, sum); err != nil {
			return err
		}
		seen[k] = true
	}
	if err := rows.Err(); err != nil {
		return markCorrupt(err)
	}
	for _, k := range []string{keySchema, keyVersion, keyMethod, keyKind, keySeed, keyDirection, keyCreated, keyStatus, keyStop, keyConfig, keyConfigHash} {
		if !seen[k] {
			return corruptf("meta %s: the row is missing", k)
		}
	}
	return nil
}

// IntegrityCheck runs SQLite's integrity check of the file's structure and
// reports any problem (ErrCorrupt). Verify checks the stored data as well.
func (j *Journal) IntegrityCheck(ctx context.Context) error {
	return j.read(ctx, "integrity check", func(ctx context.Context, c *sql.Conn) error {
		return integrityCheck(ctx, c)
	})
}

func integrityCheck(ctx context.Context, c *sql.Conn) error {
	rows, err := c.QueryContext(ctx, "PRAGMA integrity_check")
	if err != nil {
		return markCorrupt(err)
	}
	defer rows.Close()
	var msgs []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return markCorrupt(err)
		}
		// A row can hold several problems, one a line, under a heading.
		for _, line := range strings.Split(s, "\n") {
			if line != "" && !strings.HasPrefix(line, "*** ") {
				msgs = append(msgs, line)
			}
		}
	}
	if err := rows.Err(); err != nil {
		return markCorrupt(err)
	}
	if len(msgs) == 1 && msgs[0] == "ok" {
		return nil
	}
	// The first problems say enough; the check reports up to 100.
	const shown = 3
	more := ""
	if len(msgs) > shown {
		more = fmt.Sprintf(" and %d more", len(msgs)-shown)
		msgs = msgs[:shown]
	}
	return corruptf("SQLite's integrity check failed: %s%s", strings.Join(msgs, "; "), more)
}
