package ring

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/buraksezer/consistent"
	"github.com/hotcache/hotcache/internal/workload"
)

// numKeys is how many keys the placement tests route.
const numKeys = 100_000

// testKeys are the canonical workload keys 0..numKeys-1, built once.
var testKeys = sync.OnceValue(func() [][]byte {
	ks := make([][]byte, numKeys)
	for i := range ks {
		ks[i] = workload.AppendKey(nil, i)
	}
	return ks
})

// cluster returns n members named as a StatefulSet names its pods.
func cluster(n int) []Member {
	ms := make([]Member, n)
	for i := range ms {
		ms[i] = Member{
			Name:  fmt.Sprintf("cached-%d", i),
			Addr:  fmt.Sprintf("10.0.%d.%d:11211", i/250, i%250+1),
			Admin: fmt.Sprintf("10.0.%d.%d:9100", i/250, i%250+1),
		}
	}
	return ms
}

func mustNew(t testing.TB, ms []Member, cfg Config) *Ring {
	t.Helper()
	r, err := New(ms, cfg)
	if err != nil {
		t.Fatalf("New(%d members): %v", len(ms), err)
	}
	return r
}

// ownerNames returns the owner of every test key, by name.
func ownerNames(r *Ring) []string {
	out := make([]string, numKeys)
	for i, k := range testKeys() {
		m, _ := r.Owner(k)
		out[i] = m.Name
	}
	return out
}

// TestNew_orderIndependent: rings built from the same members in any order
// agree on identity, text and the owner of every key.
func TestNew_orderIndependent(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{3, 10, 50} {
		ms := cluster(n)
		ref := mustNew(t, ms, Config{})
		want := ownerNames(ref)
		for range 3 {
			shuffled := slices.Clone(ms)
			rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
			r := mustNew(t, shuffled, Config{})
			if r.Identity() != ref.Identity() || r.String() != ref.String() {
				t.Fatalf("n=%d: shuffled ring differs:\n%s\nvs\n%s", n, r, ref)
			}
			for i, got := range ownerNames(r) {
				if got != want[i] {
					t.Fatalf("n=%d: key %d is owned by %s, and by %s in another order", n, i, got, want[i])
				}
			}
		}
	}
}

// TestOwner_matchesLibrary: the lock-free table gives the owner and
// partition consistent's LocateKey and FindPartitionID give.
func TestOwner_matchesLibrary(t *testing.T) {
	for _, tc := range []struct {
		n   int
		cfg Config
	}{
		{1, Config{}}, {3, Config{}}, {10, Config{}}, {50, Config{}},
		{7, Config{PartitionCount: 71, ReplicationFactor: 3, Load: 1.1}},
	} {
		r := mustNew(t, cluster(tc.n), tc.cfg)
		lib := newLibrary(r.members, r.cfg)
		for p := range r.Partitions() {
			if got, want := libraryName(r.PartitionOwner(p).Name), lib.GetPartitionOwner(p).String(); got != want {
				t.Fatalf("n=%d: PartitionOwner(%d) = %q, consistent says %q", tc.n, p, got, want)
			}
		}
		for _, k := range testKeys()[:20_000] {
			m, ok := r.Owner(k)
			if want := lib.LocateKey(k).String(); !ok || libraryName(m.Name) != want {
				t.Fatalf("n=%d: Owner(%q) = %q, consistent says %q", tc.n, k, m.Name, want)
			}
			if got, want := r.Partition(k), lib.FindPartitionID(k); got != want {
				t.Fatalf("n=%d: Partition(%q) = %d, consistent says %d", tc.n, k, got, want)
			}
		}
	}
}

// TestVirtualNodes_matchLibrary: with a Load so high that no partition
// spills, consistent gives each partition to the member of the first
// virtual node at or after its point, and so must our copy of the circle,
// which Owners walks.
func TestVirtualNodes_matchLibrary(t *testing.T) {
	for _, n := range []int{2, 3, 10} {
		r := mustNew(t, cluster(n), Config{Load: 1000})
		for p := range r.Partitions() {
			if got, want := r.vnodes[r.start[p]].member, r.owner[p]; got != want {
				t.Fatalf("n=%d partition %d: circle says %s, consistent says %s", n, p, r.members[got].Name, r.members[want].Name)
			}
		}
	}
}

// TestNew_prefixNamesDoNotCollide: consistent hashes virtual node i as the
// name followed by i, so raw names "n1" and "n11" would share a point
// ("n1"+"10" == "n11"+"0"). We hand it name+" ".
func TestNew_prefixNamesDoNotCollide(t *testing.T) {
	var ms []Member
	for i := range 120 {
		ms = append(ms, Member{Name: fmt.Sprintf("n%d", i)})
	}
	r := mustNew(t, ms, Config{})
	if got, want := len(r.vnodes), len(ms)*DefaultReplicationFactor; got != want {
		t.Fatalf("%d virtual nodes, want %d", got, want)
	}
}

// TestNew_placementDependsOnlyOnNames: a member restarted on new addresses
// under its old name owns the same partitions; the identity changes.
func TestNew_placementDependsOnlyOnNames(t *testing.T) {
	ms := cluster(5)
	a := mustNew(t, ms, Config{})
	ms[2].Addr, ms[2].Admin = "10.9.9.9:11211", ""
	b := mustNew(t, ms, Config{})
	for p := range a.Partitions() {
		if a.PartitionOwner(p).Name != b.PartitionOwner(p).Name {
			t.Fatalf("partition %d moved when only an address changed", p)
		}
	}
	if a.Identity() == b.Identity() {
		t.Fatal("identity did not change with an address")
	}
	if m, _ := b.Owner(keyOf(b, "cached-2")); m.Addr != "10.9.9.9:11211" {
		t.Fatalf("Owner returned %+v, want the new address", m)
	}
}

// keyOf returns a test key owned by name.
func keyOf(r *Ring, name string) []byte {
	for _, k := range testKeys() {
		if m, _ := r.Owner(k); m.Name == name {
			return k
		}
	}
	panic("no key for " + name)
}

// TestBalance: no member owns more partitions than consistent's bound,
// ceil(floor(P/n) x Load), and all partitions are owned.
func TestBalance(t *testing.T) {
	for _, n := range []int{3, 10, 50, 100} {
		r := mustNew(t, cluster(n), Config{})
		bound := int(maxLoad(r.Partitions(), n, DefaultLoad))
		lo, hi, sum := math.MaxInt, 0, 0
		for name, c := range r.PartitionCounts() {
			if c > bound {
				t.Errorf("n=%d: %s owns %d partitions, bound %d", n, name, c, bound)
			}
			lo, hi, sum = min(lo, c), max(hi, c), sum+c
		}
		if sum != r.Partitions() {
			t.Errorf("n=%d: members own %d of %d partitions", n, sum, r.Partitions())
		}
		avg := float64(r.Partitions()) / float64(n)
		t.Logf("n=%3d: partitions per member min %4d max %4d (bound %4d), min/avg %.2f max/avg %.2f",
			n, lo, hi, bound, float64(lo)/avg, float64(hi)/avg)
	}
}

// moved returns the fraction of partitions and of test keys whose owner
// differs between a and b.
func moved(a, b *Ring) (parts, keys float64) {
	n := 0
	for p := range a.Partitions() {
		if a.PartitionOwner(p).Name != b.PartitionOwner(p).Name {
			n++
		}
	}
	ka, kb := ownerNames(a), ownerNames(b)
	k := 0
	for i := range ka {
		if ka[i] != kb[i] {
			k++
		}
	}
	return float64(n) / float64(a.Partitions()), float64(k) / numKeys
}

// TestAddMember_movesAboutAQuarter: going from 3 to 4 members moves about
// 1/4 of partitions and keys; larger clusters move little more than the
// ideal 1/(n+1).
func TestAddMember_movesAboutAQuarter(t *testing.T) {
	all := cluster(51)
	for _, n := range []int{3, 10, 50} {
		before, after := mustNew(t, all[:n], Config{}), mustNew(t, all[:n+1], Config{})
		parts, keys := moved(before, after)
		ideal := 1 / float64(n+1)
		toNew := float64(after.PartitionCounts()[all[n].Name]) / float64(after.Partitions())
		t.Logf("%d -> %d members: %.3f of partitions (%.3f to the new member) and %.3f of %d keys change owner (ideal %.3f)",
			n, n+1, parts, toNew, keys, numKeys, ideal)
		if n == 3 && (parts < 0.15 || parts > 0.40 || keys < 0.15 || keys > 0.40) {
			t.Errorf("3 -> 4 moved %.3f of partitions, %.3f of keys; want both in [0.15, 0.40]", parts, keys)
		}
		if parts > 3*ideal || math.Abs(parts-keys) > 0.05 {
			t.Errorf("%d -> %d moved %.3f of partitions and %.3f of keys; want at most %.3f and about equal", n, n+1, parts, keys, 3*ideal)
		}
	}
}

// TestNew_scales1to100: the default Config places 1 to 100 members without
// error or panic, within the load bound, and gives every member partitions.
// Every size is built, except under -race (see raceEnabled), where the sizes
// are 1..12 and a spread up to 100.
func TestNew_scales1to100(t *testing.T) {
	all := cluster(100)
	for n := 1; n <= len(all); n++ {
		if raceEnabled && n > 12 && !slices.Contains([]int{17, 25, 33, 50, 64, 99, 100}, n) {
			continue
		}
		r := mustNew(t, all[:n], Config{})
		bound := int(maxLoad(DefaultPartitionCount, n, DefaultLoad))
		sum := 0
		for name, c := range r.PartitionCounts() {
			if c < 1 || c > bound {
				t.Errorf("n=%d: %s owns %d partitions, want 1..%d", n, name, c, bound)
			}
			sum += c
		}
		if r.Len() != n || sum != DefaultPartitionCount {
			t.Errorf("n=%d: Len %d, %d partitions owned", n, r.Len(), sum)
		}
	}
}

// TestNew_empty: no members is a valid ring that owns nothing.
func TestNew_empty(t *testing.T) {
	for _, ms := range [][]Member{nil, {}} {
		r := mustNew(t, ms, Config{})
		if m, ok := r.Owner([]byte("k")); ok || m != (Member{}) {
			t.Errorf("Owner = %+v, %v; want zero, false", m, ok)
		}
		if got := r.Owners([]byte("k"), 3); got != nil {
			t.Errorf("Owners = %v", got)
		}
		if m := r.PartitionOwner(0); m != (Member{}) {
			t.Errorf("PartitionOwner(0) = %+v", m)
		}
		if r.Len() != 0 || len(r.Members()) != 0 || len(r.PartitionCounts()) != 0 || r.Identity() == "" {
			t.Errorf("empty ring: Len %d, Members %v, counts %v, identity %q", r.Len(), r.Members(), r.PartitionCounts(), r.Identity())
		}
		if p := r.Partition([]byte("k")); p < 0 || p >= DefaultPartitionCount {
			t.Errorf("Partition = %d", p)
		}
	}
}

// TestNew_rejects: bad members and configs are errors, never panics.
func TestNew_rejects(t *testing.T) {
	three := cluster(3)
	with := func(i int, f func(*Member)) []Member {
		ms := slices.Clone(three)
		f(&ms[i])
		return ms
	}
	for _, tc := range []struct {
		name    string
		members []Member
		cfg     Config
		want    string
	}{
		{"duplicate name", with(1, func(m *Member) { m.Name = "cached-0" }), Config{}, `two members are named "cached-0"`},
		{"empty name", with(0, func(m *Member) { m.Name = "" }), Config{}, "empty Name"},
		{"space in name", with(0, func(m *Member) { m.Name = "a b" }), Config{}, "space or control"},
		{"control in addr", with(0, func(m *Member) { m.Addr = "a\nb" }), Config{}, "space or control"},
		{"DEL in admin", with(0, func(m *Member) { m.Admin = "a\x7f" }), Config{}, "space or control"},
		{"dash addr", with(0, func(m *Member) { m.Addr = "-" }), Config{}, `may not be "-"`},
		{"long name", with(0, func(m *Member) { m.Name = strings.Repeat("x", 256) }), Config{}, "longer than 255"},
		{"negative partitions", three, Config{PartitionCount: -1}, "PartitionCount -1"},
		{"too many partitions", three, Config{PartitionCount: MaxPartitionCount + 1}, "PartitionCount 65537"},
		{"fewer partitions than members", three, Config{PartitionCount: 2}, "room for only 0 of 2"},
		{"replication 1", three, Config{ReplicationFactor: 1}, "ReplicationFactor 1"},
		{"negative replication", three, Config{ReplicationFactor: -3}, "ReplicationFactor -3"},
		{"replication too high", three, Config{ReplicationFactor: MaxReplicationFactor + 1}, "ReplicationFactor 1025"},
		{"load below 1", three, Config{Load: 0.9}, "Load 0.9"},
		{"negative load", three, Config{Load: -1}, "Load -1"},
		{"NaN load", three, Config{Load: math.NaN()}, "Load NaN"},
		{"infinite load", three, Config{Load: math.Inf(1)}, "Load +Inf"},
		{"load 1, 7 partitions on 3", three, Config{PartitionCount: 7, Load: 1}, "room for only 6 of 7"},
		{"101 members on 100 partitions", cluster(101), Config{PartitionCount: 100}, "room for only 0 of 100"},
		// toyHash ignores spaces: "1 10" and "11 0" are both 110.
		{"colliding virtual nodes", []Member{{Name: "1"}, {Name: "11"}}, Config{ReplicationFactor: 11, Hasher: toyHash{}}, "hash to the same point"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := New(tc.members, tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "ring: ") {
				t.Fatalf("New = %v, %v; want an error containing %q", r, err, tc.want)
			}
		})
	}
	// Load exactly 1 works when the members divide the partitions.
	mustNew(t, three, Config{PartitionCount: 9, Load: 1})
}

// TestValidate_matchesLibrary: New refuses a configuration exactly when
// consistent would panic on it, so validation is neither late nor
// needlessly strict.
func TestValidate_matchesLibrary(t *testing.T) {
	libPanics := func(ms []Member, cfg Config) (panicked bool) {
		defer func() { panicked = recover() != nil }()
		newLibrary(ms, cfg)
		return false
	}
	all := cluster(6)
	refused := 0
	for partitions := 1; partitions <= 12; partitions++ {
		for n := 1; n <= len(all); n++ {
			for _, rf := range []int{2, 3} {
				for _, load := range []float64{1, 1.1, 1.25, 2} {
					cfg := Config{PartitionCount: partitions, ReplicationFactor: rf, Load: load}
					ms := all[:n]
					_, err := New(ms, cfg) // panics here would fail the test
					if want := libPanics(ms, cfg); (err != nil) != want {
						t.Errorf("P=%d n=%d RF=%d Load=%v: New error %v, consistent panics %v", partitions, n, rf, load, err, want)
					}
					if err != nil {
						refused++
					}
				}
			}
		}
	}
	if refused == 0 || refused == 12*len(all)*2*4 {
		t.Fatalf("New refused %d of the configurations: the grid tests nothing", refused)
	}
	t.Logf("New refused %d of %d configurations, each one consistent panics on", refused, 12*len(all)*2*4)
}

// toyHash makes ownership computable by hand. Text of digits and spaces is
// the number its digits spell: key "13" is 13 and virtual node 1 of member
// "3" ("3 1") is 31. Anything else is consistent's 8-byte little-endian
// partition number p, placed at 10p.
type toyHash struct{}

func (toyHash) Sum64(b []byte) uint64 {
	var n uint64
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			n = n*10 + uint64(c-'0')
		case c != ' ':
			var p [8]byte
			copy(p[:], b)
			return 10 * binary.LittleEndian.Uint64(p[:])
		}
	}
	return n
}

// TestToyHash_byHand works a small ring out by hand. Members "1", "2" and "3"
// have virtual nodes at 10, 11, 20, 21, 30, 31; partitions 0..4 sit at 0, 10,
// 20, 30, 40; each member may own ceil(floor(5/3) x 1.25) = 2. Partitions 0
// and 1 go to "1", 2 to "2", 3 to "3", and 4 (at 40, wrapping to 10) finds
// "1" full and spills to the next member with room, "2".
func TestToyHash_byHand(t *testing.T) {
	r := mustNew(t, []Member{{Name: "3"}, {Name: "1"}, {Name: "2"}}, Config{PartitionCount: 5, ReplicationFactor: 2, Hasher: toyHash{}})
	var table []string
	for p := range r.Partitions() {
		table = append(table, r.PartitionOwner(p).Name)
	}
	if want := []string{"1", "1", "2", "3", "2"}; !slices.Equal(table, want) {
		t.Fatalf("partition owners %v, want %v", table, want)
	}
	for _, tc := range []struct {
		key    string
		owners []string // for Owners(key, 3)
	}{
		{"10", []string{"1", "2", "3"}}, // partition 0; the circle from 0 meets 1, 2, 3
		{"7", []string{"2", "3", "1"}},  // partition 2, at 20
		{"13", []string{"3", "1", "2"}}, // partition 3, at 30
		{"9", []string{"2", "1", "3"}},  // partition 4: spilled to 2; the circle from 40 wraps to 1
	} {
		m, ok := r.Owner([]byte(tc.key))
		var got []string
		for _, o := range r.Owners([]byte(tc.key), 3) {
			got = append(got, o.Name)
		}
		if !ok || m.Name != tc.owners[0] || !slices.Equal(got, tc.owners) {
			t.Errorf("key %s: Owner %q, Owners %v; want %v", tc.key, m.Name, got, tc.owners)
		}
	}
	if got, want := r.PartitionCounts(), map[string]int{"1": 2, "2": 2, "3": 1}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("PartitionCounts = %v, want %v", got, want)
	}
}

// TestOwners: distinct members, owner first, all members when n is large.
func TestOwners(t *testing.T) {
	r := mustNew(t, cluster(10), Config{})
	for _, k := range testKeys()[:1000] {
		owner, _ := r.Owner(k)
		for _, n := range []int{1, 2, 3, 10, 11, 100} {
			got := r.Owners(k, n)
			if len(got) != min(n, 10) || got[0] != owner {
				t.Fatalf("Owners(%q, %d) = %v; want %d members, %s first", k, n, got, min(n, 10), owner.Name)
			}
			names := make(map[string]bool)
			for _, m := range got {
				names[m.Name] = true
			}
			if len(names) != len(got) {
				t.Fatalf("Owners(%q, %d) = %v has duplicates", k, n, got)
			}
			if n > 1 && n <= 10 && !slices.Equal(got[:n-1], r.Owners(k, n-1)) {
				t.Fatalf("Owners(%q, %d) does not extend Owners(%q, %d)", k, n, k, n-1)
			}
		}
		if r.Owners(k, 0) != nil || r.Owners(k, -1) != nil {
			t.Fatal("Owners with n < 1 is not nil")
		}
	}
}

// TestRing_accessors: Members is sorted and a copy, PartitionOwner handles
// out-of-range partitions.
func TestRing_accessors(t *testing.T) {
	ms := cluster(4)
	slices.Reverse(ms)
	r := mustNew(t, ms, Config{})
	got := r.Members()
	if !slices.IsSortedFunc(got, func(a, b Member) int { return strings.Compare(a.Name, b.Name) }) || r.Len() != 4 {
		t.Fatalf("Members = %v", got)
	}
	got[0].Name = "changed"
	if r.Members()[0].Name == "changed" {
		t.Fatal("Members returned the ring's own slice")
	}
	ms[0].Name = "changed" // the caller's slice is not the ring's either
	if r.Members()[3].Name != "cached-3" {
		t.Fatal("New kept the caller's slice")
	}
	for _, p := range []int{-1, r.Partitions()} {
		if m := r.PartitionOwner(p); m != (Member{}) {
			t.Errorf("PartitionOwner(%d) = %+v", p, m)
		}
	}
}

// TestOwner_noAllocs: Owner allocates nothing, also for a key converted from
// a string at the call (the key does not escape).
func TestOwner_noAllocs(t *testing.T) {
	r := mustNew(t, cluster(10), Config{})
	key := []byte("user:0000042:profile")
	s := "user:0000043:profile"
	var sink Member
	if n := testing.AllocsPerRun(1000, func() { sink, _ = r.Owner(key) }); n != 0 {
		t.Errorf("Owner allocates %v times", n)
	}
	if n := testing.AllocsPerRun(1000, func() { sink, _ = r.Owner([]byte(s)) }); n != 0 {
		t.Errorf("Owner([]byte(s)) allocates %v times", n)
	}
	if n := testing.AllocsPerRun(1000, func() { _ = r.Partition(key) }); n != 0 {
		t.Errorf("Partition allocates %v times", n)
	}
	_ = sink
}

// TestRing_concurrentReads: readers share one Ring while another is built
// and swapped in, as node and client do (run with -race).
func TestRing_concurrentReads(t *testing.T) {
	a, b := mustNew(t, cluster(3), Config{}), mustNew(t, cluster(4), Config{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for _, k := range testKeys()[:2000] {
				if _, ok := a.Owner(k); !ok {
					t.Error("no owner")
					return
				}
				a.Owners(k, 2)
				b.Owner(k)
			}
			_ = a.String()
			_ = a.PartitionCounts()
		})
	}
	wg.Wait()
}

var _ consistent.Hasher = Hasher(nil) // our Hasher is consistent's
