// Package netcdf writes NetCDF classic files: the CDF-1 format, or the
// CDF-2 (64-bit offset) format when the data does not fit CDF-1's 2 GiB of
// offsets. Every NetCDF reader opens them: the netCDF C library and what is
// built on it (netCDF4-python, xarray, MATLAB, ncdump), scipy.io.netcdf and
// NetCDF-Java.
//
// The format is Unidata's "NetCDF Classic Format Specification" (Appendix B
// of the netCDF-C documentation): a big-endian header of dimensions,
// global attributes and variables, then each variable's values in
// row-major order. This package writes fixed-size dimensions only (no
// record dimension): a File is built in memory and written at once.
package netcdf

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Type is a NetCDF classic external type.
type Type int32

// The six classic types, with their codes in the file.
const (
	Byte   Type = 1 // 8-bit signed integer; Go []int8
	Char   Type = 2 // 8-bit character; Go string (attributes) or []byte (variables)
	Short  Type = 3 // 16-bit signed integer; Go []int16
	Int    Type = 4 // 32-bit signed integer; Go []int32
	Float  Type = 5 // IEEE single precision; Go []float32
	Double Type = 6 // IEEE double precision; Go []float64
)

func (t Type) String() string {
	switch t {
	case Byte:
		return "byte"
	case Char:
		return "char"
	case Short:
		return "short"
	case Int:
		return "int"
	case Float:
		return "float"
	case Double:
		return "double"
	}
	return fmt.Sprintf("type %d", int32(t))
}

// Size is the bytes of one value of t in the file.
func (t Type) Size() int {
	switch t {
	case Byte, Char:
		return 1
	case Short:
		return 2
	case Int, Float:
		return 4
	case Double:
		return 8
	}
	return 0
}

// Default fill values of the format: what readers take for "never
// written" when a variable has no _FillValue attribute.
const (
	FillByte   int8    = -127
	FillShort  int16   = -32767
	FillInt    int32   = -2147483647
	FillFloat  float32 = 9.9692099683868690e+36
	FillDouble float64 = 9.9692099683868690e+36
)

// Dim is a dimension; Len must be at least 1 (a length of 0 would make it
// the record dimension, which this package does not write).
type Dim struct {
	Name string
	Len  int
}

// Attr is an attribute. Value is a string (type Char) or a slice or a
// single value of int8, int16, int32, float32 or float64.
type Attr struct {
	Name  string
	Value any
}

// Var is a variable: its dimensions by name, outermost first, its
// attributes and its values in row-major order (the last dimension
// varying fastest). Data is []int8, []byte (type Char), []int16, []int32,
// []float32 or []float64, with as many values as the product of the
// dimension lengths (one for a scalar variable, which has no dimensions).
type Var struct {
	Name  string
	Dims  []string
	Attrs []Attr
	Data  any
}

// File is a whole dataset.
type File struct {
	Dims  []Dim
	Attrs []Attr // global attributes
	Vars  []Var
}

// Limits of the format and of this writer.
const (
	// MaxName is the longest name in bytes (NC_MAX_NAME of the C library).
	MaxName = 256
	// maxVsize is the largest variable size the 32-bit vsize field holds;
	// a larger variable may only be the last one, in CDF-2.
	maxVsize = math.MaxUint32 - 3
)

// maxCDF1 is the largest offset CDF-1 can store (a signed 32-bit int); a
// variable, so that a test can reach CDF-2 without writing 2 GiB.
var maxCDF1 int64 = math.MaxInt32

// tags of the header's lists.
const (
	tagDimension = 0x0A
	tagVariable  = 0x0B
	tagAttribute = 0x0C
)

// CheckName reports whether s is a valid NetCDF name: UTF-8 in NFC form, at
// most MaxName bytes, beginning with a letter, a digit, '_' or a multibyte
// character, and followed by printable characters other than '/', with no
// trailing space.
func CheckName(s string) error {
	switch {
	case s == "":
		return errors.New("empty name")
	case len(s) > MaxName:
		return fmt.Errorf("name %.40q… is %d bytes, longer than %d", s, len(s), MaxName)
	case !utf8.ValidString(s):
		return fmt.Errorf("name %q is not valid UTF-8", s)
	case !norm.NFC.IsNormalString(s):
		return fmt.Errorf("name %q is not in Unicode NFC form (use %q)", s, norm.NFC.String(s))
	case strings.HasSuffix(s, " "):
		return fmt.Errorf("name %q ends with a space", s)
	}
	for i, r := range s {
		switch {
		case r >= utf8.RuneSelf:
			// A multibyte character is allowed anywhere.
		case i == 0 && !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'):
			return fmt.Errorf("name %q: the first character must be a letter, a digit or '_'", s)
		case r < 0x20 || r == 0x7F:
			return fmt.Errorf("name %q has a control character", s)
		case r == '/':
			return fmt.Errorf("name %q has a '/'", s)
		}
	}
	return nil
}

// attrType returns the type and count of an attribute value.
func attrType(v any) (Type, int, error) {
	switch v := v.(type) {
	case string:
		return Char, len(v), nil
	case int8:
		return Byte, 1, nil
	case []int8:
		return Byte, len(v), nil
	case int16:
		return Short, 1, nil
	case []int16:
		return Short, len(v), nil
	case int32:
		return Int, 1, nil
	case []int32:
		return Int, len(v), nil
	case float32:
		return Float, 1, nil
	case []float32:
		return Float, len(v), nil
	case float64:
		return Double, 1, nil
	case []float64:
		return Double, len(v), nil
	}
	return 0, 0, fmt.Errorf("value of type %T: want a string, or int8, int16, int32, float32 or float64 values", v)
}

// dataType returns the type and count of a variable's data.
func dataType(v any) (Type, int, error) {
	switch v := v.(type) {
	case []int8:
		return Byte, len(v), nil
	case []byte:
		return Char, len(v), nil
	case []int16:
		return Short, len(v), nil
	case []int32:
		return Int, len(v), nil
	case []float32:
		return Float, len(v), nil
	case []float64:
		return Double, len(v), nil
	}
	return 0, 0, fmt.Errorf("data of type %T: want []int8, []byte, []int16, []int32, []float32 or []float64", v)
}

// checkAttrs checks a list of attributes: valid, unique names, values of a
// known type, text without NUL bytes in valid UTF-8 (readers take NUL for
// the end of the text), and a _FillValue of the variable's type.
func checkAttrs(attrs []Attr, varType Type) error {
	seen := map[string]bool{}
	for _, a := range attrs {
		if err := CheckName(a.Name); err != nil {
			return fmt.Errorf("attribute: %w", err)
		}
		if seen[a.Name] {
			return fmt.Errorf("attribute %q twice", a.Name)
		}
		seen[a.Name] = true
		t, n, err := attrType(a.Value)
		if err != nil {
			return fmt.Errorf("attribute %q: %w", a.Name, err)
		}
		if t == Char {
			s := a.Value.(string)
			if !utf8.ValidString(s) {
				return fmt.Errorf("attribute %q: text is not valid UTF-8", a.Name)
			}
			if strings.IndexByte(s, 0) >= 0 {
				return fmt.Errorf("attribute %q: text has a NUL byte", a.Name)
			}
		}
		if a.Name == "_FillValue" && varType != 0 && (t != varType || n != 1) {
			return fmt.Errorf("attribute _FillValue: one %s value wanted, have %d of %s", varType, n, t)
		}
	}
	return nil
}

// layout is a checked File with its dimension ids, and where each
// variable's data goes.
type layout struct {
	f      *File
	dimIDs map[string]int
	types  []Type
	sizes  []int64 // data bytes of each variable, unpadded
	begins []int64
	v2     bool // CDF-2: 64-bit offsets
}

func (f *File) check() (*layout, error) {
	l := &layout{f: f, dimIDs: map[string]int{}}
	for i, d := range f.Dims {
		if err := CheckName(d.Name); err != nil {
			return nil, fmt.Errorf("dimension: %w", err)
		}
		if _, dup := l.dimIDs[d.Name]; dup {
			return nil, fmt.Errorf("dimension %q twice", d.Name)
		}
		if d.Len < 1 || int64(d.Len) > math.MaxInt32 {
			return nil, fmt.Errorf("dimension %q: length %d: want 1 to %d", d.Name, d.Len, math.MaxInt32)
		}
		l.dimIDs[d.Name] = i
	}
	if err := checkAttrs(f.Attrs, 0); err != nil {
		return nil, fmt.Errorf("global %w", err)
	}
	names := map[string]bool{}
	for _, v := range f.Vars {
		if err := CheckName(v.Name); err != nil {
			return nil, fmt.Errorf("variable: %w", err)
		}
		if names[v.Name] {
			return nil, fmt.Errorf("variable %q twice", v.Name)
		}
		names[v.Name] = true
		t, n, err := dataType(v.Data)
		if err != nil {
			return nil, fmt.Errorf("variable %q: %w", v.Name, err)
		}
		if err := checkAttrs(v.Attrs, t); err != nil {
			return nil, fmt.Errorf("variable %q: %w", v.Name, err)
		}
		want := int64(1)
		for _, dn := range v.Dims {
			id, ok := l.dimIDs[dn]
			if !ok {
				return nil, fmt.Errorf("variable %q: no dimension %q", v.Name, dn)
			}
			want *= int64(f.Dims[id].Len)
			if want > math.MaxInt64/16 {
				return nil, fmt.Errorf("variable %q: too large", v.Name)
			}
		}
		if int64(n) != want {
			return nil, fmt.Errorf("variable %q: %d values for dimensions %v of %d", v.Name, n, v.Dims, want)
		}
		l.types = append(l.types, t)
		l.sizes = append(l.sizes, want*int64(t.Size()))
	}
	for i, s := range l.sizes {
		if s > maxVsize && i != len(l.sizes)-1 {
			return nil, fmt.Errorf("variable %q: %d bytes; only the last variable may exceed %d", f.Vars[i].Name, s, int64(maxVsize))
		}
	}
	// Offsets: try CDF-1, whose header is smaller, then CDF-2.
	for _, v2 := range []bool{false, true} {
		l.v2 = v2
		off := l.headerSize()
		l.begins = l.begins[:0]
		fits := true
		for _, s := range l.sizes {
			if !v2 && off > maxCDF1 {
				fits = false
			}
			l.begins = append(l.begins, off)
			off += pad4(s)
		}
		if fits {
			return l, nil
		}
	}
	return l, nil
}

func pad4(n int64) int64 { return (n + 3) &^ 3 }

func nameSize(s string) int64 { return 4 + pad4(int64(len(s))) }

func attrsSize(attrs []Attr) int64 {
	n := int64(8) // tag and count, or ABSENT
	for _, a := range attrs {
		t, cnt, _ := attrType(a.Value)
		n += nameSize(a.Name) + 8 + pad4(int64(cnt*t.Size()))
	}
	return n
}

func (l *layout) headerSize() int64 {
	n := int64(4 + 4 + 8) // magic, numrecs, dim list head
	for _, d := range l.f.Dims {
		n += nameSize(d.Name) + 4
	}
	n += attrsSize(l.f.Attrs)
	n += 8
	off := int64(4)
	if l.v2 {
		off = 8
	}
	for _, v := range l.f.Vars {
		n += nameSize(v.Name) + 4 + 4*int64(len(v.Dims)) + attrsSize(v.Attrs) + 4 + 4 + off
	}
	return n
}

// Version is the format WriteTo writes: 1 (CDF-1, classic) or 2 (CDF-2,
// 64-bit offset). It checks the file as WriteTo does.
func (f *File) Version() (int, error) {
	l, err := f.check()
	if err != nil {
		return 0, err
	}
	if l.v2 {
		return 2, nil
	}
	return 1, nil
}

// WriteTo checks the file and writes it to w: an error names the
// dimension, variable or attribute at fault, before anything is written.
func (f *File) WriteTo(w io.Writer) (int64, error) {
	l, err := f.check()
	if err != nil {
		return 0, fmt.Errorf("netcdf: %w", err)
	}
	cw := &countWriter{w: bufio.NewWriterSize(w, 1<<16)}
	e := encoder{w: cw}
	version := byte(1)
	if l.v2 {
		version = 2
	}
	e.bytes([]byte{'C', 'D', 'F', version})
	e.u32(0) // numrecs: no record dimension
	if len(f.Dims) == 0 {
		e.u32(0)
		e.u32(0)
	} else {
		e.u32(tagDimension)
		e.u32(uint32(len(f.Dims)))
		for _, d := range f.Dims {
			e.name(d.Name)
			e.u32(uint32(d.Len))
		}
	}
	e.attrs(f.Attrs)
	if len(f.Vars) == 0 {
		e.u32(0)
		e.u32(0)
	} else {
		e.u32(tagVariable)
		e.u32(uint32(len(f.Vars)))
		for i, v := range f.Vars {
			e.name(v.Name)
			e.u32(uint32(len(v.Dims)))
			for _, dn := range v.Dims {
				e.u32(uint32(l.dimIDs[dn]))
			}
			e.attrs(v.Attrs)
			e.u32(uint32(l.types[i]))
			vsize := pad4(l.sizes[i])
			if vsize > maxVsize {
				vsize = math.MaxUint32
			}
			e.u32(uint32(vsize))
			if l.v2 {
				e.u64(uint64(l.begins[i]))
			} else {
				e.u32(uint32(l.begins[i]))
			}
		}
	}
	for i, v := range f.Vars {
		if e.err == nil && cw.n != l.begins[i] {
			e.err = fmt.Errorf("netcdf: internal error: variable %q at offset %d, header says %d", v.Name, cw.n, l.begins[i])
		}
		e.data(v, l.types[i])
	}
	if e.err == nil {
		e.err = cw.w.(*bufio.Writer).Flush()
	}
	return cw.n, e.err
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// encoder writes big-endian values and keeps the first error.
type encoder struct {
	w   io.Writer
	err error
	buf [8]byte
}

func (e *encoder) bytes(b []byte) {
	if e.err == nil {
		_, e.err = e.w.Write(b)
	}
}

func (e *encoder) u32(v uint32) {
	binary.BigEndian.PutUint32(e.buf[:4], v)
	e.bytes(e.buf[:4])
}

func (e *encoder) u64(v uint64) {
	binary.BigEndian.PutUint64(e.buf[:8], v)
	e.bytes(e.buf[:8])
}

// pad writes zero bytes up to the 4-byte boundary after n bytes.
func (e *encoder) pad(n int64, fill byte) {
	if k := pad4(n) - n; k > 0 {
		e.bytes([]byte{fill, fill, fill}[:k])
	}
}

func (e *encoder) name(s string) {
	e.u32(uint32(len(s)))
	e.bytes([]byte(s))
	e.pad(int64(len(s)), 0)
}

func (e *encoder) attrs(attrs []Attr) {
	if len(attrs) == 0 {
		e.u32(0)
		e.u32(0)
		return
	}
	e.u32(tagAttribute)
	e.u32(uint32(len(attrs)))
	for _, a := range attrs {
		e.name(a.Name)
		t, n, _ := attrType(a.Value)
		e.u32(uint32(t))
		e.u32(uint32(n))
		e.values(a.Value, t)
		e.pad(int64(n*t.Size()), 0)
	}
}

// values writes an attribute's values (a single value or a slice).
func (e *encoder) values(v any, t Type) {
	switch v := v.(type) {
	case string:
		e.bytes([]byte(v))
	case int8:
		e.values([]int8{v}, t)
	case int16:
		e.values([]int16{v}, t)
	case int32:
		e.values([]int32{v}, t)
	case float32:
		e.values([]float32{v}, t)
	case float64:
		e.values([]float64{v}, t)
	default:
		e.slice(v)
	}
}

// slice writes a slice of values in chunks.
func (e *encoder) slice(v any) {
	const chunk = 4096
	var buf []byte
	switch v := v.(type) {
	case []byte:
		e.bytes(v)
	case []int8:
		buf = make([]byte, len(v))
		for i, x := range v {
			buf[i] = byte(x)
		}
		e.bytes(buf)
	case []int16:
		buf = make([]byte, 0, 2*min(len(v), chunk))
		for i := 0; i < len(v); i += chunk {
			buf = buf[:0]
			for _, x := range v[i:min(i+chunk, len(v))] {
				buf = binary.BigEndian.AppendUint16(buf, uint16(x))
			}
			e.bytes(buf)
		}
	case []int32:
		buf = make([]byte, 0, 4*min(len(v), chunk))
		for i := 0; i < len(v); i += chunk {
			buf = buf[:0]
			for _, x := range v[i:min(i+chunk, len(v))] {
				buf = binary.BigEndian.AppendUint32(buf, uint32(x))
			}
			e.bytes(buf)
		}
	case []float32:
		buf = make([]byte, 0, 4*min(len(v), chunk))
		for i := 0; i < len(v); i += chunk {
			buf = buf[:0]
			for _, x := range v[i:min(i+chunk, len(v))] {
				buf = binary.BigEndian.AppendUint32(buf, math.Float32bits(x))
			}
			e.bytes(buf)
		}
	case []float64:
		buf = make([]byte, 0, 8*min(len(v), chunk))
		for i := 0; i < len(v); i += chunk {
			buf = buf[:0]
			for _, x := range v[i:min(i+chunk, len(v))] {
				buf = binary.BigEndian.AppendUint64(buf, math.Float64bits(x))
			}
			e.bytes(buf)
		}
	}
}

// data writes a variable's values and pads them to 4 bytes with its fill
// value, as the specification asks (only byte, char and short data can
// need padding; fill values of one byte repeat, a short's is written
// whole and cut).
func (e *encoder) data(v Var, t Type) {
	e.slice(v.Data)
	_, n, _ := dataType(v.Data)
	size := int64(n * t.Size())
	k := pad4(size) - size
	if k == 0 {
		return
	}
	var fill []byte
	switch t {
	case Char:
		fill = []byte{0, 0, 0}
		if s, ok := attrValue(v.Attrs, "_FillValue").(string); ok && len(s) == 1 {
			fill = []byte{s[0], s[0], s[0]}
		}
	case Byte:
		b := byte(0x81) // FillByte
		if x, ok := attrValue(v.Attrs, "_FillValue").(int8); ok {
			b = byte(x)
		} else if x, ok := attrValue(v.Attrs, "_FillValue").([]int8); ok && len(x) == 1 {
			b = byte(x[0])
		}
		fill = []byte{b, b, b}
	case Short:
		s := FillShort
		if x, ok := attrValue(v.Attrs, "_FillValue").(int16); ok {
			s = x
		} else if x, ok := attrValue(v.Attrs, "_FillValue").([]int16); ok && len(x) == 1 {
			s = x[0]
		}
		fill = binary.BigEndian.AppendUint16(nil, uint16(s))
	}
	e.bytes(fill[:k])
}

func attrValue(attrs []Attr, name string) any {
	for _, a := range attrs {
		if a.Name == name {
			return a.Value
		}
	}
	return nil
}
