package client_test

import (
	"context"
	"log/slog"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hotcache/hotcache/client"
	"github.com/hotcache/hotcache/node"
	"github.com/hotcache/hotcache/node/nodetest"
)

// waitTimeout is the generous deadline every wait for a condition gets: the
// machine is small and shared, and -race slows it further.
const waitTimeout = 30 * time.Second

// waitFor polls cond until it holds, failing t with the last thing seen
// after waitTimeout.
func waitFor(t testing.TB, what string, cond func() (bool, any)) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		ok, seen := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; last seen: %v", what, seen)
		}
		time.Sleep(10 * time.Millisecond) // poll interval, not an assertion
	}
}

// startNode runs a standalone node on 127.0.0.1:0 until the test ends.
func startNode(t testing.TB) *node.Node {
	return nodetest.Standalone(t, node.Config{Name: "solo"})
}

// newClient makes a client with test-friendly timeouts, closed when the
// test ends.
func newClient(t testing.TB, cfg client.Config) *client.Client {
	t.Helper()
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second // -race on a loaded 2-core machine
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	c, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// countingDialer dials TCP and counts the dials and the bytes written.
type countingDialer struct {
	dials, written atomic.Int64
}

func (d *countingDialer) Dial(ctx context.Context, addr string) (net.Conn, error) {
	d.dials.Add(1)
	var nd net.Dialer
	c, err := nd.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, d: d}, nil
}

type countingConn struct {
	net.Conn
	d *countingDialer
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.d.written.Add(int64(n))
	return n, err
}
