package ring

import (
	"errors"
	"fmt"
	"math"
)

// Defaults for the zero Config. docs/ring.md has the measurements behind them.
const (
	// DefaultPartitionCount is the number of partitions of the zero Config.
	// A prime (as consistent recommends), large enough that 100 members get
	// about 41 partitions each, so balance is not limited by granularity, and
	// small enough that per-partition state in a node stays trivial.
	DefaultPartitionCount = 4093

	// DefaultReplicationFactor is the number of virtual nodes per member of
	// the zero Config. consistent's default of 20 gave the compose cluster's
	// node1..node3 1705/1337/1051 partitions (the largest at the Load cap);
	// 100 gives 0.86-1.09 of the average at 3 members and 0.90-1.18 at 10, for
	// a New of ~80 ms at 100 members (quadratic in members; rings are rebuilt
	// only on membership changes).
	DefaultReplicationFactor = 100

	// DefaultLoad is the bounded-load factor of the zero Config: no member
	// owns more than 1.25 times the average number of partitions (the value
	// of the consistent-hashing-with-bounded-loads paper and of consistent).
	DefaultLoad = 1.25
)

// Limits on Config, so that a Ring received as text cannot make New spend
// unbounded memory or time.
const (
	// MaxPartitionCount is the largest Config.PartitionCount New accepts.
	MaxPartitionCount = 1 << 16

	// MaxReplicationFactor is the largest Config.ReplicationFactor New accepts.
	MaxReplicationFactor = 1024

	// maxFieldLen bounds the length of a member's name and addresses.
	maxFieldLen = 255
)

// A Hasher hashes bytes to 64 bits. It is the same interface as
// consistent.Hasher. Sum64 must be a pure function of its argument and must
// not retain it.
type Hasher interface {
	Sum64([]byte) uint64
}

// Config tunes placement. The zero value is the tuned default; every party in
// a cluster must use the same Config (ParseText takes it from the text).
type Config struct {
	// PartitionCount is the number of partitions keys are hashed into, the
	// unit of ownership and of data fencing. It must be at least the number
	// of members and at most MaxPartitionCount. Zero means
	// DefaultPartitionCount (4093).
	PartitionCount int

	// ReplicationFactor is the number of virtual nodes each member has on the
	// hash circle; more virtual nodes balance better and cost more in New.
	// It must be at least 2 (consistent's search for a member with room
	// skips one virtual node, which with one virtual node per member can be
	// the only one with room) and at most MaxReplicationFactor. Zero means
	// DefaultReplicationFactor (20).
	ReplicationFactor int

	// Load bounds the partitions of any member to
	// ceil(floor(PartitionCount/members) x Load). It must be finite and at
	// least 1, and the members must have room for every partition (any Load
	// above 1 does when there are no more members than partitions). Lower
	// values balance better and move more partitions on a membership change.
	// Zero means DefaultLoad (1.25).
	Load float64

	// Hasher replaces xxhash64 for keys, partitions and virtual nodes, so a
	// test can work ownership out by hand. It costs one allocation per key
	// lookup, and a Ring using it cannot be carried as text. Nil means
	// xxhash64; production code leaves it nil.
	Hasher Hasher
}

// withDefaults returns c with zero fields replaced by their defaults.
func (c Config) withDefaults() Config {
	if c.PartitionCount == 0 {
		c.PartitionCount = DefaultPartitionCount
	}
	if c.ReplicationFactor == 0 {
		c.ReplicationFactor = DefaultReplicationFactor
	}
	if c.Load == 0 {
		c.Load = DefaultLoad
	}
	return c
}

// validate checks a defaulted Config for n members. It accepts exactly the
// configurations for which consistent places every partition without
// panicking (see TestValidate_matchesLibrary), except ReplicationFactor 1.
func (c Config) validate(n int) error {
	switch {
	case c.PartitionCount < 1 || c.PartitionCount > MaxPartitionCount:
		return fmt.Errorf("ring: PartitionCount %d is outside [1, %d]", c.PartitionCount, MaxPartitionCount)
	case c.ReplicationFactor < 2 || c.ReplicationFactor > MaxReplicationFactor:
		return fmt.Errorf("ring: ReplicationFactor %d is outside [2, %d]", c.ReplicationFactor, MaxReplicationFactor)
	case math.IsNaN(c.Load) || math.IsInf(c.Load, 0) || c.Load < 1:
		return fmt.Errorf("ring: Load %v is not a finite number of at least 1", c.Load)
	}
	if n > 0 && capacity(c.PartitionCount, n, c.Load) < float64(c.PartitionCount) {
		return fmt.Errorf("ring: %d members with Load %v have room for only %v of %d partitions (raise PartitionCount or Load)",
			n, c.Load, capacity(c.PartitionCount, n, c.Load), c.PartitionCount)
	}
	return nil
}

// maxLoad is consistent's bound on the partitions one of n members may own,
// computed as consistent computes it (note the integer division).
func maxLoad(partitions, n int, load float64) float64 {
	return math.Ceil(float64(partitions/n) * load)
}

// capacity is how many partitions n members can take under maxLoad.
// consistent panics when it is less than the partition count.
func capacity(partitions, n int, load float64) float64 {
	return float64(n) * maxLoad(partitions, n, load)
}

// errEmptyName is returned for a member without a name.
var errEmptyName = errors.New("ring: a member has an empty Name")

// validateMember checks that m can be hashed unambiguously and written in
// the text form: fields of printable bytes without spaces, addresses either
// empty or not "-" (the text form's empty address).
func validateMember(m Member) error {
	if m.Name == "" {
		return errEmptyName
	}
	for _, f := range [...]struct{ what, v string }{{"Name", m.Name}, {"Addr", m.Addr}, {"Admin", m.Admin}} {
		if len(f.v) > maxFieldLen {
			return fmt.Errorf("ring: member %.40q: %s is longer than %d bytes", m.Name, f.what, maxFieldLen)
		}
		for i := 0; i < len(f.v); i++ {
			if b := f.v[i]; b <= ' ' || b == 0x7f {
				return fmt.Errorf("ring: member %q: %s %q contains a space or control character", m.Name, f.what, f.v)
			}
		}
	}
	if m.Addr == emptyField || m.Admin == emptyField {
		return fmt.Errorf("ring: member %q: an address may not be %q", m.Name, emptyField)
	}
	return nil
}
