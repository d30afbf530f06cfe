package netcdf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// read parses a classic file of fixed dimensions back into a File: the
// independent half of the round trip. It follows the specification's
// grammar field by field and checks what a reader relies on (tags,
// padding, vsize, begin).
func read(b []byte) (*File, int, error) {
	d := decoder{b: b}
	magic := d.take(4)
	if d.err != nil || string(magic[:3]) != "CDF" || magic[3] < 1 || magic[3] > 2 {
		return nil, 0, fmt.Errorf("bad magic %q", magic)
	}
	version := int(magic[3])
	if n := d.u32(); n != 0 {
		return nil, 0, fmt.Errorf("numrecs %d: no record dimension expected", n)
	}
	f := &File{}
	tag, n := d.u32(), d.u32()
	switch {
	case tag == 0 && n == 0:
	case tag == tagDimension:
		for range n {
			name := d.name()
			l := d.u32()
			if l == 0 {
				return nil, 0, errors.New("record dimension")
			}
			f.Dims = append(f.Dims, Dim{Name: name, Len: int(l)})
		}
	default:
		return nil, 0, fmt.Errorf("dimension list tag %#x", tag)
	}
	f.Attrs = d.attrs()
	tag, n = d.u32(), d.u32()
	type meta struct {
		t      Type
		vsize  uint32
		begin  int64
		count  int
		dimIDs []int
	}
	var metas []meta
	switch {
	case tag == 0 && n == 0:
	case tag == tagVariable:
		for range n {
			v := Var{Name: d.name()}
			rank := d.u32()
			m := meta{count: 1}
			for range rank {
				id := int(d.u32())
				if id >= len(f.Dims) {
					return nil, 0, fmt.Errorf("variable %q: dimension id %d", v.Name, id)
				}
				v.Dims = append(v.Dims, f.Dims[id].Name)
				m.dimIDs = append(m.dimIDs, id)
				m.count *= f.Dims[id].Len
			}
			v.Attrs = d.attrs()
			m.t = Type(d.u32())
			m.vsize = d.u32()
			if version == 2 {
				m.begin = int64(d.u64())
			} else {
				m.begin = int64(d.u32())
			}
			f.Vars = append(f.Vars, v)
			metas = append(metas, m)
		}
	default:
		return nil, 0, fmt.Errorf("variable list tag %#x", tag)
	}
	if d.err != nil {
		return nil, 0, d.err
	}
	for i := range f.Vars {
		m := metas[i]
		size := int64(m.count * m.t.Size())
		want := pad4(size)
		if want > maxVsize {
			want = math.MaxUint32
		}
		if int64(m.vsize) != want {
			return nil, 0, fmt.Errorf("variable %q: vsize %d, want %d", f.Vars[i].Name, m.vsize, want)
		}
		if m.begin < 0 || m.begin+size > int64(len(b)) {
			return nil, 0, fmt.Errorf("variable %q: begin %d size %d beyond the file's %d bytes", f.Vars[i].Name, m.begin, size, len(b))
		}
		raw := b[m.begin : m.begin+size]
		f.Vars[i].Data = decodeValues(raw, m.t, m.count)
	}
	return f, version, nil
}

type decoder struct {
	b   []byte
	off int
	err error
}

func (d *decoder) take(n int) []byte {
	if d.err != nil {
		return make([]byte, n)
	}
	if n < 0 || d.off+n > len(d.b) {
		d.err = fmt.Errorf("truncated at %d (want %d bytes)", d.off, n)
		return make([]byte, max(n, 0))
	}
	p := d.b[d.off : d.off+n]
	d.off += n
	return p
}

func (d *decoder) u32() uint32 { return binary.BigEndian.Uint32(d.take(4)) }
func (d *decoder) u64() uint64 { return binary.BigEndian.Uint64(d.take(8)) }

// padding reads the bytes up to the 4-byte boundary after n bytes, which
// must be zero in the header.
func (d *decoder) padding(n int) {
	for _, c := range d.take(int(pad4(int64(n))) - n) {
		if c != 0 && d.err == nil {
			d.err = fmt.Errorf("non-zero header padding at %d", d.off)
		}
	}
}

func (d *decoder) name() string {
	n := int(d.u32())
	if n > len(d.b) {
		d.err = fmt.Errorf("name of %d bytes", n)
		return ""
	}
	s := string(d.take(n))
	d.padding(n)
	return s
}

func (d *decoder) attrs() []Attr {
	tag, n := d.u32(), d.u32()
	if tag == 0 && n == 0 {
		return nil
	}
	if tag != tagAttribute {
		d.err = fmt.Errorf("attribute list tag %#x", tag)
		return nil
	}
	var as []Attr
	for range n {
		a := Attr{Name: d.name()}
		t := Type(d.u32())
		cnt := int(d.u32())
		if t.Size() == 0 || cnt > len(d.b) {
			d.err = fmt.Errorf("attribute %q: type %d count %d", a.Name, t, cnt)
			return nil
		}
		raw := d.take(cnt * t.Size())
		d.padding(cnt * t.Size())
		if t == Char {
			a.Value = string(raw)
		} else {
			a.Value = decodeValues(raw, t, cnt)
		}
		as = append(as, a)
	}
	return as
}

func decodeValues(raw []byte, t Type, n int) any {
	switch t {
	case Byte:
		v := make([]int8, n)
		for i := range v {
			v[i] = int8(raw[i])
		}
		return v
	case Char:
		return append([]byte(nil), raw...)
	case Short:
		v := make([]int16, n)
		for i := range v {
			v[i] = int16(binary.BigEndian.Uint16(raw[2*i:]))
		}
		return v
	case Int:
		v := make([]int32, n)
		for i := range v {
			v[i] = int32(binary.BigEndian.Uint32(raw[4*i:]))
		}
		return v
	case Float:
		v := make([]float32, n)
		for i := range v {
			v[i] = math.Float32frombits(binary.BigEndian.Uint32(raw[4*i:]))
		}
		return v
	case Double:
		v := make([]float64, n)
		for i := range v {
			v[i] = math.Float64frombits(binary.BigEndian.Uint64(raw[8*i:]))
		}
		return v
	}
	return nil
}
