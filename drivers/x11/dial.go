package x11

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Addr is a parsed X display name, [protocol/][host]:display[.screen], as
// in $DISPLAY. An empty host (or "unix") means the local Unix socket.
type Addr struct {
	Protocol string // "tcp", "unix" or "" (Unix socket for an empty host, else TCP)
	Host     string
	Display  int
	Screen   int
}

// String formats a like $DISPLAY.
func (a Addr) String() string {
	s := a.Host + ":" + strconv.Itoa(a.Display)
	if a.Protocol != "" {
		s = a.Protocol + "/" + s
	}
	if a.Screen != 0 {
		s += "." + strconv.Itoa(a.Screen)
	}
	return s
}

// ParseDisplay parses an X display name; an empty one is $DISPLAY.
func ParseDisplay(name string) (Addr, error) {
	if name == "" {
		name = os.Getenv("DISPLAY")
		if name == "" {
			return Addr{}, errors.New("x11: no display: $DISPLAY is empty and none was given")
		}
	}
	var a Addr
	rest := name
	if i := strings.LastIndex(rest, "/"); i >= 0 {
		a.Protocol, rest = rest[:i], rest[i+1:]
		if a.Protocol != "tcp" && a.Protocol != "unix" {
			return Addr{}, fmt.Errorf("x11: display %q: protocol %q: want tcp or unix", name, a.Protocol)
		}
	}
	i := strings.LastIndex(rest, ":")
	if i < 0 {
		return Addr{}, fmt.Errorf("x11: display %q: want [host]:display[.screen]", name)
	}
	a.Host, rest = rest[:i], rest[i+1:]
	if strings.HasPrefix(a.Host, "[") && strings.HasSuffix(a.Host, "]") { // [::1]:0
		a.Host = a.Host[1 : len(a.Host)-1]
	}
	num, scr, dot := strings.Cut(rest, ".")
	d, err := strconv.Atoi(num)
	if err != nil || d < 0 || d > 65535-6000 || num != strconv.Itoa(d) {
		return Addr{}, fmt.Errorf("x11: display %q: display number %q is not a number in 0..59535", name, num)
	}
	a.Display = d
	if dot {
		s, err := strconv.Atoi(scr)
		if err != nil || s < 0 || s > 255 || scr != strconv.Itoa(s) {
			return Addr{}, fmt.Errorf("x11: display %q: screen %q is not a number in 0..255", name, scr)
		}
		a.Screen = s
	}
	if a.Host == "unix" {
		a.Host, a.Protocol = "", "unix"
	}
	if a.Protocol == "unix" && a.Host != "" {
		return Addr{}, fmt.Errorf("x11: display %q: a Unix socket has no host", name)
	}
	return a, nil
}

func (a Addr) local() bool { return a.Host == "" }

// dial connects to the display's socket: the Unix socket (the file, then
// Linux's abstract name) for a local display, TCP port 6000+display for a
// remote one.
func (a Addr) dial(ctx context.Context) (net.Conn, error) {
	var d net.Dialer
	if a.local() {
		path := "/tmp/.X11-unix/X" + strconv.Itoa(a.Display)
		c, err := d.DialContext(ctx, "unix", path)
		if err == nil {
			return c, nil
		}
		if c2, err2 := d.DialContext(ctx, "unix", "@"+path); err2 == nil {
			return c2, nil
		}
		return nil, err
	}
	return d.DialContext(ctx, "tcp", net.JoinHostPort(a.Host, strconv.Itoa(6000+a.Display)))
}

// Xauthority address families (Xauth.h).
const (
	familyInternet  = 0
	familyInternet6 = 6
	familyLocal     = 256
	familyWild      = 65535
)

// authority returns the MIT-MAGIC-COOKIE-1 for a from the Xauthority file
// ($XAUTHORITY, else ~/.Xauthority). No file or no entry means no
// authorization, which servers with host-based access (Xvfb, a local
// session after xhost +si:localuser:…) accept.
func (a Addr) authority() (name string, data []byte, err error) {
	path := os.Getenv("XAUTHORITY")
	if path == "" {
		home, herr := os.UserHomeDir()
		if herr != nil {
			return "", nil, nil
		}
		path = filepath.Join(home, ".Xauthority")
	}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil, nil
	}
	if err != nil {
		return "", nil, fmt.Errorf("x11: %w", err)
	}
	defer f.Close()
	entries, err := parseXauthority(bufio.NewReader(f))
	if err != nil {
		return "", nil, fmt.Errorf("x11: %s: %w", path, err)
	}
	host, _ := os.Hostname()
	var ips []net.IP
	if !a.local() {
		if a.Host == "localhost" || a.Host == host {
			ips = nil // a local address: FamilyLocal entries apply
		} else if ip := net.ParseIP(a.Host); ip != nil {
			ips = []net.IP{ip}
		} else if addrs, lerr := net.LookupIP(a.Host); lerr == nil {
			ips = addrs
		}
	}
	disp := strconv.Itoa(a.Display)
	for _, e := range entries {
		if e.Name != "MIT-MAGIC-COOKIE-1" || (e.Display != "" && e.Display != disp) {
			continue
		}
		match := false
		switch e.Family {
		case familyWild:
			match = true
		case familyLocal:
			match = len(ips) == 0 && string(e.Address) == host
		case familyInternet, familyInternet6:
			for _, ip := range ips {
				match = match || ip.Equal(net.IP(e.Address))
			}
		}
		if match {
			return e.Name, e.Data, nil
		}
	}
	return "", nil, nil
}

// xauthEntry is one record of an Xauthority file.
type xauthEntry struct {
	Family  uint16
	Address []byte
	Display string
	Name    string
	Data    []byte
}

// parseXauthority reads every record: big-endian family, then four
// length-prefixed fields (address, display number, auth name, auth data).
func parseXauthority(r io.Reader) ([]xauthEntry, error) {
	var out []xauthEntry
	field := func() ([]byte, error) {
		var n uint16
		if err := binary.Read(r, binary.BigEndian, &n); err != nil {
			return nil, err
		}
		b := make([]byte, n)
		_, err := io.ReadFull(r, b)
		return b, err
	}
	for {
		var e xauthEntry
		if err := binary.Read(r, binary.BigEndian, &e.Family); err == io.EOF {
			return out, nil
		} else if err != nil {
			return nil, err
		}
		var f [4][]byte
		for i := range f {
			b, err := field()
			if err != nil {
				return nil, fmt.Errorf("record %d: %w", len(out), noEOF(err))
			}
			f[i] = b
		}
		e.Address, e.Display, e.Name, e.Data = f[0], string(f[1]), string(f[2]), f[3]
		out = append(out, e)
	}
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
