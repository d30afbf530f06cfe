package netcdf

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func write(t testing.TB, f *File) []byte {
	t.Helper()
	var buf bytes.Buffer
	n, err := f.WriteTo(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(buf.Len()) {
		t.Fatalf("WriteTo says %d bytes, wrote %d", n, buf.Len())
	}
	return buf.Bytes()
}

// The specification's own example: the empty file is 32 bytes, the magic
// and seven zero words.
func TestEmptyFile(t *testing.T) {
	b := write(t, &File{})
	want := append([]byte("CDF\x01"), make([]byte, 28)...)
	if !bytes.Equal(b, want) {
		t.Fatalf("empty file:\n%x\nwant\n%x", b, want)
	}
}

// A small file checked byte by byte against the grammar, written out by
// hand: one dimension, one global text attribute, one short variable of 3
// values (padded with the fill value to 8 bytes).
func TestBytesByHand(t *testing.T) {
	f := &File{
		Dims:  []Dim{{"x", 3}},
		Attrs: []Attr{{"ti", "ab"}},
		Vars:  []Var{{Name: "v", Dims: []string{"x"}, Data: []int16{1, -2, 3}}},
	}
	b := write(t, f)
	var w bytes.Buffer
	put := func(vs ...uint32) {
		for _, v := range vs {
			w.Write([]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
		}
	}
	w.WriteString("CDF\x01")
	put(0)                         // numrecs
	put(0x0A, 1, 1)                // dimensions: 1, name of 1 byte
	w.WriteString("x\x00\x00\x00") // name, padded
	put(3)                         // length
	put(0x0C, 1, 2)                // global attributes: 1, name of 2 bytes
	w.WriteString("ti\x00\x00")
	put(2, 2) // NC_CHAR, 2 values
	w.WriteString("ab\x00\x00")
	put(0x0B, 1, 1) // variables: 1, name of 1 byte
	w.WriteString("v\x00\x00\x00")
	put(1, 0) // rank 1, dimension id 0
	put(0, 0) // no attributes
	put(3, 8) // NC_SHORT, vsize 6 rounded up to 8
	begin := w.Len() + 4
	put(uint32(begin))
	w.Write([]byte{0, 1, 0xFF, 0xFE, 0, 3, 0x80, 0x01}) // 1, -2, 3, fill -32767
	if !bytes.Equal(b, w.Bytes()) {
		t.Fatalf("file:\n%x\nwant\n%x", b, w.Bytes())
	}
}

// normalize turns single attribute values into one-element slices, as a
// reader returns them.
func normalize(f *File) *File {
	g := *f
	fix := func(as []Attr) []Attr {
		out := make([]Attr, len(as))
		for i, a := range as {
			switch v := a.Value.(type) {
			case int8:
				a.Value = []int8{v}
			case int16:
				a.Value = []int16{v}
			case int32:
				a.Value = []int32{v}
			case float32:
				a.Value = []float32{v}
			case float64:
				a.Value = []float64{v}
			}
			out[i] = a
		}
		if len(out) == 0 {
			return nil
		}
		return out
	}
	g.Attrs = fix(f.Attrs)
	g.Vars = make([]Var, len(f.Vars))
	for i, v := range f.Vars {
		v.Attrs = fix(v.Attrs)
		g.Vars[i] = v
	}
	if len(g.Dims) == 0 {
		g.Dims = nil
	}
	if len(g.Vars) == 0 {
		g.Vars = nil
	}
	return &g
}

// equal compares files with NaNs equal to themselves (bit for bit).
func equal(a, b *File) bool {
	return reflect.DeepEqual(bitsOf(a), bitsOf(b))
}

func bitsOf(f *File) *File {
	g := *normalize(f)
	conv := func(v any) any {
		switch v := v.(type) {
		case []float64:
			u := make([]uint64, len(v))
			for i, x := range v {
				u[i] = math.Float64bits(x)
			}
			return u
		case []float32:
			u := make([]uint32, len(v))
			for i, x := range v {
				u[i] = math.Float32bits(x)
			}
			return u
		}
		return v
	}
	for i := range g.Attrs {
		g.Attrs[i].Value = conv(g.Attrs[i].Value)
	}
	for i := range g.Vars {
		g.Vars[i].Data = conv(g.Vars[i].Data)
		for k := range g.Vars[i].Attrs {
			g.Vars[i].Attrs[k].Value = conv(g.Vars[i].Attrs[k].Value)
		}
		if len(g.Vars[i].Dims) == 0 {
			g.Vars[i].Dims = nil
		}
	}
	return &g
}

func sample() *File {
	return &File{
		Dims: []Dim{{"query", 3}, {"input", 2}, {"strlen", 5}, {"odd", 1}},
		Attrs: []Attr{
			{"title", "a run"}, {"seed", int32(7)}, {"weights", []float64{0.5, math.NaN(), math.Inf(-1)}},
			{"empty", ""}, {"bytes", []int8{-1, 2, 3}}, {"shorts", []int16{1, -2, 3}}, {"f32", float32(1.5)},
			{"unicode_é", "µW · 2π"},
		},
		Vars: []Var{
			{Name: "x", Dims: []string{"query", "input"}, Attrs: []Attr{{"units", "V"}, {"_FillValue", math.NaN()}},
				Data: []float64{1, 2, 3, math.NaN(), -0.0, math.MaxFloat64}},
			{Name: "input", Dims: []string{"input", "strlen"}, Attrs: []Attr{{"_Encoding", "utf-8"}}, Data: []byte("smu/vpm/p\x00")},
			{Name: "iteration", Dims: []string{"query"}, Attrs: []Attr{{"_FillValue", FillInt}}, Data: []int32{0, 1, FillInt}},
			{Name: "flag", Dims: []string{"query"}, Data: []int8{1, 0, -127}},
			{Name: "s", Dims: []string{"query"}, Data: []int16{1, 2, 3}},
			{Name: "f", Dims: []string{"odd"}, Data: []float32{2.5}},
			{Name: "scalar", Data: []float64{42}},
			{Name: "c", Dims: []string{"odd"}, Data: []byte{'z'}},
			{Name: "in:a b[0]!#$%&'()*,;<=>?[\\]^`{|}~.@+-µ", Dims: []string{"odd"}, Data: []int32{5}},
		},
	}
}

func TestRoundTrip(t *testing.T) {
	f := sample()
	b := write(t, f)
	g, version, err := read(b)
	if err != nil {
		t.Fatal(err)
	}
	if version != 1 {
		t.Errorf("version %d, want 1 (CDF-1)", version)
	}
	if !equal(f, g) {
		t.Fatalf("read back\n%+v\nwant\n%+v", g, normalize(f))
	}
}

// Past CDF-1's offsets the file is CDF-2 with 64-bit begins.
func TestCDF2(t *testing.T) {
	defer func(v int64) { maxCDF1 = v }(maxCDF1)
	f := sample()
	maxCDF1 = 400 // beyond the header, inside the data
	if v, err := f.Version(); err != nil || v != 2 {
		t.Fatalf("Version() = %d, %v; want 2", v, err)
	}
	g, version, err := read(write(t, f))
	if err != nil {
		t.Fatal(err)
	}
	if version != 2 || !equal(f, g) {
		t.Fatalf("version %d, read back %+v", version, g)
	}
}

func TestCheckName(t *testing.T) {
	for _, ok := range []string{"x", "_FillValue", "9lives", "in:smu voltage[0]", "µW", "a.b-c+d@e", strings.Repeat("a", MaxName), "é"} {
		if err := CheckName(ok); err != nil {
			t.Errorf("CheckName(%q) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{"", "smu/voltage", " x", "x ", "-x", ".x", "a\x00b", "a\nb", "a\x7fb", "\xff", strings.Repeat("a", MaxName+1), "e\u0301"} {
		if err := CheckName(bad); err == nil {
			t.Errorf("CheckName(%q) = nil, want an error", bad)
		}
	}
}

func TestWriteErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    File
		want string
	}{
		{"unknown dimension", File{Vars: []Var{{Name: "v", Dims: []string{"n"}, Data: []float64{1}}}}, `no dimension "n"`},
		{"wrong count", File{Dims: []Dim{{"n", 2}}, Vars: []Var{{Name: "v", Dims: []string{"n"}, Data: []float64{1}}}}, "1 values"},
		{"zero length", File{Dims: []Dim{{"n", 0}}}, "length 0"},
		{"duplicate dimension", File{Dims: []Dim{{"n", 1}, {"n", 2}}}, "twice"},
		{"duplicate variable", File{Vars: []Var{{Name: "v", Data: []int32{1}}, {Name: "v", Data: []int32{1}}}}, "twice"},
		{"duplicate attribute", File{Attrs: []Attr{{"a", "x"}, {"a", "y"}}}, "twice"},
		{"bad attribute type", File{Attrs: []Attr{{"a", 3}}}, "want a string"},
		{"NUL in text", File{Attrs: []Attr{{"a", "x\x00y"}}}, "NUL"},
		{"invalid UTF-8 text", File{Attrs: []Attr{{"a", "\xff"}}}, "UTF-8"},
		{"fill value type", File{Vars: []Var{{Name: "v", Attrs: []Attr{{"_FillValue", int32(1)}}, Data: []float64{1}}}}, "_FillValue"},
		{"bad data type", File{Vars: []Var{{Name: "v", Data: []int{1}}}}, "[]int"},
		{"slash", File{Vars: []Var{{Name: "a/b", Data: []int32{1}}}}, "'/'"},
	} {
		var buf bytes.Buffer
		_, err := tc.f.WriteTo(&buf)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
		if buf.Len() != 0 {
			t.Errorf("%s: %d bytes written before the error", tc.name, buf.Len())
		}
	}
}

// FuzzWrite writes files of fuzzed names, text and values: the writer
// either refuses them (a name CheckName refuses, text that is not UTF-8 or
// has a NUL) or writes a file that reads back equal.
func FuzzWrite(f *testing.F) {
	f.Add("query", "x", "units", "V", []byte{1, 2, 3, 4, 5, 6, 7, 8}, 1)
	f.Add("in:smu/voltage", "é", "_FillValue", "", []byte{}, 3)
	f.Add("a b", "x ", "long_name", "µW\x00", []byte{0xff}, 0)
	f.Fuzz(func(t *testing.T, dim, name, attr, text string, data []byte, n int) {
		n = int(uint(n)%5) + 1
		vals := make([]float64, n)
		for i := range vals {
			if len(data) >= 8*(i+1) {
				vals[i] = math.Float64frombits(uint64(data[8*i]) | uint64(data[8*i+1])<<8 | uint64(data[8*i+2])<<16 | uint64(data[8*i+3])<<24 |
					uint64(data[8*i+4])<<32 | uint64(data[8*i+5])<<40 | uint64(data[8*i+6])<<48 | uint64(data[8*i+7])<<56)
			}
		}
		chars := make([]byte, n)
		copy(chars, data)
		file := &File{
			Dims:  []Dim{{dim, n}},
			Attrs: []Attr{{attr, text}},
			Vars: []Var{
				{Name: name, Dims: []string{dim}, Attrs: []Attr{{"note", text}}, Data: vals},
				{Name: name + "_c", Dims: []string{dim}, Data: chars},
			},
		}
		var buf bytes.Buffer
		_, err := file.WriteTo(&buf)
		valid := CheckName(dim) == nil && CheckName(name) == nil && CheckName(name+"_c") == nil && CheckName(attr) == nil &&
			!strings.ContainsRune(text, 0) && strings.ToValidUTF8(text, "") == text && attr != "note"
		if err != nil {
			if valid {
				t.Fatalf("valid file refused: %v", err)
			}
			if buf.Len() != 0 {
				t.Fatalf("%d bytes written before the error %v", buf.Len(), err)
			}
			return
		}
		if !valid {
			t.Fatalf("invalid file written (dim %q name %q attr %q text %q)", dim, name, attr, text)
		}
		g, _, err := read(buf.Bytes())
		if err != nil {
			t.Fatalf("written file does not read back: %v", err)
		}
		if !equal(file, g) {
			t.Fatalf("read back\n%+v\nwant\n%+v", g, file)
		}
	})
}

// python returns Debian's python3 with netCDF4, or skips (fails under CI,
// where .ci/run installs them).
func python(t *testing.T, modules ...string) string {
	t.Helper()
	const py = "/usr/bin/python3"
	args := []string{"-c", "import " + strings.Join(modules, ", ")}
	if err := exec.Command(py, args...).Run(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s with %v is needed under CI (apt-get install python3-xarray python3-netcdf4): %v", py, modules, err)
		}
		t.Skipf("%s with %v not available: %v", py, modules, err)
	}
	return py
}

// The netCDF C library, through netCDF4-python, reads what WriteTo wrote:
// every dimension, attribute and value, CDF-1 and CDF-2.
func TestNetCDF4Reads(t *testing.T) {
	py := python(t, "netCDF4", "numpy")
	defer func(v int64) { maxCDF1 = v }(maxCDF1)
	for _, limit := range []int64{math.MaxInt32, 400} {
		maxCDF1 = limit
		f := sample()
		path := filepath.Join(t.TempDir(), "sample.nc")
		if err := os.WriteFile(path, write(t, f), 0o644); err != nil {
			t.Fatal(err)
		}
		const script = `
import json, sys, math, netCDF4
def enc(v):
    if hasattr(v, "tolist"): v = v.tolist()
    if isinstance(v, list): return [enc(x) for x in v]
    if isinstance(v, float) and not math.isfinite(v): return repr(v)
    if isinstance(v, bytes): return v.decode("latin-1")
    return v
ds = netCDF4.Dataset(sys.argv[1])
ds.set_auto_maskandscale(False)
ds.set_auto_chartostring(False)
out = {"format": ds.data_model, "dims": {k: len(d) for k, d in ds.dimensions.items()},
       "attrs": {k: enc(ds.getncattr(k)) for k in ds.ncattrs()}, "vars": {}}
for name, v in ds.variables.items():
    data = v[...]
    if data.dtype.kind == "S": data = [b.decode("latin-1") for b in data.ravel()]
    else: data = data.ravel()
    out["vars"][name] = {"dims": list(v.dimensions), "dtype": v.dtype.str, "data": enc(data),
                         "attrs": {k: enc(v.getncattr(k)) for k in v.ncattrs()}}
print(json.dumps(out))
`
		raw, err := exec.Command(py, "-c", script, path).CombinedOutput()
		if err != nil {
			t.Fatalf("netCDF4: %v\n%s", err, raw)
		}
		var got struct {
			Format string
			Dims   map[string]int
			Attrs  map[string]any
			Vars   map[string]struct {
				Dims  []string
				Dtype string
				Data  []any
				Attrs map[string]any
			}
		}
		if err := json.Unmarshal(raw, &got); err != nil {
			t.Fatalf("%v\n%s", err, raw)
		}
		wantFormat := map[int64]string{math.MaxInt32: "NETCDF3_CLASSIC", 400: "NETCDF3_64BIT_OFFSET"}[limit]
		if got.Format != wantFormat {
			t.Errorf("format %s, want %s", got.Format, wantFormat)
		}
		for _, d := range f.Dims {
			if got.Dims[d.Name] != d.Len {
				t.Errorf("dimension %s: %d, want %d", d.Name, got.Dims[d.Name], d.Len)
			}
		}
		checkAttrsPy(t, "global", f.Attrs, got.Attrs)
		dtypes := map[Type]string{Byte: "|i1", Char: "|S1", Short: ">i2", Int: ">i4", Float: ">f4", Double: ">f8"}
		for _, v := range f.Vars {
			gv, ok := got.Vars[v.Name]
			if !ok {
				t.Errorf("variable %s missing", v.Name)
				continue
			}
			typ, _, _ := dataType(v.Data)
			if gv.Dtype != dtypes[typ] && strings.TrimLeft(gv.Dtype, "<>|=") != strings.TrimLeft(dtypes[typ], "<>|=") {
				t.Errorf("variable %s: dtype %s, want %s", v.Name, gv.Dtype, dtypes[typ])
			}
			if !reflect.DeepEqual(gv.Dims, append([]string{}, v.Dims...)) {
				t.Errorf("variable %s: dimensions %v, want %v", v.Name, gv.Dims, v.Dims)
			}
			checkAttrsPy(t, v.Name, v.Attrs, gv.Attrs)
			want := pyValues(v.Data)
			if !reflect.DeepEqual(gv.Data, want) {
				t.Errorf("variable %s: %v, want %v", v.Name, gv.Data, want)
			}
		}
	}
}

// pyValues is what the script prints for values: numbers as JSON numbers,
// non-finite floats as Python's repr, chars as one-character strings.
func pyValues(v any) []any {
	var out []any
	f := func(x float64) any {
		switch {
		case math.IsNaN(x):
			return "nan"
		case math.IsInf(x, 1):
			return "inf"
		case math.IsInf(x, -1):
			return "-inf"
		}
		return x
	}
	switch v := v.(type) {
	case []float64:
		for _, x := range v {
			out = append(out, f(x))
		}
	case []float32:
		for _, x := range v {
			out = append(out, f(float64(x)))
		}
	case []int32:
		for _, x := range v {
			out = append(out, float64(x))
		}
	case []int16:
		for _, x := range v {
			out = append(out, float64(x))
		}
	case []int8:
		for _, x := range v {
			out = append(out, float64(x))
		}
	case []byte:
		for _, x := range v {
			if x == 0 {
				out = append(out, "") // numpy's S1 drops a trailing NUL
				continue
			}
			out = append(out, string(rune(x)))
		}
	case string:
		return []any{v}
	case int32, int16, int8, float32, float64:
		return pyValues(normalize(&File{Attrs: []Attr{{"a", v}}}).Attrs[0].Value)
	}
	return out
}

func checkAttrsPy(t *testing.T, where string, want []Attr, got map[string]any) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d attributes, want %d", where, len(got), len(want))
	}
	for _, a := range want {
		g, ok := got[a.Name]
		if !ok {
			t.Errorf("%s: attribute %s missing", where, a.Name)
			continue
		}
		if s, ok := a.Value.(string); ok {
			if g != s {
				t.Errorf("%s: attribute %s = %q, want %q", where, a.Name, g, s)
			}
			continue
		}
		// netCDF4 gives a one-value attribute as a scalar.
		if _, list := g.([]any); !list {
			g = []any{g}
		}
		if w := pyValues(a.Value); !reflect.DeepEqual(g, w) {
			t.Errorf("%s: attribute %s = %v, want %v", where, a.Name, g, w)
		}
	}
}
