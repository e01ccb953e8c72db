package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hotcache/hotcache/internal/workload"
)

// slowServer is a memcache server for tests that answers every request of
// a connection one after the other, each delay after it read it: a get
// misses, a set is stored, a delete finds nothing. It counts the requests
// it answered.
type slowServer struct {
	ln         net.Listener
	delay      time.Duration
	closeAfter int        // if > 0, close each connection after answering this many requests
	mute       bool       // read requests, never answer
	mu         sync.Mutex // guards n
	n          int
}

func startSlowServer(t *testing.T, delay time.Duration) *slowServer {
	return startTestServer(t, &slowServer{delay: delay})
}

// startTestServer starts s, configured, on a free loopback port.
func startTestServer(t *testing.T, s *slowServer) *slowServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.ln = ln
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { s.serve(c) })
		}
	})
	return s
}

func (s *slowServer) addr() string { return s.ln.Addr().String() }

func (s *slowServer) serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	for answered := 0; s.closeAfter == 0 || answered < s.closeAfter; answered++ {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			return
		}
		reply := "ERROR\r\n"
		switch f[0] {
		case "get":
			reply = "END\r\n"
		case "set":
			n, _ := strconv.Atoi(f[len(f)-1])
			if _, err := io.CopyN(io.Discard, br, int64(n)+2); err != nil {
				return
			}
			reply = "STORED\r\n"
		case "delete":
			reply = "NOT_FOUND\r\n"
		}
		time.Sleep(s.delay)
		if s.mute {
			continue
		}
		if _, err := io.WriteString(c, reply); err != nil {
			return
		}
		s.mu.Lock()
		s.n++
		s.mu.Unlock()
	}
}

func runJSON(t *testing.T, args ...string) *result {
	t.Helper()
	out, stderr, err := runCLI(t, t.Context(), append(args, "-json")...)
	if err != nil {
		t.Fatalf("cachebench %q: %v\n%s", args, err, stderr)
	}
	var got runOutput
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v in %s", err, out)
	}
	if len(got.Results) != 1 {
		t.Fatalf("%d results, want 1", len(got.Results))
	}
	return got.Results[0]
}

// TestOpenLoop_latencyFromSchedule runs one connection at 100 requests/s
// against a server that takes 50 ms per request. Request k is due at
// 10k ms but can only be sent when request k-1 has been answered, at
// 50k ms, so it completes at 50(k+1) ms and its latency from its due time
// is 50 + 40k ms: 50, 90, ..., 810 ms for the 20 requests of one second. A
// closed loop (or a generator that starts the clock when it sends) would
// report 50 ms for every request.
func TestOpenLoop_latencyFromSchedule(t *testing.T) {
	t.Parallel()
	srv := startSlowServer(t, 50*time.Millisecond)
	common := []string{"-servers", srv.addr(), "-conns", "1", "-ratio", "100:0", "-keys", "10", "-warmup", "0", "-duration", "1s", "-quiet"}
	open := runJSON(t, append(common, "-rate", "100")...)
	if open.Ops < 17 || open.Ops > 21 || open.Errors != 0 {
		t.Fatalf("open loop answered %d requests (%d errors), want about 20: one per 50 ms", open.Ops, open.Errors)
	}
	ms := func(us float64) float64 { return us / 1e3 }
	// The predicted latencies are 50+40k ms for k = 0..19: median ~430 ms,
	// maximum ~810 ms. Allow for a slow, shared test machine.
	if p50 := ms(open.Latency.P50); p50 < 330 || p50 > 600 {
		t.Errorf("open loop p50 = %.0f ms, want about 430 ms (latency measured from the due time)", p50)
	}
	if mx := ms(open.Latency.Max); mx < 650 || mx > 1200 {
		t.Errorf("open loop max = %.0f ms, want about 810 ms", mx)
	}
	if first := ms(open.Percentiles[0].US); first < 50 || first > 150 {
		t.Errorf("open loop min = %.0f ms, want about 50 ms", first)
	}
	// 100 requests fell due in the second; about 20 were sent.
	if open.Unsent < 70 || open.Unsent > 85 || open.TargetRate != 100 {
		t.Errorf("open loop: %d requests due but not sent, target %v; want about 80 at 100/s", open.Unsent, open.TargetRate)
	}

	closed := runJSON(t, common...)
	if p99 := ms(closed.Latency.P99); p99 < 50 || p99 > 150 {
		t.Errorf("closed loop p99 = %.0f ms, want about 50 ms: it waits for each reply before the next", p99)
	}
	if closed.Unsent != 0 || closed.TargetRate != 0 {
		t.Errorf("closed loop reports open-loop figures: %+v", closed)
	}
}

// TestOpenLoop_belowCapacity runs at 10 requests/s, one every 100 ms,
// against the 50 ms server: nothing queues, every latency is about 50 ms,
// and the generator keeps the rate.
func TestOpenLoop_belowCapacity(t *testing.T) {
	t.Parallel()
	srv := startSlowServer(t, 50*time.Millisecond)
	r := runJSON(t, "-servers", srv.addr(), "-conns", "2", "-rate", "20", "-ratio", "90:9:1", "-keys", "10",
		"-warmup", "0", "-duration", "1500ms", "-quiet")
	if r.Ops < 27 || r.Ops > 32 || r.Errors != 0 {
		t.Fatalf("answered %d requests (%d errors) at 20/s for 1.5 s, want 30", r.Ops, r.Errors)
	}
	// A shared machine may stall a few requests, but nothing queues: no
	// latency comes near the growth of the overloaded case above.
	if p50, mx := r.Latency.P50/1e3, r.Latency.Max/1e3; p50 < 50 || p50 > 80 || mx > 300 {
		t.Errorf("p50 %.0f ms, max %.0f ms (generator wake-up lag p99 %.1f ms); want about 50 ms: the server keeps up", p50, mx, r.SchedLag/1e3)
	}
	if r.Unsent != 0 {
		t.Errorf("%d requests not sent at a rate the server sustains", r.Unsent)
	}
}

// TestRun_seriesAndCPU checks the per-second samples, the request mix, the
// generator's CPU time and the CDF of a closed-loop run.
func TestRun_seriesAndCPU(t *testing.T) {
	t.Parallel()
	srv := startSlowServer(t, 0)
	r := runJSON(t, "-servers", srv.addr(), "-conns", "2", "-pipeline", "4", "-keys", "100", "-warmup", "0",
		"-duration", "2500ms", "-ratio", "80:15:5", "-value-size", "10-300")
	if len(r.Series) != 3 {
		t.Fatalf("%d per-second samples over 2.5 s, want 3: %+v", len(r.Series), r.Series)
	}
	var ops, gets int64
	for i, s := range r.Series {
		ops += s.Ops
		gets += s.Gets
		if s.Errors != 0 || s.Hits != 0 || s.Ops <= 0 || s.OpsPerSec <= 0 {
			t.Errorf("sample %d: %+v", i, s)
		}
	}
	if last := r.Series[2]; last.T < 2.4 || last.T > 2.7 || last.Seconds < 0.4 || last.Seconds > 0.7 {
		t.Errorf("last sample %+v, want the half second up to 2.5 s", last)
	}
	if ops != r.Ops || gets != r.Gets {
		t.Errorf("samples sum to %d ops and %d gets, the run counted %d and %d", ops, gets, r.Ops, r.Gets)
	}
	if r.Deletes == 0 || r.Sets == 0 || r.Gets+r.Sets+r.Deletes != r.Ops {
		t.Errorf("gets %d + sets %d + deletes %d != ops %d", r.Gets, r.Sets, r.Deletes, r.Ops)
	}
	if !(r.CPUSeconds > 0 && r.CoresPer100k > 0) {
		t.Errorf("generator CPU %v s, %v cores per 100k ops/s; want both measured", r.CPUSeconds, r.CoresPer100k)
	}
	if len(r.Percentiles) != len(cdfQuantiles) || r.Percentiles[len(r.Percentiles)-1].US != r.Latency.Max {
		t.Errorf("CDF has %d points ending at %v, want %d ending at max %v", len(r.Percentiles), r.Percentiles[len(r.Percentiles)-1], len(cdfQuantiles), r.Latency.Max)
	}
	for i := 1; i < len(r.Percentiles); i++ {
		if p, q := r.Percentiles[i-1], r.Percentiles[i]; q.Q <= p.Q || q.US < p.US {
			t.Fatalf("CDF not increasing at %d: %+v then %+v", i, p, q)
		}
	}
}

func TestRun_progressLine(t *testing.T) {
	t.Parallel()
	srv := startSlowServer(t, 0)
	_, stderr, err := runCLI(t, t.Context(), "-servers", srv.addr(), "-conns", "1", "-keys", "10", "-warmup", "0", "-duration", "2100ms")
	if err != nil {
		t.Fatal(err)
	}
	lines := 0
	for l := range strings.SplitSeq(stderr, "\n") {
		if strings.Contains(l, " ops/s  errors 0") {
			lines++
		}
	}
	if lines != 2 {
		t.Errorf("%d progress lines in 2.1 s, want 2 (one a second; the last 0.1 s is folded in):\n%s", lines, stderr)
	}
}

// TestRun_routeSingle sends everything to the first server and reads the
// others' stats: here the same memcached, so its counters must grow by
// exactly the requests sent.
func TestRun_routeSingle(t *testing.T) {
	t.Parallel()
	addr := startMemcached(t)
	r := runJSON(t, "-servers", addr+","+addr, "-route", "single", "-conns", "2", "-requests", "300", "-keys", "50",
		"-ratio", "80:15:5", "-warmup", "0", "-quiet", "-value-size", "5-2000", "-prefill")
	if len(r.Servers) != 1 || len(r.Nodes) != 1 || r.NodeStatsError != "" {
		t.Fatalf("servers %v, nodes %+v (%s); want one target and one node", r.Servers, r.Nodes, r.NodeStatsError)
	}
	if n := r.Nodes[0]; n.Requests != 300 || n.Gets != uint64(r.Gets) || n.Sets != uint64(r.Sets) || n.Share != 1 {
		t.Errorf("node %+v, want the 300 requests of the run (%d gets, %d sets)", n, r.Gets, r.Sets)
	}
	if r.Errors != 0 || r.Ops != 300 || r.HitRatio < 0.8 {
		t.Errorf("ops %d errors %d hit ratio %v (first error %q)", r.Ops, r.Errors, r.HitRatio, r.FirstError)
	}
}

func TestRun_scenarioDists(t *testing.T) {
	t.Parallel()
	srv := startSlowServer(t, 0)
	for _, args := range [][]string{
		{"-dist", "hotspot", "-shift-every", "300ms", "-shift-ranks", "10"},
		{"-dist", "flash", "-flash-at", "200ms", "-flash-for", "300ms", "-flash-share", "0.5"},
	} {
		r := runJSON(t, append([]string{"-servers", srv.addr(), "-conns", "2", "-keys", "1000", "-warmup", "0", "-duration", "700ms", "-quiet"}, args...)...)
		if r.Ops == 0 || r.Errors != 0 {
			t.Errorf("%q: %d ops, %d errors", args, r.Ops, r.Errors)
		}
	}
	if _, _, err := runCLI(t, t.Context(), "-servers", srv.addr(), "-dist", "hotspot", "-keys", "100"); err == nil {
		t.Error("hotspot accepted 100 keys for 100 shifted ranks")
	}
}

// TestKeySpace_scenarioStreamsShareTheHotSet: every connection's stream
// has the same hot set at the same time, and draws its own keys.
func TestKeySpace_scenarioStreamsShareTheHotSet(t *testing.T) {
	o := &loadOptions{keys: 10_000, dist: "hotspot", s: 1.1, shiftEvery: time.Second, shiftRanks: 50, seed: 3, valueSize: 10}
	ks, err := newKeySpace(o, []string{"127.0.0.1:1"}, newZipfTable(o))
	if err != nil {
		t.Fatal(err)
	}
	a, b := ks.stream(11).(*workload.Scenario), ks.stream(12).(*workload.Scenario)
	top := a.KeyAt(0)
	same := 0
	for i := range 2000 {
		at := time.Duration(i) * time.Millisecond
		a.AdvanceTo(at)
		b.AdvanceTo(at)
		if a.Next() == b.Next() {
			same++
		}
	}
	if a.KeyAt(0) == top || a.KeyAt(0) != b.KeyAt(0) || len(a.Events()) == 0 {
		t.Fatalf("after 2 s: top keys %d and %d (was %d), %d events; want one shared shift", a.KeyAt(0), b.KeyAt(0), top, len(a.Events()))
	}
	if same > 1000 {
		t.Errorf("two connections drew the same key %d times of 2000", same)
	}
}

func TestSizeFlag(t *testing.T) {
	var lo, hi int
	f := sizeFlag{&lo, &hi}
	for _, tc := range []struct {
		in     string
		lo, hi int
		str    string
	}{{"100", 100, 0, "100"}, {"100-1000", 100, 1000, "100-1000"}, {"5-5", 5, 0, "5"}, {"0", 0, 0, "0"}} {
		if err := f.Set(tc.in); err != nil || lo != tc.lo || hi != tc.hi || f.String() != tc.str {
			t.Errorf("Set(%q) = %d-%d %q, %v", tc.in, lo, hi, f.String(), err)
		}
	}
	for _, bad := range []string{"", "-1", "10-5", "a", "1-", "1-2-3"} {
		if err := f.Set(bad); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func TestRangeRequest(t *testing.T) {
	r := newRangeRequest(10, 20)
	seen := map[int]bool{}
	for id := range 1000 {
		n := r.size(id)
		if n < 10 || n > 20 || n != r.size(id) {
			t.Fatalf("size(%d) = %d", id, n)
		}
		seen[n] = true
		got := r.appendSet(nil, id)
		want := "set " + workload.Key(id) + " 0 0 " + strconv.Itoa(n) + "\r\n" + string(r.value[:n]) + "\r\n"
		if string(got) != want {
			t.Fatalf("appendSet(%d) = %q, want %q", id, got, want)
		}
	}
	if len(seen) != 11 {
		t.Errorf("1000 keys got %d distinct sizes of 11", len(seen))
	}
	if got := newRequest(3).appendDelete(nil, 7); !bytes.Equal(got, []byte("delete user:0000007:profile\r\n")) {
		t.Errorf("appendDelete = %q", got)
	}
}
