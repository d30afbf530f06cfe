// Package insitu is the vocabulary every other insitu package speaks.
//
// A BlackBox maps an input vector to a measured output vector: a software
// twin or a rig of real instruments. One Query is one apply–settle–measure
// step and costs real time, wear or money, which is why the optimizers in
// package loop count every call. Optional capabilities (Differentiable,
// Batcher, SafeStater, io.Closer) are discovered with type assertions, the
// way io.WriterTo is.
//
// Twins and rigs register a constructor under a kind name (the database/sql
// pattern), so a config file that says `blackbox: {kind: cnon}` builds a
// black box without a switch statement: adding a device is adding a package.
package insitu
