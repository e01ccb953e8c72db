package client_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hotcache/hotcache/client"
	"github.com/hotcache/hotcache/node"
	"github.com/hotcache/hotcache/node/nodetest"
	"github.com/hotcache/hotcache/protocol"
)

// A handlerProxy is a protocol.Server with a client Handler on 127.0.0.1:0,
// the proxy of cmd/cacheproxy without its flags.
type handlerProxy struct {
	addr string
	c    *client.Client
	h    *client.Handler
}

// serveHandler serves a Handler over a client for cfg until the test ends.
func serveHandler(t testing.TB, cfg client.Config, opts client.HandlerOptions) *handlerProxy {
	t.Helper()
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second // -race on a loaded 2-core machine
	}
	cfg.Logger = slog.New(slog.DiscardHandler)
	c, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	srv := &protocol.Server{MaxItemSize: opts.MaxItemSize, Logger: slog.New(slog.DiscardHandler)}
	opts.ServerStats = srv.Stats()
	h := client.NewHandler(c, opts)
	srv.Handler = h
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("proxy shutdown: %v", err)
		}
		<-done
	})
	return &handlerProxy{addr: ln.Addr().String(), c: c, h: h}
}

// pollUntil polls cond until it holds, failing t with the last thing seen
// after 30 s (the machine is small and shared, and -race slows it).
func pollUntil(t testing.TB, what string, cond func() (bool, any)) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok, seen := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; last seen: %v", what, seen)
		}
		time.Sleep(10 * time.Millisecond) // poll interval, not an assertion
	}
}

// waitRing waits until the proxy's client routes by the cluster's ring.
func (p *handlerProxy) waitRing(t testing.TB, cl *nodetest.Cluster) {
	t.Helper()
	want := cl.Node(0).Ring().Identity()
	pollUntil(t, "the proxy to learn the ring", func() (bool, any) {
		r := p.c.Ring()
		return r != nil && r.Identity() == want, r
	})
}

// mcConn is one memcache text connection driven by whole exchanges.
type mcConn struct {
	t   testing.TB
	c   net.Conn
	r   *bufio.Reader
	cas map[string]string // key -> cas unique last seen in a VALUE line
}

func dialProxy(t testing.TB, addr string) *mcConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &mcConn{t: t, c: c, r: bufio.NewReaderSize(c, 64<<10), cas: map[string]string{}}
}

var casRef = regexp.MustCompile(`\{cas:([^}]+)\}`)

// do sends send, with "{cas:KEY}" replaced by the cas unique last seen for
// KEY, followed by the sentinel "mn\r\n" in one write, and returns the
// replies before the sentinel's "MN\r\n". In VALUE lines the cas unique is
// replaced by "<cas>" (and remembered). No reply at all is "".
func (m *mcConn) do(send string) string {
	m.t.Helper()
	var missing string
	send = casRef.ReplaceAllStringFunc(send, func(s string) string {
		k := casRef.FindStringSubmatch(s)[1]
		cas, ok := m.cas[k]
		if !ok {
			missing = k
		}
		return cas
	})
	if missing != "" {
		m.t.Fatalf("no cas seen for %q yet", missing)
	}
	m.c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(m.c, send+"mn\r\n"); err != nil {
		m.t.Fatalf("write %q: %v", send, err)
	}
	var out strings.Builder
	for {
		line, err := m.r.ReadString('\n')
		if err != nil {
			m.t.Fatalf("reply to %.80q: %v (so far %q)", send, err, out.String())
		}
		if line == "MN\r\n" {
			return out.String()
		}
		if f := strings.Fields(line); len(f) >= 4 && f[0] == "VALUE" {
			n, err := strconv.Atoi(f[3])
			if err != nil {
				m.t.Fatalf("bad VALUE line %q", line)
			}
			if len(f) == 5 {
				m.cas[f[1]] = f[4]
				line = strings.Join(f[:4], " ") + " <cas>\r\n"
			}
			data := make([]byte, n+2)
			if _, err := io.ReadFull(m.r, data); err != nil {
				m.t.Fatalf("value of %q: %v", line, err)
			}
			line += string(data)
		}
		out.WriteString(line)
	}
}

// keysOnDistinctOwners returns n keys with prefix whose owners on r all
// differ.
func keysOnDistinctOwners(t testing.TB, p *handlerProxy, prefix string, n int) []string {
	t.Helper()
	owners := map[string]bool{}
	var keys []string
	for i := 0; len(keys) < n && i < 10000; i++ {
		k := fmt.Sprint(prefix, i)
		m, _ := p.c.Ring().Owner([]byte(k))
		if !owners[m.Name] {
			owners[m.Name] = true
			keys = append(keys, k)
		}
	}
	if len(keys) < n {
		t.Fatalf("no %d keys on distinct owners", n)
	}
	return keys
}

type exchange struct{ send, want string }

// TestHandler_protocol drives every command through a proxy in front of a
// three-node cluster, one connection per case, and checks the replies word
// for word: memcached's answers, the relayed error replies of the nodes, and
// a connection that survives each error.
func TestHandler_protocol(t *testing.T) {
	t.Parallel()
	const nodeItemMax = 64 << 10 // the nodes' -I, below the proxy's 1 MiB
	cl := nodetest.Start(t, 3, func(i int, cfg *node.Config) { cfg.MaxItemSize = nodeItemMax })
	p := serveHandler(t, client.Config{Seeds: []string{cl.Addr(1)}}, client.HandlerOptions{})
	p.waitRing(t, cl)

	span := keysOnDistinctOwners(t, p, "span:", 3)
	a, b, c := span[0], span[1], span[2]
	big := strings.Repeat("x", 2<<20)         // over the proxy's -I: refused by its parser
	mid := strings.Repeat("y", nodeItemMax+1) // under the proxy's -I, over the nodes'
	ctl := "ctl\x01key"                       // memcached takes control bytes in keys; the API does not
	val := func(k string, flags int, v string, cas bool) string {
		s := fmt.Sprintf("VALUE %s %d %d", k, flags, len(v))
		if cas {
			s += " <cas>"
		}
		return s + "\r\n" + v + "\r\n"
	}

	cases := []struct {
		name string
		ex   []exchange
	}{
		{"set_get_gets", []exchange{
			{"set sg 5 0 3\r\nabc\r\n", "STORED\r\n"},
			{"get sg\r\n", val("sg", 5, "abc", false) + "END\r\n"},
			{"gets sg\r\n", val("sg", 5, "abc", true) + "END\r\n"},
			{"get sg-missing\r\n", "END\r\n"},
			{"set sg-empty 0 0 0\r\n\r\n", "STORED\r\n"},
			{"get sg-empty\r\n", val("sg-empty", 0, "", false) + "END\r\n"},
			{"set sg-flags 4294967295 0 1\r\nz\r\n", "STORED\r\n"},
			{"get sg-flags\r\n", val("sg-flags", 4294967295, "z", false) + "END\r\n"},
			{"set sg-expired 0 -1 1\r\nz\r\n", "STORED\r\n"},
			{"get sg-expired\r\n", "END\r\n"},
		}},
		{"multiget_spans_nodes_in_order_with_duplicates", []exchange{
			{"set " + a + " 1 0 1\r\nA\r\nset " + b + " 2 0 1\r\nB\r\nset " + c + " 3 0 1\r\nC\r\n", "STORED\r\nSTORED\r\nSTORED\r\n"},
			{"get " + c + " nope " + a + " " + b + " " + a + "\r\n",
				val(c, 3, "C", false) + val(a, 1, "A", false) + val(b, 2, "B", false) + val(a, 1, "A", false) + "END\r\n"},
			{"gets " + b + " " + c + "\r\n", val(b, 2, "B", true) + val(c, 3, "C", true) + "END\r\n"},
			{"get " + a + " " + strings.Repeat("k", 251) + "\r\n", "CLIENT_ERROR bad command line format\r\n"},
		}},
		{"add_replace_append_prepend", []exchange{
			{"add ar 0 0 1\r\n1\r\n", "STORED\r\n"},
			{"add ar 0 0 1\r\n2\r\n", "NOT_STORED\r\n"},
			{"replace ar-missing 0 0 1\r\n2\r\n", "NOT_STORED\r\n"},
			{"replace ar 7 0 1\r\n3\r\n", "STORED\r\n"},
			{"append ar 0 0 2\r\n45\r\n", "STORED\r\n"},
			{"prepend ar 0 0 2\r\n01\r\n", "STORED\r\n"},
			{"get ar\r\n", val("ar", 7, "01345", false) + "END\r\n"},
			{"append ar-missing 0 0 1\r\nx\r\n", "NOT_STORED\r\n"},
			{"prepend ar-missing 0 0 1\r\nx\r\n", "NOT_STORED\r\n"},
		}},
		{"cas_flow", []exchange{
			{"set cf 0 0 2\r\nv1\r\n", "STORED\r\n"},
			{"gets cf\r\n", val("cf", 0, "v1", true) + "END\r\n"},
			{"cas cf 0 0 2 {cas:cf}\r\nv2\r\n", "STORED\r\n"},
			{"cas cf 0 0 2 {cas:cf}\r\nv3\r\n", "EXISTS\r\n"},
			{"get cf\r\n", val("cf", 0, "v2", false) + "END\r\n"},
			{"cas cf-missing 0 0 1 1\r\nx\r\n", "NOT_FOUND\r\n"},
			{"cas cf 0 0 1 x\r\n", "CLIENT_ERROR bad command line format\r\n"},
		}},
		{"delete", []exchange{
			{"set del 0 0 1\r\nx\r\n", "STORED\r\n"},
			{"delete del\r\n", "DELETED\r\n"},
			{"delete del\r\n", "NOT_FOUND\r\n"},
			{"delete del 0\r\n", "NOT_FOUND\r\n"},
			{"delete del 5\r\n", "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n"},
		}},
		{"incr_decr", []exchange{
			{"set num 0 0 2\r\n10\r\n", "STORED\r\n"},
			{"incr num 5\r\n", "15\r\n"},
			{"decr num 20\r\n", "0\r\n"},
			{"incr num 18446744073709551615\r\n", "18446744073709551615\r\n"},
			{"incr num 2\r\n", "1\r\n"},
			{"incr num-missing 1\r\n", "NOT_FOUND\r\n"},
			{"decr num-missing 1\r\n", "NOT_FOUND\r\n"},
			{"set nan 0 0 3\r\nabc\r\n", "STORED\r\n"},
			{"incr nan 1\r\n", "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"},
			{"decr nan 1\r\n", "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"},
			{"incr num x\r\n", "CLIENT_ERROR invalid numeric delta argument\r\n"},
		}},
		{"touch_gat_gats", []exchange{
			{"set tg 3 0 1\r\nt\r\n", "STORED\r\n"},
			{"touch tg 100\r\n", "TOUCHED\r\n"},
			{"touch tg-missing 100\r\n", "NOT_FOUND\r\n"},
			{"gat 100 tg\r\n", val("tg", 3, "t", false) + "END\r\n"},
			{"gats 100 tg tg-missing tg\r\n", val("tg", 3, "t", true) + val("tg", 3, "t", true) + "END\r\n"},
			{"gat 100 tg-missing\r\n", "END\r\n"},
			{"gat 100 " + a + " " + b + " " + c + "\r\n", val(a, 1, "A", false) + val(b, 2, "B", false) + val(c, 3, "C", false) + "END\r\n"},
			{"gat x tg\r\n", "CLIENT_ERROR invalid exptime argument\r\n"},
			{"touch tg x\r\n", "CLIENT_ERROR invalid exptime argument\r\n"},
			{"touch tg -1\r\n", "TOUCHED\r\n"},
			{"get tg\r\n", "END\r\n"},
		}},
		{"noreply", []exchange{
			{"set nr 0 0 1 noreply\r\nx\r\n", ""},
			{"get nr\r\n", val("nr", 0, "x", false) + "END\r\n"},
			{"add nr 0 0 1 noreply\r\ny\r\n", ""},
			{"append nr 0 0 1 noreply\r\ny\r\n", ""},
			{"get nr\r\n", val("nr", 0, "xy", false) + "END\r\n"},
			{"set nr-n 0 0 1 noreply\r\n5\r\nincr nr-n 1 noreply\r\ndecr nr-n 3 noreply\r\n", ""},
			{"get nr-n\r\n", val("nr-n", 0, "3", false) + "END\r\n"},
			{"incr nr 1 noreply\r\n", ""}, // an error reply is dropped too
			{"touch nr 100 noreply\r\ndelete nr noreply\r\n", ""},
			{"get nr\r\n", "END\r\n"},
			{"set nr 0 0 -1 noreply\r\n", ""},
			{"verbosity 1 noreply\r\n", ""},
		}},
		{"bad_input", []exchange{
			{"set bad 0 0 -1\r\n", "CLIENT_ERROR bad command line format\r\n"},
			{"set bad 0 0 x\r\n", "CLIENT_ERROR bad command line format\r\n"},
			{"set bad 0 0\r\n", "ERROR\r\n"},
			{"set bad 0 0 1\r\nxy\r\n", "CLIENT_ERROR bad data chunk\r\nERROR\r\n"}, // memcached reads "\n" as an empty command
			{"get\r\n", "ERROR\r\n"},
			{"get " + strings.Repeat("k", 251) + "\r\n", "CLIENT_ERROR bad command line format\r\n"},
			{"get " + strings.Repeat("k", 250) + "\r\n", "END\r\n"},
			{"bogus\r\n", "ERROR\r\n"},
			{"watch edge 1\r\n", "ERROR\r\n"},
			{"peer n0\r\n", "ERROR\r\n"},
			{"stats bogus\r\n", "ERROR\r\n"},
			{"set ok 0 0 2\r\nok\r\n", "STORED\r\n"}, // still in step
		}},
		{"too_large", []exchange{
			{"set tl 0 0 1\r\nx\r\n", "STORED\r\n"},
			{"set tl 0 0 " + strconv.Itoa(len(big)) + "\r\n" + big + "\r\n", "SERVER_ERROR object too large for cache\r\n"},
			{"get tl\r\n", "END\r\n"}, // memcached unlinks the key of a set refused as too large
			{"set tl 0 0 " + strconv.Itoa(len(mid)) + "\r\n" + mid + "\r\n", "SERVER_ERROR object too large for cache\r\n"},
			{"add tl 0 0 " + strconv.Itoa(len(big)) + "\r\n" + big + "\r\n", "SERVER_ERROR object too large for cache\r\n"},
			{"set tl 0 0 1\r\ny\r\n", "STORED\r\n"},
		}},
		{"control_bytes_in_keys", []exchange{
			{"set " + ctl + " 0 0 1\r\n1\r\n", "STORED\r\n"},
			{"get " + ctl + " " + a + "\r\n", val(ctl, 0, "1", false) + val(a, 1, "A", false) + "END\r\n"},
			{"get " + ctl + "\r\n", val(ctl, 0, "1", false) + "END\r\n"},
			{"gats 0 " + ctl + "\r\n", val(ctl, 0, "1", true) + "END\r\n"},
			{"incr " + ctl + " 2\r\n", "3\r\n"},
			{"touch " + ctl + " 0\r\n", "TOUCHED\r\n"},
			{"append " + ctl + " 0 0 1\r\n4\r\n", "STORED\r\n"},
			{"get " + ctl + "\r\n", val(ctl, 0, "34", false) + "END\r\n"},
			{"delete " + ctl + "\r\n", "DELETED\r\n"},
			{"get " + ctl + "\r\n", "END\r\n"},
		}},
		{"misc", []exchange{
			{"version\r\n", "VERSION " + client.DefaultHandlerVersion + "\r\n"},
			{"verbosity 1\r\n", "OK\r\n"},
			{"verbosity\r\n", "ERROR\r\n"},
			{"stats items\r\nstats slabs\r\n", "END\r\nEND\r\n"},
			{"stats hotkeys\r\n", "END\r\n"}, // nothing is hot here
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := dialProxy(t, p.addr)
			for i, ex := range tc.ex {
				if got := m.do(ex.send); got != ex.want {
					t.Fatalf("exchange %d: sent %.120q\n got %.200q\nwant %.200q", i+1, ex.send, got, ex.want)
				}
			}
		})
	}

	t.Run("stats", func(t *testing.T) {
		m := dialProxy(t, p.addr)
		st := parseStats(t, m.do("stats\r\n"))
		for _, f := range []string{"pid", "uptime", "time", "version", "curr_connections", "total_connections",
			"cmd_get", "get_hits", "get_misses", "cmd_set", "delete_hits", "delete_misses", "owner_errors",
			"edge_replicas", "edge_bytes", "edge_hits", "edge_pushes", "edge_invalidations", "edge_cools",
			"edge_refreshes", "edge_expired", "edge_dropped", "edge_streams"} {
			if _, ok := st[f]; !ok {
				t.Errorf("stats has no %s", f)
			}
		}
		if st["version"] != client.DefaultHandlerVersion || st["ring_members"] != "3" {
			t.Errorf("stats version %q ring_members %q", st["version"], st["ring_members"])
		}
		hs := p.h.Stats()
		if strconv.FormatUint(hs.GetHits, 10) != st["get_hits"] || hs.GetHits == 0 || hs.GetMisses == 0 ||
			hs.DeleteHits == 0 || hs.DeleteMisses == 0 || hs.CasHits != 1 || hs.CasBadval != 1 || hs.CasMisses != 1 {
			t.Errorf("counters after the cases: %+v; stats %v", hs, st)
		}
		if n, _ := strconv.Atoi(st["curr_connections"]); n < 1 {
			t.Errorf("curr_connections %q", st["curr_connections"])
		}
		cs := parseStats(t, m.do("stats cluster\r\n"))
		if cs["ring_identity"] != cl.Node(0).Ring().Identity() || cs["members"] != "3" {
			t.Errorf("stats cluster: %v", cs)
		}
		if got := m.do("stats reset\r\n"); got != "RESET\r\n" {
			t.Errorf("stats reset: %q", got)
		}
		if st := parseStats(t, m.do("stats\r\n")); st["get_hits"] != "0" || st["cmd_set"] != "0" {
			t.Errorf("after stats reset: get_hits %s cmd_set %s", st["get_hits"], st["cmd_set"])
		}
		if ss := parseStats(t, m.do("stats settings\r\n")); ss["item_size_max"] != strconv.Itoa(protocol.DefaultMaxItemSize) || ss["verbosity"] != "1" {
			t.Errorf("stats settings: %v", ss)
		}
	})

	// Last: flush_all reaches every node, at once or after its delay.
	t.Run("flush_all", func(t *testing.T) {
		m := dialProxy(t, p.addr)
		set := "set " + a + " 0 0 1\r\nA\r\nset " + b + " 0 0 1\r\nB\r\nset " + c + " 0 0 1\r\nC\r\n"
		all := "get " + a + " " + b + " " + c + "\r\n"
		m.do(set)
		if got := m.do("flush_all\r\n"); got != "OK\r\n" {
			t.Fatalf("flush_all: %q", got)
		}
		if got := m.do(all); got != "END\r\n" {
			t.Fatalf("after flush_all: %q", got)
		}
		m.do(set)
		if got := m.do("flush_all noreply\r\n"); got != "" {
			t.Fatalf("flush_all noreply: %q", got)
		}
		if got := m.do(all); got != "END\r\n" {
			t.Fatalf("after flush_all noreply: %q", got)
		}
		m.do(set)
		if got := m.do("flush_all 2\r\n"); got != "OK\r\n" {
			t.Fatalf("flush_all 2: %q", got)
		}
		if got := m.do(all); strings.Count(got, "VALUE") != 3 {
			t.Fatalf("right after flush_all 2 the items must still be there: %q", got)
		}
		pollUntil(t, "the delayed flush_all on every node", func() (bool, any) {
			got := m.do(all)
			return got == "END\r\n", got
		})
	})
}

func parseStats(t testing.TB, reply string) map[string]string {
	t.Helper()
	out := map[string]string{}
	lines := strings.Split(strings.TrimSuffix(reply, "\r\n"), "\r\n")
	if len(lines) == 0 || lines[len(lines)-1] != "END" {
		t.Fatalf("stats reply does not end in END: %q", reply)
	}
	for _, l := range lines[:len(lines)-1] {
		name, value, ok := strings.Cut(strings.TrimPrefix(l, "STAT "), " ")
		if !ok || !strings.HasPrefix(l, "STAT ") {
			t.Fatalf("stats line %q", l)
		}
		out[name] = value
	}
	return out
}

// TestHandler_unreachableOwner: in static mode over one live node, one
// closed port and one server that accepts but never answers, writes to the
// dead owners answer SERVER_ERROR naming them, reads of their keys are
// misses, nothing waits past the handler's timeout, and the connection goes
// on serving.
func TestHandler_unreachableOwner(t *testing.T) {
	t.Parallel()
	live := nodetest.Standalone(t, node.Config{Name: "solo"}).Addr()
	closed := closedAddr(t)
	silent := silentServer(t)
	p := serveHandler(t, client.Config{
		Servers:          []string{live, closed, silent},
		Timeout:          300 * time.Millisecond,
		DialTimeout:      300 * time.Millisecond,
		FailureThreshold: 1000, // keep dialing: every request meets the dead server itself
	}, client.HandlerOptions{})
	owned := map[string]string{}
	for i := 0; len(owned) < 3; i++ {
		k := fmt.Sprint("dead:", i)
		m, _ := p.c.Ring().Owner([]byte(k))
		if _, ok := owned[m.Addr]; !ok {
			owned[m.Addr] = k
		}
	}
	m := dialProxy(t, p.addr)
	for _, dead := range []string{closed, silent} {
		k := owned[dead]
		start := time.Now()
		got := m.do("set " + k + " 0 0 1\r\nx\r\n")
		if want := "SERVER_ERROR owner " + dead + " unavailable: "; !strings.HasPrefix(got, want) {
			t.Errorf("set of a key owned by %s: %q, want %q...", dead, got, want)
		}
		if got := m.do("get " + k + " " + owned[live] + "\r\n"); got != "END\r\n" {
			t.Errorf("get of a key owned by %s: %q, want a miss", dead, got)
		}
		for _, cmd := range []string{"delete " + k + "\r\n", "incr " + k + " 1\r\n", "touch " + k + " 1\r\n"} {
			if got := m.do(cmd); !strings.HasPrefix(got, "SERVER_ERROR owner "+dead+" unavailable: ") {
				t.Errorf("%q: %q", cmd, got)
			}
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("five requests to the dead owner %s took %v", dead, d)
		}
	}
	if got := m.do("set " + owned[live] + " 0 0 1\r\nx\r\nget " + owned[live] + "\r\n"); got != "STORED\r\nVALUE "+owned[live]+" 0 1\r\nx\r\nEND\r\n" {
		t.Errorf("the live node through the same connection: %q", got)
	}
	if got := m.do("flush_all\r\n"); !strings.HasPrefix(got, "SERVER_ERROR flush_all reached only part of the cluster: ") {
		t.Errorf("flush_all with dead servers: %q", got)
	}
	if hs := p.h.Stats(); hs.OwnerErrors == 0 {
		t.Errorf("no owner errors counted: %+v", hs)
	}
}

// TestHandler_noRingYet: a proxy whose seeds do not answer fails requests
// with SERVER_ERROR within its timeout instead of holding them.
func TestHandler_noRingYet(t *testing.T) {
	t.Parallel()
	p := serveHandler(t, client.Config{Seeds: []string{closedAddr(t)}, Timeout: 200 * time.Millisecond, DialTimeout: 200 * time.Millisecond},
		client.HandlerOptions{})
	m := dialProxy(t, p.addr)
	for _, cmd := range []string{"get k\r\n", "set k 0 0 1\r\nx\r\n", "flush_all\r\n"} {
		start := time.Now()
		if got := m.do(cmd); !strings.HasPrefix(got, "SERVER_ERROR ") {
			t.Errorf("%q without a ring: %q", cmd, got)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%q took %v", cmd, d)
		}
	}
	if got := m.do("version\r\n"); !strings.HasPrefix(got, "VERSION ") {
		t.Errorf("version: %q", got)
	}
}

// TestHandler_concurrentClients: many connections setting and reading their
// own keys through one proxy at once, pipelined, all see their own writes.
func TestHandler_concurrentClients(t *testing.T) {
	t.Parallel()
	cl := nodetest.Start(t, 3)
	p := serveHandler(t, client.Config{Seeds: []string{cl.Addr(0)}}, client.HandlerOptions{})
	p.waitRing(t, cl)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			m := dialProxy(t, p.addr)
			for i := range 50 {
				var send, want bytes.Buffer
				for j := range 10 {
					k := fmt.Sprintf("conc:%d:%d:%d", g, i, j)
					fmt.Fprintf(&send, "set %s 0 0 %d\r\n%s\r\n", k, len(k), k)
					want.WriteString("STORED\r\n")
				}
				send.WriteString("get")
				for j := range 10 {
					k := fmt.Sprintf("conc:%d:%d:%d", g, i, j)
					fmt.Fprintf(&send, " %s", k)
					fmt.Fprintf(&want, "VALUE %s 0 %d\r\n%s\r\n", k, len(k), k)
				}
				send.WriteString("\r\n")
				want.WriteString("END\r\n")
				if got := m.do(send.String()); got != want.String() {
					t.Errorf("goroutine %d round %d:\n got %q\nwant %q", g, i, got, want.String())
					return
				}
			}
		})
	}
	wg.Wait()
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// silentServer accepts connections and never answers, until the test ends.
func silentServer(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			go io.Copy(io.Discard, c)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return ln.Addr().String()
}
