package node_test

import (
	"testing"

	"github.com/hotcache/hotcache/node"
)

// startCached starts the server under test, a fresh node with the zero
// Config (memcached's defaults: 64 MB, -I 1m, 1024 connections), for one
// conformance case, and returns its memcache address. The node is shut down
// when t ends.
func startCached(t testing.TB) string {
	t.Helper()
	return startNode(t, node.Config{}).Addr()
}
