package scpi

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"
)

func TestParseIDN(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want IDN
		ok   bool
	}{
		{"KEITHLEY INSTRUMENTS INC.,MODEL 2400,1234567,C30 Mar 17 2006 09:29:29/A02 /K/J\r\n",
			IDN{"KEITHLEY INSTRUMENTS INC.", "MODEL 2400", "1234567", "C30 Mar 17 2006 09:29:29/A02 /K/J"}, true},
		{"Thorlabs,PM100D,P0012345,2.8.0,extra", IDN{"Thorlabs", "PM100D", "P0012345", "2.8.0,extra"}, true},
		{" a , b , , 0 ", IDN{"a", "b", "", "0"}, true},
		{"a,b,c", IDN{}, false},
		{",b,c,d", IDN{}, false},
		{"", IDN{}, false},
	} {
		got, err := ParseIDN(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseIDN(%q) = %+v, %v; want %+v ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestParseError(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want DeviceError
		ok   bool
	}{
		{`0,"No error"`, DeviceError{0, "No error"}, true},
		{`+0,"No error"`, DeviceError{0, "No error"}, true},
		{`-113,"Undefined header"` + "\n", DeviceError{-113, "Undefined header"}, true},
		{`-222,"Data out of range;""VOLT"" 300"`, DeviceError{-222, `Data out of range;"VOLT" 300`}, true},
		{`5,Overload`, DeviceError{5, "Overload"}, true},
		{`0`, DeviceError{0, ""}, true},
		{`x,"a"`, DeviceError{}, false},
		{`-1,"a`, DeviceError{}, false},
		{`-1,"a"b"`, DeviceError{}, false},
		{`1_0,"a"`, DeviceError{}, false},
		{``, DeviceError{}, false},
	} {
		got, err := ParseError(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseError(%q) = %+v, %v; want %+v ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestParseFloat(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want float64
		err  error
	}{
		{"1.5", 1.5, nil},
		{" +1.234500E-03\r\n", 1.2345e-3, nil},
		{"-7", -7, nil},
		{"9.9E37", math.Inf(1), ErrOverflow},
		{"-9.90000E+37", math.Inf(-1), ErrOverflow},
		{"+9.91E37", math.NaN(), ErrNotANumber},
		{"NAN", math.NaN(), ErrNotANumber},
		{"inf", math.Inf(1), ErrOverflow},
		{"0x1p3", 0, ErrSyntax},
		{"Infinity", 0, ErrSyntax},
		{"1_000", 0, ErrSyntax},
		{"", 0, ErrSyntax},
		{"1.5V", 0, ErrSyntax},
	} {
		got, err := ParseFloat(tc.in)
		if !errors.Is(err, tc.err) || (err == nil) != (tc.err == nil) {
			t.Errorf("ParseFloat(%q) error %v, want %v", tc.in, err, tc.err)
		}
		if !(got == tc.want || math.IsNaN(got) && math.IsNaN(tc.want)) {
			t.Errorf("ParseFloat(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestParseFloats(t *testing.T) {
	vs, err := ParseFloats("1.0E+00,-2.5E-03")
	if err != nil || len(vs) != 2 || vs[0] != 1 || vs[1] != -2.5e-3 {
		t.Fatalf("got %v, %v", vs, err)
	}
	vs, err = ParseFloats("1,9.9E37")
	if !errors.Is(err, ErrOverflow) || !strings.Contains(err.Error(), "element 1") || !math.IsInf(vs[1], 1) {
		t.Fatalf("overflow: got %v, %v", vs, err)
	}
	if _, err := ParseFloats("1,,2"); !errors.Is(err, ErrSyntax) {
		t.Fatalf("empty element: %v", err)
	}
}

func TestParseBlock(t *testing.T) {
	data, rest, _, err := ParseBlock([]byte("#15hello\n"))
	if err != nil || string(data) != "hello" || string(rest) != "\n" {
		t.Fatalf("got %q %q %v", data, rest, err)
	}
	_, _, need, err := ParseBlock([]byte("#210ab\n"))
	if !errors.Is(err, ErrShortBlock) || need != 14 {
		t.Fatalf("short: need=%d err=%v", need, err)
	}
	for _, bad := range []string{"15hello", "#0abc\n", "#a5", "#2x1abc"} {
		if _, _, _, err := ParseBlock([]byte(bad)); !errors.Is(err, ErrSyntax) {
			t.Errorf("ParseBlock(%q) err %v, want ErrSyntax", bad, err)
		}
	}
}

func FuzzParseIDN(f *testing.F) {
	for _, s := range []string{"a,b,c,d", "KEITHLEY,MODEL 2400,1,C30\r\n", ",,,", "a,b,c,d,e,f"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseIDN(s)
		if err != nil {
			return
		}
		// Round trip: formatting and parsing again gives the same identity.
		id2, err := ParseIDN(id.String())
		if err != nil || id2 != id {
			t.Fatalf("round trip %q: %+v -> %q -> %+v, %v", s, id, id.String(), id2, err)
		}
	})
}

func FuzzParseError(f *testing.F) {
	for _, s := range []string{`0,"No error"`, `-113,"Undefined header"`, `-222,"a""b"`, `7,x`, `"`, `1,"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := ParseError(s)
		if err != nil {
			return
		}
		if strings.ContainsAny(e.Message, "\r\n") || e.Message != strings.TrimSpace(e.Message) {
			return // not representable after trimming; no round trip
		}
		e2, err := ParseError(e.String())
		if err != nil || e2 != e {
			t.Fatalf("round trip %q: %+v -> %q -> %+v, %v", s, e, e.String(), e2, err)
		}
	})
}

func FuzzParseFloat(f *testing.F) {
	for _, s := range []string{"1.5", "-9.9E37", "9.91E37", "+1.000E-03", "NAN", "0x10", "1e400", "."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseFloat(s)
		if err == nil && (math.IsInf(v, 0) || math.IsNaN(v)) {
			t.Fatalf("ParseFloat(%q) = %v with no error", s, v)
		}
		if _, err := ParseFloats(s); err == nil && strings.TrimSpace(s) == "" {
			t.Fatalf("ParseFloats(%q) accepted an empty list", s)
		}
	})
}

func FuzzParseBlock(f *testing.F) {
	f.Add([]byte("#15hello\n"), []byte("x"))
	f.Add([]byte("#0"), []byte{})
	f.Add([]byte("#9999999999"), []byte{0})
	f.Fuzz(func(t *testing.T, b, payload []byte) {
		data, rest, need, err := ParseBlock(b)
		if err == nil && len(data)+len(rest) > len(b) || need < 0 {
			t.Fatalf("ParseBlock(%q): impossible sizes", b)
		}
		// Round trip: any payload survives AppendBlock + ParseBlock.
		enc := AppendBlock(nil, payload)
		got, rest, _, err := ParseBlock(append(enc, '\n'))
		if err != nil || !bytes.Equal(got, payload) || string(rest) != "\n" {
			t.Fatalf("round trip of %q: %q %q %v", payload, got, rest, err)
		}
	})
}
