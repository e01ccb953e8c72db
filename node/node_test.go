package node_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hotcache/hotcache/node"
	"github.com/hotcache/hotcache/node/nodetest"
)

// startNode runs a standalone node on 127.0.0.1:0 until the test ends.
func startNode(t testing.TB, cfg node.Config) *node.Node { return nodetest.Standalone(t, cfg) }

// conn is a minimal text-protocol client for tests.
type conn struct {
	t testing.TB
	c net.Conn
	r *bufio.Reader
}

func dial(t testing.TB, addr string) *conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(60 * time.Second))
	return &conn{t: t, c: c, r: bufio.NewReader(c)}
}

func (c *conn) send(s string) {
	if _, err := io.WriteString(c.c, s); err != nil {
		c.t.Fatal(err)
	}
}

func (c *conn) line() string {
	l, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("read: %v (partial %q)", err, l)
	}
	return strings.TrimSuffix(l, "\r\n")
}

// cmd sends one single-line-reply command and returns the reply line.
func (c *conn) cmd(s string) string { c.send(s + "\r\n"); return c.line() }

func (c *conn) set(key, value string, exptime int) string {
	return c.cmd(fmt.Sprintf("set %s 0 %d %d\r\n%s", key, exptime, len(value), value))
}

// get returns the value of key and whether it was found.
func (c *conn) get(key string) (string, bool) {
	c.send("get " + key + "\r\n")
	l := c.line()
	if l == "END" {
		return "", false
	}
	f := strings.Fields(l)
	if len(f) < 4 || f[0] != "VALUE" {
		c.t.Fatalf("get %s: unexpected %q", key, l)
	}
	n, _ := strconv.Atoi(f[3])
	buf := make([]byte, n+2)
	if _, err := io.ReadFull(c.r, buf); err != nil {
		c.t.Fatal(err)
	}
	if end := c.line(); end != "END" {
		c.t.Fatalf("get %s: trailing %q", key, end)
	}
	return string(buf[:n]), true
}

func (c *conn) stats() map[string]string { return c.statsOf("") }

// statsOf returns `stats <arg>` as a map (the last of repeated names wins).
func (c *conn) statsOf(arg string) map[string]string {
	c.send(strings.TrimSpace("stats "+arg) + "\r\n")
	m := map[string]string{}
	for {
		l := c.line()
		if l == "END" {
			return m
		}
		f := strings.Fields(l)
		m[f[1]] = f[2]
	}
}

// TestReadYourWritesNewKeys checks the store's main promise: once a set of a
// new key is acknowledged, a get on any connection sees it.
func TestReadYourWritesNewKeys(t *testing.T) {
	n := startNode(t, node.Config{})
	var wg sync.WaitGroup
	var misses atomic.Int64
	for g := range 8 {
		wg.Go(func() {
			w, r := dial(t, n.Addr()), dial(t, n.Addr())
			for i := range 500 {
				k := fmt.Sprintf("ryw:%d:%d", g, i)
				if got := w.set(k, k, 0); got != "STORED" {
					t.Errorf("set %s: %s", k, got)
					return
				}
				if v, ok := r.get(k); !ok || v != k {
					misses.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if m := misses.Load(); m != 0 {
		t.Fatalf("%d of 4000 acknowledged sets were not visible to the next get", m)
	}
}

func TestIncrIsAtomic(t *testing.T) {
	n := startNode(t, node.Config{})
	dial(t, n.Addr()).set("ctr", "0", 0)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			c := dial(t, n.Addr())
			for range 250 {
				c.cmd("incr ctr 1")
			}
		})
	}
	wg.Wait()
	if v, _ := dial(t, n.Addr()).get("ctr"); strings.TrimSpace(v) != "2000" {
		t.Fatalf("8x250 concurrent incr gave %q; want 2000", v)
	}
}

func TestCasExactlyOneWinner(t *testing.T) {
	n := startNode(t, node.Config{})
	c := dial(t, n.Addr())
	for round := range 20 {
		c.set("race", "v0", 0)
		c.send("gets race\r\n")
		cas := strings.Fields(c.line())[4]
		c.line()
		c.line()
		var wg sync.WaitGroup
		var stored atomic.Int64
		for g := range 6 {
			wg.Go(func() {
				d := dial(t, n.Addr())
				v := fmt.Sprintf("w%d", g)
				if d.cmd(fmt.Sprintf("cas race 0 0 %d %s\r\n%s", len(v), cas, v)) == "STORED" {
					stored.Add(1)
				}
			})
		}
		wg.Wait()
		if s := stored.Load(); s != 1 {
			t.Fatalf("round %d: %d cas writers won with the same unique; want exactly 1", round, s)
		}
	}
}

// fakeClock is a settable clock for expiry tests: no sleeping.
type fakeClock struct{ sec atomic.Int64 }

func (f *fakeClock) now() time.Time          { return time.Unix(f.sec.Load(), 0) }
func (f *fakeClock) advance(d time.Duration) { f.sec.Add(int64(d / time.Second)) }

func TestExpiryAndFlushWithFakeClock(t *testing.T) {
	clk := &fakeClock{}
	clk.sec.Store(1_800_000_000)
	n := startNode(t, node.Config{Clock: clk.now})
	c := dial(t, n.Addr())
	c.set("rel", "x", 10)
	c.set("abs", "x", int(clk.sec.Load()+100))
	c.set("past", "x", int(clk.sec.Load()-1))
	c.set("neg", "x", -1)
	if _, ok := c.get("past"); ok {
		t.Error("absolute exptime in the past was served")
	}
	if _, ok := c.get("neg"); ok {
		t.Error("negative exptime was served")
	}
	clk.advance(9 * time.Second)
	if _, ok := c.get("rel"); !ok {
		t.Error("relative exptime 10 expired after 9s")
	}
	clk.advance(1 * time.Second)
	if _, ok := c.get("rel"); ok {
		t.Error("relative exptime 10 still served after 10s")
	}
	if got := c.cmd("flush_all 5"); got != "OK" {
		t.Fatal(got)
	}
	c.set("later", "x", 0) // written before the flush deadline: flushed too
	clk.advance(3 * time.Second)
	if _, ok := c.get("abs"); !ok {
		t.Error("delayed flush_all took effect early")
	}
	clk.advance(2 * time.Second)
	if _, ok := c.get("abs"); ok {
		t.Error("delayed flush_all did not flush")
	}
	if _, ok := c.get("later"); ok {
		t.Error("item written before the flush deadline survived it")
	}
	clk.advance(time.Second)
	c.set("after", "x", 0)
	if _, ok := c.get("after"); !ok {
		t.Error("item written after the flush deadline was flushed")
	}
	if s := c.stats(); s["get_expired"] != "1" || s["get_flushed"] != "2" {
		t.Errorf("get_expired=%s get_flushed=%s; want 1 and 2", s["get_expired"], s["get_flushed"])
	}
}

// TestFullCacheCountsRefusals fills a 1 MiB cache far past its size: sets
// keep being acknowledged, memory stays bounded, and every refusal or
// eviction is counted.
func TestFullCacheCountsRefusals(t *testing.T) {
	n := startNode(t, node.Config{MemoryMB: 1, MaxItemSize: 64 << 10})
	c := dial(t, n.Addr())
	val := strings.Repeat("v", 1000)
	const total = 5000 // ~6 MB of items into 1 MiB
	for i := range total {
		if got := c.set(fmt.Sprintf("fill:%d", i), val, 0); got != "STORED" {
			t.Fatalf("set %d: %s", i, got)
		}
	}
	s := c.stats()
	items, _ := strconv.Atoi(s["curr_items"])
	bytes, _ := strconv.Atoi(s["bytes"])
	evictions, _ := strconv.Atoi(s["evictions"])
	t.Logf("curr_items=%d bytes=%d evictions=%d admission_refusals=%s", items, bytes, evictions, s["admission_refusals"])
	if bytes > 1<<20 {
		t.Errorf("bytes %d exceeds the 1 MiB limit", bytes)
	}
	if items+evictions != total {
		t.Errorf("curr_items %d + evictions %d = %d; want %d (every set kept or counted)", items, evictions, items+evictions, total)
	}
	if items == 0 {
		t.Error("nothing kept")
	}
}
