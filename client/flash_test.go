package client_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hotcache/hotcache/client"
	"github.com/hotcache/hotcache/node"
	"github.com/hotcache/hotcache/node/nodetest"
)

// BenchmarkFlashCrowd measures, with the production defaults of detection
// and leases, how fast a cold key that suddenly takes most of the traffic
// is answered at the edge, and how fast it cools once the crowd is gone:
//
//   - to_edge: from the start of the crowd to the first read the client
//     answered from its near cache;
//   - to_cool: from the end of the crowd to the client's receipt of the
//     key's COOL.
//
// A 3-node cluster serves a background of uniform reads over 10,000 keys
// from 4 goroutines; each trial then points 16 goroutines at one fresh key
// for 3 s. The figures are reported as metrics (p50 and max over the
// trials), never asserted: run with -benchtime=1x (make bench-flash).
func BenchmarkFlashCrowd(b *testing.B) {
	cl := nodetest.Start(b, 3, func(i int, cfg *node.Config) {
		cfg.LeasePeriod = 0 // the production default (2s), not nodetest's short one
	})
	c, err := client.New(client.Config{Seeds: seeds(cl), Name: "flash", Timeout: 5 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	for i := range 10_000 {
		if err := c.Set(ctx, &client.Item{Key: fmt.Sprintf("bg:%d", i), Value: []byte("background")}); err != nil {
			b.Fatal(err)
		}
	}
	stopBG := make(chan struct{})
	var bg sync.WaitGroup
	for g := range 4 {
		bg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			for {
				select {
				case <-stopBG:
					return
				default:
				}
				c.Get(ctx, fmt.Sprintf("bg:%d", rng.IntN(10_000)))
			}
		})
	}
	defer func() { close(stopBG); bg.Wait() }()

	trials := max(b.N, 10)
	var toEdge, toCool []time.Duration
	b.ResetTimer()
	for trial := range trials {
		key := fmt.Sprintf("crowd:%d", trial)
		if err := c.Set(ctx, &client.Item{Key: key, Value: []byte("celebrity")}); err != nil {
			b.Fatal(err)
		}
		base := c.EdgeStats()
		start := time.Now()
		var firstEdge atomic.Int64 // nanoseconds after start, 0 until seen
		stop := make(chan struct{})
		var crowd sync.WaitGroup
		for range 16 {
			crowd.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					c.Get(ctx, key)
					if firstEdge.Load() == 0 && c.EdgeStats().Hits > base.Hits {
						firstEdge.CompareAndSwap(0, int64(time.Since(start)))
					}
				}
			})
		}
		time.Sleep(3 * time.Second) // the crowd's length: the experiment, not a wait for a condition
		close(stop)
		crowd.Wait()
		end := time.Now()
		if firstEdge.Load() == 0 {
			b.Fatalf("trial %d: no read of %s was answered at the edge during a 3 s crowd", trial, key)
		}
		toEdge = append(toEdge, time.Duration(firstEdge.Load()))
		deadline := end.Add(30 * time.Second)
		for c.EdgeStats().Cools <= base.Cools || holds(c, key) {
			if time.Now().After(deadline) {
				b.Fatalf("trial %d: %s did not cool within 30 s of the crowd's end", trial, key)
			}
			time.Sleep(time.Millisecond)
		}
		toCool = append(toCool, time.Since(end))
	}
	b.StopTimer()
	report := func(name string, ds []time.Duration) {
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		b.ReportMetric(float64(ds[len(ds)/2].Milliseconds()), name+"_p50_ms")
		b.ReportMetric(float64(ds[len(ds)-1].Milliseconds()), name+"_max_ms")
	}
	report("to_edge", toEdge)
	report("to_cool", toCool)
	b.Logf("%d trials: to_edge %v; to_cool %v", trials, toEdge, toCool)
}

// holds reports whether c holds a replica of key.
func holds(c *client.Client, key string) bool {
	for _, r := range c.Replicas() {
		if r.Key == key {
			return true
		}
	}
	return false
}
