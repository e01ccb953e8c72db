package hotspot

import (
	"hash/maphash"
	"testing"
	"time"

	"github.com/go-kratos/aegis/topk"
)

// The aegis comparator: go-kratos/aegis v0.2.0 topk.HeavyKeeper, the Go
// HeavyKeeper the Go module proxy serves (HOTKEYS.md). It has no time
// decay of its own, only Fading (halve every count), no threshold and no
// hysteresis; we give it the fairest setup we found: 4 x 4096 buckets
// (128 KiB), k = MaxHot, HeavyKeeper decay 0.925, Fading every 7 ticks (a
// half-life of 0.7 s, as our exp(-t/1s) decay has), and hot = a listed key
// whose count is at least Share of its (equally faded) total.
//
// NB: aegis imports github.com/twmb/murmur3, which go.mod/go.sum do not list
// yet (go get github.com/twmb/murmur3@v1.1.6 adds it); until then this file
// must stay behind the eval tag so that plain go test ./... builds.
const (
	aegisWidth     = 4096
	aegisDepth     = 4
	aegisDecay     = 0.925
	aegisFadeTicks = 7
)

func init() {
	newComparator = func(spec *evalSpec, keys keySet) detector {
		cfg := spec.Config.withDefaults()
		return &aegisDet{
			hk:    topk.NewHeavyKeeper(uint32(cfg.MaxHot), aegisWidth, aegisDepth, aegisDecay, 1).(*topk.HeavyKeeper),
			keys:  keys,
			share: cfg.Share,
		}
	}
	staticComparator = func(keys keySet, ids []int32, top int) (map[int32]float64, int) {
		hk := topk.NewHeavyKeeper(uint32(top), aegisWidth, aegisDepth, aegisDecay, 1)
		for _, id := range ids {
			hk.Add(keys.key(id), 1)
		}
		rep := map[int32]float64{}
		for _, it := range hk.List() {
			rep[keyID(it.Key)] = float64(it.Count)
		}
		return rep, aegisWidth * aegisDepth * 8
	}
}

type aegisDet struct {
	hk    *topk.HeavyKeeper
	keys  keySet
	share float64
	ticks int
}

func (d *aegisDet) record(id int32) { d.hk.Add(d.keys.key(id), 1) }

func (d *aegisDet) tick(time.Time) map[int32]bool {
	if d.ticks++; d.ticks%aegisFadeTicks == 0 {
		d.hk.Fading()
	}
	set := map[int32]bool{}
	floor := d.share * float64(d.hk.Total())
	for _, it := range d.hk.List() {
		if float64(it.Count) >= floor {
			set[keyID(it.Key)] = true
		}
	}
	return set
}

// BenchmarkAegis is aegis's Add on the same stream as BenchmarkRecord,
// with the node's hash computed too (aegis hashes the key again itself,
// with murmur3, once per row), fading every 7 ticks.
func BenchmarkAegis(b *testing.B) {
	keys := benchStream()
	hk := topk.NewHeavyKeeper(DefaultMaxHot, aegisWidth, aegisDepth, aegisDecay, 1)
	b.ReportAllocs()
	var sink uint64
	i := 0
	for b.Loop() {
		key := keys[i&(len(keys)-1)]
		sink ^= maphash.String(benchSeed, key)
		hk.Add(key, 1)
		i++
		if i%(benchRate/10*aegisFadeTicks) == 0 {
			hk.Fading()
		}
	}
	benchSink = sink
}
