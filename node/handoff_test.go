package node_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hotcache/hotcache/node"
	"github.com/hotcache/hotcache/node/nodetest"
	"github.com/hotcache/hotcache/ring"
)

// TestHandoff_writesWaitForPeersToAgree shows the handoff on a real
// two-node cluster: after n0 treats its partitions as newly gained, writes
// to them are refused while n1 (as n0 is made to hear it) gives some of
// them to another node, and are acknowledged once n1 agrees. A peer that
// cannot be asked does not block: the lease covers it.
func TestHandoff_writesWaitForPeersToAgree(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test")
	}
	c := nodetest.Start(t, 2, func(i int, cfg *node.Config) { cfg.ForwardTimeout = 500 * time.Millisecond })
	n0 := c.Node(0)
	key, w := writtenOnN0(t, c)

	// n1 has heard of a third member that n0 has not: in its ring some of
	// n0's partitions belong to nX. (It still holds n0, so n0 is not cut
	// off.)
	other, err := ring.New([]ring.Member{{Name: "n0"}, {Name: "n1"}, {Name: "nX"}}, ring.Config{})
	if err != nil {
		t.Fatal(err)
	}
	n0.SetPeerRingForTest(func(ctx context.Context, peer ring.Member) (*ring.Ring, uint64, error) { return other, 0, nil })
	n0.FenceAllForTest()
	// Well past the 200 ms lease: only the disagreement holds the write.
	for range 3 {
		if got := w.set(key, "during", 0); !strings.HasPrefix(got, "SERVER_ERROR") || !strings.Contains(got, "handed over") {
			t.Fatalf("write while n1 still claims the partition: %q, want SERVER_ERROR ... not yet handed over", got)
		}
	}
	if v, ok := w.get(key); ok {
		t.Fatalf("get after the fence = %q, want a miss: the value predates the gain", v)
	}
	if st := clusterStats(w); st["cut_off"] != "0" {
		t.Fatalf("n0 is cut off, but n1's ring holds it: %v", st)
	}
	if st := clusterStats(w); st["handoff_pending"] == "0" || st["handoff_pending"] == "" {
		t.Errorf("stats handoff_pending = %q while n1 disagrees", st["handoff_pending"])
	}

	// n1 agrees (its real answer): the write goes through.
	n0.SetPeerRingForTest(nil)
	waitFor(t, 30*time.Second, "the write once n1 agrees", func() bool { return w.set(key, "after", 0) == "STORED" })
	if v, ok := w.get(key); !ok || v != "after" {
		t.Fatalf("get = %q, %v; want after", v, ok)
	}
	if st := clusterStats(w); st["handoff_pending"] != "0" {
		t.Errorf("stats handoff_pending = %q after the agreement, want 0", st["handoff_pending"])
	}

	// A peer that cannot be asked is skipped.
	n0.SetPeerRingForTest(func(ctx context.Context, peer ring.Member) (*ring.Ring, uint64, error) {
		return nil, 0, errors.New("unreachable")
	})
	n0.FenceAllForTest()
	waitFor(t, 30*time.Second, "the write with n1 unreachable", func() bool { return w.set(key, "unasked", 0) == "STORED" })
}

// TestHandoff_agreesAfterJoin checks the real question (`stats cluster`
// from each peer, its ring rebuilt from the names): when a fourth node
// joins, every node's gains are confirmed and the new node takes writes.
func TestHandoff_agreesAfterJoin(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test")
	}
	c := nodetest.Start(t, 3)
	// A fourth node gains partitions from the three; once the ring has
	// settled everywhere, every node has had its gains confirmed.
	i := c.Add()
	c.WaitConverged(4)
	for j := range 4 {
		conn := dial(t, c.Addr(j))
		waitFor(t, 30*time.Second, fmt.Sprintf("n%d's gains confirmed", j), func() bool {
			return clusterStats(conn)["handoff_pending"] == "0"
		})
	}
	st := clusterStats(dial(t, c.Addr(i)))
	if st["handoff_agreed"] == "0" {
		t.Errorf("n%d joined and gained partitions but no handoff round agreed: %v", i, st)
	}
	w := dial(t, c.Addr(i))
	for k := range 200 {
		if got := w.set(clusterKey(k), "v", 0); got != "STORED" {
			t.Fatalf("set %s through the new node: %q", clusterKey(k), got)
		}
	}
}

// tryClusterStats is clusterStats on a connection of its own, or nil if
// the node closed it.
func tryClusterStats(addr string) map[string]string {
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(nc, "stats cluster\r\n")
	m := map[string]string{}
	r := bufio.NewReader(nc)
	for {
		l, err := r.ReadString('\n')
		if err != nil {
			return nil
		}
		f := strings.Fields(l)
		if len(f) == 1 && f[0] == "END" {
			return m
		}
		if len(f) >= 3 {
			m[f[1]] = f[2]
		}
	}
}

// clusterStats returns `stats cluster` as a map (the last of repeated
// names, such as member, wins).
func clusterStats(c *conn) map[string]string { return c.statsOf("cluster") }

// writtenOnN0 returns a key n0 owns, and a connection to n0 through which
// "before" has been written to it.
func writtenOnN0(t *testing.T, c *nodetest.Cluster) (string, *conn) {
	t.Helper()
	key := ownedBy(t, c, 0)
	w := dial(t, c.Addr(0))
	waitFor(t, 30*time.Second, "a first write to n0's key", func() bool { return w.set(key, "before", 0) == "STORED" })
	return key, w
}

// TestPause_quietWindowThenFence shows what a node does when it finds its
// own ticker stalled, as after SIGSTOP: for the quiet window it answers
// gets with misses and refuses writes (requests that were in flight when
// it stopped finish meanwhile), then it fences everything again, so nothing
// written before or during the window is served, and it takes writes once
// the handoff allows.
func TestPause_quietWindowThenFence(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test")
	}
	c := nodetest.Start(t, 2)
	n0 := c.Node(0)
	key, _ := writtenOnN0(t, c) // its connection is dropped with the others at the stall

	n0.StallForTest(5*time.Second, time.Hour)
	// Detecting the stall drops every connection; stats are served in
	// the window.
	waitFor(t, 30*time.Second, "n0 to notice the stall", func() bool { return tryClusterStats(c.Addr(0))["resuming"] == "1" })
	q := dial(t, c.Addr(0))
	if got := q.set(key, "during", 0); got != "SERVER_ERROR resuming after a pause; retry" {
		t.Fatalf("write in the quiet window: %q", got)
	}
	if v, ok := q.get(key); ok {
		t.Fatalf("get in the quiet window = %q, want a miss", v)
	}

	n0.EndQuietForTest()
	waitFor(t, 30*time.Second, "the quiet window to end", func() bool { return clusterStats(q)["resuming"] == "0" })
	if v, ok := q.get(key); ok {
		t.Fatalf("get after the quiet window = %q, want a miss: written before the pause", v)
	}
	waitFor(t, 30*time.Second, "a write after the window", func() bool { return q.set(key, "after", 0) == "STORED" })
	if v, ok := q.get(key); !ok || v != "after" {
		t.Fatalf("get = %q, %v; want after", v, ok)
	}
}

// TestLiveness_cutOffWithoutAMajority shows a node cutting itself off when
// no majority of its ring has answered it, with a ring that holds it, for
// the live window, though memberlist still lists everyone: it is then on
// the far side of a partition the others will act on before its own,
// slowed, failure detector does. When answers come back it serves again,
// and if its death was refuted meanwhile, nothing it held before.
func TestLiveness_cutOffWithoutAMajority(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test")
	}
	c := nodetest.Start(t, 3)
	n0 := c.Node(0)
	key, w := writtenOnN0(t, c)
	// Let n0 ask its peers twice more, so that it knows their rings as
	// they are now: a peer whose ring generation moves while n0 is cut off
	// makes it fence (the last case below).
	rounds, _ := strconv.Atoi(clusterStats(w)["handoff_rounds"])
	waitFor(t, 30*time.Second, "two more rounds of n0's", func() bool {
		r, _ := strconv.Atoi(clusterStats(w)["handoff_rounds"])
		return r >= rounds+2
	})
	// n1 and n2 stop asking n0 (their asks are answers to n0 too), as if
	// the network between them and n0 were cut; they still reach each
	// other.
	for i := 1; i <= 2; i++ {
		ni := c.Node(i)
		ni.SetPeerRingForTest(func(ctx context.Context, peer ring.Member) (*ring.Ring, uint64, error) {
			if peer.Name == "n0" {
				return nil, 0, errors.New("cut")
			}
			return ni.PeerRingForTest(ctx, peer)
		})
	}

	for _, tc := range []struct {
		name string
		ask  func(ctx context.Context, peer ring.Member) (*ring.Ring, uint64, error)
	}{
		{"peers unreachable", func(ctx context.Context, peer ring.Member) (*ring.Ring, uint64, error) {
			return nil, 0, errors.New("unreachable")
		}},
		{"peers dropped this node", func(ctx context.Context, peer ring.Member) (*ring.Ring, uint64, error) {
			r, err := ring.New([]ring.Member{{Name: "n1"}, {Name: "n2"}}, ring.Config{})
			return r, 0, err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n0.SetPeerRingForTest(tc.ask)
			waitFor(t, 30*time.Second, "n0 to cut itself off", func() bool { return clusterStats(w)["cut_off"] == "1" })
			if got := w.set(key, "cut", 0); got != "SERVER_ERROR cut off from most of the cluster; retry" {
				t.Fatalf("write while cut off: %q", got)
			}
			if v, ok := w.get(key); ok {
				t.Fatalf("get while cut off = %q, want a miss", v)
			}
			n0.SetPeerRingForTest(nil)
			waitFor(t, 30*time.Second, "n0 to serve again", func() bool { return clusterStats(w)["cut_off"] == "0" })
			if v, ok := w.get(key); !ok || v != "before" {
				t.Fatalf("get after a cut-off nobody acted on = %q, %v; want before", v, ok)
			}
		})
	}

	// The same, but the others may have acted: memberlist refuted n0's
	// death meanwhile, or a peer's ring changed (it dropped n0 and took it
	// back). What n0 held may be stale: it is fenced.
	unreachable := func(ctx context.Context, peer ring.Member) (*ring.Ring, uint64, error) {
		return nil, 0, errors.New("unreachable")
	}
	moved := func(ctx context.Context, peer ring.Member) (*ring.Ring, uint64, error) {
		r, gen, err := n0.PeerRingForTest(ctx, peer)
		return r, gen + 2, err
	}
	for _, tc := range []struct {
		name  string
		acted func()                                                                  // what the others did meanwhile
		back  func(ctx context.Context, peer ring.Member) (*ring.Ring, uint64, error) // how n0 hears them again
	}{
		{"death refuted", n0.RefutedForTest, nil},
		{"a peer's ring changed", func() {}, moved},
	} {
		t.Run(tc.name, func(t *testing.T) {
			waitFor(t, 30*time.Second, "a write before the cut-off", func() bool { return w.set(key, "before", 0) == "STORED" })
			n0.SetPeerRingForTest(unreachable)
			waitFor(t, 30*time.Second, "n0 to cut itself off", func() bool { return clusterStats(w)["cut_off"] == "1" })
			tc.acted()
			n0.SetPeerRingForTest(tc.back)
			waitFor(t, 30*time.Second, "n0 to serve again", func() bool { return clusterStats(w)["cut_off"] == "0" })
			n0.SetPeerRingForTest(nil)
			if v, ok := w.get(key); ok {
				t.Fatalf("get after the cut-off = %q, want a miss", v)
			}
		})
	}
	waitFor(t, 30*time.Second, "a write after the cut-off", func() bool { return w.set(key, "after", 0) == "STORED" })
}

// TestStartAloneTakesWritesAtOnce: a clustered node that joins no one (the
// first of a cluster, or `go run ./cmd/cached`) has no former owner to
// wait for: its first write is stored at once, not refused for a lease.
func TestStartAloneTakesWritesAtOnce(t *testing.T) {
	n := nodetest.Standalone(t, node.Config{Name: "alone", GossipAddr: "127.0.0.1:0", LeasePeriod: time.Hour})
	if got := dial(t, n.Addr()).set("k", "v", 0); got != "STORED" {
		t.Fatalf("first write to a node that joined no one: %q, want STORED", got)
	}
}
