// Package pnn holds physical-neural-network twins: black boxes whose input
// is x = [u; θ_p], a data sample u ∈ [−1, 1]^du followed by dθ trainable
// physical parameters θ_p, and whose outputs are C class scores c0…c{C−1}.
// They are what in-situ training (loop.Train: physics-aware training with
// a GradPIE surrogate for the backward pass) trains:
// the scores of a query go into a cross-entropy, and the gradient with
// respect to θ_p is the last dθ entries of a VJP.
//
// Kinds:
//
//   - pnn-cnon (CNONTwin): the coupled-oscillator network of package cnon
//     with q(0) a fixed seeded linear encoding of u, the drives e = θ_p,
//     and the scores the sums of q(T) over C contiguous groups.
//   - pnn-optical (OpticalTwin): a Gaussian beam whose amplitude is scaled
//     by (1+u_j)/2 on du fixed seeded pixel blocks, phase-modulated by the
//     n² SLM phases θ_p (or (n/b)² with macro_pixel b: blocks of b×b
//     pixels share a phase), propagated by Rayleigh–Sommerfeld, with the
//     scores the power on C detector stripes.
//
// Both implement insitu.Differentiable (the exact VJP of the noiseless map,
// with respect to all of x) and insitu.Batcher (parallel, bit-identical to
// one query at a time). Their reality-gap options are off by default and
// Ideal returns the same twin without them: the model used for in-silico
// training and as the backward model of physics-aware training. Per-query
// input noise of query k depends only on the seed and k.
//
// Datasets to train them on are in the subpackage data.
package pnn

import (
	"context"
	"fmt"
	"math"

	"github.com/insitu-lab/insitu"
)

// PNN is what both twins offer beyond insitu.BlackBox.
type PNN interface {
	insitu.BlackBox
	insitu.Differentiable
	insitu.Batcher
	Split() (du, dtheta int)
	Classes() int
}

var (
	_ PNN = (*CNONTwin)(nil)
	_ PNN = (*OpticalTwin)(nil)
)

// space builds the input box [u; θ] with names u0… and theta0…; θ is
// periodic when it is a phase.
func space(du, dth int, thLo, thHi float64, thUnit string, periodic bool) insitu.Space {
	s := insitu.Space{Periodic: make([]bool, du+dth)}
	for j := range du {
		s.Names = append(s.Names, fmt.Sprintf("u%d", j))
		s.Units = append(s.Units, "")
		s.Lower = append(s.Lower, -1)
		s.Upper = append(s.Upper, 1)
	}
	for j := range dth {
		s.Names = append(s.Names, fmt.Sprintf("theta%d", j))
		s.Units = append(s.Units, thUnit)
		s.Lower = append(s.Lower, thLo)
		s.Upper = append(s.Upper, thHi)
		s.Periodic[du+j] = periodic
	}
	return s
}

func outNames(c int) []string {
	out := make([]string, c)
	for i := range out {
		out[i] = fmt.Sprintf("c%d", i)
	}
	return out
}

func copySpec(name string, s insitu.Space, out []string) insitu.Spec {
	return insitu.Spec{Name: name, In: s.Clone(), Out: append([]string(nil), out...)}
}

// checkVJP validates x and the cotangent v.
func checkVJP(ctx context.Context, name string, s insitu.Space, out []string, x, v []float64) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if err := s.Contains(x); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if len(v) != len(out) {
		return fmt.Errorf("%s: cotangent has %d components, want %d", name, len(v), len(out))
	}
	for i, vi := range v {
		if math.IsNaN(vi) || math.IsInf(vi, 0) {
			return fmt.Errorf("%s: cotangent component %d (%s) is %v", name, i, out[i], vi)
		}
	}
	return nil
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// ConfigError is one problem with a configuration, naming its key; Kind is
// pnn-cnon or pnn-optical.
type ConfigError = insitu.ConfigError
