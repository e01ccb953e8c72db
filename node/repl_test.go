package node_test

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hotcache/hotcache/hotspot"
	"github.com/hotcache/hotcache/node"
	"github.com/hotcache/hotcache/node/nodetest"
	"github.com/hotcache/hotcache/protocol"
)

// replNode is a standalone node whose analyzer finds a key hot after a few
// dozen reads, with a short lease, so tests see pushes, renewals and lease
// expiry quickly.
func replNode(t *testing.T, lease time.Duration) *node.Node {
	return nodetest.Standalone(t, node.Config{Name: "solo", LeasePeriod: lease, WriteWait: time.Minute,
		HotKeys: hotspot.Config{MinRate: 20, Unsampled: true, MinHot: 300 * time.Millisecond, MaxWriteRatio: -1}})
}

// edge is a scripted replica stream: the test reads events and writes
// messages itself.
type edge struct {
	t    *testing.T
	c    net.Conn
	r    *bufio.Reader
	seq  uint64
	open time.Time // when the stream was opened (its first stamp)
}

func openEdge(t *testing.T, addr string, ringOnly bool) *edge {
	t.Helper()
	c, r := dialWatch(t, addr)
	c.SetDeadline(time.Now().Add(60 * time.Second))
	e := &edge{t: t, c: c, r: r, open: time.Now()}
	b, _ := protocol.AppendWatchOpen(nil, protocol.WatchOpen{Name: "edge", Stamp: 0, RingOnly: ringOnly})
	c.Write(b)
	if ev := e.next(); ev.Kind != protocol.WatchRing {
		t.Fatalf("first event %v, want RING", ev.Kind)
	}
	return e
}

func (e *edge) next() protocol.WatchEvent {
	e.t.Helper()
	ev, err := protocol.ReadWatchEvent(e.r, 0)
	if err != nil {
		e.t.Fatalf("watch stream: %v", err)
	}
	if ev.Seq != e.seq+1 {
		e.t.Fatalf("event %d after %d", ev.Seq, e.seq)
	}
	e.seq = ev.Seq
	return ev
}

// until reads events until one of kind for key arrives, acknowledging
// invalidations and cools on the way.
func (e *edge) until(kind protocol.WatchEventKind, key string) protocol.WatchEvent {
	e.t.Helper()
	for {
		ev := e.next()
		if ev.Kind == kind && ev.Key == key {
			return ev
		}
		if ev.Kind == protocol.WatchInval || ev.Kind == protocol.WatchCool {
			e.send(protocol.WatchMessage{Kind: protocol.WatchAck, Seq: ev.Seq})
		}
	}
}

func (e *edge) send(m protocol.WatchMessage) {
	b, err := protocol.AppendWatchMessage(nil, &m)
	if err != nil {
		e.t.Fatal(err)
	}
	e.c.Write(b)
}

// heat reads key through c until stop is closed.
func heat(c *conn, key string, stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		default:
		}
		c.send(strings.Repeat("get "+key+"\r\n", 20))
		for range 20 {
			for c.line() != "END" {
			}
		}
	}
}

// TestReplication_pushInvalidateRenew follows one key through its life as
// a replica: pushed with its value once hot, renewed from the edge's latest
// stamp on every PING, and invalidated before a write, which is applied and
// acknowledged only after the edge's ACK.
func TestReplication_pushInvalidateRenew(t *testing.T) {
	n := replNode(t, 2*time.Second)
	e := openEdge(t, n.Addr(), false)
	c := dial(t, n.Addr())
	c.set("celebrity", "v1", 0)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { defer close(done); heat(dial(t, n.Addr()), "celebrity", stop) }()
	defer func() { close(stop); <-done }()

	hot := e.until(protocol.WatchHot, "celebrity")
	if string(hot.Data) != "v1" || hot.LeaseMS != 2000 || hot.Stamp != 0 || hot.Exptime != 0 {
		t.Fatalf("HOT = %+v, want v1 with a 2000 ms lease from stamp 0", hot)
	}
	e.send(protocol.WatchMessage{Kind: protocol.WatchPing, Stamp: 777})
	if ev := e.until(protocol.WatchRenew, "celebrity"); ev.Stamp != 777 || ev.Cas != hot.Cas || ev.LeaseMS != 2000 {
		t.Fatalf("RENEW = %+v, want cas %d stamp 777", ev, hot.Cas)
	}

	// A write: the node sends INVAL and holds the reply until the ACK.
	w := dial(t, n.Addr())
	w.send("set celebrity 0 0 2\r\nv2\r\n")
	inval := e.until(protocol.WatchInval, "celebrity")
	w.c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if line, err := w.r.ReadString('\n'); err == nil {
		t.Fatalf("the write was acknowledged (%q) before the edge acknowledged its invalidation", line)
	}
	w.c.SetReadDeadline(time.Now().Add(30 * time.Second))
	w.r = bufio.NewReader(w.c)
	e.send(protocol.WatchMessage{Kind: protocol.WatchAck, Seq: inval.Seq})
	if l := w.line(); l != "STORED" {
		t.Fatalf("set after ACK: %q", l)
	}
	// Still hot: pushed again, with the new value.
	if hot2 := e.until(protocol.WatchHot, "celebrity"); string(hot2.Data) != "v2" || hot2.Cas == hot.Cas {
		t.Fatalf("re-push = %+v, want v2 with a new cas", hot2)
	}
	st := hotKeysStats(t, c)
	if st["invalidations"] != "1" || st["promotions"] != "2" {
		t.Errorf("stats hotkeys = %v, want 1 invalidation and 2 promotions", st)
	}
}

// TestReplication_writeWaitsOutLease checks the bound on a write to a key
// whose edge never acknowledges: the write waits until the lease the edge
// may still be using has certainly ended, and no longer than a little
// beyond it. The edge's lease runs from its stamp (0, sent at open), so
// the write may not complete before open + lease.
func TestReplication_writeWaitsOutLease(t *testing.T) {
	const lease = 700 * time.Millisecond
	for _, tc := range []struct {
		name  string
		close bool // close the stream after the HOT instead of keeping it silent
	}{{"silent edge", false}, {"broken stream", true}} {
		t.Run(tc.name, func(t *testing.T) {
			n := replNode(t, lease)
			e := openEdge(t, n.Addr(), false)
			dial(t, n.Addr()).set("k", "v1", 0)
			stop, done := make(chan struct{}), make(chan struct{})
			go func() { defer close(done); heat(dial(t, n.Addr()), "k", stop) }()
			e.until(protocol.WatchHot, "k")
			close(stop)
			<-done
			if tc.close {
				e.c.Close()
			}
			w := dial(t, n.Addr())
			if l := w.cmd("set k 0 0 2\r\nv2"); l != "STORED" {
				t.Fatalf("set: %q", l)
			}
			if since := time.Since(e.open); since < lease {
				t.Fatalf("write acknowledged %v after the edge's stamp, inside its %v lease", since, lease)
			}
			if v, _ := w.get("k"); v != "v2" {
				t.Errorf("get after write = %q", v)
			}
		})
	}
}

// TestReplication_writeRefusedPastWriteWait checks the other bound: a write
// that would wait longer than WriteWait for an edge that does not
// acknowledge is refused at once, so that it cannot outlive its sender's
// timeout and land after the sender's retry; once the edge's lease has
// run out, writes go through.
func TestReplication_writeRefusedPastWriteWait(t *testing.T) {
	const lease = 3 * time.Second
	n := nodetest.Standalone(t, node.Config{Name: "solo", LeasePeriod: lease, WriteWait: 100 * time.Millisecond,
		HotKeys: hotspot.Config{MinRate: 20, Unsampled: true, MinHot: 300 * time.Millisecond, MaxWriteRatio: -1}})
	e := openEdge(t, n.Addr(), false)
	dial(t, n.Addr()).set("k", "v1", 0)
	stop, done := make(chan struct{}), make(chan struct{})
	go func() { defer close(done); heat(dial(t, n.Addr()), "k", stop) }()
	e.until(protocol.WatchHot, "k")
	close(stop)
	<-done
	// A fresh stamp: the edge may use the replica for a lease from now.
	pinged := time.Now()
	e.send(protocol.WatchMessage{Kind: protocol.WatchPing, Stamp: 1})
	e.until(protocol.WatchRenew, "k")
	w := dial(t, n.Addr())
	if l := w.cmd("set k 0 0 2\r\nv2"); l != "SERVER_ERROR replicas of this key are still being invalidated; retry" {
		t.Fatalf("set while the edge holds a replica and is silent: %q", l)
	}
	if v, _ := w.get("k"); v != "v1" {
		t.Fatalf("get after the refused write = %q, want v1", v)
	}
	waitFor(t, 30*time.Second, "a write once the edge's lease has run out", func() bool {
		return w.cmd("set k 0 0 2\r\nv3") == "STORED"
	})
	if since := time.Since(pinged); since < lease {
		t.Fatalf("write acknowledged %v after the edge's stamp, inside its %v lease", since, lease)
	}
	if st := hotKeysStats(t, w); st["write_refused"] == "0" {
		t.Errorf("stats hotkeys write_refused = %q, want the refusals counted", st["write_refused"])
	}
}

// TestReplication_edgeHitsKeepKeyHot: once the node stops seeing reads
// (the edge answers them), the edge's HITS reports keep the key hot; when
// they stop, the key cools and the edge is told with an acknowledged COOL.
func TestReplication_edgeHitsKeepKeyHot(t *testing.T) {
	n := replNode(t, 2*time.Second)
	e := openEdge(t, n.Addr(), false)
	c := dial(t, n.Addr())
	c.set("k", "v", 0)
	stop, done := make(chan struct{}), make(chan struct{})
	go func() { defer close(done); heat(dial(t, n.Addr()), "k", stop) }()
	e.until(protocol.WatchHot, "k")
	close(stop)
	<-done

	// Report 100 reads per 100 ms for 2 s (far past MinHot and the decay
	// time): no COOL may arrive meanwhile.
	events := make(chan protocol.WatchEvent, 1024)
	go func() {
		for {
			ev, err := protocol.ReadWatchEvent(e.r, 0)
			if err != nil {
				close(events)
				return
			}
			events <- ev
		}
	}()
	for slice := range uint64(20) {
		e.send(protocol.WatchMessage{Kind: protocol.WatchHits, Slice: slice, Hits: []protocol.KeyHits{{Key: "k", N: 100}}})
		time.Sleep(100 * time.Millisecond) // the report's pace, not a wait for a condition
		for len(events) > 0 {
			if ev := <-events; ev.Kind == protocol.WatchCool {
				t.Fatalf("COOL while the edge reported 1000 reads/s: %+v", ev)
			}
		}
	}
	if st := hotKeysStats(t, c); st["edge_hits"] != "2000" {
		t.Errorf("edge_hits = %q, want 2000", st["edge_hits"])
	}
	// Silence: the key cools.
	deadline := time.After(30 * time.Second)
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatal("stream closed before COOL")
			}
			if ev.Kind == protocol.WatchCool && ev.Key == "k" {
				e.send(protocol.WatchMessage{Kind: protocol.WatchAck, Seq: ev.Seq})
				return
			}
		case <-deadline:
			t.Fatal("no COOL 30 s after the reads stopped")
		}
	}
}

// TestReplication_ringOnlyStreamGetsNoReplicas: a ring-only stream sees
// the ring and PONGs, never hot items, and writes do not wait for it.
func TestReplication_ringOnlyStreamGetsNoReplicas(t *testing.T) {
	n := replNode(t, 2*time.Second)
	ringOnly := openEdge(t, n.Addr(), true)
	full := openEdge(t, n.Addr(), false)
	dial(t, n.Addr()).set("k", "v1", 0)
	stop, done := make(chan struct{}), make(chan struct{})
	go func() { defer close(done); heat(dial(t, n.Addr()), "k", stop) }()
	full.until(protocol.WatchHot, "k")
	close(stop)
	<-done
	ringOnly.send(protocol.WatchMessage{Kind: protocol.WatchPing, Stamp: 5})
	if ev := ringOnly.next(); ev.Kind != protocol.WatchPong || ev.Stamp != 5 {
		t.Fatalf("ring-only stream after PING: %+v, want only the PONG", ev)
	}
	// The full stream acknowledges promptly; the write must not wait for
	// the ring-only one (whose edge never answers anything).
	go func() {
		for {
			ev, err := protocol.ReadWatchEvent(full.r, 0)
			if err != nil {
				return
			}
			if ev.Kind == protocol.WatchInval || ev.Kind == protocol.WatchCool {
				b, _ := protocol.AppendWatchMessage(nil, &protocol.WatchMessage{Kind: protocol.WatchAck, Seq: ev.Seq})
				full.c.Write(b)
			}
		}
	}()
	if l := dial(t, n.Addr()).cmd("delete k"); l != "DELETED" {
		t.Fatalf("delete: %q", l)
	}
}

func hotKeysStats(t *testing.T, c *conn) map[string]string {
	t.Helper()
	c.send("stats hotkeys\r\n")
	out := map[string]string{}
	for {
		l := c.line()
		if l == "END" {
			return out
		}
		if f := strings.Fields(l); len(f) == 3 && f[0] == "STAT" {
			out[f[1]] = f[2]
		}
	}
}
