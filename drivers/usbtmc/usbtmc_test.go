//go:build linux

package usbtmc

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/insitu-lab/insitu/drivers/scpi"
	"github.com/insitu-lab/insitu/drivers/scpi/emulator"
)

// The transport is a scpi.Conn and lets the client resync after a fault.
var (
	_ scpi.Conn     = (*Device)(nil)
	_ scpi.Resetter = (*Device)(nil)
)

// No usbtmc device exists in CI. A raw pty stands in for /dev/usbtmcN: it
// covers opening by path, message writes, reads up to the terminator,
// deadlines, and the fallback when the usbtmc ioctls fail with ENOTTY. It
// does not cover the kernel driver's own timeout (ETIMEDOUT) or device
// clear, which need the real device.
func openStandIn(t *testing.T, timeout time.Duration) (*Device, *emulator.Instrument) {
	pt, err := emulator.OpenPTY()
	if err != nil {
		t.Fatal(err)
	}
	// A usbtmc device has no line discipline; make the pty raw to match.
	fd, err := unix.Open(pt.Path, unix.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	tio, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	tio.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	tio.Oflag &^= unix.OPOST
	tio.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	tio.Cc[unix.VMIN], tio.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, tio); err != nil {
		t.Fatal(err)
	}
	unix.Close(fd)

	d, err := Open(context.Background(), Config{Path: pt.Path, Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	inst, err := emulator.New("insitu,TWIN-PM100,0,1", emulator.Table{
		"MEASure:POWer?": func(string) (string, error) { return "1.234E-03", nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { inst.Serve(ctx, pt.Master); close(done) }()
	t.Cleanup(func() { cancel(); <-done; d.Close(); pt.Close() })
	return d, inst
}

func TestStandIn(t *testing.T) {
	d, inst := openStandIn(t, 200*time.Millisecond)
	ctx := context.Background()
	if err := d.Write(ctx, []byte("MEAS:POW?\n")); err != nil {
		t.Fatal(err)
	}
	b, err := d.ReadUntil(ctx, '\n')
	if err != nil || string(b) != "1.234E-03\n" {
		t.Fatalf("ReadUntil = %q, %v", b, err)
	}
	if d.IsUSBTMC() {
		t.Fatal("a pty passed for a usbtmc device")
	}
	if err := d.Reset(ctx); err != nil {
		t.Fatalf("Reset on a stand-in: %v", err)
	}

	inst.DropNext(1)
	if err := d.Write(ctx, []byte("MEAS:POW?\n")); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = d.ReadUntil(ctx, '\n')
	if !errors.Is(err, os.ErrDeadlineExceeded) || !strings.Contains(err.Error(), "/dev/pts/") {
		t.Fatalf("silent device: %v; want a deadline error naming the path", err)
	}
	if el := time.Since(start); el > time.Second {
		t.Fatalf("timed out after %v", el)
	}
}

func TestConfigAndOpen(t *testing.T) {
	c := Config{}
	c.Defaults()
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "path:") {
		t.Fatalf("Validate = %v", err)
	}
	if _, err := Open(context.Background(), Config{Path: "/nonexistent/usbtmc0"}); err == nil || !strings.Contains(err.Error(), "/nonexistent/usbtmc0") {
		t.Fatalf("Open = %v", err)
	}
}

func TestETIMEDOUTIsDeadline(t *testing.T) {
	if err := mapErr(unix.ETIMEDOUT); !errors.Is(err, os.ErrDeadlineExceeded) || !errors.Is(err, unix.ETIMEDOUT) {
		t.Fatalf("mapErr(ETIMEDOUT) = %v", err)
	}
}
