//go:build !unix

package lxi

import "net"

func peerClosed(net.Conn) bool { return false }
