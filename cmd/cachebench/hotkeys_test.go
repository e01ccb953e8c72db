package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestMaxOverMean(t *testing.T) {
	for _, c := range []struct {
		loads []uint64
		want  float64
	}{
		{nil, 0},
		{[]uint64{0, 0, 0}, 0},
		{[]uint64{5, 5, 5}, 1},
		{[]uint64{3, 1, 2}, 1.5},
		{[]uint64{9, 0, 0}, 3},
		{[]uint64{7}, 1},
		{[]uint64{1 << 62, 1 << 62, 1 << 61}, 1.2},
	} {
		if got := maxOverMean(c.loads); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("maxOverMean(%v) = %v, want %v", c.loads, got, c.want)
		}
	}
}

func TestParseStats(t *testing.T) {
	reply := "STAT pid 42\r\nSTAT version 1.6.18-hotcache\r\n" +
		"STAT hotkey user:0000001:profile reads_per_s=900 served=edge edge_hits=17\r\nSTAT empty\r\nEND\r\nSTAT after 1\r\n"
	st, err := parseStats(bufio.NewReader(strings.NewReader(reply)))
	if err != nil {
		t.Fatal(err)
	}
	want := []stat{{"pid", "42"}, {"version", "1.6.18-hotcache"},
		{"hotkey", "user:0000001:profile reads_per_s=900 served=edge edge_hits=17"}, {"empty", ""}}
	if len(st) != len(want) {
		t.Fatalf("parsed %q, want %q", st, want)
	}
	for i := range want {
		if st[i] != want[i] {
			t.Errorf("stat %d = %q, want %q", i, st[i], want[i])
		}
	}
	m := statMap(st)
	if v, ok := statUint(m, "pid"); !ok || v != 42 {
		t.Errorf("pid = %d, %v", v, ok)
	}
	for _, name := range []string{"version", "missing", "empty"} {
		if _, ok := statUint(m, name); ok {
			t.Errorf("statUint(%q) is a number", name)
		}
	}
	for _, bad := range []string{"ERROR\r\n", "SERVER_ERROR busy\r\n", "STAT pid 1\r\n", "STAT pid 1\r\nVALUE x 0 1\r\n", "STAT \r\nEND\r\n"} {
		if _, err := parseStats(bufio.NewReader(strings.NewReader(bad))); err == nil {
			t.Errorf("parseStats(%q): no error", bad)
		}
	}
}

func TestParseNodeHotkeys(t *testing.T) {
	st := []stat{
		{"read_rate", "1000"},
		{"edge_hits", "99"}, // the node's total, not a key
		{"hotkey", "user:0000000:profile reads_per_s=5000 served=edge edge_hits=1234"},
		{"hotkey", "user:0000001:profile reads_per_s=800 served=node edge_hits=0"},
		{"hotkey", "user:0000002:profile served=draining edge_hits=7 reads_per_s=10"},
		{"hotkey", "user:0000003:profile reads_per_s=10 served=edge"},  // no edge_hits
		{"hotkey", "user:0000004:profile reads_per_s=10 edge_hits=-1"}, // not a count
		{"hotkey", ""}, // no key
		{"hot", "user:0000005:profile reads_per_s=10 edge_hits=3 since=1"}, // "stats hot", not hotkeys
		{"hotkey", "user:0000006:profile reads_per_s=10 edge_hits=18446744073709551615"},
	}
	got := parseNodeHotkeys(st)
	want := map[string]uint64{
		"user:0000000:profile": 1234, "user:0000001:profile": 0, "user:0000002:profile": 7,
		"user:0000006:profile": math.MaxUint64,
	}
	if !maps.Equal(got, want) {
		t.Errorf("parseNodeHotkeys = %v, want %v", got, want)
	}
}

func TestAddHits(t *testing.T) {
	total := map[string]uint64{"kept": 1}
	prev := map[string]uint64{"grew": 10, "same": 5, "restarted": 100, "dropped": 50, "kept": 3}
	cur := map[string]uint64{"grew": 25, "same": 5, "restarted": 30, "new": 8, "kept": 3}
	addHits(total, prev, cur)
	want := map[string]uint64{"kept": 1, "grew": 15, "same": 0, "restarted": 30, "new": 8}
	if !maps.Equal(total, want) {
		t.Errorf("addHits = %v, want %v", total, want)
	}
}

func TestHitTracker(t *testing.T) {
	tr := newHitTracker(2)
	// The first sample of each node is the baseline: nothing counts.
	tr.observe(0, map[string]uint64{"a": 1000, "b": 10})
	tr.observe(1, map[string]uint64{"c": 500})
	tr.observe(0, map[string]uint64{"a": 1100, "b": 12})
	tr.observe(1, map[string]uint64{"c": 40, "d": 9}) // c re-pushed: its counter restarted
	tr.observe(0, map[string]uint64{"a": 1300})       // b dropped
	tr.observe(0, map[string]uint64{"a": 1300, "b": 4})
	tr.observe(1, map[string]uint64{"c": 60, "d": 9})
	want := map[string]uint64{"a": 300, "b": 2 + 4, "c": 40 + 20, "d": 9}
	if !maps.Equal(tr.total, want) {
		t.Errorf("totals %v, want %v", tr.total, want)
	}
	// A node with no hot keys at first is a baseline too, not a missing one.
	tr = newHitTracker(1)
	tr.observe(0, map[string]uint64{})
	tr.observe(0, map[string]uint64{"a": 5})
	if tr.total["a"] != 5 {
		t.Errorf("a key pushed after an empty baseline counted %d, want 5", tr.total["a"])
	}
}

func TestNodeRequests(t *testing.T) {
	m := map[string]string{"cmd_get": "100", "cmd_set": "20", "cmd_touch": "3", "delete_hits": "1", "delete_misses": "2",
		"incr_hits": "4", "decr_misses": "5", "get_hits": "90", "cmd_flush": "7"}
	rc, err := nodeRequests(m)
	if err != nil {
		t.Fatal(err)
	}
	if want := (requestCounts{requests: 135, gets: 100, sets: 20}); rc != want {
		t.Errorf("nodeRequests = %+v, want %+v", rc, want)
	}
	for _, name := range []string{"cmd_get", "cmd_set"} {
		bad := maps.Clone(m)
		delete(bad, name)
		if _, err := nodeRequests(bad); err == nil {
			t.Errorf("no error without %s", name)
		}
	}
	d, err := rc.sub(requestCounts{requests: 35, gets: 40, sets: 5})
	if err != nil || d != (requestCounts{requests: 100, gets: 60, sets: 15}) {
		t.Errorf("sub = %+v, %v", d, err)
	}
	if _, err := rc.sub(requestCounts{requests: 1, gets: 101}); err == nil {
		t.Error("sub accepted a counter that went down")
	}
}

func TestHotkeysFlags(t *testing.T) {
	o, err := parseHotkeysFlags(nil, new(strings.Builder))
	if err != nil {
		t.Fatal(err)
	}
	// The scenario of docs/benchmarks.md.
	if o.cachedPath != "bin/cached" || o.proxyPath != "bin/cacheproxy" || o.keys != 1000000 || o.s != 1.2 ||
		o.setRatio != 0.1 || o.valueSize != 100 || o.conns != 50 || o.pipeline != 1 || o.warmup != 3*time.Second ||
		o.duration != 15*time.Second || o.memoryMB != 1024 {
		t.Errorf("defaults %+v", o)
	}
	if lo := o.loadOptions(); lo.getWeight != 900 || lo.setWeight != 100 || lo.keys != o.keys || lo.valueSize != 100 {
		t.Errorf("loadOptions %+v", lo)
	}
	for _, args := range [][]string{
		{"-keys", "9"}, {"-zipf", "-1"}, {"-set-ratio", "1"}, {"-set-ratio", "-0.1"}, {"-conns", "0"},
		{"-pipeline", "0"}, {"-duration", "0s"}, {"-warmup", "-1s"}, {"-m", "0"}, {"-proxy", ""}, {"extra"},
	} {
		if _, err := parseHotkeysFlags(args, new(strings.Builder)); err == nil {
			t.Errorf("%q: no error", args)
		}
	}
}

func TestHotkeysReportFinish(t *testing.T) {
	off := &hotkeysPhase{OpsPerSec: 100, Latency: latency{P99: 4000}, NodeMaxOverMean: 1.4}
	on := &hotkeysPhase{OpsPerSec: 150, Latency: latency{P99: 2000}, NodeMaxOverMean: 1.05, TopEdgeShare: 0.89}
	rep := &hotkeysReport{Phases: []*hotkeysPhase{off, on}}
	rep.finish()
	if r := rep.OnOverOff; r.OpsPerSec != 1.5 || r.P99 != 0.5 || math.Abs(r.NodeMaxOverMean-0.75) > 1e-12 {
		t.Errorf("on/off %+v", r)
	}
	if len(rep.Goals) != 2 || !rep.Goals[0].Met || rep.Goals[1].Met ||
		rep.Goals[0].Goal != "max/mean <= 1.2 with replication on" || rep.Goals[1].Goal != ">= 90% of top-10 reads at the edge" {
		t.Errorf("goals %+v", rep.Goals)
	}
}

// buildHotkeysBinaries builds cached and cacheproxy into a temporary
// directory. It skips the test if ./cmd/cacheproxy has no Go files yet.
func buildHotkeysBinaries(t *testing.T) (cached, proxy string) {
	t.Helper()
	if files, _ := filepath.Glob("../cacheproxy/*.go"); len(files) == 0 {
		t.Skip("cmd/cacheproxy has no Go files yet: nothing to run the hotkeys scenario against")
	}
	dir := t.TempDir()
	cached, proxy = filepath.Join(dir, "cached"), filepath.Join(dir, "cacheproxy")
	for bin, pkg := range map[string]string{cached: "../cached", proxy: "../cacheproxy"} {
		cmd := exec.Command("go", "build", "-o", bin, pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", pkg, err, out)
		}
	}
	return cached, proxy
}

func TestHotkeys_endToEnd(t *testing.T) {
	t.Parallel()
	cached, proxy := buildHotkeysBinaries(t)
	jsonPath := filepath.Join(t.TempDir(), "hotkeys.json")
	out, stderr, err := runCLI(t, t.Context(), "hotkeys", "-cached", cached, "-proxy", proxy,
		"-keys", "10000", "-duration", "2s", "-warmup", "1s", "-conns", "4", "-json", jsonPath)
	if err != nil {
		t.Fatalf("hotkeys: %v\nstdout:\n%s\nstderr:\n%s", err, out, stderr)
	}
	assertGone(t, stderr, hotkeysNodes+2) // the nodes and one proxy per phase
	for _, want := range []string{"replication off", "replication on", "node max/mean", "node3 requests",
		"goal: max/mean <= 1.2 with replication on", "goal: >= 90% of top-10 reads at the edge"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	b, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var rep hotkeysReport
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("%v in %s", err, b)
	}
	if len(rep.Phases) != 2 || rep.Phases[0].Name != "off" || rep.Phases[0].Replication ||
		rep.Phases[1].Name != "on" || !rep.Phases[1].Replication {
		t.Fatalf("want phases off then on, got %s", b)
	}
	finite := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
	for _, ph := range rep.Phases {
		if ph.Prefilled != 10000 {
			t.Errorf("%s: prefilled %d keys, want 10000", ph.Name, ph.Prefilled)
		}
		if ph.Ops <= 0 || !(ph.OpsPerSec > 0) || ph.Gets+ph.Sets != ph.Ops || ph.Errors != 0 {
			t.Errorf("%s: ops=%d ops/s=%v gets=%d sets=%d errors=%d (first %q)", ph.Name, ph.Ops, ph.OpsPerSec, ph.Gets, ph.Sets, ph.Errors, ph.FirstError)
		}
		if ph.HitRatio != 1 {
			t.Errorf("%s: hit ratio %v after the prefill", ph.Name, ph.HitRatio)
		}
		if l := ph.Latency; !(0 < l.P50 && l.P50 <= l.P99 && l.P99 <= l.Max) {
			t.Errorf("%s: latency %+v", ph.Name, l)
		}
		if len(ph.Nodes) != hotkeysNodes {
			t.Fatalf("%s: %d node counts, want %d", ph.Name, len(ph.Nodes), hotkeysNodes)
		}
		var share float64
		for _, n := range ph.Nodes {
			if n.Requests == 0 || n.Requests < n.Gets+n.Sets || !finite(n.Share) {
				t.Errorf("%s: node %+v", ph.Name, n)
			}
			share += n.Share
		}
		if math.Abs(share-1) > 1e-9 {
			t.Errorf("%s: node shares sum to %v", ph.Name, share)
		}
		if !(ph.NodeMaxOverMean >= 1 && ph.NodeMaxOverMean <= hotkeysNodes) {
			t.Errorf("%s: node max/mean %v", ph.Name, ph.NodeMaxOverMean)
		}
		if ph.ProxyGetsFrom != "proxy cmd_get" || ph.ProxyGets == 0 || !finite(ph.EdgeShare) || ph.EdgeShare > 1 {
			t.Errorf("%s: proxy gets %d (from %s), edge share %v", ph.Name, ph.ProxyGets, ph.ProxyGetsFrom, ph.EdgeShare)
		}
		if len(ph.Top) != topKeys || ph.TopGets <= 0 || !finite(ph.TopEdgeShare) {
			t.Errorf("%s: top keys %+v, %d gets, edge share %v", ph.Name, ph.Top, ph.TopGets, ph.TopEdgeShare)
		}
	}
	off, on := rep.Phases[0], rep.Phases[1]
	if off.EdgeHits != 0 || off.TopEdgeHits != 0 || off.EdgeStreams != 0 {
		t.Errorf("replication off: %d edge hits, %d top-key edge hits, %d replica streams; want none",
			off.EdgeHits, off.TopEdgeHits, off.EdgeStreams)
	}
	if on.EdgeHits == 0 || on.TopEdgeHits == 0 || on.EdgeStreams != hotkeysNodes {
		t.Errorf("replication on: %d edge hits, %d top-key edge hits, %d replica streams; want hits and %d streams",
			on.EdgeHits, on.TopEdgeHits, on.EdgeStreams, hotkeysNodes)
	}
	if !finite(rep.OnOverOff.OpsPerSec) || rep.OnOverOff.OpsPerSec <= 0 || len(rep.Goals) != 2 {
		t.Errorf("on/off %+v, goals %+v", rep.OnOverOff, rep.Goals)
	}
}

func TestHotkeys_interruptStopsProcesses(t *testing.T) {
	t.Parallel()
	cached, proxy := buildHotkeysBinaries(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	stderr := &cancelOn{s: "phase off: prefilled", cancel: cancel} // during the warmup of the first phase
	err := cli(ctx, []string{"hotkeys", "-cached", cached, "-proxy", proxy, "-keys", "1000", "-duration", "1h", "-conns", "2"},
		new(bytes.Buffer), stderr)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled\n%s", err, stderr.buf.String())
	}
	assertGone(t, stderr.buf.String(), hotkeysNodes+1)
}

func TestPrintHotkeys(t *testing.T) {
	phase := func(name string, ops float64, loads ...uint64) *hotkeysPhase {
		ph := &hotkeysPhase{Name: name, OpsPerSec: ops, Latency: latency{P50: 300, P99: 4500}, HitRatio: 1}
		for i, l := range loads {
			ph.Nodes = append(ph.Nodes, nodeLoad{Name: "node" + string(rune('1'+i)), Requests: l, Share: float64(l) / 300})
		}
		ph.NodeMaxOverMean = maxOverMean(loads)
		for id := range topKeys {
			ph.Top = append(ph.Top, topKey{Rank: id, Key: "user:000000" + string(rune('0'+id)) + ":profile", Gets: 10})
		}
		return ph
	}
	rep := &hotkeysReport{Phases: []*hotkeysPhase{phase("off", 10621, 40107, 166676, 52584), phase("on", 12639, 100, 100, 100)}}
	rep.finish()
	o, _ := parseHotkeysFlags(nil, new(strings.Builder))
	var b strings.Builder
	printHotkeys(&b, o, rep)
	out := b.String()
	lines := strings.Split(out, "\n")
	col := -1
	for _, l := range lines {
		if i := strings.Index(l, "on/off"); i >= 0 && strings.Contains(l, "replication on") {
			col = i
		}
	}
	if col < 0 {
		t.Fatalf("no header:\n%s", out)
	}
	for _, l := range lines {
		for _, row := range []string{"ops/s", "p99", "hit ratio", "node1 requests", "node2 requests", "node max/mean", "top-10 reads"} {
			if strings.HasPrefix(strings.TrimSpace(l), row) && (len(l) <= col || l[col] == ' ' || l[col-1] != ' ') {
				t.Errorf("the on/off column of %q does not start at %d:\n%s", row, col, out)
			}
		}
		if strings.TrimRight(l, " ") != l {
			t.Errorf("trailing spaces in %q", l)
		}
	}
	for _, want := range []string{"goal: max/mean <= 1.2 with replication on (met)", "goal: >= 90% of top-10 reads at the edge (NOT met)"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
