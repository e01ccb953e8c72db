package node

import (
	"bytes"
	"errors"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/ristretto/v2"
)

// store gives ristretto memcache semantics. It is the only file that imports
// ristretto. What it promises:
//
//   - Read your writes: when a write returns stored, a following get sees the
//     item while the cache has room. ristretto updates an existing key in
//     place, synchronously; a new key goes through its set buffer, so for new
//     keys the write waits (Cache.Wait) until the buffer has been applied. A
//     Set the buffer drops is retried after a Wait, never reported as stored.
//   - When the cache is full, ristretto's admission policy may refuse a new
//     key. memcache allows eviction at any time, so the write is still
//     stored, the item is counted as evicted at once, and a get misses.
//   - Read-modify-write commands (add, replace, append, prepend, cas, incr,
//     decr, touch, delete) are atomic per key: every write to a key holds one
//     of 1024 striped locks. Reads take no lock.
//   - Items carry their own key; a hash collision inside ristretto is caught
//     by comparing keys and answered as a miss.
//   - exptime and flush_all follow memcached: see absTime and flushed.
type store struct {
	c     *ristretto.Cache[[]byte, *item]
	seed  maphash.Seed
	locks [1024]sync.Mutex

	casSeq     atomic.Uint64
	oldestLive atomic.Int64  // flush_all: items written at or before this second are dead once it has come
	oldestCas  atomic.Uint64 // flush_all: items with a smaller cas are dead
	now        func() int64  // unix seconds
	// fenced, when set, reports items that predate this node's gain of their
	// key's partition (see view); they are misses.
	fenced func(key []byte, cas uint64) bool

	items      atomic.Int64
	bytes      atomic.Int64
	totalItems atomic.Uint64 // items created by a write, as memcached counts them
	evictions  atomic.Uint64
	refused    atomic.Uint64 // admission refusals (also counted in evictions)
	reclaimed  atomic.Uint64 // expired items the cache removed
	dropped    atomic.Uint64 // sets the buffer dropped and we retried
}

// errNoRoom means ristretto kept dropping a set; it is answered as
// "SERVER_ERROR out of memory storing object".
var errNoRoom = errors.New("node: cache set buffer full")

func newStore(maxBytes int64, now func() int64) (*store, error) {
	s := &store{seed: maphash.MakeSeed(), now: now}
	c, err := ristretto.NewCache(&ristretto.Config[[]byte, *item]{
		// About 10 counters per item for ~1 KiB items, 3 for ~100 B items;
		// each counter costs ~5 bytes up front.
		NumCounters:        max(maxBytes/100, 10_000),
		MaxCost:            maxBytes,
		BufferItems:        64,
		IgnoreInternalCost: true, // itemOverhead already charges it
		OnEvict:            s.onEvict,
		OnReject:           s.onReject,
		ShouldUpdate:       s.onUpdate,
	})
	if err != nil {
		return nil, err
	}
	s.c = c
	return s, nil
}

func (s *store) close() { s.c.Close() }

func (s *store) lock(key []byte) *sync.Mutex {
	return &s.locks[maphash.Bytes(s.seed, key)%uint64(len(s.locks))]
}

func (s *store) nextCas() uint64 { return s.casSeq.Add(1) }

// admit counts a pending item in once it is live.
func (s *store) admit(it *item) {
	if it.state.CompareAndSwap(statePending, stateLive) {
		s.items.Add(1)
		s.bytes.Add(it.cost())
	}
}

// retire counts an item out; it reports whether the item was live.
func (s *store) retire(it *item) bool {
	if it.state.CompareAndSwap(stateLive, stateGone) {
		s.items.Add(-1)
		s.bytes.Add(-it.cost())
		return true
	}
	it.state.CompareAndSwap(statePending, stateGone)
	return false
}

// onUpdate runs inside ristretto, under its shard lock, when a key that it
// holds is set again: the new item is live from this moment.
func (s *store) onUpdate(cur, prev *item) bool {
	if prev != nil {
		s.retire(prev)
	}
	s.admit(cur)
	return true
}

// onEvict runs on ristretto's goroutine for policy victims and for items its
// TTL sweep removed.
func (s *store) onEvict(i *ristretto.Item[*item]) {
	it := i.Value
	if it == nil {
		return
	}
	s.retire(it)
	if it.expired(s.now()) {
		s.reclaimed.Add(1)
	} else {
		s.evictions.Add(1)
	}
}

// onReject runs on ristretto's goroutine when admission refuses a new key.
func (s *store) onReject(i *ristretto.Item[*item]) {
	if i.Value != nil {
		s.retire(i.Value)
	}
	s.refused.Add(1)
	s.evictions.Add(1)
}

// lookup is the outcome of a get.
type lookup uint8

const (
	hit lookup = iota
	miss
	expired
	flushed
	fenced // written before this node (re)gained the key's partition
)

// peek returns the item the cache holds for key and what it means at now.
// The item is returned even when it is expired or flushed.
func (s *store) peek(key []byte, now int64) (*item, lookup) {
	it, ok := s.c.Get(key)
	if !ok || it == nil || !bytes.Equal(it.key(), key) {
		return nil, miss
	}
	if it.expired(now) {
		return it, expired
	}
	if s.flushed(it, now) {
		return it, flushed
	}
	if s.fenced != nil && s.fenced(key, it.cas) {
		return it, fenced
	}
	return it, hit
}

// get returns the live item for key, taking no lock. An expired or flushed
// item it comes across is unlinked, as memcached does on access.
func (s *store) get(key []byte, now int64) (*item, lookup) {
	it, res := s.peek(key, now)
	if res == hit {
		return it, hit
	}
	if it != nil {
		s.reap(key, it)
	}
	return nil, res
}

// reap unlinks stale if it is still the key's item.
func (s *store) reap(key []byte, stale *item) {
	mu := s.lock(key)
	mu.Lock()
	defer mu.Unlock()
	if cur, ok := s.c.Get(key); ok && cur == stale {
		s.del(stale)
	}
}

// current returns the live item for key; the caller holds the key's lock.
// A stale item is unlinked.
func (s *store) current(key []byte, now int64) *item {
	it, res := s.peek(key, now)
	switch {
	case res == hit:
		return it
	case it != nil:
		s.del(it)
	}
	return nil
}

// flushed reports whether a flush_all has invalidated it at now, as
// memcached's item_is_flushed does.
func (s *store) flushed(it *item, now int64) bool {
	live := s.oldestLive.Load()
	if live == 0 || live > now {
		return false
	}
	if it.time <= live {
		return true
	}
	oc := s.oldestCas.Load()
	return oc != 0 && it.cas < oc
}

// flushAll invalidates every item at deadline (unix seconds; <= now means at
// once), as memcached's flush_all does. A deadline of 0 cancels any pending
// flush (memcached's result for an absolute time before it started).
func (s *store) flushAll(deadline, now int64) {
	if deadline == 0 {
		s.oldestLive.Store(0)
		return
	}
	live := deadline - 1
	if deadline <= now {
		live = now - 1
	}
	if live <= now {
		s.oldestCas.Store(s.nextCas())
	}
	s.oldestLive.Store(live)
}

// put publishes it, replacing old (which may be nil), under the key's lock.
// Callers set it.cas first. An item whose exptime has already passed is not
// kept: the old one is deleted and the write still counts as stored, as in
// memcached.
func (s *store) put(it, old *item, now int64) error {
	it.time = now
	if it.expired(now) {
		if old != nil {
			s.del(old)
		}
		return nil
	}
	var ttl time.Duration
	if it.exp != 0 {
		// ristretto's sweep reclaims memory a second after we stop serving it.
		ttl = time.Duration(it.exp-now+1) * time.Second
	}
	key := it.key()
	for try := 0; ; try++ {
		if s.c.SetWithTTL(key, it, it.cost(), ttl) {
			break
		}
		if try == 3 {
			return errNoRoom
		}
		s.dropped.Add(1)
		s.c.Wait() // the set buffer was full: let it drain
	}
	if it.state.Load() == statePending {
		// A new key: ristretto applies it asynchronously. Wait for it, so a
		// following get sees it. Admission may have refused it meanwhile.
		s.c.Wait()
		s.admit(it)
	}
	return nil
}

// del removes old, the live item for its key, under the key's lock.
func (s *store) del(old *item) {
	s.c.Del(old.key())
	s.retire(old)
}
