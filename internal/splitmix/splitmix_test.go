package splitmix

import (
	"math/rand/v2"
	"testing"
)

// The reference values are SplitMix64's published outputs: the generator
// seeded with 1234567 (x ← x + γ, then the finalizer) gives these first
// outputs (Vigna's splitmix64.c, the test vectors of xoshiro's seeding).
func TestMixMatchesSplitMix64(t *testing.T) {
	want := []uint64{6457827717110365317, 3203168211198807973, 9817491932198370423, 4593380528125082431, 16408922859458223821}
	state := uint64(1234567)
	for i, w := range want {
		if got := Mix(state); got != w {
			t.Errorf("output %d: %d, want %d", i, got, w)
		}
		state += 0x9e3779b97f4a7c15
	}
}

// Streams are what the twins drew before they shared this package: the
// formulas, spelled out.
func TestStreamsAreTheTwinsFormulas(t *testing.T) {
	for _, c := range []struct{ seed, salt, k uint64 }{{1, 2, 0}, {7, 0x64617461_00000001, 3}, {0, 0, 1 << 40}} {
		s := Mix(c.seed ^ Mix(c.salt))
		if Seed(c.seed, c.salt) != s {
			t.Errorf("Seed(%d, %d)", c.seed, c.salt)
		}
		a, b := Stream(c.seed, c.salt), rand.New(rand.NewPCG(s, Mix(s)))
		q, r := Query(c.seed, c.salt, c.k), rand.New(rand.NewPCG(s, Mix(c.k^s)))
		for range 8 {
			if a.Uint64() != b.Uint64() || q.Uint64() != r.Uint64() {
				t.Fatalf("seed %d salt %d: streams differ", c.seed, c.salt)
			}
		}
	}
}
