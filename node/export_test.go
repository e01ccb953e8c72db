package node

import (
	"context"
	"time"

	"github.com/hotcache/hotcache/ring"
)

// SetPeerRingForTest makes the handoff ask f for a peer's ring instead of
// the peer; nil restores the real question.
func (n *Node) SetPeerRingForTest(f func(ctx context.Context, peer ring.Member) (*ring.Ring, uint64, error)) {
	n.handoff.mu.Lock()
	n.handoff.ask = f
	n.handoff.mu.Unlock()
}

// FenceAllForTest treats every partition n owns as newly gained, as a
// detected pause does.
func (n *Node) FenceAllForTest() { n.view.fenceAll(n.store.casSeq.Load()) }

// StallForTest makes n's pause detector see a stall of d, as if the process
// had been stopped that long, and sets the quiet window that follows to
// quiet.
func (n *Node) StallForTest(d, quiet time.Duration) {
	n.view.quietFor.Store(int64(quiet))
	n.view.lastTick.Store(n.view.mono() - int64(d))
}

// EndQuietForTest ends the quiet window after a detected pause now.
func (n *Node) EndQuietForTest() { n.view.quietUntil.Store(n.view.mono()) }

// RefutedForTest makes n believe memberlist just refuted its death.
func (n *Node) RefutedForTest() { n.members.refuted.Store(true) }

// PeerRingForTest is the real question the handoff asks a peer.
func (n *Node) PeerRingForTest(ctx context.Context, peer ring.Member) (*ring.Ring, uint64, error) {
	return n.peerRing(ctx, peer)
}
