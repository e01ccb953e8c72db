package hotspot

import (
	"cmp"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hotcache/hotcache/internal/workload"
)

// evalSpec is one evaluation setting (HOTKEYS.md §5): a scenario per
// (skew, seed), replayed on a virtual clock through every detector and the
// exact oracle in lockstep.
type evalSpec struct {
	Keys       int
	Rate       int // requests per virtual second
	Duration   time.Duration
	ShiftEvery time.Duration
	FlashShare float64
	FlashStart time.Duration
	FlashEnd   time.Duration
	Warmup     time.Duration
	Skews      []float64
	Seeds      []uint64
	Config     Config // the analyzer's; its Share and MinRate define the oracle's threshold too
	Recorder   bool   // record through a Recorder instead of Analyzer.Record
	AegisSeeds int    // run the aegis comparator on the first AegisSeeds seeds (eval builds only)
}

// ciSpec is the CI-sized stream of the gated tests: 100k keys, 100k
// requests per virtual second for 30 s (3M requests), shifts at 10 s and
// 20 s, a flash crowd at 2% (4x the threshold) from 15 s to 25 s.
var ciSpec = evalSpec{
	Keys: 100_000, Rate: 100_000, Duration: 30 * time.Second,
	ShiftEvery: 10 * time.Second, FlashShare: 0.02, FlashStart: 15 * time.Second, FlashEnd: 25 * time.Second,
	Warmup: 2 * time.Second, Skews: []float64{0.99, 1.1, 1.2, 1.3}, Seeds: []uint64{1, 2, 3, 4, 5},
}

// fullSpec is HOTKEYS.md's default: 1M keys, 200k requests per virtual
// second for 60 s (12M requests), shifts every 10 s, a 2% flash crowd from
// 25 s to 35 s.
var fullSpec = evalSpec{
	Keys: 1_000_000, Rate: 200_000, Duration: 60 * time.Second,
	ShiftEvery: 10 * time.Second, FlashShare: 0.02, FlashStart: 25 * time.Second, FlashEnd: 35 * time.Second,
	Warmup: 2 * time.Second, Skews: []float64{0.99, 1.1, 1.2, 1.3}, Seeds: []uint64{1, 2, 3, 4, 5},
}

// threshold returns the hot threshold in reads per second.
func (s *evalSpec) threshold() float64 {
	c := s.Config.withDefaults()
	return max(c.MinRate, c.Share*float64(s.Rate))
}

// detector is a hot-key detector under evaluation.
type detector interface {
	record(id int32)
	// tick advances the clock to now and returns the hot set.
	tick(now time.Time) map[int32]bool
}

// epoch is the virtual clock's origin.
var epoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// keyHash stands for the hash the node computes for its own table: a
// bijective mix of the id and a per-run seed.
func keyHash(id int32, seed uint64) uint64 {
	z := uint64(id) + seed*0x9e3779b97f4a7c15
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// testRand returns a deterministic, single-goroutine Config.Rand.
func testRand(seed uint64) func() uint64 {
	s := seed << 32
	return func() uint64 { s++; return keyHash(0, s) }
}

// keySet holds the canonical key of every id in one contiguous buffer, as
// request parsing leaves keys in a node's buffers. Keys of ids below 10^7
// are all keyLen bytes, so a key's place is computed, not loaded: a table
// of a million string headers would add a cache miss to every request.
type keySet struct{ buf string }

const keyLen = len("user:0000000:profile")

func keyTable(n int) keySet {
	if n > 10_000_000 {
		panic("keyTable: ids must have 7 digits")
	}
	buf := make([]byte, 0, n*keyLen)
	for i := range n {
		buf = workload.AppendKey(buf, i)
	}
	return keySet{buf: string(buf)}
}

// key returns the key of id.
func (k keySet) key(id int32) string {
	i := int(id) * keyLen
	return k.buf[i : i+keyLen]
}

// keyID inverts workload.Key.
func keyID(key string) int32 {
	id, err := strconv.Atoi(key[len("user:") : len(key)-len(":profile")])
	if err != nil {
		panic(err)
	}
	return int32(id)
}

// ours adapts an Analyzer to detector.
type ours struct {
	a    *Analyzer
	rec  func(string, uint64) // a.Record or a Recorder's
	keys keySet
	seed uint64
	set  map[int32]bool
}

func newOurs(t testing.TB, cfg Config, keys keySet, seed uint64, recorder bool) *ours {
	cfg.Rand = testRand(seed)
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	d := &ours{a: a, rec: a.Record, keys: keys, seed: seed, set: map[int32]bool{}}
	if recorder {
		d.rec = a.NewRecorder(seed).Record
	}
	return d
}

func (d *ours) record(id int32) { d.rec(d.keys.key(id), keyHash(id, d.seed)) }

func (d *ours) tick(now time.Time) map[int32]bool {
	ch := d.a.Tick(now)
	for _, h := range ch.Hot {
		d.set[keyID(h.Key)] = true
	}
	for _, h := range ch.Cooled {
		delete(d.set, keyID(h.Key))
	}
	return d.set
}

// exact adapts the oracle to detector: its hot set is the exact one.
type exact struct {
	o      *oracle
	maxHot int
}

func (d *exact) record(int32) {}

func (d *exact) tick(time.Time) map[int32]bool {
	set := map[int32]bool{}
	for _, k := range d.o.hot(d.maxHot) {
		set[k] = true
	}
	return set
}

// newComparator, when set by an eval build, returns the aegis detector.
var newComparator func(spec *evalSpec, keys keySet) detector

// eventClass sorts events by the key's rate while popular.
const (
	classIgnored = iota // below (1+eps) x threshold: not an event for any method
	classSlow           // (1+eps)x to 2x: slow for every method, reported only
	classGated          // at least 2x: gated
)

// evTrack follows one scenario event for one detector.
type evTrack struct {
	ev     workload.Event
	k0     int // tick of the event
	class  int
	active bool // a falling event counts only if the key was hot at k0
	done   bool
	lat    time.Duration
	miss   bool
}

// detStats accumulates one detector's metrics over a run.
type detStats struct {
	bp, br, sp, sr ratio // banded and strict precision and recall
	rising         int
	tracks         []*evTrack
}

type ratio struct{ num, den int }

func (r *ratio) add(ok bool) {
	r.den++
	if ok {
		r.num++
	}
}

func (r ratio) value() float64 {
	if r.den == 0 {
		return 1
	}
	return float64(r.num) / float64(r.den)
}

// runResult is one (skew, seed) run.
type runResult struct {
	skew  float64
	seed  uint64
	stats map[string]*detStats
	size  int // our analyzer's SizeBytes at the end
}

// detectorNames is the print order.
var detectorNames = []string{"ours", "oracle", "aegis"}

// runEval runs every (skew, seed) of spec on all cores and returns the
// results in (skew, seed) order.
func runEval(t testing.TB, spec *evalSpec) []*runResult {
	keys := keyTable(spec.Keys)
	tables := make(map[float64]*workload.ZipfTable)
	for _, s := range spec.Skews {
		tables[s] = workload.NewZipfTable(spec.Keys, s)
	}
	type job struct {
		i    int
		skew float64
		seed uint64
	}
	var jobs []job
	for _, s := range spec.Skews {
		for _, seed := range spec.Seeds {
			jobs = append(jobs, job{len(jobs), s, seed})
		}
	}
	results := make([]*runResult, len(jobs))
	work := make(chan job)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for j := range work {
				results[j.i] = runOne(t, spec, keys, tables[j.skew], j.seed)
			}
		})
	}
	for _, j := range jobs {
		work <- j
	}
	close(work)
	wg.Wait()
	return results
}

// runOne replays one scenario through the detectors and the oracle.
func runOne(t testing.TB, spec *evalSpec, keys keySet, tab *workload.ZipfTable, seed uint64) *runResult {
	sc := workload.NewScenario(workload.ScenarioConfig{
		Keys: spec.Keys, Skew: tab.S(), Rate: spec.Rate, Seed: seed, Table: tab,
		ShiftEvery: spec.ShiftEvery, FlashShare: spec.FlashShare, FlashStart: spec.FlashStart, FlashEnd: spec.FlashEnd,
	})
	ids := make([]int32, int(spec.Duration.Seconds()*float64(spec.Rate)))
	for i := range ids {
		ids[i] = int32(sc.Next())
	}
	thr := spec.threshold()
	cfg := spec.Config.withDefaults()
	o := newOracle(ids, spec.Keys, int(cfg.Window.Seconds()*float64(spec.Rate)), thr*cfg.Window.Seconds())
	us := newOurs(t, spec.Config, keys, seed, spec.Recorder)
	dets := []detector{us, &exact{o: o, maxHot: cfg.MaxHot}}
	if newComparator != nil && slices.Index(spec.Seeds, seed) < spec.AegisSeeds {
		dets = append(dets, newComparator(spec, keys))
	}
	r := &runResult{skew: tab.S(), seed: seed, stats: map[string]*detStats{}}
	for _, name := range detectorNames[:len(dets)] {
		r.stats[name] = &detStats{tracks: trackEvents(sc.Events(), cfg.Tick, float64(spec.Rate), thr)}
	}
	per := int(cfg.Tick.Seconds() * float64(spec.Rate))
	prev := map[string]map[int32]bool{}
	for k := 1; k*per <= len(ids); k++ {
		for i := (k - 1) * per; i < k*per; i++ {
			o.add(i)
			for _, d := range dets {
				d.record(ids[i])
			}
		}
		now := epoch.Add(time.Duration(k) * cfg.Tick)
		for n, d := range dets {
			name := detectorNames[n]
			set := d.tick(now)
			st := r.stats[name]
			if time.Duration(k)*cfg.Tick >= spec.Warmup {
				st.score(o, set, prev[name], cfg.MaxHot)
			}
			st.follow(k, set, cfg.Tick)
			prev[name] = copySet(set)
		}
	}
	for _, st := range r.stats {
		for _, tr := range st.tracks {
			if tr.active && !tr.done {
				tr.miss, tr.done = true, true
			}
		}
	}
	r.size = us.a.Stats().SizeBytes
	return r
}

func copySet(m map[int32]bool) map[int32]bool {
	c := make(map[int32]bool, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// trackEvents classifies the scenario's events by rate.
func trackEvents(evs []workload.Event, tick time.Duration, rate, thr float64) []*evTrack {
	var trs []*evTrack
	for _, ev := range evs {
		class := classIgnored
		switch r := ev.Share * rate; {
		case r >= 2*thr:
			class = classGated
		case r >= (1+eps)*thr:
			class = classSlow
		}
		if class != classIgnored {
			trs = append(trs, &evTrack{ev: ev, k0: int(ev.At / tick), class: class, active: ev.Rising})
		}
	}
	return trs
}

// score adds one tick's precision, recall and rising transitions.
func (st *detStats) score(o *oracle, set, prev map[int32]bool, maxHot int) {
	strict := map[int32]bool{}
	for _, k := range o.hot(maxHot) {
		strict[k] = true
		st.sr.add(set[k])
	}
	for k := range set {
		st.bp.add(o.in(k, bandLow))
		st.sp.add(strict[k])
		if !prev[k] {
			st.rising++
		}
	}
	for k := range o.sets[bandHigh] {
		st.br.add(set[k])
	}
}

// missAfter is when an undetected or uncooled event counts as missed.
const missAfter = 10 * time.Second

// follow advances the event tracks to tick k.
func (st *detStats) follow(k int, set map[int32]bool, tick time.Duration) {
	for _, tr := range st.tracks {
		switch {
		case tr.done || k < tr.k0:
		case k == tr.k0:
			if !tr.ev.Rising {
				tr.active = set[int32(tr.ev.Key)]
			}
		case !tr.active:
		case set[int32(tr.ev.Key)] == tr.ev.Rising:
			tr.lat, tr.done = time.Duration(k-tr.k0)*tick, true
		case time.Duration(k-tr.k0)*tick > missAfter:
			tr.miss, tr.done = true, true
		}
	}
}

// latencies returns the resolved latencies and the misses of the tracks
// of a class and direction.
func latencies(trs []*evTrack, class int, rising bool) (lats []time.Duration, misses int) {
	for _, tr := range trs {
		if tr.class != class || tr.ev.Rising != rising || !tr.active {
			continue
		}
		if tr.miss {
			misses++
			continue
		}
		lats = append(lats, tr.lat)
	}
	slices.Sort(lats)
	return lats, misses
}

// quantile returns the q-quantile (nearest rank) of sorted durations.
func quantile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	i := int(ceil(q*float64(len(d)))) - 1
	return d[max(0, min(i, len(d)-1))]
}

// pooled gathers one detector's tracks over the runs of a skew.
func pooled(rs []*runResult, skew float64, name string) []*evTrack {
	var trs []*evTrack
	for _, r := range rs {
		if r.skew == skew && r.stats[name] != nil {
			trs = append(trs, r.stats[name].tracks...)
		}
	}
	return trs
}

// skews returns the distinct skews of rs in order.
func skews(rs []*runResult) []float64 {
	var s []float64
	for _, r := range rs {
		if !slices.Contains(s, r.skew) {
			s = append(s, r.skew)
		}
	}
	slices.SortFunc(s, cmp.Compare)
	return s
}

func secs(d time.Duration) string { return fmt.Sprintf("%.1f", d.Seconds()) }
