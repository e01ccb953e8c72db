package hotspot

import (
	"testing"
)

// TestOracle_slidingWindow checks the oracle against brute force.
func TestOracle_slidingWindow(t *testing.T) {
	ids := make([]int32, 5000)
	x := uint32(1)
	for i := range ids {
		x = x*1664525 + 1013904223
		ids[i] = int32(x>>24) % 7 // 7 keys; counts over a window of 40 hover near 40/7
	}
	o := newOracle(ids, 7, 40, 6)
	for i := range ids {
		o.add(i)
		var brute [7]int32
		for j := max(0, i-39); j <= i; j++ {
			brute[ids[j]]++
		}
		for k := range int32(7) {
			if o.counts[k] != brute[k] {
				t.Fatalf("request %d key %d: count %d, want %d", i, k, o.counts[k], brute[k])
			}
			for b := range o.thr {
				if _, in := o.sets[b][k]; in != (brute[k] >= o.thr[b]) {
					t.Fatalf("request %d key %d band %d: in=%v with count %d", i, k, b, in, brute[k])
				}
			}
		}
	}
}
