package insitu

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"

	"github.com/go-viper/mapstructure/v2"
)

// Params is the configuration of one black box as it came from a config
// file: the raw key/value tree under the `blackbox` key, and where it came
// from so errors can name the file and the key.
type Params struct {
	Kind   string         // registered kind, e.g. "cnon"
	Values map[string]any // every key except kind
	File   string         // config file, for errors; may be empty
	Prefix string         // key path of Values in the file, e.g. "blackbox"
}

// Decode fills the struct pointed to by into from Values using its
// `mapstructure` tags. Every problem is an error naming the file and the
// key path, with the value and what is wanted: a key the struct does not
// know (with the closest known key), a value of the wrong type, a number
// that does not fit its field exactly (2.5 for an int, -1 for a uint), a
// duration without a unit (durations are written "2s", "150ms"; see
// DurationHook).
func (p Params) Decode(into any) error {
	dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		Result:           into,
		WeaklyTypedInput: true, // "1e-3" from an env var or flag is a number
		ErrorUnused:      true,
		DecodeHook:       mapstructure.ComposeDecodeHookFunc(DurationHook(), NumberHook()),
	})
	if err != nil {
		return err
	}
	err = dec.Decode(p.Values)
	if err == nil {
		return nil
	}
	var errs []error
	for _, pr := range DecodeProblems(err, into) {
		if pr.Key == "" {
			errs = append(errs, fmt.Errorf("%s: %s", p.where(), pr.Msg))
			continue
		}
		errs = append(errs, p.Errorf(pr.Key, "%s", pr.Msg))
	}
	return errors.Join(errs...)
}

// Errorf returns an error that names the file and the key path of key.
func (p Params) Errorf(key, format string, args ...any) error {
	return fmt.Errorf("%s.%s: %s", p.where(), key, fmt.Sprintf(format, args...))
}

func (p Params) where() string {
	prefix := p.Prefix
	if prefix == "" {
		prefix = "blackbox"
	}
	if p.File == "" {
		return prefix
	}
	return p.File + ": " + prefix
}

// Factory builds a black box from its parameters. It may open devices, so
// it takes a context.
type Factory func(ctx context.Context, p Params) (BlackBox, error)

var (
	registryMu sync.RWMutex
	registry   = map[string]Factory{}
)

// Register makes a kind available to New. It is meant to be called from the
// init function of the package that implements the kind, and panics if the
// kind is registered twice or the factory is nil, like database/sql.Register.
func Register(kind string, f Factory) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if f == nil {
		panic("insitu: Register factory is nil for kind " + kind)
	}
	if _, dup := registry[kind]; dup {
		panic("insitu: Register called twice for kind " + kind)
	}
	registry[kind] = f
}

// Kinds returns the registered kinds, sorted.
func Kinds() []string {
	registryMu.RLock()
	defer registryMu.RUnlock()
	kinds := make([]string, 0, len(registry))
	for k := range registry {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	return kinds
}

// New builds a black box of kind p.Kind and checks that its Spec is valid.
func New(ctx context.Context, p Params) (BlackBox, error) {
	registryMu.RLock()
	f, ok := registry[p.Kind]
	registryMu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%s.kind: unknown kind %q (known: %v)", p.where(), p.Kind, Kinds())
	}
	if p.Values == nil {
		p.Values = map[string]any{}
	}
	b, err := f(ctx, p)
	if err != nil {
		return nil, err
	}
	if err := b.Spec().Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", p.where(), err)
	}
	return b, nil
}

// IsRegistered reports whether kind can be built by New.
func IsRegistered(kind string) bool { return slices.Contains(Kinds(), kind) }
