package insitu

import (
	"errors"
	"fmt"
)

// ConfigError is one problem with a black box's configuration, naming the
// key it is about, e.g. "cnon: steps: must be ≥ 1, got 0".
type ConfigError struct {
	Kind string // the black box's kind
	Key  string // mapstructure key, e.g. "steps" or "camera.gain"
	Msg  string
}

func (e *ConfigError) Error() string { return e.Kind + ": " + e.Key + ": " + e.Msg }

// Problems collects every problem of a configuration, so that a Validate
// reports them all at once instead of the first.
type Problems struct {
	Kind string
	List []ConfigError
}

// Add records a problem with key.
func (p *Problems) Add(key, format string, args ...any) {
	p.List = append(p.List, ConfigError{Kind: p.Kind, Key: key, Msg: fmt.Sprintf(format, args...)})
}

// Err joins the problems, each a *ConfigError; nil when there is none.
func (p *Problems) Err() error {
	var errs []error
	for i := range p.List {
		errs = append(errs, &p.List[i])
	}
	return errors.Join(errs...)
}

// In returns the problems as errors naming params' file and key path, for
// a factory; nil when there is none.
func (p *Problems) In(params Params) error {
	var errs []error
	for _, pr := range p.List {
		errs = append(errs, params.Errorf(pr.Key, "%s", pr.Msg))
	}
	return errors.Join(errs...)
}
