// Package twintest holds checks every twin's tests share, as
// net/http/httptest does for handlers.
package twintest

import (
	"errors"
	"strings"
	"testing"

	"github.com/insitu-lab/insitu"
)

// ConfigCase breaks one key of a default configuration.
type ConfigCase[C any] struct {
	Key  string
	Edit func(*C)
}

// ConfigErrors checks that each case's broken configuration is refused by
// validate with a *insitu.ConfigError naming the case's key, whose message
// starts with "KIND: key: ", and by build; and that the default passes.
func ConfigErrors[C any](t *testing.T, kind string, def func() C, validate func(C) error, build func(C) error, cases []ConfigCase[C]) {
	t.Helper()
	for _, c := range cases {
		cfg := def()
		c.Edit(&cfg)
		err := validate(cfg)
		var ce *insitu.ConfigError
		if !errors.As(err, &ce) || ce.Key != c.Key {
			t.Errorf("%s: error %v, want a ConfigError for key %q", c.Key, err, c.Key)
			continue
		}
		if want := kind + ": " + c.Key + ": "; !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%s: error %q should start with %q", c.Key, err, want)
		}
		if err := build(cfg); err == nil {
			t.Errorf("%s: New accepted an invalid config", c.Key)
		}
	}
	if err := validate(def()); err != nil {
		t.Errorf("default config: %v", err)
	}
}
