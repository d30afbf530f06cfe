package journal

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// LockFileName is the file in a run directory that LockDir locks. It holds
// the pid of the process that holds the lock.
const LockFileName = "lock"

// ErrLocked: the run directory is in use by another process, or by another
// LockDir of this one. The error is a *LockedError.
var ErrLocked = errors.New("run directory is in use")

// LockedError says which process holds a run directory.
type LockedError struct {
	Dir string
	PID int // 0 if the holder had not yet written its pid
}

func (e *LockedError) Error() string {
	holder := "another process"
	if e.PID > 0 {
		holder = "process " + strconv.Itoa(e.PID)
	}
	return fmt.Sprintf("%s is in use by %s (insitu run/resume/train): wait for it or stop it", e.Dir, holder)
}

// Is makes errors.Is(err, ErrLocked) true.
func (e *LockedError) Is(target error) bool { return target == ErrLocked }

// DirLock is an exclusive lock on a run directory: one process at a time
// runs, resumes or trains in it, so that two never drive the instrument for
// the same run.
type DirLock struct {
	dir string

	mu sync.Mutex
	f  *os.File // nil once unlocked
}

// LockDir takes the lock of the run directory dir, which must exist, or
// fails at once with a *LockedError (ErrLocked) naming the process that
// holds it. The lock is an advisory lock (flock(2) on Unix) of dir/lock,
// created 0600, that the process keeps until Unlock or until it exits: the
// kernel releases it even after SIGKILL, so a crashed run never leaves its
// directory locked. Two LockDir calls on one directory conflict also within
// one process. On systems without flock only the latter is enforced.
//
// A new run creates its directory (0700, as Create would) and locks it
// before Create, which accepts a directory that holds only the lock file; a
// resume locks the directory before Open. Both do so before any device is
// opened.
func LockDir(dir string) (*DirLock, error) {
	f, err := lockFile(dir)
	if err != nil {
		return nil, err
	}
	// The pid is for the message of whoever is refused; the lock itself is
	// the kernel's.
	pid := []byte(strconv.Itoa(os.Getpid()) + "\n")
	if err := f.Truncate(0); err == nil {
		_, err = f.WriteAt(pid, 0)
	}
	if err != nil {
		unlockFile(f)
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	return &DirLock{dir: dir, f: f}, nil
}

// Dir is the locked run directory.
func (l *DirLock) Dir() string { return l.dir }

// Unlock releases the lock. Calling it again does nothing.
func (l *DirLock) Unlock() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	// A stale pid would name a process that no longer holds the lock.
	l.f.Truncate(0)
	err := unlockFile(l.f)
	l.f = nil
	if err != nil {
		return fmt.Errorf("unlock %s: %w", l.dir, err)
	}
	return nil
}

// holderPID reads the pid the holder of f's lock wrote. The holder writes
// it just after it takes the lock: give it a moment.
func holderPID(f *os.File) int {
	buf := make([]byte, 32)
	for range 20 {
		n, _ := f.ReadAt(buf, 0)
		if s, ok := strings.CutSuffix(string(buf[:n]), "\n"); ok {
			if pid, err := strconv.Atoi(s); err == nil && pid > 0 {
				return pid
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	return 0
}
