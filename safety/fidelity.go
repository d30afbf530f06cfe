package safety

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
)

// Actions of the model-fidelity interlock.
const (
	FidelityPause = "pause" // stop before the next query, resumable
	FidelityTrip  = "trip"  // trip the guard: safe state now
	FidelityWarn  = "warn"  // an event, and go on
)

// KindFidelity is the event of a model-fidelity band crossed.
const KindFidelity Kind = "fidelity"

// ErrFidelity is returned when the surrogate stopped explaining the
// device: its predictions, made before each query, have been further from
// the measurements than the configured band. The gradient it supplies is
// then not to be trusted.
var ErrFidelity = errors.New("the surrogate no longer explains the device")

// FidelityConfig is the model-fidelity interlock: when the mean prediction
// error of the last Window queries exceeds MaxError (in the surrogate's
// normalized output units: each output divided by its spread in the data),
// Action is taken.
type FidelityConfig struct {
	MaxError float64 `mapstructure:"max_error" yaml:"max_error" doc:"largest mean prediction error over the window, in the surrogate's normalized output units"`
	Window   int     `mapstructure:"window" yaml:"window" doc:"queries averaged"`
	Action   string  `mapstructure:"action" yaml:"action" doc:"pause (default; resume from the live view), trip or warn"`
}

func (f FidelityConfig) problems(bad func(key, format string, args ...any)) {
	if !(f.MaxError > 0) || math.IsInf(f.MaxError, 0) {
		bad("model_fidelity.max_error", "%v: want a positive number (normalized output units)", f.MaxError)
	}
	if f.Window < 1 || f.Window > 100000 {
		bad("model_fidelity.window", "%d: want 1 to 100000 queries", f.Window)
	}
	switch f.Action {
	case "", FidelityPause, FidelityTrip, FidelityWarn:
	default:
		bad("model_fidelity.action", "%q: want pause, trip or warn", f.Action)
	}
}

// fidelity is the guard's window of prediction errors.
type fidelity struct {
	cfg  FidelityConfig
	mu   sync.Mutex
	win  []float64 // ring of the last Window errors
	next int
	full bool
	out  bool // the band is crossed now (so warn reports each crossing once)
}

// ObservePrediction takes the prediction error of the query just made.
// With no model_fidelity configured it does nothing. Past the band it
// emits a fidelity event and, by the configured action, returns an error
// wrapping ErrFidelity (pause), trips the guard into the safe state and
// returns the cause wrapping ErrFidelity and ErrInterlock (trip), or goes
// on (warn).
func (g *Guard) ObservePrediction(ctx context.Context, e float64) error {
	f := g.fid
	if f == nil {
		return nil
	}
	f.mu.Lock()
	if len(f.win) == 0 {
		f.win = make([]float64, f.cfg.Window)
	}
	if math.IsNaN(e) {
		e = math.Inf(1) // a prediction that is not a number explains nothing
	}
	f.win[f.next] = e
	f.next = (f.next + 1) % len(f.win)
	f.full = f.full || f.next == 0
	if !f.full {
		f.mu.Unlock()
		return nil
	}
	mean := 0.0
	for _, v := range f.win {
		mean += v
	}
	mean /= float64(len(f.win))
	crossed := mean > f.cfg.MaxError
	first := crossed && !f.out
	f.out = crossed
	f.mu.Unlock()
	if !crossed {
		return nil
	}
	action := f.cfg.Action
	if action == "" {
		action = FidelityPause
	}
	msg := fmt.Sprintf("safety: %s: model fidelity: mean prediction error %.3g over the last %d queries exceeds %.3g (action %s)",
		g.name, mean, f.cfg.Window, f.cfg.MaxError, action)
	switch action {
	case FidelityWarn:
		if first {
			g.emit(KindFidelity, "", mean, msg)
		}
		return nil
	case FidelityTrip:
		return g.trip(ctx, KindFidelity, "", mean, fmt.Errorf("%s: %w: %w", msg, ErrFidelity, ErrInterlock))
	default:
		g.emit(KindFidelity, "", mean, msg)
		return fmt.Errorf("%s: %w", msg, ErrFidelity)
	}
}
