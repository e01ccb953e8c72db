package hotspot

import "slices"

// Band indexes the oracle's three thresholds: (1-eps)T, T and (1+eps)T
// reads per window, with eps = 0.25.
const (
	bandLow = iota
	bandExact
	bandHigh
	eps = 0.25
)

// oracle is an exact rectangular sliding window over a stream of key ids
// on a virtual clock: the window at request i is the last win requests.
// It keeps, in O(1) per request, every key's count and the sets of keys at
// or above each of three thresholds, so banded metrics cost nothing extra.
type oracle struct {
	ids    []int32
	win    int
	counts []int32
	thr    [3]int32
	sets   [3]map[int32]struct{}
}

// newOracle returns an oracle over ids with keys in [0, keys), a window of
// win requests and a hot threshold of thr reads per window.
func newOracle(ids []int32, keys, win int, thr float64) *oracle {
	o := &oracle{ids: ids, win: win, counts: make([]int32, keys)}
	for b, f := range []float64{1 - eps, 1, 1 + eps} {
		o.thr[b] = int32(ceil(f * thr))
		o.sets[b] = make(map[int32]struct{})
	}
	return o
}

func ceil(f float64) float64 {
	if i := float64(int64(f)); i < f {
		return i + 1
	}
	return f
}

// add moves the window forward over request i.
func (o *oracle) add(i int) {
	k := o.ids[i]
	o.counts[k]++
	for b, t := range o.thr {
		if o.counts[k] == t {
			o.sets[b][k] = struct{}{}
		}
	}
	if i < o.win {
		return
	}
	k = o.ids[i-o.win]
	o.counts[k]--
	for b, t := range o.thr {
		if o.counts[k] == t-1 {
			delete(o.sets[b], k)
		}
	}
}

// hot returns the keys at or above the threshold, at most maxHot of them,
// the largest first.
func (o *oracle) hot(maxHot int) []int32 {
	keys := make([]int32, 0, len(o.sets[bandExact]))
	for k := range o.sets[bandExact] {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b int32) int {
		if o.counts[a] != o.counts[b] {
			return int(o.counts[b] - o.counts[a])
		}
		return int(a - b)
	})
	return keys[:min(len(keys), maxHot)]
}

// in reports whether key k's window count is at or above band b.
func (o *oracle) in(k int32, b int) bool { return o.counts[k] >= o.thr[b] }
