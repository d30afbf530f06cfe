package journal

import (
	"context"
	"database/sql"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// loadV2 makes dir a run directory holding the journal of schema version
// 2 that testdata/v2-run holds as an SQL dump, and its config.yaml.
func loadV2(t *testing.T, dir string) {
	t.Helper()
	dump, err := os.ReadFile(filepath.Join("testdata", "v2-run", "journal.sql"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(string(dump)); err != nil {
		t.Fatal(err)
	}
	cfg, err := os.ReadFile(filepath.Join("testdata", "v2-run", "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.yaml"), cfg, 0o600); err != nil {
		t.Fatal(err)
	}
}

// snapshot is everything a reader gets from a journal.
type snapshot struct {
	meta   Meta
	config []byte
	qs     []Query
	evs    []EventRecord
	its    []Iteration
	cpIter int
	cp     map[string][]byte
}

func read(t *testing.T, j *Journal) snapshot {
	t.Helper()
	ctx := context.Background()
	var s snapshot
	var err error
	if s.meta, err = j.Meta(ctx); err != nil {
		t.Fatal(err)
	}
	if s.config, err = j.Config(ctx); err != nil {
		t.Fatal(err)
	}
	if s.qs, err = j.Queries(ctx); err != nil {
		t.Fatal(err)
	}
	if s.evs, err = j.Events(ctx); err != nil {
		t.Fatal(err)
	}
	if s.its, err = j.Iterations(ctx); err != nil {
		t.Fatal(err)
	}
	var ok bool
	if s.cpIter, s.cp, ok, err = j.LatestCheckpoint(ctx); err != nil || !ok {
		t.Fatalf("latest checkpoint: %v, %v", ok, err)
	}
	return s
}

// TestVersion2FromMain: the journal the previous release wrote is read as
// it is by OpenReadOnly (which changes nothing), and migrated by Open to
// the current version with every value kept; from then on its meta,
// events and iterations are checksummed like a new journal's.
func TestVersion2FromMain(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "v2")
	loadV2(t, dir)

	r, err := OpenReadOnly(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Verify(ctx); err != nil {
		t.Fatalf("Verify of the version 2 journal: %v", err)
	}
	before := read(t, r)
	if _, err := r.Describe(ctx); !errors.Is(err, ErrNoDescription) {
		t.Errorf("Describe of a version 2 journal: %v, want ErrNoDescription", err)
	}
	r.Close()
	if v := schemaVersion(t, dir); v != "2" {
		t.Fatalf("OpenReadOnly changed the schema version to %s", v)
	}
	if before.meta.Status != RunInterrupted || len(before.qs) != 53 || len(before.evs) == 0 || len(before.its) == 0 {
		t.Fatalf("the fixture holds %s, %d queries, %d events, %d iterations", before.meta.Status, len(before.qs), len(before.evs), len(before.its))
	}

	j, err := Open(dir)
	if err != nil {
		t.Fatalf("Open (migration): %v", err)
	}
	after := read(t, j)
	if err := j.Verify(ctx); err != nil {
		t.Fatalf("Verify after the migration: %v", err)
	}
	if j.version != SchemaVersion {
		t.Fatalf("schema version %d after Open, want %d", j.version, SchemaVersion)
	}
	j.Close()
	if after.meta.ConfigHash != ConfigHash(before.config) || after.meta.Stop != "" {
		t.Errorf("migrated meta %+v", after.meta)
	}
	after.meta.ConfigHash = ""
	if !reflect.DeepEqual(before.meta, after.meta) || string(before.config) != string(after.config) {
		t.Errorf("meta changed in the migration: %+v, was %+v", after.meta, before.meta)
	}
	for i := range before.qs {
		b, a := before.qs[i], after.qs[i]
		if a.ID != b.ID || a.Key != b.Key || a.Status != b.Status || !sameFloatBits(a.X, b.X) || !sameFloatBits(a.Y, b.Y) ||
			math.Float64bits(a.Objective) != math.Float64bits(b.Objective) || !a.StartedAt.Equal(b.StartedAt) || a.Rejected || a.Marks != nil {
			t.Fatalf("query %d changed in the migration:\n%+v\nwas\n%+v", b.ID, a, b)
		}
	}
	if len(after.evs) != len(before.evs) || len(after.its) != len(before.its) {
		t.Fatalf("%d events and %d iterations after the migration, %d and %d before", len(after.evs), len(after.its), len(before.evs), len(before.its))
	}
	for i := range before.evs {
		b, a := before.evs[i], after.evs[i]
		if a.Kind != b.Kind || a.Detail != b.Detail || !a.Time.Equal(b.Time) || a.QueryID != b.QueryID || math.Float64bits(a.Value) != math.Float64bits(b.Value) {
			t.Fatalf("event %d changed: %+v, was %+v", i, a, b)
		}
	}
	if !reflect.DeepEqual(after.cp, before.cp) || after.cpIter != before.cpIter {
		t.Error("the checkpoint changed in the migration")
	}

	// From now on the config is protected. The migration rewrote the meta
	// rows, so a stale copy of the old config may remain on a free page:
	// change every copy.
	replaceAll(t, dir, []byte("target_seed: 3"), []byte("target_seed: 4"))
	wantCorrupt(t, dir, "meta config")
}

// TestVersion2DamageBeforeMigration: a damaged query in a version 2
// journal is refused by Open before the migration computes checksums that
// would vouch for it.
func TestVersion2DamageBeforeMigration(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "v2")
	loadV2(t, dir)
	db, err := sql.Open("sqlite", filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("UPDATE queries SET objective = objective + 1 WHERE id = 7"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err = Open(dir)
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "query 7") {
		t.Fatalf("Open: %v, want ErrCorrupt naming query 7", err)
	}
	if v := schemaVersion(t, dir); v != "2" {
		t.Errorf("schema version %s after a refused Open, want 2", v)
	}
}

func sameFloatBits(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float64bits(a[i]) != math.Float64bits(b[i]) {
			return false
		}
	}
	return true
}
