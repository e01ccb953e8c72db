package node_test

import (
	"bufio"
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hotcache/hotcache/node"
	"github.com/hotcache/hotcache/node/nodetest"
)

// logBuf collects a node's log lines for a test.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// lines returns the lines logged so far that contain every one of subs.
func (l *logBuf) lines(subs ...string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
next:
	for _, line := range strings.Split(l.b.String(), "\n") {
		if line == "" {
			continue
		}
		for _, s := range subs {
			if !strings.Contains(line, s) {
				continue next
			}
		}
		out = append(out, line)
	}
	return out
}

// infoLogger logs at info, as cached does without -v.
func infoLogger() (*slog.Logger, *logBuf) {
	b := &logBuf{}
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelInfo})), b
}

// TestLogs_forwardFailureBurst kills one node of three and sends 1000
// requests for its keys through another at once: each fails, yet the log
// gets one warning naming the owner, its address and the error, not one per
// request. Then the membership and ring changes are logged at info with the
// member's name and addresses.
func TestLogs_forwardFailureBurst(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test")
	}
	logger, buf := infoLogger()
	c := nodetest.Start(t, 3, func(i int, cfg *node.Config) {
		if i == 0 {
			cfg.Logger = logger
		}
	})
	n0, n2 := c.Node(0), c.Node(2)
	for _, name := range []string{"n1", "n2"} {
		if got := buf.lines(`msg="member joined"`, "member="+name, "addr=127.0.0.1:", "gossip=127.0.0.1:"); len(got) != 1 {
			t.Errorf("join of %s logged %d times with its addresses:\n%s", name, len(got), strings.Join(buf.lines("member"), "\n"))
		}
	}
	if got := buf.lines(`msg="ring changed"`, "generation=", "identity=", "members=\"[n0 n1 n2]\""); len(got) < 1 {
		t.Errorf("no ring change to three members logged:\n%s", strings.Join(buf.lines("ring"), "\n"))
	}
	var keys []string
	for i := 0; len(keys) < 10; i++ {
		if m, _ := n0.Ring().Owner([]byte(clusterKey(i))); m.Name == "n2" {
			keys = append(keys, clusterKey(i))
		}
	}
	n2Addr := n2.Addr()
	d := dial(t, n0.Addr())
	c.Kill(2)

	var req strings.Builder
	for i := range 500 {
		k := keys[i%len(keys)]
		fmt.Fprintf(&req, "set %s 0 0 1\r\nv\r\nget %s\r\n", k, k)
	}
	d.send(req.String())
	failed := 0
	for range 1000 {
		if strings.HasPrefix(d.line(), "SERVER_ERROR owner n2 unavailable") {
			failed++
		}
	}
	if failed < 100 {
		t.Fatalf("only %d of 500 sets failed: the cluster dropped n2 too fast for this test", failed)
	}
	time.Sleep(300 * time.Millisecond) // a few ticks of the ring goroutine, which flushes the limiters
	got := buf.lines(`msg="forwarding to the owner failed"`)
	if len(got) < 1 || len(got) > 2 {
		t.Fatalf("%d set and 500 get forwards failed; %d lines logged, want 1 or 2:\n%s", failed, len(got), strings.Join(got, "\n"))
	}
	if !strings.Contains(got[0], "owner=n2") || !strings.Contains(got[0], "addr="+n2Addr) || !strings.Contains(got[0], "err=") {
		t.Errorf("the warning lacks owner, address or error: %s", got[0])
	}
	if all := buf.lines("level=WARN"); len(all) > 5 {
		t.Errorf("%d warnings for one dead owner:\n%s", len(all), strings.Join(all, "\n"))
	}
	t.Logf("%d of 500 forwarded sets failed (and 500 gets answered misses); logged: %s", failed, got[0])

	waitFor(t, nodetest.DetectionTime+10*time.Second, "n0 to drop n2", func() bool { return n0.Ring().Len() == 2 })
	if got := buf.lines(`msg="member left or failed"`, "member=n2", "addr="+n2Addr); len(got) != 1 {
		t.Errorf("n2's failure logged %d times:\n%s", len(got), strings.Join(buf.lines("member"), "\n"))
	}
	if got := buf.lines(`msg="ring changed"`); !strings.Contains(got[len(got)-1], "members=\"[n0 n1]\"") {
		t.Errorf("the last ring change logged is not to n0 and n1:\n%s", strings.Join(got, "\n"))
	}
}

// TestLogs_rejectedConnectionBurst opens 1000 connections to a node whose
// limit is already taken: each is refused, and the log gets one warning
// with the count, not one per connection.
func TestLogs_rejectedConnectionBurst(t *testing.T) {
	logger, buf := infoLogger()
	n := startNode(t, node.Config{MaxConns: 1, Logger: logger})
	hold := dial(t, n.Addr())
	if v := hold.cmd("version"); !strings.HasPrefix(v, "VERSION") {
		t.Fatalf("version: %q", v)
	}
	start := time.Now()
	for i := range 1000 {
		c, err := net.Dial("tcp", n.Addr())
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		l, err := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if l != "ERROR Too many open connections\r\n" {
			t.Fatalf("connection %d: %q, %v", i, l, err)
		}
	}
	waitFor(t, 10*time.Second, "a warning", func() bool { return len(buf.lines("refusing connections")) > 0 })
	time.Sleep(300 * time.Millisecond)
	got := buf.lines("refusing connections")
	// One line per 10 s at most: one, unless this machine took over 10 s
	// for the 1000 connections.
	limit := 1 + int(time.Since(start)/(10*time.Second))
	if len(got) > limit || !strings.Contains(got[0], "max_conns=1") || !strings.Contains(got[0], "refused=") {
		t.Fatalf("1000 refused connections logged %d lines, want at most %d, with the count and the limit:\n%s", len(got), limit, strings.Join(got, "\n"))
	}
	if st := hold.stats(); st["rejected_connections"] != "1000" {
		t.Errorf("stats rejected_connections = %s", st["rejected_connections"])
	}
	t.Logf("logged: %s", got[0])
}
