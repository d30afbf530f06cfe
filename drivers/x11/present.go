package x11

import (
	"encoding/binary"
	"fmt"

	"github.com/jezek/xgb"
	"github.com/jezek/xgb/xproto"
)

// The few requests and events of the Present extension (version 1.0) the
// window needs; xgb has no binding for it. Layouts from presentproto.h.

const (
	presentQueryVersion = 0
	presentPixmap       = 1
	presentSelectInput  = 3

	presentCompleteNotifyMask = 1 << 1
	presentIdleNotifyMask     = 1 << 2

	presentEvCompleteNotify = 1
	presentEvIdleNotify     = 2

	// PresentCompleteNotify modes.
	presentModeCopy           = 0
	presentModeFlip           = 1
	presentModeSkip           = 2
	presentModeSuboptimalCopy = 3
)

// presentExt is the Present extension on one connection.
type presentExt struct {
	major byte // request opcode
}

// initPresent finds the extension and agrees on version 1.0. ok is false
// when the server has no Present.
func initPresent(c *xgb.Conn) (presentExt, bool, error) {
	r, err := xproto.QueryExtension(c, uint16(len("Present")), "Present").Reply()
	if err != nil {
		return presentExt{}, false, err
	}
	if !r.Present {
		return presentExt{}, false, nil
	}
	p := presentExt{major: r.MajorOpcode}
	b := make([]byte, 12)
	b[0], b[1] = p.major, presentQueryVersion
	binary.LittleEndian.PutUint16(b[2:], 3)
	binary.LittleEndian.PutUint32(b[4:], 1)
	binary.LittleEndian.PutUint32(b[8:], 0)
	ck := c.NewCookie(true, true)
	c.NewRequest(b, ck)
	rep, err := ck.Reply()
	if err != nil {
		return presentExt{}, false, fmt.Errorf("Present QueryVersion: %w", err)
	}
	if len(rep) < 16 || binary.LittleEndian.Uint32(rep[8:]) < 1 {
		return presentExt{}, false, nil
	}
	return p, true, nil
}

// selectInput asks for CompleteNotify and IdleNotify events about win,
// under the event id eid (an XID from the connection).
func (p presentExt) selectInput(c *xgb.Conn, eid uint32, win xproto.Window) *xgb.Cookie {
	b := make([]byte, 16)
	b[0], b[1] = p.major, presentSelectInput
	binary.LittleEndian.PutUint16(b[2:], 4)
	binary.LittleEndian.PutUint32(b[4:], eid)
	binary.LittleEndian.PutUint32(b[8:], uint32(win))
	binary.LittleEndian.PutUint32(b[12:], presentCompleteNotifyMask|presentIdleNotifyMask)
	ck := c.NewCookie(true, false)
	c.NewRequest(b, ck)
	return ck
}

// pixmap presents pix on win at the next vblank (target MSC 0: as soon as
// possible, never tearing) under serial, as a checked request.
func (p presentExt) pixmap(c *xgb.Conn, win xproto.Window, pix xproto.Pixmap, serial uint32) *xgb.Cookie {
	b := make([]byte, 72)
	b[0], b[1] = p.major, presentPixmap
	binary.LittleEndian.PutUint16(b[2:], 72/4)
	binary.LittleEndian.PutUint32(b[4:], uint32(win))
	binary.LittleEndian.PutUint32(b[8:], uint32(pix))
	binary.LittleEndian.PutUint32(b[12:], serial)
	// valid, update regions, x_off, y_off, target_crtc, wait and idle
	// fences, options and the MSC triple are all zero: the whole pixmap,
	// the window's CRTC, no fences, a plain (synchronized) presentation.
	ck := c.NewCookie(true, false)
	c.NewRequest(b, ck)
	return ck
}

// presentEvent is a decoded CompleteNotify or IdleNotify.
type presentEvent struct {
	evtype uint16
	mode   byte // CompleteNotify
	window uint32
	serial uint32
	pixmap uint32 // IdleNotify
	ust    uint64 // CompleteNotify: microseconds, the server's monotonic clock
	msc    uint64 // CompleteNotify: the vblank counter
}

// parsePresentEvent decodes a generic event of the Present extension
// whose major opcode is ext; ok is false for anything else.
func parsePresentEvent(b []byte, ext byte) (presentEvent, bool) {
	if len(b) < 32 || b[0]&0x7f != geType || b[1] != ext {
		return presentEvent{}, false
	}
	e := presentEvent{evtype: binary.LittleEndian.Uint16(b[8:])}
	switch e.evtype {
	case presentEvCompleteNotify:
		if len(b) < 40 {
			return presentEvent{}, false
		}
		e.mode = b[11]
		e.window = binary.LittleEndian.Uint32(b[16:])
		e.serial = binary.LittleEndian.Uint32(b[20:])
		e.ust = binary.LittleEndian.Uint64(b[24:])
		e.msc = binary.LittleEndian.Uint64(b[32:])
	case presentEvIdleNotify:
		e.window = binary.LittleEndian.Uint32(b[16:])
		e.serial = binary.LittleEndian.Uint32(b[20:])
		e.pixmap = binary.LittleEndian.Uint32(b[24:])
	default:
		return presentEvent{}, false
	}
	return e, true
}
