package hotspot

import "math/bits"

// Recorder is a front end to an Analyzer for one goroutine, e.g. one
// connection's: it samples with a countdown and a private generator
// instead of a shared random source, which makes the common, unsampled
// read a decrement and a branch. Recorders of one Analyzer may be used from
// different goroutines at once, but each Recorder from one goroutine at a
// time.
type Recorder struct {
	a    *Analyzer
	skip int64    // reads to pass over before the next sample
	s    uint64   // splitmix64 state
	_    [40]byte // NB: a cache line of its own: Recorders of different goroutines must not share one
}

// NewRecorder returns a Recorder feeding a. Give each Recorder its own
// seed (any value; tests use fixed ones to be deterministic).
func (a *Analyzer) NewRecorder(seed uint64) *Recorder {
	r := &Recorder{a: a, s: seed}
	r.skip = r.nextSkip()
	return r
}

// Record counts one read of key (hash h), as Analyzer.Record does.
func (r *Recorder) Record(key string, h uint64) {
	if r.skip--; r.skip < 0 { // small enough to inline into the caller
		r.sample(key, h)
	}
}

func (r *Recorder) sample(key string, h uint64) {
	r.skip = r.nextSkip()
	r.a.record(key, h, r.next())
}

// RecordWrite counts one write of key (hash h), as Analyzer.RecordWrite
// does.
func (r *Recorder) RecordWrite(key string, h uint64) {
	if r.skip--; r.skip < 0 {
		r.sampleWrite(h)
	}
}

func (r *Recorder) sampleWrite(h uint64) {
	r.skip = r.nextSkip()
	r.a.recordWrite(h)
}

// nextSkip draws the gap to the next sample uniformly from [0, 2R-2], so
// that on average 1 read in R is sampled, R being the Analyzer's current
// sampling period, and no periodic pattern of keys can alias with it.
func (r *Recorder) nextSkip() int64 {
	every := r.a.mask.Load() + 1
	hi, _ := bits.Mul64(r.next(), 2*every-1)
	return int64(hi)
}

func (r *Recorder) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	z := r.s
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}
