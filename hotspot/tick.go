package hotspot

import (
	"math"
	"slices"
	"time"
)

const (
	// admitFrac and evictFrac are the shares of the threshold at which the
	// sketch admits a key to the candidate table and the table evicts it.
	admitFrac = 0.5
	evictFrac = 0.25
	// thinFloor is the counted samples per tick a thinned key keeps.
	thinFloor = 1024
	// maxEvery bounds sampling to 1 read in 8192: the draw's low 13 bits.
	maxEvery = 1 << 13
	// sampleSlack is the hysteresis of the sampling rate: it halves only
	// when keys at the threshold would still get 1.25x MinSamples.
	sampleSlack = 1.25
)

// Tick advances time to now: it folds in the reads recorded since the last
// Tick, decays every count, and returns the keys that turned hot or cooled.
// Call it every Config.Tick from the owner goroutine; a now not after the
// previous one changes nothing.
func (a *Analyzer) Tick(now time.Time) Changes {
	f, ticks := 1.0, 1.0
	if !a.last.IsZero() {
		dt := now.Sub(a.last)
		if dt <= 0 {
			return Changes{}
		}
		f = math.Exp(-dt.Seconds() / a.cfg.Window.Seconds())
		ticks = float64(dt) / float64(a.cfg.Tick)
	}
	a.last = now
	var sampled uint64
	for i := range a.reads {
		sampled += a.reads[i].n.Swap(0)
	}
	a.total = a.total*f + float64(sampled*a.every+a.edgeReads.Swap(0))
	a.weight = a.weight*f + ticks
	a.on = max(a.cfg.Share*a.total, a.cfg.MinRate*a.cfg.Tick.Seconds()*a.weight)

	a.tab.mu.Lock()
	ch := a.decideLocked(now, f)
	a.tab.mu.Unlock()

	old := a.every
	a.every = a.sampling()
	a.sk.decay(f*float64(old)/float64(a.every), a.sketchCount(a.cfg.Saturation, old))
	a.mask.Store(a.every - 1)
	a.capc.Store(a.sketchCount(a.cfg.Saturation, a.every))
	a.admit.Store(a.sketchCount(admitFrac, a.every))
	return ch
}

// sketchCount converts frac x the threshold to sketch units at sampling
// period every.
func (a *Analyzer) sketchCount(frac float64, every uint64) uint32 {
	return uint32(min(frac*a.on/float64(every)*unit, math.MaxUint32))
}

// sampling returns the sampling period for the current threshold: the
// largest power of two that leaves a key at the threshold MinSamples
// samples per window, with hysteresis.
func (a *Analyzer) sampling() uint64 {
	if a.cfg.Unsampled {
		return 1
	}
	x := a.rate(a.on) * a.cfg.Window.Seconds() / float64(a.cfg.MinSamples)
	e := a.every
	for e > 1 && float64(e) > x {
		e /= 2
	}
	for e < maxEvery && float64(2*e)*sampleSlack <= x {
		e *= 2
	}
	return e
}

// decideLocked folds the candidates' counters into their decayed counts,
// evicts the cold ones, and picks the hot set. a.tab.mu must be held.
func (a *Analyzer) decideLocked(now time.Time, f float64) Changes {
	var cands []int
	for i := range a.tab.ents {
		if a.tab.hashes[i].Load() == 0 {
			continue
		}
		e := &a.tab.ents[i]
		a.fold(i, e, f)
		if !e.hot && e.reads <= evictFrac*a.on {
			a.tab.freeLocked(i)
			continue
		}
		if a.eligible(e, now) {
			cands = append(cands, i)
		}
	}
	slices.SortFunc(cands, func(i, j int) int { return a.hotter(j, i) })
	if len(cands) > a.cfg.MaxHot {
		cands = cands[:a.cfg.MaxHot]
	}
	return a.swapHotLocked(cands, now)
}

// fold adds slot i's counters since the last tick to its entry e.
func (a *Analyzer) fold(i int, e *entry, f float64) {
	rw := a.tab.ctr[i].rw.Swap(0)
	reads := float64(uint32(rw))*float64(a.every) + float64(a.tab.ctr[i].edge.Swap(0)) + e.seed
	e.seed = 0
	e.reads = e.reads*f + reads
	e.capped = min(e.capped*f+reads, a.cfg.Saturation*a.on)
	e.writes = e.writes*f + float64(rw>>32*a.every)
	a.tab.thin[i].Store(thinning(float64(uint32(rw))))
}

// thinning returns the thinning exponent of a key that got samples sampled
// reads in the last tick: beyond 2048 a tick (20k a second at the default
// Tick) its counter is written about 1024 times a tick, each write worth
// 2^t reads. Accuracy does not suffer (1024 samples a tick is 10k a window,
// 1% noise) and two cores stop trading the line of the hottest keys.
func thinning(samples float64) uint32 {
	if samples < 2*thinFloor {
		return 0
	}
	return uint32(min(math.Floor(math.Log2(samples/thinFloor)), 16))
}

// eligible reports whether e may be hot after this tick.
func (a *Analyzer) eligible(e *entry, now time.Time) bool {
	if a.cfg.MaxWriteRatio >= 0 && e.writes > a.cfg.MaxWriteRatio*e.reads {
		return false
	}
	if e.capped >= a.on && e.capped > 0 {
		return true
	}
	return e.hot && (e.capped >= a.cfg.Hysteresis*a.on || now.UnixNano()-e.since < int64(a.cfg.MinHot))
}

// hotter orders slots by read count, then by hash so ties are stable.
func (a *Analyzer) hotter(i, j int) int {
	ei, ej := &a.tab.ents[i], &a.tab.ents[j]
	switch {
	case ei.reads != ej.reads:
		if ei.reads > ej.reads {
			return 1
		}
		return -1
	case ei.h > ej.h:
		return 1
	case ei.h < ej.h:
		return -1
	}
	return 0
}

// swapHotLocked makes hot the hot set and returns the difference.
func (a *Analyzer) swapHotLocked(hot []int, now time.Time) Changes {
	var ch Changes
	for _, i := range a.hot {
		a.tab.ents[i].hot = false
	}
	for _, i := range hot {
		e := &a.tab.ents[i]
		e.hot = true
		if !slices.Contains(a.hot, i) {
			e.since = now.UnixNano()
			ch.Hot = append(ch.Hot, a.hit(e))
		}
	}
	for _, i := range a.hot {
		if !a.tab.ents[i].hot {
			ch.Cooled = append(ch.Cooled, a.hit(&a.tab.ents[i]))
		}
	}
	a.hot = append(a.hot[:0], hot...)
	return ch
}

func (a *Analyzer) hit(e *entry) Hit {
	return Hit{Key: e.key, Hash: e.h, Rate: a.rate(e.reads), WriteRate: a.rate(e.writes), Since: time.Unix(0, e.since)}
}

// Hot returns the hot keys, hottest first, as of the last Tick. Call it
// from the owner goroutine.
func (a *Analyzer) Hot() []Hit {
	a.tab.mu.Lock()
	defer a.tab.mu.Unlock()
	hits := make([]Hit, len(a.hot))
	for n, i := range a.hot {
		hits[n] = a.hit(&a.tab.ents[i])
	}
	return hits
}
