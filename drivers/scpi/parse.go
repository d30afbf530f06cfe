package scpi

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Parse errors. Each parser wraps one of these with the offending text.
var (
	ErrSyntax = errors.New("malformed reply")
	// ErrOverflow is SCPI's 9.9E37 (±infinity: over range, overload).
	ErrOverflow = errors.New("instrument reported overflow (9.9E37)")
	// ErrNotANumber is SCPI's 9.91E37 (not a number: no valid reading).
	ErrNotANumber = errors.New("instrument reported not-a-number (9.91E37)")
)

// IDN is the reply to *IDN?: four comma-separated fields (IEEE 488.2 §10.14).
type IDN struct {
	Manufacturer, Model, Serial, Firmware string
}

// String formats the identity as the instrument sends it.
func (id IDN) String() string {
	return id.Manufacturer + "," + id.Model + "," + id.Serial + "," + id.Firmware
}

// ParseIDN parses a *IDN? reply. It needs at least four fields; commas past
// the third belong to the firmware field, which some instruments fill with a
// list of versions.
func ParseIDN(s string) (IDN, error) {
	f := strings.SplitN(strings.TrimSpace(s), ",", 4)
	if len(f) != 4 {
		return IDN{}, fmt.Errorf("%w: *IDN? reply %q: want 4 comma-separated fields, got %d", ErrSyntax, s, len(f))
	}
	for i := range f {
		f[i] = strings.TrimSpace(f[i])
	}
	if f[0] == "" || f[1] == "" {
		return IDN{}, fmt.Errorf("%w: *IDN? reply %q: empty manufacturer or model", ErrSyntax, s)
	}
	return IDN{Manufacturer: f[0], Model: f[1], Serial: f[2], Firmware: f[3]}, nil
}

// DeviceError is one entry of the instrument's error queue: a SYST:ERR? reply.
// Code 0 means the queue is empty; negative codes are SCPI-standard (−1xx
// command, −2xx execution, −3xx device, −4xx query), positive ones are the
// instrument's own.
type DeviceError struct {
	Code    int
	Message string
}

func (e DeviceError) Error() string { return fmt.Sprintf("device error %d, %q", e.Code, e.Message) }

// String formats the entry as the instrument sends it: <code>,"<message>".
func (e DeviceError) String() string {
	return strconv.Itoa(e.Code) + `,"` + strings.ReplaceAll(e.Message, `"`, `""`) + `"`
}

// ParseError parses a SYST:ERR? reply: <code>,"<message>", with "" standing
// for a quote inside the message. An unquoted message is accepted, as some
// instruments send one.
func ParseError(s string) (DeviceError, error) {
	s = strings.TrimSpace(s)
	codeText, msg, found := strings.Cut(s, ",")
	code, err := strconv.Atoi(strings.TrimSpace(codeText))
	if err != nil || !isInteger(strings.TrimSpace(codeText)) {
		return DeviceError{}, fmt.Errorf("%w: SYST:ERR? reply %q: bad code", ErrSyntax, s)
	}
	if !found {
		return DeviceError{Code: code}, nil
	}
	msg = strings.TrimSpace(msg)
	if strings.HasPrefix(msg, `"`) {
		if len(msg) < 2 || !strings.HasSuffix(msg, `"`) {
			return DeviceError{}, fmt.Errorf("%w: SYST:ERR? reply %q: unterminated string", ErrSyntax, s)
		}
		body := msg[1 : len(msg)-1]
		// Inside the quotes every quote must be doubled.
		if strings.Count(body, `"`)%2 != 0 || strings.Contains(strings.ReplaceAll(body, `""`, ""), `"`) {
			return DeviceError{}, fmt.Errorf("%w: SYST:ERR? reply %q: stray quote", ErrSyntax, s)
		}
		msg = strings.ReplaceAll(body, `""`, `"`)
	}
	return DeviceError{Code: code, Message: msg}, nil
}

// isInteger reports whether s is an optionally signed run of decimal digits
// (strconv.Atoi also accepts underscores in no case, but be explicit).
func isInteger(s string) bool {
	if s != "" && (s[0] == '+' || s[0] == '-') {
		s = s[1:]
	}
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// SCPI's special numeric values (SCPI 1999 Vol. 1 §7.2.1.5).
const (
	overflow = 9.9e37
	notANum  = 9.91e37
)

// ParseFloat parses a SCPI numeric reply (NR1, NR2 or NR3: decimal only). The
// special values 9.9E37 / −9.9E37 (over range) and 9.91E37 (not a number), and
// the words INF, NINF and NAN some instruments send instead, return
// ErrOverflow or ErrNotANumber together with ±Inf or NaN.
func ParseFloat(s string) (float64, error) {
	t := strings.TrimSpace(s)
	switch strings.ToUpper(t) {
	case "INF", "+INF":
		return math.Inf(1), fmt.Errorf("%w: %q", ErrOverflow, s)
	case "NINF", "-INF":
		return math.Inf(-1), fmt.Errorf("%w: %q", ErrOverflow, s)
	case "NAN":
		return math.NaN(), fmt.Errorf("%w: %q", ErrNotANumber, s)
	}
	// strconv also takes hex floats, "Inf" and underscores; SCPI does not.
	if t == "" || strings.IndexFunc(t, func(r rune) bool {
		return !(r >= '0' && r <= '9' || r == '.' || r == '+' || r == '-' || r == 'e' || r == 'E')
	}) >= 0 {
		return 0, fmt.Errorf("%w: not a number: %q", ErrSyntax, s)
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: not a number: %q", ErrSyntax, s)
	}
	switch v {
	case overflow:
		return math.Inf(1), fmt.Errorf("%w: %q", ErrOverflow, s)
	case -overflow:
		return math.Inf(-1), fmt.Errorf("%w: %q", ErrOverflow, s)
	case notANum, -notANum:
		return math.NaN(), fmt.Errorf("%w: %q", ErrNotANumber, s)
	}
	return v, nil
}

// ParseFloats parses a comma-separated list of numbers, such as the reply to
// :READ? with :FORM:ELEM VOLT,CURR. On a special value it returns the whole
// list (with ±Inf / NaN in place) and the first special-value error, so a
// caller can tell which element overflowed.
func ParseFloats(s string) ([]float64, error) {
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("%w: empty list", ErrSyntax)
	}
	parts := strings.Split(s, ",")
	vs := make([]float64, len(parts))
	var special error
	for i, p := range parts {
		v, err := ParseFloat(p)
		switch {
		case err == nil:
		case errors.Is(err, ErrSyntax):
			return nil, fmt.Errorf("element %d of %q: %w", i, s, err)
		default:
			if special == nil {
				special = fmt.Errorf("element %d: %w", i, err)
			}
		}
		vs[i] = v
	}
	return vs, special
}

// ErrShortBlock says a definite-length block needs more bytes than given.
var ErrShortBlock = errors.New("block shorter than its header says")

// ParseBlock parses an IEEE 488.2 definite-length arbitrary block,
// #<n><length><data>, at the start of b and returns the data and what
// follows it (normally the terminator). data aliases b. If b is too short it
// returns ErrShortBlock and, when the header is complete, need = the total
// number of bytes the block occupies, so a reader knows how much more to read.
// The indefinite form #0<data> is not accepted: it needs the transport's END
// signal, which a byte stream does not carry.
func ParseBlock(b []byte) (data, rest []byte, need int, err error) {
	if len(b) < 2 {
		return nil, nil, 0, fmt.Errorf("%w: block header: %q", ErrShortBlock, b)
	}
	if b[0] != '#' {
		return nil, nil, 0, fmt.Errorf("%w: block does not start with '#': %q", ErrSyntax, prefix(b))
	}
	if b[1] < '1' || b[1] > '9' {
		return nil, nil, 0, fmt.Errorf("%w: block length digit count %q", ErrSyntax, b[1])
	}
	n := int(b[1] - '0')
	if len(b) < 2+n {
		return nil, nil, 0, fmt.Errorf("%w: block header: %q", ErrShortBlock, b)
	}
	length := 0
	for _, c := range b[2 : 2+n] {
		if c < '0' || c > '9' {
			return nil, nil, 0, fmt.Errorf("%w: block length %q", ErrSyntax, b[2:2+n])
		}
		length = length*10 + int(c-'0')
	}
	need = 2 + n + length
	if len(b) < need {
		return nil, nil, need, fmt.Errorf("%w: have %d of %d bytes", ErrShortBlock, len(b), need)
	}
	return b[2+n : need], b[need:], need, nil
}

// AppendBlock appends data to dst as a definite-length block.
func AppendBlock(dst, data []byte) []byte {
	l := strconv.Itoa(len(data))
	dst = append(dst, '#', byte('0'+len(l)))
	dst = append(dst, l...)
	return append(dst, data...)
}

func prefix(b []byte) []byte {
	if len(b) > 16 {
		return b[:16]
	}
	return b
}
