// Package x11test starts a private Xvfb server for tests and reads it back
// through an independent X connection, as net/http/httptest does for HTTP.
//
// Start skips the test when Xvfb is not installed, except when the
// environment variable CI is set: there the X11 tests must run, and a
// missing Xvfb fails them.
package x11test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"image"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jezek/xgb"
	"github.com/jezek/xgb/randr"
	"github.com/jezek/xgb/xproto"
)

// Server is a running Xvfb with one screen.
type Server struct {
	Display string // ":N", for $DISPLAY
	W, H    int

	cmd  *exec.Cmd
	exit chan struct{}
	conn *xgb.Conn // the test's own connection; holds the monitors it adds

	mm int // physical width change, for Replug

	mu     sync.Mutex
	killed bool
}

// Start runs Xvfb with a w×h, 24-bit screen on a display number it picks
// itself (-displayfd), and stops it when the test ends. args go to Xvfb
// (e.g. "-extension", "Present" to run without Present).
func Start(tb testing.TB, w, h int, args ...string) *Server {
	tb.Helper()
	return start(tb, w, h, "", "", args)
}

// StartAuth starts Xvfb as Start does, but accepting only clients that
// present a MIT-MAGIC-COOKIE-1, as a desktop session's server does. The
// cookie is written with xauth to a file that XAUTHORITY names for the
// rest of the test; the file's path is returned.
func StartAuth(tb testing.TB, w, h int) (*Server, string) {
	tb.Helper()
	need(tb, "xauth")
	dir := tb.TempDir()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	cookie := hex.EncodeToString(b)
	// The server accepts every cookie of its -auth file, whatever display
	// the entry names.
	serverFile := filepath.Join(dir, "server")
	xauth(tb, serverFile, "add", ":0", ".", cookie)
	clientFile := filepath.Join(dir, "client")
	s := start(tb, w, h, clientFile, cookie, []string{"-auth", serverFile})
	return s, clientFile
}

func xauth(tb testing.TB, file string, args ...string) {
	tb.Helper()
	out, err := exec.Command("xauth", append([]string{"-q", "-f", file}, args...)...).CombinedOutput()
	if err != nil {
		tb.Fatalf("xauth %v: %v: %s", args, err, out)
	}
}

// need skips (or, in CI, fails) a test without the program name.
func need(tb testing.TB, name string) string {
	tb.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			tb.Fatalf("%s is required in CI (see .ci/run): %v", name, err)
		}
		tb.Skipf("%s not installed: %v", name, err)
	}
	return path
}

// start runs Xvfb; with a cookie it writes the display's entry to
// cookieFile and points XAUTHORITY at it before connecting.
func start(tb testing.TB, w, h int, cookieFile, cookie string, args []string) *Server {
	tb.Helper()
	path := need(tb, "Xvfb")
	r, wr, err := os.Pipe()
	if err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(path, append([]string{"-displayfd", "3", "-screen", "0", fmt.Sprintf("%dx%dx24", w, h), "-nolisten", "tcp", "-noreset"}, args...)...)
	cmd.ExtraFiles = []*os.File{wr}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		tb.Fatalf("starting Xvfb: %v", err)
	}
	wr.Close()
	s := &Server{W: w, H: h, cmd: cmd, exit: make(chan struct{})}
	go func() { cmd.Wait(); close(s.exit) }()
	tb.Cleanup(func() {
		if s.conn != nil {
			s.conn.Close()
		}
		s.Kill()
	})
	line := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(r).ReadString('\n')
		r.Close()
		line <- l
	}()
	select {
	case l := <-line:
		n, err := strconv.Atoi(strings.TrimSpace(l))
		if err != nil {
			tb.Fatalf("Xvfb did not report its display (%q): %s", l, stderr.String())
		}
		s.Display = ":" + strconv.Itoa(n)
	case <-time.After(20 * time.Second):
		tb.Fatalf("Xvfb did not start within 20 s: %s", stderr.String())
	}
	if cookie != "" {
		xauth(tb, cookieFile, "add", s.Display, ".", cookie)
		tb.Setenv("XAUTHORITY", cookieFile)
	}
	c, err := xgb.NewConnDisplay(s.Display)
	if err != nil {
		tb.Fatalf("connecting to Xvfb %s: %v", s.Display, err)
	}
	s.conn = c
	if err := randr.Init(c); err != nil {
		tb.Fatalf("Xvfb %s has no RandR: %v", s.Display, err)
	}
	return s
}

// Kill stops the server at once (SIGKILL), as a crash would, and waits
// for it to exit.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.killed {
		return
	}
	s.killed = true
	s.cmd.Process.Kill()
	<-s.exit
}

// Conn is the test's own connection to the server.
func (s *Server) Conn() *xgb.Conn { return s.conn }

func (s *Server) root() xproto.Window { return xproto.Setup(s.conn).DefaultScreen(s.conn).Root }

// AddMonitor defines a RandR 1.5 monitor (no outputs) on the test's
// connection; it lasts while the server runs (the server drops a client's
// monitors when that client disconnects).
func (s *Server) AddMonitor(tb testing.TB, name string, r image.Rectangle, primary bool) {
	tb.Helper()
	a, err := xproto.InternAtom(s.conn, false, uint16(len(name)), name).Reply()
	if err != nil {
		tb.Fatal(err)
	}
	err = randr.SetMonitorChecked(s.conn, s.root(), randr.MonitorInfo{
		Name: a.Atom, Primary: primary, X: int16(r.Min.X), Y: int16(r.Min.Y),
		Width: uint16(r.Dx()), Height: uint16(r.Dy()), WidthInMillimeters: uint32(r.Dx() / 4), HeightInMillimeters: uint32(r.Dy() / 4),
	}).Check()
	if err != nil {
		tb.Fatalf("SetMonitor %s: %v", name, err)
	}
}

// DeleteMonitor removes a monitor AddMonitor defined.
func (s *Server) DeleteMonitor(tb testing.TB, name string) {
	tb.Helper()
	a, err := xproto.InternAtom(s.conn, true, uint16(len(name)), name).Reply()
	if err != nil {
		tb.Fatal(err)
	}
	if err := randr.DeleteMonitorChecked(s.conn, s.root(), a.Atom).Check(); err != nil {
		tb.Fatalf("DeleteMonitor %s: %v", name, err)
	}
}

// Replug stands for a display hotplug: RandR monitors come and go without
// an event, so it also sets the screen size anew (its physical size
// changed), which sends every RandR client a ScreenChangeNotify.
func (s *Server) Replug(tb testing.TB) {
	tb.Helper()
	s.mm++
	err := randr.SetScreenSizeChecked(s.conn, s.root(), uint16(s.W), uint16(s.H), uint32(s.W/4+s.mm), uint32(s.H/4)).Check()
	if err != nil {
		tb.Fatalf("SetScreenSize: %v", err)
	}
}

// Gray reads the rectangle r of the screen (root coordinates) back with
// GetImage and returns its gray levels, row-major; a pixel whose red,
// green and blue differ is an error.
func (s *Server) Gray(r image.Rectangle) ([]uint8, error) {
	return s.read(xproto.Drawable(s.root()), r)
}

// WindowGray reads window win's contents back.
func (s *Server) WindowGray(win uint32, r image.Rectangle) ([]uint8, error) {
	return s.read(xproto.Drawable(win), r)
}

func (s *Server) read(d xproto.Drawable, r image.Rectangle) ([]uint8, error) {
	setup := xproto.Setup(s.conn)
	var bpp int
	for _, f := range setup.PixmapFormats {
		if f.Depth == 24 {
			bpp = int(f.BitsPerPixel)
		}
	}
	if bpp != 32 {
		return nil, fmt.Errorf("depth 24 at %d bits per pixel: this reader wants 32", bpp)
	}
	out := make([]uint8, 0, r.Dx()*r.Dy())
	// GetImage replies are bounded by the request length in 32-bit
	// units, so read in bands.
	band := max(1, (1<<22)/(4*r.Dx()))
	for y := r.Min.Y; y < r.Max.Y; y += band {
		n := min(band, r.Max.Y-y)
		img, err := xproto.GetImage(s.conn, xproto.ImageFormatZPixmap, d, int16(r.Min.X), int16(y), uint16(r.Dx()), uint16(n), 0xffffffff).Reply()
		if err != nil {
			return nil, fmt.Errorf("GetImage: %w", err)
		}
		if len(img.Data) < 4*r.Dx()*n {
			return nil, fmt.Errorf("GetImage returned %d bytes for %dx%d", len(img.Data), r.Dx(), n)
		}
		for i := range r.Dx() * n {
			b, g, rr := img.Data[4*i], img.Data[4*i+1], img.Data[4*i+2]
			if b != g || g != rr {
				return nil, fmt.Errorf("pixel (%d, %d) is not gray: R %d G %d B %d", r.Min.X+i%r.Dx(), y+i/r.Dx(), rr, g, b)
			}
			out = append(out, g)
		}
	}
	return out, nil
}

// Cover maps an override-redirect window over r (another client's popup)
// and returns a function that removes it.
func (s *Server) Cover(tb testing.TB, r image.Rectangle) func() {
	tb.Helper()
	c, err := xgb.NewConnDisplay(s.Display)
	if err != nil {
		tb.Fatal(err)
	}
	win, err := xproto.NewWindowId(c)
	if err != nil {
		tb.Fatal(err)
	}
	err = xproto.CreateWindowChecked(c, xproto.WindowClassCopyFromParent, win, xproto.Setup(c).DefaultScreen(c).Root,
		int16(r.Min.X), int16(r.Min.Y), uint16(r.Dx()), uint16(r.Dy()), 0, xproto.WindowClassInputOutput, 0,
		xproto.CwBackPixel|xproto.CwOverrideRedirect, []uint32{0xffffff, 1}).Check()
	if err != nil {
		tb.Fatal(err)
	}
	xproto.MapWindow(c, win)
	xproto.GetInputFocus(c).Reply()
	return func() {
		xproto.DestroyWindow(c, win)
		xproto.GetInputFocus(c).Reply()
		c.Close()
	}
}

// Unmap unmaps window win from the test's connection, as a window manager
// or xdotool would.
func (s *Server) Unmap(win uint32) error {
	xproto.UnmapWindow(s.conn, xproto.Window(win))
	_, err := xproto.GetInputFocus(s.conn).Reply()
	return err
}

// Destroy destroys window win from the test's connection (xkill).
func (s *Server) Destroy(win uint32) error {
	xproto.DestroyWindow(s.conn, xproto.Window(win))
	_, err := xproto.GetInputFocus(s.conn).Reply()
	return err
}

// Geometry returns where window win is, in root coordinates, and its
// border width.
func (s *Server) Geometry(win uint32) (image.Rectangle, int, error) {
	g, err := xproto.GetGeometry(s.conn, xproto.Drawable(win)).Reply()
	if err != nil {
		return image.Rectangle{}, 0, err
	}
	t, err := xproto.TranslateCoordinates(s.conn, xproto.Window(win), s.root(), 0, 0).Reply()
	if err != nil {
		return image.Rectangle{}, 0, err
	}
	return image.Rect(int(t.DstX), int(t.DstY), int(t.DstX)+int(g.Width), int(t.DstY)+int(g.Height)), int(g.BorderWidth), nil
}

// Attributes reports whether window win is mapped and override-redirect.
func (s *Server) Attributes(win uint32) (viewable, override bool, err error) {
	a, err := xproto.GetWindowAttributes(s.conn, xproto.Window(win)).Reply()
	if err != nil {
		return false, false, err
	}
	return a.MapState == xproto.MapStateViewable, a.OverrideRedirect, nil
}

// WaitFor polls cond every 5 ms until it holds or d passes.
func WaitFor(ctx context.Context, d time.Duration, cond func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			return errors.New("condition not met in time")
		case <-time.After(5 * time.Millisecond):
		}
	}
	return nil
}
