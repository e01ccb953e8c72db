package main

import (
	"math"
	"math/bits"
)

// histogram is an HDR-style latency histogram: values (nanoseconds) below
// 2*histSub are counted exactly, and above that each power-of-two range is
// split into histSub equal buckets, so a quantile is within 1/histSub (0.8%)
// of the recorded value. Recording is a few instructions and never allocates.
// Values above histMax are counted as histMax. A histogram is not safe for
// concurrent use: each connection owns one and they are merged at the end.
type histogram struct {
	counts   [histBuckets]uint64
	n        uint64
	sum      float64
	min, max int64
}

const (
	histSubBits = 7
	histSub     = 1 << histSubBits // buckets per power of two
	histMaxBits = 40               // values up to 2^40 ns (about 18 minutes)
	histMax     = 1<<histMaxBits - 1
	// histBuckets is the index of histMax plus one.
	histBuckets = (histMaxBits-histSubBits-1)*histSub + 2*histSub
)

// histIndex returns the bucket of v, which must be in [0, histMax].
func histIndex(v int64) int {
	if v < 2*histSub {
		return int(v)
	}
	shift := bits.Len64(uint64(v)) - histSubBits - 1
	return shift*histSub + int(v>>shift)
}

// histBounds returns the smallest and largest value counted in bucket i.
func histBounds(i int) (lo, hi int64) {
	if i < 2*histSub {
		return int64(i), int64(i)
	}
	shift := i/histSub - 1
	lo = int64(i-shift*histSub) << shift
	return lo, lo + 1<<shift - 1
}

// record counts one value.
func (h *histogram) record(v int64) {
	if v < 0 {
		v = 0
	} else if v > histMax {
		v = histMax
	}
	h.counts[histIndex(v)]++
	if h.n == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.n++
	h.sum += float64(v)
}

// merge adds the counts of o to h.
func (h *histogram) merge(o *histogram) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	if o.max > h.max {
		h.max = o.max
	}
	h.n += o.n
	h.sum += o.sum
}

// reset forgets every recorded value.
func (h *histogram) reset() { *h = histogram{} }

// quantile returns the value at quantile q in [0, 1]: the smallest recorded
// value v such that at least q of the values are <= v, up to the bucket
// precision (it reports the top of the bucket, clamped to the observed min and
// max). It returns 0 for an empty histogram.
func (h *histogram) quantile(q float64) int64 {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = max(1, min(rank, h.n))
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			_, hi := histBounds(i)
			return max(h.min, min(hi, h.max))
		}
	}
	return h.max
}

// mean returns the average recorded value, or 0.
func (h *histogram) mean() float64 {
	if h.n == 0 {
		return 0
	}
	return h.sum / float64(h.n)
}
