//go:build linux

package bench

import (
	"context"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/insitu-lab/insitu/drivers/scpi/emulator"
)

// ServePTY serves in on a new pseudo-terminal until ctx ends. ready gets
// the slave's path (the port a driver opens) once the pair is set up. The
// slave is put in raw mode first: with nobody attached yet it would
// otherwise echo and translate what the twin writes (a fresh slave has
// ECHO, ICANON and OPOST|ONLCR set until a client configures the port).
func ServePTY(ctx context.Context, in *emulator.Instrument, ready func(path string)) error {
	p, err := emulator.OpenPTY()
	if err != nil {
		return err
	}
	defer p.Close()
	if err := rawMode(p.Path); err != nil {
		return err
	}
	ready(p.Path)
	// A client closing the slave is not the end: the emulator's own slave fd
	// keeps the master readable, so the next client on the path is served.
	return in.Serve(ctx, p.Master)
}

func rawMode(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return fmt.Errorf("pty %s: %w", path, err)
	}
	defer f.Close()
	t, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	if err != nil {
		return fmt.Errorf("pty %s: get termios: %w", path, err)
	}
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB
	t.Cflag |= unix.CS8
	t.Cc[unix.VMIN], t.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(int(f.Fd()), unix.TCSETS, t); err != nil {
		return fmt.Errorf("pty %s: set raw mode: %w", path, err)
	}
	return nil
}
