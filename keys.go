package insitu

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Key is one configuration key as `insitu config keys` lists it: its
// dotted path in the YAML file, its type, its default, its unit and what
// it means. Path uses [] for the entries of a list (parts[].name) and
// <NAME> for the entries of a map keyed by name (output_ranges.<NAME>.lo).
//
// Keys come from the config structs themselves: the `mapstructure` tag
// names the key, and two more tags beside it document it:
//
//	Compliance float64 `mapstructure:"compliance" unit:"A" doc:"current limit (SENS:CURR:PROT), read back before the output goes on"`
//
// doc is what the key means, in a line; unit is its physical unit (none
// for a count, a name or a flag; durations carry their unit in the value).
// A struct, a list of structs or a map of structs nests its keys below its
// own; map[string]any (a black box's section) is one key, documented
// where its kind is.
type Key struct {
	Path    string
	Type    string // bool, int, float, string, duration, list of float, map of float by name, …
	Default string // the default value as YAML would write it; "" when unset
	Unit    string
	Doc     string
	// Where the key is declared: the Go struct type and field, for the
	// message that asks for a missing doc.
	Struct reflect.Type
	Field  string
}

var durationT = reflect.TypeFor[time.Duration]()

// Keys lists the keys of the config struct v (a struct or a pointer to
// one) under prefix ("" for the top level), with v's field values as the
// defaults, in the order the fields are declared.
func Keys(prefix string, v any) []Key {
	rv := reflect.ValueOf(v)
	for rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			rv = reflect.New(rv.Type().Elem())
		}
		rv = rv.Elem()
	}
	var out []Key
	walkKeys(prefix, rv, &out)
	return out
}

func join(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

func walkKeys(prefix string, v reflect.Value, out *[]Key) {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("mapstructure")
		name, opts, _ := strings.Cut(tag, ",")
		fv := v.Field(i)
		if strings.Contains(opts, "squash") && f.Type.Kind() == reflect.Struct {
			walkKeys(prefix, fv, out) // its fields are the section's own
			continue
		}
		if !f.IsExported() || name == "-" || strings.Contains(opts, "remain") {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		k := Key{Path: join(prefix, name), Unit: f.Tag.Get("unit"), Doc: f.Tag.Get("doc"), Struct: t, Field: f.Name}
		ft := f.Type
		// A pointer to a struct is an optional section; to a value, a value
		// that may be unset.
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
			if fv.IsNil() {
				fv = reflect.Zero(ft)
				k.Default = ""
			} else {
				fv = fv.Elem()
				k.Default = format(fv)
			}
		} else {
			k.Default = format(fv)
		}
		k.Type = typeName(ft)
		switch {
		case ft.Kind() == reflect.Struct && ft != durationT:
			if k.Doc != "" {
				k.Type, k.Default = "section", ""
				*out = append(*out, k)
			}
			walkKeys(k.Path, fv, out)
			continue
		case ft.Kind() == reflect.Slice && elemStruct(ft.Elem()):
			k.Type, k.Default = "list", format(fv)
			*out = append(*out, k)
			walkKeys(k.Path+"[]", reflect.New(deref(ft.Elem())).Elem(), out)
			continue
		case ft.Kind() == reflect.Map && elemStruct(ft.Elem()):
			k.Type = "map by name"
			*out = append(*out, k)
			walkKeys(k.Path+".<NAME>", reflect.New(deref(ft.Elem())).Elem(), out)
			continue
		}
		*out = append(*out, k)
	}
}

func elemStruct(t reflect.Type) bool {
	t = deref(t)
	return t.Kind() == reflect.Struct && t != durationT
}

// typeName is how the key's value is written.
func typeName(t reflect.Type) string {
	if t == durationT {
		return "duration"
	}
	switch t.Kind() {
	case reflect.Bool:
		return "bool"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "int"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "int ≥ 0"
	case reflect.Float32, reflect.Float64:
		return "float"
	case reflect.String:
		return "string"
	case reflect.Slice, reflect.Array:
		return "list of " + typeName(t.Elem())
	case reflect.Map:
		if t.Elem().Kind() == reflect.Interface {
			return "section"
		}
		return typeName(t.Elem()) + " by name"
	case reflect.Pointer:
		return typeName(t.Elem())
	case reflect.Interface:
		return "any"
	}
	return t.Kind().String()
}

// format writes a default value as YAML would: "" for an empty string,
// list or map (unset), durations as 150ms.
func format(v reflect.Value) string {
	if !v.IsValid() {
		return ""
	}
	if v.Type() == durationT {
		d := time.Duration(v.Int())
		if d == 0 {
			return "0s"
		}
		return d.String()
	}
	switch v.Kind() {
	case reflect.Bool:
		return strconv.FormatBool(v.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(v.Int(), 10)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return strconv.FormatUint(v.Uint(), 10)
	case reflect.Float32, reflect.Float64:
		return strconv.FormatFloat(v.Float(), 'g', -1, 64)
	case reflect.String:
		return v.String()
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return ""
		}
		return format(v.Elem())
	case reflect.Slice, reflect.Array:
		if v.Len() == 0 {
			return ""
		}
		parts := make([]string, v.Len())
		for i := range parts {
			parts[i] = format(v.Index(i))
			if v.Index(i).Kind() == reflect.Struct {
				parts[i] = "{…}"
			}
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case reflect.Map:
		if v.Len() == 0 {
			return ""
		}
		keys := make([]string, 0, v.Len())
		for _, k := range v.MapKeys() {
			keys = append(keys, fmt.Sprint(k.Interface()))
		}
		slices.Sort(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = k + ": " + format(v.MapIndex(reflect.ValueOf(k).Convert(v.Type().Key())))
		}
		return "{" + strings.Join(parts, ", ") + "}"
	case reflect.Struct:
		return "{…}"
	}
	return fmt.Sprint(v.Interface())
}

// KeysFunc returns the defaults of a kind's configuration: the struct its
// factory decodes the blackbox section into, with its defaults set.
type KeysFunc func() any

var kindKeys = NewRegistry[KeysFunc]("kind")

// RegisterKeys declares the configuration struct of kind (see Key), for
// `insitu config keys KIND` and the configuration reference. The package
// that registers the kind calls it from init beside Register.
func RegisterKeys(kind string, f KeysFunc) { kindKeys.Register(kind, f) }

// KindConfig returns the defaults of kind's configuration struct; false
// when the kind has registered none.
func KindConfig(kind string) (any, bool) {
	f, err := kindKeys.Lookup(kind)
	if err != nil {
		return nil, false
	}
	return f(), true
}

// KindKeys lists kind's keys under blackbox; false when the kind has
// registered none.
func KindKeys(kind string) ([]Key, bool) {
	c, ok := KindConfig(kind)
	if !ok {
		return nil, false
	}
	return Keys("blackbox", c), true
}
