package x11

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"log"
	"log/slog"
	"math/bits"
	"strings"
	"sync"
	"time"

	"github.com/jezek/xgb"
	"github.com/jezek/xgb/bigreq"
	"github.com/jezek/xgb/randr"
	"github.com/jezek/xgb/xproto"
)

func init() {
	// xgb logs to stderr on its own; its messages (a read error when the
	// server goes away, an Xauthority it could not read) are reported
	// here as errors, so they go to the debug log.
	xgb.Logger = log.New(debugLog{}, "", 0)
}

// debugLog writes each line to the slog default logger, at debug level,
// as it is when the line is written.
type debugLog struct{}

func (debugLog) Write(p []byte) (int, error) {
	slog.Debug("xgb: " + strings.TrimSpace(string(p)))
	return len(p), nil
}

// ErrLost wraps every error of a window that is gone: the connection to
// the X server closed, or the window was unmapped, destroyed, moved or its
// monitor removed.
var ErrLost = errors.New("SLM window lost")

// ErrObscured is returned by Show while another window covers part of the
// SLM window.
var ErrObscured = errors.New("SLM window obscured")

// FrameTimeout bounds the wait for the server to confirm a frame (a round
// trip, then the vblank of Present's CompleteNotify) or to map the window:
// far beyond any healthy server, even a loaded one, so that reaching it
// means the server is stuck.
const FrameTimeout = 10 * time.Second

// Config says where to open the window.
type Config struct {
	Display string // X display name; "" means $DISPLAY
	Selector
	// Width and Height, when set, must equal the chosen monitor's size:
	// they let a config be checked without the display.
	Width, Height int

	noPresent bool // tests: confirm by round trip alone, as on a server without Present
}

// Frame is what the server confirmed about one frame.
type Frame struct {
	Written time.Time // the last request of the frame was handed to the connection
	Shown   time.Time // the server confirmed it: round trip, then vblank with Present
	// MSC is the vblank counter at which Present showed the frame; 0
	// without Present.
	MSC     uint64
	Present bool // confirmed by PresentCompleteNotify, not a bare round trip
	Flip    bool // Present flipped the pixmap to the screen instead of copying it
}

// Window is a borderless, override-redirect window covering exactly one
// monitor, that shows row-major 8-bit gray frames. It implements the SLM
// package's Display. Its methods are safe for concurrent use; frames never
// interleave.
//
// Each frame is uploaded to an off-screen pixmap with PutImage (split
// under the maximum request length, BIG-REQUESTS when the server has it)
// and then, with the Present extension, presented at the next vblank:
// Show returns once PresentCompleteNotify says the vblank has passed.
// Without Present the pixmap is copied to the window and Show returns after
// a round trip. Two pixmaps alternate, so one the display may still be
// scanning out (Present's flip) is never drawn into before its
// IdleNotify.
type Window struct {
	addr Addr
	mon  Monitor
	c    *xgb.Conn
	scr  *xproto.ScreenInfo
	w, h int

	present    presentExt
	hasPresent bool
	rrMinor    uint32 // RandR 1.x; hasRandR false: no RandR
	hasRandR   bool
	maxReq     int // bytes in one request
	big        bool
	pix        pixelFormat
	screensave time.Duration // interval of the screen-saver reset while open

	mu      sync.Mutex // one frame at a time; guards the fields below
	win     xproto.Window
	eid     uint32
	gc      xproto.Gcontext
	cursor  xproto.Cursor
	pixmaps [2]xproto.Pixmap
	cur     int // index of the pixmap on screen; -1 before the first frame
	serial  uint32
	req     []byte // PutImage staging, reused

	st state

	stop chan struct{} // closed by Close
	done sync.WaitGroup
}

// pixelFormat is how a gray level becomes a pixel of the window's visual.
type pixelFormat struct {
	depth  byte
	bpp    int // bits per pixel: 24 or 32
	stride func(w int) int
	order  binary.ByteOrder
	value  [256]uint32 // pixel value of each gray level (R = G = B)
}

// Open connects to the display, picks the monitor c selects and maps a
// window over it. The window shows black until the first frame.
func Open(ctx context.Context, cfg Config) (*Window, error) {
	a, err := ParseDisplay(cfg.Display)
	if err != nil {
		return nil, err
	}
	w := &Window{addr: a, cur: -1, screensave: 20 * time.Second, stop: make(chan struct{})}
	w.st.init()
	if err := w.connect(ctx); err != nil {
		return nil, err
	}
	fail := func(err error) (*Window, error) {
		w.c.Close()
		w.done.Wait()
		return nil, fmt.Errorf("x11 %s: %w", a, err)
	}
	ms, err := w.monitors()
	if err != nil {
		return fail(err)
	}
	m, err := cfg.Selector.Select(ms)
	if err != nil {
		return fail(err)
	}
	w.mon, w.w, w.h = m, m.Rect.Dx(), m.Rect.Dy()
	if (cfg.Width != 0 || cfg.Height != 0) && (cfg.Width != w.w || cfg.Height != w.h) {
		return fail(fmt.Errorf("monitor %s is %dx%d, the config says width %d, height %d", m, w.w, w.h, cfg.Width, cfg.Height))
	}
	if err := w.setup(); err != nil {
		return fail(err)
	}
	if cfg.noPresent {
		w.hasPresent = false
	}
	w.st.mu.Lock()
	w.st.mon = m
	if w.hasPresent {
		w.st.present = w.present.major
	}
	w.st.mu.Unlock()
	if need := 28 + w.pix.stride(w.w); need > w.maxReq {
		return fail(fmt.Errorf("one row of %d pixels needs a %d-byte request, the server takes %d", w.w, need, w.maxReq))
	}
	w.mu.Lock()
	err = w.createWindow(ctx)
	w.mu.Unlock()
	if err != nil {
		return fail(err)
	}
	w.done.Add(1)
	go w.keepAwake()
	return w, nil
}

// connect dials the display and starts reading events.
func (w *Window) connect(ctx context.Context) error {
	nc, err := w.addr.dial(ctx)
	if err != nil {
		return fmt.Errorf("x11 %s: %w", w.addr, err)
	}
	name, data, err := w.addr.authority()
	if err != nil {
		nc.Close()
		return fmt.Errorf("x11 %s: %w", w.addr, err)
	}
	wire := newWire(nc, name, data, w.onGE)
	c, err := xgb.NewConnNet(wire)
	if err != nil {
		nc.Close()
		return fmt.Errorf("x11 %s: connection setup: %w", w.addr, err)
	}
	w.c = c
	setup := xproto.Setup(c)
	if w.addr.Screen >= len(setup.Roots) {
		c.Close()
		return fmt.Errorf("x11 %s: screen %d: the server has %d", w.addr, w.addr.Screen, len(setup.Roots))
	}
	w.scr = &setup.Roots[w.addr.Screen]
	if w.rrMinor, w.hasRandR, err = initRandR(c); err != nil {
		c.Close()
		return fmt.Errorf("x11 %s: %w", w.addr, err)
	}
	w.done.Add(1)
	go w.events()
	return nil
}

// monitors lists the server's monitors.
func (w *Window) monitors() ([]Monitor, error) {
	return listMonitors(w.c, w.scr, w.rrMinor, w.hasRandR)
}

// initRandR finds RandR once per connection, right after it opens: xgb's
// extension set-up writes a map its readers share, so it must not run
// while events arrive.
func initRandR(c *xgb.Conn) (minor uint32, ok bool, err error) {
	if randr.Init(c) != nil {
		return 0, false, nil // no RANDR: the screen is the one monitor
	}
	v, err := randr.QueryVersion(c, 1, 6).Reply()
	if err != nil {
		return 0, false, fmt.Errorf("RandR QueryVersion: %w", err)
	}
	if v.MajorVersion != 1 {
		return 0, false, nil
	}
	return v.MinorVersion, true, nil
}

// Monitors lists the monitors of display ("" for $DISPLAY).
func Monitors(ctx context.Context, display string) ([]Monitor, error) {
	a, err := ParseDisplay(display)
	if err != nil {
		return nil, err
	}
	w := &Window{addr: a, stop: make(chan struct{})}
	w.st.init()
	if err := w.connect(ctx); err != nil {
		return nil, err
	}
	defer func() {
		w.c.Close()
		w.done.Wait()
	}()
	ms, err := w.monitors()
	if err != nil {
		return nil, fmt.Errorf("x11 %s: %w", a, err)
	}
	return ms, nil
}

// setup finds the pixel format, the request size and Present.
func (w *Window) setup() error {
	setup := xproto.Setup(w.c)
	pf, err := grayFormat(setup, w.scr)
	if err != nil {
		return err
	}
	w.pix = pf
	w.maxReq = 4 * int(setup.MaximumRequestLength)
	if bigreq.Init(w.c) == nil {
		r, err := bigreq.Enable(w.c).Reply()
		if err != nil {
			return fmt.Errorf("BIG-REQUESTS Enable: %w", err)
		}
		if n := 4 * int(r.MaximumRequestLength); n > w.maxReq {
			w.maxReq, w.big = n, true
		}
	}
	p, ok, err := initPresent(w.c)
	if err != nil {
		return err
	}
	w.present, w.hasPresent = p, ok
	// Monitor changes (a cable pulled, a mode set) lose the window's place.
	if w.hasRandR {
		randr.SelectInput(w.c, w.scr.Root, randr.NotifyMaskScreenChange|randr.NotifyMaskCrtcChange|randr.NotifyMaskOutputChange)
	}
	return nil
}

// grayFormat finds how to write gray levels in the root visual: TrueColor
// (or DirectColor) with 8 bits per channel, 24 or 32 bits per pixel. Other
// visuals would lose gray levels, which an SLM cannot afford.
func grayFormat(setup *xproto.SetupInfo, scr *xproto.ScreenInfo) (pixelFormat, error) {
	var vis *xproto.VisualInfo
	for _, d := range scr.AllowedDepths {
		if d.Depth != scr.RootDepth {
			continue
		}
		for i := range d.Visuals {
			if d.Visuals[i].VisualId == scr.RootVisual {
				vis = &d.Visuals[i]
			}
		}
	}
	if vis == nil {
		return pixelFormat{}, errors.New("root visual not found in the screen's depths")
	}
	if vis.Class != xproto.VisualClassTrueColor && vis.Class != xproto.VisualClassDirectColor {
		return pixelFormat{}, fmt.Errorf("root visual class %d: want TrueColor (a 24- or 32-bit desktop)", vis.Class)
	}
	pf := pixelFormat{depth: scr.RootDepth, order: binary.LittleEndian}
	if setup.ImageByteOrder == xproto.ImageOrderMSBFirst {
		pf.order = binary.BigEndian
	}
	for _, f := range setup.PixmapFormats {
		if f.Depth == scr.RootDepth {
			pf.bpp = int(f.BitsPerPixel)
			pad := int(f.ScanlinePad) / 8
			bpp := pf.bpp / 8
			pf.stride = func(w int) int { return (w*bpp + pad - 1) / pad * pad }
		}
	}
	if pf.bpp != 24 && pf.bpp != 32 {
		return pixelFormat{}, fmt.Errorf("depth %d is stored in %d bits per pixel: want 24 or 32", scr.RootDepth, pf.bpp)
	}
	for _, m := range []uint32{vis.RedMask, vis.GreenMask, vis.BlueMask} {
		if bits.OnesCount32(m) != 8 {
			return pixelFormat{}, fmt.Errorf("visual with masks %#x %#x %#x: want 8 bits per channel (gray levels would be lost)", vis.RedMask, vis.GreenMask, vis.BlueMask)
		}
	}
	for g := range 256 {
		v := uint32(0)
		for _, m := range []uint32{vis.RedMask, vis.GreenMask, vis.BlueMask} {
			v |= uint32(g) << bits.TrailingZeros32(m)
		}
		pf.value[g] = v
	}
	return pf, nil
}

// createWindow makes, maps and checks the window over the monitor, with
// its pixmaps, GC and invisible cursor. w.mu is held.
func (w *Window) createWindow(ctx context.Context) error {
	c, r := w.c, w.mon.Rect
	win, err := xproto.NewWindowId(c)
	if err != nil {
		return lostConn(err)
	}
	cursor, err := w.invisibleCursor()
	if err != nil {
		return err
	}
	err = xproto.CreateWindowChecked(c, xproto.WindowClassCopyFromParent, win, w.scr.Root,
		int16(r.Min.X), int16(r.Min.Y), uint16(r.Dx()), uint16(r.Dy()), 0,
		xproto.WindowClassInputOutput, xproto.WindowClassCopyFromParent,
		xproto.CwBackPixel|xproto.CwOverrideRedirect|xproto.CwEventMask|xproto.CwCursor,
		[]uint32{w.pix.value[0], 1,
			xproto.EventMaskStructureNotify | xproto.EventMaskVisibilityChange,
			uint32(cursor)}).Check()
	if err != nil {
		return fmt.Errorf("CreateWindow: %w", err)
	}
	w.win, w.cursor = win, cursor
	w.st.reset(uint32(win))
	w.setProperties()
	for i := range w.pixmaps {
		p, err := xproto.NewPixmapId(c)
		if err != nil {
			return lostConn(err)
		}
		if err := xproto.CreatePixmapChecked(c, w.pix.depth, p, xproto.Drawable(win), uint16(r.Dx()), uint16(r.Dy())).Check(); err != nil {
			return fmt.Errorf("CreatePixmap %dx%d: %w", r.Dx(), r.Dy(), err)
		}
		w.pixmaps[i] = p
		w.st.setIdle(uint32(p))
	}
	w.cur = -1
	gc, err := xproto.NewGcontextId(c)
	if err != nil {
		return lostConn(err)
	}
	if err := xproto.CreateGCChecked(c, gc, xproto.Drawable(win), xproto.GcForeground|xproto.GcGraphicsExposures,
		[]uint32{w.pix.value[0], 0}).Check(); err != nil {
		return fmt.Errorf("CreateGC: %w", err)
	}
	w.gc = gc
	if w.hasPresent {
		eid, err := c.NewId()
		if err != nil {
			return lostConn(err)
		}
		if err := w.present.selectInput(c, eid, win).Check(); err != nil {
			return fmt.Errorf("Present SelectInput: %w", err)
		}
		w.eid = eid
	}
	xproto.MapWindow(c, win)
	if err := w.st.waitMapped(ctx, FrameTimeout); err != nil {
		return err
	}
	return w.checkPlace()
}

// checkPlace verifies the window covers exactly the monitor.
func (w *Window) checkPlace() error {
	g, err := xproto.GetGeometry(w.c, xproto.Drawable(w.win)).Reply()
	if err != nil {
		return fmt.Errorf("GetGeometry: %w", lostConn(err))
	}
	t, err := xproto.TranslateCoordinates(w.c, w.win, w.scr.Root, 0, 0).Reply()
	if err != nil {
		return fmt.Errorf("TranslateCoordinates: %w", lostConn(err))
	}
	got := image.Rect(int(t.DstX), int(t.DstY), int(t.DstX)+int(g.Width), int(t.DstY)+int(g.Height))
	if got != w.mon.Rect || g.BorderWidth != 0 {
		return fmt.Errorf("window placed at %s (border %d), not over monitor %s", FormatGeometry(got), g.BorderWidth, w.mon)
	}
	return nil
}

// invisibleCursor is a cursor whose mask is empty: the pointer crossing
// the SLM's monitor must not be drawn into the phase pattern.
func (w *Window) invisibleCursor() (xproto.Cursor, error) {
	c := w.c
	pix, err := xproto.NewPixmapId(c)
	if err != nil {
		return 0, lostConn(err)
	}
	xproto.CreatePixmap(c, 1, pix, xproto.Drawable(w.scr.Root), 1, 1)
	gc, err := xproto.NewGcontextId(c)
	if err != nil {
		return 0, lostConn(err)
	}
	xproto.CreateGC(c, gc, xproto.Drawable(pix), xproto.GcForeground, []uint32{0})
	xproto.PolyFillRectangle(c, xproto.Drawable(pix), gc, []xproto.Rectangle{{Width: 1, Height: 1}})
	cur, err := xproto.NewCursorId(c)
	if err != nil {
		return 0, lostConn(err)
	}
	err = xproto.CreateCursorChecked(c, cur, pix, pix, 0, 0, 0, 0, 0, 0, 0, 0).Check()
	xproto.FreeGC(c, gc)
	xproto.FreePixmap(c, pix)
	if err != nil {
		return 0, fmt.Errorf("CreateCursor: %w", lostConn(err))
	}
	return cur, nil
}

// setProperties names the window for people and tools (xwininfo, a
// compositor) and asks a compositor not to redirect it.
func (w *Window) setProperties() {
	c := w.c
	title := "insitu SLM on " + w.mon.Name
	atom := func(name string) xproto.Atom {
		r, err := xproto.InternAtom(c, false, uint16(len(name)), name).Reply()
		if err != nil {
			return 0
		}
		return r.Atom
	}
	xproto.ChangeProperty(c, xproto.PropModeReplace, w.win, xproto.AtomWmName, xproto.AtomString, 8, uint32(len(title)), []byte(title))
	if a, u := atom("_NET_WM_NAME"), atom("UTF8_STRING"); a != 0 && u != 0 {
		xproto.ChangeProperty(c, xproto.PropModeReplace, w.win, a, u, 8, uint32(len(title)), []byte(title))
	}
	class := "insitu\x00insitu\x00"
	xproto.ChangeProperty(c, xproto.PropModeReplace, w.win, xproto.AtomWmClass, xproto.AtomString, 8, uint32(len(class)), []byte(class))
	if a := atom("_NET_WM_BYPASS_COMPOSITOR"); a != 0 {
		one := make([]byte, 4)
		binary.LittleEndian.PutUint32(one, 1)
		xproto.ChangeProperty(c, xproto.PropModeReplace, w.win, a, xproto.AtomCardinal, 32, 1, one)
	}
}

// String names the window by display and monitor.
func (w *Window) String() string { return fmt.Sprintf("x11(%s %s)", w.addr, w.mon.Name) }

// Size implements Display: the monitor's size.
func (w *Window) Size() (int, int) { return w.w, w.h }

// Monitor is the monitor the window covers.
func (w *Window) Monitor() Monitor { return w.mon }

// ID is the X window id (for tools such as xwininfo -id, and tests).
func (w *Window) ID() uint32 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return uint32(w.win)
}

// HasPresent reports whether frames are confirmed by Present's vblank.
func (w *Window) HasPresent() bool { return w.hasPresent }

// Err is nil while the window is usable, else why it is not (wrapping
// ErrLost).
func (w *Window) Err() error { return w.st.failure() }

// Done is closed when the window is lost (see Err).
func (w *Window) Done() <-chan struct{} { return w.st.done }

// Show implements Display: gray, row-major Width×Height, is shown and
// confirmed.
func (w *Window) Show(ctx context.Context, gray []uint8) error {
	_, err := w.ShowFrame(ctx, gray)
	return err
}

// ShowFrame shows gray and returns what the server confirmed.
func (w *Window) ShowFrame(ctx context.Context, gray []uint8) (Frame, error) {
	if len(gray) != w.w*w.h {
		return Frame{}, fmt.Errorf("%s: show: image has %d pixels, want %d×%d", w, len(gray), w.w, w.h)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable(); err != nil {
		return Frame{}, fmt.Errorf("%s: show: %w", w, err)
	}
	f, err := w.frame(ctx, gray)
	if err != nil {
		return f, fmt.Errorf("%s: show: %w", w, err)
	}
	return f, nil
}

// usable is nil when a frame may be shown. w.mu is held.
func (w *Window) usable() error {
	if err := w.st.latest(); err != nil {
		return err
	}
	return w.st.condition(w.mon.Name)
}

// Blank implements Display: an all-zero frame, the SLM's safe state. It is
// the one method that still works after the window was unmapped,
// destroyed or covered: it maps (or recreates) and raises the window before
// drawing. Only a lost connection, or a monitor that is gone, leaves it
// nothing to draw on.
func (w *Window) Blank(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.restore(ctx); err != nil {
		return fmt.Errorf("%s: blank: %w", w, err)
	}
	if _, err := w.frame(ctx, nil); err != nil {
		return fmt.Errorf("%s: blank: %w", w, err)
	}
	return nil
}

// restore brings back a window that was unmapped, destroyed or covered,
// on a connection that still works. w.mu is held.
func (w *Window) restore(ctx context.Context) error {
	switch s := w.st.snapshot(); {
	case s.connLost != nil:
		return s.connLost
	case s.monitorGone:
		return w.st.latest()
	case s.destroyed:
		w.freeResources()
		if err := w.createWindow(ctx); err != nil {
			return fmt.Errorf("recreating the window: %w (after: %w)", err, s.err)
		}
	case s.unmapped || s.moved || s.obscured:
		xproto.ConfigureWindow(w.c, w.win, xproto.ConfigWindowX|xproto.ConfigWindowY|xproto.ConfigWindowWidth|xproto.ConfigWindowHeight|xproto.ConfigWindowStackMode,
			[]uint32{uint32(int32(w.mon.Rect.Min.X)), uint32(int32(w.mon.Rect.Min.Y)), uint32(w.w), uint32(w.h), xproto.StackModeAbove})
		if s.unmapped {
			w.st.clearMapped()
		}
		xproto.MapWindow(w.c, w.win)
		if s.unmapped {
			if err := w.st.waitMapped(ctx, FrameTimeout); err != nil {
				return fmt.Errorf("remapping the window: %w (after: %w)", err, s.err)
			}
		}
		if err := w.checkPlace(); err != nil {
			return err
		}
		w.st.restored()
	}
	return nil
}

// frame uploads gray (nil: black) to the idle pixmap and puts it on
// screen, confirmed. w.mu is held.
func (w *Window) frame(ctx context.Context, gray []uint8) (Frame, error) {
	ctx, cancel := context.WithTimeout(ctx, FrameTimeout)
	defer cancel()
	k := 0
	if w.cur == 0 {
		k = 1
	}
	pix := w.pixmaps[k]
	if err := w.st.waitIdle(ctx, uint32(pix)); err != nil {
		return Frame{}, fmt.Errorf("waiting for the back pixmap to be idle: %w", err)
	}
	if gray == nil {
		xproto.PolyFillRectangle(w.c, xproto.Drawable(pix), w.gc, []xproto.Rectangle{{Width: uint16(w.w), Height: uint16(w.h)}})
	} else {
		w.upload(pix, gray)
	}
	var f Frame
	var ck *xgb.Cookie
	if w.hasPresent {
		w.serial++
		w.st.setBusy(uint32(pix))
		ck = w.present.pixmap(w.c, w.win, pix, w.serial)
	} else {
		ck = xproto.CopyAreaChecked(w.c, xproto.Drawable(pix), xproto.Drawable(w.win), w.gc, 0, 0, 0, 0, uint16(w.w), uint16(w.h)).Cookie
	}
	f.Written = time.Now()
	xproto.ForceScreenSaver(w.c, xproto.ScreenSaverReset)
	// The round trip: the server has every request of the frame.
	if err := check(ctx, ck); err != nil {
		return f, err
	}
	if w.hasPresent {
		ev, err := w.st.waitComplete(ctx, w.serial)
		if err != nil {
			return f, fmt.Errorf("waiting for the vblank (PresentCompleteNotify): %w", err)
		}
		if ev.mode == presentModeSkip {
			return f, fmt.Errorf("Present skipped frame %d", w.serial)
		}
		f.MSC, f.Present, f.Flip = ev.msc, true, ev.mode == presentModeFlip
	}
	f.Shown = time.Now()
	w.cur = k
	w.st.setCurrent(uint32(pix))
	// The server repaints any part of the window that gets exposed (a
	// popup that came and went) from the frame on screen.
	xproto.ChangeWindowAttributes(w.c, w.win, xproto.CwBackPixmap, []uint32{uint32(pix)})
	if err := w.st.condition(w.mon.Name); err != nil {
		return f, err // lost or covered while the frame went up
	}
	return f, nil
}

// check waits for a checked request's outcome, or ctx.
func check(ctx context.Context, ck *xgb.Cookie) error {
	done := make(chan error, 1)
	go func() { done <- ck.Check() }()
	select {
	case err := <-done:
		return lostConn(err)
	case <-ctx.Done():
		return fmt.Errorf("no reply from the X server: %w", context.Cause(ctx))
	}
}

// lostConn turns xgb's io.EOF for a closed connection into ErrLost.
func lostConn(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := err.(xgb.Error); ok {
		return err
	}
	return fmt.Errorf("connection to the X server closed (%v): %w", err, ErrLost)
}

// upload writes gray into pix with PutImage, in as few requests as the
// maximum request length allows (4 MiB at most each, so the staging buffer
// stays small), using the BIG-REQUESTS length form when one needs it.
func (w *Window) upload(pix xproto.Pixmap, gray []uint8) {
	stride := w.pix.stride(w.w)
	rows := max(1, min(w.h, (min(w.maxReq, 4<<20)-28)/stride))
	for y0 := 0; y0 < w.h; y0 += rows {
		n := min(rows, w.h-y0)
		size := 24 + n*stride
		ext := size/4 > 0xffff
		if ext {
			size += 4
		}
		if cap(w.req) < size {
			w.req = make([]byte, size)
		}
		b := w.req[:size]
		b[0], b[1] = 72, xproto.ImageFormatZPixmap // PutImage
		h := b[4:]
		if ext {
			binary.LittleEndian.PutUint16(b[2:], 0)
			binary.LittleEndian.PutUint32(b[4:], uint32(size/4))
			h = b[8:]
		} else {
			binary.LittleEndian.PutUint16(b[2:], uint16(size/4))
		}
		binary.LittleEndian.PutUint32(h[0:], uint32(pix))
		binary.LittleEndian.PutUint32(h[4:], uint32(w.gc))
		binary.LittleEndian.PutUint16(h[8:], uint16(w.w))
		binary.LittleEndian.PutUint16(h[10:], uint16(n))
		binary.LittleEndian.PutUint16(h[12:], 0)
		binary.LittleEndian.PutUint16(h[14:], uint16(y0))
		h[16], h[17], h[18], h[19] = 0, w.pix.depth, 0, 0
		w.pix.pack(h[20:], gray[y0*w.w:(y0+n)*w.w], w.w, stride)
		w.c.NewRequest(b, w.c.NewCookie(false, false))
	}
}

// pack writes rows of gray (w pixels each) into dst in the pixel format,
// stride bytes a row.
func (pf *pixelFormat) pack(dst []byte, gray []uint8, w, stride int) {
	for y := 0; y*w < len(gray); y++ {
		row, src := dst[y*stride:(y+1)*stride], gray[y*w:(y+1)*w]
		switch {
		case pf.bpp == 32 && pf.order == binary.LittleEndian:
			for x, g := range src {
				binary.LittleEndian.PutUint32(row[4*x:], pf.value[g])
			}
		case pf.bpp == 32:
			for x, g := range src {
				binary.BigEndian.PutUint32(row[4*x:], pf.value[g])
			}
		default: // 24 bits per pixel
			for x, g := range src {
				v := pf.value[g]
				if pf.order == binary.LittleEndian {
					row[3*x], row[3*x+1], row[3*x+2] = byte(v), byte(v>>8), byte(v>>16)
				} else {
					row[3*x], row[3*x+1], row[3*x+2] = byte(v>>16), byte(v>>8), byte(v)
				}
			}
		}
	}
}

// keepAwake resets the screen saver (and with it the DPMS timer) while the
// window is open: a monitor that blanks itself mid-run is an SLM showing
// nothing.
func (w *Window) keepAwake() {
	defer w.done.Done()
	t := time.NewTicker(w.screensave)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			xproto.ForceScreenSaver(w.c, xproto.ScreenSaverReset)
		case <-w.stop:
			return
		case <-w.st.done:
			return
		}
	}
}

// freeResources frees the window's server resources (not the
// connection). w.mu is held.
func (w *Window) freeResources() {
	for i, p := range w.pixmaps {
		if p != 0 {
			xproto.FreePixmap(w.c, p)
			w.pixmaps[i] = 0
		}
	}
	if w.gc != 0 {
		xproto.FreeGC(w.c, w.gc)
		w.gc = 0
	}
	if w.cursor != 0 {
		xproto.FreeCursor(w.c, w.cursor)
		w.cursor = 0
	}
}

// Close destroys the window and closes the connection. It does not blank:
// destroying the window leaves the monitor to the desktop, and the safe
// state (Blank) runs before Close.
func (w *Window) Close() error {
	w.mu.Lock()
	select {
	case <-w.stop:
		w.mu.Unlock()
		return nil
	default:
	}
	close(w.stop)
	if w.st.snapshot().connLost == nil {
		w.st.closingNow()
		xproto.DestroyWindow(w.c, w.win)
		w.freeResources()
		xproto.GetInputFocus(w.c).Reply() // flush before closing
	}
	w.mu.Unlock()
	w.c.Close()
	w.done.Wait()
	return nil
}
