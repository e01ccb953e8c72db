package hotspot

import (
	"hash/maphash"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/hotcache/hotcache/internal/workload"
)

// benchRate is the virtual request rate of the benchmarks: a Tick every
// benchRate/10 reads.
const benchRate = 200_000

// benchStream is 1M reads of a Zipf(1.1) stream over 1M keys, the key
// bytes laid out in stream order in one buffer, as request parsing leaves
// them. Scattered key strings would add ~80 ns of cache misses to every
// detector and the null baseline alike (HOTKEYS.md §5.1).
var benchStream = sync.OnceValue(func() []string {
	z := workload.NewZipf(1_000_000, 1.1, 1)
	const n = 1 << 20
	buf, ends := make([]byte, 0, n*21), make([]int, n)
	for i := range n {
		buf = workload.AppendKey(buf, z.Next())
		ends[i] = len(buf)
	}
	keys := make([]string, n)
	start := 0
	for i, e := range ends {
		keys[i] = unsafe.String(&buf[start], e-start)
		start = e
	}
	return keys
})

var (
	benchSeed = maphash.MakeSeed()
	benchSink uint64
)

// BenchmarkNull is the baseline: only the hash the node computes anyway.
func BenchmarkNull(b *testing.B) {
	keys := benchStream()
	b.ReportAllocs()
	var sink uint64
	i := 0
	for b.Loop() {
		sink ^= maphash.String(benchSeed, keys[i&(len(keys)-1)])
		i++
	}
	benchSink = sink
}

// BenchmarkNullParallel is BenchmarkNull on GOMAXPROCS goroutines: the
// baseline of BenchmarkAnalyzerParallel.
func BenchmarkNullParallel(b *testing.B) {
	keys := benchStream()
	var g atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var sink uint64
		i := int(g.Add(1)) * 7919 * 64
		for pb.Next() {
			sink ^= maphash.String(benchSeed, keys[i&(len(keys)-1)])
			i++
		}
		atomic.AddUint64(&benchSink, sink)
	})
}

// recordModes are the two ways to record: Analyzer.Record (shared; the
// runtime's random source decides sampling) and a per-goroutine Recorder.
var recordModes = []struct {
	name string
	cfg  Config
	rec  bool
}{
	{"Record/sampled", Config{}, false},
	{"Record/unsampled", Config{Unsampled: true}, false},
	{"Recorder/sampled", Config{}, true},
	{"Recorder/unsampled", Config{Unsampled: true}, true},
}

// recordFunc returns the recording function of a mode for one goroutine.
func recordFunc(a *Analyzer, rec bool, seed uint64) func(string, uint64) {
	if rec {
		return a.NewRecorder(seed).Record
	}
	return a.Record
}

// BenchmarkAnalyzer is the hash plus a recorded read, ticks included, on
// one goroutine. Marginal cost = this - BenchmarkNull. It also reports the
// mean Tick time and its share of the 100 ms tick interval.
func BenchmarkAnalyzer(b *testing.B) {
	for _, bc := range recordModes {
		b.Run(bc.name, func(b *testing.B) {
			keys := benchStream()
			a, err := New(bc.cfg)
			if err != nil {
				b.Fatal(err)
			}
			record := recordFunc(a, bc.rec, 1)
			var tick ticker
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				key := keys[i&(len(keys)-1)]
				record(key, maphash.String(benchSeed, key))
				i++
				if i%(benchRate/10) == 0 {
					tick.tick(a)
				}
			}
			tick.report(b)
		})
	}
}

// BenchmarkAnalyzerParallel records from GOMAXPROCS goroutines (each with
// its own Recorder in the Recorder modes) into one Analyzer while one of
// them at a time ticks. RunParallel has no b.Loop form, so this one uses
// pb.Next; ns/op is wall time over all goroutines.
func BenchmarkAnalyzerParallel(b *testing.B) {
	for _, bc := range recordModes {
		b.Run(bc.name, func(b *testing.B) {
			keys := benchStream()
			a, err := New(bc.cfg)
			if err != nil {
				b.Fatal(err)
			}
			var (
				n    atomic.Int64
				mu   sync.Mutex // the owner's role: one ticker at a time
				tick ticker
				g    atomic.Int64
			)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				id := g.Add(1)
				record := recordFunc(a, bc.rec, uint64(id))
				i := int(id) * 7919 * 64
				for pb.Next() {
					key := keys[i&(len(keys)-1)]
					record(key, maphash.String(benchSeed, key))
					i++
					if i%1024 == 0 && n.Add(1024)%(benchRate/10) < 1024 && mu.TryLock() {
						tick.tick(a)
						mu.Unlock()
					}
				}
			})
			tick.report(b)
		})
	}
}

// ticker drives an Analyzer's virtual clock and times its Ticks.
type ticker struct {
	now   time.Time
	n     int
	spent time.Duration
}

func (t *ticker) tick(a *Analyzer) {
	if t.now.IsZero() {
		t.now = epoch
	}
	t.now = t.now.Add(100 * time.Millisecond)
	start := time.Now()
	a.Tick(t.now)
	t.spent += time.Since(start)
	t.n++
}

func (t *ticker) report(b *testing.B) {
	if t.n > 0 {
		per := t.spent / time.Duration(t.n)
		b.ReportMetric(float64(per.Nanoseconds()), "ns/tick")
		b.ReportMetric(100*per.Seconds()/0.1, "%tick")
	}
}

// TestMemory checks the Analyzer's footprint, analytic (Stats.SizeBytes)
// and measured (heap growth after GC), against 96 KiB plus the hot set.
func TestMemory(t *testing.T) {
	keys := keyTable(100_000)
	z := workload.NewZipf(100_000, 1.1, 1)
	ids := make([]int32, 2_000_000)
	for i := range ids {
		ids[i] = int32(z.Next())
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	a, err := New(Config{Rand: testRand(1)})
	if err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		a.Record(keys.key(id), keyHash(id, 1))
		if (i+1)%10_000 == 0 {
			a.Tick(epoch.Add(time.Duration(i/10_000+1) * 100 * time.Millisecond))
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	st := a.Stats()
	hot := 0
	for _, h := range a.Hot() {
		hot += len(h.Key) + int(unsafe.Sizeof(h))
	}
	measured := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	runtime.KeepAlive(a)
	runtime.KeepAlive(ids) // the stream is no part of the analyzer's footprint
	runtime.KeepAlive(z)
	runtime.KeepAlive(keys)
	t.Logf("analytic %d B, measured %d B, %d hot keys (%d B as Hits), %d candidates", st.SizeBytes, measured, st.Hot, hot, st.Candidates)
	if limit := 96<<10 + hot; st.SizeBytes > limit || measured > int64(limit) {
		t.Errorf("analytic %d B or measured %d B over 96 KiB + hot set = %d B", st.SizeBytes, measured, limit)
	}
}
