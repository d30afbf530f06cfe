// Package simulators is the home of the bundled software twins; it holds no
// code itself. Each twin is a subpackage that implements insitu.BlackBox and
// registers a kind in its init function, so a program makes it available to
// configuration files with a blank import:
//
//	import _ "github.com/insitu-lab/insitu/simulators/cnon" // kind "cnon"
//
// A twin stands in for a rig: optimizers are tried, tuned and dry-run on it
// before they touch hardware. Conventions every twin follows:
//
//   - It is deterministic for a given seed, its noise included: the same
//     seed and the same sequence of queries give bit-identical outputs.
//   - The imperfections real hardware has (noise, quantization, drift, a
//     model mismatch) are options that are off by default, so the default
//     twin is the ideal system.
//   - Where an exact Jacobian exists the twin implements insitu.Differentiable,
//     which gives the exact-gradient baseline and the reference a surrogate's
//     gradient is measured against.
//   - Independent simulations run on every core through insitu.Batcher, with
//     results identical to one query at a time.
//
// Twins:
//
//   - cnon: a network of coupled nonlinear (pendulum) oscillators integrated
//     with RK4; input the initial angles, output the angles at the horizon;
//     exact VJP by the discrete adjoint of the integrator.
//   - owms (package optics): a Gaussian beam shaped by a phase-only SLM and
//     propagated by Rayleigh–Sommerfeld (FFT linear convolution) or the
//     angular spectrum; field, intensity or camera output; exact VJP.
//   - pnn-cnon, pnn-optical (package pnn): input [u; θ_p], class scores out.
//   - opamp: a two-stage Miller op-amp sized by 10 inputs; outputs gain,
//     phase margin and unity-gain bandwidth from an analytic square-law
//     model or from ngspice on an embedded netlist with our own model cards.
package simulators
