// Package ring decides which cache node owns a key.
//
// A Ring is an immutable snapshot of the cluster's members and of the
// placement of Config.PartitionCount partitions on them, built by New once
// per membership change. Keys hash (xxhash64) to a partition; partitions are
// placed on members by github.com/buraksezer/consistent (consistent hashing
// with bounded loads: no member owns more than ceil(floor(P/n) x Load)
// partitions). Owner is then one hash, one modulo and one slice index: it
// takes no lock and does not allocate.
//
// Placement depends only on member names and the Config, never on addresses
// or on the order members are given in: a node restarted on a new address
// under the same name owns the same partitions, and every party that builds a
// Ring from the same member set computes the same owners. Identity is a
// fingerprint of everything that routes a key (parameters, sorted names and
// addresses, the partition table), so two rings with equal identities send
// every key to the same member at the same address. MarshalText and
// ParseText carry a Ring over a text stream to the edges; ParseText rebuilds
// the placement and rejects text whose identity or partition counts do not
// match, which catches peers that disagree on placement (a different
// consistent release, say). docs/ring.md explains the parameters and their
// measured balance and movement.
//
// New validates its input before calling the library, so consistent never
// panics ("not enough room to distribute partitions", or a nil Hasher): a bad
// member set or Config is an error, and an empty member set is a valid Ring
// that owns nothing (Owner reports ok=false).
//
// Concurrency: a Ring is never modified after New returns, so any number of
// goroutines may call its methods at once. Users publish the current Ring
// with an atomic.Pointer[ring.Ring] and swap in a new one on membership
// change; a reader that loaded the old pointer keeps a consistent view.
//
// The package imports nothing else of this module, starts no goroutines,
// reads no clock and opens no sockets. It is the only user of consistent and
// xxhash in the module.
package ring
