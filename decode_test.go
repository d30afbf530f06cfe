package insitu

import (
	"strings"
	"testing"
	"time"
)

// part is a black box's config section as instruments write them.
type part struct {
	Settle  time.Duration      `mapstructure:"settle"`
	Timeout time.Duration      `mapstructure:"timeout"`
	N       int                `mapstructure:"n"`
	Seed    uint64             `mapstructure:"seed"`
	Bits    int8               `mapstructure:"bits"`
	Gain    float32            `mapstructure:"gain"`
	Hidden  []int              `mapstructure:"hidden"`
	Lower   map[string]float64 `mapstructure:"lower"`
	Nested  struct {
		Depth int `mapstructure:"depth"`
	} `mapstructure:"nested"`
}

func decodePart(values map[string]any) (part, error) {
	var c part
	err := Params{Kind: "rig", File: "rig.yaml", Prefix: "blackbox.parts[1]", Values: values}.Decode(&c)
	return c, err
}

// A duration without a unit is refused, whether YAML gave an int, a float
// or a string, with the key and the unit to write; 0 needs no unit.
func TestParamsDecodeDurationWithoutUnit(t *testing.T) {
	for _, c := range []struct {
		value any
		want  string
	}{
		{10, "rig.yaml: blackbox.parts[1].settle: 10 has no unit: write 10s (or 10ms, 10us)"},
		{2.5, "rig.yaml: blackbox.parts[1].settle: 2.5 has no unit: write 2.5s (or 2.5ms, 2.5us)"},
		{"10", "rig.yaml: blackbox.parts[1].settle: 10 has no unit: write 10s (or 10ms, 10us)"},
		{uint64(3), "3 has no unit"},
		{"10 secs", `"10 secs" has an unknown unit`},
		{"soon", `"soon" is not a duration: want a number with a unit`},
		{"99999999999h", "at most 2562047h"},
		{[]any{1}, "want a duration with a unit, e.g. 10s or 150ms, not a list"},
	} {
		_, err := decodePart(map[string]any{"settle": c.value})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("settle: %#v: error %v, want %q", c.value, err, c.want)
		}
	}
	for _, v := range []any{0, 0.0, "0", "0s"} {
		if c, err := decodePart(map[string]any{"settle": v}); err != nil || c.Settle != 0 {
			t.Errorf("settle: %#v: %v, %v; want 0 without error", v, c.Settle, err)
		}
	}
	c, err := decodePart(map[string]any{"settle": "150ms", "timeout": 2 * time.Second})
	if err != nil || c.Settle != 150*time.Millisecond || c.Timeout != 2*time.Second {
		t.Errorf("settle 150ms, timeout 2s: got %v, %v, %v", c.Settle, c.Timeout, err)
	}
}

// Numbers go into their fields exactly or not at all.
func TestParamsDecodeNumbersExactly(t *testing.T) {
	for _, c := range []struct {
		key   string
		value any
		want  string
	}{
		{"n", 2.5, "blackbox.parts[1].n: 2.5 is not a whole number"},
		{"n", "2.5", "blackbox.parts[1].n: 2.5 is not a whole number"},
		{"n", 1e30, "blackbox.parts[1].n: 1e30 does not fit an int (at most 9223372036854775807)"},
		{"n", -1e30, "-1e30 does not fit an int (at least -9223372036854775808)"},
		{"n", "99999999999999999999", "99999999999999999999 does not fit an int"},
		{"n", "abc", `blackbox.parts[1].n: "abc" is not a number: want a whole number`},
		{"n", true, "true is not a number: want a whole number"},
		{"seed", -1, "blackbox.parts[1].seed: -1 is negative: want a whole number ≥ 0"},
		{"seed", "-1", "-1 is negative"},
		{"seed", -1.0, "-1 is negative"},
		{"seed", 1e20, "1e20 does not fit a uint64 (at most 18446744073709551615)"},
		{"bits", 300, "blackbox.parts[1].bits: 300 does not fit an int8 (at most 127)"},
		{"gain", 1e300, "1e300 does not fit a float32"},
		{"gain", "x", `"x" is not a number`},
		{"hidden", []any{16, 2.5}, "blackbox.parts[1].hidden[1]: 2.5 is not a whole number"},
		{"lower", map[string]any{"x0": "abc"}, `blackbox.parts[1].lower.x0: "abc" is not a number`},
		{"nested", map[string]any{"depth": 1.5}, "blackbox.parts[1].nested.depth: 1.5 is not a whole number"},
		{"lower", 5, "blackbox.parts[1].lower: want a map of keys, not 5"},
	} {
		_, err := decodePart(map[string]any{c.key: c.value})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %#v: error %v, want %q", c.key, c.value, err, c.want)
		}
	}
	c, err := decodePart(map[string]any{"n": 1e3, "seed": "18446744073709551615", "bits": "-128", "hidden": []any{4.0, "8", "0x10"}, "gain": "1e-3"})
	if err != nil || c.N != 1000 || c.Seed != 1<<64-1 || c.Bits != -128 || len(c.Hidden) != 3 || c.Hidden[2] != 16 || c.Gain != 1e-3 {
		t.Errorf("exact values: %+v, %v", c, err)
	}
}

// An unknown key is named by its full path, with the closest known key or,
// when none is close, the known keys.
func TestParamsDecodeUnknownKeys(t *testing.T) {
	_, err := decodePart(map[string]any{"setle": "1s", "nested": map[string]any{"dpeth": 1}, "wobble": 1})
	for _, want := range []string{
		"rig.yaml: blackbox.parts[1].setle: unknown key (did you mean settle?)",
		"rig.yaml: blackbox.parts[1].nested.dpeth: unknown key (did you mean depth?)",
		"rig.yaml: blackbox.parts[1].wobble: unknown key (known keys: bits, gain, hidden, lower, n, nested, seed, settle, timeout)",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
	if err != nil && strings.Contains(err.Error(), "invalid keys") {
		t.Errorf("error reads as mapstructure's: %v", err)
	}
}

func TestFormatNumber(t *testing.T) {
	for f, want := range map[float64]string{2.5: "2.5", 1e30: "1e30", 3e18: "3e18", 1e-7: "1e-7", 100: "100", -1e8: "-1e8"} {
		if got := formatNumber(f); got != want {
			t.Errorf("formatNumber(%v) = %q, want %q", f, got, want)
		}
	}
}

func TestEditDistance(t *testing.T) {
	for _, c := range []struct {
		a, b string
		d    int
	}{{"topk", "top_k", 1}, {"iteratoins", "iterations", 1}, {"", "abc", 3}, {"kitten", "sitting", 3}, {"same", "same", 0}} {
		if got := editDistance(c.a, c.b); got != c.d {
			t.Errorf("editDistance(%q, %q) = %d, want %d", c.a, c.b, got, c.d)
		}
	}
}
