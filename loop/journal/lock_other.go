//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package journal

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// Without flock, LockDir excludes only other LockDir calls of this process:
// it keeps the locked directories in a set.
var held struct {
	sync.Mutex
	dirs map[string]*os.File
}

func lockFile(dir string) (*os.File, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	held.Lock()
	defer held.Unlock()
	if held.dirs[abs] != nil {
		return nil, &LockedError{Dir: dir, PID: os.Getpid()}
	}
	f, err := os.OpenFile(filepath.Join(dir, LockFileName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	if held.dirs == nil {
		held.dirs = map[string]*os.File{}
	}
	held.dirs[abs] = f
	return f, nil
}

func unlockFile(f *os.File) error {
	held.Lock()
	for dir, g := range held.dirs {
		if g == f {
			delete(held.dirs, dir)
		}
	}
	held.Unlock()
	return f.Close()
}
