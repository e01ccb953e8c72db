package client_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hotcache/hotcache/client"
	"github.com/hotcache/hotcache/internal/memcachedtest"
	"github.com/hotcache/hotcache/node"
	"github.com/hotcache/hotcache/node/nodetest"
)

// TestPipeline_concurrentCallsStayInStep hammers one server with many
// goroutines whose calls are pipelined on two connections, some of them
// abandoned by their ctx half way, and checks that every reply reaches the
// call it answers: each goroutine knows exactly what its keys hold.
func TestPipeline_concurrentCallsStayInStep(t *testing.T) {
	for _, tg := range []struct {
		name string
		addr func(t *testing.T) string
	}{
		{"cached", func(t *testing.T) string { return startNode(t).Addr() }},
		{"memcached", func(t *testing.T) string { return memcachedtest.Start(t) }},
	} {
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel()
			c := newClient(t, client.Config{Servers: []string{tg.addr(t)}, Timeout: 20 * time.Second})
			var wg sync.WaitGroup
			for g := range 24 {
				wg.Go(func() { pipelineWorker(t, c, g) })
			}
			wg.Wait()
		})
	}
}

func pipelineWorker(t *testing.T, c *client.Client, g int) {
	rng := rand.New(rand.NewPCG(uint64(g), 3))
	keys := []string{fmt.Sprintf("p%d:a", g), fmt.Sprintf("p%d:b", g), fmt.Sprintf("p%d:c", g)}
	want := map[string]string{} // "" means unknown after an abandoned call
	bg := context.Background()
	for i := range 300 {
		key := keys[rng.IntN(len(keys))]
		ctx, cancel := bg, context.CancelFunc(func() {})
		abandon := rng.IntN(8) == 0
		if abandon {
			ctx, cancel = context.WithTimeout(bg, time.Duration(rng.IntN(200))*time.Microsecond)
		}
		var err error
		switch rng.IntN(5) {
		case 0, 1:
			v := strconv.Itoa(i) + string(bytes.Repeat([]byte{'x'}, rng.IntN(3000)))
			err = c.Set(ctx, &client.Item{Key: key, Value: []byte(v)})
			if err == nil {
				want[key] = v
			} else {
				want[key] = "?"
			}
		case 2:
			var it *client.Item
			it, err = c.Get(ctx, key)
			w := want[key] // "" (or never set): deleted; "?": unknown
			miss := errors.Is(err, client.ErrCacheMiss) && !errors.As(err, new(*client.NodeError))
			switch {
			case w == "?":
			case err == nil && (string(it.Value) != w || it.Key != key):
				t.Errorf("worker %d: Get(%q) = %q: %.20q…, want %.20q…", g, key, it.Key, it.Value, w)
			case miss && w != "":
				t.Errorf("worker %d: Get(%q) missed, want %.20q…", g, key, w)
			}
		case 3:
			var items map[string]*client.Item
			items, err = c.GetMulti(ctx, keys)
			for k, it := range items {
				if w := want[k]; w != "?" && string(it.Value) != w {
					t.Errorf("worker %d: GetMulti[%q] = %.20q…, want %.20q…", g, k, it.Value, w)
				}
			}
		case 4:
			err = c.Delete(ctx, key)
			if err == nil || errors.Is(err, client.ErrCacheMiss) && !errors.As(err, new(*client.NodeError)) {
				want[key], err = "", nil
			} else {
				want[key] = "?"
			}
		}
		cancel()
		if err != nil && !errors.Is(err, client.ErrCacheMiss) && !(abandon && errors.Is(err, context.DeadlineExceeded)) {
			t.Errorf("worker %d op %d: %v", g, i, err)
			return
		}
	}
}

// TestInFlightBound: against a server that never answers, at most
// MaxInFlightPerServer requests are ever sent; the other calls wait under
// their ctx and fail with its error, so memory stays bounded.
func TestInFlightBound(t *testing.T) {
	addr, received := wedgedServer(t)
	const bound = 4
	c := newClient(t, client.Config{Servers: []string{addr}, MaxInFlightPerServer: bound, Timeout: time.Minute})
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := range 100 {
		wg.Go(func() { errs <- c.Set(ctx, &client.Item{Key: fmt.Sprint("k", i), Value: []byte("v")}) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("a call to a wedged server: err = %v, want the ctx's deadline", err)
		}
	}
	per := int64(len("set k00 0 0 1\r\nv\r\n"))
	if n := received.Load(); n > bound*per {
		t.Errorf("the server received %d bytes, more than %d requests' worth", n, bound)
	}
}

// TestPipe_serverClosedIdleConnections: a server that closes idle
// connections (memcached's and our -idle-timeout) must not fail the next
// call: the client notices the close before sending and dials again.
func TestPipe_serverClosedIdleConnections(t *testing.T) {
	n := nodetest.Standalone(t, node.Config{Name: "solo", IdleTimeout: 300 * time.Millisecond})
	c := newClient(t, client.Config{Servers: []string{n.Addr()}})
	ctx := context.Background()
	for i := range 3 {
		if err := c.Set(ctx, &client.Item{Key: "k", Value: []byte("v")}); err != nil {
			t.Fatalf("set %d: %v", i, err)
		}
		time.Sleep(time.Second) // past the server's idle timeout: the scenario itself
	}
	if _, err := c.Get(ctx, "k"); err != nil {
		t.Fatalf("get after idling: %v", err)
	}
}
