package x11

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
)

// geType is the response type of an X Generic Event (the Generic Event
// Extension): 32 bytes followed by 4·length more.
const geType = 35

// wire is the socket under xgb. It does two things xgb cannot:
//
//   - it sends the connection setup with the authorization of the display
//     actually dialled (xgb's NewConnNet looks the cookie up for an empty
//     display name, which matches no usual Xauthority entry);
//   - it takes generic events out of the stream and hands them to onGE:
//     xgb reads every event as 32 bytes, so a longer generic event such as
//     PresentCompleteNotify (40 bytes) would shift every later reply.
//
// xgb always speaks little-endian (byte-order byte 'l'), so lengths are
// read little-endian.
type wire struct {
	net.Conn
	r     *bufio.Reader
	setup []byte // the setup request to send in place of xgb's

	wmu     sync.Mutex
	replied bool // xgb's setup request has been replaced

	// Read side; only xgb's reader goroutine reads.
	started bool   // the setup reply has been passed on
	pending []byte // framed bytes not yet handed to xgb
	buf     []byte
	onGE    func(ev []byte)
}

func newWire(c net.Conn, authName string, authData []byte, onGE func([]byte)) *wire {
	return &wire{Conn: c, r: bufio.NewReaderSize(c, 64<<10), setup: setupRequest(authName, authData), onGE: onGE}
}

// setupRequest is the connection setup request: little-endian, protocol
// 11.0, one authorization protocol (or none).
func setupRequest(name string, data []byte) []byte {
	pad := func(n int) int { return (n + 3) &^ 3 }
	b := make([]byte, 12+pad(len(name))+pad(len(data)))
	b[0] = 'l'
	binary.LittleEndian.PutUint16(b[2:], 11)
	binary.LittleEndian.PutUint16(b[6:], uint16(len(name)))
	binary.LittleEndian.PutUint16(b[8:], uint16(len(data)))
	copy(b[12:], name)
	copy(b[12+pad(len(name)):], data)
	return b
}

// Write sends p, except that xgb's setup request (its first write) is
// replaced by ours.
func (w *wire) Write(p []byte) (int, error) {
	w.wmu.Lock()
	first := !w.replied
	w.replied = true
	w.wmu.Unlock()
	if first {
		if len(p) < 12 || p[0] != 'l' {
			return 0, errors.New("x11: unexpected connection setup from xgb")
		}
		if _, err := w.Conn.Write(w.setup); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	return w.Conn.Write(p)
}

// Read hands xgb whole messages: the setup reply, then replies, errors and
// core events; generic events go to onGE instead.
func (w *wire) Read(p []byte) (int, error) {
	for len(w.pending) == 0 {
		if err := w.frame(); err != nil {
			return 0, err
		}
	}
	n := copy(p, w.pending)
	w.pending = w.pending[n:]
	return n, nil
}

// frame reads the next message into w.pending (or to onGE).
func (w *wire) frame() error {
	if !w.started {
		// Setup reply: 8 bytes, then 4·length more (any status).
		if err := w.fill(8); err != nil {
			return err
		}
		more := 4 * int(binary.LittleEndian.Uint16(w.buf[6:8]))
		if err := w.fillMore(8, more); err != nil {
			return err
		}
		w.started = true
		w.pending = w.buf
		return nil
	}
	if err := w.fill(32); err != nil {
		return err
	}
	switch w.buf[0] & 0x7f {
	case 1: // reply
		more := 4 * int(binary.LittleEndian.Uint32(w.buf[4:8]))
		if err := w.fillMore(32, more); err != nil {
			return err
		}
		w.pending = w.buf
	case geType:
		more := 4 * int(binary.LittleEndian.Uint32(w.buf[4:8]))
		if err := w.fillMore(32, more); err != nil {
			return err
		}
		if w.onGE != nil {
			w.onGE(append([]byte(nil), w.buf...))
		}
	default: // error or core event: 32 bytes
		w.pending = w.buf
	}
	return nil
}

// maxReply bounds a reply's length: an X reply cannot exceed what the
// 32-bit length field says, but a corrupt stream must not make us allocate
// gigabytes.
const maxReply = 1 << 30

func (w *wire) fill(n int) error {
	if cap(w.buf) > 1<<20 { // do not keep a large image reply's buffer
		w.buf = nil
	}
	return w.fillMore(0, n)
}

// fillMore reads n more bytes after the first have bytes of w.buf. The
// buffer grows as the bytes arrive, so a corrupt length on a short stream
// does not allocate what it claims.
func (w *wire) fillMore(have, n int) error {
	if n < 0 || n > maxReply {
		return fmt.Errorf("x11: message of %d bytes: stream out of step", n)
	}
	w.buf = w.buf[:have]
	for n > 0 {
		k := min(n, 1<<20)
		if cap(w.buf)-len(w.buf) < k {
			w.buf = append(w.buf, make([]byte, k)...)[:len(w.buf)]
		}
		start := len(w.buf)
		w.buf = w.buf[:start+k]
		if _, err := io.ReadFull(w.r, w.buf[start:]); err != nil {
			return err
		}
		n -= k
	}
	return nil
}
