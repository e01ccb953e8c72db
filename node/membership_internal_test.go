package node

import (
	"io"
	"testing"
)

// TestRefuteWatcher: only a refuted death fences the node's partitions; a
// refuted suspicion (the node stayed in every ring) does not.
func TestRefuteWatcher(t *testing.T) {
	for _, tc := range []struct {
		line string
		want bool
	}{
		{"[WARN] memberlist: Refuting a suspect message (from: n1)", false},
		{"[WARN] memberlist: Refuting an alive message for 'n0' (127.0.0.1:7946)", false},
		{"[DEBUG] memberlist: Stream connection from=127.0.0.1:5555", false},
		{"[WARN] memberlist: Refuting a dead message (from: n1)", true},
	} {
		m := &membership{}
		w := refuteWatcher{m: m, next: io.Discard}
		if _, err := w.Write([]byte(tc.line)); err != nil {
			t.Fatal(err)
		}
		if got := m.refuted.Load(); got != tc.want {
			t.Errorf("%q: refuted = %v, want %v", tc.line, got, tc.want)
		}
	}
}

// TestRejoinedFromMinority: a node that lost half or more of its cluster
// fences everything when members come back; crashes and leaves on the
// majority side never do.
func TestRejoinedFromMinority(t *testing.T) {
	for _, tc := range []struct {
		name  string
		sizes []int // ring sizes in order, from the first ring
		fence []bool
	}{
		{"partition of one in three, healed", []int{3, 1, 3}, []bool{false, true}},
		{"healed one member at a time", []int{3, 1, 2, 3}, []bool{false, true, false}},
		{"crash and restart on the majority side", []int{3, 2, 3}, []bool{false, false}},
		{"scale down one by one, then up", []int{6, 5, 4, 3, 4}, []bool{false, false, false, false}},
		{"two crashes, then back", []int{3, 2, 1, 2}, []bool{false, false, true}},
		{"half of four", []int{4, 2, 4}, []bool{false, true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := &view{}
			for i := 1; i < len(tc.sizes); i++ {
				if got := v.rejoinedFromMinority(tc.sizes[i-1], tc.sizes[i]); got != tc.fence[i-1] {
					t.Errorf("%d -> %d: fence = %v, want %v", tc.sizes[i-1], tc.sizes[i], got, tc.fence[i-1])
				}
			}
		})
	}
}
