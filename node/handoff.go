package node

import (
	"bufio"
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hotcache/hotcache/protocol"
	"github.com/hotcache/hotcache/ring"
)

// The handoff. A node that gains a partition (a ring change, or all of its
// partitions after a pause, a refuted death or a return from a minority)
// fences what it held of it and takes no write to it until two things hold:
//
//   - the lease has run out since the gain (view.leaseWait): a former owner
//     that is no longer in the ring (dead, paused, cut off) may still hold
//     edge replicas and requests in flight for that long;
//   - every other member of its ring that answers agrees that it owns the
//     partition (this file): each is asked for its ring, and none may still
//     see itself, or anyone else, as the owner. A member that cannot be
//     asked (down, paused, unreachable, misconfigured) is covered by the
//     lease, as a member that has left the ring is.
//
// The second closes the window in which two live nodes both take writes for
// one partition because they learned of a membership change at different
// times: a node back from a partition or a pause, or one that is slow to
// hear of a join, would otherwise keep serving values the new owner has
// since overwritten. Writes then wait one more lease from the end of the
// round that confirmed the gain (view.readyAt): a former owner may have
// renewed edge replicas until it answered. Reads need no wait: fenced items
// are misses, and every newer item was written after the agreement.

const (
	// handoffInterval is how often a node with unconfirmed gains, a new
	// ring or no recent word from a majority asks its peers again.
	handoffInterval = 50 * time.Millisecond
	// probeInterval is how often it asks them otherwise.
	probeInterval = 500 * time.Millisecond
	// handoffTimeout bounds one round of asking.
	handoffTimeout = time.Second
)

// peerRingFunc returns the ring a peer serves by now, and the peer's ring
// generation (0 if unknown).
type peerRingFunc func(ctx context.Context, peer ring.Member) (*ring.Ring, uint64, error)

// handoff holds the state of the rounds in which a node asks its peers for
// their rings: for the handoff of gained partitions, and for its own
// liveness (a node that has not heard from a majority of its ring, as a
// ring that includes it, is cut off; see view.liveUntil).
type handoff struct {
	mu    sync.Mutex
	rings map[string]*ring.Ring // built from peers' member lists, by list
	ask   peerRingFunc          // tests replace it; nil means n.peerRing
	seen  map[string]int64      // peer name -> mono time of its last answer whose ring holds this node
	gens  map[string]uint64     // peer name -> the ring generation of its last answer
	// cutGens is gens as it was when the node found itself cut off for
	// want of answers (nil while it is not): a peer whose generation has
	// moved since may have dropped this node and taken its partitions.
	cutGens map[string]uint64
	rounds  uint64 // rounds run, for stats
	agreed  uint64 // rounds that confirmed every pending gain
}

// runHandoff runs the rounds until stop is closed: every handoffInterval
// while gains wait for confirmation, the ring has just changed or the node
// is cut off for want of answers, else every probeInterval. Runs on its own
// goroutine, so a slow peer never delays the ring goroutine.
func (n *Node) runHandoff(stop <-chan struct{}) {
	t := time.NewTicker(handoffInterval)
	defer t.Stop()
	base, cancelAll := context.WithCancel(context.Background())
	defer cancelAll()
	go func() {
		select {
		case <-stop:
			cancelAll() // a round in flight ends at once
		case <-base.Done():
		}
	}()
	var last int64
	var gen uint64
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		now, g := n.view.mono(), n.view.generation.Load()
		if !n.view.unconfirmed() && g == gen && now-last < int64(probeInterval) && now <= n.view.liveUntil.Load() {
			continue
		}
		gen, last = g, now
		ctx, cancel := context.WithTimeout(base, handoffTimeout)
		n.handoffRound(ctx)
		cancel()
	}
}

// handoffRound runs one round: it asks every other member of the current
// ring for its ring, renews this node's liveness from the answers, and, if
// every answer gives this node every partition it gained and has not had
// confirmed, confirms the gains made before the round began.
func (n *Node) handoffRound(ctx context.Context) {
	start := n.view.mono()
	gains := n.view.gains.Load()
	r := n.view.ring.Load()
	pending := n.view.pending(r)
	ask := n.peerRing
	n.handoff.mu.Lock()
	if n.handoff.ask != nil {
		ask = n.handoff.ask
	}
	n.handoff.rounds++
	n.handoff.mu.Unlock()

	var peers []ring.Member
	for _, m := range r.Members() {
		if m.Name != n.cfg.Name {
			peers = append(peers, m)
		}
	}
	rings := make([]*ring.Ring, len(peers))
	gens := make([]uint64, len(peers))
	var wg sync.WaitGroup
	for i, m := range peers {
		wg.Go(func() {
			if pr, gen, err := ask(ctx, m); err == nil {
				rings[i], gens[i] = pr, gen
			}
		})
	}
	wg.Wait()
	n.renewLiveness(start, peers, rings, gens)

	why := agree(n.cfg.Name, peers, rings, pending)
	if why != "" {
		n.cfg.Logger.Debug("handoff: waiting for peers to agree on the partitions this node gained", "pending", len(pending), "why", why)
		return
	}
	if n.view.ring.Load() != r || n.view.gains.Load() != gains {
		return // gained more meanwhile: the next round asks again
	}
	if len(pending) > 0 {
		n.handoff.mu.Lock()
		n.handoff.agreed++
		n.handoff.mu.Unlock()
	}
	n.view.confirm(start, n.view.mono(), pending)
}

// probedBy records that peer just asked this node for its ring: peers ask
// only the members of their own rings, so it is as good an answer as one
// to this node's own question. A peer this node cannot ask (a credential
// or TLS setting missing on this side) still keeps it live this way.
func (n *Node) probedBy(peer string) {
	now := n.view.mono()
	n.handoff.mu.Lock()
	if n.handoff.seen == nil {
		n.handoff.seen = map[string]int64{}
	}
	n.handoff.seen[peer] = max(n.handoff.seen[peer], now)
	n.handoff.mu.Unlock()
}

// renewLiveness records which peers answered, at start, with a ring that
// holds this node, and moves view.liveUntil to when the answers of a
// majority of the ring (this node included) will be older than the live
// window. When that ends a spell of being cut off, the node first treats
// every partition as newly gained, unless it is sure nobody took them:
// every peer that answers reports the ring generation it had before the
// spell, and memberlist refuted no death of this node meanwhile. (A peer
// that dropped and re-added it has a new generation. memberlist's refute
// alone is no proof: a push-pull merge turns "dead" into "suspect", and a
// refuted suspicion does not fence.)
func (n *Node) renewLiveness(start int64, peers []ring.Member, rings []*ring.Ring, gens []uint64) {
	n.handoff.mu.Lock()
	defer n.handoff.mu.Unlock()
	h := &n.handoff
	if h.seen == nil {
		h.seen = map[string]int64{}
	}
	if h.gens == nil {
		h.gens = map[string]uint64{}
	}
	now := n.view.mono()
	wasCut := now > n.view.liveUntil.Load()
	if wasCut && h.cutGens == nil {
		h.cutGens = maps.Clone(h.gens)
	}
	var times []int64
	moved, answered := false, 0
	for i, m := range peers {
		if rings[i] != nil && gens[i] != 0 {
			answered++
			if g, ok := h.cutGens[m.Name]; wasCut && (!ok || g != gens[i]) {
				moved = true
			}
			h.gens[m.Name] = gens[i]
		}
		if rings[i] != nil && rings[i].Has(n.cfg.Name) {
			h.seen[m.Name] = max(h.seen[m.Name], start)
		}
		if t, ok := h.seen[m.Name]; ok {
			times = append(times, t)
		}
	}
	until := liveUntil(times, len(peers), n.liveWindow)
	if wasCut && until > now {
		refuted := n.members != nil && n.members.refuted.Swap(false)
		if refuted || moved || answered == 0 {
			n.cfg.Logger.Warn("heard from most of the cluster again after being cut off, and the cluster may have moved this node's partitions meanwhile; treating them as newly gained",
				"refuted", refuted, "peer_ring_changed", moved)
			n.view.fenceAll(n.store.casSeq.Load())
		}
		h.cutGens = nil
	}
	n.view.liveUntil.Store(until)
}

// liveUntil returns when a node whose ring has peers other members, and
// which last heard from some of them at times (mono), stops having heard
// from a strict majority of the ring (itself included) within window: the
// need-th latest time plus window. With no peers it never does; without
// enough times it already has (0).
func liveUntil(times []int64, peers int, window time.Duration) int64 {
	need := (peers + 1) / 2 // peers besides this node for a strict majority
	if need == 0 {
		return math.MaxInt64
	}
	if len(times) < need {
		return 0
	}
	times = slices.Clone(times)
	slices.Sort(times)
	return times[len(times)-need] + int64(window)
}

// agree returns "" if every ring in rings (the answers of peers; nil for
// one that could not be asked, which the lease covers) gives self every
// partition in pending, else which peer disagrees.
func agree(self string, peers []ring.Member, rings []*ring.Ring, pending []int) string {
	for i, pr := range rings {
		if pr == nil {
			continue
		}
		for _, p := range pending {
			if o := pr.PartitionOwner(p); o.Name != self {
				return fmt.Sprintf("%s gives partition %d to %q", peers[i].Name, p, o.Name)
			}
		}
	}
	return ""
}

// peerRing asks peer for `stats cluster` and rebuilds the ring it serves by
// from the member names it lists: placement depends only on the names and
// the ring's Config, which every node of one build shares.
func (n *Node) peerRing(ctx context.Context, peer ring.Member) (*ring.Ring, uint64, error) {
	c, err := n.probes.Get(ctx, peer.Addr)
	if err != nil {
		return nil, 0, err
	}
	c.SetDeadline(ctx, handoffTimeout)
	req := &protocol.Request{Cmd: protocol.CmdStats, Args: [][]byte{[]byte("cluster")}}
	var gen uint64
	names, err := send(c, req, func() ([]string, error) {
		names, g, err := readClusterMembers(c.R)
		gen = g
		return names, err
	})
	n.probes.Put(c, err)
	if err != nil {
		return nil, 0, err
	}
	key := strings.Join(names, " ")
	n.handoff.mu.Lock()
	pr := n.handoff.rings[key]
	n.handoff.mu.Unlock()
	if pr != nil {
		return pr, gen, nil
	}
	ms := make([]ring.Member, len(names))
	for i, name := range names {
		ms[i] = ring.Member{Name: name}
	}
	if pr, err = ring.New(ms, ring.Config{}); err != nil {
		return nil, 0, err
	}
	n.handoff.mu.Lock()
	if n.handoff.rings == nil || len(n.handoff.rings) >= 16 {
		n.handoff.rings = map[string]*ring.Ring{}
	}
	n.handoff.rings[key] = pr
	n.handoff.mu.Unlock()
	return pr, gen, nil
}

// readClusterMembers reads the reply to `stats cluster` and returns the
// names of the members it lists and the ring generation.
func readClusterMembers(r *bufio.Reader) ([]string, uint64, error) {
	var names []string
	var gen uint64
	for {
		l, err := protocol.ReadLine(r)
		if err != nil {
			return nil, 0, err
		}
		if l == "END" {
			break
		}
		f := strings.Fields(l)
		switch {
		case len(f) >= 3 && f[0] == "STAT" && f[1] == "member":
			names = append(names, f[2])
		case len(f) == 3 && f[0] == "STAT" && f[1] == "ring_generation":
			gen, _ = strconv.ParseUint(f[2], 10, 64)
		}
	}
	if len(names) == 0 {
		return nil, 0, fmt.Errorf("stats cluster lists no members")
	}
	return names, gen, nil
}
