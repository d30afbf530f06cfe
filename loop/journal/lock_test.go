package journal

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestLockDirSameProcess(t *testing.T) {
	dir := t.TempDir()
	l, err := LockDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, LockFileName)
	if m := mode(t, path); m != 0o600 {
		t.Errorf("lock file mode %v, want 0600", m)
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != strconv.Itoa(os.Getpid())+"\n" {
		t.Errorf("lock file holds %q %v, want this process's pid", b, err)
	}

	// flock locks belong to the open file, not the process: a second
	// LockDir here conflicts as one in another process would.
	_, err = LockDir(dir)
	var le *LockedError
	if !errors.As(err, &le) || !errors.Is(err, ErrLocked) || le.PID != os.Getpid() || le.Dir != dir {
		t.Fatalf("second LockDir: %v, want a LockedError naming %s and pid %d", err, dir, os.Getpid())
	}
	if msg := err.Error(); !strings.Contains(msg, dir) || !strings.Contains(msg, "process "+strconv.Itoa(os.Getpid())) {
		t.Errorf("message %q does not name the directory and the holder", msg)
	}

	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
	if err := l.Unlock(); err != nil {
		t.Errorf("second Unlock: %v", err)
	}
	l2, err := LockDir(dir)
	if err != nil {
		t.Fatalf("LockDir after Unlock: %v", err)
	}
	l2.Unlock()

	if _, err := LockDir(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("LockDir of a missing directory: %v, want ErrNotExist", err)
	}
}
