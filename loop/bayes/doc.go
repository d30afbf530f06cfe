// Package bayes is Bayesian optimization for the loop's methods bayopt and
// turbo: a Gaussian process with a Matérn-5/2 kernel, its hyperparameters
// by maximum marginal likelihood (gonum/optimize's L-BFGS from several
// starts, in logs), expected improvement maximized by multi-start L-BFGS
// in the box (BO), and the TuRBO-1 trust region of Eriksson et al. (2019)
// for high dimensions (Turbo).
//
// Points live in the unit box [0,1]^d. A periodic coordinate (a phase) is
// seen by the kernel through its chord on the circle, |sin(πΔ)|/π, so
// that 0 and 1 are one setting. Every method minimizes: a caller who
// maximizes passes −f.
//
// Everything is deterministic for a seed: the random starts, candidates
// and samples come from one PCG stream whose state is part of State, and
// a GP rebuilt from State and the same points (Restore) is bit-identical
// to the one that was saved, Cholesky extensions included.
package bayes
