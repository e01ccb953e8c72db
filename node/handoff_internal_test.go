package node

import (
	"math"
	"testing"
	"time"

	"github.com/hotcache/hotcache/ring"
)

// TestLiveUntil checks the majority arithmetic of the liveness cut-off: a
// node needs answers from a strict majority of its ring, itself included,
// and stays live until the oldest of the answers it needs is a window old.
func TestLiveUntil(t *testing.T) {
	const w = 3 * time.Second
	s := int64(time.Second)
	for _, tc := range []struct {
		name  string
		times []int64
		peers int
		want  int64
	}{
		{"alone", nil, 0, math.MaxInt64},
		{"2 nodes, no answer", nil, 1, 0},
		{"2 nodes, the peer answered at 5s", []int64{5 * s}, 1, 5*s + int64(w)},
		{"3 nodes, no answer", nil, 2, 0},
		{"3 nodes, one answer is enough", []int64{4 * s}, 2, 4*s + int64(w)},
		{"3 nodes, the latest answer counts", []int64{1 * s, 7 * s}, 2, 7*s + int64(w)},
		{"4 nodes, one answer is not enough", []int64{9 * s}, 3, 0},
		{"4 nodes, the second latest of three", []int64{2 * s, 8 * s, 5 * s}, 3, 5*s + int64(w)},
		{"5 nodes, two of four", []int64{1 * s, 6 * s, 3 * s}, 4, 3*s + int64(w)},
	} {
		if got := liveUntil(tc.times, tc.peers, w); got != tc.want {
			t.Errorf("%s: liveUntil(%v, %d) = %d, want %d", tc.name, tc.times, tc.peers, got, tc.want)
		}
	}
}

// TestAgree checks the handoff's question: every peer that answered must
// give self every pending partition; a peer that did not answer is skipped.
func TestAgree(t *testing.T) {
	mk := func(names ...string) *ring.Ring {
		var ms []ring.Member
		for _, n := range names {
			ms = append(ms, ring.Member{Name: n})
		}
		r, err := ring.New(ms, ring.Config{})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	mine := mk("a", "b", "c")
	var pending []int
	for p := range mine.Partitions() {
		if mine.PartitionOwner(p).Name == "a" {
			pending = append(pending, p)
		}
	}
	peers := []ring.Member{{Name: "b"}, {Name: "c"}}
	for _, tc := range []struct {
		name    string
		rings   []*ring.Ring
		agreeOK bool
	}{
		{"both share the ring", []*ring.Ring{mine, mine}, true},
		{"one did not answer", []*ring.Ring{mine, nil}, true},
		{"none answered", []*ring.Ring{nil, nil}, true},
		{"one still has a ring without a", []*ring.Ring{mine, mk("b", "c")}, false},
		{"one knows a fourth member", []*ring.Ring{mk("a", "b", "c", "d"), mine}, false},
	} {
		if why := agree("a", peers, tc.rings, pending); (why == "") != tc.agreeOK {
			t.Errorf("%s: agree = %q, want agreement %v", tc.name, why, tc.agreeOK)
		}
	}
	if why := agree("a", peers, []*ring.Ring{mk("b", "c"), mine}, nil); why != "" {
		t.Errorf("nothing pending: agree = %q, want agreement", why)
	}
}
