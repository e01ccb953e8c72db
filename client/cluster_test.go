package client_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hotcache/hotcache/client"
	"github.com/hotcache/hotcache/node/nodetest"
	"github.com/hotcache/hotcache/ring"
)

// nodeStats sends "stats <group>" to addr and returns the STAT lines.
func nodeStats(t testing.TB, addr, group string) map[string]string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "%s\r\n", strings.TrimSpace("stats "+group))
	r := bufio.NewReader(c)
	out := map[string]string{}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("stats %s from %s: %v", group, addr, err)
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "END" {
			return out
		}
		name, value, _ := strings.Cut(strings.TrimPrefix(line, "STAT "), " ")
		out[name] = value
	}
}

func statUint(t testing.TB, m map[string]string, name string) uint64 {
	t.Helper()
	v, err := strconv.ParseUint(m[name], 10, 64)
	if err != nil {
		t.Fatalf("stat %s = %q: %v", name, m[name], err)
	}
	return v
}

func hasMember(r *ring.Ring, name string) bool {
	if r == nil {
		return false
	}
	for _, m := range r.Members() {
		if m.Name == name {
			return true
		}
	}
	return false
}

// TestCluster_routesToOwnersWithoutForwarding: in cluster mode every request
// goes straight to its key's owner, so no node ever forwards one.
func TestCluster_routesToOwnersWithoutForwarding(t *testing.T) {
	t.Parallel()
	cl := nodetest.Start(t, 3)
	c := newClient(t, client.Config{Seeds: []string{cl.Addr(2)}})
	ctx := context.Background()
	want := cl.Node(0).Ring().Identity()
	waitFor(t, "the client to learn the ring", func() (bool, any) {
		r := c.Ring()
		return r != nil && r.Identity() == want, r
	})

	const n = 10000
	owned := map[string]uint64{}
	for i := range n {
		m, _ := c.Ring().Owner([]byte(fmt.Sprint("route:", i)))
		owned[m.Name]++
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < n; i += 8 {
				key := fmt.Sprint("route:", i)
				if err := c.Set(ctx, &client.Item{Key: key, Value: []byte(key)}); err != nil {
					errs <- err
					return
				}
				if it, err := c.Get(ctx, key); err != nil || string(it.Value) != key {
					errs <- fmt.Errorf("Get(%q) = %v, %v", key, it, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for i := range cl.Len() {
		nd := cl.Node(i)
		cs, st := nodeStats(t, nd.Addr(), "cluster"), nodeStats(t, nd.Addr(), "")
		fwd, sets, gets := statUint(t, cs, "forwarded"), statUint(t, st, "cmd_set"), statUint(t, st, "get_hits")
		t.Logf("%s: owns %d of the keys, served %d sets and %d get hits, forwarded %d", nd.Name(), owned[nd.Name()], sets, gets, fwd)
		if fwd != 0 {
			t.Errorf("%s forwarded %d requests; the client should have sent every key to its owner", nd.Name(), fwd)
		}
		if sets != owned[nd.Name()] || gets != owned[nd.Name()] {
			t.Errorf("%s served %d sets and %d get hits, but owns %d of the keys", nd.Name(), sets, gets, owned[nd.Name()])
		}
	}
}

// A loadWorker writes and reads its own keys, each write a new version, and
// checks every value it reads: never one that was not written, never one
// older than the last acknowledged write.
type loadWorker struct {
	id      int
	keys    []string
	acked   map[string]int // last acknowledged version
	tried   map[string]int // last attempted version
	version int
}

type opResult struct {
	start time.Time
	err   error
}

type loadLog struct {
	mu      sync.Mutex // guards the fields below
	results []opResult
	wrong   []string
}

func (l *loadLog) add(start time.Time, err error) {
	l.mu.Lock()
	l.results = append(l.results, opResult{start, err})
	l.mu.Unlock()
}

func (w *loadWorker) run(c *client.Client, log *loadLog, stop <-chan struct{}) {
	rng := rand.New(rand.NewPCG(uint64(w.id), 7))
	for {
		select {
		case <-stop:
			return
		default:
		}
		key := w.keys[rng.IntN(len(w.keys))]
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		start := time.Now()
		if rng.IntN(2) == 0 {
			w.version++
			w.tried[key] = w.version
			err := c.Set(ctx, &client.Item{Key: key, Value: []byte(key + "=" + strconv.Itoa(w.version))})
			if err == nil {
				w.acked[key] = w.version
			}
			log.add(start, err)
		} else {
			it, err := c.Get(ctx, key)
			if errors.Is(err, client.ErrCacheMiss) && !errors.As(err, new(*client.NodeError)) {
				err = nil // a miss is allowed across ownership changes
			}
			if err == nil && it != nil {
				v, perr := strconv.Atoi(strings.TrimPrefix(string(it.Value), key+"="))
				if perr != nil || !strings.HasPrefix(string(it.Value), key+"=") || v < w.acked[key] || v > w.tried[key] {
					log.mu.Lock()
					log.wrong = append(log.wrong, fmt.Sprintf("%s read %q; last acknowledged version %d, last tried %d", key, it.Value, w.acked[key], w.tried[key]))
					log.mu.Unlock()
				}
			}
			log.add(start, err)
		}
		cancel()
	}
}

// TestCluster_followsRingUnderLoad: while a client runs a steady load, a
// node joins and then one (the client's seed, whose watch stream it holds)
// is killed. The client follows each new ring within the detection time,
// errors stop once it has, and no read ever returns a wrong value.
func TestCluster_followsRingUnderLoad(t *testing.T) {
	t.Parallel()
	cl := nodetest.Start(t, 3)
	c := newClient(t, client.Config{Seeds: []string{cl.Addr(0)}, Timeout: 3 * time.Second})
	want := cl.Node(0).Ring().Identity()
	waitFor(t, "the client to learn the ring", func() (bool, any) {
		r := c.Ring()
		return r != nil && r.Identity() == want, r
	})

	log := &loadLog{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for id := range 4 {
		w := &loadWorker{id: id, acked: map[string]int{}, tried: map[string]int{}}
		for k := range 25 {
			w.keys = append(w.keys, fmt.Sprintf("load:%d:%d", id, k))
		}
		wg.Go(func() { w.run(c, log, stop) })
	}
	stopLoad := func() {
		select {
		case <-stop:
		default:
			close(stop)
			wg.Wait()
		}
	}
	defer stopLoad()
	opsSince := func(t0 time.Time) (ops, errs int, last error) {
		log.mu.Lock()
		defer log.mu.Unlock()
		for _, r := range log.results {
			if !r.start.Before(t0) {
				ops++
				if r.err != nil {
					errs, last = errs+1, r.err
				}
			}
		}
		return ops, errs, last
	}
	waitOps := func(what string, t0 time.Time, n int) {
		waitFor(t, what, func() (bool, any) { ops, _, _ := opsSince(t0); return ops >= n, ops })
	}
	waitOps("load to start", time.Time{}, 200)

	// A node joins.
	added := time.Now()
	i := cl.Add()
	name := cl.Node(i).Name()
	waitFor(t, "the client to route to the new node", func() (bool, any) { return hasMember(c.Ring(), name), c.Ring() })
	joinLag := time.Since(added)
	cl.WaitConverged(4)
	t.Logf("join: the client routed by a ring with %s %v after it started", name, joinLag.Round(time.Millisecond))
	if joinLag > nodetest.DetectionTime {
		t.Errorf("the client took %v to follow a join, more than %v", joinLag, nodetest.DetectionTime)
	}
	waitOps("load after the join", time.Now(), 200)

	// The seed, whose stream the client holds, dies.
	victim := cl.Node(0).Name()
	killed := time.Now()
	cl.Kill(0)
	var nodesAt, clientAt time.Time
	waitFor(t, "the client to drop the killed node", func() (bool, any) {
		now := time.Now()
		if nodesAt.IsZero() {
			all := true
			for _, n := range cl.Live() {
				all = all && !hasMember(n.Ring(), victim)
			}
			if all {
				nodesAt = now
			}
		}
		if clientAt.IsZero() && c.Ring() != nil && !hasMember(c.Ring(), victim) {
			clientAt = now
		}
		return !clientAt.IsZero() && !nodesAt.IsZero(), c.Ring()
	})
	t.Logf("kill: the nodes dropped %s after %v, the client after %v", victim,
		nodesAt.Sub(killed).Round(time.Millisecond), clientAt.Sub(killed).Round(time.Millisecond))
	if lag := clientAt.Sub(killed); lag > nodetest.DetectionTime {
		t.Errorf("the client took %v to follow the failure, more than %v", lag, nodetest.DetectionTime)
	}
	settled := clientAt.Add(time.Second) // requests already in flight at the switch may still fail
	if nodesAt.After(clientAt) {
		settled = nodesAt.Add(time.Second)
	}
	waitOps("load after the switch", settled, 500)
	stopLoad()

	totalOps, totalErrs, _ := opsSince(time.Time{})
	during, duringErrs, _ := opsSince(killed)
	after, afterErrs, last := opsSince(settled)
	t.Logf("load: %d ops, %d errors in all; %d ops from the kill on, %d errors; %d ops after the switch settled, %d errors",
		totalOps, totalErrs, during, duringErrs, after, afterErrs)
	if afterErrs > 0 {
		t.Errorf("%d of %d requests failed after the client had switched rings; last: %v", afterErrs, after, last)
	}
	for _, w := range log.wrong {
		t.Errorf("wrong value: %s", w)
	}
}
