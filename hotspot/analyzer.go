package hotspot

import (
	"math"
	"math/rand/v2"
	"sync/atomic"
	"time"
	"unsafe"
)

// stripes spreads the node-wide read counter over cache lines, so that
// cores recording at once rarely write the same line.
const stripes = 8

type stripe struct {
	n atomic.Uint64
	_ [56]byte
}

// Analyzer detects hot keys. Create it with New. See the package doc for
// the concurrency contract.
type Analyzer struct {
	// Read by every Record, written only by Tick.
	rnd  func() uint64 // Config.Rand or math/rand/v2's Uint64
	mask atomic.Uint64 // sampling: a read is recorded when rand&mask == 0
	// admit and capc are the sketch counts at which a key becomes a
	// candidate and at which its buckets saturate.
	admit, capc atomic.Uint32
	sk          sketch
	tab         table

	_         [64]byte        // NB: keeps the stripes off the read-mostly line above
	reads     [stripes]stripe // sampled reads since the last tick
	edgeReads atomic.Uint64   // edge-reported reads since the last tick
	_         [56]byte

	cfg   Config
	owner // touched by Tick, Hot and Stats only
}

// owner is the Analyzer state of the owner goroutine.
type owner struct {
	last   time.Time // previous Tick; zero before the first
	every  uint64    // 1 of every reads is sampled
	total  float64   // decayed node reads
	weight float64   // decayed number of ticks: total/weight is reads per tick
	on     float64   // threshold in decayed reads
	hot    []int     // slots of the hot keys, hottest first
}

// New returns an Analyzer for cfg, or an error if cfg is invalid.
func New(cfg Config) (*Analyzer, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	a := &Analyzer{
		cfg: cfg,
		rnd: cfg.Rand,
		sk:  newSketch(cfg.Width, cfg.Depth),
		tab: newTable(cfg.Candidates),
	}
	if a.rnd == nil {
		a.rnd = rand.Uint64
	}
	a.every = 1
	a.capc.Store(math.MaxUint32)
	a.admit.Store(math.MaxUint32) // no candidates before the first tick sets a threshold
	return a, nil
}

// Record counts one read of key, whose 64-bit hash is h. h must be a good
// hash of key (e.g. maphash or xxhash: the one the caller already computes
// for its own table); key is copied only when it becomes a candidate, so
// it may alias a buffer that is reused after Record returns. Record is safe
// for concurrent use; its sampling draw (the runtime's per-thread random
// source) is most of its cost, so a goroutine that records many reads
// should use its own Recorder instead.
func (a *Analyzer) Record(key string, h uint64) {
	if rnd := a.rnd(); rnd&a.mask.Load() == 0 {
		a.record(key, h, rnd)
	}
}

// record counts a sampled read. rnd's bits 0-12 are the sampling draw
// (maxEvery keeps it there), 13-15 pick a stripe and 16-63 feed the sketch.
func (a *Analyzer) record(key string, h uint64, rnd uint64) {
	a.reads[rnd>>13&(stripes-1)].n.Add(1)
	if i := a.tab.find(h); i >= 0 {
		// A candidate is counted exactly and skips the sketch, whose
		// buckets it then frees for newcomers as they decay.
		if t := a.tab.thin[i].Load(); t == 0 || (rnd*0x9e3779b97f4a7c15)>>(64-t) == 0 {
			a.tab.ctr[i].rw.Add(readOne << t)
		}
		return
	}
	if c := a.sk.add(h, rnd, a.capc.Load()); c >= a.admit.Load() {
		n := float64(c) / unit * float64(a.mask.Load()+1)
		a.tab.insert(key, h, n, n)
	}
}

// RecordWrite counts one write of key (hash h). Only the writes of
// candidates are kept: they gate hot keys by Config.MaxWriteRatio.
func (a *Analyzer) RecordWrite(key string, h uint64) {
	if a.rnd()&a.mask.Load() == 0 {
		a.recordWrite(h)
	}
}

// recordWrite counts a sampled write.
func (a *Analyzer) recordWrite(h uint64) {
	if i := a.tab.find(h); i >= 0 {
		a.tab.ctr[i].rw.Add(writeOne)
	}
}

// Report adds n reads of key (hash h) that an edge answered from its
// replica. Without these, a key replicated to the edges would look cold
// exactly because replication works. Report is meant for the keys edges
// hold, i.e. hot keys; n <= 0 is ignored.
func (a *Analyzer) Report(key string, h uint64, n int) {
	if n <= 0 {
		return
	}
	a.edgeReads.Add(uint64(n))
	i := a.tab.find(h)
	if i < 0 {
		i = a.tab.insert(key, h, 0, float64(n))
	}
	if i >= 0 {
		a.tab.ctr[i].edge.Add(uint64(n))
	}
}

// Hit is a hot key.
type Hit struct {
	// Key is the key and Hash the hash it was recorded with.
	Key  string
	Hash uint64
	// Rate is the key's reads per second over the window, counting reads
	// reported by edges.
	Rate float64
	// WriteRate is its writes per second over the window.
	WriteRate float64
	// Since is when it turned hot.
	Since time.Time
}

// Changes is what changed at a Tick.
type Changes struct {
	// Hot are the keys that turned hot, hottest first.
	Hot []Hit
	// Cooled are the keys that stopped being hot.
	Cooled []Hit
}

// Stats describes an Analyzer's state at the last Tick.
type Stats struct {
	// Rate is the node's read rate, in reads per second, edge reads included.
	Rate float64
	// Threshold is the read rate at or above which a key turns hot.
	Threshold float64
	// SampleEvery is the sampling period: 1 of SampleEvery reads is counted.
	SampleEvery int
	// Candidates is how many keys the candidate table holds.
	Candidates int
	// Hot is how many keys are hot.
	Hot int
	// SizeBytes is the Analyzer's memory: sketch, candidate table, the
	// candidates' keys and the Analyzer itself.
	SizeBytes int
}

// Stats returns the Analyzer's state. Call it from the owner goroutine.
func (a *Analyzer) Stats() Stats {
	a.tab.mu.Lock()
	defer a.tab.mu.Unlock()
	n := 0
	for i := range a.tab.hashes {
		if a.tab.hashes[i].Load() != 0 {
			n++
		}
	}
	return Stats{
		Rate:        a.rate(a.total),
		Threshold:   a.rate(a.on),
		SampleEvery: int(a.every),
		Candidates:  n,
		Hot:         len(a.hot),
		SizeBytes:   int(unsafe.Sizeof(*a)) + a.sk.sizeBytes() + a.tab.sizeBytes() + 8*cap(a.hot),
	}
}

// rate converts a decayed count to reads per second.
func (a *Analyzer) rate(count float64) float64 {
	if a.weight == 0 {
		return 0
	}
	return count / a.weight / a.cfg.Tick.Seconds()
}
