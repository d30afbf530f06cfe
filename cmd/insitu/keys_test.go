package main

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/go-viper/mapstructure/v2"
	"go.yaml.in/yaml/v3"

	"github.com/insitu-lab/insitu"
	"github.com/insitu-lab/insitu/instruments/rig"
)

const modulePath = "github.com/insitu-lab/insitu"

// fieldPos finds where struct type st declares field, for the message that
// asks for its doc: "drivers/serial/serial.go:34".
func fieldPos(st reflect.Type, field string) string {
	dir := "."
	if p := st.PkgPath(); p != "main" {
		dir = filepath.Join("../..", strings.TrimPrefix(strings.TrimPrefix(p, modulePath), "/"))
	}
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, dir, func(fi os.FileInfo) bool { return !strings.HasSuffix(fi.Name(), "_test.go") }, 0)
	if err != nil {
		return dir
	}
	for _, pkg := range pkgs {
		for _, f := range pkg.Files {
			var pos token.Pos
			ast.Inspect(f, func(n ast.Node) bool {
				ts, ok := n.(*ast.TypeSpec)
				if !ok || ts.Name.Name != st.Name() {
					return pos == 0
				}
				if s, ok := ts.Type.(*ast.StructType); ok {
					for _, fl := range s.Fields.List {
						for _, nm := range fl.Names {
							if nm.Name == field {
								pos = fl.Pos()
							}
						}
					}
				}
				return false
			})
			if pos != 0 {
				p := fset.Position(pos)
				rel, _ := filepath.Rel("../..", p.Filename)
				if st.PkgPath() == "main" {
					rel = filepath.Join("cmd/insitu", filepath.Base(p.Filename))
				}
				return fmt.Sprintf("%s:%d", rel, p.Line)
			}
		}
	}
	return dir
}

// Every key of every section has a description, and every kind and rig
// part type declares its keys: a key added without one fails here with
// the file, line and tag to add.
func TestConfigKeysDocumented(t *testing.T) {
	n := 0
	seen := map[string]bool{}
	for _, s := range realSections() {
		if s.Missing {
			what := "insitu.RegisterKeys(\"" + s.Name + "\", func() any { c := DefaultConfig(); return &c })` in the init that registers the kind"
			if slices.Contains(rig.PartTypes(), s.Name) {
				what = "Keys: func() any { return &Config{…defaults…} }` to its rig.PartType in rig.RegisterPart(\"" + s.Name + "\", …)"
			}
			t.Errorf("%s declares no config keys: add `%s", s.Title, what)
			continue
		}
		for _, k := range s.Keys {
			n++
			id := k.Struct.String() + "." + k.Field
			if k.Doc != "" || seen[id] {
				continue
			}
			seen[id] = true
			t.Errorf("config key %s (%s) has no description: add doc:\"what it means\" (and unit:\"V\" if it has a unit) to the tag of field %s of %s at %s",
				k.Path, s.Title, k.Field, k.Struct, fieldPos(k.Struct, k.Field))
		}
	}
	if n < 200 {
		t.Errorf("only %d keys listed", n)
	}
}

// realSections are the sections but the kinds this package's tests
// register (test-count, test-slow, …), which a user's binary has not.
func realSections() []keySection {
	var out []keySection
	for _, s := range keySections() {
		if !strings.HasPrefix(s.Name, "test-") {
			out = append(out, s)
		}
	}
	return out
}

// docs/reference/config.md is what `insitu config keys --markdown` writes.
func TestConfigReferenceIsCurrent(t *testing.T) {
	var buf bytes.Buffer
	if err := writeKeysMarkdown(&buf, realSections(), true); err != nil {
		t.Fatal(err)
	}
	stdout := buf.String()
	const path = "../../docs/reference/config.md"
	have, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v: generate it with make docs", err)
	}
	if !bytes.Equal(have, []byte(stdout)) {
		a, b := strings.Split(string(have), "\n"), strings.Split(stdout, "\n")
		line := 0
		for line < min(len(a), len(b)) && a[line] == b[line] {
			line++
		}
		got := ""
		if line < len(b) {
			got = b[line]
		}
		t.Errorf("docs/reference/config.md is stale from line %d (the code now gives %.120q): run make docs (or go generate ./cmd/insitu) and commit it", line+1, got)
	}
}

// Every key the bundled configs use is listed: a key the decoder accepts
// but the listing misses would show up here.
func TestConfigKeysCoverTheConfigs(t *testing.T) {
	paths := map[string]map[string]bool{}
	for _, s := range realSections() {
		m := map[string]bool{}
		for _, k := range s.Keys {
			m[k.Path] = true
		}
		paths[s.Name] = m
	}
	files, _ := filepath.Glob("../../configs/*.yaml")
	if len(files) < 10 {
		t.Fatalf("configs: %v", files)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var top map[string]any
		if err := yaml.Unmarshal(data, &top); err != nil {
			t.Fatal(err)
		}
		section := "run"
		if _, ok := top["settings"]; ok {
			section = "study"
		} else if train, _ := trainingDoc(data); train {
			section = "train"
		}
		check := func(sec, path string) {
			if !paths[sec][path] {
				t.Errorf("%s: key %s is not listed by insitu config keys %s", filepath.Base(f), path, sec)
			}
		}
		var walk func(sec, prefix string, m map[string]any)
		walk = func(sec, prefix string, m map[string]any) {
			for k, v := range m {
				p := k
				if prefix != "" {
					p = prefix + "." + k
				}
				switch {
				case p == "blackbox" || p == "ideal_blackbox" || p == "settings[].blackbox":
					box, _ := v.(map[string]any)
					kind, _ := box["kind"].(string)
					if kind == "" {
						if b, ok := top["blackbox"].(map[string]any); ok {
							kind, _ = b["kind"].(string)
						}
					}
					for bk, bv := range box {
						if bk == "kind" {
							continue
						}
						if kind == "rig" && bk == "parts" {
							for _, part := range bv.([]any) {
								pm := part.(map[string]any)
								typ, _ := pm["type"].(string)
								walk(typ, "blackbox.parts[]", pm)
							}
							continue
						}
						if sub, ok := bv.(map[string]any); ok {
							walk(kind, "blackbox."+bk, sub)
							continue
						}
						check(kind, "blackbox."+bk)
					}
					continue
				}
				check(sec, p)
				// Descend into sections and lists of sections, and into the
				// entries of maps of sections keyed by name; a map of
				// values by name (safety.lower) ends here.
				switch v := v.(type) {
				case map[string]any:
					if hasChildren(paths[sec], p+".<NAME>") {
						for _, e := range v {
							if em, ok := e.(map[string]any); ok {
								walk(sec, p+".<NAME>", em)
							}
						}
						continue
					}
					if hasChildren(paths[sec], p) {
						walk(sec, p, v)
					}
				case []any:
					for _, e := range v {
						if em, ok := e.(map[string]any); ok {
							walk(sec, p+"[]", em)
						}
					}
				}
			}
		}
		walk(section, "", top)
	}
}

func hasChildren(paths map[string]bool, p string) bool {
	for q := range paths {
		if strings.HasPrefix(q, p+".") {
			return true
		}
	}
	return false
}

// toMap encodes a config struct as the map of its keys, as a YAML file
// holding every key at its default would decode to.
func toMap(t *testing.T, v any) map[string]any {
	t.Helper()
	m := map[string]any{}
	if err := mapstructure.Decode(v, &m); err != nil {
		t.Fatal(err)
	}
	dropNil(m)
	return m
}

// Every key a kind or part type lists is one its decoder accepts: a
// section holding all of them at their defaults draws no unknown-key
// error (other errors — a missing port, a size the defaults leave 0 — are
// not this test's).
func TestConfigKeysAreAccepted(t *testing.T) {
	unknown := func(err error) bool {
		return err != nil && (strings.Contains(err.Error(), "unknown key") || strings.Contains(err.Error(), "invalid key"))
	}
	for _, kind := range insitu.Kinds() {
		if kind == "rig" || strings.HasPrefix(kind, "test-") {
			continue
		}
		ks, ok := insitu.KindKeys(kind)
		if !ok || len(ks) == 0 {
			continue // TestConfigKeysDocumented reports it
		}
		c, _ := insitu.KindConfig(kind)
		values := toMap(t, c)
		_, err := insitu.Describe(t.Context(), insitu.Params{Kind: kind, Values: values, Prefix: "blackbox"})
		if unknown(err) {
			t.Errorf("kind %s refuses a key it lists: %v", kind, err)
		}
	}
	for _, typ := range rig.PartTypes() {
		c, ok := rig.PartConfig(typ)
		if !ok {
			continue
		}
		part := toMap(t, c)
		part["name"], part["type"] = "p", typ
		values := map[string]any{"parts": []any{part}}
		_, err := insitu.Describe(t.Context(), insitu.Params{Kind: "rig", Values: values, Prefix: "blackbox"})
		if unknown(err) {
			t.Errorf("part type %s refuses a key it lists: %v", typ, err)
		}
	}
}
