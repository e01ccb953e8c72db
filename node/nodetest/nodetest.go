// Package nodetest runs real cache nodes on 127.0.0.1 with OS-chosen ports,
// in the style of net/http/httptest, so tests can exercise a cluster over
// real sockets: start n nodes, wait until they agree on the ring, kill and
// restart one, and have everything stopped when the test ends.
//
// Test clusters relax memberlist's failure detection (see Tuning) so that a
// busy machine running -race does not make a live node look dead.
package nodetest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/hotcache/hotcache/node"
)

// DetectionTime is how long, with Tuning, the others may take to drop a
// killed node: a probe round plus the suspicion timeout, with slack for a
// loaded machine. Tests wait well beyond it, never a fixed sleep.
const DetectionTime = 15 * time.Second

// Tuning relaxes memberlist's LAN defaults for tests on a shared 2-core
// machine: slower probes with a generous timeout, so -race pauses are not
// taken for failures, yet a killed node is still declared dead within
// DetectionTime.
func Tuning(mc *memberlist.Config) {
	mc.ProbeInterval = 500 * time.Millisecond
	mc.ProbeTimeout = 2 * time.Second
	mc.SuspicionMult = 3
	mc.GossipInterval = 100 * time.Millisecond
	mc.PushPullInterval = 2 * time.Second
	mc.TCPTimeout = 2 * time.Second
}

// A Cluster is a set of nodes started by Start.
type Cluster struct {
	t     testing.TB
	mu    sync.Mutex
	nodes []*node.Node
	cfgs  []node.Config
}

// Start runs n gossiping nodes and returns once all of them agree on a ring
// of n members. tweak functions adjust each node's Config (after the
// defaults Start fills in) before it starts.
func Start(t testing.TB, n int, tweak ...func(i int, cfg *node.Config)) *Cluster {
	t.Helper()
	c := &Cluster{t: t}
	for i := range n {
		cfg := node.Config{
			Name:           fmt.Sprintf("n%d", i),
			Addr:           "127.0.0.1:0",
			GossipAddr:     "127.0.0.1:0",
			AdminAddr:      "127.0.0.1:0",
			RejoinInterval: time.Second,
			LeasePeriod:    200 * time.Millisecond,
			GossipTuning:   Tuning,
			Logger:         quietLogger(),
		}
		if i > 0 {
			cfg.Join = []string{c.nodes[0].GossipAddr()}
		}
		for _, f := range tweak {
			f(i, &cfg)
		}
		c.cfgs = append(c.cfgs, cfg)
		c.nodes = append(c.nodes, c.start(cfg))
	}
	t.Cleanup(c.Close)
	c.WaitConverged(n)
	return c
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func (c *Cluster) start(cfg node.Config) *node.Node {
	c.t.Helper()
	n, err := node.New(cfg)
	if err != nil {
		c.t.Fatalf("nodetest: %v", err)
	}
	if err := n.Start(); err != nil {
		c.t.Fatalf("nodetest: %v", err)
	}
	return n
}

// Node returns node i (nil after Kill).
func (c *Cluster) Node(i int) *node.Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[i]
}

// Addr returns node i's memcache address.
func (c *Cluster) Addr(i int) string { return c.Node(i).Addr() }

// Len returns how many nodes the cluster was started with.
func (c *Cluster) Len() int { return len(c.nodes) }

// Live returns the nodes that are running.
func (c *Cluster) Live() []*node.Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*node.Node
	for _, n := range c.nodes {
		if n != nil {
			out = append(out, n)
		}
	}
	return out
}

// Kill stops node i abruptly, as a crash would: it does not leave the
// cluster, so the others must detect it.
func (c *Cluster) Kill(i int) {
	c.mu.Lock()
	n := c.nodes[i]
	c.nodes[i] = nil
	c.mu.Unlock()
	if n != nil {
		n.Close()
	}
}

// Restart starts node i again under the same name on new ports, joining a
// live node, and returns it. It does not wait for convergence.
func (c *Cluster) Restart(i int) *node.Node {
	cfg := c.cfgs[i]
	cfg.Addr, cfg.GossipAddr, cfg.AdminAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.Join = nil
	for _, n := range c.Live() {
		cfg.Join = append(cfg.Join, n.GossipAddr())
	}
	n := c.start(cfg)
	c.mu.Lock()
	c.nodes[i] = n
	c.mu.Unlock()
	return n
}

// Add starts one more node joined to the cluster and returns its index. It
// does not wait for convergence.
func (c *Cluster) Add(tweak ...func(cfg *node.Config)) int {
	i := len(c.cfgs)
	cfg := c.cfgs[0]
	cfg.Name = fmt.Sprintf("n%d", i)
	cfg.Addr, cfg.GossipAddr, cfg.AdminAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.Join = nil
	for _, n := range c.Live() {
		cfg.Join = append(cfg.Join, n.GossipAddr())
	}
	for _, f := range tweak {
		f(&cfg)
	}
	n := c.start(cfg)
	c.mu.Lock()
	c.cfgs = append(c.cfgs, cfg)
	c.nodes = append(c.nodes, n)
	c.mu.Unlock()
	return i
}

// WaitConverged waits until every live node's ring has want members and the
// same identity, and every live node takes writes to all it owns (no lease
// or handoff pending), failing the test after a generous deadline.
func (c *Cluster) WaitConverged(want int) {
	c.t.Helper()
	deadline := time.Now().Add(DetectionTime + 15*time.Second)
	var last string
	for time.Now().Before(deadline) {
		ok, desc := c.converged(want)
		if ok {
			for _, n := range c.Live() {
				if !n.Writable() {
					ok, desc = false, desc+n.Name()+" not yet writable; "
				}
			}
		}
		if ok {
			return
		}
		last = desc
		time.Sleep(20 * time.Millisecond)
	}
	c.t.Fatalf("nodetest: no convergence on %d members; last seen: %s", want, last)
}

func (c *Cluster) converged(want int) (bool, string) {
	var ids []string
	desc := ""
	for _, n := range c.Live() {
		r := n.Ring()
		desc += fmt.Sprintf("%s=%d members %v; ", n.Name(), r.Len(), r.Identity())
		if r.Len() != want {
			return false, desc
		}
		ids = append(ids, r.Identity())
	}
	slices.Sort(ids)
	return len(slices.Compact(ids)) == 1, desc
}

// Close stops every node, each leaving the cluster.
func (c *Cluster) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, n := range c.Live() {
		wg.Go(func() { n.Shutdown(ctx) })
	}
	wg.Wait()
}

// Standalone runs one node that does not gossip on 127.0.0.1 with an
// OS-chosen port, and shuts it down when the test ends. cfg.Addr is set; a
// nil cfg.Logger discards logs.
func Standalone(t testing.TB, cfg node.Config) *node.Node {
	t.Helper()
	cfg.Addr = "127.0.0.1:0"
	if cfg.Logger == nil {
		cfg.Logger = quietLogger()
	}
	n, err := node.New(cfg)
	if err != nil {
		t.Fatalf("nodetest: %v", err)
	}
	if err := n.Start(); err != nil {
		t.Fatalf("nodetest: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := n.Shutdown(ctx); err != nil {
			t.Errorf("nodetest: shutdown: %v", err)
		}
	})
	return n
}
