//go:build unix

package lxi

import (
	"net"
	"syscall"
)

// peerClosed reports whether the peer has closed nc while it sat idle: a
// non-blocking peek that sees EOF or a reset. Instruments drop idle
// connections; finding out before writing lets Write redial instead of
// sending a command into a dead socket and failing the query on the read.
func peerClosed(nc net.Conn) bool {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	closed := false
	_ = rc.Read(func(fd uintptr) bool {
		var b [1]byte
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		closed = (n == 0 && err == nil) || err == syscall.ECONNRESET
		return true // never wait
	})
	return closed
}
