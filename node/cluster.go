package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/hotcache/hotcache/ring"
)

// pauseThreshold is how long the node's own ticker may stall before the
// node assumes it was paused (SIGSTOP, a VM freeze) long enough for the
// cluster to have moved its partitions, and fences all of them. memberlist
// needs well over this (a probe plus a suspicion timeout of >= 4 s with the
// default tuning) to declare a node dead.
const pauseThreshold = 2 * time.Second

// tickInterval drives the node's ring goroutine between membership events.
const tickInterval = 100 * time.Millisecond

// view is the node's view of the cluster: the current ring, swapped
// atomically, and a fence per partition. Ownership changes never resurrect
// old values: when the node gains a partition it records the store's cas
// sequence, and items of that partition with a cas at or below it are
// misses; writes to it wait LeasePeriod from the gain.
type view struct {
	self       string
	ring       atomic.Pointer[ring.Ring]
	generation atomic.Uint64
	fenceCas   []atomic.Uint64 // per partition
	gainedAt   []atomic.Int64  // per partition: monotonic nanoseconds since start
	lastTick   atomic.Int64    // monotonic nanoseconds since start
	// peak and minority track whether this node was cut off from most of
	// the cluster (see rejoinedFromMinority); ring goroutine only.
	peak     int
	minority bool
	// cutOff mirrors minority for the request path: a node cut off from
	// most of its cluster answers gets as misses and refuses writes, since
	// the majority may own its keys now.
	cutOff atomic.Bool
	start  time.Time
}

func newView(self string, partitions int) *view {
	return &view{
		self:     self,
		fenceCas: make([]atomic.Uint64, partitions),
		gainedAt: make([]atomic.Int64, partitions),
		start:    time.Now(),
	}
}

// mono is real elapsed time, immune to a test's fake Clock and to wall-clock
// jumps.
func (v *view) mono() int64 { return int64(time.Since(v.start)) }

// owner returns key's owner and whether that is this node.
func (v *view) owner(key []byte) (ring.Member, bool) {
	r := v.ring.Load()
	m, ok := r.Owner(key)
	if !ok {
		return m, true
	}
	return m, m.Name == v.self
}

// fenced reports whether an item of key with this cas predates the node's
// gain of key's partition.
func (v *view) fenced(key []byte, cas uint64) bool {
	p := v.ring.Load().Partition(key)
	return cas <= v.fenceCas[p].Load()
}

// install swaps in r and fences the partitions this node gains by it. It
// reports whether the ring's identity changed.
func (v *view) install(r *ring.Ring, casNow uint64) bool {
	old := v.ring.Load()
	if old != nil && old.Identity() == r.Identity() {
		return false
	}
	now := v.mono()
	for p := range v.fenceCas {
		if r.PartitionOwner(p).Name != v.self {
			continue
		}
		if old == nil || old.PartitionOwner(p).Name != v.self {
			v.fenceCas[p].Store(casNow)
			v.gainedAt[p].Store(now)
		}
	}
	v.ring.Store(r)
	v.generation.Add(1)
	return true
}

// rejoinedFromMinority tracks the ring's size across a change from prev to
// cur members and reports whether members just came back to a node that had
// lost at least half of the cluster it knew: a minority side of a partition.
// The majority side may have taken the minority's partitions and
// acknowledged writes to them meanwhile, so the minority node must treat
// its partitions as newly gained (a refuted death says the same, but only
// if the node hears of it). The majority side needs nothing: it fenced
// what it gained when it gained it. Shrinking while in the majority
// (a crash, a graceful leave) simply becomes the new normal. Called by the
// ring goroutine only.
func (v *view) rejoinedFromMinority(prev, cur int) bool {
	if v.peak == 0 {
		v.peak = prev
	}
	switch {
	case v.minority && cur > prev:
		v.minority, v.peak = false, cur
		v.cutOff.Store(false)
		return true
	case cur*2 <= v.peak:
		v.minority = true
		v.cutOff.Store(true)
	case !v.minority:
		v.peak = cur
	}
	return false
}

// fenceAll treats every partition the node owns as newly gained.
func (v *view) fenceAll(casNow uint64) {
	r, now := v.ring.Load(), v.mono()
	for p := range v.fenceCas {
		if r.PartitionOwner(p).Name == v.self {
			v.fenceCas[p].Store(casNow)
			v.gainedAt[p].Store(now)
		}
	}
}

// leaseWait returns how long a write to key must wait before it may be
// acknowledged.
func (v *view) leaseWait(key []byte, lease time.Duration) time.Duration {
	p := v.ring.Load().Partition(key)
	return time.Duration(v.gainedAt[p].Load() + int64(lease) - v.mono())
}

// errLeaseWait is returned when a write's context ends while it waits out
// a newly gained partition's lease.
var errLeaseWait = errors.New("partition recently gained; retry")

// awaitLease blocks a write to key until its partition's lease has passed.
func (n *Node) awaitLease(ctx context.Context, key []byte) error {
	d := n.view.leaseWait(key, n.cfg.LeasePeriod)
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return errLeaseWait
	}
}

// checkPaused fences everything when the node's ticker has stalled past
// pauseThreshold: the node was likely stopped, and the cluster may have
// written its keys elsewhere meanwhile.
func (n *Node) checkPaused() bool {
	last := n.view.lastTick.Load()
	now := n.view.mono()
	if now-last <= int64(pauseThreshold) {
		return false
	}
	if n.view.lastTick.CompareAndSwap(last, now) {
		n.cfg.Logger.Warn("node was paused; treating all its partitions as newly gained and dropping its client connections",
			"paused", time.Duration(now-last).Round(time.Millisecond))
		n.view.fenceAll(n.store.casSeq.Load())
		// Requests that waited in socket buffers through the pause may be
		// older than their clients' timeouts: a write the client took as
		// failed (and followed with a newer one elsewhere) must not be
		// applied now.
		n.srv.CloseConnections()
	}
	return true
}

// buildRing makes a ring from the live member set, always including this
// node.
func (n *Node) buildRing() (*ring.Ring, error) {
	var members []ring.Member
	if n.members != nil {
		for name, meta := range n.members.snapshot() {
			members = append(members, ring.Member{Name: name, Addr: meta.Addr, Admin: meta.Admin})
		}
	}
	if !slices.ContainsFunc(members, func(m ring.Member) bool { return m.Name == n.cfg.Name }) {
		members = append(members, ring.Member{Name: n.cfg.Name, Addr: n.advertise, Admin: n.adminAdvertise})
	}
	return ring.New(members, ring.Config{})
}

// rebuild installs a ring for the current member set if it changed.
func (n *Node) rebuild() {
	r, err := n.buildRing()
	if err != nil {
		n.cfg.Logger.Error("cannot build ring; keeping the old one", "err", err)
		return
	}
	old := n.view.ring.Load()
	if !n.view.install(r, n.store.casSeq.Load()) {
		return
	}
	n.cfg.Logger.Info("ring changed", "generation", n.view.generation.Load(), "identity", r.Identity(), "members", memberNames(r))
	if old != nil && n.view.rejoinedFromMinority(old.Len(), r.Len()) {
		n.cfg.Logger.Warn("members came back after this node was cut off from most of the cluster; treating its partitions as newly gained",
			"members", r.Len())
		n.view.fenceAll(n.store.casSeq.Load())
	}
	n.watchers.publishRing(r, n.view.generation.Load())
	if old != nil && n.pool != nil {
		for _, m := range old.Members() {
			if !slices.ContainsFunc(r.Members(), func(x ring.Member) bool { return x.Addr == m.Addr }) {
				n.pool.Forget(m.Addr)
			}
		}
	}
}

func memberNames(r *ring.Ring) []string {
	var out []string
	for _, m := range r.Members() {
		out = append(out, m.Name)
	}
	return out
}

// runView is the node's ring goroutine: it rebuilds the ring after
// membership events (a burst coalesces into one rebuild), ticks the pause
// detector, and fences everything when memberlist had to refute a
// suspicion or death of this node: the others may have moved its
// partitions and written them meanwhile (a healed partition).
func (n *Node) runView(stop <-chan struct{}) {
	t := time.NewTicker(tickInterval)
	defer t.Stop()
	var changed <-chan struct{}
	if n.members != nil {
		changed = n.members.changed
	}
	for {
		select {
		case <-stop:
			return
		case <-changed:
			n.rebuild()
		case <-t.C:
			n.tickHot()
			n.checkPaused()
			now := time.Now()
			n.logs.flush(now)
			n.logs.rejected.check(n.srv.Stats().RejectedConnections.Load(), n.cfg.MaxConns, now)
			n.view.lastTick.Store(n.view.mono())
			if n.members != nil && n.members.refuted.Swap(false) {
				n.cfg.Logger.Warn("the cluster declared this node suspect or dead; treating its partitions as newly gained")
				n.view.fenceAll(n.store.casSeq.Load())
			}
		}
	}
}

// startGossip creates the memberlist, joins the seeds and fixes the address
// this node advertises.
func (n *Node) startGossip() error {
	m := newMembership(n.cfg.Logger)
	m.setMeta(memberMeta{Addr: n.advertise, Admin: n.adminAdvertise})
	mc, err := gossipConfig(n.cfg, m)
	if err != nil {
		return err
	}
	ml, err := memberlist.Create(mc)
	if err != nil {
		return fmt.Errorf("node: gossip: %w", err)
	}
	m.ml = ml
	n.members = m
	if n.cfg.AdvertiseAddr == "" {
		// Now that memberlist has chosen an address to advertise, use its host
		// for the memcache address too, if ours listens on all interfaces.
		n.advertise = advertiseOn(n.advertise, ml.LocalNode().Addr.String())
		n.adminAdvertise = advertiseOn(n.adminAdvertise, ml.LocalNode().Addr.String())
		m.setMeta(memberMeta{Addr: n.advertise, Admin: n.adminAdvertise})
		if err := ml.UpdateNode(time.Second); err != nil {
			n.cfg.Logger.Warn("could not gossip updated metadata", "err", err)
		}
	}
	m.join(n.cfg.Join)
	return nil
}
