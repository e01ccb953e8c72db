// Package node is a cache node as a library: Config, New, Start and
// Shutdown. A Node stores items in ristretto with memcache semantics (store.go
// is the only file that imports ristretto), serves the memcache text protocol
// through protocol.Server, and, given a GossipAddr, joins a cluster over
// memberlist: every node builds the same ring from the same member set,
// serves the keys it owns and forwards the others to their owner over pooled
// peer connections.
//
// Ownership changes never resurrect old values: a node fences each partition
// it gains (items written before the gain are misses) and waits LeasePeriod
// before acknowledging writes to it. See docs/architecture.md.
//
// The goroutines a Node starts (the server's, the ring goroutine, the
// re-join loop, the admin server) are stopped and waited for by Shutdown or
// Close.
package node
