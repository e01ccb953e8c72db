package node

import (
	"strconv"
	"time"

	"github.com/hotcache/hotcache/hotspot"
	"github.com/hotcache/hotcache/protocol"
)

// The node's hot-key analyzer (hotspot) sees every read and write the node
// serves as a key's owner, through one hotspot.Recorder per connection
// goroutine. The ring goroutine ticks it; "stats hot" shows its hot set.
// Pushing hot keys to the edge (watch stream HOT events) is the next step.

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
	ch := n.hot.Tick(time.Now())
	n.hotView.Store(&hotView{stats: n.hot.Stats(), hot: n.hot.Hot()})
	for _, h := range ch.Hot {
		n.cfg.Logger.Debug("key turned hot", "key", h.Key, "reads_per_s", int(h.Rate))
	}
	for _, h := range ch.Cooled {
		n.cfg.Logger.Debug("key cooled", "key", h.Key)
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
