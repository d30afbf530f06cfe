package x11

import (
	"bytes"
	"encoding/binary"
	"errors"
	"image"
	"io"
	"net"
	"testing"
)

func FuzzParseGeometry(f *testing.F) {
	for _, s := range []string{"1920x1152+1920+0", "800x600+-800+0", "800x600-800-10", "1x1+0+0", "0x5+0+0", "19x+0+0", "1920x1080", "+0+0", "5x5+0+0+0", "01x5+0+0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseGeometry(s)
		if err != nil {
			return
		}
		if r.Dx() <= 0 || r.Dy() <= 0 {
			t.Fatalf("%q: empty rectangle %v", s, r)
		}
		back, err := ParseGeometry(FormatGeometry(r))
		if err != nil || back != r {
			t.Fatalf("%q → %v → %q → %v, %v", s, r, FormatGeometry(r), back, err)
		}
	})
}

func TestParseGeometry(t *testing.T) {
	for s, want := range map[string]image.Rectangle{
		"1920x1152+1920+0": image.Rect(1920, 0, 3840, 1152),
		"800x600+-800+0":   image.Rect(-800, 0, 0, 600),
		"800x600-800-10":   image.Rect(-800, -10, 0, 590),
	} {
		if got, err := ParseGeometry(s); err != nil || got != want {
			t.Errorf("%q: %v, %v; want %v", s, got, err, want)
		}
	}
	for _, s := range []string{"", "1920x1080", "0x5+0+0", "5x5+0", "5x5+0+0+0", "5x5+a+0", "x5+0+0", "5x5 +0+0", "+5x5+0+0"} {
		if _, err := ParseGeometry(s); err == nil {
			t.Errorf("%q parsed", s)
		}
	}
}

func FuzzParseDisplay(f *testing.F) {
	for _, s := range []string{":0", ":1.0", "unix:2", "localhost:10.1", "tcp/host:3", "[::1]:0", "unix/:7", "host:", ":x", ":0.", "/tmp/.X11-unix/X0:0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if s == "" {
			return // $DISPLAY
		}
		a, err := ParseDisplay(s)
		if err != nil {
			return
		}
		if a.Display < 0 || a.Screen < 0 || a.Screen > 255 {
			t.Fatalf("%q: %+v", s, a)
		}
		b, err := ParseDisplay(a.String())
		if err != nil || b != a {
			t.Fatalf("%q → %+v → %q → %+v, %v", s, a, a.String(), b, err)
		}
	})
}

func TestParseDisplay(t *testing.T) {
	for s, want := range map[string]Addr{
		":0":             {Display: 0},
		":12.1":          {Display: 12, Screen: 1},
		"unix:3":         {Protocol: "unix", Display: 3},
		"localhost:10.0": {Host: "localhost", Display: 10},
		"tcp/lab-pc:2":   {Protocol: "tcp", Host: "lab-pc", Display: 2},
		"[::1]:4":        {Host: "::1", Display: 4},
	} {
		if got, err := ParseDisplay(s); err != nil || got != want {
			t.Errorf("%q: %+v, %v; want %+v", s, got, err, want)
		}
	}
	for _, s := range []string{"0", ":", ":x", ":-1", ":0.x", "ssh/host:0", "unix/host:0", ":01"} {
		if _, err := ParseDisplay(s); err == nil {
			t.Errorf("%q parsed", s)
		}
	}
}

func FuzzParseXauthority(f *testing.F) {
	var rec bytes.Buffer
	put := func(b []byte) {
		binary.Write(&rec, binary.BigEndian, uint16(len(b)))
		rec.Write(b)
	}
	binary.Write(&rec, binary.BigEndian, uint16(familyLocal))
	put([]byte("host"))
	put([]byte("0"))
	put([]byte("MIT-MAGIC-COOKIE-1"))
	put(bytes.Repeat([]byte{7}, 16))
	f.Add(rec.Bytes())
	f.Add(rec.Bytes()[:10])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		es, err := parseXauthority(bytes.NewReader(b))
		if err != nil {
			return
		}
		n := 0
		for _, e := range es {
			n += 2 + 4*2 + len(e.Address) + len(e.Display) + len(e.Name) + len(e.Data)
		}
		if n != len(b) {
			t.Fatalf("%d records of %d bytes from %d bytes", len(es), n, len(b))
		}
	})
}

// streamConn serves a fixed byte stream as the server's side of a
// connection.
type streamConn struct {
	net.Conn
	r io.Reader
}

func (c streamConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// The framer hands on every byte it reads, in order, either to xgb or as
// a generic event, whatever the stream: a corrupt one ends in an error,
// never a panic or a byte lost or invented.
func FuzzWireFraming(f *testing.F) {
	setup := make([]byte, 16)
	setup[0] = 1
	binary.LittleEndian.PutUint16(setup[6:], 2)
	reply := make([]byte, 36)
	reply[0] = 1
	binary.LittleEndian.PutUint32(reply[4:], 1)
	ge := make([]byte, 40)
	ge[0] = geType
	binary.LittleEndian.PutUint32(ge[4:], 2)
	event := make([]byte, 32)
	event[0] = 12
	f.Add(append(append(append(append([]byte{}, setup...), reply...), ge...), event...))
	f.Add(setup[:5])
	f.Fuzz(func(t *testing.T, stream []byte) {
		var log []byte
		w := newWire(streamConn{r: bytes.NewReader(stream)}, "", nil, func(ev []byte) {
			if ev[0]&0x7f != geType {
				t.Fatalf("non-generic event %d handed to onGE", ev[0])
			}
			log = append(log, ev...)
		})
		buf := make([]byte, 7)
		var err error
		for err == nil {
			var n int
			n, err = w.Read(buf)
			log = append(log, buf[:n]...)
		}
		if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && err.Error() == "" {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(stream, log) {
			t.Fatalf("framer output is not the stream's prefix")
		}
	})
}
