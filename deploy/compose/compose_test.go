//go:build compose

// Package compose tests docker-compose.yml end to end: it builds the
// hotcache/cached:dev image, starts the three nodes and the proxy under a
// project name of its own, and checks forwarding, the proxy, the loss and
// return of a node, and the healing of a network partition, all through the
// host ports the compose file publishes. It needs a Docker engine and runs only with the compose
// build tag:
//
//	go test -tags compose -v -timeout 15m ./deploy/compose/
//
// Without Docker it skips (loudly), unless CACHE_REQUIRE_DOCKER=1, when it
// fails. Apart from the fixture in internal/composetest it uses the
// standard library only: it talks to the cluster as any memcache client
// would.
package compose

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hotcache/hotcache/internal/composetest"
)

// The host ports docker-compose.yml publishes, on 127.0.0.1.
var (
	memcachePort = composetest.MemcachePort
	adminPort    = composetest.AdminPort
	allNodes     = composetest.Nodes
)

const (
	numKeys   = 10000
	batchSize = 500 // keys per pipelined round trip
	getKeys   = 100 // keys per multi-key get command

	convergeTimeout = 120 * time.Second // first start: three containers, gossip
	failoverTimeout = 60 * time.Second  // kill to: every read and write answered
	ringTimeout     = 90 * time.Second  // detection (~5-25 s) and re-join (every 10 s)
)

func TestCompose(t *testing.T) {
	composetest.RequireDocker(t, "the compose test")
	c := newCluster(t)
	c.CheckPortsFree()
	c.BuildImage()
	c.Up()

	// 1. All three agree on one ring.
	d := c.waitRing("start", allNodes, allNodes, convergeTimeout)
	t.Logf("three nodes agree on a 3-member ring %v after compose up returned", d.Round(time.Millisecond))
	c.checkAdmin(allNodes)

	// 2. Written through node1, read back through node3.
	keys := makeKeys()
	c.mustSetAll("node1", keys, 1)
	c.mustGetAll("node3", keys, 1)
	t.Logf("%d keys written through node1 and read back exactly through node3", numKeys)

	// 2b. The proxy: ready with the ring, reads what node1 wrote, and its
	// own writes reach the owners (read back through node2 and itself).
	c.checkProxy(keys)

	// 3. node2 dies: reads and writes through node1 keep working.
	killed := time.Now()
	detected := c.watchRing([]string{"node1", "node3"}, []string{"node1", "node3"})
	c.Compose(time.Minute, "kill", "node2")
	t.Logf("killed node2 (compose kill took %v)", time.Since(killed).Round(time.Millisecond))
	c.failover(keys, killed)
	c.waitRing("node2 dropped", []string{"node1", "node3"}, []string{"node1", "node3"}, ringTimeout)
	t.Logf("node2's death detected (2-member ring) after: %s", detected())
	c.mustGetAll("node3", keys, 2)

	// 4. node2 comes back under its name and address and rejoins.
	started := time.Now()
	c.Compose(time.Minute, "start", "node2")
	c.waitRing("node2 rejoined", allNodes, allNodes, ringTimeout)
	t.Logf("node2 rejoined: one 3-member ring %v after compose start began", time.Since(started).Round(time.Millisecond))

	// 5. A partition: node3 is cut off, then put back with its address.
	network, ip := c.NetworkOf("node3")
	id := c.ContainerID("node3")
	cut := time.Now()
	c.Docker(time.Minute, "network", "disconnect", network, id)
	t.Logf("disconnected node3 (%s) from %s", ip, network)
	c.waitRing("node3 cut off", []string{"node1", "node2"}, []string{"node1", "node2"}, ringTimeout)
	t.Logf("node1 and node2 dropped node3: 2-member ring %v after the cut", time.Since(cut).Round(time.Millisecond))
	healed := time.Now()
	c.Docker(time.Minute, "network", "connect", "--ip", ip, network, id)
	t.Logf("reconnected node3 with --ip %s", ip)
	c.waitRing("partition healed", allNodes, allNodes, ringTimeout)
	t.Logf("partition healed: one 3-member ring %v after reconnecting", time.Since(healed).Round(time.Millisecond))

	// The merged cluster serves every key again: writes through node3
	// succeed (at once, as a rule), and reads elsewhere see all of them.
	c.setAllEventually("node3", keys, 3, "the heal", healed, healed.Add(ringTimeout))
	c.mustGetAll("node1", keys, 3)
	c.mustGetAll("node2", keys, 3)
	t.Logf("after the heal: %d keys written through node3, read back exactly through node1 and node2", numKeys)

	// The proxy followed every ring change: it serves every key again.
	healedAt := time.Now()
	for attempt := 1; ; attempt++ {
		_, misses, err := c.getAll("proxy", keys, 3)
		if err == nil && misses == 0 {
			t.Logf("after the heal: all %d keys read back exactly through the proxy (pass %d, %v)",
				numKeys, attempt, time.Since(healedAt).Round(time.Millisecond))
			break
		}
		if time.Since(healedAt) > ringTimeout {
			c.fatalf("the proxy still does not serve every key %v after the heal: %d misses, %v", ringTimeout, misses, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// checkProxy waits until the proxy is ready and routes by the nodes' ring,
// then checks it end to end: keys written through node1 (round 1) read back
// through it, keys of its own written through it read back through node2
// and through it, and its admin port.
func (c *cluster) checkProxy(keys []string) {
	t := c.t
	t.Helper()
	start := time.Now()
	want, err := c.clusterView("node1")
	if err != nil {
		c.fatal(err)
	}
	var last string
	for {
		_, err := httpGet(adminPort["proxy"], "/readyz")
		if err == nil {
			if id, members, err := proxyRing(); err == nil && id == want.identity && members == len(allNodes) {
				break
			} else {
				last = fmt.Sprintf("ring %s with %d members (%v), want %s", id, members, err, want.identity)
			}
		} else {
			last = err.Error()
		}
		if time.Since(start) > convergeTimeout {
			c.fatalf("the proxy is not ready with the nodes' ring after %v: %s", convergeTimeout, last)
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Logf("proxy ready with the nodes' 3-member ring %v after the nodes agreed", time.Since(start).Round(time.Millisecond))
	c.mustGetAll("proxy", keys, 1)
	t.Logf("%d keys written through node1 read back exactly through the proxy", numKeys)

	own := make([]string, len(keys))
	for i := range own {
		own[i] = fmt.Sprintf("compose:proxy:%05d", i)
	}
	c.mustSetAll("proxy", own, 1)
	c.mustGetAll("node2", own, 1)
	c.mustGetAll("proxy", own, 1)
	t.Logf("%d keys written through the proxy read back exactly through node2 and the proxy", numKeys)

	mc, err := dialMC("proxy")
	if err != nil {
		c.fatal(err)
	}
	defer mc.Close()
	st, err := mc.stats("")
	if err != nil {
		c.fatalf("proxy stats: %v", err)
	}
	if !slices.ContainsFunc(st, func(l string) bool { return strings.HasPrefix(l, "STAT edge_replicas ") }) {
		t.Errorf("proxy stats have no edge_replicas: %q", st)
	}
	if _, err := mc.stats("hotkeys"); err != nil {
		t.Errorf("proxy stats hotkeys: %v", err)
	}
	for _, p := range []string{"/healthz", "/hotkeys"} {
		if _, err := httpGet(adminPort["proxy"], p); err != nil {
			t.Errorf("proxy admin %s: %v", p, err)
		}
	}
	body, err := httpGet(adminPort["proxy"], "/metrics")
	if err != nil || !strings.Contains(body, `cacheproxy_requests_total{cmd="get",edge="proxy",result="hit"}`) {
		t.Errorf("proxy /metrics: %v; no get hits in:\n%.2000s", err, body)
	}
}

// proxyRing is the proxy's `stats cluster`: its ring identity and member
// count.
func proxyRing() (identity string, members int, err error) {
	mc, err := dialMC("proxy")
	if err != nil {
		return "", 0, err
	}
	defer mc.Close()
	lines, err := mc.stats("cluster")
	if err != nil {
		return "", 0, err
	}
	for _, l := range lines {
		f := strings.Fields(l)
		switch {
		case len(f) == 3 && f[1] == "ring_identity":
			identity = f[2]
		case len(f) == 3 && f[1] == "members":
			members, _ = strconv.Atoi(f[2])
		}
	}
	return identity, members, nil
}

// failover checks that, within failoverTimeout of node2's death, a pass of
// reads of every key through node1 sees no error and only exact values
// (node2's keys miss), and then that every key can be written through node1
// (STORED); finally, that node1 serves all the new values.
func (c *cluster) failover(keys []string, killed time.Time) {
	t := c.t
	deadline := killed.Add(failoverTimeout)
	for attempt := 1; ; attempt++ {
		start := time.Now()
		hits, misses, err := c.getAll("node1", keys, 1)
		if err == nil {
			t.Logf("read pass %d through node1 clean %v after the kill (took %v, slowest batch of %d keys %v): %d hits, %d misses (node2's keys)",
				attempt, time.Since(killed).Round(time.Millisecond), time.Since(start).Round(time.Millisecond),
				batchSize, c.slowest.Round(time.Millisecond), hits, misses)
			if hits == 0 {
				c.fatalf("no key hit through node1 after node2 died: only node2's keys should miss")
			}
			break
		}
		if time.Now().After(deadline) {
			c.fatalf("reads through node1 still failing %v after node2 was killed: %v", failoverTimeout, err)
		}
		t.Logf("read pass %d through node1 after the kill: %v; retrying", attempt, err)
		time.Sleep(500 * time.Millisecond)
	}
	c.setAllEventually("node1", keys, 2, "the kill", killed, deadline)
	c.mustGetAll("node1", keys, 2)
}

// setAllEventually writes every key through node, in passes, until a pass
// sees every set STORED: after a fault, a write may be refused for a while
// (the owner unreachable, a partition being handed over, a redial backing
// off), and a client retries it. It fails the test past deadline.
func (c *cluster) setAllEventually(node string, keys []string, round int, after string, since, deadline time.Time) {
	t := c.t
	t.Helper()
	for attempt := 1; ; attempt++ {
		start := time.Now()
		err := c.setAll(node, keys, round)
		if err == nil {
			t.Logf("write pass %d through %s: all %d STORED %v after %s (%v)",
				attempt, node, len(keys), time.Since(since).Round(time.Millisecond), after, time.Since(start).Round(time.Millisecond))
			return
		}
		if time.Now().After(deadline) {
			c.fatalf("writes through %s still failing %v after %s: %v", node, deadline.Sub(since).Round(time.Second), after, err)
		}
		t.Logf("write pass %d through %s after %s: %v; retrying", attempt, node, after, err)
		time.Sleep(500 * time.Millisecond)
	}
}

// ---- the cluster under test ----

// cluster is one compose project started by the test.
type cluster struct {
	*composetest.Project
	t *testing.T

	mu       sync.Mutex
	lastView map[string]string // per node, the last `stats cluster` answer or error

	slowest time.Duration // getAll's slowest round trip, for the log
	missed  []string      // getAll's first missing keys, for the diagnostics

	failure string // the message of the failure that ended the test, repeated after the dump
}

// fatalf ends the test like t.Fatalf, and keeps the message so that the
// diagnostics dump, which comes after it, can end with it again: CI shows
// the tail of the output.
func (c *cluster) fatalf(format string, args ...any) {
	c.t.Helper()
	c.mu.Lock()
	c.failure = fmt.Sprintf(format, args...)
	c.mu.Unlock()
	c.t.Fatalf(format, args...)
}

// fatal is fatalf for one error.
func (c *cluster) fatal(err error) {
	c.t.Helper()
	c.fatalf("%v", err)
}

func newCluster(t *testing.T) *cluster {
	c := &cluster{Project: composetest.New(t, "the compose test", "hotcache-test"), t: t, lastView: map[string]string{}}
	c.Fatalf = c.fatalf
	c.Diagnose = c.dumpDiagnostics
	return c
}

// dumpDiagnostics prints what explains a failure: container states and
// logs, and every node's last view of the ring.
func (c *cluster) dumpDiagnostics() {
	out, _ := c.Run(time.Minute, c.Args("ps")...)
	fmt.Fprintf(os.Stderr, "==== compose ps (%s)\n%s\n", c.Name, out)
	out, _ = c.Run(time.Minute, c.Args("logs", "--no-color", "-t")...)
	fmt.Fprintf(os.Stderr, "==== container logs\n%s\n", out)
	c.mu.Lock()
	for _, n := range allNodes {
		if v, ok := c.lastView[n]; ok {
			fmt.Fprintf(os.Stderr, "==== last `stats cluster` of %s\n%s\n", n, v)
		}
	}
	c.mu.Unlock()
	for _, n := range allNodes {
		if body, err := httpGet(adminPort[n], "/cluster"); err == nil {
			fmt.Fprintf(os.Stderr, "==== %s /cluster now\n%s\n", n, body)
		}
	}
	c.mu.Lock()
	if c.failure != "" {
		fmt.Fprintf(os.Stderr, "==== end of the dump; the test failed with:\n%s\n", c.failure)
	}
	c.mu.Unlock()
}

// ---- ring views ----

// watchRing polls, in the background, each of nodes until it reports
// exactly the members want, all alive. The function it returns stops the
// polling and describes when each node first did, from the call.
func (c *cluster) watchRing(nodes, want []string) func() string {
	start := time.Now()
	stop := make(chan struct{})
	var mu sync.Mutex
	first := map[string]time.Duration{}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			for _, n := range nodes {
				mu.Lock()
				_, seen := first[n]
				mu.Unlock()
				if seen {
					continue
				}
				if v, err := c.clusterView(n); err == nil && v.is(want) {
					mu.Lock()
					first[n] = time.Since(start)
					mu.Unlock()
				}
			}
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	})
	return func() string {
		close(stop)
		wg.Wait()
		var out []string
		for _, n := range nodes {
			if d, ok := first[n]; ok {
				out = append(out, fmt.Sprintf("%s %v", n, d.Round(100*time.Millisecond)))
			} else {
				out = append(out, n+" not seen")
			}
		}
		return strings.Join(out, ", ")
	}
}

// view is one node's `stats cluster`.
type view struct {
	self, identity string
	members        map[string]string // name -> state
	writable       bool              // write_ready: no lease or handoff pending, not cut off
}

// mismatch says how v differs from want, all alive; "" if it does not.
func (v view) mismatch(want []string) string {
	var names []string
	for name, st := range v.members {
		if st != "alive" {
			return fmt.Sprintf("sees %s %s", name, st)
		}
		names = append(names, name)
	}
	sort.Strings(names)
	if !slices.Equal(names, want) {
		return fmt.Sprintf("sees members %v", names)
	}
	if !v.writable {
		return "does not take writes yet (a lease or a handoff is pending)"
	}
	return ""
}

func (v view) is(want []string) bool { return v.mismatch(want) == "" }

func (c *cluster) clusterView(node string) (view, error) {
	v := view{members: map[string]string{}}
	mc, err := dialMC(node)
	if err != nil {
		return v, err
	}
	defer mc.Close()
	lines, err := mc.stats("cluster")
	c.mu.Lock()
	if err != nil {
		c.lastView[node] = "error: " + err.Error()
	} else {
		c.lastView[node] = strings.Join(lines, "\n")
	}
	c.mu.Unlock()
	if err != nil {
		return v, err
	}
	for _, l := range lines {
		f := strings.Fields(l)
		switch {
		case len(f) == 3 && f[1] == "self":
			v.self = f[2]
		case len(f) == 3 && f[1] == "ring_identity":
			v.identity = f[2]
		case len(f) >= 5 && f[1] == "member":
			v.members[f[2]] = f[4]
		case len(f) == 3 && f[1] == "write_ready":
			v.writable = f[2] == "1"
		}
	}
	if v.self != node || v.identity == "" {
		return v, fmt.Errorf("stats cluster of %s: self %q, ring_identity %q", node, v.self, v.identity)
	}
	return v, nil
}

// waitRing polls `stats cluster` on each of ask until all of them report
// exactly the members want, all alive, under one ring identity, and take
// writes, and returns how long that took.
func (c *cluster) waitRing(step string, ask, want []string, timeout time.Duration) time.Duration {
	c.t.Helper()
	start := time.Now()
	deadline := start.Add(timeout)
	var why string
	for {
		why = ""
		identities := map[string]bool{}
		for _, n := range ask {
			v, err := c.clusterView(n)
			if err != nil {
				why = fmt.Sprintf("%s: %v", n, err)
				break
			}
			if why = v.mismatch(want); why != "" {
				why = n + " " + why
				break
			}
			identities[v.identity] = true
		}
		if why == "" && len(identities) != 1 {
			why = fmt.Sprintf("ring identities differ: %v", identities)
		}
		if why == "" {
			return time.Since(start)
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	c.mu.Lock()
	var views []string
	for _, n := range ask {
		views = append(views, fmt.Sprintf("%s:\n%s", n, c.lastView[n]))
	}
	c.mu.Unlock()
	c.fatalf("%s: %v after it began, %v do not agree on the ring %v: %s\nlast views:\n%s",
		step, timeout, ask, want, why, strings.Join(views, "\n"))
	return 0
}

// checkAdmin checks each node's admin port: /healthz, /readyz, and /cluster
// agreeing with `stats cluster`.
func (c *cluster) checkAdmin(nodes []string) {
	c.t.Helper()
	for _, n := range nodes {
		for _, p := range []string{"/healthz", "/readyz"} {
			if _, err := httpGet(adminPort[n], p); err != nil {
				c.fatalf("%s admin %s: %v", n, p, err)
			}
		}
		body, err := httpGet(adminPort[n], "/cluster")
		if err != nil {
			c.fatalf("%s admin /cluster: %v", n, err)
		}
		var info struct {
			Self     string
			Identity string
			Members  []struct{ Name, Addr, State string }
		}
		if err := json.Unmarshal([]byte(body), &info); err != nil {
			c.fatalf("%s /cluster: %v\n%s", n, err, body)
		}
		v, err := c.clusterView(n)
		if err != nil {
			c.fatal(err)
		}
		if info.Self != n || info.Identity != v.identity || len(info.Members) != len(v.members) {
			c.fatalf("%s: /cluster (self %s, identity %s, %d members) disagrees with stats cluster (identity %s, %d members)",
				n, info.Self, info.Identity, len(info.Members), v.identity, len(v.members))
		}
	}
}

func httpGet(port int, path string) (string, error) {
	client := http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d%s", port, path))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return string(b), fmt.Errorf("GET %s: %s: %s", path, resp.Status, bytes.TrimSpace(b))
	}
	return string(b), nil
}

// ---- keys and values ----

func makeKeys() []string {
	keys := make([]string, numKeys)
	for i := range keys {
		keys[i] = fmt.Sprintf("compose:%05d", i)
	}
	return keys
}

// value is key's value in the given round of writes, about 100 bytes.
func value(key string, round int) []byte {
	v := fmt.Sprintf("%s/round%d/", key, round)
	return []byte(v + strings.Repeat("x", 100-len(v)))
}

// setAll writes every key through node, batchSize per round trip, and
// returns an error describing the replies that were not STORED.
func (c *cluster) setAll(node string, keys []string, round int) error {
	mc, err := dialMC(node)
	if err != nil {
		return err
	}
	defer mc.Close()
	bad, examples := 0, []string{}
	for i := 0; i < len(keys); i += batchSize {
		batch := keys[i:min(i+batchSize, len(keys))]
		replies, err := mc.setMany(batch, round)
		if err != nil {
			return fmt.Errorf("keys %d..: %w", i, err)
		}
		for j, r := range replies {
			if r != "STORED" {
				bad++
				if len(examples) < 3 {
					examples = append(examples, batch[j]+": "+r)
				}
			}
		}
	}
	if bad > 0 {
		return fmt.Errorf("%d of %d sets through %s not STORED, e.g. %q", bad, len(keys), node, examples)
	}
	return nil
}

// getAll reads every key through node and returns hits and misses; any
// error reply, or a hit with a value other than round's, is an error. It
// records its slowest round trip in c.slowest.
func (c *cluster) getAll(node string, keys []string, round int) (hits, misses int, err error) {
	mc, err := dialMC(node)
	if err != nil {
		return 0, 0, err
	}
	defer mc.Close()
	c.slowest = 0
	c.missed = nil
	for i := 0; i < len(keys); i += batchSize {
		batch := keys[i:min(i+batchSize, len(keys))]
		start := time.Now()
		got, err := mc.getMany(batch)
		c.slowest = max(c.slowest, time.Since(start))
		if err != nil {
			return hits, misses, fmt.Errorf("keys %d..: %w", i, err)
		}
		for _, k := range batch {
			v, ok := got[k]
			if !ok {
				misses++
				if len(c.missed) < 5 {
					c.missed = append(c.missed, k)
				}
				continue
			}
			if want := value(k, round); !bytes.Equal(v, want) {
				return hits, misses, fmt.Errorf("get %s through %s = %q, want %q", k, node, v, want)
			}
			hits++
		}
	}
	return hits, misses, nil
}

func (c *cluster) mustSetAll(node string, keys []string, round int) {
	c.t.Helper()
	if err := c.setAll(node, keys, round); err != nil {
		c.fatal(err)
	}
}

func (c *cluster) mustGetAll(node string, keys []string, round int) {
	c.t.Helper()
	_, misses, err := c.getAll(node, keys, round)
	if err != nil {
		c.fatal(err)
	}
	if misses > 0 {
		c.fatalf("get through %s: %d of %d keys missing (round %d); where the first ones are now:\n%s",
			node, misses, len(keys), round, c.whereAre(c.missed))
	}
}

// whereAre describes, for each key, what every node answers for it now:
// through the node (routed by its ring) and as a peer would ask it (served
// from its own store only if its ring makes it the owner), with the
// counters that explain a lost item.
func (c *cluster) whereAre(keys []string) string {
	var b strings.Builder
	for _, n := range allNodes {
		fmt.Fprintf(&b, "  %s:", n)
		for _, peer := range []bool{false, true} {
			mc, err := dialMC(n)
			if err != nil {
				fmt.Fprintf(&b, " %v", err)
				continue
			}
			if peer {
				mc.conn.SetDeadline(time.Now().Add(5 * time.Second))
				fmt.Fprintf(mc.conn, "peer compose-test\r\n")
				if l, err := mc.line(); err != nil || l != "OK" {
					fmt.Fprintf(&b, " peer: %q %v", l, err)
					mc.Close()
					continue
				}
			}
			got, err := mc.getMany(keys)
			mc.Close()
			fmt.Fprintf(&b, " %s:", map[bool]string{false: "routed", true: "own store"}[peer])
			if err != nil {
				fmt.Fprintf(&b, " %v", err)
			}
			for _, k := range keys {
				if v, ok := got[k]; ok {
					fmt.Fprintf(&b, " %s=%.*s", k, min(len(v), len(k)+8), v)
				} else {
					fmt.Fprintf(&b, " %s=miss", k)
				}
			}
		}
		if mc, err := dialMC(n); err == nil {
			st, _ := mc.stats("")
			mc.Close()
			for _, l := range st {
				if f := strings.Fields(l); len(f) == 3 && slices.Contains([]string{"evictions", "curr_items", "total_items"}, f[1]) {
					fmt.Fprintf(&b, " %s=%s", f[1], f[2])
				}
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

// ---- a small memcache text client ----

type mcConn struct {
	conn net.Conn
	r    *bufio.Reader
	w    *bufio.Writer
}

func dialMC(node string) (*mcConn, error) {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(memcachePort[node]))
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	return &mcConn{conn: conn, r: bufio.NewReaderSize(conn, 64<<10), w: bufio.NewWriterSize(conn, 64<<10)}, nil
}

func (m *mcConn) Close() { m.conn.Close() }

// roundTrip sends what write buffered and then runs read, under one
// deadline. A pipelined batch of small commands fits the socket buffers, so
// writing all before reading cannot deadlock.
func (m *mcConn) roundTrip(write func(w *bufio.Writer), read func() error) error {
	m.conn.SetDeadline(time.Now().Add(30 * time.Second))
	write(m.w)
	if err := m.w.Flush(); err != nil {
		return err
	}
	return read()
}

func (m *mcConn) line() (string, error) {
	l, err := m.r.ReadString('\n')
	if err != nil {
		return "", err
	}
	if !strings.HasSuffix(l, "\r\n") {
		return "", fmt.Errorf("reply line %q does not end in \\r\\n", l)
	}
	return l[:len(l)-2], nil
}

func isErrorReply(l string) bool {
	return l == "ERROR" || strings.HasPrefix(l, "SERVER_ERROR") || strings.HasPrefix(l, "CLIENT_ERROR")
}

// setMany pipelines one set per key and returns each reply line.
func (m *mcConn) setMany(keys []string, round int) ([]string, error) {
	replies := make([]string, 0, len(keys))
	err := m.roundTrip(func(w *bufio.Writer) {
		for _, k := range keys {
			v := value(k, round)
			fmt.Fprintf(w, "set %s 0 0 %d\r\n", k, len(v))
			w.Write(v)
			w.WriteString("\r\n")
		}
	}, func() error {
		for range keys {
			l, err := m.line()
			if err != nil {
				return err
			}
			replies = append(replies, l)
		}
		return nil
	})
	return replies, err
}

// getMany pipelines multi-key gets of getKeys keys each. An error reply
// fails the batch (and leaves the connection unusable).
func (m *mcConn) getMany(keys []string) (map[string][]byte, error) {
	got := make(map[string][]byte, len(keys))
	var cmds int
	err := m.roundTrip(func(w *bufio.Writer) {
		for i := 0; i < len(keys); i += getKeys {
			w.WriteString("get " + strings.Join(keys[i:min(i+getKeys, len(keys))], " ") + "\r\n")
			cmds++
		}
	}, func() error {
		for range cmds {
			for {
				l, err := m.line()
				if err != nil {
					return err
				}
				if l == "END" {
					break
				}
				if isErrorReply(l) {
					return fmt.Errorf("get: %s", l)
				}
				f := strings.Fields(l)
				if len(f) < 4 || f[0] != "VALUE" {
					return fmt.Errorf("get: unexpected reply %q", l)
				}
				n, err := strconv.Atoi(f[3])
				if err != nil || n < 0 {
					return fmt.Errorf("get: bad length in %q", l)
				}
				data := make([]byte, n+2)
				if _, err := io.ReadFull(m.r, data); err != nil {
					return err
				}
				if !bytes.HasSuffix(data, []byte("\r\n")) {
					return fmt.Errorf("get %s: data block not ended by \\r\\n", f[1])
				}
				if _, dup := got[f[1]]; dup {
					return fmt.Errorf("get: %s returned twice", f[1])
				}
				got[f[1]] = data[:n]
			}
		}
		return nil
	})
	return got, err
}

// stats returns the STAT lines of `stats <arg>`.
func (m *mcConn) stats(arg string) ([]string, error) {
	var lines []string
	err := m.roundTrip(func(w *bufio.Writer) {
		w.WriteString("stats " + arg + "\r\n")
	}, func() error {
		for {
			l, err := m.line()
			if err != nil {
				return err
			}
			if l == "END" {
				return nil
			}
			if !strings.HasPrefix(l, "STAT ") {
				return fmt.Errorf("stats %s: %q", arg, l)
			}
			lines = append(lines, l)
		}
	})
	return lines, err
}
