package ring

import (
	"fmt"
	"testing"

	"github.com/hotcache/hotcache/internal/workload"
)

// benchKeys are 1024 canonical workload keys, cycled by the lookups.
func benchKeys() [][]byte {
	ks := make([][]byte, 1024)
	for i := range ks {
		ks[i] = workload.AppendKey(nil, i*7919)
	}
	return ks
}

func BenchmarkOwner(b *testing.B) {
	r := mustNew(b, cluster(10), Config{})
	keys := benchKeys()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, ok := r.Owner(keys[i&1023]); !ok {
			b.Fatal("no owner")
		}
		i++
	}
}

// BenchmarkOwner_library is consistent's LocateKey on the same ring, for
// comparison: a read lock, a map lookup and an interface conversion.
func BenchmarkOwner_library(b *testing.B) {
	r := mustNew(b, cluster(10), Config{})
	lib := newLibrary(r.members, r.cfg)
	keys := benchKeys()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		lib.LocateKey(keys[i&1023])
		i++
	}
}

func BenchmarkOwners3(b *testing.B) {
	r := mustNew(b, cluster(10), Config{})
	keys := benchKeys()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		r.Owners(keys[i&1023], 3)
		i++
	}
}

func BenchmarkNew(b *testing.B) {
	for _, n := range []int{3, 100} {
		ms := cluster(n)
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := New(ms, Config{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
