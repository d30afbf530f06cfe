//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package journal

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestLockHelperProcess is the child of TestLockDirOtherProcess: it takes
// the lock, says so, and holds it until it is killed.
func TestLockHelperProcess(t *testing.T) {
	if os.Getenv(helperEnv) != "lock" {
		t.Skip("helper process of TestLockDirOtherProcess")
	}
	l, err := LockDir(os.Getenv(helperDirEnv))
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(3)
	}
	fmt.Println("locked")
	time.Sleep(time.Minute)
	l.Unlock()
	os.Exit(0)
}

// TestLockDirOtherProcess: while another process holds a run directory,
// LockDir fails at once naming that process; once it is killed (SIGKILL:
// no chance to unlock), the directory is free.
func TestLockDirOtherProcess(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockHelperProcess$")
	cmd.Env = append(os.Environ(), helperEnv+"=lock", helperDirEnv+"="+dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	locked := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if sc.Text() == "locked" {
				locked <- true
			}
		}
		close(locked)
	}()
	select {
	case ok := <-locked:
		if !ok {
			cmd.Wait()
			t.Fatalf("child did not lock; stderr:\n%s", stderr.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatal("child never locked")
	}

	t0 := time.Now()
	_, err = LockDir(dir)
	var le *LockedError
	if !errors.As(err, &le) || !errors.Is(err, ErrLocked) || le.PID != cmd.Process.Pid {
		t.Fatalf("LockDir while the child holds it: %v, want a LockedError naming pid %d", err, cmd.Process.Pid)
	}
	if !strings.Contains(err.Error(), fmt.Sprint(cmd.Process.Pid)) {
		t.Errorf("message %q does not name the child", err)
	}
	if d := time.Since(t0); d > 5*time.Second {
		t.Errorf("LockDir took %v to fail: it must not wait", d)
	}

	if err := cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	cmd.Wait()
	l, err := LockDir(dir)
	if err != nil {
		t.Fatalf("LockDir after the holder was killed: %v", err)
	}
	defer l.Unlock()
	if b, err := os.ReadFile(l.Dir() + "/" + LockFileName); err != nil || string(b) != fmt.Sprintf("%d\n", os.Getpid()) {
		t.Errorf("lock file holds %q %v, want this process's pid", b, err)
	}
}
