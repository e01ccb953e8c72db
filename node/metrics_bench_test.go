package node

import (
	"testing"
	"time"

	"github.com/hotcache/hotcache/protocol"
)

// BenchmarkRequestHistogram is what Serve adds to every request: a
// time.Since and one Observe (the time.Now at its start was there before:
// its reading also gives the request's unix time). The parallel run has
// every goroutine observe the same class, the worst case: one histogram's
// counters shared by all cores.
func BenchmarkRequestHistogram(b *testing.B) {
	l := newLatency("bench")
	start := time.Now()
	b.Run("serial", func(b *testing.B) {
		for b.Loop() {
			l.request(protocol.CmdGet, time.Since(start))
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				l.request(protocol.CmdGet, time.Since(start))
			}
		})
	})
}
