//go:build linux

package emulator

import (
	"fmt"
	"os"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// PTY is a pseudo-terminal pair for serving an instrument as if on a serial
// port: serve Master, and let the driver open Path.
type PTY struct {
	Master *os.File // non-blocking, so closing it interrupts Serve's read
	Path   string   // the slave's path, e.g. /dev/pts/7
	slave  *os.File // held open: with no slave fd, reads on the master fail (EIO)
}

// OpenPTY opens a pseudo-terminal pair. Open the client side (serial.Open,
// which sets raw mode) before serving, or the slave's line discipline echoes
// the first replies back.
func OpenPTY() (*PTY, error) {
	m, s, err := pty.Open()
	if err != nil {
		return nil, fmt.Errorf("emulator: open pty: %w", err)
	}
	// pty.Open called Fd, which puts the master in blocking mode; a blocked
	// read would then survive Close. Re-wrap a non-blocking duplicate.
	fd, err := unix.Dup(int(m.Fd()))
	if err == nil {
		err = unix.SetNonblock(fd, true)
	}
	m.Close()
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("emulator: pty master: %w", err)
	}
	return &PTY{Master: os.NewFile(uintptr(fd), "/dev/ptmx"), Path: s.Name(), slave: s}, nil
}

// Close closes both sides.
func (p *PTY) Close() error {
	p.Master.Close()
	return p.slave.Close()
}
