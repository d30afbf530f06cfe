package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/insitu-lab/insitu"
	"github.com/insitu-lab/insitu/loop"
	"github.com/insitu-lab/insitu/safety"
)

// describedBox is a black box known only by its Spec, computed from its
// config: what a config check validates the objective against when the
// box is hardware that must not be opened. It cannot be queried.
type describedBox struct{ spec insitu.Spec }

func (b describedBox) Spec() insitu.Spec { return b.spec }

func (b describedBox) Query(context.Context, []float64) ([]float64, error) {
	return nil, fmt.Errorf("%s: a config check does not query the device", b.spec.Name)
}

// params is a config's black-box section as registry parameters.
func params(sec map[string]any, file, prefix string) insitu.Params {
	kind, _ := sec["kind"].(string)
	values := map[string]any{}
	for k, v := range sec {
		if k != "kind" {
			values[k] = v
		}
	}
	return insitu.Params{Kind: kind, Values: values, File: file, Prefix: prefix}
}

// checkOffline validates what a run would validate once its devices are
// open — the black box's keys, the safety section's names and bounds
// against its coordinates and outputs, and the objective's outputs —
// without opening any device: a hardware kind is described from its
// config, a twin is built (twins touch no hardware). obj may be nil (a
// training has no objective section). Problems name file, and their lines
// in it when it is a readable config file.
func checkOffline(ctx context.Context, file string, box map[string]any, sc safety.Config, obj *loop.ObjectiveConfig) (insitu.Spec, error) {
	return checkOfflineAt(ctx, fileOrigin(file), box, sc, obj)
}

// checkOfflineAt is checkOffline for a config whose origin is known.
func checkOfflineAt(ctx context.Context, src *origin, box map[string]any, sc safety.Config, obj *loop.ObjectiveConfig) (insitu.Spec, error) {
	p := src.params(box, "blackbox")
	spec, err := insitu.Describe(ctx, p)
	var errs []error
	switch {
	case errors.Is(err, insitu.ErrNeedsDevice):
		return spec, fmt.Errorf("%w (check it on the bench with: insitu probe --config %s)", err, src.file)
	case err != nil && spec.In.Dim() == 0:
		return spec, err
	case err != nil:
		// The black box has problems but its coordinates and outputs are
		// known: the names and bounds of the other sections are checked
		// against them in the same pass.
		errs = append(errs, err)
	}
	if err := safety.Check(spec, sc); err != nil {
		errs = append(errs, src.explain(validationProblems(err))) // its keys read safety.KEY
	}
	if obj != nil {
		var b insitu.BlackBox = describedBox{spec}
		if !insitu.Describes(p.Kind) {
			// A twin: its objective may ask it for a reachable target.
			if b, err = insitu.New(ctx, p); err != nil {
				return spec, errors.Join(append(errs, err)...)
			}
			defer closeBox(b)
		}
		if _, _, err := loop.NewObjective(ctx, *obj, b); err != nil {
			errs = append(errs, src.explain(validationProblems(err)))
		}
	}
	return spec, errors.Join(errs...)
}
