// Package splitmix derives independent random streams from one seed, the
// way every twin and data set does: a stream is named by a salt, and
// SplitMix64's finalizer spreads nearby seeds (1, 2, …), salts and query
// indices over the whole state space of a PCG generator, so that seed 1
// and seed 2 give unrelated draws.
//
// The outputs are part of the twins' reproducibility: a seeded twin gives
// bit-identical results across versions, so none of these functions may
// change.
package splitmix

import "math/rand/v2"

// Mix is the SplitMix64 finalizer (Steele, Lea and Flood, 2014): a
// bijection of uint64 whose outputs of consecutive inputs look independent.
func Mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// Seed is the 64-bit seed of the stream salt of seed.
func Seed(seed, salt uint64) uint64 { return Mix(seed ^ Mix(salt)) }

// Stream returns the generator of the stream salt of seed.
func Stream(seed, salt uint64) *rand.Rand {
	s := Seed(seed, salt)
	return rand.New(rand.NewPCG(s, Mix(s)))
}

// QueryPCG seeds p as the generator of query k of the stream whose seed
// is s (see Seed): each query draws its own noise, so a query's result
// does not depend on the queries before it. Reusing p saves an allocation
// per query.
func QueryPCG(p *rand.PCG, s, k uint64) { p.Seed(s, Mix(k^s)) }

// Query returns the generator of query k of the stream salt of seed.
func Query(seed, salt, k uint64) *rand.Rand {
	p := new(rand.PCG)
	QueryPCG(p, Seed(seed, salt), k)
	return rand.New(p)
}
