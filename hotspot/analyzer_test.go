package hotspot

import (
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"
)

// driver feeds an Analyzer on a virtual clock, one tick at a time.
type driver struct {
	t    *testing.T
	a    *Analyzer
	now  time.Time
	keys []string
	rnd  func() uint64
	idx  map[string]int32
	hot  map[string]bool
	log  []string // "+key@tick" and "-key@tick"
	k    int
}

func newDriver(t *testing.T, cfg Config) *driver {
	t.Helper()
	cfg.Rand = testRand(1)
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	d := &driver{t: t, a: a, now: epoch, rnd: testRand(2), hot: map[string]bool{}, idx: map[string]int32{}}
	for i := range 1000 {
		d.keys = append(d.keys, fmt.Sprintf("k%d", i))
		d.idx[d.keys[i]] = int32(i)
	}
	return d
}

func (d *driver) h(key string) uint64 { return keyHash(d.idx[key], 7) }

// run records reads per tick for ticks ticks; a read goes to key i with
// probability shares[i], otherwise to one of 1000 background keys.
func (d *driver) run(ticks, reads int, shares map[string]float64) {
	hot := slices.Sorted(maps.Keys(shares)) // sorted: deterministic
	for range ticks {
		for range reads {
			key := d.keys[d.rnd()%uint64(len(d.keys))]
			u := float64(d.rnd()>>11) * 0x1p-53
			for _, k := range hot {
				if u -= shares[k]; u < 0 {
					key = k
					break
				}
			}
			d.a.Record(key, d.h(key))
		}
		d.tick()
	}
}

func (d *driver) tick() Changes {
	d.k++
	d.now = d.now.Add(100 * time.Millisecond)
	ch := d.a.Tick(d.now)
	for _, h := range ch.Hot {
		d.hot[h.Key] = true
		d.log = append(d.log, fmt.Sprintf("+%s@%d", h.Key, d.k))
	}
	for _, h := range ch.Cooled {
		delete(d.hot, h.Key)
		d.log = append(d.log, fmt.Sprintf("-%s@%d", h.Key, d.k))
	}
	return ch
}

func (d *driver) hotKeys() []string {
	var ks []string
	for _, h := range d.a.Hot() {
		ks = append(ks, h.Key)
	}
	return ks
}

func TestNew_validates(t *testing.T) {
	for _, cfg := range []Config{
		{Tick: -1}, {Share: 2}, {MinRate: -1}, {MaxHot: -1}, {Depth: 5}, {Hysteresis: 1.5},
		{Saturation: 0.5}, {Width: -4}, {Candidates: -1}, {Share: 0.1, MinSamples: -1},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) accepted an invalid config", cfg)
		}
	}
	if _, err := New(Config{}); err != nil {
		t.Fatalf("New(Config{}) = %v", err)
	}
}

// At 100k reads/s the threshold is 500/s (0.5%): a key at 2% turns hot, one
// at 0.2% never does, and the hot key cools once its reads stop.
func TestAnalyzer_hotThenCool(t *testing.T) {
	d := newDriver(t, Config{MinHot: -1})
	d.run(20, 10_000, map[string]float64{"k1": 0.02, "k2": 0.002})
	if got := d.hotKeys(); !slices.Equal(got, []string{"k1"}) {
		t.Fatalf("hot = %v, want [k1]", got)
	}
	if h := d.a.Hot()[0]; h.Rate < 1600 || h.Rate > 2400 {
		t.Errorf("k1 rate %.0f/s, want about 2000", h.Rate)
	}
	if st := d.a.Stats(); st.Threshold < 450 || st.Threshold > 550 || st.SampleEvery != 8 {
		t.Errorf("stats %+v: want threshold about 500/s sampled 1 in 8", st)
	}
	d.run(10, 10_000, nil)
	if got := d.hotKeys(); len(got) != 0 {
		t.Fatalf("hot after 1 s without reads = %v", got)
	}
	if len(d.log) != 2 || d.log[0][:3] != "+k1" || d.log[1][:3] != "-k1" {
		t.Fatalf("transitions %v, want one rise and one cool of k1", d.log)
	}
}

// A key that stops being read stays hot for MinHot.
func TestAnalyzer_minHot(t *testing.T) {
	d := newDriver(t, Config{MinHot: 3 * time.Second})
	d.run(5, 10_000, map[string]float64{"k1": 0.05})
	d.run(25, 10_000, nil)
	if !d.hot["k1"] {
		t.Fatalf("k1 cooled %v before MinHot", d.log)
	}
	d.run(10, 10_000, nil)
	if d.hot["k1"] {
		t.Fatalf("k1 still hot after MinHot: %v", d.log)
	}
}

// With more keys over the threshold than MaxHot, the hottest win.
func TestAnalyzer_maxHot(t *testing.T) {
	d := newDriver(t, Config{MaxHot: 3})
	d.run(20, 20_000, map[string]float64{"k1": 0.02, "k2": 0.04, "k3": 0.06, "k4": 0.08, "k5": 0.10})
	if got := d.hotKeys(); !slices.Equal(got, []string{"k5", "k4", "k3"}) {
		t.Fatalf("hot = %v, want [k5 k4 k3]", got)
	}
}

// A key written more than MaxWriteRatio of its reads is not hot.
func TestAnalyzer_writeGate(t *testing.T) {
	for _, tc := range []struct {
		writes float64 // per read of k1
		hot    bool
	}{{0, true}, {0.05, true}, {0.2, false}} {
		d := newDriver(t, Config{})
		for range 20 {
			d.run(1, 10_000, map[string]float64{"k1": 0.05})
			for range int(tc.writes * 500) {
				d.a.RecordWrite("k1", d.h("k1"))
			}
		}
		if d.hot["k1"] != tc.hot {
			t.Errorf("writes/reads %.2f: hot = %v, want %v", tc.writes, d.hot["k1"], tc.hot)
		}
	}
}

// Below MinRate nothing is hot, whatever its share.
func TestAnalyzer_absoluteFloor(t *testing.T) {
	d := newDriver(t, Config{MinRate: 1000})
	d.run(20, 1000, map[string]float64{"k1": 0.5}) // 5000 reads/s in all, k1 at 5000*0.5 = 2500/s
	if !d.hot["k1"] {
		t.Fatal("k1 at 2500/s is not hot with MinRate 1000")
	}
	d = newDriver(t, Config{MinRate: 1000})
	d.run(20, 100, map[string]float64{"k1": 0.5}) // k1 at 500/s
	if len(d.hot) != 0 {
		t.Fatalf("hot %v under MinRate", d.hot)
	}
}

// A Tick that does not move time forward changes nothing.
func TestTick_sameTime(t *testing.T) {
	d := newDriver(t, Config{})
	d.run(10, 10_000, map[string]float64{"k1": 0.05})
	before := d.a.Stats()
	if ch := d.a.Tick(d.now); len(ch.Hot)+len(ch.Cooled) != 0 || d.a.Stats() != before {
		t.Fatalf("Tick(same time) changed state: %+v", ch)
	}
}

func TestRecord_noAllocs(t *testing.T) {
	for _, unsampled := range []bool{false, true} {
		d := newDriver(t, Config{Unsampled: unsampled})
		d.run(20, 10_000, map[string]float64{"k1": 0.05})
		h1, h2 := d.h("k1"), d.h("k2")
		if n := testing.AllocsPerRun(10_000, func() {
			d.a.Record("k1", h1)
			d.a.Record("k2", h2)
			d.a.RecordWrite("k1", h1)
			d.a.Report("k1", h1, 3)
		}); n != 0 {
			t.Errorf("unsampled=%v: %v allocs per Record", unsampled, n)
		}
	}
}

// TestRecord_concurrent records from several goroutines while the owner
// ticks, reads the hot set and stats; run it with -race.
func TestRecord_concurrent(t *testing.T) {
	a, err := New(Config{MinHot: -1})
	if err != nil {
		t.Fatal(err)
	}
	now := epoch
	for round := range 30 {
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Go(func() {
				for i := range 5000 {
					id := int32(keyHash(int32(i), uint64(g*100+round)) % 5000)
					if i%20 == 0 {
						id = 42
					}
					key := fmt.Sprint(id)
					a.Record(key, keyHash(id, 1))
					if i%1000 == 0 { // 2% of 42's reads are writes, 20 more are edge hits
						a.RecordWrite(key, keyHash(id, 1))
						a.Report(key, keyHash(id, 1), 20)
					}
				}
			})
		}
		now = now.Add(100 * time.Millisecond)
		a.Tick(now) // concurrently with the recorders
		a.Hot()
		a.Stats()
		wg.Wait()
	}
	a.Tick(now.Add(100 * time.Millisecond))
	if hot := a.Hot(); len(hot) != 1 || hot[0].Key != "42" {
		t.Fatalf("hot = %+v, want key 42 (5%% of reads) alone", hot)
	}
}
