package workload

import "math/bits"

// Uniform yields key ids uniformly from [0, n). It is not safe for
// concurrent use.
type Uniform struct {
	n   int
	rng splitmix
}

// NewUniform returns a uniform stream over [0, n), deterministic for seed.
// It panics if n <= 0.
func NewUniform(n int, seed uint64) *Uniform {
	if n <= 0 {
		panic("workload: NewUniform needs n > 0")
	}
	return &Uniform{n: n, rng: splitmix{s: seed}}
}

// Next returns the next key id.
func (u *Uniform) Next() int { return u.rng.intn(u.n) }

func mul64(a, b uint64) (hi, lo uint64) { return bits.Mul64(a, b) }
