package hotspot

import (
	"math"
	"sync/atomic"
)

// Sketch counts are fixed point: one sampled read is unit. The fraction
// keeps the per-tick decay from rounding small counts down by a whole read.
const (
	unitShift = 8
	unit      = 1 << unitShift
	maxDepth  = 4
	// decayBase is HeavyKeeper's b: a colliding read decrements a bucket
	// holding count c with probability b^-c, so large counts are safe.
	decayBase = 1.08
)

// decayLUT[c] is b^-c scaled to 12 bits, for c in whole reads: each row
// draws 12 random bits, so one 64-bit draw serves sampling and 4 rows.
var decayLUT = func() (t [256]uint16) {
	for c := range t {
		t[c] = uint16(math.Round(4096 * math.Pow(decayBase, -float64(c))))
	}
	return t
}()

// rowBits is the random bits one row uses, from bit rowShift on.
const (
	rowBits  = 12
	rowShift = 16
)

// sketch is a HeavyKeeper (Gong et al., ATC'18): depth rows of width
// buckets, each a 32-bit fingerprint and a 32-bit count packed into one
// atomic word. A key's buckets keep its count while colliding keys decay
// it, so heavy keys hold their buckets and light ones do not. Counts stop
// at a cap (saturation), so a bucket whose key went cold is reclaimed
// within a bounded number of ticks.
type sketch struct {
	buckets []atomic.Uint64 // row r is buckets[r*width : (r+1)*width]
	width   int
	depth   int
}

func newSketch(width, depth int) sketch {
	return sketch{buckets: make([]atomic.Uint64, width*depth), width: width, depth: depth}
}

// index returns the bucket of h in row r by double hashing.
func (s *sketch) index(h uint64, r int) int {
	step := uint32(h>>32)<<1 | 1
	return r*s.width + int((uint32(h)+uint32(r)*step)&uint32(s.width-1))
}

// add records one sampled read of h and returns the key's estimated count:
// the largest count among the buckets that hold its fingerprint. rnd
// supplies rowBits random bits per row from bit rowShift on.
func (s *sketch) add(h uint64, rnd uint64, capc uint32) uint32 {
	fp := uint32(h>>32) | 1
	var est uint32
	for r := range s.depth {
		c := s.addRow(&s.buckets[s.index(h, r)], fp, uint16(rnd>>(rowShift+rowBits*r))&(1<<rowBits-1), capc)
		if c >= capc {
			return c // saturated: no row can say more, so hot keys touch one bucket
		}
		est = max(est, c)
	}
	return est
}

// addRow updates one bucket and returns the key's count in it (0 if the
// bucket belongs to another key).
func (s *sketch) addRow(b *atomic.Uint64, fp uint32, rnd uint16, capc uint32) uint32 {
	for {
		v := b.Load()
		bfp, c := uint32(v>>32), uint32(v)
		var n uint32
		switch {
		case c == 0: // empty or decayed to nothing: take it
			bfp, n = fp, unit
		case bfp == fp:
			if c >= capc {
				return c // saturated: no write, so hot buckets stay shared in caches
			}
			n = min(c+unit, capc)
		case c>>unitShift >= uint32(len(decayLUT)) || rnd >= decayLUT[c>>unitShift]:
			return 0 // the holder keeps its bucket
		case c <= unit: // decayed to zero: the newcomer takes over
			bfp, n = fp, unit
		default:
			n = c - unit
		}
		if b.CompareAndSwap(v, uint64(bfp)<<32|uint64(n)) {
			if bfp != fp {
				return 0
			}
			return n
		}
	}
}

// estimate returns the count of h without changing the sketch.
func (s *sketch) estimate(h uint64) uint32 {
	fp := uint32(h>>32) | 1
	var est uint32
	for r := range s.depth {
		if v := s.buckets[s.index(h, r)].Load(); uint32(v>>32) == fp {
			est = max(est, uint32(v))
		}
	}
	return est
}

// decay multiplies every count by f after clamping it to capc. It runs
// concurrently with add: a lost race retries that bucket.
func (s *sketch) decay(f float64, capc uint32) {
	for i := range s.buckets {
		b := &s.buckets[i]
		for {
			v := b.Load()
			if uint32(v) == 0 {
				break
			}
			c := uint32(min(float64(min(uint32(v), capc))*f, math.MaxUint32))
			if b.CompareAndSwap(v, v&^math.MaxUint32|uint64(c)) {
				break
			}
		}
	}
}

// sizeBytes is the sketch's memory.
func (s *sketch) sizeBytes() int { return 8 * len(s.buckets) }
