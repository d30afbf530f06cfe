package reproduce

import (
	"fmt"
	"math"
	"slices"

	"gonum.org/v1/gonum/stat"
	"gonum.org/v1/gonum/stat/distuv"

	"github.com/insitu-lab/insitu/loop/journal"
)

// Test is Welch's unequal-variance t test of two samples a and b.
type Test struct {
	N, M   int     // sample sizes
	T      float64 // (mean a − mean b)/√(var a/n + var b/m)
	DF     float64 // Welch–Satterthwaite degrees of freedom
	P      float64 // two-sided p-value from Student's t with DF degrees of freedom
	Change float64 // (mean a − mean b)/|mean b|
}

// Welch tests a against b. With fewer than two values on a side, or no
// spread on either, P is NaN (T is ±Inf or 0 when the means differ or
// not).
func Welch(a, b []float64) Test {
	r := Test{N: len(a), M: len(b), T: math.NaN(), DF: math.NaN(), P: math.NaN(), Change: math.NaN()}
	if len(a) == 0 || len(b) == 0 {
		return r
	}
	ma, va := stat.MeanVariance(a, nil)
	mb, vb := stat.MeanVariance(b, nil)
	if len(a) < 2 {
		va = 0
	}
	if len(b) < 2 {
		vb = 0
	}
	r.Change = (ma - mb) / math.Abs(mb)
	n, m := float64(len(a)), float64(len(b))
	se2 := va/n + vb/m
	switch {
	case se2 > 0:
		r.T = (ma - mb) / math.Sqrt(se2)
	case ma == mb:
		r.T = 0
	default:
		r.T = math.Copysign(math.Inf(1), ma-mb)
	}
	if len(a) < 2 || len(b) < 2 || !(se2 > 0) {
		return r
	}
	den := 0.0
	if va > 0 {
		den += (va / n) * (va / n) / (n - 1)
	}
	if vb > 0 {
		den += (vb / m) * (vb / m) / (m - 1)
	}
	r.DF = se2 * se2 / den
	r.P = 2 * distuv.StudentsT{Mu: 0, Sigma: 1, Nu: r.DF}.CDF(-math.Abs(r.T))
	return r
}

// Significance level of a block's verdict.
const Alpha = 0.05

// MinSeeds is the seeds rule: a setting is reported from at least this
// many seeds, and a "beats" needs that many in each block.
const MinSeeds = 10

// Favours says which side a block's test favours: +1 a, −1 b, 0 neither
// (p ≥ Alpha, or p unknown), in direction dir.
func (r Test) Favours(dir journal.Direction) int {
	if !(r.P < Alpha) {
		return 0
	}
	if (dir == journal.Maximize) == (r.T > 0) {
		return 1
	}
	return -1
}

// String is "t = −2.31, p = 0.033 (n = 10, 10)".
func (r Test) String() string {
	if math.IsNaN(r.T) {
		return "–"
	}
	p := "p –"
	switch {
	case r.P < 1e-4:
		p = "p < 0.0001"
	case !math.IsNaN(r.P):
		p = "p = " + pval(r.P)
	}
	return fmt.Sprintf("t = %.2f, %s", r.T, p)
}

// pval writes a p-value with two significant digits (and < 0.0001 below).
func pval(p float64) string {
	if p < 1e-4 {
		return "< 0.0001"
	}
	return fmt.Sprintf("%.2g", p)
}

// Claim is a comparison of a against b under the seeds rule: a tuned block
// and a second block of seeds drawn after the setting was fixed.
type Claim struct {
	Tuned, Check Test
	HasCheck     bool // the second block was run
}

// Verdict states the claim: "A beats B" only when both blocks have
// MinSeeds seeds each and |t| ≥ 2 with p < Alpha in a's favour (or b's)
// in both.
func (c Claim) Verdict(a, b string, dir journal.Direction) string {
	beats := func(r Test, side int) bool {
		return r.N >= MinSeeds && r.M >= MinSeeds && math.Abs(r.T) >= 2 && r.Favours(dir) == side
	}
	ft := c.Tuned.Favours(dir)
	switch {
	case math.IsNaN(c.Tuned.T):
		return "–"
	case c.Tuned.N < MinSeeds || c.Tuned.M < MinSeeds:
		return fmt.Sprintf("no verdict: fewer than %d seeds", MinSeeds)
	case ft == 0:
		return "no clear difference"
	case !c.HasCheck || c.Check.N == 0:
		return fmt.Sprintf("%s ahead on the tuned block; second block not run", winner(a, b, ft))
	case c.Check.N < MinSeeds || c.Check.M < MinSeeds:
		return fmt.Sprintf("%s ahead on the tuned block; second block has fewer than %d seeds", winner(a, b, ft), MinSeeds)
	case beats(c.Tuned, ft) && beats(c.Check, ft):
		return fmt.Sprintf("**%s beats %s**", winner(a, b, ft), winner(b, a, ft))
	case c.Check.Favours(dir) == ft:
		return fmt.Sprintf("%s ahead in both blocks, |t| < 2 in one: not a beat", winner(a, b, ft))
	}
	return fmt.Sprintf("%s ahead on the tuned block only: not a beat", winner(a, b, ft))
}

func winner(a, b string, side int) string {
	if side > 0 {
		return a
	}
	return b
}

// blockLabel names a block of seeds: "seeds 1–10" or "seeds 1, 5".
func blockLabel(seeds []uint64) string {
	if len(seeds) == 0 {
		return "no seeds"
	}
	s := slices.Clone(seeds)
	slices.Sort(s)
	return "seeds " + FormatSeeds(s)
}
