package client_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hotcache/hotcache/client"
)

// wedgedServer accepts connections and reads requests but never answers, as
// a server stopped in a debugger would. It counts the bytes it receives.
func wedgedServer(t *testing.T) (addr string, received *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	received = new(atomic.Int64)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() {
				buf := make([]byte, 4096)
				for {
					n, err := c.Read(buf)
					received.Add(int64(n))
					if err != nil {
						return
					}
				}
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String(), received
}

// fakeClock is a settable clock for backoffs.
type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }
func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}

// TestServerDown_markedDownAndProbed: a server that stops answering costs
// FailureThreshold timeouts; then calls fail at once, without a byte sent,
// until the jittered backoff ends and a single call probes it.
func TestServerDown_markedDownAndProbed(t *testing.T) {
	addr, received := wedgedServer(t)
	clk := newFakeClock()
	c := newClient(t, client.Config{
		Servers: []string{addr}, Timeout: 100 * time.Millisecond, FailureThreshold: 3,
		BackoffBase: time.Second, BackoffCap: 4 * time.Second,
		Now: clk.Now, Rand: func() float64 { return 0.5 },
	})
	ctx := context.Background()
	for i := range 3 {
		err := c.Set(ctx, &client.Item{Key: "k", Value: []byte("v")})
		var ne *client.NodeError
		if !errors.As(err, &ne) || ne.Addr != addr || ne.Op != "set" || errors.Is(err, client.ErrServerDown) {
			t.Fatalf("call %d to a wedged server: err = %v, want a *NodeError naming %s", i, err, addr)
		}
	}
	waitFor(t, "the server to receive the three requests", func() (bool, any) { n := received.Load(); return n >= int64(3*len("set k 0 0 1\r\nv\r\n")), n })
	sent := received.Load()

	start := time.Now()
	for range 100 {
		err := c.Set(ctx, &client.Item{Key: "k", Value: []byte("v")})
		if !errors.Is(err, client.ErrServerDown) {
			t.Fatalf("call to a server marked down: err = %v, want ErrServerDown", err)
		}
		_, err = c.Get(ctx, "k")
		if !errors.Is(err, client.ErrServerDown) || !errors.Is(err, client.ErrCacheMiss) {
			t.Fatalf("get from a server marked down: err = %v, want ErrServerDown answered as a miss", err)
		}
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("200 calls to a down server took %v; they should fail at once", d)
	}
	if n := received.Load(); n != sent {
		t.Errorf("the down server received %d more bytes", n-sent)
	}

	clk.Advance(500*time.Millisecond - time.Nanosecond) // backoff: 0.5 × 1s
	if err := c.Delete(ctx, "k"); !errors.Is(err, client.ErrServerDown) {
		t.Fatalf("call just before the backoff ends: err = %v, want ErrServerDown", err)
	}
	clk.Advance(time.Nanosecond)
	err := c.Delete(ctx, "k") // the probe: sent, and it times out
	if errors.Is(err, client.ErrServerDown) || !errors.As(err, new(*client.NodeError)) {
		t.Fatalf("the probe: err = %v, want a timeout", err)
	}
	waitFor(t, "the probe to arrive", func() (bool, any) { n := received.Load(); return n > sent, n })
	// The failed probe doubles the backoff: 0.5 × 2s.
	clk.Advance(time.Second - time.Nanosecond)
	if err := c.Delete(ctx, "k"); !errors.Is(err, client.ErrServerDown) {
		t.Fatalf("after a failed probe: err = %v, want ErrServerDown", err)
	}
}

// TestFailover_getFromNextOwner: with FailoverNextOwner a get whose owner is
// unreachable is asked of the next server on the ring; with the default it
// is a miss that names the node, and writes return a *NodeError.
func TestFailover_getFromNextOwner(t *testing.T) {
	up := startNode(t).Addr()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := ln.Addr().String()
	ln.Close() // nothing listens there now: dials are refused
	ctx := context.Background()
	next := newClient(t, client.Config{Servers: []string{up, down}, GetFailover: client.FailoverNextOwner})
	miss := newClient(t, client.Config{Servers: []string{up, down}})

	var key string // a key the down server owns
	for i := 0; key == ""; i++ {
		k := "fo" + string(rune('a'+i%26)) + string(rune('a'+i/26%26))
		if m, _ := next.Ring().Owner([]byte(k)); m.Addr == down {
			key = k
		}
	}
	// The value lives on the next owner (as if the cluster had moved it there).
	direct := newClient(t, client.Config{Servers: []string{up}})
	if err := direct.Set(ctx, &client.Item{Key: key, Value: []byte("from-next")}); err != nil {
		t.Fatal(err)
	}
	if it, err := next.Get(ctx, key); err != nil || string(it.Value) != "from-next" {
		t.Errorf("FailoverNextOwner: Get = %v, %v; want the next owner's value", it, err)
	}
	if got, err := next.GetMulti(ctx, []string{key}); err == nil || len(got) != 1 {
		t.Errorf("FailoverNextOwner: GetMulti = %v, %v; want the value and an error naming the failed node", got, err)
	}
	_, err = miss.Get(ctx, key)
	var ne *client.NodeError
	if !errors.Is(err, client.ErrCacheMiss) || !errors.As(err, &ne) || ne.Addr != down {
		t.Errorf("FailoverMiss: err = %v, want a miss naming %s", err, down)
	}
	err = miss.Set(ctx, &client.Item{Key: key, Value: []byte("x")})
	if !errors.As(err, &ne) || ne.Addr != down || errors.Is(err, client.ErrCacheMiss) {
		t.Errorf("Set to a down owner: err = %v, want a *NodeError naming %s", err, down)
	}
}
