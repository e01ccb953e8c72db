package workload

import (
	"fmt"
	"math"
	"math/bits"
)

// ZipfTable is the cumulative distribution of a Zipf law over ranks [0, n):
// P(i) ∝ 1/(i+1)^s. It is immutable, so one table (8 bytes per rank; 8 MB
// for a million keys) can feed any number of per-goroutine streams.
type ZipfTable struct {
	s     float64
	cdf   []float64 // cdf[i] = P(rank <= i); cdf[n-1] == 1
	guide []int32   // guide[j] = rank(j/(len(guide)-1)): narrows each search
}

// The guide has one int32 per rank up to maxGuide (256 KB), which cuts a
// binary search over a million ranks from ~20 scattered probes to a few
// adjacent ones. A larger guide measured no faster: it misses cache too.

// NewZipfTable builds the table for n ranks and exponent s. Any s >= 0 is
// allowed, including s < 1 (which math/rand.Zipf rejects); s == 0 is uniform.
// It panics if n <= 0 or s is negative or not finite.
func NewZipfTable(n int, s float64) *ZipfTable {
	if n <= 0 || s < 0 || math.IsNaN(s) || math.IsInf(s, 0) {
		panic(fmt.Sprintf("workload: bad Zipf parameters n=%d s=%v", n, s))
	}
	cdf := make([]float64, n)
	var sum float64
	for i := range cdf {
		sum += math.Exp(-s * math.Log(float64(i+1)))
		cdf[i] = sum
	}
	for i := range cdf {
		cdf[i] /= sum
	}
	cdf[n-1] = 1
	g := min(1<<bits.Len(uint(n)), maxGuide)
	t := &ZipfTable{s: s, cdf: cdf, guide: make([]int32, g+1)}
	r := 0
	for j := range t.guide { // one pass: guide[j] is the first rank with cdf > j/g
		u := float64(j) / float64(g)
		for r < n-1 && cdf[r] <= u {
			r++
		}
		t.guide[j] = int32(r)
	}
	return t
}

const maxGuide = 1 << 16

// N returns the number of ranks.
func (t *ZipfTable) N() int { return len(t.cdf) }

// S returns the exponent.
func (t *ZipfTable) S() float64 { return t.s }

// Prob returns the probability of rank i.
func (t *ZipfTable) Prob(i int) float64 {
	if i == 0 {
		return t.cdf[0]
	}
	return t.cdf[i] - t.cdf[i-1]
}

// NewStream returns a stream drawing from t, deterministic for seed.
func (t *ZipfTable) NewStream(seed uint64) *Zipf {
	return &Zipf{t: t, rng: splitmix{s: seed}}
}

// rank maps u in [0, 1) to the first rank whose cdf exceeds u.
func (t *ZipfTable) rank(u float64) int {
	j := int(u * float64(len(t.guide)-1))
	return t.search(u, int(t.guide[j]), int(t.guide[j+1]))
}

// search returns the first rank in [lo, hi] whose cdf exceeds u, or hi.
func (t *ZipfTable) search(u float64, lo, hi int) int {
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if t.cdf[m] > u {
			hi = m
		} else {
			lo = m + 1
		}
	}
	return lo
}

// Zipf yields ranks in [0, n) with P(i) ∝ 1/(i+1)^s, by binary search on the
// CDF (about 20 probes for a million keys). It is not safe for concurrent
// use: share the ZipfTable, not the Zipf.
type Zipf struct {
	t   *ZipfTable
	rng splitmix
}

// NewZipf returns a Zipf stream over [0, n) with exponent s, deterministic
// for seed. It builds its own table; use NewZipfTable and
// ZipfTable.NewStream to share one table between goroutines.
func NewZipf(n int, s float64, seed uint64) *Zipf {
	return NewZipfTable(n, s).NewStream(seed)
}

// Next returns the next rank.
func (z *Zipf) Next() int { return z.t.rank(z.rng.float64()) }

// Table returns the table z draws from.
func (z *Zipf) Table() *ZipfTable { return z.t }
