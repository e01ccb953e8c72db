package node_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/hotcache/hotcache/node"
)

// startCached starts the server under test, a fresh node with the zero
// Config (memcached's defaults: 64 MB, -I 1m, 1024 connections), for one
// conformance case, and returns its memcache address. The node is shut down
// when t ends.
func startCached(t testing.TB) string {
	t.Helper()
	n, err := node.New(node.Config{Addr: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := n.Shutdown(ctx); err != nil {
			t.Errorf("node shutdown: %v", err)
		}
	})
	return n.Addr()
}
