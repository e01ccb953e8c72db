package node

import (
	"sort"
	"strconv"
	"time"

	"github.com/hotcache/hotcache/hotspot"
	"github.com/hotcache/hotcache/protocol"
)

// The node's hot-key analyzer (hotspot) sees every read and write the node
// serves as a key's owner, through one hotspot.Recorder per connection
// goroutine, plus the reads edges report answering from replicas. The ring
// goroutine ticks it and hands the hot set to the replicator (repl.go),
// which pushes it to the edges. "stats hot", "stats hotkeys" and the admin
// page's /hotkeys show the result.

// hotView is what the ring goroutine, the analyzer's owner, publishes after
// each tick for other goroutines to read: the analyzer's Hot and Stats may
// only be called by its owner.
type hotView struct {
	stats hotspot.Stats
	hot   []hotspot.Hit
}

// tickHot advances the analyzer; it runs on the ring goroutine every
// tickInterval, which is hotspot's default tick.
func (n *Node) tickHot() {
	now := time.Now()
	ch := n.hot.Tick(now)
	hot := n.hot.Hot()
	n.hotView.Store(&hotView{stats: n.hot.Stats(), hot: hot})
	n.repl.tick(hot, n.now())
	// At info, but at most hotLogBurst lines per logInterval (lograte.go):
	// a flapping key or a whole hot set turning at once cannot flood.
	for _, h := range ch.Hot {
		n.logs.hot.log(now, "key turned hot", "key", h.Key, "reads_per_s", int(h.Rate))
	}
	for _, h := range ch.Cooled {
		n.logs.hot.log(now, "key cooled", "key", h.Key)
	}
}

// writeHotStats is "stats hot": the analyzer's threshold and the keys it
// finds hot, hottest first.
func (n *Node) writeHotStats(w *protocol.ResponseWriter) {
	v := n.hotView.Load()
	if v == nil {
		v = &hotView{}
	}
	st, hot := v.stats, v.hot
	w.WriteStatUint("read_rate", uint64(st.Rate))
	w.WriteStatUint("hot_threshold", uint64(st.Threshold))
	w.WriteStatUint("hot_keys", uint64(len(hot)))
	for _, h := range hot {
		w.WriteStat("hot", h.Key+" reads_per_s="+strconv.Itoa(int(h.Rate))+
			" writes_per_s="+strconv.Itoa(int(h.WriteRate))+" since="+strconv.FormatInt(h.Since.Unix(), 10))
	}
}

// HotKey is a key the node finds hot or replicates, and where its reads are
// served.
type HotKey struct {
	Key string `json:"key"`
	// ReadsPerSec counts the reads the node served and those edges
	// reported answering from replicas, over the analyzer's window.
	ReadsPerSec  float64 `json:"reads_per_s"`
	WritesPerSec float64 `json:"writes_per_s"`
	// Served is "edge" when edges hold replicas, "draining" while an
	// invalidation or cool waits for them, and "node" when only the node
	// serves it (e.g. it has no value to push).
	Served string `json:"served"`
	// EdgeHits is how many reads edges reported answering since the key
	// was pushed.
	EdgeHits uint64    `json:"edge_hits"`
	Bytes    int       `json:"bytes"`
	Since    time.Time `json:"since"`
}

// HotKeys is the node's hot-key state, as "stats hotkeys" and the admin
// page's /hotkeys report it.
type HotKeys struct {
	Node string `json:"node"`
	// ReadRate is the node's read rate (edge-reported reads included) and
	// Threshold the rate at which a key turns hot, in reads per second.
	ReadRate  float64 `json:"read_rate"`
	Threshold float64 `json:"hot_threshold"`
	// ReplicaStreams is how many watch streams take replicas.
	ReplicaStreams int `json:"replica_streams"`
	// Promotions, Cools and Invalidations count keys pushed to the edges,
	// cooled, and drained before a write; EdgeHits the reads edges reported.
	Promotions    uint64   `json:"promotions"`
	Cools         uint64   `json:"cools"`
	Invalidations uint64   `json:"invalidations"`
	EdgeHits      uint64   `json:"edge_hits"`
	Keys          []HotKey `json:"keys"`
}

// HotKeys returns the node's hot keys, hottest first, with where each is
// served.
func (n *Node) HotKeys() HotKeys {
	v := n.hotView.Load()
	if v == nil {
		v = &hotView{}
	}
	r := n.repl
	out := HotKeys{Node: n.cfg.Name, ReadRate: v.stats.Rate, Threshold: v.stats.Threshold,
		ReplicaStreams: len(n.watchers.replicaWatchers(n.view.mono())),
		Promotions:     r.promotions.Load(), Cools: r.cools.Load(), Invalidations: r.invalidations.Load(),
		EdgeHits: r.edgeHits.Load(), Keys: []HotKey{}}
	repl := make(map[string]replicaInfo)
	for _, ri := range r.list() {
		repl[ri.Key] = ri
	}
	for _, h := range v.hot {
		hk := HotKey{Key: h.Key, ReadsPerSec: h.Rate, WritesPerSec: h.WriteRate, Served: "node", Since: h.Since}
		if ri, ok := repl[h.Key]; ok {
			hk.Served, hk.EdgeHits, hk.Bytes = served(ri), ri.EdgeHits, ri.Bytes
			delete(repl, h.Key)
		}
		out.Keys = append(out.Keys, hk)
	}
	for _, ri := range repl { // replicated, no longer in the hot set: cooling
		out.Keys = append(out.Keys, HotKey{Key: ri.Key, Served: served(ri), EdgeHits: ri.EdgeHits, Bytes: ri.Bytes,
			Since: time.Unix(ri.Since, 0)})
	}
	sort.SliceStable(out.Keys, func(i, j int) bool { return out.Keys[i].ReadsPerSec > out.Keys[j].ReadsPerSec })
	return out
}

func served(ri replicaInfo) string {
	if ri.Draining {
		return "draining"
	}
	return "edge"
}

// writeHotKeys is "stats hotkeys": the replication counters, then one line
// per hot key with its rate and where it is served.
func (n *Node) writeHotKeys(w *protocol.ResponseWriter) {
	hk := n.HotKeys()
	w.WriteStatUint("read_rate", uint64(hk.ReadRate))
	w.WriteStatUint("hot_threshold", uint64(hk.Threshold))
	w.WriteStatUint("replica_streams", uint64(hk.ReplicaStreams))
	w.WriteStatUint("promotions", hk.Promotions)
	w.WriteStatUint("cools", hk.Cools)
	w.WriteStatUint("invalidations", hk.Invalidations)
	w.WriteStatUint("edge_hits", hk.EdgeHits)
	r := n.repl
	w.WriteStatUint("write_drain_ms_total", uint64(r.drainWait.Load()/int64(time.Millisecond)))
	w.WriteStatUint("write_drain_max_us", uint64(r.drainMax.Load()/int64(time.Microsecond)))
	w.WriteStatUint("drain_lease_timeouts", r.ackTimeouts.Load())
	w.WriteStatUint("write_refused", r.refused.Load())
	for _, k := range hk.Keys {
		w.WriteStat("hotkey", k.Key+" reads_per_s="+strconv.Itoa(int(k.ReadsPerSec))+" served="+k.Served+
			" edge_hits="+strconv.FormatUint(k.EdgeHits, 10))
	}
}
