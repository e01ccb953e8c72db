package node

import (
	"bufio"
	"context"
	"fmt"
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
// since overwritten. Reads need no wait: fenced items are misses, and every
// newer item was written after the agreement.

const (
	// handoffInterval is how often a node with unconfirmed gains asks its
	// peers again.
	handoffInterval = 50 * time.Millisecond
	// handoffTimeout bounds one round of asking.
	handoffTimeout = time.Second
)

// peerRingFunc returns the ring a peer serves by now.
type peerRingFunc func(ctx context.Context, peer ring.Member) (*ring.Ring, error)

// handoff holds the state of the agreement rounds.
type handoff struct {
	mu     sync.Mutex
	rings  map[string]*ring.Ring // built from peers' member lists, by list
	ask    peerRingFunc          // tests replace it; nil means n.peerRing
	rounds uint64                // rounds run, for stats
	agreed uint64                // rounds that confirmed every pending gain
}

// runHandoff asks the peers to confirm this node's unconfirmed gains until
// stop is closed. Runs on its own goroutine, so a slow peer never delays the
// ring goroutine.
func (n *Node) runHandoff(stop <-chan struct{}) {
	t := time.NewTicker(handoffInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		if !n.view.unconfirmed() {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), handoffTimeout)
		go func() {
			select {
			case <-stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		n.handoffRound(ctx)
		cancel()
	}
}

// handoffRound runs one round: it asks every other member of the current
// ring for its ring and, if all of them give this node every partition it
// gained and has not had confirmed, confirms the gains made before the round
// began.
func (n *Node) handoffRound(ctx context.Context) {
	start := n.view.mono()
	r := n.view.ring.Load()
	pending := n.view.pending(r)
	if len(pending) == 0 {
		n.view.confirm(start)
		return
	}
	ask := n.peerRing
	n.handoff.mu.Lock()
	if n.handoff.ask != nil {
		ask = n.handoff.ask
	}
	n.handoff.rounds++
	n.handoff.mu.Unlock()

	why := agree(ctx, n.cfg.Name, r, pending, ask)
	if why != "" {
		n.cfg.Logger.Debug("handoff: waiting for peers to agree on the partitions this node gained", "pending", len(pending), "why", why)
		return
	}
	if n.view.ring.Load() != r {
		return // the ring changed meanwhile: the next round asks again
	}
	n.handoff.mu.Lock()
	n.handoff.agreed++
	n.handoff.mu.Unlock()
	n.view.confirm(start)
}

// agree asks every member of r but self, in parallel, for its ring, and
// returns "" if each ring it gets gives self every partition in pending,
// else which member disagrees. Members that cannot be asked are skipped.
func agree(ctx context.Context, self string, r *ring.Ring, pending []int, ask peerRingFunc) string {
	var peers []ring.Member
	for _, m := range r.Members() {
		if m.Name != self {
			peers = append(peers, m)
		}
	}
	whys := make([]string, len(peers))
	var wg sync.WaitGroup
	for i, m := range peers {
		wg.Go(func() {
			pr, err := ask(ctx, m)
			if err != nil {
				return // the lease covers it
			}
			for _, p := range pending {
				if o := pr.PartitionOwner(p); o.Name != self {
					whys[i] = fmt.Sprintf("%s gives partition %d to %q", m.Name, p, o.Name)
					return
				}
			}
		})
	}
	wg.Wait()
	for _, w := range whys {
		if w != "" {
			return w
		}
	}
	return ""
}

// peerRing asks peer for `stats cluster` and rebuilds the ring it serves by
// from the member names it lists: placement depends only on the names and
// the ring's Config, which every node of one build shares.
func (n *Node) peerRing(ctx context.Context, peer ring.Member) (*ring.Ring, error) {
	c, err := n.pool.Get(ctx, peer.Addr)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(ctx, handoffTimeout)
	req := &protocol.Request{Cmd: protocol.CmdStats, Args: [][]byte{[]byte("cluster")}}
	names, err := send(c, req, func() ([]string, error) { return readClusterMembers(c.R) })
	n.pool.Put(c, err)
	if err != nil {
		return nil, err
	}
	key := strings.Join(names, " ")
	n.handoff.mu.Lock()
	pr := n.handoff.rings[key]
	n.handoff.mu.Unlock()
	if pr != nil {
		return pr, nil
	}
	ms := make([]ring.Member, len(names))
	for i, name := range names {
		ms[i] = ring.Member{Name: name}
	}
	if pr, err = ring.New(ms, ring.Config{}); err != nil {
		return nil, err
	}
	n.handoff.mu.Lock()
	if n.handoff.rings == nil || len(n.handoff.rings) >= 16 {
		n.handoff.rings = map[string]*ring.Ring{}
	}
	n.handoff.rings[key] = pr
	n.handoff.mu.Unlock()
	return pr, nil
}

// readClusterMembers reads the reply to `stats cluster` and returns the
// names of the members it lists.
func readClusterMembers(r *bufio.Reader) ([]string, error) {
	var names []string
	for {
		l, err := protocol.ReadLine(r)
		if err != nil {
			return nil, err
		}
		if l == "END" {
			break
		}
		f := strings.Fields(l)
		if len(f) >= 3 && f[0] == "STAT" && f[1] == "member" {
			names = append(names, f[2])
		}
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("stats cluster lists no members")
	}
	return names, nil
}
