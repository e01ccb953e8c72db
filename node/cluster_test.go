package node_test

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/hotcache/hotcache/node"
	"github.com/hotcache/hotcache/node/nodetest"
)

func clusterKey(i int) string { return fmt.Sprintf("ck:%05d", i) }

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestClusterForwardsAndAgrees(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test")
	}
	c := nodetest.Start(t, 3)
	w, r := dial(t, c.Addr(0)), dial(t, c.Addr(2))
	const n = 10_000
	var batch bytes.Buffer
	for i := range n {
		fmt.Fprintf(&batch, "set %s 0 0 %d\r\n%s\r\n", clusterKey(i), len(clusterKey(i)), clusterKey(i))
	}
	w.send(batch.String())
	for i := range n { // pipelined: every set is acknowledged, in order
		if got := w.line(); got != "STORED" {
			t.Fatalf("set %d through n0: %q", i, got)
		}
	}
	for i := range n {
		if v, ok := r.get(clusterKey(i)); !ok || v != clusterKey(i) {
			t.Fatalf("key %d written through n0 read through n2: %q, %v", i, v, ok)
		}
	}
	// Every node computes the same owner for every key, and each owns some.
	owned := map[string]int{}
	for i := range n {
		k := []byte(clusterKey(i))
		want, _ := c.Node(0).Ring().Owner(k)
		owned[want.Name]++
		for j := 1; j < 3; j++ {
			if got, _ := c.Node(j).Ring().Owner(k); got.Name != want.Name {
				t.Fatalf("key %s: n0 says %s, n%d says %s", k, want.Name, j, got.Name)
			}
		}
	}
	if len(owned) != 3 {
		t.Fatalf("keys spread over %v; want all three nodes", owned)
	}
	// A multi-get spanning owners comes back in the order asked.
	r.send("get ck:00003 nosuch ck:00001 ck:00002 ck:00001\r\n")
	for _, want := range []string{"ck:00003", "ck:00001", "ck:00002", "ck:00001"} {
		if l := r.line(); l != "VALUE "+want+" 0 8" {
			t.Fatalf("multi-get: %q, want VALUE %s", l, want)
		}
		r.line()
	}
	if l := r.line(); l != "END" {
		t.Fatalf("multi-get end: %q", l)
	}
}

func TestClusterSurvivesKillAndRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test")
	}
	c := nodetest.Start(t, 3)
	w := dial(t, c.Addr(0))
	const n = 1000
	for i := range n {
		w.set(clusterKey(i), "v", 0)
	}
	c.Kill(1)
	c.WaitConverged(2)
	// Within the detection time every key is served again: n1's keys miss,
	// nothing errors, and writes of every key succeed.
	for _, addr := range []string{c.Addr(0), c.Addr(2)} {
		d := dial(t, addr)
		misses := 0
		for i := range n {
			if _, ok := d.get(clusterKey(i)); !ok {
				misses++
			}
		}
		if misses == 0 || misses == n {
			t.Errorf("through %s: %d of %d keys missed; want only n1's", addr, misses, n)
		}
	}
	for i := range n {
		if got := w.set(clusterKey(i), "w", 0); got != "STORED" {
			t.Fatalf("set %d after n1 died: %q", i, got)
		}
	}
	// n1 comes back on new ports under its old name and is taken back.
	c.Restart(1)
	c.WaitConverged(3)
	d := dial(t, c.Addr(1))
	for i := range n {
		if v, ok := d.get(clusterKey(i)); ok && v != "w" {
			t.Fatalf("key %d through the restarted node: %q, want w or a miss", i, v)
		}
	}
}

func TestWrongGossipKeyCannotJoin(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test")
	}
	key := func(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }
	c := nodetest.Start(t, 2, func(i int, cfg *node.Config) { cfg.GossipKey = key(1) })
	intruder := c.Add(func(cfg *node.Config) { cfg.GossipKey = key(2) })
	// Give it every chance (it re-joins every second) and check throughout.
	deadline := time.Now().Add(nodetest.DetectionTime / 3)
	for time.Now().Before(deadline) {
		for i := range 2 {
			if l := c.Node(i).Ring().Len(); l != 2 {
				t.Fatalf("n%d's ring has %d members: a node with the wrong gossip key got in", i, l)
			}
		}
		if l := c.Node(intruder).Ring().Len(); l != 1 {
			t.Fatalf("the node with the wrong key sees %d members", l)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestOwnershipChangeNeverResurrects: k=v1 is written to its owner; a new
// node D takes k over and k=v2 is written to D; D dies and k's partition
// goes back to its old owner, which still holds v1 in its store. Reads of k
// must give v2 or a miss, never v1.
func TestOwnershipChangeNeverResurrects(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test")
	}
	c := nodetest.Start(t, 3)
	w := dial(t, c.Addr(0))
	const n = 2000
	for i := range n {
		w.set(clusterKey(i), "v1", 0)
	}
	d := c.Add()
	c.WaitConverged(4)
	dName := c.Node(d).Name()
	var moved []string
	for i := range n {
		if m, _ := c.Node(0).Ring().Owner([]byte(clusterKey(i))); m.Name == dName {
			moved = append(moved, clusterKey(i))
		}
	}
	if len(moved) < n/10 {
		t.Fatalf("only %d of %d keys moved to the new node", len(moved), n)
	}
	for _, k := range moved {
		if got := w.set(k, "v2", 0); got != "STORED" {
			t.Fatalf("set %s: %q", k, got)
		}
	}
	c.Kill(d)
	c.WaitConverged(3)
	for i := range 3 {
		r := dial(t, c.Addr(i))
		for _, k := range moved {
			if v, ok := r.get(k); ok && v != "v2" {
				t.Fatalf("through n%d, %s = %q after its owner died: an old value came back", i, k, v)
			}
		}
	}
}

// TestGossipKeyRotation follows the middle of a rolling rotation from key
// 1 to key 2: two nodes send with key 1 and already accept key 2; a node
// already sending with key 2, still accepting key 1, joins them.
func TestGossipKeyRotation(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test")
	}
	key := func(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }
	c := nodetest.Start(t, 2, func(i int, cfg *node.Config) {
		cfg.GossipKey, cfg.GossipKeyring = key(1), [][]byte{key(2)}
	})
	rotated := c.Add(func(cfg *node.Config) { cfg.GossipKey, cfg.GossipKeyring = key(2), [][]byte{key(1)} })
	deadline := time.Now().Add(nodetest.DetectionTime * 2)
	for {
		if c.Node(0).Ring().Len() == 3 && c.Node(1).Ring().Len() == 3 && c.Node(rotated).Ring().Len() == 3 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("rings: %d, %d, %d members; want 3 each", c.Node(0).Ring().Len(), c.Node(1).Ring().Len(), c.Node(rotated).Ring().Len())
		}
		time.Sleep(50 * time.Millisecond) // poll interval
	}
}
