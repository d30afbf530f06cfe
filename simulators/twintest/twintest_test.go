package twintest

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/insitu-lab/insitu"
)

// toy is a config whose validation a test case can get wrong on purpose.
type toy struct{ steps, size int }

func defToy() toy { return toy{steps: 1, size: 1} }

// validators return the errors of a config; "right" is the correct one,
// the others each have one fault ConfigErrors must report.
var validators = map[string]func(toy) error{
	"right": func(c toy) error {
		switch {
		case c.steps < 1:
			return &insitu.ConfigError{Kind: "toy", Key: "steps", Msg: "must be positive"}
		case c.size < 1:
			return &insitu.ConfigError{Kind: "toy", Key: "size", Msg: "must be positive"}
		}
		return nil
	},
	"wrongkey": func(c toy) error {
		if c.steps < 1 || c.size < 1 {
			return &insitu.ConfigError{Kind: "toy", Key: "size", Msg: "must be positive"}
		}
		return nil
	},
	"plain": func(c toy) error {
		if c.steps < 1 || c.size < 1 {
			return errors.New("toy: steps: must be positive")
		}
		return nil
	},
	"badprefix": func(c toy) error {
		if c.steps < 1 {
			return &insitu.ConfigError{Kind: "other", Key: "steps", Msg: "must be positive"}
		}
		return nil
	},
	"default": func(c toy) error { return &insitu.ConfigError{Kind: "toy", Key: "steps", Msg: "always"} },
}

// TestConfigErrorsChild runs ConfigErrors with the validator and build
// named in the environment; TestConfigErrorsReports runs it in a child
// process and reads whether it failed.
func TestConfigErrorsChild(t *testing.T) {
	name := os.Getenv("TWINTEST_VALIDATOR")
	if name == "" {
		t.Skip("run by TestConfigErrorsReports")
	}
	validate := validators[name]
	build := validate
	if os.Getenv("TWINTEST_BUILD_ACCEPTS") != "" {
		build = func(toy) error { return nil }
	}
	ConfigErrors(t, "toy", defToy, validate, build, []ConfigCase[toy]{
		{"steps", func(c *toy) { c.steps = 0 }},
	})
}

func TestConfigErrorsReports(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the test binary again")
	}
	for _, tc := range []struct {
		validator, buildAccepts string
		fail                    string // what the failure says; "" passes
	}{
		{"right", "", ""},
		{"wrongkey", "", `want a ConfigError for key "steps"`},
		{"plain", "", `want a ConfigError for key "steps"`},
		{"badprefix", "", `should start with "toy: steps: "`},
		{"right", "yes", "New accepted an invalid config"},
		{"default", "", "default config:"},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestConfigErrorsChild$", "-test.v")
		cmd.Env = append(os.Environ(), "TWINTEST_VALIDATOR="+tc.validator, "TWINTEST_BUILD_ACCEPTS="+tc.buildAccepts)
		out, err := cmd.CombinedOutput()
		switch {
		case tc.fail == "" && err != nil:
			t.Errorf("%s: ConfigErrors failed a correct validator:\n%s", tc.validator, out)
		case tc.fail != "" && err == nil:
			t.Errorf("%s (build accepts %q): ConfigErrors passed, want a failure saying %q", tc.validator, tc.buildAccepts, tc.fail)
		case tc.fail != "" && !strings.Contains(string(out), tc.fail):
			t.Errorf("%s: failure does not say %q:\n%s", tc.validator, tc.fail, out)
		}
	}
}
