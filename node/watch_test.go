package node_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hotcache/hotcache/node"
	"github.com/hotcache/hotcache/node/nodetest"
	"github.com/hotcache/hotcache/protocol"
	"github.com/hotcache/hotcache/ring"
)

func startStandalone(t *testing.T) *node.Node {
	return nodetest.Standalone(t, node.Config{Name: "solo"})
}

func dialWatch(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	return c, bufio.NewReader(c)
}

// TestWatch_ringSnapshotAndHeartbeat opens a stream on a standalone node as
// an edge would: the first event is the ring (of the node alone), PINGs are
// echoed in order with increasing sequence numbers, and the stream survives
// commands that would be ERROR elsewhere only until one is malformed.
func TestWatch_ringSnapshotAndHeartbeat(t *testing.T) {
	n := startStandalone(t)
	c, r := dialWatch(t, n.Addr())
	// "set" before the watch shows the connection is an ordinary one until then.
	io.WriteString(c, "set a 0 0 1\r\nx\r\nwatch edge-1 100\r\nPING 101\r\nPING 102\r\n")
	if line, _ := r.ReadString('\n'); line != "STORED\r\n" {
		t.Fatalf("before the watch: %q", line)
	}
	ev, err := protocol.ReadWatchEvent(r, 0)
	if err != nil || ev.Kind != protocol.WatchRing || ev.Seq != 1 {
		t.Fatalf("first event: %+v, %v; want RING 1", ev, err)
	}
	rg, err := ring.ParseText(ev.Data)
	if err != nil {
		t.Fatalf("ring text: %v\n%s", err, ev.Data)
	}
	if ms := rg.Members(); len(ms) != 1 || ms[0].Name != "solo" || ms[0].Addr != n.Addr() || rg.Identity() != n.Ring().Identity() {
		t.Errorf("ring = %v, want the node alone at %s", ms, n.Addr())
	}
	for i, stamp := range []uint64{101, 102} {
		ev, err := protocol.ReadWatchEvent(r, 0)
		if err != nil || ev.Kind != protocol.WatchPong || ev.Seq != uint64(i+2) || ev.Stamp != stamp {
			t.Fatalf("event %d: %+v, %v; want PONG %d %d", i+2, ev, err, i+2, stamp)
		}
	}
	io.WriteString(c, "ACK 1\r\nHITS 1 a 3\r\nREFRESH a\r\nget a\r\n")
	_, err = protocol.ReadWatchEvent(r, 0)
	var se *protocol.ServerError
	if !errors.As(err, &se) || !strings.Contains(se.Msg, "malformed") {
		t.Fatalf("after a memcache command on the stream: err = %v, want SERVER_ERROR ... malformed", err)
	}
	if _, err := r.ReadByte(); err != io.EOF {
		t.Errorf("stream not closed after the malformed line: %v", err)
	}
}

func TestWatch_badOpenIsClientError(t *testing.T) {
	n := startStandalone(t)
	c, r := dialWatch(t, n.Addr())
	io.WriteString(c, "watch\r\nwatch a b\r\nwatch a 1 2\r\nversion\r\n")
	for i := range 3 {
		if line, _ := r.ReadString('\n'); line != "CLIENT_ERROR bad command line format\r\n" {
			t.Errorf("bad watch %d: %q", i, line)
		}
	}
	if line, _ := r.ReadString('\n'); !strings.HasPrefix(line, "VERSION ") {
		t.Errorf("connection not usable after a bad watch: %q", line)
	}
}

// TestWatch_slowWatcherIsCutOff: an edge that sends PINGs but never reads
// fills its bounded queue and is disconnected; the node does not buffer
// without bound, and other clients are unaffected.
func TestWatch_slowWatcherIsCutOff(t *testing.T) {
	n := startStandalone(t)
	c, r := dialWatch(t, n.Addr())
	io.WriteString(c, "watch slow 0\r\n")
	pings := bytes.Repeat([]byte("PING 1234567890\r\n"), 4096)
	var err error
	for i := 0; i < 2000 && err == nil; i++ { // up to 139 MB; the cut-off comes far sooner
		c.SetWriteDeadline(time.Now().Add(20 * time.Second))
		_, err = c.Write(pings)
	}
	if err == nil {
		t.Fatal("the node kept reading PINGs from a watcher that never reads")
	}
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.Copy(io.Discard, r); err != nil && !errors.Is(err, net.ErrClosed) && !isReset(err) {
		t.Errorf("draining the cut-off stream: %v", err)
	}
	c2, r2 := dialWatch(t, n.Addr())
	io.WriteString(c2, "version\r\n")
	if line, _ := r2.ReadString('\n'); !strings.HasPrefix(line, "VERSION ") {
		t.Errorf("node unusable after cutting off a watcher: %q", line)
	}
}

func isReset(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "reset") || strings.Contains(err.Error(), "broken pipe"))
}

// TestWatch_shutdownClosesStreams: Shutdown ends open streams (telling the
// edge why) and returns, and the watcher goroutines are gone.
func TestWatch_shutdownClosesStreams(t *testing.T) {
	n, err := node.New(node.Config{Name: "solo", Addr: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	var conns []*bufio.Reader
	for i := range 3 {
		c, r := dialWatch(t, n.Addr())
		fmt.Fprintf(c, "watch e%d 1\r\n", i)
		if ev, err := protocol.ReadWatchEvent(r, 0); err != nil || ev.Kind != protocol.WatchRing {
			t.Fatalf("watch %d: %+v, %v", i, ev, err)
		}
		conns = append(conns, r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := n.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown with open watch streams: %v", err)
	}
	for i, r := range conns {
		_, err := protocol.ReadWatchEvent(r, 0)
		var se *protocol.ServerError
		if !errors.As(err, &se) {
			t.Errorf("stream %d after Shutdown: err = %v, want SERVER_ERROR", i, err)
		}
	}
}
