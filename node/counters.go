package node

import "sync/atomic"

// counters are the command counters memcached reports in stats.
type counters struct {
	cmdGet, cmdSet, cmdFlush, cmdTouch                    atomic.Uint64
	getHits, getMisses, getExpired, getFlushed            atomic.Uint64
	deleteHits, deleteMisses                              atomic.Uint64
	incrHits, incrMisses, decrHits, decrMisses            atomic.Uint64
	casHits, casMisses, casBadval, touchHits, touchMisses atomic.Uint64
	storeTooLarge, storeNoMemory                          atomic.Uint64
}

// reset zeroes every counter, for "stats reset".
func (c *counters) reset() {
	for _, p := range []*atomic.Uint64{
		&c.cmdGet, &c.cmdSet, &c.cmdFlush, &c.cmdTouch, &c.getHits, &c.getMisses,
		&c.getExpired, &c.getFlushed, &c.deleteHits, &c.deleteMisses, &c.incrHits,
		&c.incrMisses, &c.decrHits, &c.decrMisses, &c.casHits, &c.casMisses,
		&c.casBadval, &c.touchHits, &c.touchMisses, &c.storeTooLarge, &c.storeNoMemory,
	} {
		p.Store(0)
	}
}
