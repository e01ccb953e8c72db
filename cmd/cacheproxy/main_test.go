package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hotcache/hotcache/node"
	"github.com/hotcache/hotcache/node/nodetest"
)

// waitTimeout bounds every wait for a condition: the machine is small and
// shared, and -race slows it further.
const waitTimeout = 30 * time.Second

func waitFor(t testing.TB, what string, cond func() (bool, any)) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
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

func TestParseFlags(t *testing.T) {
	o, err := parseFlags([]string{"-seeds", "a:1, b:2"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.port != "11311" || o.listen != "" || o.admin != "127.0.0.1:9101" || o.maxConns != 1024 ||
		o.maxItemSize != 1<<20 || o.nearCacheMB != 32 || o.drainTimeout != 4*time.Second ||
		len(o.seeds) != 2 || o.seeds[1] != "b:2" || !strings.HasPrefix(o.name, "proxy-") {
		t.Errorf("defaults: %+v", o)
	}
	o, err = parseFlags([]string{"-seeds", "a:1", "-p", "1", "-l", "127.0.0.1", "-c", "7", "-I", "2m", "-vv",
		"-name", "edge1", "-near-cache-mb", "0", "-log-format", "json", "-idle-timeout", "1m", "-drain-timeout", "1s", "-admin", ""}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.port != "1" || o.listen != "127.0.0.1" || o.maxConns != 7 || o.maxItemSize != 2<<20 || o.verbose != 2 ||
		o.name != "edge1" || o.nearCacheMB != 0 || o.logFormat != "json" || o.idleTimeout != time.Minute ||
		o.drainTimeout != time.Second || o.admin != "" {
		t.Errorf("set: %+v", o)
	}
	for _, args := range [][]string{
		{},
		{"-seeds", ""},
		{"-seeds", "nohostport"},
		{"-seeds", "a:1", "-near-cache-mb", "-1"},
		{"-seeds", "a:1", "-log-format", "xml"},
		{"-seeds", "a:1", "-I", "0"},
		{"-seeds", "a:1", "extra"},
		{"-seeds", "a:1", "-bogus"},
	} {
		var ue usageError
		if _, err := parseFlags(args, io.Discard); !errors.As(err, &ue) {
			t.Errorf("parseFlags(%q) = %v, want a usage error", args, err)
		}
	}
	if err := run([]string{"-h"}, io.Discard); err != nil {
		t.Errorf("-h: %v", err)
	}
}

// startInProcess runs the proxy as main does, on loopback ports the OS
// picks, in front of seeds, until the test ends.
func startInProcess(t *testing.T, seeds string, extra ...string) *proxy {
	t.Helper()
	o, err := parseFlags(append([]string{"-l", "127.0.0.1", "-p", "0", "-admin", "127.0.0.1:0", "-seeds", seeds}, extra...), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	p, err := start(o, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := p.shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return p
}

func httpGet(t testing.TB, addr, path string) (int, string) {
	t.Helper()
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get("http://" + addr + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return resp.StatusCode, string(b)
}

// TestAdmin: /healthz answers at once, /readyz once the proxy has a ring
// (503 before, with seeds that do not answer), /metrics carries the request
// and near-cache metrics, /hotkeys is a JSON list, /debug/pprof/ answers.
func TestAdmin(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	lost := startInProcess(t, dead)
	if code, _ := httpGet(t, lost.adminAddr(), "/healthz"); code != 200 {
		t.Errorf("/healthz without a ring: %d", code)
	}
	if code, _ := httpGet(t, lost.adminAddr(), "/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz without a ring: %d, want 503", code)
	}

	n := nodetest.Standalone(t, node.Config{Name: "solo"})
	p := startInProcess(t, n.Addr(), "-name", "edge-test")
	waitFor(t, "/readyz", func() (bool, any) {
		code, body := httpGet(t, p.adminAddr(), "/readyz")
		return code == 200, body
	})
	m := dialMC(t, p.ln.Addr().String())
	if got := m.do("set k 0 0 1\r\nv\r\nget k nope\r\n"); got != "STORED\r\nVALUE k 0 1\r\nv\r\nEND\r\n" {
		t.Fatalf("set and get: %q", got)
	}
	code, body := httpGet(t, p.adminAddr(), "/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	for _, want := range []string{
		`cacheproxy_commands_total{cmd="get",edge="edge-test"} 1`,
		`cacheproxy_commands_total{cmd="set",edge="edge-test"} 1`,
		`cacheproxy_requests_total{cmd="get",edge="edge-test",result="hit"} 1`,
		`cacheproxy_requests_total{cmd="get",edge="edge-test",result="miss"} 1`,
		`cacheproxy_ring_members{edge="edge-test"} 1`,
		`cacheproxy_connections{edge="edge-test"} 1`,
		`cacheproxy_edge_replicas{edge="edge-test"} `,
		`cacheproxy_edge_bytes{edge="edge-test"} `,
		`cacheproxy_edge_streams{edge="edge-test"} `,
		`cacheproxy_edge_hits_total{edge="edge-test"} `,
		`cacheproxy_edge_invalidations_total{edge="edge-test"} `,
		`cacheproxy_owner_errors_total{edge="edge-test"} 0`,
		`go_goroutines `,
		`process_open_fds `,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics has no %q", want)
		}
	}
	code, body = httpGet(t, p.adminAddr(), "/hotkeys")
	var hot []hotkey
	if err := json.Unmarshal([]byte(body), &hot); code != 200 || err != nil || hot == nil {
		t.Errorf("/hotkeys: %d %v %q", code, err, body)
	}
	if code, _ := httpGet(t, p.adminAddr(), "/debug/pprof/"); code != 200 {
		t.Errorf("/debug/pprof/: %d", code)
	}
	st := m.do("stats settings\r\n")
	if !strings.Contains(st, "STAT edge_name edge-test\r\n") {
		t.Errorf("stats settings: %q", st)
	}
}

// TestSIGTERMDrainsAndExitsZero builds the binary, runs it in front of a
// three-node cluster, checks that it serves and is ready, then sends SIGTERM
// with one connection idle and one mid-request, and expects exit status 0
// within the drain timeout.
func TestSIGTERMDrainsAndExitsZero(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	t.Parallel()
	bin := buildProxy(t)
	cl := nodetest.Start(t, 3)
	port, admin := freePort(t), fmt.Sprintf("127.0.0.1:%d", freePort(t))
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	var stderr syncBuffer
	cmd := exec.Command(bin, "-l", "127.0.0.1", "-p", strconv.Itoa(port), "-admin", admin,
		"-seeds", cl.Addr(0)+","+cl.Addr(2), "-drain-timeout", "3s")
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	waitFor(t, "the proxy to be ready", func() (bool, any) {
		select {
		case err := <-exited:
			t.Fatalf("cacheproxy exited early: %v\n%s", err, stderr.String())
		default:
		}
		c := http.Client{Timeout: time.Second}
		resp, err := c.Get("http://" + admin + "/readyz")
		if err != nil {
			return false, err
		}
		resp.Body.Close()
		return resp.StatusCode == 200, resp.Status
	})
	idle := dialMC(t, addr)
	var want strings.Builder
	var send strings.Builder
	for i := range 20 {
		fmt.Fprintf(&send, "set sig:%d 0 0 1\r\n%d\r\n", i, i%10)
		want.WriteString("STORED\r\n")
	}
	send.WriteString("get")
	for i := range 20 {
		fmt.Fprintf(&send, " sig:%d", i)
		fmt.Fprintf(&want, "VALUE sig:%d 0 1\r\n%d\r\n", i, i%10)
	}
	send.WriteString("\r\n")
	want.WriteString("END\r\n")
	if got := idle.do(send.String()); got != want.String() {
		t.Fatalf("set and get through the process:\n got %q\nwant %q", got, want.String())
	}
	// Every node sees its share: the keys went to their owners.
	for i := range cl.Len() {
		if got := dialMC(t, cl.Addr(i)).do("get sig:0 sig:1 sig:2 sig:3\r\n"); strings.Count(got, "VALUE") != 4 {
			t.Errorf("node %d: %q", i, got)
		}
	}
	busy := dialMC(t, addr)
	io.WriteString(busy.c, "set half 0 0 10\r\nabc") // stops mid-block

	start := time.Now()
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("cacheproxy exited with %v after SIGTERM; want status 0\n%s", err, stderr.String())
		}
		if d := time.Since(start); d > 8*time.Second {
			t.Errorf("exit took %v; want about the 3 s drain timeout at most", d)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("cacheproxy did not exit within 20 s of SIGTERM\n%s", stderr.String())
	}
	if !strings.Contains(stderr.String(), "shutting down") {
		t.Errorf("no shutdown log line:\n%s", stderr.String())
	}
}

// TestMissingSeedsExitsTwo: the binary refuses to start without -seeds,
// saying why, with exit status 2.
func TestMissingSeedsExitsTwo(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	t.Parallel()
	out, err := exec.Command(buildProxy(t), "-p", "0", "-admin", "").CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 {
		t.Fatalf("exit: %v, want status 2\n%s", err, out)
	}
	if !bytes.Contains(out, []byte("-seeds is required")) {
		t.Errorf("output does not say -seeds is required:\n%s", out)
	}
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
	buildOut  []byte
)

// buildProxy builds the binary once per test process.
func buildProxy(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "cacheproxy-test")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "cacheproxy")
		buildOut, buildErr = exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("build: %v\n%s", buildErr, buildOut)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// syncBuffer is a bytes.Buffer safe for a writing process and a reading
// test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// mcConn is one memcache text connection driven by whole exchanges.
type mcConn struct {
	t testing.TB
	c net.Conn
	r *bufio.Reader
}

func dialMC(t testing.TB, addr string) *mcConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &mcConn{t: t, c: c, r: bufio.NewReader(c)}
}

// do sends send and the sentinel "mn\r\n" and returns the replies before
// the sentinel's "MN\r\n".
func (m *mcConn) do(send string) string {
	m.t.Helper()
	m.c.SetDeadline(time.Now().Add(waitTimeout))
	if _, err := io.WriteString(m.c, send+"mn\r\n"); err != nil {
		m.t.Fatalf("write: %v", err)
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
		out.WriteString(line)
		if f := strings.Fields(line); len(f) >= 4 && f[0] == "VALUE" {
			n, _ := strconv.Atoi(f[3])
			data := make([]byte, n+2)
			if _, err := io.ReadFull(m.r, data); err != nil {
				m.t.Fatalf("value: %v", err)
			}
			out.Write(data)
		}
	}
}
