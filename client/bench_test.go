package client_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/hotcache/hotcache/client"
	"github.com/hotcache/hotcache/internal/memcachedtest"
)

// BenchmarkVsGomemcache runs Get and Set with 1 and 64 goroutines through
// this client and through github.com/bradfitz/gomemcache, against the same
// memcached, in one run:
//
//	go test -run '^$' -bench . -benchmem ./client/
//
// Ours runs with its defaults (2 pipelined connections per server);
// gomemcache may keep 64 idle connections, so that it never redials under 64
// goroutines (its default of 2 idle would make it churn).
// Values are 100 bytes; keys are drawn from 1000, all present.
func BenchmarkVsGomemcache(b *testing.B) {
	addr := memcachedtest.Start(b)
	ours, err := client.New(client.Config{Servers: []string{addr}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer ours.Close()
	theirs := memcache.New(addr)
	theirs.MaxIdleConns = 64
	theirs.Timeout = time.Second
	defer theirs.Close()

	const nkeys = 1000
	keys := make([]string, nkeys)
	value := make([]byte, 100)
	ctx := context.Background()
	for i := range keys {
		keys[i] = fmt.Sprintf("bench:key:%d", i)
		if err := ours.Set(ctx, &client.Item{Key: keys[i], Value: value}); err != nil {
			b.Fatal(err)
		}
	}
	type op func(i int) error
	clients := []struct {
		name     string
		get, set op
	}{
		{"hotcache",
			func(i int) error { _, err := ours.Get(ctx, keys[i%nkeys]); return err },
			func(i int) error { return ours.Set(ctx, &client.Item{Key: keys[i%nkeys], Value: value}) }},
		{"gomemcache",
			func(i int) error { _, err := theirs.Get(keys[i%nkeys]); return err },
			func(i int) error { return theirs.Set(&memcache.Item{Key: keys[i%nkeys], Value: value}) }},
	}
	for _, opName := range []string{"Get", "Set"} {
		for _, par := range []int{1, 64} {
			for _, cl := range clients {
				f := cl.get
				if opName == "Set" {
					f = cl.set
				}
				b.Run(fmt.Sprintf("%s/goroutines=%d/%s", opName, par, cl.name), func(b *testing.B) {
					runOps(b, par, f)
				})
			}
		}
	}
}

// runOps runs f from par goroutines until b.N operations are done and
// reports the throughput and the client's CPU time per operation (user and
// system time of this process: memcached runs in its own), which is what
// decides throughput once the machine's cores are busy.
func runOps(b *testing.B, par int, f func(i int) error) {
	b.ReportAllocs()
	start, cpu0 := time.Now(), cpuTime()
	if par == 1 {
		i := 0
		for b.Loop() {
			if err := f(i); err != nil {
				b.Fatal(err)
			}
			i++
		}
	} else {
		var next atomic.Int64
		b.SetParallelism((par + 1) / 2) // GOMAXPROCS is 2 here; see docs/client.md
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := f(int(next.Add(1))); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "ops/s")
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
}

// BenchmarkVsGomemcachePaired runs the two clients in the same loop, one
// call each in turn, and reports each one's mean latency: on a shared
// machine whose load drifts, a pairing within one run is the fair
// comparison of a single goroutine's latency.
func BenchmarkVsGomemcachePaired(b *testing.B) {
	addr := memcachedtest.Start(b)
	ours, err := client.New(client.Config{Servers: []string{addr}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer ours.Close()
	theirs := memcache.New(addr)
	theirs.Timeout = time.Second
	defer theirs.Close()
	ctx := context.Background()
	value := make([]byte, 100)
	keys := make([]string, 1000)
	for i := range keys {
		keys[i] = fmt.Sprintf("bench:key:%d", i)
		if err := ours.Set(ctx, &client.Item{Key: keys[i], Value: value}); err != nil {
			b.Fatal(err)
		}
	}
	for _, opName := range []string{"Get", "Set"} {
		b.Run(opName, func(b *testing.B) {
			var tOurs, tTheirs time.Duration
			i := 0
			for b.Loop() {
				key := keys[i%len(keys)]
				i++
				t0 := time.Now()
				var e1, e2 error
				if opName == "Get" {
					_, e1 = ours.Get(ctx, key)
				} else {
					e1 = ours.Set(ctx, &client.Item{Key: key, Value: value})
				}
				t1 := time.Now()
				if opName == "Get" {
					_, e2 = theirs.Get(key)
				} else {
					e2 = theirs.Set(&memcache.Item{Key: key, Value: value})
				}
				t2 := time.Now()
				if e1 != nil || e2 != nil {
					b.Fatal(e1, e2)
				}
				tOurs, tTheirs = tOurs+t1.Sub(t0), tTheirs+t2.Sub(t1)
			}
			b.ReportMetric(float64(tOurs)/float64(b.N), "hotcache-ns/op")
			b.ReportMetric(float64(tTheirs)/float64(b.N), "gomemcache-ns/op")
			b.ReportMetric(float64(tTheirs)/float64(tOurs), "speedup")
		})
	}
}
