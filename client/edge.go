package client

import (
	"cmp"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hotcache/hotcache/protocol"
)

// The near cache ("the edge", docs/protocol.md, "The watch stream"): in
// cluster mode the client keeps one replica stream open to every member of
// its ring (edgestream.go), and the members push read replicas of their hot
// keys on it. A replica answers reads of its key while its lease lasts, by
// the client's own clock: the lease runs from a stamp the client sent and the
// node echoed, so it can only end early, never late. A replica dies with its
// lease, its TTL, an INVAL or COOL for its key, a write through this client,
// a ring in which its node no longer owns the key, and the stream it came on.
//
// Locking: one RWMutex guards the map of replicas, every session's set of
// held replicas and pending hits, the byte count and each replica's lease
// end. Reads take it shared; pushes, renewals, invalidations and drops take
// it exclusively. A replica's hit counters and its refresh flag are atomics,
// changed by reads under the shared lock. An atomic count of the replicas
// held lets every read skip the lock and the map while nothing is
// replicated.

// replicaOverhead is what a replica is accounted for beyond its key and value.
const replicaOverhead = 64

// A replica is one hot item pushed by a node. Every field but the atomics is
// fixed when it is stored, except leaseEnd, which RENEW moves (under edge.mu).
type replica struct {
	key   string
	value []byte // never handed out: reads copy it
	flags uint32
	cas   uint64
	node  string   // the member that pushed it
	addr  string   // that member's address
	src   *session // the stream it came on
	size  int64    // accounted bytes

	// leaseEnd and ttlEnd are instants of the client's monotonic clock, as
	// offsets from Client.start (see Client.clock); ttlEnd 0 means no TTL.
	leaseEnd, ttlEnd time.Duration

	hits     atomic.Uint64 // reads answered from it
	reported atomic.Uint64 // of hits, how many went out in HITS reports
	// refreshAt is when a REFRESH for the key was queued (Client.clock()+1),
	// 0 for none: at most one is in flight per key.
	refreshAt atomic.Int64
}

// edge is a client's near cache.
type edge struct {
	c     *Client
	limit int64 // Config.NearCacheBytes

	// count is the number of replicas held, written under mu and read
	// without it: zero lets reads skip the map.
	count atomic.Int64

	mu    sync.RWMutex
	m     map[string]*replica // by key
	bytes int64               // accounted size of m

	smu     sync.Mutex             // guards streams
	streams map[string]*edgeStream // by member name
	dialSem chan struct{}          // bounds concurrent stream dials (DialBatch)
	open    atomic.Int64           // sessions open now

	hits, pushes, renewals, invals, cools, refreshes, expired, dropped, refused atomic.Uint64
}

func newEdge(c *Client) *edge {
	return &edge{
		c:       c,
		limit:   c.cfg.NearCacheBytes,
		m:       make(map[string]*replica),
		streams: make(map[string]*edgeStream),
		dialSem: make(chan struct{}, c.cfg.DialBatch),
	}
}

// clock is the client's monotonic clock as an offset from c.start: the
// timeline of stamps and leases.
func (c *Client) clock() time.Duration { return c.cfg.Now().Sub(c.start) }

// maxStampMS bounds the stamps and lease lengths taken from the wire (about
// 35 years), which keeps the arithmetic below far from overflow.
const maxStampMS = 1 << 40

// leaseEnd is the end of a lease of leaseMS granted at stamp: 1% short of
// its length, for the difference between the two clocks' rates.
func leaseEnd(stamp, leaseMS uint64) time.Duration {
	stamp, leaseMS = min(stamp, maxStampMS), min(leaseMS, maxStampMS)
	return time.Duration(stamp)*time.Millisecond + time.Duration(leaseMS)*990*time.Microsecond
}

// ttlEnd is when an item with exptime seconds left at stamp expires, 0 for
// none.
func ttlEnd(stamp uint64, exptime int64) time.Duration {
	if exptime <= 0 {
		return 0
	}
	return time.Duration(min(stamp, maxStampMS))*time.Millisecond + time.Duration(min(exptime, 1<<32))*time.Second
}

// lookup answers a read of key from a live replica whose node is owner, the
// key's owner in the caller's view, or returns nil. A replica past its
// lease (but not its TTL) asks its node for a refresh.
func (e *edge) lookup(key string, owner *server) *Item {
	if e.count.Load() == 0 {
		return nil
	}
	e.mu.RLock()
	r := e.m[key]
	if r == nil || r.node != owner.name || r.addr != owner.addr {
		e.mu.RUnlock()
		return nil
	}
	now := e.c.clock()
	if now >= r.leaseEnd || r.ttlEnd != 0 && now >= r.ttlEnd {
		e.expired.Add(1)
		if r.ttlEnd == 0 || now < r.ttlEnd {
			e.refresh(r, now)
		}
		e.mu.RUnlock()
		return nil
	}
	r.hits.Add(1)
	it := &Item{Key: key, Value: make([]byte, len(r.value)), Flags: r.flags, CasID: r.cas}
	copy(it.Value, r.value)
	e.mu.RUnlock()
	e.hits.Add(1)
	return it
}

// refresh queues "REFRESH key" on r's stream unless one is in flight (queued
// less than Timeout ago and not answered by a HOT or RENEW yet).
func (e *edge) refresh(r *replica, now time.Duration) {
	at := r.refreshAt.Load()
	if at != 0 && now-time.Duration(at-1) < e.c.cfg.Timeout {
		return
	}
	mine := int64(now) + 1
	if !r.refreshAt.CompareAndSwap(at, mine) {
		return // another read got there first
	}
	select {
	case r.src.refresh <- r.key:
	default: // the stream is backed up: let a later read try again
		r.refreshAt.CompareAndSwap(mine, 0)
	}
}

// hot stores the replica that a HOT event on s carries, in place of any
// replica of its key, unless it does not fit in NearCacheBytes.
func (e *edge) hot(s *session, ev *protocol.WatchEvent) {
	e.pushes.Add(1)
	stamp := min(ev.Stamp, s.stamped.Load()) // never trust a stamp later than any sent
	r := &replica{
		key: ev.Key, value: ev.Data, flags: ev.Flags, cas: ev.Cas,
		node: s.st.name, addr: s.st.addr, src: s,
		size:     int64(len(ev.Key) + len(ev.Data) + replicaOverhead),
		leaseEnd: leaseEnd(stamp, ev.LeaseMS),
		ttlEnd:   ttlEnd(stamp, ev.Exptime),
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if old := e.m[r.key]; old != nil {
		e.removeLocked(old) // its unreported hits stay pending on its session
		if old.src == s {   // the same replica again: keep its total for Replicas
			n := old.hits.Load()
			r.hits.Store(n)
			r.reported.Store(n)
		}
	}
	if e.bytes+r.size > e.limit {
		e.refused.Add(1)
		return
	}
	e.m[r.key] = r
	s.held[r.key] = r
	e.bytes += r.size
	e.count.Add(1)
}

// renew applies a RENEW event on s: the lease of the replica of its key
// that came on s with its cas is extended; any other RENEW is ignored.
func (e *edge) renew(s *session, ev *protocol.WatchEvent) {
	end := leaseEnd(min(ev.Stamp, s.stamped.Load()), ev.LeaseMS)
	e.mu.Lock()
	if r := e.m[ev.Key]; r != nil && r.src == s && r.cas == ev.Cas {
		r.leaseEnd = max(r.leaseEnd, end)
		r.refreshAt.Store(0)
		e.renewals.Add(1)
	}
	e.mu.Unlock()
}

// forget drops the replica of key, whichever node it came from.
func (e *edge) forget(key string) {
	if e.count.Load() == 0 {
		return
	}
	e.mu.Lock()
	if r := e.m[key]; r != nil {
		e.removeLocked(r)
	}
	e.mu.Unlock()
}

// removeLocked drops r; the hits it answered since the last report stay
// pending on its session, for the next report. e.mu must be held
// exclusively.
func (e *edge) removeLocked(r *replica) {
	if n := r.hits.Load() - r.reported.Load(); n > 0 {
		r.src.pending[r.key] += n
	}
	delete(e.m, r.key)
	delete(r.src.held, r.key)
	e.bytes -= r.size
	e.count.Add(-1)
}

// dropSession drops every replica that came on s: its stream has ended.
func (e *edge) dropSession(s *session) {
	e.mu.Lock()
	n := len(s.held)
	for _, r := range s.held {
		e.removeLocked(r)
	}
	e.mu.Unlock()
	e.dropped.Add(uint64(n))
}

// dropAll drops every replica (FlushAll).
func (e *edge) dropAll() {
	if e.count.Load() == 0 {
		return
	}
	e.mu.Lock()
	for _, r := range e.m {
		e.removeLocked(r)
	}
	e.mu.Unlock()
}

// sweep drops the replicas whose node does not own their key in v, which
// has just been installed. Reads check the owner anyway; this returns the
// memory.
func (e *edge) sweep(v *view) {
	if e.count.Load() == 0 {
		return
	}
	e.mu.Lock()
	n := 0
	for _, r := range e.m {
		if s := v.owner(r.key); s == nil || s.name != r.node || s.addr != r.addr {
			e.removeLocked(r)
			n++
		}
	}
	e.mu.Unlock()
	e.dropped.Add(uint64(n))
}

// dropExpired drops the replicas that came on s and whose TTL has passed:
// their items are gone at the node too. A replica past its lease only is
// kept, so that the next read of its key asks for a refresh.
func (e *edge) dropExpired(s *session) {
	now := e.c.clock()
	var dead []*replica
	e.mu.RLock()
	for _, r := range s.held {
		if r.ttlEnd != 0 && now >= r.ttlEnd {
			dead = append(dead, r)
		}
	}
	e.mu.RUnlock()
	if len(dead) == 0 {
		return
	}
	e.mu.Lock()
	for _, r := range dead {
		if e.m[r.key] == r {
			e.removeLocked(r)
		}
	}
	e.mu.Unlock()
}

// EdgeStats are counters of the client's near cache: the read replicas of
// hot keys that the cluster's nodes push to it. All are zero in static mode
// and when Config.NearCacheBytes is negative.
type EdgeStats struct {
	Replicas      int    // replicas held now
	Bytes         int64  // their accounted size (key, value and 64 bytes each)
	Hits          uint64 // reads answered from a replica
	Pushes        uint64 // HOT events received
	Renewals      uint64 // RENEW events applied
	Invalidations uint64 // INVAL events received
	Cools         uint64 // COOL events received
	Refreshes     uint64 // REFRESH messages sent
	Expired       uint64 // reads that found a replica past its lease or TTL
	Dropped       uint64 // replicas dropped because their stream broke or their node left
	Refused       uint64 // HOT events not stored for lack of room
	Streams       int    // replica streams open now
}

// EdgeStats returns the counters of the client's near cache.
func (c *Client) EdgeStats() EdgeStats {
	e := c.edge
	if e == nil {
		return EdgeStats{}
	}
	e.mu.RLock()
	n, b := len(e.m), e.bytes
	e.mu.RUnlock()
	return EdgeStats{
		Replicas:      n,
		Bytes:         b,
		Hits:          e.hits.Load(),
		Pushes:        e.pushes.Load(),
		Renewals:      e.renewals.Load(),
		Invalidations: e.invals.Load(),
		Cools:         e.cools.Load(),
		Refreshes:     e.refreshes.Load(),
		Expired:       e.expired.Load(),
		Dropped:       e.dropped.Load(),
		Refused:       e.refused.Load(),
		Streams:       int(e.open.Load()),
	}
}

// Replica describes one replica held in the client's near cache.
type Replica struct {
	Key  string // the item's key
	Node string // the member that pushed it
	// Bytes is its accounted size: key, value and 64 bytes of overhead.
	Bytes int
	// Hits counts the reads it answered.
	Hits uint64
	// LeaseLeft is how long it may still answer reads, 0 once its lease
	// has passed (a read then asks the node for a refresh).
	LeaseLeft time.Duration
}

// Replicas lists the replicas the client holds, most hits first (then by
// key).
func (c *Client) Replicas() []Replica {
	e := c.edge
	if e == nil || e.count.Load() == 0 {
		return nil
	}
	now := c.clock()
	e.mu.RLock()
	out := make([]Replica, 0, len(e.m))
	for _, r := range e.m {
		out = append(out, Replica{Key: r.key, Node: r.node, Bytes: int(r.size), Hits: r.hits.Load(), LeaseLeft: max(r.leaseEnd-now, 0)})
	}
	e.mu.RUnlock()
	slices.SortFunc(out, func(a, b Replica) int {
		if c := cmp.Compare(b.Hits, a.Hits); c != 0 {
			return c
		}
		return cmp.Compare(a.Key, b.Key)
	})
	return out
}
