package insitu

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
)

// Configuration values are decoded with mapstructure, with WeaklyTypedInput
// so that a number may come as a string from an environment variable or a
// flag. Weak typing alone converts silently: 2.5 becomes 2 in an int, -1
// becomes 18446744073709551615 in a uint64, 1e30 the smallest int, and a
// duration written 10 becomes 10 ns. The hooks below refuse all of these
// with an error that shows the value and says what is wanted, and
// DecodeProblems turns a decoder's error into problems named by the
// configuration's own key paths. Params.Decode uses them, and so does every
// other decoder of configuration values (compose the hooks first, before
// any hook that parses durations).

var durationType = reflect.TypeFor[time.Duration]()

// DurationHook decodes a time.Duration from a string with a unit: "10s",
// "150ms", "1h30m". A number without a unit (10, 2.5, or the string "10")
// is an error suggesting the unit, not a count of nanoseconds; zero alone
// needs no unit, since 0 is 0 in every unit. A time.Duration passes
// unchanged.
func DurationHook() mapstructure.DecodeHookFuncType {
	return func(from, to reflect.Type, data any) (any, error) {
		if to != durationType || from == durationType {
			return data, nil
		}
		v := reflect.ValueOf(data)
		switch {
		case v.Kind() == reflect.String:
			return parseDuration(v.String())
		case isInt(v.Kind()):
			if v.Int() == 0 {
				return time.Duration(0), nil
			}
			return nil, noUnit(strconv.FormatInt(v.Int(), 10))
		case isUint(v.Kind()):
			if v.Uint() == 0 {
				return time.Duration(0), nil
			}
			return nil, noUnit(strconv.FormatUint(v.Uint(), 10))
		case isFloat(v.Kind()):
			f := v.Float()
			switch {
			case f == 0:
				return time.Duration(0), nil
			case math.IsNaN(f) || math.IsInf(f, 0):
				return nil, fmt.Errorf("%s is not a duration: %s", formatNumber(f), wantDuration)
			}
			return nil, noUnit(formatNumber(f))
		case v.Kind() == reflect.Bool:
			return nil, fmt.Errorf("%v is not a duration: %s", v.Bool(), wantDuration)
		}
		return data, nil
	}
}

const wantDuration = "want a number with a unit, e.g. 10s, 150ms or 1m30s"

func noUnit(n string) error {
	return fmt.Errorf("%s has no unit: write %ss (or %sms, %sus)", n, n, n, n)
}

func parseDuration(s string) (any, error) {
	t := strings.TrimSpace(s)
	d, err := time.ParseDuration(t)
	if err == nil {
		return d, nil
	}
	if f, ferr := strconv.ParseFloat(t, 64); ferr == nil && !math.IsNaN(f) && !math.IsInf(f, 0) {
		if f == 0 {
			return time.Duration(0), nil
		}
		return nil, noUnit(t)
	}
	switch {
	case strings.Contains(err.Error(), "unknown unit"):
		return nil, fmt.Errorf("%q has an unknown unit: want ns, us, ms, s, m or h", s)
	case durationSyntax.MatchString(t):
		return nil, fmt.Errorf("%q is too long: want at most 2562047h", s)
	}
	return nil, fmt.Errorf("%q is not a duration: %s", s, wantDuration)
}

// durationSyntax matches what time.ParseDuration reads, whatever the size.
var durationSyntax = regexp.MustCompile(`^[-+]?(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+$`)

// NumberHook converts numbers into integer and floating-point fields
// exactly: a float with a fraction is not a whole number, a negative value
// does not go into an unsigned field, and a value out of the field type's
// range is an error, as are a string that is not a number and a boolean.
// Strings are parsed with strconv (decimal, or with a 0x, 0o or 0b prefix;
// "1e6" is a whole number). time.Duration fields are DurationHook's.
func NumberHook() mapstructure.DecodeHookFuncType {
	return func(_, to reflect.Type, data any) (any, error) {
		if to == durationType {
			return data, nil
		}
		switch k := to.Kind(); {
		case isInt(k), isUint(k):
			return toInteger(data, to)
		case isFloat(k):
			return toFloat(data, to)
		}
		return data, nil
	}
}

// toInteger checks that data fits the integer type to exactly.
func toInteger(data any, to reflect.Type) (any, error) {
	v := reflect.ValueOf(data)
	switch k := v.Kind(); {
	case isInt(k):
		return data, fitInt(v.Int(), to)
	case isUint(k):
		return data, fitUint(v.Uint(), to)
	case isFloat(k):
		return fitFloat(v.Float(), formatNumber(v.Float()), to)
	case k == reflect.Bool:
		return nil, fmt.Errorf("%v is not a number: want %s", v.Bool(), want(to))
	case k == reflect.String:
		s := strings.TrimSpace(v.String())
		if s == "" {
			return data, nil // an empty value is the zero value, as without the hook
		}
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return i, fitIntText(i, s, to)
		}
		if u, err := strconv.ParseUint(s, 10, 64); err == nil {
			return u, fitUintText(u, s, to)
		}
		if i, err := strconv.ParseInt(s, 0, 64); err == nil {
			return i, fitIntText(i, s, to)
		}
		if u, err := strconv.ParseUint(s, 0, 64); err == nil {
			return u, fitUintText(u, s, to)
		}
		f, err := strconv.ParseFloat(s, 64)
		if err == nil || errors.Is(err, strconv.ErrRange) {
			return fitFloat(f, s, to)
		}
		return nil, fmt.Errorf("%q is not a number: want %s", v.String(), want(to))
	}
	return data, nil
}

func fitInt(i int64, to reflect.Type) error {
	return fitIntText(i, strconv.FormatInt(i, 10), to)
}

func fitIntText(i int64, text string, to reflect.Type) error {
	if isUint(to.Kind()) {
		if i < 0 {
			return negative(text, to)
		}
		return fitUintText(uint64(i), text, to)
	}
	bits := to.Bits()
	lo, hi := int64(-1)<<(bits-1), int64(1)<<(bits-1)-1
	if i < lo || i > hi {
		return noFit(text, to, i < 0)
	}
	return nil
}

func fitUint(u uint64, to reflect.Type) error {
	return fitUintText(u, strconv.FormatUint(u, 10), to)
}

func fitUintText(u uint64, text string, to reflect.Type) error {
	bits := to.Bits()
	if isInt(to.Kind()) {
		if u > uint64(1)<<(bits-1)-1 {
			return noFit(text, to, false)
		}
		return nil
	}
	if bits < 64 && u > uint64(1)<<bits-1 {
		return noFit(text, to, false)
	}
	return nil
}

// fitFloat converts f, written text in the configuration, to the integer
// type to if it is a whole number in its range.
func fitFloat(f float64, text string, to reflect.Type) (any, error) {
	bits := to.Bits()
	switch {
	case math.IsNaN(f) || math.IsInf(f, 0) && !textIsNumber(text):
		return nil, fmt.Errorf("%s is not a whole number", text)
	case isUint(to.Kind()) && f < 0:
		return nil, negative(text, to)
	case isUint(to.Kind()) && f >= math.Ldexp(1, bits):
		return nil, noFit(text, to, false)
	case isInt(to.Kind()) && (f < -math.Ldexp(1, bits-1) || f >= math.Ldexp(1, bits-1)):
		return nil, noFit(text, to, f < 0)
	case f != math.Trunc(f):
		return nil, fmt.Errorf("%s is not a whole number", text)
	case isUint(to.Kind()):
		return uint64(f), nil
	}
	return int64(f), nil
}

// textIsNumber reports whether text is written with digits, so that an
// infinite value parsed from it is a number too large to represent (1e400)
// rather than infinity (inf, .inf).
func textIsNumber(text string) bool {
	return strings.ContainsAny(text, "0123456789")
}

func negative(text string, to reflect.Type) error {
	return fmt.Errorf("%s is negative: want %s", text, want(to))
}

func noFit(text string, to reflect.Type, low bool) error {
	name := to.Kind().String()
	article := "a"
	if strings.HasPrefix(name, "int") {
		article = "an"
	}
	var limit string
	switch {
	case isUint(to.Kind()):
		limit = "at most " + strconv.FormatUint(math.MaxUint64>>(64-to.Bits()), 10)
	case low:
		limit = "at least " + strconv.FormatInt(int64(-1)<<(to.Bits()-1), 10)
	default:
		limit = "at most " + strconv.FormatInt(int64(1)<<(to.Bits()-1)-1, 10)
	}
	return fmt.Errorf("%s does not fit %s %s (%s)", text, article, name, limit)
}

// toFloat parses a string for a floating-point field and checks that a
// number fits a float32.
func toFloat(data any, to reflect.Type) (any, error) {
	v := reflect.ValueOf(data)
	var f float64
	text := ""
	switch k := v.Kind(); {
	case isInt(k), isUint(k):
		return data, nil
	case isFloat(k):
		f, text = v.Float(), formatNumber(v.Float())
	case k == reflect.Bool:
		return nil, fmt.Errorf("%v is not a number: want %s", v.Bool(), want(to))
	case k == reflect.String:
		s := strings.TrimSpace(v.String())
		if s == "" {
			return data, nil
		}
		var err error
		f, err = strconv.ParseFloat(s, 64)
		if errors.Is(err, strconv.ErrRange) && math.IsInf(f, 0) {
			return nil, fmt.Errorf("%s does not fit a float64", s)
		}
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return nil, fmt.Errorf("%q is not a number", v.String())
		}
		text, data = s, f
	default:
		return data, nil
	}
	if to.Kind() == reflect.Float32 && !math.IsInf(f, 0) && math.Abs(f) > math.MaxFloat32 {
		return nil, fmt.Errorf("%s does not fit a float32", text)
	}
	return data, nil
}

func isInt(k reflect.Kind) bool {
	return k == reflect.Int || k == reflect.Int8 || k == reflect.Int16 || k == reflect.Int32 || k == reflect.Int64
}

func isUint(k reflect.Kind) bool {
	return k == reflect.Uint || k == reflect.Uint8 || k == reflect.Uint16 || k == reflect.Uint32 || k == reflect.Uint64
}

func isFloat(k reflect.Kind) bool { return k == reflect.Float32 || k == reflect.Float64 }

// formatNumber writes f as a configuration would: 2.5, 1e30, 3e18.
func formatNumber(f float64) string {
	s := strconv.FormatFloat(f, 'g', -1, 64)
	mant, exp, ok := strings.Cut(s, "e")
	if !ok {
		return s
	}
	sign := ""
	if exp[0] == '-' {
		sign = "-"
	}
	exp = strings.TrimLeft(exp, "+-0")
	return mant + "e" + sign + exp
}

// want says in words what a value of type t is: "a whole number", "a
// duration with a unit, e.g. 10s", "a list".
func want(t reflect.Type) string {
	if t == durationType {
		return "a duration with a unit, e.g. 10s or 150ms"
	}
	switch k := t.Kind(); {
	case isInt(k):
		return "a whole number"
	case isUint(k):
		return "a whole number ≥ 0"
	case isFloat(k):
		return "a number"
	case k == reflect.String:
		return "a string"
	case k == reflect.Bool:
		return "true or false"
	case k == reflect.Slice, k == reflect.Array:
		return "a list"
	case k == reflect.Map, k == reflect.Struct:
		return "a map of keys"
	case k == reflect.Pointer:
		return want(t.Elem())
	}
	return "a value of type " + t.String()
}

// DecodeProblem is one problem a decoder found in a configuration value,
// in the configuration's words.
type DecodeProblem struct {
	// Key is the dotted path of the key, relative to the decoded value:
	// "iterations", "surrogate.hidden[1]", "safety.lower.x0"; "" for the
	// value as a whole.
	Key string
	// Msg is what is wrong and what is wanted: "2.5 is not a whole number",
	// "unknown key (did you mean top_k?)".
	Msg string
	// Unknown: Key is not a key of the decoded type (and Msg says so).
	Unknown bool
}

// Error is "key: msg", or msg alone for the value as a whole.
func (p DecodeProblem) Error() string {
	if p.Key == "" {
		return p.Msg
	}
	return p.Key + ": " + p.Msg
}

// DecodeProblems lists the problems in err, the error of a mapstructure
// decoder (viper's Unmarshal included) that decoded into the value into
// points to. into's type tells map keys (written .key) from list indices
// ([i]) and gives the known keys an unknown key is compared with. An error
// that is not a decoder's is one problem with an empty Key.
func DecodeProblems(err error, into any) []DecodeProblem {
	var root reflect.Type
	if into != nil {
		root = reflect.TypeOf(into)
	}
	var out []DecodeProblem
	var walk func(error)
	walk = func(e error) {
		var de *mapstructure.DecodeError
		switch x := e.(type) {
		case nil:
		case *mapstructure.DecodeError:
			out = append(out, problemsOf(root, x)...)
		case interface{ Unwrap() []error }:
			for _, e := range x.Unwrap() {
				walk(e)
			}
		default:
			// mapstructure wraps several errors in "decoding failed due
			// to the following error(s)"; the wrapper adds nothing.
			if u := errors.Unwrap(e); u != nil && errors.As(e, &de) {
				walk(u)
				return
			}
			out = append(out, DecodeProblem{Msg: e.Error()})
		}
	}
	walk(err)
	return out
}

func problemsOf(root reflect.Type, de *mapstructure.DecodeError) []DecodeProblem {
	key, at := resolveKey(root, de.Name())
	inner := de.Unwrap()
	if inner == nil {
		return []DecodeProblem{{Key: key, Msg: de.Error()}}
	}
	msg := inner.Error()
	if rest, ok := strings.CutPrefix(msg, "has invalid keys: "); ok {
		known := knownKeys(at)
		var out []DecodeProblem
		for _, k := range strings.Split(rest, ", ") {
			full := k
			if key != "" {
				full = key + "." + k
			}
			out = append(out, DecodeProblem{Key: full, Msg: "unknown key" + suggest(k, known), Unknown: true})
		}
		return out
	}
	var ute *mapstructure.UnconvertibleTypeError
	var pe *mapstructure.ParseError
	switch {
	case errors.As(inner, &ute):
		msg = fmt.Sprintf("want %s, not %s", want(ute.Expected.Type()), describe(ute.Value))
	case errors.As(inner, &pe):
		msg = fmt.Sprintf("%s is not %s", describe(pe.Value), want(pe.Expected.Type()))
	case strings.HasPrefix(msg, "expected a map or struct, got "), strings.HasPrefix(msg, "expected a map, got "):
		msg = "want a map of keys, not " + articled(strings.Trim(msg[strings.LastIndex(msg, " ")+1:], `'"`))
	case strings.HasPrefix(msg, "source data must be an array or slice, got "):
		msg = "want a list, not " + articled(strings.Trim(msg[strings.LastIndex(msg, " ")+1:], `'"`))
	}
	return []DecodeProblem{{Key: key, Msg: msg}}
}

// describe writes a decoded value for a message: a number or boolean as
// written, a string quoted, a list or map by its kind.
func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "nothing"
	case string:
		return strconv.Quote(x)
	case float64:
		return formatNumber(x)
	case float32:
		return formatNumber(float64(x))
	}
	switch reflect.ValueOf(v).Kind() {
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "a map"
	}
	return fmt.Sprint(v)
}

// articled names a reflect.Kind in words: "a map", "a list", "a string".
func articled(kind string) string {
	switch kind {
	case "slice", "array":
		return "a list"
	case "map", "struct":
		return "a map"
	case "int", "uint", "float32", "float64", "int64", "uint64":
		return "a number"
	case "bool":
		return "true or false"
	case "string":
		return "a string"
	}
	return kind
}

// resolveKey turns mapstructure's name of a field ("safety.lower[x0]",
// "surrogate.hidden[1]") into a key path, map keys dotted, and returns the
// type at that path (nil if unknown).
func resolveKey(root reflect.Type, name string) (string, reflect.Type) {
	var b strings.Builder
	t := root
	sep := func() {
		if b.Len() > 0 {
			b.WriteByte('.')
		}
	}
	for i := 0; i < len(name); {
		switch name[i] {
		case '.':
			i++
		case '[':
			j := strings.IndexByte(name[i:], ']')
			if j < 0 {
				b.WriteString(name[i:])
				return b.String(), nil
			}
			inner := name[i+1 : i+j]
			i += j + 1
			t = deref(t)
			switch {
			case t != nil && t.Kind() == reflect.Map:
				sep()
				b.WriteString(inner)
				t = t.Elem()
			case t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array):
				b.WriteString("[" + inner + "]")
				t = t.Elem()
			default:
				b.WriteString("[" + inner + "]")
				t = nil
			}
		default:
			j := strings.IndexAny(name[i:], ".[")
			if j < 0 {
				j = len(name) - i
			}
			field := name[i : i+j]
			i += j
			sep()
			b.WriteString(field)
			t = fieldType(deref(t), field)
		}
	}
	return b.String(), t
}

func deref(t reflect.Type) reflect.Type {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// fields calls f with the key and type of every field of struct type t that
// mapstructure decodes, squashed fields' own fields included.
func fields(t reflect.Type, f func(key string, ft reflect.Type)) {
	t = deref(t)
	if t == nil || t.Kind() != reflect.Struct {
		return
	}
	for i := range t.NumField() {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(sf.Tag.Get("mapstructure"), ",")
		if name == "-" || slices.Contains(strings.Split(opts, ","), "remain") {
			continue
		}
		if slices.Contains(strings.Split(opts, ","), "squash") {
			fields(sf.Type, f)
			continue
		}
		if name == "" {
			name = sf.Name
		}
		f(name, sf.Type)
	}
}

func fieldType(t reflect.Type, key string) reflect.Type {
	var found reflect.Type
	fields(t, func(k string, ft reflect.Type) {
		if found == nil && strings.EqualFold(k, key) {
			found = ft
		}
	})
	return found
}

func knownKeys(t reflect.Type) []string {
	var ks []string
	fields(t, func(k string, _ reflect.Type) { ks = append(ks, k) })
	slices.Sort(ks)
	return ks
}

// suggest names the known key closest to k by edit distance, or lists the
// known keys when none is close.
func suggest(k string, known []string) string {
	if len(known) == 0 {
		return ""
	}
	best, bestD := "", math.MaxInt
	for _, c := range known {
		if d := editDistance(strings.ToLower(k), strings.ToLower(c)); d < bestD {
			best, bestD = c, d
		}
	}
	if bestD <= max(1, len(k)/3) {
		return " (did you mean " + best + "?)"
	}
	return " (known keys: " + strings.Join(known, ", ") + ")"
}

// editDistance is the optimal string alignment distance of a and b:
// insertions, deletions, substitutions and transpositions of adjacent
// bytes.
func editDistance(a, b string) int {
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}
