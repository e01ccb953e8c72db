// Package client is the Go client that applications embed to use a hotcache
// cluster, or any memcached speaking the text protocol.
//
// A Client sends each request straight to the owner of its key, with no
// extra hop. In cluster mode (Config.Seeds) it learns the ring from a node's
// watch stream, routes with the same ring code the nodes use, and switches
// to each new ring atomically as nodes join and leave. In static mode
// (Config.Servers) it hashes keys over a fixed server list with that same
// ring, which is the mode for plain memcached.
//
// Every call takes a context.Context: its deadline and cancellation bound
// the call, and Config.Timeout bounds how long any reply may take.
// Connections come from per-server pools (internal/connpool); requests are
// pipelined on a few connections per server, so concurrent calls share
// writes, with a bound on the requests in flight to each server, so a slow
// server turns into waiting under ctx or errors, never into unbounded
// memory. Redials back off exponentially with
// full jitter, so a thousand clients do not reconnect to a restarted node in
// the same instant, and a server that keeps failing is marked down and
// probed rather than hammered. If a key's owner cannot be reached, a read is
// answered as a miss or by the next owner (Config.GetFailover) and a write
// returns a *NodeError that names the node.
//
// In cluster mode the client is also an edge of the cluster: it keeps a
// replica stream open to every member of the ring, on which the member pushes
// read replicas of its hot keys, and answers Get and GetMulti of those keys
// from memory while their leases last (Config.NearCacheBytes bounds them;
// EdgeStats and Replicas show them). Leases are timed by the client's own
// clock from stamps it sent, a replica is dropped the moment its stream
// breaks or a write through this client touches its key, and the node
// invalidates every replica (and waits for the acknowledgements) before it
// applies a write, so reads stay linearizable.
//
// Errors are sentinels for errors.Is (ErrCacheMiss, ErrNotStored,
// ErrCASConflict, ErrMalformedKey, ...) and the typed *ServerError and
// *NodeError for errors.As.
//
// A Client is safe for concurrent use. Its background goroutines (the watch
// and replica streams in cluster mode, pool maintenance) stop when Close returns. See
// docs/client.md.
package client
