package node

import (
	"sort"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/cespare/xxhash/v2"
	"github.com/hotcache/hotcache/hotspot"
	"github.com/hotcache/hotcache/protocol"
	"github.com/prometheus/client_golang/prometheus"
)

// The replicator pushes this node's hot keys to the edges as leased read
// replicas and keeps them coherent (DESIGN.md, data paths 4 and 5).
//
// Its table holds one entry per key that edges may hold: live (pushed,
// renewed on every PING) or draining (an INVAL or COOL was sent and the
// edges have not all acknowledged it, nor have their leases certainly run
// out). A write to a key proceeds only when the key has no entry: it turns a
// live entry into a draining one, waits for every edge, removes the entry and
// only then applies the write, so no edge can serve the old value once the
// write is visible anywhere. A draining entry is never pushed or renewed.
//
// A push and a write of the same key are kept apart without a lock on the
// write path for keys that are not replicated: a write first raises the
// counter of its key's stripe (writing), then looks at the table; a push
// first registers its entry, then looks at the stripe's counter and backs off
// if a write is in progress. Whichever comes second sees the other (the
// atomics are sequentially consistent), and the shard lock orders the rest.
// A write to a stripe holds back pushes of that stripe's keys (1/1024) until
// the next tick: a missed push, never a wrong value.

const (
	replStripes = 1024
	replShards  = 64
)

// A replEntry is one replicated key.
type replEntry struct {
	key      string
	hash     uint64
	it       *item // the value pushed; immutable
	ttl      int64 // remaining seconds pushed with it, 0 for none
	draining bool
	targets  []drainTarget // draining: what each edge must do
	since    time.Time
	edgeHits atomic.Uint64
}

// A drainTarget is one edge's part of draining a key: acknowledge event seq,
// or let the lease it holds run out at leaseEnd.
type drainTarget struct {
	w        *watcher
	seq      uint64
	leaseEnd int64 // node monotonic nanoseconds
}

type replShard struct {
	mu   sync.Mutex
	keys map[string]*replEntry
}

// replicator is the node's table of replicated keys. Its zero value is not
// ready: see newReplicator.
type replicator struct {
	n       *Node
	lease   time.Duration
	margin  time.Duration // allowance for clock rates, added to every lease the node waits out
	writing [replStripes]atomic.Int32
	count   atomic.Int64 // entries in the table
	shards  [replShards]replShard

	promotions    atomic.Uint64 // keys pushed (HOT to every edge)
	cools         atomic.Uint64 // keys cooled (COOL sent)
	invalidations atomic.Uint64 // writes that drained a replicated key
	edgeHits      atomic.Uint64 // reads edges reported answering from replicas
	drainWait     atomic.Int64  // nanoseconds writes spent draining, in total
	drainMax      atomic.Int64  // the longest drain, nanoseconds
	ackTimeouts   atomic.Uint64 // drains that ended by lease expiry rather than ACK
	refused       atomic.Uint64 // writes refused because their drain took over WriteWait
	writeWait     waitHistogram
}

func newReplicator(n *Node, lease time.Duration) *replicator {
	r := &replicator{n: n, lease: lease, margin: 5*time.Millisecond + lease/100}
	for i := range r.shards {
		r.shards[i].keys = make(map[string]*replEntry)
	}
	return r
}

func (r *replicator) shard(h uint64) *replShard { return &r.shards[(h>>32)%replShards] }

// beforeWrite is called before a write to key is applied. It returns once
// no edge can serve a replica of key, and holds back pushes of key until
// the caller calls done (after the write is applied). If the edges are not
// done within Config.WriteWait (one did not acknowledge, and its lease has
// not run out), it returns ok false and the write must be refused: held longer,
// it could outlive its sender's timeout and then be applied after the
// sender's retry. The invalidation goes on; a later write finds it done.
func (r *replicator) beforeWrite(key []byte) (done *atomic.Int32, ok bool) {
	h := xxhash.Sum64(key)
	st := &r.writing[h%replStripes]
	st.Add(1)
	if r.count.Load() == 0 {
		return st, true
	}
	sh := r.shard(h)
	var start time.Time
	for {
		sh.mu.Lock()
		e := sh.keys[string(key)]
		if e == nil {
			sh.mu.Unlock()
			break
		}
		if start.IsZero() {
			start = time.Now()
		}
		if !e.draining {
			r.drain(e, protocol.WatchInval)
			r.invalidations.Add(1)
			r.n.cfg.Logger.Debug("invalidating replicas before a write", "key", e.key, "edges", len(e.targets))
		}
		targets := e.targets
		sh.mu.Unlock()
		finished, acked := r.wait(targets, start.Add(r.n.cfg.WriteWait))
		if !finished {
			st.Add(-1)
			r.refused.Add(1)
			return nil, false
		}
		if !acked {
			r.ackTimeouts.Add(1)
		}
		sh.mu.Lock()
		if sh.keys[e.key] == e {
			delete(sh.keys, e.key)
			r.count.Add(-1)
		}
		sh.mu.Unlock()
	}
	if !start.IsZero() {
		d := time.Since(start)
		r.drainWait.Add(int64(d))
		if int64(d) > r.drainMax.Load() {
			r.drainMax.Store(int64(d)) // a racy max: good enough for a statistic
		}
		r.writeWait.observe(d)
	}
	return st, true
}

// drain sends kind (INVAL or COOL) for e to every replica stream and makes e
// draining. The caller holds e's shard lock.
func (r *replicator) drain(e *replEntry, kind protocol.WatchEventKind) {
	e.draining = true
	e.targets = e.targets[:0]
	for _, w := range r.n.watchers.replicaWatchers(r.n.view.mono()) {
		seq := w.enqueue(watchEvent{kind: kind, key: e.key}, 0)
		if end := w.leaseEnd.Load(); seq != 0 || end > r.n.view.mono() {
			e.targets = append(e.targets, drainTarget{w: w, seq: seq, leaseEnd: end})
		}
	}
}

// done reports whether t needs no more waiting.
func (t *drainTarget) done(now int64) bool {
	return t.seq != 0 && t.w.acked.Load() >= t.seq || now >= t.leaseEnd
}

// wait blocks until every target is done or the deadline (the zero Time:
// none) passes. It reports whether every target is done, and whether all
// of them acknowledged (rather than having to wait out a lease).
func (r *replicator) wait(targets []drainTarget, deadline time.Time) (finished, acked bool) {
	acked = true
	for i := range targets {
		t := &targets[i]
		for {
			if t.seq != 0 && t.w.acked.Load() >= t.seq {
				break
			}
			left := time.Duration(t.leaseEnd - r.n.view.mono())
			if left <= 0 {
				acked = false
				break
			}
			if !deadline.IsZero() {
				until := time.Until(deadline)
				if until <= 0 {
					return false, false
				}
				left = min(left, until)
			}
			ch := t.w.ackSignal()
			if t.seq != 0 && t.w.acked.Load() >= t.seq {
				break
			}
			tm := time.NewTimer(left)
			select {
			case <-ch:
			case <-tm.C:
			}
			tm.Stop()
		}
	}
	return true, acked
}

// tick runs on the ring goroutine after the analyzer's tick: it pushes the
// hot keys this node owns that are not replicated yet, cools the replicated
// keys that are no longer hot or no longer owned here, and forgets draining
// entries whose edges are all done.
func (r *replicator) tick(hot []hotspot.Hit, now int64) {
	want := make(map[string]bool, len(hot))
	for _, h := range hot {
		key := unsafe.Slice(unsafe.StringData(h.Key), len(h.Key))
		if _, local := r.n.view.owner(key); !local || !r.n.view.writable(key, r.lease) || !r.n.serving() {
			continue
		}
		want[h.Key] = true
		r.push(h, now)
	}
	mono := r.n.view.mono()
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.Lock()
		for k, e := range sh.keys {
			switch {
			case !e.draining && !want[k]:
				r.drain(e, protocol.WatchCool)
				r.cools.Add(1)
				r.n.cfg.Logger.Debug("replicated key cooled", "key", k)
			case e.draining && drained(e.targets, mono):
				delete(sh.keys, k)
				r.count.Add(-1)
			}
		}
		sh.mu.Unlock()
	}
}

func drained(targets []drainTarget, now int64) bool {
	for i := range targets {
		if !targets[i].done(now) {
			return false
		}
	}
	return true
}

// push replicates h to every replica stream unless it is already in the
// table, a write to its stripe is in progress, or the node holds no live
// value for it.
func (r *replicator) push(h hotspot.Hit, now int64) {
	st := &r.writing[h.Hash%replStripes]
	if st.Load() > 0 {
		return
	}
	sh := r.shard(h.Hash)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.keys[h.Key] != nil {
		return
	}
	if r.n.store.oldestLive.Load() > now {
		return // a delayed flush_all is pending: a replica could outlive it
	}
	e := &replEntry{key: h.Key, hash: h.Hash, since: time.Now()}
	sh.keys[h.Key] = e
	r.count.Add(1)
	key := unsafe.Slice(unsafe.StringData(h.Key), len(h.Key))
	it, res := r.n.store.peek(key, now)
	ttl := int64(0)
	if it != nil && it.exp != 0 {
		ttl = it.exp - now - 1 // a second short: the edge's clock is not the node's second
	}
	if st.Load() > 0 || res != hit || ttl < 0 || it.exp != 0 && ttl == 0 {
		delete(sh.keys, h.Key)
		r.count.Add(-1)
		return
	}
	e.it, e.ttl = it, ttl
	r.promotions.Add(1)
	for _, w := range r.n.watchers.replicaWatchers(r.n.view.mono()) {
		w.enqueue(e.hotEvent(r.lease), r.margin)
	}
	r.n.cfg.Logger.Debug("pushing hot key to the edges", "key", h.Key, "reads_per_s", int(h.Rate))
}

func (e *replEntry) hotEvent(lease time.Duration) watchEvent {
	return watchEvent{kind: protocol.WatchHot, key: e.key, it: e.it, ttl: e.ttl, lease: lease}
}

// snapshot sends every live entry to w, a replica stream that has just
// joined the set of watchers: an entry pushed concurrently reaches w either
// through the push (which saw w in the set) or here (the push registered it
// before this takes its shard lock); at worst twice.
func (r *replicator) snapshot(w *watcher) {
	r.each(func(e *replEntry) { w.enqueue(e.hotEvent(r.lease), r.margin) })
}

// renew extends the lease of every live entry on w from the stamp w has
// just sent.
func (r *replicator) renew(w *watcher) {
	if !r.n.serving() {
		return
	}
	r.each(func(e *replEntry) {
		key := unsafe.Slice(unsafe.StringData(e.key), len(e.key))
		if _, local := r.n.view.owner(key); !local || !r.n.view.writable(key, r.lease) {
			return // tick cools it; meanwhile its lease runs out
		}
		w.enqueue(watchEvent{kind: protocol.WatchRenew, key: e.key, cas: e.it.cas, lease: r.lease}, r.margin)
	})
}

// refresh sends key's replica to w again, if it is live.
func (r *replicator) refresh(w *watcher, key string) {
	k := unsafe.Slice(unsafe.StringData(key), len(key))
	if _, local := r.n.view.owner(k); !local || !r.n.view.writable(k, r.lease) || !r.n.serving() {
		return
	}
	sh := r.shard(xxhash.Sum64String(key))
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if e := sh.keys[key]; e != nil && !e.draining {
		w.enqueue(e.hotEvent(r.lease), r.margin)
	}
}

// each calls f for every live entry, under its shard's lock.
func (r *replicator) each(f func(*replEntry)) {
	if r.count.Load() == 0 {
		return
	}
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.Lock()
		for _, e := range sh.keys {
			if !e.draining {
				f(e)
			}
		}
		sh.mu.Unlock()
	}
}

// hits counts reads edges answered from their replicas as reads of the
// keys, so that replicated keys stay hot.
func (r *replicator) hits(n *Node, hits []protocol.KeyHits) {
	for _, kh := range hits {
		if kh.N == 0 {
			continue
		}
		h := xxhash.Sum64String(kh.Key)
		n.hot.Report(kh.Key, h, int(min(kh.N, 1<<30)))
		r.edgeHits.Add(kh.N)
		sh := r.shard(h)
		sh.mu.Lock()
		if e := sh.keys[kh.Key]; e != nil {
			e.edgeHits.Add(kh.N)
		}
		sh.mu.Unlock()
	}
}

// drainAll drains every live entry (before a flush_all) and waits.
func (r *replicator) drainAll() {
	if r.count.Load() == 0 {
		return
	}
	var all []drainTarget
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.Lock()
		for _, e := range sh.keys {
			if !e.draining {
				r.drain(e, protocol.WatchInval)
				r.invalidations.Add(1)
			}
			all = append(all, e.targets...)
		}
		sh.mu.Unlock()
	}
	r.wait(all, time.Time{})
}

// A replicaInfo describes one replicated key for stats and the admin page.
type replicaInfo struct {
	Key      string  `json:"key"`
	Rate     float64 `json:"reads_per_s"`
	EdgeHits uint64  `json:"edge_hits"`
	Bytes    int     `json:"bytes"`
	Since    int64   `json:"since"`
	Draining bool    `json:"draining"`
}

// list returns the table, most edge hits first.
func (r *replicator) list() []replicaInfo {
	var out []replicaInfo
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.Lock()
		for _, e := range sh.keys {
			ri := replicaInfo{Key: e.key, EdgeHits: e.edgeHits.Load(), Since: e.since.Unix(), Draining: e.draining}
			if e.it != nil {
				ri.Bytes = len(e.it.data())
			}
			out = append(out, ri)
		}
		sh.mu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].EdgeHits > out[j].EdgeHits })
	return out
}

// waitHistogram counts write drain times in exponential buckets from 1ms.
type waitHistogram struct {
	buckets [16]atomic.Uint64 // <=1ms, <=2ms, ... <=16s, more
}

func (h *waitHistogram) observe(d time.Duration) {
	i, lim := 0, time.Millisecond
	for i < len(h.buckets)-1 && d > lim {
		i, lim = i+1, lim*2
	}
	h.buckets[i].Add(1)
}

// metric returns h as a Prometheus histogram.
func (h *waitHistogram) metric(d *prometheus.Desc, sum time.Duration) prometheus.Metric {
	buckets := make(map[float64]uint64, len(h.buckets)-1)
	var count uint64
	lim := time.Millisecond
	for i := range h.buckets {
		count += h.buckets[i].Load()
		if i < len(h.buckets)-1 {
			buckets[lim.Seconds()] = count
			lim *= 2
		}
	}
	return prometheus.MustNewConstHistogram(d, count, sum.Seconds(), buckets)
}
