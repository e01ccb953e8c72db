package node_test

import (
	"testing"

	"github.com/hotcache/hotcache/internal/memcachedtest"
)

// startCached starts the server under test for one conformance case and
// returns its memcache address; it is stopped when t ends.
//
// TODO(lead): until node.New exists this starts a second memcached, so the
// harness compares memcached with itself. Replace the body with:
//
//	n, err := node.New(node.Config{Addr: "127.0.0.1:0"})
//	if err != nil {
//		t.Fatal(err)
//	}
//	if err := n.Start(); err != nil {
//		t.Fatal(err)
//	}
//	t.Cleanup(func() {
//		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
//		defer cancel()
//		if err := n.Shutdown(ctx); err != nil {
//			t.Errorf("node shutdown: %v", err)
//		}
//	})
//	return n.Addr()
func startCached(t testing.TB) string {
	return memcachedtest.Start(t)
}
