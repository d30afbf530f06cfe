package journal

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func mode(t *testing.T, path string) fs.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// TestCreatePermissions: measurements can be private, so a run directory
// Create makes and the journal's files are the owner's only.
func TestCreatePermissions(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "runs", "x")
	j, err := Create(dir, testMeta(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	// A write while open, so the WAL and shared-memory files exist.
	if _, err := j.Begin(context.Background(), Intent{Role: RoleStep, X: []float64{1}}); err != nil {
		t.Fatal(err)
	}
	if m := mode(t, dir); m != 0o700 {
		t.Errorf("run directory mode %v, want 0700", m)
	}
	if m := mode(t, filepath.Dir(dir)); m&0o700 != 0o700 {
		t.Errorf("parent directory mode %v, want at least 0700", m)
	}
	for _, name := range []string{FileName, FileName + "-wal", FileName + "-shm"} {
		if m := mode(t, filepath.Join(dir, name)); m != 0o600 {
			t.Errorf("%s mode %v, want 0600", name, m)
		}
	}

	// A directory that exists keeps its mode.
	shared := filepath.Join(root, "shared")
	if err := os.Mkdir(shared, 0o750); err != nil {
		t.Fatal(err)
	}
	before := mode(t, shared)
	j2, err := Create(shared, testMeta(), nil)
	if err != nil {
		t.Fatal(err)
	}
	j2.Close()
	if m := mode(t, shared); m != before {
		t.Errorf("Create changed an existing directory's mode from %v to %v", before, m)
	}
	if m := mode(t, filepath.Join(shared, FileName)); m != 0o600 {
		t.Errorf("journal mode %v, want 0600", m)
	}
}
