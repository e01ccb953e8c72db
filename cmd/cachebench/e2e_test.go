package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

const memcachedBin = "/usr/bin/memcached"

// startMemcached starts memcached on a free loopback port for the test. It
// skips the test if memcached is not installed, unless
// CACHE_REQUIRE_MEMCACHED=1.
func startMemcached(t *testing.T) string {
	t.Helper()
	requireMemcached(t)
	p, err := startServer(t.Context(), "memcached", memcachedBin, memcachedArgs(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.stop)
	return p.addr
}

func requireMemcached(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(memcachedBin); err != nil {
		if os.Getenv("CACHE_REQUIRE_MEMCACHED") == "1" {
			t.Fatalf("CACHE_REQUIRE_MEMCACHED=1 but %v", err)
		}
		t.Skipf("no memcached: %v", err)
	}
}

type runOutput struct {
	Config  jsonConfig `json:"config"`
	Results []*result  `json:"results"`
}

func runCLI(t *testing.T, ctx context.Context, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	err = cli(ctx, args, &out, &errb)
	return out.String(), errb.String(), err
}

func TestRun_prefilledMemcached(t *testing.T) {
	t.Parallel()
	addr := startMemcached(t)
	out, stderr, err := runCLI(t, t.Context(), "-servers", addr, "-requests", "500", "-conns", "4", "-pipeline", "1,8",
		"-keys", "1000", "-dist", "zipf", "-s", "0.99", "-prefill", "-warmup", "0", "-json")
	if err != nil {
		t.Fatalf("cachebench: %v\n%s", err, stderr)
	}
	var got runOutput
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v in %s", err, out)
	}
	if len(got.Results) != 2 || got.Results[0].Pipeline != 1 || got.Results[1].Pipeline != 8 {
		t.Fatalf("want one result per depth 1 and 8, got %s", out)
	}
	for _, r := range got.Results {
		if r.Ops != 500 || r.Errors != 0 || r.Gets+r.Sets != r.Ops {
			t.Errorf("pipeline %d: ops=%d errors=%d gets=%d sets=%d (first error %q); want 500 answered requests",
				r.Pipeline, r.Ops, r.Errors, r.Gets, r.Sets, r.FirstError)
		}
		if r.Gets < 400 || r.Gets > 490 { // 90% of 500, +-6 standard deviations
			t.Errorf("pipeline %d: %d gets of 500 at get:set 90:10", r.Pipeline, r.Gets)
		}
		if r.Hits != r.Gets || r.HitRatio != 1 {
			t.Errorf("pipeline %d: %d hits of %d gets (ratio %v) after prefill", r.Pipeline, r.Hits, r.Gets, r.HitRatio)
		}
		l := r.Latency
		if !(0 < l.P50 && l.P50 <= l.P99 && l.P99 <= l.P999 && l.P999 <= l.Max) || r.OpsPerSec <= 0 {
			t.Errorf("pipeline %d: latency %+v, %v ops/s", r.Pipeline, l, r.OpsPerSec)
		}
		if len(r.Targets) != 1 || r.Targets[0].Addr != addr || r.Targets[0].Ops != r.Ops {
			t.Errorf("pipeline %d: per target %+v", r.Pipeline, r.Targets)
		}
	}
	if !strings.Contains(stderr, "prefilled 1000 keys") {
		t.Errorf("stderr %q does not report the prefill", stderr)
	}
}

func TestRun_twoServersColdGets(t *testing.T) {
	t.Parallel()
	a, b := startMemcached(t), startMemcached(t)
	out, stderr, err := runCLI(t, t.Context(), "-servers", a+","+b, "-requests", "400", "-conns", "2", "-pipeline", "4",
		"-keys", "100", "-dist", "uniform", "-ratio", "100:0", "-warmup", "0", "-json")
	if err != nil {
		t.Fatalf("cachebench: %v\n%s", err, stderr)
	}
	var got runOutput
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v in %s", err, out)
	}
	r := got.Results[0]
	if r.Ops != 400 || r.Gets != 400 || r.Misses != 400 || r.HitRatio != 0 || r.Errors != 0 {
		t.Errorf("ops=%d gets=%d misses=%d hit ratio=%v errors=%d; want 400 misses on empty servers",
			r.Ops, r.Gets, r.Misses, r.HitRatio, r.Errors)
	}
	if len(r.Targets) != 2 || r.Targets[0].Ops == 0 || r.Targets[1].Ops == 0 || r.Targets[0].Ops+r.Targets[1].Ops != r.Ops {
		t.Errorf("per target %+v; want both servers used, summing to %d", r.Targets, r.Ops)
	}
}

func TestRun_textOutput(t *testing.T) {
	t.Parallel()
	addr := startMemcached(t)
	out, stderr, err := runCLI(t, t.Context(), "-servers", addr, "-requests", "100", "-conns", "1", "-keys", "10", "-warmup", "0")
	if err != nil {
		t.Fatalf("cachebench: %v\n%s", err, stderr)
	}
	for _, want := range []string{"ops/s", "hit ratio", "p50", "p99", "p99.9", "errors", addr} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestRun_serverDown(t *testing.T) {
	t.Parallel()
	port, err := freePort() // nothing listens there
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = runCLI(t, t.Context(), "-servers", "127.0.0.1:"+strconv.Itoa(port), "-requests", "10", "-warmup", "0")
	if err == nil || !strings.Contains(err.Error(), "connection 0 to 127.0.0.1:") {
		t.Fatalf("err = %v, want a dial error", err)
	}
}

var pidRE = regexp.MustCompile(`started (\S+) pid (\d+)`)

// assertGone checks that every server cachebench reported starting has
// exited and been reaped.
func assertGone(t *testing.T, stderr string, want int) {
	t.Helper()
	m := pidRE.FindAllStringSubmatch(stderr, -1)
	if len(m) != want {
		t.Fatalf("started %d servers, want %d:\n%s", len(m), want, stderr)
	}
	for _, s := range m {
		pid, _ := strconv.Atoi(s[2])
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("%s pid %d still exists after cachebench returned (kill 0: %v)", s[1], pid, err)
		}
	}
}

func TestCompare_memcachedVsMemcached(t *testing.T) {
	t.Parallel()
	requireMemcached(t)
	out, stderr, err := runCLI(t, t.Context(), "compare", "-start-memcached=2", "-rounds", "2", "-requests", "200",
		"-conns", "2", "-pipeline", "1,4", "-keys", "500", "-prefill", "-warmup", "0", "-json")
	if err != nil {
		t.Fatalf("compare: %v\n%s", err, stderr)
	}
	assertGone(t, stderr, 2)
	var got struct {
		Rounds int            `json:"rounds"`
		Depths []depthSummary `json:"depths"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v in %s", err, out)
	}
	if got.Rounds != 2 || len(got.Depths) != 2 || got.Depths[0].Pipeline != 1 || got.Depths[1].Pipeline != 4 {
		t.Fatalf("want 2 rounds at depths 1 and 4, got %s", out)
	}
	for _, d := range got.Depths {
		if len(d.Targets) != 2 || d.Targets[0].Name != "memcached" || d.Targets[1].Name != "memcached2" {
			t.Fatalf("pipeline %d: targets %+v", d.Pipeline, d.Targets)
		}
		if first := d.Targets[0]; first.OpsRatio != 1 || first.P99Ratio != 1 {
			t.Errorf("pipeline %d: first target's ratios %v, %v; want 1", d.Pipeline, first.OpsRatio, first.P99Ratio)
		}
		for _, ts := range d.Targets {
			if len(ts.Rounds) != 2 || ts.Errors != 0 || ts.HitRatio != 1 || ts.OpsRatio <= 0 {
				t.Errorf("pipeline %d %s: %d rounds, %d errors, hit ratio %v, ops ratio %v",
					d.Pipeline, ts.Name, len(ts.Rounds), ts.Errors, ts.HitRatio, ts.OpsRatio)
			}
			for _, r := range ts.Rounds {
				if r.Ops != 200 {
					t.Errorf("pipeline %d %s: a round answered %d requests, want 200", d.Pipeline, ts.Name, r.Ops)
				}
			}
			if s := ts.OpsPerSec; !(s.Min <= s.Median && s.Median <= s.Max && s.Min > 0) {
				t.Errorf("pipeline %d %s: ops/s spread %+v", d.Pipeline, ts.Name, s)
			}
		}
	}
}

// cancelOn is a writer that cancels a context once what was written contains
// a string.
type cancelOn struct {
	mu     sync.Mutex // guards buf
	buf    bytes.Buffer
	s      string
	cancel context.CancelFunc
}

func (c *cancelOn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf.Write(p)
	if strings.Contains(c.buf.String(), c.s) {
		c.cancel()
	}
	return len(p), nil
}

func TestCompare_interruptStopsServers(t *testing.T) {
	t.Parallel()
	requireMemcached(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	stderr := &cancelOn{s: "prefilled", cancel: cancel}
	err := cli(ctx, []string{"compare", "-start-memcached", "-duration", "1h", "-conns", "2", "-keys", "100", "-prefill"}, new(bytes.Buffer), stderr)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	assertGone(t, stderr.buf.String(), 1)
}

func TestCompare_badTargets(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"compare"},
		{"compare", "noequals"},
		{"compare", "a=127.0.0.1:1", "a=127.0.0.1:2"},
		{"compare", "a=nohostport"},
		{"compare", "-rounds", "0", "a=127.0.0.1:1"},
	} {
		if _, _, err := runCLI(t, t.Context(), args...); err == nil {
			t.Errorf("%q: no error", args)
		}
	}
}

func TestFlags(t *testing.T) {
	var l intList
	if err := l.Set("1, 16"); err != nil || len(l) != 2 || l[1] != 16 || l.String() != "1,16" {
		t.Errorf("intList 1,16 = %v, %v", l, err)
	}
	if err := l.Set("1,0"); err == nil {
		t.Error("intList accepted 0")
	}
	var g, s, d int
	r := ratioFlag{&g, &s, &d}
	if err := r.Set("95:5"); err != nil || g != 95 || s != 5 || d != 0 || r.String() != "95:5" {
		t.Errorf("ratio 95:5 = %d:%d:%d, %v", g, s, d, err)
	}
	if err := r.Set("90:9:1"); err != nil || g != 90 || s != 9 || d != 1 || r.String() != "90:9:1" {
		t.Errorf("ratio 90:9:1 = %d:%d:%d, %v", g, s, d, err)
	}
	for _, bad := range []string{"0:0", "90", "-1:2", "a:b", "0:0:0", "1:2:3:4", "1::2"} {
		if err := r.Set(bad); err == nil {
			t.Errorf("ratio accepted %q", bad)
		}
	}
	var c countFlag
	_ = c.Set("true")
	_ = c.Set("true")
	if c != 2 {
		t.Errorf("two -start-memcached = %d", c)
	}
	if err := c.Set("3"); err != nil || c != 3 {
		t.Errorf("-start-memcached=3 = %d, %v", c, err)
	}
	if a, err := parseAddrs("127.0.0.1:1,[::1]:2"); err != nil || len(a) != 2 {
		t.Errorf("parseAddrs = %v, %v", a, err)
	}
	for _, bad := range []string{"", "host", "host:", ":1", "h:99999"} {
		if _, err := parseAddrs(bad); err == nil {
			t.Errorf("parseAddrs accepted %q", bad)
		}
	}
	o := loadOptions{conns: 1, pipelines: []int{1}, keys: 1, dist: "zipf", s: -1, requests: 1, timeout: 1}
	if err := o.validate(); err == nil {
		t.Error("validate accepted s = -1")
	}
}
