package serial

import (
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	bug "go.bug.st/serial"
	"go.bug.st/serial/enumerator"

	"github.com/insitu-lab/insitu/drivers/scpi"
	"github.com/insitu-lab/insitu/drivers/scpi/emulator"
)

// The transport is a scpi.Conn and lets the client resync after a fault.
var (
	_ scpi.Conn       = (*Port)(nil)
	_ scpi.Resetter   = (*Port)(nil)
	_ scpi.Terminated = (*Port)(nil)
)

// Ptys force 8N1, so framing is checked here, on the Mode built from config.
func TestMode(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want bug.Mode
		err  string
	}{
		{Config{Port: "/dev/ttyS0"}, bug.Mode{BaudRate: 9600, DataBits: 8, Parity: bug.NoParity, StopBits: bug.OneStopBit}, ""},
		{Config{Port: "/dev/ttyS0", Baud: 19200, DataBits: 7, Parity: "even", StopBits: 2},
			bug.Mode{BaudRate: 19200, DataBits: 7, Parity: bug.EvenParity, StopBits: bug.TwoStopBits}, ""},
		{Config{Port: "x", Parity: "O", StopBits: 1.5}, bug.Mode{BaudRate: 9600, DataBits: 8, Parity: bug.OddParity, StopBits: bug.OnePointFiveStopBits}, ""},
		{Config{Port: "x", DataBits: 9}, bug.Mode{}, "data_bits"},
		{Config{Port: "x", Parity: "weird"}, bug.Mode{}, "parity"},
		{Config{Port: "x", StopBits: 3}, bug.Mode{}, "stop_bits"},
	} {
		tc.cfg.Defaults()
		m, err := tc.cfg.Mode()
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%+v: error %v, want one naming %s", tc.cfg, err, tc.err)
			}
			continue
		}
		if err != nil || *m != tc.want || m.InitialStatusBits != nil {
			t.Errorf("%+v: Mode = %+v, %v; want %+v", tc.cfg, m, err, tc.want)
		}
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg Config
		key string // "" = valid
	}{
		{Config{Port: "/dev/ttyUSB0"}, ""},
		{Config{VID: "0403", PID: "6001", Serial: "FT1234"}, ""},
		{Config{Serial: "FT1234"}, ""},
		{Config{}, "port"},
		{Config{Port: "/dev/ttyUSB0", Serial: "x"}, "port"},
		{Config{VID: "0403"}, "vid, pid"},
		{Config{VID: "04031", PID: "6001"}, "vid"},
		{Config{Port: "x", Baud: -1}, "baud"},
		{Config{Port: "x", ReadTerminator: "ETX"}, "read_terminator"},
		{Config{Port: "x", Timeout: -time.Second}, "timeout"},
	} {
		tc.cfg.Defaults()
		err := tc.cfg.Validate()
		if (tc.key == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.key+":")) {
			t.Errorf("%+v: Validate = %v, want key %q", tc.cfg, err, tc.key)
		}
	}
}

func TestTerminator(t *testing.T) {
	for in, want := range map[string]string{"lf": "\n", "CR": "\r", "CRLF": "\r\n", "LF+CR": "\n\r", "\r\n": "\r\n"} {
		if got, err := Terminator(in); err != nil || got != want {
			t.Errorf("Terminator(%q) = %q, %v", in, got, err)
		}
	}
}

func TestFind(t *testing.T) {
	ports := []PortInfo{
		{Path: "/dev/ttyS0"},
		{Path: "/dev/ttyUSB0", IsUSB: true, VID: "0403", PID: "6001", Serial: "A"},
		{Path: "/dev/ttyUSB1", IsUSB: true, VID: "0403", PID: "6001", Serial: "B"},
	}
	if p, err := Find(ports, Config{VID: "0403", PID: "6001", Serial: "B"}); err != nil || p != "/dev/ttyUSB1" {
		t.Fatalf("Find = %q, %v", p, err)
	}
	if _, err := Find(ports, Config{VID: "0403", PID: "6001"}); err == nil || !strings.Contains(err.Error(), "serial") {
		t.Fatalf("ambiguous: %v", err)
	}
	if _, err := Find(ports, Config{Serial: "Z"}); err == nil {
		t.Fatal("no match accepted")
	}
}

// openPTY opens the driver on a pty slave with an emulator on the master.
func openPTY(t testing.TB, cfg Config, table emulator.Table) (*Port, *emulator.Instrument) {
	pt, err := emulator.OpenPTY()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Port = pt.Path
	p, err := Open(context.Background(), cfg) // before serving: raw mode first
	if err != nil {
		t.Fatal(err)
	}
	inst, err := emulator.New("insitu,TWIN-PTY,0,1", table)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { inst.Serve(ctx, pt.Master); close(done) }()
	t.Cleanup(func() { cancel(); <-done; p.Close(); pt.Close() })
	return p, inst
}

func TestPTYRoundTrip(t *testing.T) {
	p, _ := openPTY(t, Config{Baud: 115200, ReadTerminator: "CRLF"}, nil)
	if r, w := p.Terminators(); r != "\r\n" || w != "\n" {
		t.Fatalf("Terminators = %q, %q", r, w)
	}
	ctx := context.Background()
	if err := p.Write(ctx, []byte("*IDN?;*OPC?\n")); err != nil {
		t.Fatal(err)
	}
	b, err := p.ReadUntil(ctx, '\n')
	if err != nil || string(b) != "insitu,TWIN-PTY,0,1;1\n" {
		t.Fatalf("ReadUntil = %q, %v", b, err)
	}
}

// The library reports a read timeout as (0, nil): a silent device must give a
// deadline error promptly, not a hang and not an empty reply.
func TestPTYSilentDeviceTimesOut(t *testing.T) {
	p, _ := openPTY(t, Config{Timeout: 200 * time.Millisecond}, nil)
	start := time.Now()
	_, err := p.ReadUntil(context.Background(), '\n') // configured timeout
	if !errors.Is(err, os.ErrDeadlineExceeded) || !strings.Contains(err.Error(), "/dev/pts/") {
		t.Fatalf("silent device: %v; want a deadline error naming the port", err)
	}
	if d := time.Since(start); d < 150*time.Millisecond || d > time.Second {
		t.Fatalf("timed out after %v, want about 200ms", d)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 80*time.Millisecond) // ctx deadline wins
	defer cancel()
	start = time.Now()
	if _, err := p.ReadUntil(ctx, '\n'); !errors.Is(err, os.ErrDeadlineExceeded) || time.Since(start) > 500*time.Millisecond {
		t.Fatalf("ctx deadline: %v after %v", err, time.Since(start))
	}
	ctx, cancel = context.WithCancel(context.Background()) // cancellation without a deadline
	time.AfterFunc(50*time.Millisecond, cancel)
	if _, err := p.ReadUntil(ctx, '\n'); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancel: %v", err)
	}
}

func TestPTYHangUp(t *testing.T) {
	p, inst := openPTY(t, Config{Timeout: 2 * time.Second}, nil)
	inst.HangUpNext()
	ctx := context.Background()
	if err := p.Write(ctx, []byte("*IDN?\n")); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := p.ReadUntil(ctx, '\n')
	if !errors.Is(err, io.ErrUnexpectedEOF) || time.Since(start) > time.Second {
		t.Fatalf("hang-up: %v after %v; want io.ErrUnexpectedEOF at once", err, time.Since(start))
	}
	if err := p.Write(ctx, []byte("*IDN?\n")); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("write after hang-up: %v", err)
	}
}

func TestOpenMissingPort(t *testing.T) {
	_, err := Open(context.Background(), Config{Port: "/nonexistent/tty"})
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/tty") {
		t.Fatalf("Open = %v", err)
	}
}

// List reports what the enumerator finds, port for port and field for
// field; an enumeration error is List's error too.
func TestList(t *testing.T) {
	want, werr := enumerator.GetDetailedPortsList()
	got, err := List()
	if werr != nil {
		if err == nil || !errors.Is(err, werr) {
			t.Fatalf("List() error = %v, want it to wrap %v", err, werr)
		}
		return
	}
	if err != nil {
		t.Fatalf("List: %v (the enumerator succeeded)", err)
	}
	if len(got) != len(want) {
		t.Fatalf("List returned %d ports, the enumerator %d: %v", len(got), len(want), got)
	}
	for i, d := range want {
		w := PortInfo{Path: d.Name, IsUSB: d.IsUSB, VID: d.VID, PID: d.PID,
			Serial: d.SerialNumber, Manufacturer: d.Manufacturer, Product: d.Product}
		if got[i] != w {
			t.Errorf("port %d = %+v, want %+v", i, got[i], w)
		}
	}
}

func TestPortInfoString(t *testing.T) {
	if s := (PortInfo{Path: "/dev/ttyS0"}).String(); s != "/dev/ttyS0" {
		t.Errorf("plain port: %q", s)
	}
	p := PortInfo{Path: "/dev/ttyUSB0", IsUSB: true, VID: "0403", PID: "6001", Serial: "A1", Manufacturer: "FTDI", Product: "FT232R"}
	if s, want := p.String(), `/dev/ttyUSB0 usb 0403:6001 serial="A1" FTDI FT232R`; s != want {
		t.Errorf("USB port: %q, want %q", s, want)
	}
}
