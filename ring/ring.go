package ring

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/buraksezer/consistent"
	"github.com/cespare/xxhash/v2"
)

// A Member is a cache node as the ring sees it.
type Member struct {
	// Name is the member's unique identity (the memberlist node name). It is
	// the only field that placement depends on. It must be non-empty, at most
	// 255 bytes, with no spaces or control characters.
	Name string
	// Addr is the member's memcache address, host:port. It may be empty
	// (tests), must not be "-", and has the same character rules as Name.
	Addr string
	// Admin is the member's admin HTTP address, host:port. It may be empty,
	// must not be "-", and has the same character rules as Name.
	Admin string
}

// A Ring is an immutable placement of partitions on members. Its methods
// may be called from any number of goroutines at once. The zero Ring is
// not usable; build one with New or ParseText.
type Ring struct {
	cfg      Config   // with defaults applied
	parts    uint64   // cfg.PartitionCount
	members  []Member // sorted by Name
	owner    []int32  // partition -> index in members; empty when members is
	start    []int32  // partition -> index in vnodes of the first one at or after the partition's point
	vnodes   []vnode  // every member's virtual nodes, sorted by hash
	counts   []int32  // index in members -> partitions owned
	identity string
}

// A vnode is one point of a member on the hash circle.
type vnode struct {
	hash   uint64
	member int32 // index in Ring.members
}

// New places the partitions of cfg on members, in whatever order the members
// are given. It returns an error, and never panics, when members or cfg are
// invalid: a member breaking the Member field rules, two members with one
// Name, a Config field out of range, or more members than the Config has
// room for. An empty member set gives a Ring that owns no keys.
func New(members []Member, cfg Config) (*Ring, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(len(members)); err != nil {
		return nil, err
	}
	ms := slices.SortedFunc(slices.Values(members), func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	for i, m := range ms {
		if err := validateMember(m); err != nil {
			return nil, err
		}
		if i > 0 && ms[i-1].Name == m.Name {
			return nil, fmt.Errorf("ring: two members are named %q", m.Name)
		}
	}
	r := &Ring{cfg: cfg, parts: uint64(cfg.PartitionCount), members: ms, counts: make([]int32, len(ms))}
	if len(ms) > 0 {
		if err := r.place(); err != nil {
			return nil, err
		}
	}
	r.identity = r.fingerprint()
	return r, nil
}

// place fills the virtual nodes and the partition table; r.members is not
// empty and r.cfg is valid for it.
func (r *Ring) place() error {
	r.vnodes = r.virtualNodes()
	for i := 1; i < len(r.vnodes); i++ {
		if a, b := r.vnodes[i-1], r.vnodes[i]; a.hash == b.hash {
			// consistent would silently drop one of them, making placement
			// depend on member order and possibly leaving too little room.
			return fmt.Errorf("ring: virtual nodes of members %q and %q hash to the same point %#x",
				r.members[a.member].Name, r.members[b.member].Name, a.hash)
		}
	}
	lib := newLibrary(r.members, r.cfg)
	index := make(map[string]int32, len(r.members))
	for i, m := range r.members {
		index[libraryName(m.Name)] = int32(i)
	}
	r.owner = make([]int32, r.parts)
	r.start = make([]int32, r.parts)
	var buf [8]byte
	for p := range r.owner {
		o := lib.GetPartitionOwner(p)
		if o == nil {
			return fmt.Errorf("ring: consistent left partition %d without an owner", p) // cannot happen after validate
		}
		i := index[o.String()]
		r.owner[p] = i
		r.counts[i]++
		binary.LittleEndian.PutUint64(buf[:], uint64(p)) // the partition's point, as consistent computes it
		j, _ := slices.BinarySearchFunc(r.vnodes, r.sum(buf[:]), func(v vnode, h uint64) int { return cmp.Compare(v.hash, h) })
		r.start[p] = int32(j % len(r.vnodes))
	}
	return nil
}

// virtualNodes hashes every member's virtual nodes exactly as consistent
// does, and sorts them.
func (r *Ring) virtualNodes() []vnode {
	vs := make([]vnode, 0, len(r.members)*r.cfg.ReplicationFactor)
	var buf []byte
	for i, m := range r.members {
		for v := range r.cfg.ReplicationFactor {
			buf = strconv.AppendInt(append(buf[:0], libraryName(m.Name)...), int64(v), 10)
			vs = append(vs, vnode{hash: r.sum(buf), member: int32(i)})
		}
	}
	slices.SortFunc(vs, func(a, b vnode) int { return cmp.Compare(a.hash, b.hash) })
	return vs
}

// sum hashes b with the configured Hasher.
func (r *Ring) sum(b []byte) uint64 {
	if r.cfg.Hasher == nil {
		return xxhash.Sum64(b)
	}
	// NB: the copy keeps b from escaping through the interface call, so that
	// on the default path above callers' keys can stay on their stacks.
	return r.cfg.Hasher.Sum64(bytes.Clone(b))
}

// Owner returns the member that owns key. It reports false, and the zero
// Member, only for a Ring without members. It does not allocate.
func (r *Ring) Owner(key []byte) (Member, bool) {
	if len(r.owner) == 0 {
		return Member{}, false
	}
	return r.members[r.owner[r.Partition(key)]], true
}

// Owners returns up to n distinct members for key: its Owner first, then the
// members met walking the hash circle clockwise from key's partition, the
// order in which to fail over or replicate. It returns every member when n
// exceeds Len, and nil when n < 1 or the Ring has no members.
func (r *Ring) Owners(key []byte, n int) []Member {
	if n < 1 || len(r.owner) == 0 {
		return nil
	}
	n = min(n, len(r.members))
	p := r.Partition(key)
	out := make([]Member, 0, n)
	var small [8]int32
	seen := small[:0]
	add := func(i int32) {
		if !slices.Contains(seen, i) {
			seen = append(seen, i)
			out = append(out, r.members[i])
		}
	}
	add(r.owner[p])
	for j := int(r.start[p]); len(out) < n; j = (j + 1) % len(r.vnodes) {
		add(r.vnodes[j].member) // every member has a virtual node, so this ends
	}
	return out
}

// Partition returns the partition of key, in [0, Partitions()): its hash
// modulo the partition count, as consistent's FindPartitionID computes it.
// It does not allocate.
func (r *Ring) Partition(key []byte) int {
	return int(r.sum(key) % r.parts)
}

// Partitions returns the number of partitions, Config.PartitionCount.
func (r *Ring) Partitions() int { return int(r.parts) }

// PartitionOwner returns the member that owns partition p, or the zero Member
// if p is out of range or the Ring has no members.
func (r *Ring) PartitionOwner(p int) Member {
	if p < 0 || p >= len(r.owner) {
		return Member{}
	}
	return r.members[r.owner[p]]
}

// Members returns a copy of the members, sorted by Name.
func (r *Ring) Members() []Member { return slices.Clone(r.members) }

// Len returns the number of members.
func (r *Ring) Len() int { return len(r.members) }

// Has reports whether the ring has a member with this Name.
func (r *Ring) Has(name string) bool {
	_, ok := slices.BinarySearchFunc(r.members, name, func(m Member, n string) int { return strings.Compare(m.Name, n) })
	return ok
}

// PartitionCounts returns how many partitions each member owns, by Name.
func (r *Ring) PartitionCounts() map[string]int {
	m := make(map[string]int, len(r.members))
	for i, mb := range r.members {
		m[mb.Name] = int(r.counts[i])
	}
	return m
}

// Identity returns a fingerprint of the ring: 16 hex digits of an xxhash64
// over the parameters, the members' names and addresses in Name order, and
// the partition table. Every party that builds a Ring from the same members
// and Config gets the same Identity, and rings with equal identities route
// every key to the same member at the same addresses.
func (r *Ring) Identity() string { return r.identity }

// fingerprint computes Identity.
func (r *Ring) fingerprint() string {
	b := append([]byte("hotcache-ring-v1 "), r.appendParams(nil)...)
	b = append(b, '\n')
	for _, m := range r.members {
		b = append(b, m.Name...)
		b = append(append(b, ' '), field(m.Addr)...)
		b = append(append(b, ' '), field(m.Admin)...)
		b = append(b, '\n')
	}
	for _, o := range r.owner {
		b = binary.LittleEndian.AppendUint32(b, uint32(o))
	}
	return fmt.Sprintf("%016x", xxhash.Sum64(b))
}

// libraryName is the name under which a member is given to consistent, which
// hashes virtual node i of a member as the bytes of String() followed by i in
// decimal. NB: the raw name would make members "n1" and "n11" collide ("n1"
// +"10" == "n11"+"0"); names have no spaces, so name+" " cannot.
func libraryName(name string) string { return name + " " }

// libraryMember is a member as consistent sees it.
type libraryMember string

// String returns the name consistent hashes.
func (m libraryMember) String() string { return string(m) }

// xxhasher is the default Hasher, in the form consistent takes.
type xxhasher struct{}

// Sum64 returns the xxhash64 of b.
func (xxhasher) Sum64(b []byte) uint64 { return xxhash.Sum64(b) }

// newLibrary builds consistent's placement of members, sorted by Name. cfg
// must be defaulted and valid for them.
func newLibrary(members []Member, cfg Config) *consistent.Consistent {
	lm := make([]consistent.Member, len(members))
	for i, m := range members {
		lm[i] = libraryMember(libraryName(m.Name))
	}
	var h consistent.Hasher = xxhasher{}
	if cfg.Hasher != nil {
		h = cfg.Hasher
	}
	return consistent.New(lm, consistent.Config{
		Hasher:            h,
		PartitionCount:    cfg.PartitionCount,
		ReplicationFactor: cfg.ReplicationFactor,
		Load:              cfg.Load,
	})
}
