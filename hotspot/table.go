package hotspot

import (
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"
)

// probe is the size of a key's window of candidate slots: 8 hashes, one
// cache line.
const probe = 8

// counters are what recorders add to a candidate between two ticks.
type counters struct {
	rw   atomic.Uint64 // sampled reads (low 32 bits) and sampled writes (high 32 bits)
	edge atomic.Uint64 // reads reported by edges
}

// readOne and writeOne are the increments of counters.rw.
const (
	readOne  = 1
	writeOne = 1 << 32
)

// entry is a candidate as the owner sees it. Counts are in reads, decayed
// once per tick.
type entry struct {
	key    string
	h      uint64
	seed   float64 // sketch estimate at admission, folded in at the next tick
	reads  float64 // direct and edge reads
	capped float64 // reads, saturated at the cap: decides hot and cool
	writes float64
	since  int64 // unix nanoseconds at which the key turned hot
	hot    bool
}

// table holds the candidates: keys the sketch found heavy, counted exactly
// from admission on. Recorders find a key's slot by its hash without a
// lock; slots change hands only under mu.
type table struct {
	hashes []atomic.Uint64 // h|1 of the slot's key; 0 when free
	ctr    []counters
	// thin[i] = t: reads of slot i count 2^t at a time with probability
	// 2^-t. Set at each tick for keys read so often that cores would trade
	// their counter's cache line (see thinning).
	thin []atomic.Uint32
	mu   sync.Mutex // guards ents and the assignment of slots
	ents []entry
	mask int
}

func newTable(n int) table {
	return table{hashes: make([]atomic.Uint64, n), ctr: make([]counters, n), thin: make([]atomic.Uint32, n), ents: make([]entry, n), mask: n - 1}
}

// window returns the first slot of h's probe window.
func (t *table) window(h uint64) int { return int(h>>24) & t.mask &^ (probe - 1) }

// find returns h's slot, or -1.
func (t *table) find(h uint64) int {
	tag, base := h|1, t.window(h)
	for i := base; i < base+probe; i++ {
		if t.hashes[i].Load() == tag {
			return i
		}
	}
	return -1
}

// insert gives key a slot unless it has one, taking a free slot or the
// lightest cold candidate lighter than weight, and returns the slot or -1.
// seed is the key's count so far, in reads.
func (t *table) insert(key string, h uint64, seed, weight float64) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	if i := t.find(h); i >= 0 {
		return i
	}
	victim := -1
	for i := t.window(h); i < t.window(h)+probe; i++ {
		if t.hashes[i].Load() == 0 {
			victim = i
			break
		}
		e := &t.ents[i]
		if !e.hot && e.reads+e.seed < weight && (victim < 0 || e.reads+e.seed < t.ents[victim].reads+t.ents[victim].seed) {
			victim = i
		}
	}
	if victim < 0 {
		return -1
	}
	t.ctr[victim].rw.Store(0)
	t.ctr[victim].edge.Store(0)
	t.thin[victim].Store(0)
	t.ents[victim] = entry{key: strings.Clone(key), h: h, seed: seed}
	t.hashes[victim].Store(h | 1) // publish last
	return victim
}

// freeLocked releases slot i. t.mu must be held.
func (t *table) freeLocked(i int) {
	t.hashes[i].Store(0)
	t.ents[i] = entry{}
}

// sizeBytes is the table's memory, with the candidates' keys.
func (t *table) sizeBytes() int {
	n := len(t.hashes) * (8 + int(unsafe.Sizeof(counters{})) + 4 + int(unsafe.Sizeof(entry{})))
	for i := range t.ents {
		n += len(t.ents[i].key)
	}
	return n
}
