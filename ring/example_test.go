package ring_test

import (
	"fmt"
	"sync/atomic"

	"github.com/hotcache/hotcache/ring"
)

// Build a ring per membership change and publish it atomically; readers
// load the current one and never lock. The output pins the placement: if an
// upgrade of consistent or xxhash changes it, this example fails, and every
// party of a cluster must then be upgraded together.
func ExampleNew() {
	var current atomic.Pointer[ring.Ring]
	r, err := ring.New([]ring.Member{
		{Name: "cached-2", Addr: "10.0.0.3:11211", Admin: "10.0.0.3:9100"},
		{Name: "cached-0", Addr: "10.0.0.1:11211", Admin: "10.0.0.1:9100"},
		{Name: "cached-1", Addr: "10.0.0.2:11211", Admin: "10.0.0.2:9100"},
	}, ring.Config{})
	if err != nil {
		panic(err)
	}
	current.Store(r)

	owner, _ := current.Load().Owner([]byte("user:0000042:profile"))
	fmt.Println("owner:", owner.Name, owner.Addr)
	fmt.Print(current.Load())
	// Output:
	// owner: cached-2 10.0.0.3:11211
	// ring id=409fc57049028d59 members=3 partitions=4093 replication=100 load=1.25 hash=xxhash64
	// member cached-0 10.0.0.1:11211 10.0.0.1:9100 1429
	// member cached-1 10.0.0.2:11211 10.0.0.2:9100 1370
	// member cached-2 10.0.0.3:11211 10.0.0.3:9100 1294
}

// A ring travels to the edges as text and is rebuilt there; ParseText checks
// that the receiver places partitions exactly as the sender did.
func ExampleParseText() {
	r, _ := ring.New([]ring.Member{{Name: "a", Addr: "10.0.0.1:11211"}, {Name: "b", Addr: "10.0.0.2:11211"}}, ring.Config{})
	text, _ := r.MarshalText()
	edge, err := ring.ParseText(text)
	fmt.Println(err, edge.Identity() == r.Identity(), edge.Len())
	// Output: <nil> true 2
}
