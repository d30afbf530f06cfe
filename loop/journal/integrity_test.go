package journal

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// marker is a vector whose encoding occurs once in a journal file, so a
// test can find it and damage it.
func marker(tag uint64, n int) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = math.Float64frombits(0x5a5a000000000000 | tag<<32 | uint64(i))
	}
	return v
}

// flipBit flips one bit in the middle of the only occurrence of v's
// encoding in the closed journal of dir.
func flipBit(t *testing.T, dir string, v []float64) {
	t.Helper()
	path := filepath.Join(dir, FileName)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + "-wal"); err == nil {
		t.Fatal("the journal has a WAL: close it first")
	}
	enc := EncodeFloats(v)
	i := bytes.Index(b, enc)
	if i < 0 || bytes.Index(b[i+1:], enc) >= 0 {
		t.Fatalf("the marker occurs %d times in the file, want once", bytes.Count(b, enc))
	}
	b[i+len(enc)/2] ^= 0x04
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestVerifyFlippedBit: a single flipped bit in a stored input, output or
// checkpoint is found before a resume touches the device, and by every
// read of the damaged row.
func TestVerifyFlippedBit(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage []float64
		want   string
	}{
		{"y", marker(1, 16), "query 3: stored result (status, y, objective, error) does not match its checksum (corrupted file?)"},
		{"x", marker(2, 16), "query 3: stored intent (x, key, role, iteration, slot) does not match its checksum (corrupted file?)"},
		{"checkpoint", marker(3, 16), `checkpoint 1 part "surrogate": stored data does not match its checksum (corrupted file?)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			j, dir := newJournal(t)
			for i := range 5 {
				x, y := []float64{float64(i)}, []float64{float64(-i)}
				if i == 2 {
					x, y = marker(2, 16), marker(1, 16)
				}
				id := mustBegin(t, j, Intent{Iteration: i, Role: RoleStep, Key: "q" + strconv.Itoa(i), X: x})
				if err := j.Finish(ctx, id, y, float64(i), nil); err != nil {
					t.Fatal(err)
				}
			}
			if err := j.SaveCheckpoint(ctx, 4, map[string][]byte{"surrogate": EncodeFloats(marker(3, 16)), "rng": {1}}); err != nil {
				t.Fatal(err)
			}
			if err := j.Verify(ctx); err != nil {
				t.Fatalf("Verify of an intact journal: %v", err)
			}
			j.Close()
			flipBit(t, dir, tc.damage)

			_, err := Open(dir)
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), filepath.Join(dir, FileName)) {
				t.Fatalf("Open of a damaged journal: %v, want ErrCorrupt naming the journal and %q", err, tc.want)
			}

			r, err := OpenReadOnly(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if err := r.Verify(ctx); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Verify: %v, want %q", err, tc.want)
			}
			if _, err := r.Get(ctx, 1); err != nil {
				t.Errorf("Get of an intact row: %v", err)
			}
			if tc.name == "checkpoint" {
				if _, _, _, err := r.LatestCheckpoint(ctx); !errors.Is(err, ErrCorrupt) {
					t.Errorf("LatestCheckpoint of a damaged checkpoint: %v, want ErrCorrupt", err)
				}
				return
			}
			if _, err := r.Get(ctx, 3); !errors.Is(err, ErrCorrupt) {
				t.Errorf("Get of the damaged row: %v, want ErrCorrupt", err)
			}
			if _, _, err := r.Lookup(ctx, "q2"); !errors.Is(err, ErrCorrupt) {
				t.Errorf("Lookup of the damaged row: %v, want ErrCorrupt", err)
			}
			if _, _, err := r.Dataset(ctx); !errors.Is(err, ErrCorrupt) {
				t.Errorf("Dataset with a damaged row: %v, want ErrCorrupt", err)
			}
		})
	}
}

// TestVerifyRandomBytes: 4 KB of random bytes written into the middle of a
// journal make Open refuse it, wherever they land: in the table's pages
// (SQLite's integrity check) or in the stored vectors (the checksums).
func TestVerifyRandomBytes(t *testing.T) {
	ctx := context.Background()
	j, dir := newJournal(t)
	rng := rand.New(rand.NewPCG(4096, 1))
	intents := make([]Intent, 200)
	for i := range intents {
		x := make([]float64, 1000)
		for k := range x {
			x[k] = rng.NormFloat64()
		}
		intents[i] = Intent{Iteration: i, Role: RoleStep, Key: fmt.Sprintf("iter %d", i), X: x}
	}
	ids, err := j.BeginBatch(ctx, intents)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if err := j.Finish(ctx, id, []float64{float64(id)}, float64(id), nil); err != nil {
			t.Fatal(err)
		}
	}
	j.Close()
	path := filepath.Join(dir, FileName)
	intact, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, at := range []float64{0.2, 0.35, 0.5, 0.5 + 1000.0/float64(len(intact)), 0.65, 0.8, 0.95} {
		off := int(at * float64(len(intact)))
		b := bytes.Clone(intact)
		garbage := make([]byte, 4096)
		for i := range garbage {
			garbage[i] = byte(rng.Uint32())
		}
		copy(b[off:], garbage)
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		j, err := Open(dir)
		if err == nil {
			j.Close()
			t.Errorf("Open of a journal with 4 KB of garbage at offset %d of %d succeeded", off, len(intact))
			continue
		}
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("garbage at offset %d: %v, want ErrCorrupt", off, err)
		}
		t.Logf("garbage at offset %d: %v", off, err)
	}
}

// makeVersion1 writes a journal as version 1 of this package did: no
// checksums, no remeasured flag.
func makeVersion1(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	stmts := []string{
		schemaV1,
		`INSERT INTO meta (key, value) VALUES ('schema_version', '1'), ('insitu_version', 'v0.2'), ('method', 'gradpie'),
			('kind', 'cnon'), ('seed', '7'), ('direction', 'min'), ('created', '1700000000000000000'),
			('status', 'interrupted'), ('config', 'method: gradpie')`,
	}
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatal(err)
		}
	}
	rows := []struct {
		status string
		y      []float64
		obj    any
		msg    any
	}{
		{"done", []float64{1, 2}, 3.5, nil},
		{"remeasured", []float64{4}, math.Copysign(0, -1), nil},
		{"failed", nil, nil, "interlock open"}, // a failed remeasure or a failed query: version 1 cannot tell
		{"started", nil, nil, nil},
	}
	for i, r := range rows {
		var y, fin any
		if r.y != nil {
			y = EncodeFloats(r.y)
		}
		if r.status != "started" {
			fin = int64(2000 + i)
		}
		_, err := db.Exec("INSERT INTO queries (iteration, slot, role, status, key, x, y, objective, error, started_at, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
			i, 0, "step", r.status, fmt.Sprintf("iter %d slot 0 step", i), EncodeFloats(marker(uint64(10+i), 4)), y, r.obj, r.msg, int64(1000+i), fin)
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec("INSERT INTO checkpoints (iteration, created_at) VALUES (2, 5)"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("INSERT INTO checkpoint_parts (checkpoint_id, name, data) VALUES (1, 'loop', x'0102')"); err != nil {
		t.Fatal(err)
	}
}

func schemaVersion(t *testing.T, dir string) string {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, FileName)+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v string
	if err := db.QueryRow("SELECT value FROM meta WHERE key = 'schema_version'").Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestVersion1: a journal of schema version 1 is read unverified by
// OpenReadOnly, which leaves it as it is, and migrated by Open, after which
// its rows are protected by checksums like any other.
func TestVersion1(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "old")
	makeVersion1(t, dir)
	check := func(t *testing.T, j *Journal, remeasured int) {
		t.Helper()
		if err := j.Verify(ctx); err != nil {
			t.Errorf("Verify: %v", err)
		}
		qs, err := j.Queries(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := []QueryStatus{StatusDone, StatusRemeasured, StatusFailed, StatusStarted}
		if len(qs) != len(want) {
			t.Fatalf("%d queries, want %d", len(qs), len(want))
		}
		for i, q := range qs {
			if q.Status != want[i] || q.Remeasured != (i == 1) || !sameBits(q.X, marker(uint64(10+i), 4)) {
				t.Errorf("query %d: %+v", q.ID, q)
			}
		}
		if qs[1].Objective != 0 || !sameBits(qs[1].Y, []float64{4}) {
			t.Errorf("remeasured query: %+v", qs[1])
		}
		if begun, again, err := j.QueryCounts(ctx); err != nil || begun != 4 || again != remeasured {
			t.Errorf("QueryCounts = %d, %d, %v; want 4, %d", begun, again, err, remeasured)
		}
		if it, parts, ok, err := j.LatestCheckpoint(ctx); err != nil || !ok || it != 2 || !bytes.Equal(parts["loop"], []byte{1, 2}) {
			t.Errorf("checkpoint: %d %v %v %v", it, parts, ok, err)
		}
	}

	t.Run("read-only", func(t *testing.T) {
		r, err := OpenReadOnly(dir)
		if err != nil {
			t.Fatal(err)
		}
		check(t, r, 1)
		r.Close()
		if v := schemaVersion(t, dir); v != "1" {
			t.Errorf("OpenReadOnly changed the schema version to %s", v)
		}
	})
	t.Run("open migrates", func(t *testing.T) {
		j, err := Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		if v := schemaVersion(t, dir); v != strconv.Itoa(SchemaVersion) {
			t.Errorf("schema version %s after Open, want %d", v, SchemaVersion)
		}
		check(t, j, 1)
		if err := j.Remeasure(ctx, 4, nil, math.NaN(), errors.New("interlock open")); err != nil {
			t.Fatal(err)
		}
		if begun, again, err := j.QueryCounts(ctx); err != nil || begun != 4 || again != 2 {
			t.Errorf("QueryCounts after a failed remeasure = %d, %d, %v; want 4, 2", begun, again, err)
		}
		if err := j.Close(); err != nil {
			t.Fatal(err)
		}
		if j, err = Open(dir); err != nil {
			t.Fatalf("second Open of a migrated journal: %v", err)
		}
		j.Close()
		flipBit(t, dir, marker(11, 4))
		if _, err := Open(dir); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "query 2: stored intent") {
			t.Errorf("Open of a damaged migrated journal: %v, want ErrCorrupt naming query 2", err)
		}
	})
}

// TestQueryCounts: every Begin is a device query, and so is every
// Remeasure, failed or not.
func TestQueryCounts(t *testing.T) {
	ctx := context.Background()
	j, dir := newJournal(t)
	intents := make([]Intent, 5)
	for i := range intents {
		intents[i] = Intent{Iteration: i, Role: RoleStep, X: []float64{float64(i)}}
	}
	ids, err := j.BeginBatch(ctx, intents)
	if err != nil {
		t.Fatal(err)
	}
	if begun, again, err := j.QueryCounts(ctx); err != nil || begun != 5 || again != 0 {
		t.Fatalf("QueryCounts = %d, %d, %v; want 5, 0", begun, again, err)
	}
	for _, id := range ids[:2] {
		if err := j.Finish(ctx, id, []float64{1}, 1, nil); err != nil {
			t.Fatal(err)
		}
	}
	abandon(t, j) // a crash: the Finishes were never synced

	j, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if err := j.Remeasure(ctx, ids[0], []float64{1}, 1, nil); err != nil {
		t.Fatal(err)
	}
	if err := j.Remeasure(ctx, ids[1], nil, math.NaN(), errors.New("output over range")); err != nil {
		t.Fatal(err)
	}
	if err := j.Finish(ctx, ids[2], nil, math.NaN(), errors.New("device timeout")); err != nil {
		t.Fatal(err)
	}
	if begun, again, err := j.QueryCounts(ctx); err != nil || begun != 5 || again != 2 {
		t.Errorf("QueryCounts = %d, %d, %v; want 5, 2 (a failed remeasure touched the device too)", begun, again, err)
	}
	for i, want := range []bool{true, true, false, false, false} {
		if q, err := j.Get(ctx, ids[i]); err != nil || q.Remeasured != want {
			t.Errorf("query %d: remeasured %v %v, want %v", ids[i], q.Remeasured, err, want)
		}
	}
	// Counting reads indexes, not the rows, whose BLOBs can span many pages.
	err = j.read(ctx, "plan", func(ctx context.Context, c *sql.Conn) error {
		rows, err := c.QueryContext(ctx, "EXPLAIN QUERY PLAN SELECT (SELECT COUNT(*) FROM queries), (SELECT COUNT(*) FROM queries WHERE remeasured = 1)")
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				return err
			}
			if strings.Contains(detail, "queries") && !strings.Contains(detail, "INDEX") {
				t.Errorf("QueryCounts reads the table: %s", detail)
			}
		}
		return rows.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
}

// BenchmarkVerify verifies a journal of 10 000 queries of 3600 inputs and
// 16 outputs (about 290 MB), what Open does before a resume.
func BenchmarkVerify(b *testing.B) {
	const queries, inputs, outputs, batch = 10000, 3600, 16, 500
	ctx := context.Background()
	j, _ := newJournal(b)
	rng := rand.New(rand.NewPCG(1, 2))
	x := make([]float64, inputs)
	intents := make([]Intent, batch)
	for done := 0; done < queries; done += batch {
		for i := range intents {
			for k := range x {
				x[k] = rng.Float64()
			}
			intents[i] = Intent{Iteration: done + i, Role: RoleStep, X: bytesToFloats(EncodeFloats(x))}
		}
		ids, err := j.BeginBatch(ctx, intents)
		if err != nil {
			b.Fatal(err)
		}
		for _, id := range ids {
			if err := j.Finish(ctx, id, x[:outputs], x[0], nil); err != nil {
				b.Fatal(err)
			}
		}
		if err := j.Sync(ctx); err != nil {
			b.Fatal(err)
		}
	}
	if fi, err := os.Stat(j.Path()); err == nil {
		b.Logf("journal of %d queries: %.0f MB", queries, float64(fi.Size())/1e6)
	}
	b.Run("Verify", func(b *testing.B) {
		for b.Loop() {
			if err := j.Verify(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("IntegrityCheck", func(b *testing.B) {
		for b.Loop() {
			if err := j.IntegrityCheck(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Dataset", func(b *testing.B) {
		for b.Loop() {
			if _, _, err := j.Dataset(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// bytesToFloats copies an encoded vector into a fresh slice.
func bytesToFloats(b []byte) []float64 {
	v := make([]float64, len(b)/8)
	for i := range v {
		v[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:]))
	}
	return v
}
