package insitu

import (
	"context"
	"errors"
	"io/fs"
	"slices"
	"strings"
	"testing"
	"time"
)

type constBox struct {
	spec Spec
	val  float64
}

func (c constBox) Spec() Spec { return c.spec }
func (c constBox) Query(_ context.Context, x []float64) ([]float64, error) {
	return []float64{c.val}, nil
}

func init() {
	Register("registry-test", func(_ context.Context, p Params) (BlackBox, error) {
		cfg := struct {
			Dim   int     `mapstructure:"dim"`
			Value float64 `mapstructure:"value"`
		}{Dim: 2}
		if err := p.Decode(&cfg); err != nil {
			return nil, err
		}
		if cfg.Dim < 0 {
			return nil, p.Errorf("dim", "must be ≥ 0, got %d", cfg.Dim)
		}
		return constBox{Spec{Name: "registry-test", In: Box(cfg.Dim, 0, 1), Out: []string{"v"}}, cfg.Value}, nil
	})
}

func TestRegistryBuildsByKind(t *testing.T) {
	ctx := context.Background()
	b, err := New(ctx, Params{Kind: "registry-test", Values: map[string]any{"dim": 3, "value": "2.5"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := b.Spec().In.Dim(); got != 3 {
		t.Errorf("dim %d, want 3", got)
	}
	y, _ := b.Query(ctx, []float64{0, 0, 0})
	if y[0] != 2.5 {
		t.Errorf("value %v, want 2.5 (weakly typed from a string)", y[0])
	}
	if !IsRegistered("registry-test") {
		t.Error("kind not listed")
	}
}

func TestRegistryErrorsNameFileAndKey(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		p    Params
		want []string
	}{
		{Params{Kind: "nope", File: "a.yaml"}, []string{"a.yaml", "blackbox.kind", `unknown kind "nope"`, "registry-test"}},
		{Params{Kind: "registry-test", File: "b.yaml", Values: map[string]any{"bogus": 1}}, []string{"b.yaml", "bogus"}},
		{Params{Kind: "registry-test", File: "c.yaml", Values: map[string]any{"dim": "many"}}, []string{"c.yaml", "dim"}},
		{Params{Kind: "registry-test", File: "d.yaml", Prefix: "rig.sensor", Values: map[string]any{"dim": -1}}, []string{"d.yaml: rig.sensor.dim", "must be ≥ 0"}},
		// A constructor that returns an invalid Spec is caught by New.
		{Params{Kind: "registry-test", File: "e.yaml", Values: map[string]any{"dim": 0}}, []string{"e.yaml", "zero dimensions"}},
	}
	for _, c := range cases {
		_, err := New(ctx, c.p)
		if err == nil {
			t.Errorf("%+v: no error", c.p)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%+v: error %q lacks %q", c.p, err, w)
			}
		}
	}
}

func TestQueryBatchFallsBackToQuery(t *testing.T) {
	b := constBox{Spec{Name: "c", In: Box(1, 0, 1), Out: []string{"v"}}, 4}
	ys, err := QueryBatch(context.Background(), b, [][]float64{{0}, {1}, {0.5}})
	if err != nil || len(ys) != 3 || ys[2][0] != 4 {
		t.Fatalf("QueryBatch = %v, %v", ys, err)
	}
}

func TestParamsDecodeDurations(t *testing.T) {
	var c struct {
		Timeout time.Duration `mapstructure:"timeout"`
		Settle  time.Duration `mapstructure:"settle"`
	}
	p := Params{Kind: "x", Values: map[string]any{"timeout": "2s", "settle": "150ms"}}
	if err := p.Decode(&c); err != nil {
		t.Fatal(err)
	}
	if c.Timeout != 2*time.Second || c.Settle != 150*time.Millisecond {
		t.Errorf("decoded %v, %v", c.Timeout, c.Settle)
	}
	p.Values["timeout"] = "soon"
	if err := p.Decode(&c); err == nil || !strings.Contains(err.Error(), "timeout") {
		t.Errorf("a bad duration: %v", err)
	}
}

// Every registry of the project is a Registry, so its rules are tested
// here once: duplicates, empty names and nil values panic; an unknown name
// is an error that lists the known names, sorted.
func TestRegistryRules(t *testing.T) {
	r := NewRegistry[func() int]("widget")
	r.Register("b", func() int { return 2 })
	r.Register("a", func() int { return 1 })
	panics := func(name string, f func()) {
		t.Helper()
		defer func() {
			if recover() == nil {
				t.Errorf("%s: no panic", name)
			}
		}()
		f()
	}
	panics("duplicate", func() { r.Register("a", func() int { return 3 }) })
	panics("empty name", func() { r.Register("", func() int { return 3 }) })
	panics("nil value", func() { r.Register("c", nil) })
	if got := r.Names(); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("Names() = %v, want [a b]", got)
	}
	if f, err := r.Lookup("b"); err != nil || f() != 2 {
		t.Errorf("Lookup(b): %v", err)
	}
	if !r.Has("a") || r.Has("c") {
		t.Error("Has disagrees with the registrations")
	}
	_, err := r.Lookup("zz")
	if want := `unknown widget "zz" (known: [a b])`; err == nil || err.Error() != want {
		t.Errorf("Lookup(zz) error %v, want %q", err, want)
	}
	if !errors.Is(err, ErrUnknownName) {
		t.Errorf("Lookup(zz) error %v does not wrap ErrUnknownName", err)
	}
	zs := NewRegistry[struct{ A func() }]("thing")
	panics("zero struct", func() { zs.Register("x", struct{ A func() }{}) })
}

// Params.Errorf names the key and keeps a %w cause in the chain.
func TestParamsErrorfWraps(t *testing.T) {
	p := Params{File: "a.yaml", Prefix: "blackbox.parts[0]"}
	err := p.Errorf("display", "open: %w", fs.ErrNotExist)
	if want := "a.yaml: blackbox.parts[0].display: open: file does not exist"; err.Error() != want {
		t.Errorf("%q, want %q", err, want)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%v does not match fs.ErrNotExist", err)
	}
}
