package client_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/hotcache/hotcache/client"
	"github.com/hotcache/hotcache/hotspot"
	"github.com/hotcache/hotcache/node"
	"github.com/hotcache/hotcache/node/nodetest"
)

// BenchmarkHotKeyWrite measures what a write to a replicated key costs
// over a write to a key no edge holds: the owner sends INVAL to every edge
// (here two clients with near caches) and waits for their ACKs before it
// applies the write. Each replicated iteration first waits (untimed) until
// the key is pushed again, so every timed write finds it replicated.
//
//	go test -run '^$' -bench HotKeyWrite -benchtime 200x ./client/
func BenchmarkHotKeyWrite(b *testing.B) {
	n := nodetest.Standalone(b, node.Config{Name: "solo",
		HotKeys: hotspot.Config{MinRate: 20, MinHot: time.Hour, MaxWriteRatio: -1, Unsampled: true}})
	edges := make([]*client.Client, 2)
	for i := range edges {
		c, err := client.New(client.Config{Seeds: []string{n.Addr()}, Name: "edge" + string(rune('a'+i)), Timeout: 5 * time.Second, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		edges[i] = c
	}
	writer := dialKV(b, n.Addr())
	ctx := context.Background()
	for _, bc := range []struct {
		name       string
		replicated bool
	}{{"cold", false}, {"replicated", true}} {
		b.Run(bc.name, func(b *testing.B) {
			key := "k-" + bc.name
			if err := writer.set(ctx, key, "v"); err != nil {
				b.Fatal(err)
			}
			for i := 0; i < b.N; i++ {
				if bc.replicated {
					b.StopTimer()
					deadline := time.Now().Add(30 * time.Second)
					for !holds(edges[0], key) || !holds(edges[1], key) {
						for range 50 { // keep it hot at the owner until both edges hold it
							if _, _, err := writer.get(ctx, key); err != nil {
								b.Fatal(err)
							}
						}
						if time.Now().After(deadline) {
							b.Fatalf("%s was not pushed to both edges within 30 s", key)
						}
					}
					b.StartTimer()
				}
				if err := writer.set(ctx, key, "v"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
