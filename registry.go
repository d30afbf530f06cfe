package insitu

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/go-viper/mapstructure/v2"
)

// Params is the configuration of one black box as it came from a config
// file: the raw key/value tree under the `blackbox` key, and where it came
// from so errors can name the file, the line and the key.
type Params struct {
	Kind   string         // registered kind, e.g. "cnon"
	Values map[string]any // every key except kind
	File   string         // config file, for errors; may be empty
	Prefix string         // key path of Values in the file, e.g. "blackbox"
	// Line, when not nil, returns the line in File of a full key path
	// ("blackbox.parts[0].step"), or 0 when it is not there; errors then
	// name it: "bench.yaml:21: blackbox.parts[0].step: ...".
	Line func(key string) int
}

// Decode fills the struct pointed to by into from Values using its
// `mapstructure` tags. Every problem is a *KeyError naming the file, the
// line and the key path, with the value and what is wanted: a key the
// struct does not know (with the closest known key), a value of the wrong
// type, a number that does not fit its field exactly (2.5 for an int, -1
// for a uint), a duration without a unit (durations are written "2s",
// "150ms"; see DurationHook). Several problems are joined (errors.Join).
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
		errs = append(errs, p.Errorf(pr.Key, "%s", pr.Msg))
	}
	return errors.Join(errs...)
}

// Errorf returns a *KeyError at key, a path relative to Prefix ("" for the
// section itself), with the message fmt.Errorf makes of format and args:
// a %w verb wraps its argument, so errors.Is and errors.As see the cause.
func (p Params) Errorf(key, format string, args ...any) error {
	return p.keyError(key, fmt.Errorf(format, args...))
}

func (p Params) keyError(key string, err error) *KeyError {
	full := p.prefix()
	if key != "" {
		full += "." + key
	}
	e := &KeyError{File: p.File, Key: full, Err: err}
	if p.Line != nil {
		e.Line = p.Line(full)
		for k := full; e.Line == 0 && k != p.prefix(); {
			// A key the file does not hold (a default found wanting) is
			// placed at the nearest key above it that it does.
			k = parentKey(k)
			e.Line = p.Line(k)
		}
	}
	return e
}

// Wrap places the problems of err, the error of a check of this section's
// values, in the file: a *FieldError (or several, joined) at its key, a
// *KeyError as it is, and any other error at the section itself, each a
// *KeyError. It returns nil for nil.
func (p Params) Wrap(err error) error {
	var errs []error
	var walk func(error)
	walk = func(e error) {
		switch x := e.(type) {
		case nil:
		case interface{ Unwrap() []error }:
			for _, e := range x.Unwrap() {
				walk(e)
			}
		case *KeyError:
			errs = append(errs, x)
		case *FieldError:
			errs = append(errs, p.keyError(x.Key, x.Err))
		default:
			errs = append(errs, p.keyError("", e))
		}
	}
	walk(err)
	return errors.Join(errs...)
}

func (p Params) prefix() string {
	if p.Prefix == "" {
		return "blackbox"
	}
	return p.Prefix
}

// parentKey drops the last element of a key path: a.b[2] → a.b, a.b → a.
func parentKey(k string) string {
	if strings.HasSuffix(k, "]") {
		if i := strings.LastIndexByte(k, '['); i > 0 {
			return k[:i]
		}
	}
	if i := strings.LastIndexByte(k, '.'); i > 0 {
		return k[:i]
	}
	return ""
}

// KeyError is a problem with the value of one key of a configuration
// file, placed: its file (or where else the value came from), its line
// when known, and its full key path.
type KeyError struct {
	File string // the config file, or the value's other source ("--set k=v"); may be empty
	Line int    // 0: not known
	Key  string // the full key path, "blackbox.parts[0].step"; "" for the file as a whole
	Err  error
}

// Error is "file:line: key: message", leaving out what is not known.
func (e *KeyError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			b.WriteString(":" + strconv.Itoa(e.Line))
		}
		b.WriteString(": ")
	}
	if e.Key != "" {
		b.WriteString(e.Key + ": ")
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *KeyError) Unwrap() error { return e.Err }

// FieldError is a problem with one key of a configuration section, named
// relative to the section ("step", "bounds.upper"), as a section's own
// check reports it (a device config's Validate); Params.Wrap places it in
// the file. Checks that find several problems join them (errors.Join).
type FieldError struct {
	Key string
	Err error
}

// FieldErrorf returns a *FieldError at key with the message fmt.Errorf
// makes of format and args.
func FieldErrorf(key, format string, args ...any) error {
	return &FieldError{Key: key, Err: fmt.Errorf(format, args...)}
}

func (e *FieldError) Error() string { return e.Key + ": " + e.Err.Error() }
func (e *FieldError) Unwrap() error { return e.Err }

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
		return nil, p.Errorf("kind", "%w", err)
	}
	if p.Values == nil {
		p.Values = map[string]any{}
	}
	b, err := f(ctx, p)
	if err != nil {
		return nil, err
	}
	if err := b.Spec().Validate(); err != nil {
		return nil, p.Errorf("", "%w", err)
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
