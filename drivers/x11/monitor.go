package x11

import (
	"fmt"
	"image"
	"slices"
	"strconv"
	"strings"

	"github.com/jezek/xgb"
	"github.com/jezek/xgb/randr"
	"github.com/jezek/xgb/xproto"
)

// Monitor is a rectangle of the X screen that one display shows, as RandR
// 1.5 reports it (a monitor is usually one output: "HDMI-1").
type Monitor struct {
	Name    string
	Outputs []string // the RandR outputs that show it
	Rect    image.Rectangle
	Primary bool
	// Desktop is set on the monitor that holds the operator's desktop: the
	// primary one, else the only one, else the one at the screen's origin
	// (where desktops put their panel when no monitor is primary).
	Desktop bool
}

// String is "HDMI-1 1920x1152+1920+0", with "primary" or "desktop" after it
// when it is.
func (m Monitor) String() string {
	s := m.Name + " " + FormatGeometry(m.Rect)
	if len(m.Outputs) > 0 && (len(m.Outputs) > 1 || m.Outputs[0] != m.Name) {
		s += " (outputs " + strings.Join(m.Outputs, ", ") + ")"
	}
	switch {
	case m.Primary:
		s += " primary"
	case m.Desktop:
		s += " desktop"
	}
	return s
}

// FormatGeometry writes r as X geometry, WxH+X+Y (a negative offset as
// +-X, as xrandr prints it).
func FormatGeometry(r image.Rectangle) string {
	return fmt.Sprintf("%dx%d+%d+%d", r.Dx(), r.Dy(), r.Min.X, r.Min.Y)
}

// ParseGeometry reads WxH+X+Y: a positive size and an offset of the
// monitor's top-left corner in screen coordinates. An offset may be
// negative, written +-X or -X (a monitor left of or above the origin; not
// X's "from the right edge").
func ParseGeometry(s string) (image.Rectangle, error) {
	bad := func(why string) (image.Rectangle, error) {
		return image.Rectangle{}, fmt.Errorf("geometry %q: %s (want WxH+X+Y, e.g. 1920x1152+1920+0)", s, why)
	}
	i := strings.IndexAny(s, "+-")
	if i < 0 {
		return bad("no offset")
	}
	ws, hs, ok := strings.Cut(s[:i], "x")
	if !ok {
		return bad("no size")
	}
	w, err1 := dec(ws)
	h, err2 := dec(hs)
	if err1 != nil || err2 != nil || w <= 0 || h <= 0 || w > 1<<15 || h > 1<<15 {
		return bad("size must be two positive numbers up to 32768")
	}
	rest := s[i:]
	var off [2]int
	for k := range off {
		if rest == "" {
			return bad("want two offsets")
		}
		neg := false
		switch {
		case strings.HasPrefix(rest, "+-"):
			neg, rest = true, rest[2:]
		case rest[0] == '-':
			neg, rest = true, rest[1:]
		case rest[0] == '+':
			rest = rest[1:]
		default:
			return bad("offsets start with + or -")
		}
		j := strings.IndexAny(rest, "+-")
		if j < 0 {
			j = len(rest)
		}
		v, err := dec(rest[:j])
		if err != nil || v > 1<<15 {
			return bad("offsets must be numbers up to 32768")
		}
		if neg {
			v = -v
		}
		off[k], rest = v, rest[j:]
	}
	if rest != "" {
		return bad("trailing " + strconv.Quote(rest))
	}
	return image.Rect(off[0], off[1], off[0]+w, off[1]+h), nil
}

// dec is a plain decimal: digits only, no sign, no leading zeros but "0".
func dec(s string) (int, error) {
	v, err := strconv.Atoi(s)
	if err != nil || s != strconv.Itoa(v) || v < 0 {
		return 0, fmt.Errorf("%q is not a plain number", s)
	}
	return v, nil
}

// listMonitors asks the server for its monitors: RandR 1.5's monitors,
// else RandR 1.2's active outputs, else one monitor, the whole screen.
func listMonitors(c *xgb.Conn, scr *xproto.ScreenInfo, rrMinor uint32, hasRandR bool) ([]Monitor, error) {
	var ms []Monitor
	var err error
	switch {
	case hasRandR && rrMinor >= 5:
		ms, err = randrMonitors(c, scr.Root)
	case hasRandR && rrMinor >= 2:
		ms, err = randrOutputs(c, scr.Root)
	}
	if err != nil {
		return nil, err
	}
	if len(ms) == 0 {
		ms = []Monitor{{Name: "screen", Rect: image.Rect(0, 0, int(scr.WidthInPixels), int(scr.HeightInPixels))}}
	}
	markDesktop(ms)
	return ms, nil
}

// markDesktop sets Desktop on the monitor that holds the operator's
// desktop.
func markDesktop(ms []Monitor) {
	i := slices.IndexFunc(ms, func(m Monitor) bool { return m.Primary })
	if i < 0 && len(ms) == 1 {
		i = 0
	}
	if i < 0 {
		i = slices.IndexFunc(ms, func(m Monitor) bool { return m.Rect.Min == image.Point{} })
	}
	if i >= 0 {
		ms[i].Desktop = true
	}
}

func randrMonitors(c *xgb.Conn, root xproto.Window) ([]Monitor, error) {
	r, err := randr.GetMonitors(c, root, true).Reply()
	if err != nil {
		return nil, fmt.Errorf("RandR GetMonitors: %w", err)
	}
	var ms []Monitor
	names := map[xproto.Atom]string{}
	atom := func(a xproto.Atom) (string, error) {
		if n, ok := names[a]; ok {
			return n, nil
		}
		n, err := xproto.GetAtomName(c, a).Reply()
		if err != nil {
			return "", fmt.Errorf("GetAtomName %d: %w", a, err)
		}
		names[a] = n.Name
		return n.Name, nil
	}
	for _, mi := range r.Monitors {
		name, err := atom(mi.Name)
		if err != nil {
			return nil, err
		}
		m := Monitor{Name: name, Primary: mi.Primary,
			Rect: image.Rect(int(mi.X), int(mi.Y), int(mi.X)+int(mi.Width), int(mi.Y)+int(mi.Height))}
		for _, o := range mi.Outputs {
			oi, err := randr.GetOutputInfo(c, o, r.Timestamp).Reply()
			if err != nil {
				return nil, fmt.Errorf("RandR GetOutputInfo %d: %w", o, err)
			}
			m.Outputs = append(m.Outputs, string(oi.Name))
		}
		ms = append(ms, m)
	}
	return ms, nil
}

// randrOutputs makes one monitor per connected output that has a CRTC.
func randrOutputs(c *xgb.Conn, root xproto.Window) ([]Monitor, error) {
	res, err := randr.GetScreenResourcesCurrent(c, root).Reply()
	if err != nil {
		return nil, fmt.Errorf("RandR GetScreenResourcesCurrent: %w", err)
	}
	prim, err := randr.GetOutputPrimary(c, root).Reply()
	if err != nil {
		return nil, fmt.Errorf("RandR GetOutputPrimary: %w", err)
	}
	var ms []Monitor
	for _, o := range res.Outputs {
		oi, err := randr.GetOutputInfo(c, o, res.ConfigTimestamp).Reply()
		if err != nil {
			return nil, fmt.Errorf("RandR GetOutputInfo %d: %w", o, err)
		}
		if oi.Crtc == 0 || oi.Connection != randr.ConnectionConnected {
			continue
		}
		ci, err := randr.GetCrtcInfo(c, oi.Crtc, res.ConfigTimestamp).Reply()
		if err != nil {
			return nil, fmt.Errorf("RandR GetCrtcInfo %d: %w", oi.Crtc, err)
		}
		if ci.Width == 0 || ci.Height == 0 {
			continue
		}
		name := string(oi.Name)
		ms = append(ms, Monitor{Name: name, Outputs: []string{name}, Primary: o == prim.Output,
			Rect: image.Rect(int(ci.X), int(ci.Y), int(ci.X)+int(ci.Width), int(ci.Y)+int(ci.Height))})
	}
	return ms, nil
}

// Selector picks one monitor: by name (a monitor's, or one of its
// outputs'), by geometry, or both (they must agree). With neither it takes
// the only monitor that may be used.
type Selector struct {
	Output   string
	Geometry string
	// AllowPrimary permits a monitor that holds or overlaps the operator's
	// desktop.
	AllowPrimary bool
}

// Select picks the monitor s names among ms. Every error lists the
// monitors there are.
func (s Selector) Select(ms []Monitor) (Monitor, error) {
	list := func() string {
		var b strings.Builder
		for _, m := range ms {
			b.WriteString("\n  ")
			b.WriteString(m.String())
		}
		return b.String()
	}
	var geo image.Rectangle
	if s.Geometry != "" {
		g, err := ParseGeometry(s.Geometry)
		if err != nil {
			return Monitor{}, err
		}
		geo = g
	}
	var cand []Monitor
	for _, m := range ms {
		if s.Output != "" && m.Name != s.Output && !slices.Contains(m.Outputs, s.Output) {
			continue
		}
		if s.Geometry != "" && m.Rect != geo {
			continue
		}
		if s.Output == "" && s.Geometry == "" && !s.AllowPrimary && s.CoversDesktop(m, ms) {
			continue
		}
		cand = append(cand, m)
	}
	var what string
	switch {
	case s.Output != "" && s.Geometry != "":
		what = fmt.Sprintf("output %q with geometry %s", s.Output, s.Geometry)
	case s.Output != "":
		what = fmt.Sprintf("output %q", s.Output)
	case s.Geometry != "":
		what = "geometry " + s.Geometry
	}
	switch {
	case len(cand) == 0 && what != "":
		return Monitor{}, fmt.Errorf("no monitor with %s; the monitors are:%s", what, list())
	case len(cand) == 0:
		return Monitor{}, fmt.Errorf("every monitor holds or overlaps the desktop: name one with output or geometry and set allow_primary: true to use it; the monitors are:%s", list())
	case len(cand) > 1 && what == "":
		return Monitor{}, fmt.Errorf("%d monitors could be the SLM: name one with output or geometry; the monitors are:%s", len(cand), list())
	case len(cand) > 1:
		return Monitor{}, fmt.Errorf("%d monitors match %s: add geometry; the monitors are:%s", len(cand), what, list())
	}
	m := cand[0]
	if !s.AllowPrimary && s.CoversDesktop(m, ms) {
		return Monitor{}, fmt.Errorf("monitor %s holds or overlaps the operator's desktop: a full-screen SLM window there would cover it (set allow_primary: true to use it anyway); the monitors are:%s", m, list())
	}
	return m, nil
}

// CoversDesktop reports whether a window over m would cover any of the
// monitor holding the desktop (see Monitor.Desktop) among ms.
func (Selector) CoversDesktop(m Monitor, ms []Monitor) bool {
	for _, d := range ms {
		if d.Desktop && d.Rect.Overlaps(m.Rect) {
			return true
		}
	}
	return false
}
