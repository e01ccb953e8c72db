package node

import "sync/atomic"

// Item states. An item is pending from the moment it is handed to the cache
// until the cache has applied it, live while the cache holds it, and gone
// once it was replaced, deleted, evicted or refused. Moves are made with
// compare-and-swap, so each item is counted in and out of curr_items once.
const (
	statePending uint32 = iota
	stateLive
	stateGone
)

// itemOverhead is what one item costs besides its key and data: the item
// struct (64 B) plus ristretto's per-key bookkeeping (~190 B: store map
// entry, policy entry, expiry bucket). It is charged against -m so that the
// memory limit bounds the real heap; see docs/memory.md for the measurement.
const itemOverhead = 256

// An item is one stored value. Items never change once published: a write
// makes a new item (sharing the immutable buffer where it can), so readers
// need no lock.
type item struct {
	buf   []byte // key, then data, then "\r\n": one allocation
	klen  uint8
	flags uint32
	exp   int64  // absolute unix seconds; 0 = never
	cas   uint64 // unique per item version
	time  int64  // unix seconds of the write, for a delayed flush_all
	state atomic.Uint32
}

func (it *item) key() []byte  { return it.buf[:it.klen:it.klen] }
func (it *item) data() []byte { return it.buf[it.klen : len(it.buf)-2] }
func (it *item) cost() int64  { return int64(len(it.buf)) + itemOverhead }

// expired reports whether the item's exptime has passed at now.
func (it *item) expired(now int64) bool { return it.exp != 0 && it.exp <= now }

// newItem builds an item around block, which holds key, data and "\r\n".
func newItem(block []byte, klen int, flags uint32, exp int64) *item {
	return &item{buf: block, klen: uint8(klen), flags: flags, exp: exp}
}

// withData returns a copy of it holding new data, with its key, flags and
// exptime.
func (it *item) withData(data []byte) *item {
	buf := make([]byte, 0, int(it.klen)+len(data)+2)
	buf = append(buf, it.key()...)
	buf = append(buf, data...)
	buf = append(buf, "\r\n"...)
	return newItem(buf, int(it.klen), it.flags, it.exp)
}

// withExp returns a copy of it that expires at exp, sharing its buffer and
// keeping its cas, as touch does.
func (it *item) withExp(exp int64) *item {
	n := newItem(it.buf, int(it.klen), it.flags, exp)
	n.cas = it.cas
	return n
}
