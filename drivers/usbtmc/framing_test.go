//go:build linux

package usbtmc

import (
	"context"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/insitu-lab/insitu/drivers/scpi/emulator"
)

// Two replies read in one chunk come back from ReadUntil one at a time:
// what follows the first terminator is kept for the next call.
func TestReadUntilKeepsTheRest(t *testing.T) {
	pt, err := emulator.OpenPTY()
	if err != nil {
		t.Fatal(err)
	}
	defer pt.Close()
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
	d, err := Open(context.Background(), Config{Path: pt.Path, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := pt.Master.Write([]byte("one\ntwo\n")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // both replies in the pty before the first read
	for _, want := range []string{"one\n", "two\n"} {
		got, err := d.ReadUntil(context.Background(), '\n')
		if err != nil || string(got) != want {
			t.Fatalf("ReadUntil = %q, %v; want %q", got, err, want)
		}
	}
}
