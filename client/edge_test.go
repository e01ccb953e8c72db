package client_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hotcache/hotcache/client"
	"github.com/hotcache/hotcache/protocol"
	"github.com/hotcache/hotcache/ring"
)

// The near cache against a scripted node: fakeNode speaks enough memcache
// for the client's data connections, serves the ring on ring-only watch
// streams, and lets a test push HOT, RENEW, INVAL and COOL on the replica
// streams the client opens, recording what the client sends back.

type fakeItem struct {
	flags uint32
	cas   uint64
	value []byte
}

type fakeNode struct {
	t    testing.TB
	name string
	ln   net.Listener

	gets atomic.Int64 // keys asked for by get/gets

	mu       sync.Mutex // guards the fields below
	ringText []byte
	items    map[string]fakeItem
	cas      uint64
	watches  []protocol.WatchOpen // every watch command, in order
	rings    []*fakeStream        // ring-only streams
	replicas []*fakeStream        // replica streams
	conns    []net.Conn
}

// A fakeStream is the node's end of one watch stream.
type fakeStream struct {
	conn net.Conn

	mu     sync.Mutex // guards the fields below and writes
	seq    uint64
	stamp  uint64 // the latest stamp the edge sent
	msgs   []protocol.WatchMessage
	closed bool
}

// startFakeNode listens on 127.0.0.1:0; its ring has itself as the one
// member unless the test sets another with setRing.
func startFakeNode(t testing.TB, name string) *fakeNode {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeNode{t: t, name: name, ln: ln, items: map[string]fakeItem{}}
	f.ringText = fakeRingText(t, f)
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			f.mu.Lock()
			f.conns = append(f.conns, c)
			f.mu.Unlock()
			wg.Go(func() { f.serve(c) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		f.mu.Lock()
		for _, c := range f.conns {
			c.Close()
		}
		f.mu.Unlock()
		wg.Wait()
	})
	return f
}

func (f *fakeNode) addr() string { return f.ln.Addr().String() }

// fakeRingText is the text of a ring of nodes.
func fakeRingText(t testing.TB, nodes ...*fakeNode) []byte {
	var ms []ring.Member
	for _, n := range nodes {
		ms = append(ms, ring.Member{Name: n.name, Addr: n.addr()})
	}
	r, err := ring.New(ms, ring.Config{})
	if err != nil {
		t.Fatal(err)
	}
	text, err := r.MarshalText()
	if err != nil {
		t.Fatal(err)
	}
	return text
}

// set stores an item at the node, as a set from elsewhere would.
func (f *fakeNode) set(key, value string) {
	f.mu.Lock()
	f.cas++
	f.items[key] = fakeItem{cas: f.cas, value: []byte(value)}
	f.mu.Unlock()
}

func (f *fakeNode) serve(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		fields := strings.Fields(line)
		if len(fields) == 0 {
			fmt.Fprint(c, "ERROR\r\n")
			continue
		}
		var out bytes.Buffer
		switch fields[0] {
		case "get", "gets":
			f.mu.Lock()
			for _, k := range fields[1:] {
				f.gets.Add(1)
				if it, ok := f.items[k]; ok {
					fmt.Fprintf(&out, "VALUE %s %d %d", k, it.flags, len(it.value))
					if fields[0] == "gets" {
						fmt.Fprintf(&out, " %d", it.cas)
					}
					fmt.Fprintf(&out, "\r\n%s\r\n", it.value)
				}
			}
			f.mu.Unlock()
			out.WriteString("END\r\n")
		case "set":
			n, _ := strconv.Atoi(fields[4])
			flags, _ := strconv.ParseUint(fields[2], 10, 32)
			data := make([]byte, n+2)
			if _, err := io.ReadFull(r, data); err != nil {
				return
			}
			f.mu.Lock()
			f.cas++
			f.items[fields[1]] = fakeItem{flags: uint32(flags), cas: f.cas, value: data[:n]}
			f.mu.Unlock()
			out.WriteString("STORED\r\n")
		case "delete":
			f.mu.Lock()
			_, ok := f.items[fields[1]]
			delete(f.items, fields[1])
			f.mu.Unlock()
			if ok {
				out.WriteString("DELETED\r\n")
			} else {
				out.WriteString("NOT_FOUND\r\n")
			}
		case "flush_all":
			f.mu.Lock()
			clear(f.items)
			f.mu.Unlock()
			out.WriteString("OK\r\n")
		case "mn":
			out.WriteString("MN\r\n")
		case "version":
			out.WriteString("VERSION fake\r\n")
		case "watch":
			args := make([][]byte, len(fields)-1)
			for i, a := range fields[1:] {
				args[i] = []byte(a)
			}
			open, err := protocol.ParseWatchOpen(args)
			if err != nil {
				out.WriteString("CLIENT_ERROR bad command line format\r\n")
				break
			}
			f.watch(c, r, open)
			return
		default:
			out.WriteString("ERROR\r\n")
		}
		if _, err := c.Write(out.Bytes()); err != nil {
			return
		}
	}
}

// watch runs one stream: the ring first (as a node does on every stream),
// then PONG for every PING; every message is recorded.
func (f *fakeNode) watch(c net.Conn, r *bufio.Reader, open protocol.WatchOpen) {
	s := &fakeStream{conn: c, stamp: open.Stamp}
	f.mu.Lock()
	f.watches = append(f.watches, open)
	if open.RingOnly {
		f.rings = append(f.rings, s)
	} else {
		f.replicas = append(f.replicas, s)
	}
	text := f.ringText
	f.mu.Unlock()
	s.push(protocol.WatchEvent{Kind: protocol.WatchRing, Generation: 1, Data: text})
	for {
		m, err := protocol.ReadWatchMessage(r)
		if err != nil {
			s.mu.Lock()
			s.closed = true
			s.mu.Unlock()
			return
		}
		s.mu.Lock()
		s.msgs = append(s.msgs, m)
		if m.Kind == protocol.WatchPing {
			s.stamp = m.Stamp
		}
		s.mu.Unlock()
		if m.Kind == protocol.WatchPing {
			s.push(protocol.WatchEvent{Kind: protocol.WatchPong, Stamp: m.Stamp})
		}
	}
}

// push numbers ev and writes it; it returns the number.
func (s *fakeStream) push(ev protocol.WatchEvent) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	ev.Seq = s.seq
	b, err := protocol.AppendWatchEvent(nil, &ev)
	if err != nil {
		panic(err)
	}
	s.conn.Write(b) // a broken stream shows at the edge
	return ev.Seq
}

// latestStamp is the stamp a node would time leases from now.
func (s *fakeStream) latestStamp() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stamp
}

// messages returns the messages of kind received so far.
func (s *fakeStream) messages(kind protocol.WatchMessageKind) []protocol.WatchMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []protocol.WatchMessage
	for _, m := range s.msgs {
		if m.Kind == kind {
			out = append(out, m)
		}
	}
	return out
}

func (s *fakeStream) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// hot pushes a replica of key with a lease of leaseMS from the latest stamp.
func (s *fakeStream) hot(key, value string, cas, leaseMS uint64) uint64 {
	return s.push(protocol.WatchEvent{Kind: protocol.WatchHot, Key: key, Cas: cas, LeaseMS: leaseMS, Stamp: s.latestStamp(), Data: []byte(value)})
}

// sync pushes a barrier (an INVAL of a key never pushed) and
// waits for its ACK: the edge has handled everything pushed before.
func (s *fakeStream) sync(t testing.TB) {
	t.Helper()
	seq := s.push(protocol.WatchEvent{Kind: protocol.WatchInval, Key: "barrier"})
	s.waitAck(t, seq)
}

func (s *fakeStream) waitAck(t testing.TB, seq uint64) {
	t.Helper()
	waitFor(t, fmt.Sprintf("ACK %d", seq), func() (bool, any) {
		acks := s.messages(protocol.WatchAck)
		for _, m := range acks {
			if m.Seq == seq {
				return true, acks
			}
		}
		return false, acks
	})
}

// replicaStream waits for the n-th replica stream (from 1) the node has.
func (f *fakeNode) replicaStream(t testing.TB, n int) *fakeStream {
	t.Helper()
	var s *fakeStream
	waitFor(t, fmt.Sprintf("replica stream %d at %s", n, f.name), func() (bool, any) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if len(f.replicas) >= n {
			s = f.replicas[n-1]
			return true, nil
		}
		return false, len(f.replicas)
	})
	return s
}

func edgeCfg(f *fakeNode) client.Config            { return client.Config{Seeds: []string{f.addr()}} }
func hasReplica(c *client.Client, key string) bool { return replicaOf(c, key) != nil }

func replicaOf(c *client.Client, key string) *client.Replica {
	for _, r := range c.Replicas() {
		if r.Key == key {
			return &r
		}
	}
	return nil
}

func waitReplicas(t testing.TB, c *client.Client, n int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d replicas held", n), func() (bool, any) {
		st := c.EdgeStats()
		return st.Replicas == n, st
	})
}

// edgeGet reads key and reports whether the node was asked.
func edgeGet(t testing.TB, c *client.Client, f *fakeNode, key string) (*client.Item, bool) {
	t.Helper()
	before := f.gets.Load()
	it, err := c.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return it, f.gets.Load() != before
}

// TestEdge_hotAnswersLocally: a pushed replica answers Get, gets-style
// results and GetMulti without asking the node, with the replica's cas, a
// copy of its value, and hit reports in HITS.
func TestEdge_hotAnswersLocally(t *testing.T) {
	t.Parallel()
	f := startFakeNode(t, "fake")
	f.set("hot", "node-value")
	f.set("cold", "cold-value")
	c := newClient(t, edgeCfg(f))
	s := f.replicaStream(t, 1)
	s.hot("hot", "edge-value", 42, 60_000)
	waitReplicas(t, c, 1)

	it, asked := edgeGet(t, c, f, "hot")
	if asked || string(it.Value) != "edge-value" || it.CasID != 42 {
		t.Fatalf("Get = %+v (node asked: %v), want the replica's edge-value, cas 42, locally", it, asked)
	}
	it.Value[0] = 'X' // the caller owns it
	if it, asked = edgeGet(t, c, f, "hot"); asked || string(it.Value) != "edge-value" {
		t.Fatalf("second Get = %q (node asked: %v): the replica changed with the caller's copy", it.Value, asked)
	}
	before := f.gets.Load()
	items, err := c.GetMulti(context.Background(), []string{"hot", "cold"})
	if err != nil {
		t.Fatal(err)
	}
	if got := f.gets.Load() - before; got != 1 {
		t.Errorf("GetMulti asked the node for %d keys, want 1 (cold)", got)
	}
	if string(items["hot"].Value) != "edge-value" || items["hot"].CasID != 42 || string(items["cold"].Value) != "cold-value" {
		t.Errorf("GetMulti = hot %+v, cold %+v", items["hot"], items["cold"])
	}
	if st := c.EdgeStats(); st.Hits != 3 || st.Pushes != 1 || st.Streams != 1 || st.Bytes != int64(len("hot")+len("edge-value")+64) {
		t.Errorf("EdgeStats = %+v, want 3 hits, 1 push, 1 stream, %d bytes", st, len("hot")+len("edge-value")+64)
	}
	if r := replicaOf(c, "hot"); r == nil || r.Hits != 3 || r.Node != "fake" || r.LeaseLeft <= 0 || r.LeaseLeft > 60*time.Second {
		t.Errorf("Replicas() entry = %+v", r)
	}
	waitFor(t, "3 hits reported", func() (bool, any) {
		hits := s.messages(protocol.WatchHits)
		return hitsOf(hits, "hot") == 3, hits
	})
	for _, m := range s.messages(protocol.WatchHits) {
		for _, h := range m.Hits {
			if h.Key != "hot" {
				t.Errorf("HITS for %q, which was never read", h.Key)
			}
		}
	}
}

// hitsOf sums the hits reported for key.
func hitsOf(msgs []protocol.WatchMessage, key string) uint64 {
	var n uint64
	for _, m := range msgs {
		for _, h := range m.Hits {
			if h.Key == key {
				n += h.N
			}
		}
	}
	return n
}

// TestEdge_hitReportsSplit: a report too long for one line goes out as
// several HITS lines, each within MaxWatchLine: every hit arrives, and the
// stream, whose parser refuses longer lines, stays up.
func TestEdge_hitReportsSplit(t *testing.T) {
	t.Parallel()
	f := startFakeNode(t, "fake")
	c := newClient(t, edgeCfg(f))
	s := f.replicaStream(t, 1)
	var keys []string
	for i := range 100 {
		k := fmt.Sprintf("%03d-%s", i, strings.Repeat("k", 240))
		keys = append(keys, k)
		s.hot(k, "v", uint64(i+1), 3_600_000)
	}
	waitReplicas(t, c, len(keys))
	items, err := c.GetMulti(context.Background(), keys)
	if err != nil || len(items) != len(keys) || f.gets.Load() != 0 {
		t.Fatalf("GetMulti: %d items, %v, %d keys asked of the node", len(items), err, f.gets.Load())
	}
	waitFor(t, "a hit reported for every key", func() (bool, any) {
		hits := s.messages(protocol.WatchHits)
		for _, k := range keys {
			if hitsOf(hits, k) != 1 {
				return false, len(hits)
			}
		}
		return true, nil
	})
	if len(s.messages(protocol.WatchHits)) < 4 || s.isClosed() {
		t.Errorf("%d HITS lines for 100 keys of 244 bytes (closed: %v), want at least 4 on the open stream",
			len(s.messages(protocol.WatchHits)), s.isClosed())
	}
}

// TestEdge_leaseExpiryRefreshes: a read at the end of the lease (99% of it,
// by the client's clock, from the echoed stamp) goes to the node and sends
// one REFRESH however many reads follow; a RENEW with another cas is
// ignored, with the replica's cas it extends the lease.
func TestEdge_leaseExpiryRefreshes(t *testing.T) {
	t.Parallel()
	f := startFakeNode(t, "fake")
	f.set("k", "node-value")
	clk := newFakeClock() // stands still unless advanced: every stamp is 0
	cfg := edgeCfg(f)
	cfg.Now = clk.Now
	c := newClient(t, cfg)
	s := f.replicaStream(t, 1)
	s.hot("k", "edge-value", 7, 1000) // from stamp 0: ends at 990ms
	waitReplicas(t, c, 1)
	clk.Advance(989 * time.Millisecond)
	if _, asked := edgeGet(t, c, f, "k"); asked {
		t.Fatal("a replica 1ms before its lease end did not answer")
	}
	clk.Advance(time.Millisecond)
	for i := range 2 {
		if it, asked := edgeGet(t, c, f, "k"); !asked || string(it.Value) != "node-value" {
			t.Fatalf("read %d past the lease: %q (node asked: %v), want node-value from the node", i, it.Value, asked)
		}
	}
	waitFor(t, "a REFRESH", func() (bool, any) {
		st := c.EdgeStats()
		return st.Refreshes == 1 && len(s.messages(protocol.WatchRefresh)) == 1, st
	})
	s.sync(t) // the client has written everything it queued so far
	if r := s.messages(protocol.WatchRefresh); len(r) != 1 || r[0].Key != "k" {
		t.Errorf("REFRESH messages %+v, want one for k", r)
	}
	if st := c.EdgeStats(); st.Expired != 2 || st.Refreshes != 1 {
		t.Errorf("EdgeStats = %+v, want 2 expired reads and 1 refresh", st)
	}

	s.push(protocol.WatchEvent{Kind: protocol.WatchRenew, Key: "k", Cas: 8, LeaseMS: 60_000, Stamp: s.latestStamp()})
	s.sync(t)
	if _, asked := edgeGet(t, c, f, "k"); !asked {
		t.Fatal("a RENEW with another cas revived the replica")
	}
	if st := c.EdgeStats(); st.Renewals != 0 {
		t.Errorf("Renewals = %d after a RENEW with another cas", st.Renewals)
	}
	s.push(protocol.WatchEvent{Kind: protocol.WatchRenew, Key: "k", Cas: 7, LeaseMS: 60_000, Stamp: s.latestStamp()})
	s.sync(t)
	if it, asked := edgeGet(t, c, f, "k"); asked || string(it.Value) != "edge-value" {
		t.Fatalf("after a RENEW with the replica's cas: %q (node asked: %v), want the replica", it.Value, asked)
	}
	if st := c.EdgeStats(); st.Renewals != 1 {
		t.Errorf("Renewals = %d, want 1", st.Renewals)
	}
}

// TestEdge_invalAndCoolAreAcked: INVAL and COOL drop the replica and are
// acknowledged by number, held or not; reads then go to the node.
func TestEdge_invalAndCoolAreAcked(t *testing.T) {
	t.Parallel()
	f := startFakeNode(t, "fake")
	f.set("a", "node-a")
	f.set("b", "node-b")
	c := newClient(t, edgeCfg(f))
	s := f.replicaStream(t, 1)
	s.hot("a", "edge-a", 1, 60_000)
	s.hot("b", "edge-b", 2, 60_000)
	waitReplicas(t, c, 2)

	for range 2 {
		if _, asked := edgeGet(t, c, f, "a"); asked {
			t.Fatal("the replica of a did not answer")
		}
	}
	s.waitAck(t, s.push(protocol.WatchEvent{Kind: protocol.WatchInval, Key: "a"}))
	if hasReplica(c, "a") {
		t.Fatal("the replica of a is still held after its INVAL was acknowledged")
	}
	if it, asked := edgeGet(t, c, f, "a"); !asked || string(it.Value) != "node-a" {
		t.Errorf("Get(a) after INVAL = %q (node asked: %v)", it.Value, asked)
	}
	s.waitAck(t, s.push(protocol.WatchEvent{Kind: protocol.WatchCool, Key: "b"}))
	if hasReplica(c, "b") {
		t.Fatal("the replica of b is still held after its COOL was acknowledged")
	}
	if it, asked := edgeGet(t, c, f, "b"); !asked || string(it.Value) != "node-b" {
		t.Errorf("Get(b) after COOL = %q (node asked: %v)", it.Value, asked)
	}
	waitFor(t, "the hits of the dropped replica of a to be reported", func() (bool, any) {
		hits := s.messages(protocol.WatchHits)
		return hitsOf(hits, "a") == 2, hits
	})
	s.waitAck(t, s.push(protocol.WatchEvent{Kind: protocol.WatchCool, Key: "never-held"}))
	if st := c.EdgeStats(); st.Invalidations != 1 || st.Cools != 2 || st.Replicas != 0 || st.Bytes != 0 {
		t.Errorf("EdgeStats = %+v, want 1 invalidation, 2 cools, nothing held", st)
	}
}

// TestEdge_streamBreakDropsReplicas: when the node closes the replica stream,
// or the stream skips a sequence number, the replicas it brought are dropped
// at once and the client opens a new stream.
func TestEdge_streamBreakDropsReplicas(t *testing.T) {
	t.Parallel()
	f := startFakeNode(t, "fake")
	f.set("k", "node-value")
	cfg := edgeCfg(f)
	cfg.BackoffBase = 10 * time.Millisecond
	c := newClient(t, cfg)
	s := f.replicaStream(t, 1)
	s.hot("k", "edge-value", 1, 60_000)
	waitReplicas(t, c, 1)
	s.conn.Close()
	waitFor(t, "the replica to be dropped", func() (bool, any) {
		st := c.EdgeStats()
		return st.Replicas == 0 && st.Dropped == 1, st
	})
	if _, asked := edgeGet(t, c, f, "k"); !asked {
		t.Error("a read after the break did not go to the node")
	}

	s2 := f.replicaStream(t, 2)
	s2.hot("k", "edge-value", 1, 60_000)
	waitReplicas(t, c, 1)
	if _, asked := edgeGet(t, c, f, "k"); asked {
		t.Error("the new stream's replica did not answer")
	}
	s2.mu.Lock()
	s2.seq++ // the next event skips a number
	s2.mu.Unlock()
	s2.push(protocol.WatchEvent{Kind: protocol.WatchPong, Stamp: 1})
	waitFor(t, "the replica to be dropped after a sequence gap", func() (bool, any) {
		st := c.EdgeStats()
		return st.Replicas == 0 && st.Dropped == 2, st
	})
	waitFor(t, "the gapped stream to be closed by the client", func() (bool, any) { return s2.isClosed(), nil })
	f.replicaStream(t, 3)
}

// TestEdge_writesDropOwnReplica: a write through the client drops its own
// replica of the key before it is sent; FlushAll drops them all.
func TestEdge_writesDropOwnReplica(t *testing.T) {
	t.Parallel()
	f := startFakeNode(t, "fake")
	c := newClient(t, edgeCfg(f))
	ctx := context.Background()
	s := f.replicaStream(t, 1)
	for _, k := range []string{"set", "del", "x", "y"} {
		f.set(k, "node-"+k)
		s.hot(k, "edge-"+k, 1, 60_000)
	}
	waitReplicas(t, c, 4)

	if err := c.Set(ctx, &client.Item{Key: "set", Value: []byte("new")}); err != nil {
		t.Fatal(err)
	}
	if hasReplica(c, "set") {
		t.Error("Set kept the client's replica of its key")
	}
	if it, asked := edgeGet(t, c, f, "set"); !asked || string(it.Value) != "new" {
		t.Errorf("Get after Set = %q (node asked: %v), want new from the node", it.Value, asked)
	}
	if err := c.Delete(ctx, "del"); err != nil {
		t.Fatal(err)
	}
	if hasReplica(c, "del") {
		t.Error("Delete kept the client's replica of its key")
	}
	if it, err := c.Get(ctx, "del"); !errors.Is(err, client.ErrCacheMiss) {
		t.Errorf("Get after Delete = %+v, %v, want a miss", it, err)
	}
	if !hasReplica(c, "x") || !hasReplica(c, "y") {
		t.Fatal("writes of other keys dropped unrelated replicas")
	}
	if err := c.FlushAll(ctx); err != nil {
		t.Fatal(err)
	}
	if st := c.EdgeStats(); st.Replicas != 0 || st.Bytes != 0 || st.Dropped != 0 {
		t.Errorf("after FlushAll: %+v, want nothing held (and nothing counted as dropped)", st)
	}
}

// TestEdge_nearCacheBytesBound: a HOT that would take the near cache past
// NearCacheBytes is refused and counted.
func TestEdge_nearCacheBytesBound(t *testing.T) {
	t.Parallel()
	f := startFakeNode(t, "fake")
	f.set("b", "node-b")
	cfg := edgeCfg(f)
	cfg.NearCacheBytes = 200
	c := newClient(t, cfg)
	s := f.replicaStream(t, 1)
	val := strings.Repeat("v", 100) // 1 + 100 + 64 = 165 bytes accounted
	s.hot("a", val, 1, 60_000)
	s.hot("b", val, 2, 60_000)
	s.sync(t)
	st := c.EdgeStats()
	if st.Pushes != 2 || st.Refused != 1 || st.Replicas != 1 || st.Bytes != 165 {
		t.Fatalf("EdgeStats = %+v, want 2 pushes, 1 refused, 1 replica of 165 bytes", st)
	}
	if _, asked := edgeGet(t, c, f, "b"); !asked {
		t.Error("a refused replica answered a read")
	}
	s.hot("a", "short", 3, 60_000) // replaces a's replica: 1 + 5 + 64
	s.hot("b", "short", 4, 60_000) // now fits
	s.sync(t)
	if st := c.EdgeStats(); st.Replicas != 2 || st.Bytes != 140 || st.Refused != 1 {
		t.Errorf("EdgeStats = %+v, want 2 replicas of 140 bytes", st)
	}
}

// TestEdge_disabled: with NearCacheBytes < 0 the client opens only the
// ring-only stream, and in static mode none at all.
func TestEdge_disabled(t *testing.T) {
	t.Parallel()
	f := startFakeNode(t, "fake")
	f.set("k", "v")
	cfg := edgeCfg(f)
	cfg.NearCacheBytes = -1
	c := newClient(t, cfg)
	static := newClient(t, client.Config{Servers: []string{f.addr()}})
	for _, cl := range []*client.Client{c, static} {
		if it, err := cl.Get(context.Background(), "k"); err != nil || string(it.Value) != "v" {
			t.Fatalf("Get = %+v, %v", it, err)
		}
	}
	// A replica stream would be dialed as soon as the ring was installed,
	// before the Get above was sent; give a wrongly started one time to
	// show, then check that none came.
	time.Sleep(200 * time.Millisecond)
	f.mu.Lock()
	watches := append([]protocol.WatchOpen(nil), f.watches...)
	f.mu.Unlock()
	if len(watches) != 1 || !watches[0].RingOnly {
		t.Errorf("watch commands %+v, want exactly one, ring-only", watches)
	}
	if st := c.EdgeStats(); st != (client.EdgeStats{}) {
		t.Errorf("EdgeStats = %+v, want all zero", st)
	}
}

// TestEdge_memberLeavesDropsItsReplicas: the ring comes from the ring-only
// stream; a member that leaves it loses its replica stream and its replicas.
func TestEdge_memberLeavesDropsItsReplicas(t *testing.T) {
	t.Parallel()
	a, b := startFakeNode(t, "a"), startFakeNode(t, "b")
	a.mu.Lock()
	a.ringText = fakeRingText(t, a, b)
	a.mu.Unlock()
	c := newClient(t, edgeCfg(a))
	sa, sb := a.replicaStream(t, 1), b.replicaStream(t, 1)
	var keyA, keyB string // a key each node owns
	for i := 0; keyA == "" || keyB == ""; i++ {
		k := fmt.Sprint("key", i)
		if m, _ := c.Ring().Owner([]byte(k)); m.Name == "a" {
			keyA = k
		} else {
			keyB = k
		}
	}
	b.set(keyB, "node-b")
	sa.hot(keyA, "from-a", 1, 60_000)
	sb.hot(keyB, "from-b", 2, 60_000)
	sb.sync(t)
	sa.hot(keyB, "from-a", 3, 60_000) // replaces b's; a does not own it, so it answers no read
	sa.sync(t)
	if it, asked := edgeGet(t, c, b, keyB); !asked || string(it.Value) != "node-b" {
		t.Errorf("a replica from a non-owner answered: %q (owner asked: %v)", it.Value, asked)
	}
	sb.hot(keyB, "from-b", 2, 60_000)
	sb.sync(t)
	if it, asked := edgeGet(t, c, b, keyB); asked || string(it.Value) != "from-b" {
		t.Errorf("Get(%s) = %q (owner asked: %v), want b's replica", keyB, it.Value, asked)
	}

	a.mu.Lock()
	ring := a.rings[0]
	a.ringText = fakeRingText(t, a)
	text := a.ringText
	a.mu.Unlock()
	ring.push(protocol.WatchEvent{Kind: protocol.WatchRing, Generation: 2, Data: text})
	waitFor(t, "b's replicas and stream to go", func() (bool, any) {
		st := c.EdgeStats()
		return st.Replicas == 1 && st.Streams == 1 && sb.isClosed(), st
	})
	if !hasReplica(c, keyA) {
		t.Error("a's replica went with b")
	}
}
