package insitu

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
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

// Errorf returns an error that names the file and the key path of key,
// followed by the message fmt.Errorf makes of format and args: a %w verb
// wraps its argument, so errors.Is and errors.As see the cause.
func (p Params) Errorf(key, format string, args ...any) error {
	return &keyError{key: p.where() + "." + key, err: fmt.Errorf(format, args...)}
}

// keyError is an error at a key path of a config.
type keyError struct {
	key string // file: and key path
	err error
}

func (e *keyError) Error() string { return e.key + ": " + e.err.Error() }
func (e *keyError) Unwrap() error { return e.err }

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

var kinds = NewRegistry[Factory]("kind")

// Register makes a kind available to New. It is meant to be called from the
// init function of the package that implements the kind, and panics if the
// kind is registered twice, is empty or the factory is nil, like
// database/sql.Register.
func Register(kind string, f Factory) { kinds.Register(kind, f) }

// Kinds returns the registered kinds, sorted.
func Kinds() []string { return kinds.Names() }

// New builds a black box of kind p.Kind and checks that its Spec is valid.
func New(ctx context.Context, p Params) (BlackBox, error) {
	f, err := kinds.Lookup(p.Kind)
	if err != nil {
		return nil, fmt.Errorf("%s.kind: %w", p.where(), err)
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
func IsRegistered(kind string) bool { return kinds.Has(kind) }

// Registry maps names to values of type F (factories, describers) for the
// packages that register them from init. Every registry of the project is
// one: names are unique and non-empty, a value is never nil or zero, and an
// unknown name is an error that lists the known ones, sorted. It is safe for
// concurrent use.
type Registry[F any] struct {
	what string // what a name names, for messages: "kind", "part type"
	mu   sync.RWMutex
	m    map[string]F
}

// NewRegistry returns an empty registry whose names are what ("kind",
// "objective kind", "frame source"), as errors and panics call them.
func NewRegistry[F any](what string) *Registry[F] {
	return &Registry[F]{what: what, m: map[string]F{}}
}

// Register adds name. It panics if name is empty or already registered, or
// f is nil or the zero value: registration happens in init, where a
// mistake is the program's, like database/sql.Register.
func (r *Registry[F]) Register(name string, f F) {
	if name == "" {
		panic(fmt.Sprintf("insitu: registering an empty %s", r.what))
	}
	if reflect.ValueOf(&f).Elem().IsZero() {
		panic(fmt.Sprintf("insitu: registering %s %q: nil or zero", r.what, name))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.m[name]; dup {
		panic(fmt.Sprintf("insitu: %s %q registered twice", r.what, name))
	}
	r.m[name] = f
}

// Lookup returns what name was registered with, or an error wrapping
// ErrUnknownName that says "unknown WHAT "name" (known: [a b c])".
func (r *Registry[F]) Lookup(name string) (F, error) {
	r.mu.RLock()
	f, ok := r.m[name]
	r.mu.RUnlock()
	if !ok {
		var zero F
		return zero, fmt.Errorf("%w %s %q (known: %v)", ErrUnknownName, r.what, name, r.Names())
	}
	return f, nil
}

// Has reports whether name is registered.
func (r *Registry[F]) Has(name string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	_, ok := r.m[name]
	return ok
}

// Names returns the registered names, sorted.
func (r *Registry[F]) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return slices.Sorted(maps.Keys(r.m))
}

// ErrUnknownName is what Registry.Lookup's errors wrap: the name was never
// registered.
var ErrUnknownName = errors.New("unknown")
