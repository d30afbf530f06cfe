package main

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"

	"github.com/insitu-lab/insitu"
	"github.com/insitu-lab/insitu/safety"
)

// loadConfig resolves a command's settings into out, in increasing order of
// precedence: the defaults in out, the YAML file (if any), INSITU_* environment
// variables, bound flags, and --set key=value overrides. Every problem is
// an error naming where the value came from (file:line, --set, the
// environment or the defaults), the key's dotted path, the value and what
// is wanted; see resolveConfig.
func loadConfig(file string, flags *pflag.FlagSet, bind map[string]string, sets []string, out any) error {
	var data []byte
	if file != "" {
		var err error
		if data, err = os.ReadFile(file); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("config file %s does not exist", file)
			}
			return err
		}
	}
	return resolveConfig(file, data, flags, bind, sets, out)
}

// resolveConfig is loadConfig for YAML already in memory (a journal's
// config); where names it in errors.
//
// Decoding is exact: unknown keys, values of the wrong type, numbers that
// do not fit their field (2.5 for an int, -1 for a uint, 1e30 for an int)
// and durations without a unit are errors, each on its own line:
//
//	run.yaml:12: iterations: 2.5 is not a whole number
//	--set seed=-1: seed: -1 is negative: want a whole number ≥ 0
//	environment INSITU_SAFETY_TIMEOUT=10: safety.timeout: 10 has no unit: write 10s (or 10ms, 10us)
//	run.yaml:3: topk: unknown key (did you mean top_k?)
//
// When out has a validate method it is called too, and its problems are
// reported the same way.
func resolveConfig(where string, data []byte, flags *pflag.FlagSet, bind map[string]string, sets []string, out any) error {
	if where == "" {
		where = "defaults"
	}
	src := &origin{file: where, flags: flags, bind: bind}
	v := viper.New()
	defaults := map[string]any{}
	if err := mapstructure.Decode(out, &defaults); err != nil {
		return fmt.Errorf("encoding defaults: %w", err)
	}
	dropNil(defaults)
	if err := v.MergeConfigMap(defaults); err != nil {
		return err
	}
	if data != nil {
		v.SetConfigType("yaml")
		if err := v.MergeConfig(bytes.NewReader(data)); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		var doc yaml.Node
		if yaml.Unmarshal(data, &doc) == nil {
			src.doc = &doc
		}
	}
	v.SetEnvPrefix("INSITU")
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()
	for key, flag := range bind {
		if flags == nil {
			break
		}
		if f := flags.Lookup(flag); f != nil && f.Changed {
			if err := v.BindPFlag(key, f); err != nil {
				return err
			}
		}
	}
	for _, s := range sets {
		key, val, ok := strings.Cut(s, "=")
		if !ok || key == "" {
			return fmt.Errorf("--set %q: want key=value", s)
		}
		var parsed any
		if err := yaml.Unmarshal([]byte(val), &parsed); err != nil {
			return fmt.Errorf("--set %s: %w", key, err)
		}
		v.Set(key, parsed)
		src.sets = append(src.sets, override{path: splitKey(key), raw: s, value: parsed})
	}
	// viper's map holds the defaults merged with the file: decode it onto
	// zeroed fields, or a list in the file would be merged element by
	// element into the default list (a setting inheriting the keys of the
	// default setting at its index).
	err := v.Unmarshal(out, func(c *mapstructure.DecoderConfig) {
		c.ZeroFields = true
		c.ErrorUnused = true
		c.WeaklyTypedInput = true
		// The exact duration and number hooks come first: viper's own
		// duration hook would otherwise parse the strings, answering "10"
		// with time's error instead of the unit to write.
		c.DecodeHook = mapstructure.ComposeDecodeHookFunc(insitu.DurationHook(), insitu.NumberHook(), c.DecodeHook, safety.DecodeHook())
	})
	probs := src.dropped(v.AllSettings())
	if err != nil {
		probs = append(probs, insitu.DecodeProblems(err, out)...)
	}
	if len(probs) > 0 {
		return src.explain(probs)
	}
	if val, ok := out.(interface{ validate() error }); ok {
		if err := val.validate(); err != nil {
			return src.explain(validationProblems(err))
		}
	}
	return nil
}

// origin knows where each value of a resolved config came from, to name
// it in errors.
type origin struct {
	file  string     // the config file, or "defaults" without one
	doc   *yaml.Node // the file's YAML tree, for line numbers; nil without a file
	sets  []override // --set key=value, in the order given (the last wins)
	flags *pflag.FlagSet
	bind  map[string]string // config key → flag name
}

// override is one --set.
type override struct {
	path  []string // the key split as splitKey does
	raw   string   // key=value as given
	value any      // value parsed as YAML
}

// explain writes each problem as "source: key: message", one per line.
func (o *origin) explain(probs []insitu.DecodeProblem) error {
	errs := make([]error, 0, len(probs))
	for _, p := range probs {
		errs = append(errs, fmt.Errorf("%s: %s", o.of(p), p.Error()))
	}
	return errors.Join(errs...)
}

// of names where the value of p's key came from, in viper's order of
// precedence: --set, a bound flag, the environment, the file, the defaults.
func (o *origin) of(p insitu.DecodeProblem) string {
	path := splitKey(p.Key)
	if len(path) == 0 {
		return o.file
	}
	for i := len(o.sets) - 1; i >= 0; i-- {
		s := o.sets[i]
		switch {
		case len(s.path) <= len(path) && equalFold(path[:len(s.path)], s.path) && holds(s.value, path[len(s.path):]):
			return "--set " + s.raw
		case p.Unknown && len(s.path) > len(path) && equalFold(s.path[:len(path)], path):
			// --set a.b=1 makes the unknown key a.
			return "--set " + s.raw
		}
	}
	// viper looks a key up in flags and the environment by its leaf key:
	// the path up to the first list index.
	leaf := leafKey(path)
	if !p.Unknown && leaf != "" {
		for key, name := range o.bind {
			if o.flags == nil {
				break
			}
			if f := o.flags.Lookup(name); f != nil && f.Changed && strings.EqualFold(key, leaf) {
				return fmt.Sprintf("--%s %s", name, f.Value)
			}
		}
		env := "INSITU_" + strings.ToUpper(strings.ReplaceAll(leaf, ".", "_"))
		if val, ok := os.LookupEnv(env); ok && val != "" {
			return "environment " + env + "=" + val
		}
	}
	// A key the file does not set has its default, but the file is where
	// it is to be set.
	if o.doc != nil {
		if line := lookupLine(o.doc, path); line > 0 {
			return fmt.Sprintf("%s:%d", o.file, line)
		}
	}
	return o.file
}

// dropped finds the values of the file that viper dropped: a scalar or a
// list where the defaults hold a section (surrogate: 5) is shadowed by the
// defaults' keys under it and never reaches the decoder. settings is
// viper's resolved tree; keys a --set overrides are left to the decoder.
func (o *origin) dropped(settings map[string]any) []insitu.DecodeProblem {
	if o.doc == nil || len(o.doc.Content) == 0 {
		return nil
	}
	var out []insitu.DecodeProblem
	var walk func(n *yaml.Node, set map[string]any, path []string, depth int)
	walk = func(n *yaml.Node, set map[string]any, path []string, depth int) {
		if n = unalias(n); n == nil || n.Kind != yaml.MappingNode || depth > 64 {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], unalias(n.Content[i+1])
			// viper reads a dotted key as a path; merge keys and keys that
			// are not scalars are left to the decoder too.
			if val == nil || k.Kind != yaml.ScalarNode || k.Value == "<<" || strings.Contains(k.Value, ".") {
				continue
			}
			p := append(slices.Clip(path), k.Value)
			if o.overridden(p) {
				continue
			}
			got, ok := lookupFold(set, k.Value)
			sub, isMap := got.(map[string]any)
			switch {
			case val.Kind == yaml.MappingNode:
				if isMap {
					walk(val, sub, p, depth+1)
				}
			case val.Kind == yaml.ScalarNode && val.Tag == "!!null":
			case !ok || got == nil || isMap:
				what := strconv.Quote(val.Value)
				if val.Kind == yaml.SequenceNode {
					what = "a list"
				} else if val.Tag != "!!str" {
					what = val.Value
				}
				out = append(out, insitu.DecodeProblem{Key: strings.Join(p, "."), Msg: "want a map of keys, not " + what})
			}
		}
	}
	walk(o.doc.Content[0], settings, nil, 0)
	return out
}

// overridden reports whether a --set covers path or a key under it.
func (o *origin) overridden(path []string) bool {
	for _, s := range o.sets {
		n := min(len(s.path), len(path))
		if equalFold(s.path[:n], path[:n]) {
			return true
		}
	}
	return false
}

func lookupFold(m map[string]any, key string) (any, bool) {
	if v, ok := m[key]; ok {
		return v, true
	}
	for k, v := range m {
		if strings.EqualFold(k, key) {
			return v, true
		}
	}
	return nil, false
}

// splitKey splits a key path into keys and list indices:
// "surrogate.hidden[1]" is surrogate, hidden, [1].
func splitKey(key string) []string {
	var out []string
	for i := 0; i < len(key); {
		switch key[i] {
		case '.':
			i++
		case '[':
			j := strings.IndexByte(key[i:], ']')
			if j < 0 {
				return append(out, key[i:])
			}
			out = append(out, key[i:i+j+1])
			i += j + 1
		default:
			j := strings.IndexAny(key[i:], ".[")
			if j < 0 {
				j = len(key) - i
			}
			out = append(out, key[i:i+j])
			i += j
		}
	}
	return out
}

// index returns the list index of a path element "[i]".
func index(seg string) (int, bool) {
	if len(seg) < 2 || seg[0] != '[' || seg[len(seg)-1] != ']' {
		return 0, false
	}
	i, err := strconv.Atoi(seg[1 : len(seg)-1])
	return i, err == nil && i >= 0
}

func leafKey(path []string) string {
	var keys []string
	for _, seg := range path {
		if _, ok := index(seg); ok {
			break
		}
		keys = append(keys, seg)
	}
	return strings.Join(keys, ".")
}

func equalFold(a, b []string) bool {
	for i := range a {
		if !strings.EqualFold(a[i], b[i]) {
			return false
		}
	}
	return len(a) == len(b)
}

// holds reports whether a --set value covers the rest of a key path: the
// path is in it, or it ends in a scalar on the way (a scalar given for a
// list or a section).
func holds(v any, rest []string) bool {
	for _, seg := range rest {
		if i, ok := index(seg); ok {
			l, isList := v.([]any)
			if !isList {
				return true
			}
			if i >= len(l) {
				return false
			}
			v = l[i]
			continue
		}
		m, isMap := v.(map[string]any)
		if !isMap {
			return true
		}
		found := false
		for k, x := range m {
			if strings.EqualFold(k, seg) {
				v, found = x, true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// lookupLine finds the line of a key path in a YAML tree: the line of the
// last key (or list item) of the path, or of the scalar that stands where
// a list or section was wanted; 0 when the path is not in the tree.
func lookupLine(doc *yaml.Node, path []string) int {
	n := doc
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return 0
		}
		n = n.Content[0]
	}
	line := 0
	for _, seg := range path {
		n = unalias(n)
		if n == nil {
			return line
		}
		if n.Kind == yaml.ScalarNode {
			return line
		}
		if i, ok := index(seg); ok {
			if n.Kind != yaml.SequenceNode || i >= len(n.Content) {
				return 0
			}
			n = n.Content[i]
			line = n.Line
			continue
		}
		if n.Kind != yaml.MappingNode {
			return 0
		}
		k, val := mappingKey(n, seg, 0)
		if k == nil {
			return 0
		}
		line, n = k.Line, val
	}
	return line
}

// mappingKey finds key in a mapping, by viper's rule (case-insensitive),
// then in the mappings merged into it with <<.
func mappingKey(m *yaml.Node, key string, depth int) (k, v *yaml.Node) {
	if depth > 16 {
		return nil, nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value != "<<" && strings.EqualFold(m.Content[i].Value, key) {
			return m.Content[i], m.Content[i+1]
		}
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value != "<<" {
			continue
		}
		merged := unalias(m.Content[i+1])
		srcs := []*yaml.Node{merged}
		if merged != nil && merged.Kind == yaml.SequenceNode {
			srcs = merged.Content
		}
		for _, s := range srcs {
			if s = unalias(s); s != nil && s.Kind == yaml.MappingNode {
				if k, v := mappingKey(s, key, depth+1); k != nil {
					return k, v
				}
			}
		}
	}
	return nil, nil
}

func unalias(n *yaml.Node) *yaml.Node {
	for range 16 {
		if n == nil || n.Kind != yaml.AliasNode {
			return n
		}
		n = n.Alias
	}
	return nil
}

// validationProblems splits a validate error into one problem per key: an
// error "key: message" names its key, a *safety.ConfigError its key under
// safety; any other error is a problem of the config as a whole.
func validationProblems(err error) []insitu.DecodeProblem {
	var out []insitu.DecodeProblem
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		if e == nil {
			return
		}
		if ce, ok := e.(*safety.ConfigError); ok && ce.Kind == "safety" {
			out = append(out, insitu.DecodeProblem{Key: "safety." + ce.Key, Msg: ce.Msg})
			return
		}
		msg := e.Error()
		if key, rest, ok := strings.Cut(msg, ": "); ok && keyPath.MatchString(key) {
			out = append(out, insitu.DecodeProblem{Key: key, Msg: rest})
			return
		}
		out = append(out, insitu.DecodeProblem{Msg: msg})
	}
	walk(err)
	return out
}

// keyPath matches a dotted key path: top_k, surrogate.hidden[1], init.x[0].
var keyPath = regexp.MustCompile(`^[a-z_0-9]+(\[\d+\])*(\.[a-z_0-9*]+(\[\d+\])*)*$`)

// dropNil removes nil values, nil maps included, from the encoded defaults:
// viper panics when it merges a file's map into a nil map default.
func dropNil(m map[string]any) {
	for k, v := range m {
		switch x := v.(type) {
		case nil:
			delete(m, k)
		case map[string]any:
			if x == nil {
				delete(m, k)
				continue
			}
			dropNil(x)
		default:
			if rv := reflect.ValueOf(v); (rv.Kind() == reflect.Map || rv.Kind() == reflect.Slice || rv.Kind() == reflect.Pointer) && rv.IsNil() {
				delete(m, k)
			}
		}
	}
}
