package insitu

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
)

// describeTestDevice is a kind standing for hardware: building it counts an
// "open", and its describer computes the same Spec from the parameters.
var describeTestOpens atomic.Int64

type describeTestConfig struct {
	Channels int     `mapstructure:"channels"`
	Max      float64 `mapstructure:"max"`
}

func (c describeTestConfig) spec() (Spec, error) {
	if c.Channels < 0 {
		return Spec{}, errors.New("channels: must not be negative")
	}
	sp := Spec{Name: "describe-test-device", In: Box(c.Channels, 0, c.Max), Out: []string{"y"}}
	for i := range c.Channels {
		sp.In.Names = append(sp.In.Names, "ch"+string(rune('0'+i)))
	}
	return sp, nil
}

// closingTwin is a twin kind (no describer) that records being closed.
type closingTwin struct {
	constBox
	closed *atomic.Int64
}

func (c closingTwin) Close() error { c.closed.Add(1); return nil }

var describeTwinBuilds, describeTwinCloses atomic.Int64

func init() {
	decode := func(p Params) (describeTestConfig, error) {
		c := describeTestConfig{Channels: 2, Max: 1}
		return c, p.Decode(&c)
	}
	Register("describe-test-device", func(_ context.Context, p Params) (BlackBox, error) {
		c, err := decode(p)
		if err != nil {
			return nil, err
		}
		describeTestOpens.Add(1)
		sp, err := c.spec()
		if err != nil {
			return nil, p.Errorf("channels", "%w", err)
		}
		return constBox{spec: sp}, nil
	})
	RegisterDescriber("describe-test-device", func(p Params) (Spec, error) {
		c, err := decode(p)
		if err != nil {
			return Spec{}, err
		}
		sp, err := c.spec()
		if err != nil {
			return Spec{}, p.Errorf("channels", "%w", err)
		}
		return sp, nil
	})
	Register("describe-test-twin", func(_ context.Context, p Params) (BlackBox, error) {
		var c struct {
			Dim int `mapstructure:"dim"`
		}
		if err := p.Decode(&c); err != nil {
			return nil, err
		}
		describeTwinBuilds.Add(1)
		return closingTwin{constBox{spec: Spec{Name: "describe-test-twin", In: Box(c.Dim, -1, 1), Out: []string{"a", "b"}}}, &describeTwinCloses}, nil
	})
}

func TestDescribeUsesTheDescriber(t *testing.T) {
	ctx := context.Background()
	p := Params{Kind: "describe-test-device", Values: map[string]any{"channels": 3, "max": "2.5"}}
	before := describeTestOpens.Load()
	got, err := Describe(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if describeTestOpens.Load() != before {
		t.Fatal("Describe built a kind that has a describer")
	}
	b, err := New(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, b.Spec()) {
		t.Errorf("Describe = %+v, New's Spec = %+v", got, b.Spec())
	}
	if !Describes("describe-test-device") || Describes("no-such-kind") {
		t.Error("Describes does not tell a described kind from others")
	}
	// The caller owns what it gets.
	got.In.Names[0] = "changed"
	again, _ := Describe(ctx, p)
	if again.In.Names[0] != "ch0" {
		t.Errorf("a described Spec shares memory with the next: %v", again.In.Names)
	}
}

func TestDescribeBuildsAndClosesATwin(t *testing.T) {
	builds, closes := describeTwinBuilds.Load(), describeTwinCloses.Load()
	sp, err := Describe(context.Background(), Params{Kind: "describe-test-twin", Values: map[string]any{"dim": 4}})
	if err != nil {
		t.Fatal(err)
	}
	if sp.In.Dim() != 4 || strings.Join(sp.Out, ",") != "a,b" || sp.Name != "describe-test-twin" {
		t.Errorf("spec %+v", sp)
	}
	if describeTwinBuilds.Load() != builds+1 || describeTwinCloses.Load() != closes+1 {
		t.Errorf("twin built %d and closed %d times, want once each",
			describeTwinBuilds.Load()-builds, describeTwinCloses.Load()-closes)
	}
	// A twin without Close is described too.
	if _, err := Describe(context.Background(), Params{Kind: "registry-test"}); err != nil {
		t.Error(err)
	}
}

func TestDescribeErrors(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		p    Params
		want []string
	}{
		{Params{Kind: "nope", File: "a.yaml"}, []string{"a.yaml", "blackbox.kind", `unknown kind "nope"`, "describe-test-device"}},
		{Params{Kind: "describe-test-device", File: "b.yaml", Values: map[string]any{"chanels": 1}}, []string{"b.yaml", "chanels"}},
		{Params{Kind: "describe-test-device", File: "c.yaml", Values: map[string]any{"channels": -1}}, []string{"c.yaml: blackbox.channels", "negative"}},
		// The Spec a describer returns is validated as New validates a box's.
		{Params{Kind: "describe-test-device", File: "d.yaml", Values: map[string]any{"channels": 0}}, []string{"d.yaml", "zero dimensions"}},
		{Params{Kind: "describe-test-device", File: "e.yaml", Values: map[string]any{"max": -1}}, []string{"e.yaml", "exceeds upper bound"}},
		{Params{Kind: "describe-test-twin", File: "f.yaml", Values: map[string]any{"dims": 1}}, []string{"f.yaml", "dims"}},
	} {
		before := describeTestOpens.Load()
		_, err := Describe(ctx, c.p)
		if err == nil {
			t.Errorf("%+v: no error", c.p)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%+v: error %q lacks %q", c.p, err, w)
			}
		}
		if describeTestOpens.Load() != before {
			t.Errorf("%+v: Describe built the device", c.p)
		}
	}
}
