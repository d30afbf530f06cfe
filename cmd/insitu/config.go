package main

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"

	"github.com/insitu-lab/insitu"
	"github.com/insitu-lab/insitu/loop"
	"github.com/insitu-lab/insitu/safety"
)

// Limits of a config file: a config names settings and a few points, not
// data sets. A file over maxConfigBytes, a list (or map) of more than
// maxConfigItems entries, or more than maxConfigValues values in all is
// refused before it is decoded, with an error naming the file (and the
// key). Decoding and writing back a config costs in proportion to its
// values, about 10 CPU-s and 1.5 GB per million (the YAML library keeps a
// parsed node and an emitter event per value), which these bound.
const (
	maxConfigBytes  = 4 << 20
	maxConfigItems  = 100_000
	maxConfigValues = 1_000_000
)

// configFile is a config file read and parsed once: the file's name, its
// YAML tree (for line numbers), and the tree decoded as viper reads it.
type configFile struct {
	name     string
	doc      *yaml.Node     // nil for an empty file
	settings map[string]any // nil for an empty file
}

// readConfigFile reads and parses a config file within the limits.
func readConfigFile(file string) (*configFile, error) {
	f, err := os.Open(file)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("config file %s does not exist", file)
		}
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() && fi.Size() > maxConfigBytes {
		return nil, tooBig(file, fi.Size())
	}
	data, err := io.ReadAll(io.LimitReader(f, maxConfigBytes+1))
	if err != nil {
		return nil, fmt.Errorf("config file %s: %w", file, err)
	}
	if len(data) > maxConfigBytes {
		return nil, tooBig(file, int64(len(data)))
	}
	return parseConfig(file, data, true)
}

func tooBig(file string, n int64) error {
	return fmt.Errorf("config file %s is %.1f MiB, more than the %d MiB a config may hold (a config holds settings and a few points, not a data set)",
		file, float64(n)/(1<<20), maxConfigBytes>>20)
}

// parseConfig parses a config's YAML once; where names it in errors. A
// config a user hands in is limited: a document over the limits is
// refused. A run's resolved config (from its journal) is not: it was
// resolved from a config within them, and is larger (defaults, one value
// per line), and refusing it would strand the run.
func parseConfig(where string, data []byte, limited bool) (*configFile, error) {
	if limited && len(data) > maxConfigBytes {
		return nil, tooBig(where, int64(len(data)))
	}
	cf := &configFile{name: where}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	if len(doc.Content) == 0 {
		return cf, nil
	}
	cf.doc = &doc
	if limited {
		if probs := overLimits(&doc); len(probs) > 0 {
			return nil, (&origin{file: where, doc: &doc}).explain(probs)
		}
	}
	top := unalias(doc.Content[0])
	if top == nil || top.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s: a config is a map of keys, not %s", where, nodeKind(top))
	}
	if err := doc.Decode(&cf.settings); err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	return cf, nil
}

func nodeKind(n *yaml.Node) string {
	switch {
	case n == nil:
		return "nothing"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	case n.Kind == yaml.ScalarNode:
		return strconv.Quote(n.Value)
	}
	return "this"
}

// overLimits finds the lists and maps of a YAML tree longer than
// maxConfigItems, by key path, and a tree of more than maxConfigValues
// values. Aliases are not followed: an alias is one node, and the decoder
// bounds their expansion.
func overLimits(doc *yaml.Node) []insitu.DecodeProblem {
	var out []insitu.DecodeProblem
	values := 0
	var walk func(n *yaml.Node, path string, depth int)
	walk = func(n *yaml.Node, path string, depth int) {
		if n == nil || depth > 64 || len(out) > 20 {
			return
		}
		switch n.Kind {
		case yaml.ScalarNode:
			values++
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, path, depth+1)
			}
		case yaml.SequenceNode:
			if len(n.Content) > maxConfigItems {
				out = append(out, insitu.DecodeProblem{Key: path, Msg: fmt.Sprintf("a list of %d entries: at most %d", len(n.Content), maxConfigItems)})
				return
			}
			for i, c := range n.Content {
				walk(c, path+"["+strconv.Itoa(i)+"]", depth+1)
			}
		case yaml.MappingNode:
			if len(n.Content)/2 > maxConfigItems {
				out = append(out, insitu.DecodeProblem{Key: path, Msg: fmt.Sprintf("a map of %d keys: at most %d", len(n.Content)/2, maxConfigItems)})
				return
			}
			for i := 0; i+1 < len(n.Content); i += 2 {
				key := n.Content[i].Value
				if path != "" {
					key = path + "." + key
				}
				walk(n.Content[i+1], key, depth+1)
			}
		}
	}
	walk(doc, "", 0)
	if len(out) == 0 && values > maxConfigValues {
		out = append(out, insitu.DecodeProblem{Msg: fmt.Sprintf("%d values in all: at most %d (a config holds settings and a few points, not a data set)", values, maxConfigValues)})
	}
	return out
}

// trainingNode reports whether a parsed config is an 'insitu train' one:
// it has a top-level key only training knows (a run config refuses them
// all). See trainingDoc.
func (cf *configFile) training() bool {
	if cf.settings == nil {
		return false
	}
	for _, k := range loop.TrainingKeys {
		if _, ok := cf.settings[k]; ok {
			return true
		}
	}
	return false
}

// loadConfig resolves a command's settings into out, in increasing order of
// precedence: the defaults in out, the YAML file (if any), INSITU_* environment
// variables, bound flags, and --set key=value overrides. Every problem is
// an error naming where the value came from (file:line, --set, the
// environment or the defaults), the key's dotted path, the value and what
// is wanted; see resolveConfig.
func loadConfig(file string, flags *pflag.FlagSet, bind map[string]string, sets []string, out any) error {
	cf := &configFile{name: "defaults"}
	if file != "" {
		var err error
		if cf, err = readConfigFile(file); err != nil {
			return err
		}
	}
	_, err := cf.resolve(flags, bind, sets, out)
	return err
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
// reported the same way, in the same pass: every problem of the config at
// once, ordered by line (a value that did not decode is not validated
// again).
func resolveConfig(where string, data []byte, flags *pflag.FlagSet, bind map[string]string, sets []string, out any) error {
	if where == "" {
		where = "defaults"
	}
	cf := &configFile{name: where}
	if data != nil {
		var err error
		if cf, err = parseConfig(where, data, false); err != nil {
			return err
		}
	}
	_, err := cf.resolve(flags, bind, sets, out)
	return err
}

// resolve decodes the file's settings, over out's defaults and under the
// environment, flags and sets, into out; see resolveConfig. The origin it
// returns names where each value came from, for problems found later; it
// is nil when the config could not be read at all.
func (cf *configFile) resolve(flags *pflag.FlagSet, bind map[string]string, sets []string, out any) (*origin, error) {
	src := &origin{file: cf.name, doc: cf.doc, flags: flags, bind: bind}
	v := viper.New()
	defaults := map[string]any{}
	if err := mapstructure.Decode(out, &defaults); err != nil {
		return nil, fmt.Errorf("encoding defaults: %w", err)
	}
	dropNil(defaults)
	if err := v.MergeConfigMap(defaults); err != nil {
		return nil, err
	}
	if cf.settings != nil {
		if err := v.MergeConfigMap(cf.settings); err != nil {
			return nil, fmt.Errorf("%s: %w", cf.name, err)
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
				return nil, err
			}
		}
	}
	for _, s := range sets {
		key, val, ok := strings.Cut(s, "=")
		if !ok || key == "" {
			return nil, fmt.Errorf("--set %q: want key=value", s)
		}
		var parsed any
		if err := yaml.Unmarshal([]byte(val), &parsed); err != nil {
			return nil, fmt.Errorf("--set %s: %w", key, err)
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
	if val, ok := out.(interface{ validate() error }); ok {
		probs = append(probs, besides(probs, validationProblems(val.validate()))...)
	}
	if len(probs) > 0 {
		return src, src.explain(probs)
	}
	return src, nil
}

// besides returns the problems of more whose keys none of probs shares:
// a value that did not decode is left zero, and checking it again would
// only repeat the problem. A key shares another when one is the other or
// lies under it.
func besides(probs, more []insitu.DecodeProblem) []insitu.DecodeProblem {
	var out []insitu.DecodeProblem
next:
	for _, m := range more {
		for _, p := range probs {
			if m.Key != "" && p.Key != "" && (underKey(m.Key, p.Key) || underKey(p.Key, m.Key)) {
				continue next
			}
		}
		out = append(out, m)
	}
	return out
}

// underKey reports whether key path k is p or lies under it: a.b[1] and
// a.b.c are under a.b.
func underKey(k, p string) bool {
	k, p = strings.ToLower(k), strings.ToLower(p)
	return k == p || strings.HasPrefix(k, p) && (k[len(p)] == '.' || k[len(p)] == '[')
}

// origin knows where each value of a resolved config came from, to name
// it in errors.
type origin struct {
	file  string     // the config file, or "defaults" without one
	doc   *yaml.Node // the file's YAML tree, for line numbers; nil without a file
	parse sync.Once  // reads file for doc on first need (fileOrigin)
	lazy  bool
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

// explain places each problem (an *insitu.KeyError: "source: key:
// message"), one per line, those in the file in the order of its lines.
func (o *origin) explain(probs []insitu.DecodeProblem) error {
	errs := make([]*insitu.KeyError, 0, len(probs))
	for _, p := range probs {
		e := &insitu.KeyError{File: o.file, Key: p.Key, Err: errors.New(p.Msg)}
		if where, line := o.at(p); line > 0 {
			e.Line = line
		} else {
			e.File = where
		}
		errs = append(errs, e)
	}
	return joinProblems(errs)
}

// joinProblems orders problems, those without a line first (--set, the
// environment, the defaults), then by file and line, and joins them.
func joinProblems(errs []*insitu.KeyError) error {
	slices.SortStableFunc(errs, func(a, b *insitu.KeyError) int {
		if c := cmp.Compare(min(a.Line, 1), min(b.Line, 1)); c != 0 {
			return c
		}
		if a.Line == 0 {
			return 0
		}
		return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line))
	})
	out := make([]error, len(errs))
	for i, e := range errs {
		out[i] = e
	}
	return errors.Join(out...)
}

// fileOrigin is the origin of the config in file alone (no --set, flags or
// environment), for the problems found once it is loaded; the file is read
// for line numbers only if a problem needs one. A name that is not a
// readable config file (a journal's config) gives no lines.
func fileOrigin(file string) *origin {
	return &origin{file: file, lazy: true}
}

// params is a config's black-box section at prefix as registry
// parameters, whose errors name the lines of src's file.
func (o *origin) params(sec map[string]any, prefix string) insitu.Params {
	p := params(sec, o.file, prefix)
	p.Line = o.line
	return p
}

// tree is the file's YAML tree, read now for a lazy origin; nil without one.
func (o *origin) tree() *yaml.Node {
	if o.lazy {
		o.parse.Do(func() {
			if cf, err := readConfigFile(o.file); err == nil {
				o.doc = cf.doc
			}
		})
	}
	return o.doc
}

// of names where the value of p's key came from, in viper's order of
// precedence: --set, a bound flag, the environment, the file (file:line),
// the defaults.
func (o *origin) of(p insitu.DecodeProblem) string {
	where, line := o.at(p)
	if line > 0 {
		return fmt.Sprintf("%s:%d", where, line)
	}
	return where
}

// line is the line of a key path in the file, 0 when the file does not
// hold it or another source (--set, a flag, the environment) sets it.
func (o *origin) line(key string) int {
	if where, line := o.at(insitu.DecodeProblem{Key: key}); where == o.file {
		return line
	}
	return 0
}

// at is of, with the file's line apart: the file and its line, or another
// source and 0.
func (o *origin) at(p insitu.DecodeProblem) (string, int) {
	path := splitKey(p.Key)
	if len(path) == 0 {
		return o.file, 0
	}
	for i := len(o.sets) - 1; i >= 0; i-- {
		s := o.sets[i]
		switch {
		case len(s.path) <= len(path) && equalFold(path[:len(s.path)], s.path) && holds(s.value, path[len(s.path):]):
			return "--set " + s.raw, 0
		case p.Unknown && len(s.path) > len(path) && equalFold(s.path[:len(path)], path):
			// --set a.b=1 makes the unknown key a.
			return "--set " + s.raw, 0
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
				return fmt.Sprintf("--%s %s", name, f.Value), 0
			}
		}
		env := "INSITU_" + strings.ToUpper(strings.ReplaceAll(leaf, ".", "_"))
		if val, ok := os.LookupEnv(env); ok && val != "" {
			return "environment " + env + "=" + val, 0
		}
	}
	// A key the file does not set has its default, but the file is where
	// it is to be set.
	if doc := o.tree(); doc != nil {
		return o.file, lookupLine(doc, path)
	}
	return o.file, 0
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
