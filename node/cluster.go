package node

import (
	"context"
	"errors"
	"fmt"
	"math"
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

// pauseQuiet is how long a node stays quiet after it detects a pause (see
// view.quietUntil): long enough for requests that were in flight when it
// stopped to finish.
const pauseQuiet = 2 * time.Second

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
	// readyAt is, per partition, when the round that confirmed its last
	// gain ended: a former owner that still saw itself as the owner before
	// it answered may have renewed edge replicas until then, so writes wait
	// a lease from it too.
	readyAt  []atomic.Int64
	lastTick atomic.Int64 // monotonic nanoseconds since start
	// peak and minority track whether this node was cut off from most of
	// the cluster (see rejoinedFromMinority); ring goroutine only.
	peak     int
	minority bool
	// cutOff mirrors minority for the request path: a node cut off from
	// most of its cluster answers gets as misses and refuses writes, since
	// the majority may own its keys now.
	cutOff atomic.Bool
	start  time.Time

	// The handoff (handoff.go): gains counts gains (bumped after their
	// gainedAt is stored), lastGain is the latest gainedAt, and a partition
	// is confirmed when its gainedAt is at or before confirmedAt. confirmed
	// is closed, and replaced, each time confirmedAt moves.
	gains       atomic.Uint64
	lastGain    atomic.Int64
	confirmedAt atomic.Int64
	confirmed   atomic.Pointer[chan struct{}]

	// After a detected pause the node is quiet until quietUntil: gets miss
	// and writes are refused, as when it is cut off, and when the window
	// ends it fences everything again (refence), since requests that were
	// in flight when it stopped may have been applied after the first fence.
	quietUntil atomic.Int64
	quietFor   atomic.Int64 // the window's length: pauseQuiet; tests change it
	refence    atomic.Bool

	// liveUntil is when the last answers of a majority of the ring (this
	// node included) that still hold this node in their rings grow older
	// than the live window (see Node.renewLiveness). Past it the node is
	// cut off: it may be on the far side of a partition that the others
	// will soon act on, though it has not yet declared them dead itself
	// (an isolated node's own failure detector is slowed down by the
	// failed probes).
	liveUntil atomic.Int64
}

func newView(self string, partitions int) *view {
	v := &view{
		self:     self,
		fenceCas: make([]atomic.Uint64, partitions),
		gainedAt: make([]atomic.Int64, partitions),
		readyAt:  make([]atomic.Int64, partitions),
		start:    time.Now(),
	}
	ch := make(chan struct{})
	v.confirmed.Store(&ch)
	v.quietFor.Store(int64(pauseQuiet))
	v.liveUntil.Store(math.MaxInt64) // alone until the ring says otherwise
	return v
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
	gained := false
	for p := range v.fenceCas {
		if r.PartitionOwner(p).Name != v.self {
			continue
		}
		if old == nil || old.PartitionOwner(p).Name != v.self {
			v.fenceCas[p].Store(casNow)
			v.gainedAt[p].Store(now)
			gained = true
		}
	}
	if gained {
		v.gained(now)
	}
	v.ring.Store(r)
	v.generation.Add(1)
	return true
}

// gained records gains made at now, after their gainedAt was stored.
func (v *view) gained(now int64) {
	for {
		last := v.lastGain.Load()
		if now <= last || v.lastGain.CompareAndSwap(last, now) {
			break
		}
	}
	v.gains.Add(1)
}

// startAlone backdates the gains of the first ring by a lease and confirms
// them: for a node that joins no one, no former owner can exist. Called
// once, before serving.
func (v *view) startAlone(lease time.Duration) {
	at := v.mono() - int64(lease)
	for p := range v.gainedAt {
		v.gainedAt[p].Store(min(v.gainedAt[p].Load(), at))
		v.readyAt[p].Store(min(v.readyAt[p].Load(), at))
	}
	v.confirm(at, at, nil) // a no-op unless the start took over a lease
}

// unconfirmed reports whether a gain waits for the peers' agreement.
func (v *view) unconfirmed() bool { return v.lastGain.Load() > v.confirmedAt.Load() }

// pending returns the partitions this node owns in r whose gain is not
// confirmed.
func (v *view) pending(r *ring.Ring) []int {
	c := v.confirmedAt.Load()
	var ps []int
	for p := range v.gainedAt {
		if v.gainedAt[p].Load() > c && r.PartitionOwner(p).Name == v.self {
			ps = append(ps, p)
		}
	}
	return ps
}

// confirm marks every gain made at or before at as agreed by the peers, the
// partitions in pending as confirmed by a round that ended at end, and
// wakes the writes that wait for it.
func (v *view) confirm(at, end int64, pending []int) {
	for _, p := range pending {
		v.readyAt[p].Store(end)
	}
	for {
		c := v.confirmedAt.Load()
		if at <= c {
			return
		}
		if v.confirmedAt.CompareAndSwap(c, at) {
			break
		}
	}
	ch := make(chan struct{})
	close(*v.confirmed.Swap(&ch))
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
	v.gained(now)
}

// leaseWait returns how long a write to key must wait for the lease of its
// partition's gain (or of the handoff round that confirmed it) to run out,
// and whether the peers have confirmed that gain (see handoff.go). A write may be acknowledged when the wait is not
// positive and the gain is confirmed.
func (v *view) leaseWait(key []byte, lease time.Duration) (time.Duration, bool) {
	return v.partitionWait(v.ring.Load().Partition(key), lease, v.mono())
}

// partitionWait is leaseWait for partition p at now.
func (v *view) partitionWait(p int, lease time.Duration, now int64) (time.Duration, bool) {
	g := v.gainedAt[p].Load()
	from := max(g, v.readyAt[p].Load())
	return time.Duration(from + int64(lease) - now), g <= v.confirmedAt.Load()
}

// writable reports whether a write to key may be acknowledged now.
func (v *view) writable(key []byte, lease time.Duration) bool {
	d, ok := v.leaseWait(key, lease)
	return d <= 0 && ok
}

// errLeaseWait is returned when a write's context ends while it waits out
// a newly gained partition's lease.
var errLeaseWait = errors.New("partition recently gained and not yet handed over; retry")

// awaitLease waits, for at most WriteWait, until a write to key may be
// applied: its partition's lease has passed and the peers have confirmed
// the gain.
func (n *Node) awaitLease(ctx context.Context, key []byte) error {
	d, ok := n.view.leaseWait(key, n.cfg.LeasePeriod)
	if d <= 0 && ok {
		return nil
	}
	if d > n.cfg.WriteWait {
		return errLeaseWait
	}
	give := time.NewTimer(n.cfg.WriteWait)
	defer give.Stop()
	for {
		ch := *n.view.confirmed.Load() // before the check: a confirmation after it closes ch
		if d, ok = n.view.leaseWait(key, n.cfg.LeasePeriod); d <= 0 && ok {
			return nil
		}
		var lease <-chan time.Time
		var t *time.Timer
		if d > 0 {
			t = time.NewTimer(d)
			lease = t.C
		}
		var err error
		select {
		case <-lease:
		case <-ch:
		case <-give.C:
			err = errLeaseWait
		case <-ctx.Done():
			err = errLeaseWait
		}
		if t != nil {
			t.Stop()
		}
		if err != nil {
			return err
		}
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
	// Open the quiet window before claiming the detection: a request that
	// sees the fresh lastTick the claim stores also sees the window.
	n.view.quietUntil.Store(now + n.view.quietFor.Load())
	n.view.refence.Store(true)
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

// quiet reports whether the node is in the quiet window after a pause.
func (v *view) quiet() bool { return v.mono() < v.quietUntil.Load() }

// Writable reports whether the node takes writes to every partition it
// owns now: none waits for a lease or a handoff, and the node is neither
// cut off nor quiet after a pause. A node that is not clustered always
// does. Tests wait for it before they write; an operator sees it as
// write_ready in `stats cluster`.
func (n *Node) Writable() bool {
	r := n.view.ring.Load()
	if r == nil || !n.serving() {
		return false
	}
	if !n.clustered() {
		return true
	}
	now := n.view.mono()
	for p := range r.Partitions() {
		if r.PartitionOwner(p).Name != n.cfg.Name {
			continue
		}
		if d, ok := n.view.partitionWait(p, n.cfg.LeasePeriod, now); d > 0 || !ok {
			return false
		}
	}
	return true
}

// serving reports whether the node serves its own keys: it is neither cut
// off nor quiet after a pause. Replicas are pushed and renewed only then.
func (n *Node) serving() bool { return !n.view.isCutOff() && !n.view.quiet() }

// isCutOff reports whether the node is cut off from most of its cluster:
// by its ring (it lost at least half of the members it knew), or for want
// of recent answers from a majority (liveUntil).
func (v *view) isCutOff() bool { return v.cutOff.Load() || v.mono() > v.liveUntil.Load() }

// liveWindow is how long a node may go without answers from a majority of
// its ring before it cuts itself off: well inside the time the others take
// to declare it dead (a probe plus the suspicion timeout) and then wait out
// a lease before they write its keys, and long enough that a loaded machine
// does not trip it.
func liveWindow(probeInterval, probeTimeout time.Duration, suspicionMult int) time.Duration {
	w := time.Duration(suspicionMult)*probeInterval*3/4 + probeTimeout/2
	return min(max(w, time.Second), 3*time.Second)
}

// endQuiet fences everything once more when the quiet window after a pause
// has passed: a write that was already past its checks when the node
// stopped may have been applied after the first fence. Ring goroutine.
func (n *Node) endQuiet() {
	if !n.view.refence.Load() || n.view.quiet() {
		return
	}
	n.view.refence.Store(false)
	n.view.fenceAll(n.store.casSeq.Load())
	n.cfg.Logger.Info("quiet window after the pause is over; serving again")
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
				n.probes.Forget(m.Addr)
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
			n.endQuiet()
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
	n.liveWindow = liveWindow(mc.ProbeInterval, mc.ProbeTimeout, mc.SuspicionMult)
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
