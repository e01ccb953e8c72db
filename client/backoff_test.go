package client_test

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hotcache/hotcache/client"
	"github.com/hotcache/hotcache/protocol"
	"github.com/hotcache/hotcache/ring"
)

// fakeSeed is a node that serves only the watch stream, over net.Pipe, so
// that a whole fleet of clients can run inside a synctest bubble with fake
// time.
type fakeSeed struct {
	ringText []byte

	mu    sync.Mutex // guards the fields below
	up    bool
	conns []net.Conn
	dials map[int][]time.Time // per client, when it dialed the seed
}

func (f *fakeSeed) dialer(id int) func(ctx context.Context, addr string) (net.Conn, error) {
	return func(ctx context.Context, addr string) (net.Conn, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		near, far := net.Pipe()
		f.dials[id] = append(f.dials[id], time.Now())
		if !f.up {
			return nil, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
		}
		f.conns = append(f.conns, far)
		go f.serve(far)
		return near, nil
	}
}

// serve answers "watch" with the ring and every PING with a PONG. The
// clients' data connections (the ring's one member is the seed itself) just
// sit idle here.
func (f *fakeSeed) serve(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "watch ") {
		return
	}
	seq := uint64(1)
	ev, _ := protocol.AppendWatchEvent(nil, &protocol.WatchEvent{Kind: protocol.WatchRing, Seq: seq, Generation: 1, Data: f.ringText})
	if _, err := c.Write(ev); err != nil {
		return
	}
	for {
		m, err := protocol.ReadWatchMessage(r)
		if err != nil {
			return
		}
		if m.Kind == protocol.WatchPing {
			seq++
			ev, _ := protocol.AppendWatchEvent(nil, &protocol.WatchEvent{Kind: protocol.WatchPong, Seq: seq, Stamp: m.Stamp})
			if _, err := c.Write(ev); err != nil {
				return
			}
		}
	}
}

// kill drops every stream and refuses dials from now on.
func (f *fakeSeed) kill() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.up = false
	for _, c := range f.conns {
		c.Close()
	}
	f.conns = nil
}

// lockedRand is a seeded source that is safe for concurrent use.
func lockedRand(seed uint64) func() float64 {
	var mu sync.Mutex
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	return func() float64 {
		mu.Lock()
		defer mu.Unlock()
		return rng.Float64()
	}
}

// TestBackoff_redialsSpreadOverWindow: 250 clients hold a watch stream to
// the same node, which dies. With the clock faked by synctest and each
// client's randomness seeded, the instant each client redials is exact: it
// must be spread uniformly over the backoff window [0, BackoffBase), not
// bunched. The test asserts a chi-square bound over 10 buckets and a bound
// on the fullest bucket.
func TestBackoff_redialsSpreadOverWindow(t *testing.T) {
	const (
		clients = 250
		buckets = 10
		window  = time.Second // BackoffBase: the first redial waits rand × 1s
	)
	synctest.Test(t, func(t *testing.T) {
		rg, err := ring.New([]ring.Member{{Name: "n0", Addr: "seed:11211"}}, ring.Config{PartitionCount: 7, ReplicationFactor: 2})
		if err != nil {
			t.Fatal(err)
		}
		text, _ := rg.MarshalText()
		seed := &fakeSeed{ringText: text, up: true, dials: map[int][]time.Time{}}
		var cs []*client.Client
		for i := range clients {
			c, err := client.New(client.Config{
				Seeds:       []string{"seed:11211"},
				Name:        fmt.Sprint("edge-", i),
				Dial:        seed.dialer(i),
				Rand:        lockedRand(uint64(i)),
				BackoffBase: window,
				BackoffCap:  8 * window,
				Logger:      slog.New(slog.DiscardHandler),
			})
			if err != nil {
				t.Fatal(err)
			}
			cs = append(cs, c)
		}
		defer func() {
			for _, c := range cs {
				c.Close()
			}
		}()
		synctest.Wait()
		for i, c := range cs {
			if c.Ring() == nil || c.Ring().Identity() != rg.Identity() {
				t.Fatalf("client %d has no ring", i)
			}
		}
		time.Sleep(3 * time.Second) // fake time: a few heartbeats go by
		synctest.Wait()

		killed := time.Now()
		seed.kill()
		time.Sleep(4 * window) // fake time: every client redials (and fails) at least once
		synctest.Wait()

		counts := make([]int, buckets)
		var delays []time.Duration
		for i := range clients {
			var first time.Duration = -1
			for _, at := range seed.dials[i] {
				if !at.Before(killed) {
					first = at.Sub(killed)
					break
				}
			}
			if first < 0 || first >= window {
				t.Fatalf("client %d: first redial %v after the loss, want within [0, %v)", i, first, window)
			}
			delays = append(delays, first)
			counts[int(first*buckets/window)]++
		}
		expected := float64(clients) / buckets
		chi2, most := 0.0, 0
		for _, n := range counts {
			chi2 += (float64(n) - expected) * (float64(n) - expected) / expected
			most = max(most, n)
		}
		var b strings.Builder
		for i, n := range counts {
			fmt.Fprintf(&b, "\n  [%4dms, %4dms) %3d %s", i*int(window/time.Millisecond)/buckets, (i+1)*int(window/time.Millisecond)/buckets, n, strings.Repeat("#", n))
		}
		t.Logf("first redial after the node died, %d clients, window %v:%s\nchi-square %.2f (9 dof; p=0.001 critical value 27.88), fullest bucket %d (expected %.0f)",
			clients, window, b.String(), chi2, most, expected)
		if chi2 > 27.88 {
			t.Errorf("redials are not spread uniformly over the window: chi-square %.2f > 27.88", chi2)
		}
		if float64(most) > 2*expected {
			t.Errorf("fullest bucket holds %d redials, more than twice the %.0f expected", most, expected)
		}
		// The same clients without jitter would all redial at one instant:
		// the spread must also be wide in absolute terms.
		lo, hi := slices(delays)
		if hi-lo < window*8/10 {
			t.Errorf("redials span only %v of the %v window", hi-lo, window)
		}
	})
}

func slices(ds []time.Duration) (lo, hi time.Duration) {
	lo, hi = math.MaxInt64, 0
	for _, d := range ds {
		lo, hi = min(lo, d), max(hi, d)
	}
	return lo, hi
}
