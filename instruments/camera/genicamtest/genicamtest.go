// Package genicamtest runs Aravis' fake GigE Vision camera
// (arv-fake-gv-camera-0.8, Debian's aravis-tools) on the loopback
// interface for tests of the GenICam backend and of the commands built on
// it.
//
// The fake camera binds UDP port 3956 (GVCP) of 127.0.0.1, a fixed port:
// only one can run on a machine at a time. Start takes a machine-wide lock
// file for the whole test, so test binaries of several packages (go test
// runs them in parallel) take turns.
package genicamtest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Binary is the fake camera's program.
const Binary = "arv-fake-gv-camera-0.8"

// Address is where the fake camera listens.
const Address = "127.0.0.1"

// Fake is a running fake camera.
type Fake struct {
	// Serial is the camera's serial number; its Aravis device ID is
	// "Aravis-Fake-" + Serial.
	Serial string
	path   string

	mu  sync.Mutex
	cmd *exec.Cmd
	out *bytes.Buffer
}

// Need skips t when the fake camera's program is missing, or fails it when
// the environment variable CI is set (a CI machine must run these tests).
func Need(t testing.TB) string {
	t.Helper()
	path, err := exec.LookPath(Binary)
	if err != nil {
		msg := fmt.Sprintf("%s not found (apt-get install aravis-tools): %v", Binary, err)
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return path
}

// Start starts a fake camera with serial (at most 15 characters) and
// waits until it answers GVCP discovery. It is killed when the test ends.
func Start(t testing.TB, serial string) *Fake {
	t.Helper()
	path := Need(t)
	lock(t)
	f := &Fake{Serial: serial, path: path}
	if err := f.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Kill)
	return f
}

// ID is the Aravis device ID of the fake camera.
func (f *Fake) ID() string { return "Aravis-Fake-" + f.Serial }

func (f *Fake) start() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	cmd := exec.Command(f.path, "-i", Address, "-s", f.Serial)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("genicamtest: start %s: %w", f.path, err)
	}
	f.cmd, f.out = cmd, &out
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("genicamtest: %s exited at start: %s", Binary, out.String())
		default:
		}
		serial, err := discover(Address, 200*time.Millisecond)
		if err == nil {
			if serial != f.Serial {
				cmd.Process.Kill()
				return fmt.Errorf("genicamtest: another camera (serial %q) answers on %s:3956", serial, Address)
			}
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Kill()
	return fmt.Errorf("genicamtest: %s does not answer discovery on %s:3956 after 10 s: %s", Binary, Address, out.String())
}

// Kill kills the camera (SIGKILL: no goodbye on the network) and waits
// until its port is free.
func (f *Fake) Kill() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cmd == nil {
		return
	}
	f.cmd.Process.Signal(syscall.SIGKILL)
	for range 500 {
		if syscall.Kill(f.cmd.Process.Pid, 0) != nil {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	f.cmd = nil
}

// Restart starts the camera again after Kill, with the same serial.
func (f *Fake) Restart(t testing.TB) {
	t.Helper()
	f.Kill()
	if err := f.start(); err != nil {
		t.Fatal(err)
	}
}

// Output is what the camera's process printed.
func (f *Fake) Output() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.out == nil {
		return ""
	}
	return f.out.String()
}

var (
	lockMu   sync.Mutex
	lockFile *os.File
	lockRefs int
)

// lock takes the machine-wide lock until the test ends (reentrant within
// a process: subtests may start cameras in turn).
func lock(t testing.TB) {
	t.Helper()
	lockMu.Lock()
	defer lockMu.Unlock()
	if lockRefs == 0 {
		path := filepath.Join(os.TempDir(), "insitu-arv-fake-gv-camera.lock")
		f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o666)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- syscall.Flock(int(f.Fd()), syscall.LOCK_EX) }()
		select {
		case err := <-done:
			if err != nil {
				f.Close()
				t.Fatalf("genicamtest: lock %s: %v", path, err)
			}
		case <-time.After(5 * time.Minute):
			t.Fatalf("genicamtest: %s held by another test for 5 minutes", path)
		}
		lockFile = f
	}
	lockRefs++
	t.Cleanup(func() {
		lockMu.Lock()
		defer lockMu.Unlock()
		if lockRefs--; lockRefs == 0 {
			lockFile.Close() // releases the flock
			lockFile = nil
		}
	})
}

// discover sends a GVCP discovery command to addr:3956 and returns the
// serial number in the acknowledge (bootstrap registers 0xd8..0xe8).
func discover(addr string, timeout time.Duration) (string, error) {
	c, err := net.Dial("udp4", net.JoinHostPort(addr, "3956"))
	if err != nil {
		return "", err
	}
	defer c.Close()
	// key 0x42, flags: acknowledge required; DISCOVERY_CMD 0x0002; no
	// payload; request ID 1.
	if _, err := c.Write([]byte{0x42, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x01}); err != nil {
		return "", err
	}
	c.SetReadDeadline(time.Now().Add(timeout))
	buf := make([]byte, 1024)
	n, err := c.Read(buf)
	if err != nil {
		return "", err
	}
	const header, serialAt, serialLen = 8, 0xd8, 16
	if n < header+serialAt+serialLen || binary.BigEndian.Uint16(buf[2:]) != 0x0003 {
		return "", errors.New("not a GVCP discovery acknowledge")
	}
	s := buf[header+serialAt : header+serialAt+serialLen]
	return strings.TrimRight(string(s), "\x00"), nil
}
