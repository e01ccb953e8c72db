package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hotcache/hotcache/hotspot"
	"github.com/hotcache/hotcache/node"
	"github.com/hotcache/hotcache/node/nodetest"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden with the output of this run")

// result is one run of cachectl, in-process.
type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

func cachectl(t *testing.T, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, args, &stdout, &stderr)
	return result{code, stdout.String(), stderr.String()}
}

// ok runs cachectl and fails the test unless it exits 0.
func ok(t *testing.T, args ...string) string {
	t.Helper()
	r := cachectl(t, args...)
	if r.code != 0 {
		t.Fatalf("cachectl %s: %v", strings.Join(args, " "), r)
	}
	return r.stdout
}

func decode(t *testing.T, s string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatalf("JSON output: %v\n%s", err, s)
	}
}

var (
	addrRE     = regexp.MustCompile(`127\.0\.0\.1:\d+`)
	identityRE = regexp.MustCompile(`\b[0-9a-f]{16}\b`)
	numberRE   = regexp.MustCompile(`\b\d+(\.\d+)*\b`)
	spacesRE   = regexp.MustCompile(`  +`)
)

// normalize replaces what changes from run to run (addresses, ring
// identities, and the given patterns) with placeholders, then aligns the
// columns again with the table writer, so that a golden file checks the
// layout too.
func normalize(s string, more ...func(string) string) string {
	s = addrRE.ReplaceAllString(s, "ADDR")
	s = identityRE.ReplaceAllString(s, "IDENTITY")
	for _, f := range more {
		s = f(s)
	}
	t := &table{}
	for line := range strings.Lines(s) {
		if line = strings.TrimRight(line, "\n"); line == "" {
			t.blank()
			continue
		}
		t.add(spacesRE.Split(line, -1)...)
	}
	var b strings.Builder
	t.write(&b)
	return b.String()
}

// numbers replaces every number with N.
func numbers(s string) string { return numberRE.ReplaceAllString(s, "N") }

// golden compares got with testdata/name.golden, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (run with -update if the change is intended)\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

// deadAddr is a loopback address nothing listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// mc is a raw memcache connection for driving load.
type mc struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dialMCTest(t *testing.T, addr string) *mc {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &mc{t, c, bufio.NewReader(c)}
}

// do sends s and reads lines until n lines equal end.
func (m *mc) do(s, end string, n int) {
	m.t.Helper()
	m.c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(m.c, s); err != nil {
		m.t.Fatal(err)
	}
	for n > 0 {
		line, err := m.r.ReadString('\n')
		if err != nil {
			m.t.Fatal(err)
		}
		if strings.TrimSuffix(line, "\r\n") == end {
			n--
		}
	}
}

// hotCluster is three nodes whose analyzers find a key hot at 20 reads/s
// and keep it hot for a minute.
func hotCluster(t *testing.T) *nodetest.Cluster {
	return nodetest.Start(t, 3, func(i int, cfg *node.Config) {
		cfg.HotKeys = hotspot.Config{MinRate: 20, Unsampled: true, MinHot: time.Minute}
	})
}

// TestCommands runs every read-only command, get and set against one
// three-node cluster.
func TestCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test")
	}
	t.Parallel()
	c := hotCluster(t)
	seed := "-seeds=" + c.Addr(0)

	t.Run("members", func(t *testing.T) {
		golden(t, "members", normalize(ok(t, seed, "members")))
		var out struct {
			Self       string `json:"self"`
			Identity   string `json:"ring_identity"`
			Generation uint64 `json:"ring_generation"`
			Members    []struct {
				Name, Addr, State string
				Partitions        int
				SharePct          float64 `json:"share_pct"`
			}
		}
		decode(t, ok(t, seed, "-o", "json", "members"), &out)
		total, share := 0, 0.0
		for i, m := range out.Members {
			total += m.Partitions
			share += m.SharePct
			if m.Name != fmt.Sprintf("n%d", i) || m.Addr != c.Addr(i) || m.State != "alive" {
				t.Errorf("member %d: %+v", i, m)
			}
		}
		if out.Self != "n0" || out.Identity != c.Node(0).Ring().Identity() || out.Generation == 0 ||
			len(out.Members) != 3 || total != c.Node(0).Ring().Partitions() || share < 99.9 || share > 100.1 {
			t.Errorf("members JSON: %+v", out)
		}
	})

	t.Run("ring", func(t *testing.T) {
		gen := func(s string) string {
			return regexp.MustCompile(`(?m)^generation( +)\d+`).ReplaceAllString(s, "generation${1}N")
		}
		golden(t, "ring", normalize(ok(t, seed, "ring"), gen))
		var out struct {
			Seed, Identity, Hash    string
			Generation              uint64
			Partitions, Replication int
			Load                    float64
			Members                 []struct {
				Name, Addr, Admin string
				Partitions        int
			}
		}
		decode(t, ok(t, "ring", "-o", "json", seed), &out) // common flags after the command too
		r := c.Node(0).Ring()
		if out.Seed != c.Addr(0) || out.Identity != r.Identity() || out.Partitions != r.Partitions() ||
			out.Replication != 100 || out.Load != 1.25 || out.Hash != "xxhash64" || len(out.Members) != 3 {
			t.Errorf("ring JSON: %+v", out)
		}
		for i, m := range out.Members {
			if m.Addr != c.Addr(i) || m.Admin != c.Node(i).AdminAddr() || m.Partitions != r.PartitionCounts()[m.Name] {
				t.Errorf("ring JSON member %d: %+v", i, m)
			}
		}
	})

	t.Run("stats all", func(t *testing.T) {
		golden(t, "stats", normalize(ok(t, seed, "stats"), numbers))
		var out struct {
			Nodes []struct {
				Name, Addr, Error string
				Stats             map[string]string
			}
		}
		decode(t, ok(t, seed, "-o", "json", "stats"), &out)
		if len(out.Nodes) != 3 {
			t.Fatalf("stats JSON: %+v", out)
		}
		for i, n := range out.Nodes {
			if n.Name != fmt.Sprintf("n%d", i) || n.Addr != c.Addr(i) || n.Error != "" ||
				n.Stats["version"] != node.Version || n.Stats["forwarded"] == "" || n.Stats["pid"] == "" {
				t.Errorf("stats JSON node %d: %+v", i, n)
			}
		}
	})

	t.Run("stats one", func(t *testing.T) {
		out := ok(t, seed, "stats", "n1")
		if !strings.HasPrefix(out, "STAT ") {
			t.Errorf("stats n1 does not start with a header:\n%s", out)
		}
		for _, want := range []string{"pid", "uptime", "cmd_get", "curr_items", "forwarded", "version +" + regexp.QuoteMeta(node.Version)} {
			if !regexp.MustCompile(`(?m)^` + want + `\b`).MatchString(out) {
				t.Errorf("stats n1 lacks a line %q:\n%s", want, out)
			}
		}
		var js struct {
			Name, Addr string
			Stats      map[string]string
		}
		decode(t, ok(t, seed, "-o", "json", "stats", c.Addr(2)), &js)
		if js.Name != "n2" || js.Addr != c.Addr(2) || js.Stats["version"] != node.Version {
			t.Errorf("stats ADDR JSON: %+v", js)
		}
		r := cachectl(t, seed, "stats", "nosuch")
		if r.code != 1 || r.stderr != "cachectl: no member \"nosuch\" in the ring (members: n0, n1, n2)\n" {
			t.Errorf("stats of an unknown member: %v", r)
		}
	})

	t.Run("get set", func(t *testing.T) {
		if out := ok(t, seed, "set", "greeting", "hello world", "-flags", "7", "-exptime", "600"); out != "STORED\n" {
			t.Errorf("set: %q", out)
		}
		// Through another seed: the value is at its owner, wherever asked.
		if out := ok(t, "-seeds", c.Addr(2), "get", "greeting"); out != "hello world\n" {
			t.Errorf("get: %q", out)
		}
		var js struct {
			Key, Value string
			Found      bool
			Flags      uint32
			Cas        uint64
		}
		decode(t, ok(t, seed, "-o", "json", "get", "greeting"), &js)
		if js.Key != "greeting" || js.Value != "hello world" || !js.Found || js.Flags != 7 || js.Cas == 0 {
			t.Errorf("get JSON: %+v", js)
		}
		if out := ok(t, seed, "set", "neg", "--", "-5"); out != "STORED\n" {
			t.Errorf("set after --: %q", out)
		}
		if out := ok(t, seed, "get", "neg"); out != "-5\n" {
			t.Errorf("get neg: %q", out)
		}
		r := cachectl(t, seed, "get", "never-set")
		if r.code != 3 || r.stdout != "" || r.stderr != "cachectl: get never-set: not found\n" {
			t.Errorf("get of a missing key: %v", r)
		}
	})

	t.Run("seeds in order", func(t *testing.T) {
		var out struct{ Seed, Self string }
		decode(t, ok(t, "-seeds", deadAddr(t)+","+c.Addr(1), "-o", "json", "members"), &out)
		if out.Seed != c.Addr(1) || out.Self != "n1" {
			t.Errorf("members from the second seed: %+v", out)
		}
	})

	t.Run("hot", func(t *testing.T) {
		if out := ok(t, seed, "hot"); normalize(out) != normalize("KEY  NODE  READS/S  SERVED  EDGE_HITS\n(no hot keys)\n") {
			t.Errorf("hot before any load:\n%s", out)
		}
		owner, _ := c.Node(0).Ring().Owner([]byte("celebrity"))
		m := dialMCTest(t, owner.Addr)
		m.do("set celebrity 0 0 6\r\nfamous\r\n", "STORED", 1)
		gets := strings.Repeat("get celebrity\r\n", 100)
		deadline := time.Now().Add(60 * time.Second)
		var last string
		for {
			m.do(gets, "END", 100)
			last = ok(t, seed, "-o", "json", "hot")
			var rep hotReport
			decode(t, last, &rep)
			if len(rep.Keys) == 1 && rep.Keys[0].Key == "celebrity" && rep.Keys[0].Node == owner.Name &&
				rep.Keys[0].Served == "edge" && rep.Keys[0].ReadsPerSec >= 20 && len(rep.Nodes) == 3 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("hot never showed celebrity as hot at %s; last:\n%s", owner.Name, last)
			}
		}
		// MinHot keeps it hot for a minute: the table is stable.
		golden(t, "hot", normalize(ok(t, seed, "hot"), numbers))

		out := ok(t, seed, "hot", "-watch", "-interval", "50ms", "-count", "3")
		tables := strings.Split(out, "\n\n")
		if len(tables) != 3 || strings.Contains(out, clearScreen) {
			t.Fatalf("hot -watch -count 3 (not a terminal): want 3 tables separated by blank lines, got:\n%s", out)
		}
		for _, tb := range tables {
			if !strings.HasPrefix(tb, "KEY ") || !strings.Contains(tb, "\ncelebrity ") {
				t.Errorf("hot -watch table:\n%s", tb)
			}
		}
		out = ok(t, seed, "-o", "json", "hot", "-watch", "-interval", "50ms", "-count", "2")
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		if len(lines) != 2 {
			t.Fatalf("hot -watch -o json -count 2: want 2 lines of JSON, got:\n%s", out)
		}
		for _, l := range lines {
			var rep hotReport
			decode(t, l, &rep)
			if len(rep.Keys) != 1 || rep.Keys[0].Key != "celebrity" {
				t.Errorf("hot -watch JSON: %s", l)
			}
		}
	})
}

// TestUnreachableSeed: every command fails with the same clear message and
// exit status 1 when no seed answers.
func TestUnreachableSeed(t *testing.T) {
	dead := deadAddr(t)
	for _, args := range [][]string{
		{"members"}, {"ring"}, {"hot"}, {"stats"}, {"stats", "n1"}, {"get", "k"}, {"set", "k", "v"}, {"drain", "n1"},
		{"hot", "-watch", "-count", "1"},
	} {
		r := cachectl(t, append([]string{"-seeds", dead}, args...)...)
		want := "cachectl: no seed answered: " + dead + ": connection refused\n"
		if r.code != 1 || r.stdout != "" || r.stderr != want {
			t.Errorf("cachectl %s with an unreachable seed: %v\nwant exit 1 and stderr %q", strings.Join(args, " "), r, want)
		}
	}
	dead2 := deadAddr(t)
	r := cachectl(t, "-seeds", dead+","+dead2, "members")
	if want := "cachectl: no seed answered: " + dead + ": connection refused; " + dead2 + ": connection refused\n"; r.code != 1 || r.stderr != want {
		t.Errorf("two unreachable seeds: %v\nwant stderr %q", r, want)
	}
}

// TestUsage: bad command lines exit 2; -h exits 0.
func TestUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{nil, 2, "usage: cachectl"},
		{[]string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{[]string{"-o", "xml", "members"}, 2, "want one of table, json"},
		{[]string{"members", "extra"}, 2, "usage: cachectl members"},
		{[]string{"get"}, 2, "usage: cachectl get KEY"},
		{[]string{"set", "k"}, 2, "usage: cachectl set KEY VALUE"},
		{[]string{"hot", "-bogus"}, 2, "flag provided but not defined: -bogus"},
		{[]string{"-seeds", "", "members"}, 2, "-seeds is empty"},
		{[]string{"-h"}, 0, "exit status: 0 ok"},
		{[]string{"help"}, 0, "commands:"},
		{[]string{"hot", "-h"}, 0, "-watch"},
	} {
		r := cachectl(t, tc.args...)
		if r.code != tc.code || !strings.Contains(r.stderr, tc.msg) || r.stdout != "" {
			t.Errorf("cachectl %q: %v\nwant exit %d and %q on stderr", tc.args, r, tc.code, tc.msg)
		}
	}
	if r := cachectl(t, "hot", "-h"); strings.Contains(r.stderr, "-count") {
		t.Errorf("hot -h shows the hidden -count flag:\n%s", r.stderr)
	}
}

// fakeSeed answers "stats cluster" with a ring of the given members and
// anything else with ERROR.
func fakeSeed(t *testing.T, members ...string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if strings.TrimSpace(line) != "stats cluster" {
						io.WriteString(c, "ERROR\r\n")
						continue
					}
					var b strings.Builder
					b.WriteString("STAT self fake\r\nSTAT ring_identity 0123456789abcdef\r\nSTAT ring_generation 1\r\n")
					fmt.Fprintf(&b, "STAT members %d\r\n", len(members))
					for _, m := range members {
						b.WriteString("STAT member " + m + "\r\n")
					}
					b.WriteString("STAT forwarded 0\r\nSTAT forward_errors 0\r\nEND\r\n")
					io.WriteString(c, b.String())
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// TestUnreachableMemberInline: a member that cannot be reached shows as
// "unreachable" in the tables of multi-node commands, which still succeed,
// and as an error in their JSON.
func TestUnreachableMemberInline(t *testing.T) {
	live := nodetest.Standalone(t, node.Config{Name: "n0"})
	seed := fakeSeed(t, "ghost "+deadAddr(t)+" alive partitions=2000", "n0 "+live.Addr()+" alive partitions=2093")
	r := cachectl(t, "-seeds", seed, "stats")
	if r.code != 0 || !strings.Contains(r.stderr, "cachectl: ghost (127.0.0.1:") || !strings.Contains(r.stderr, "): connection refused\n") {
		t.Fatalf("stats with a dead member: %v", r)
	}
	golden(t, "stats_unreachable", normalize(r.stdout, numbers))
	r = cachectl(t, "-seeds", seed, "hot")
	if r.code != 0 {
		t.Fatalf("hot with a dead member: %v", r)
	}
	golden(t, "hot_unreachable", normalize(r.stdout, numbers))
	var rep hotReport
	decode(t, ok(t, "-seeds", seed, "-o", "json", "hot"), &rep)
	if len(rep.Nodes) != 2 || rep.Nodes[0].Name != "ghost" || rep.Nodes[0].Error != "connection refused" || rep.Nodes[1].Error != "" {
		t.Errorf("hot JSON with a dead member: %+v", rep)
	}
	var st struct{ Nodes []nodeStats }
	decode(t, ok(t, "-seeds", seed, "-o", "json", "stats"), &st)
	if len(st.Nodes) != 2 || st.Nodes[0].Error != "connection refused" || st.Nodes[1].Stats["version"] != node.Version {
		t.Errorf("stats JSON with a dead member: %+v", st)
	}
}

// TestDrain drains a node through its admin port. The endpoint only
// signals; as cmd/cached does, a goroutine waits on Drained and calls
// Shutdown, which leaves the cluster. n1 has no such goroutine: its drain
// times out.
func TestDrain(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test")
	}
	t.Parallel()
	c := nodetest.Start(t, 3)
	n2 := c.Node(2)
	stopped := make(chan error, 1)
	quit := make(chan struct{})
	t.Cleanup(func() { close(quit) })
	go func() {
		select {
		case <-n2.Drained():
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			stopped <- n2.Shutdown(ctx)
		case <-quit:
		}
	}()

	r := cachectl(t, "-seeds", c.Addr(0), "drain", "nosuch")
	if r.code != 1 || r.stderr != "cachectl: no member \"nosuch\" in the ring (members: n0, n1, n2)\n" {
		t.Errorf("drain of an unknown member: %v", r)
	}
	r = cachectl(t, "-seeds", c.Addr(0), "drain", "n1", "-timeout", "1500ms")
	if r.code != 1 || !strings.Contains(r.stderr, "cachectl: drain n1: not out of the ring after 1.5s (n1 is still in n0's ring (alive))") {
		t.Errorf("drain of a node nobody shuts down: %v", r)
	}

	// The seed is the node drained: drain watches from the other members.
	r = cachectl(t, "-seeds", c.Addr(2), "drain", "n2")
	if r.code != 0 || !regexp.MustCompile(`^n2 left the ring after \S+; n[01] sees 2 members\n$`).MatchString(r.stdout) ||
		!strings.Contains(r.stderr, "cachectl: draining n2 ("+c.Addr(2)+"): leave requested on http://"+n2.AdminAddr()+"/drain") {
		t.Fatalf("drain n2: %v", r)
	}
	select {
	case err := <-stopped:
		if err != nil {
			t.Errorf("n2 shutdown: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("n2 did not shut down")
	}
	deadline := time.Now().Add(nodetest.DetectionTime)
	for _, i := range []int{0, 1} {
		for {
			rg := c.Node(i).Ring()
			if _, in := rg.PartitionCounts()["n2"]; rg.Len() == 2 && !in {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("n%d still sees %v", i, rg.Members())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	var out struct{ Members []struct{ Name string } }
	decode(t, ok(t, "-seeds", c.Addr(1), "-o", "json", "members"), &out)
	if len(out.Members) != 2 || out.Members[0].Name != "n0" || out.Members[1].Name != "n1" {
		t.Errorf("members after the drain: %+v", out)
	}
}
