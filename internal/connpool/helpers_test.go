package connpool

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hotcache/hotcache/protocol"
)

// waitTimeout is how long a test waits for a condition on a loaded machine.
const waitTimeout = 10 * time.Second

// testServer is a protocol.Server on 127.0.0.1:0 that answers "mn" (unless
// wedged) and "version", and counts the connections it accepts.
type testServer struct {
	addr string
	srv  *protocol.Server

	accepted atomic.Int64 // connections accepted so far
	open     atomic.Int64 // connections accepted and not yet closed
	maxOpen  atomic.Int64 // the most that were open at once
	mn       atomic.Int64 // "mn" requests seen
	versions atomic.Int64 // "version" requests seen
	wedged   atomic.Bool  // leave "mn" unanswered, as a hung server would
}

func startServer(t *testing.T) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{addr: ln.Addr().String()}
	ts.srv = &protocol.Server{Handler: protocol.HandlerFunc(ts.serve), Logger: slog.New(slog.DiscardHandler)}
	done := make(chan error, 1)
	go func() { done <- ts.srv.Serve(countingListener{ln, ts}) }()
	t.Cleanup(func() {
		// NB: protocol.Server starts a connection's goroutine after releasing
		// its lock, so a Shutdown racing an Accept races WaitGroup.Add with
		// Wait. The pools of a test are closed before this cleanup runs: wait
		// for the server to close every connection it accepted, which its
		// per-connection goroutines do, before shutting it down.
		waitFor(t, "the server to close its connections", func() (bool, any) { n := ts.open.Load(); return n == 0, n })
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		if err := ts.srv.Shutdown(ctx); err != nil {
			t.Errorf("server shutdown: %v", err)
		}
		if err := <-done; !errors.Is(err, protocol.ErrServerClosed) {
			t.Errorf("Serve returned %v", err)
		}
	})
	return ts
}

func (ts *testServer) serve(_ context.Context, w *protocol.ResponseWriter, req *protocol.Request) {
	switch req.Cmd {
	case protocol.CmdMetaNoop:
		ts.mn.Add(1)
		if !ts.wedged.Load() {
			w.WriteLine("MN")
		}
	case protocol.CmdVersion:
		ts.versions.Add(1)
		w.WriteLine("VERSION 1.6.0-test")
	default:
		w.WriteError(protocol.ErrUnknownCommand)
	}
}

type countingListener struct {
	net.Listener
	ts *testServer
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.ts.accepted.Add(1)
	storeMax(&l.ts.maxOpen, l.ts.open.Add(1))
	return &countedConn{Conn: c, open: &l.ts.open}, nil
}

// countedConn decrements open when it is first closed.
type countedConn struct {
	net.Conn
	open *atomic.Int64
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() { c.open.Add(-1) })
	return c.Conn.Close()
}

func storeMax(m *atomic.Int64, n int64) {
	for {
		old := m.Load()
		if n <= old || m.CompareAndSwap(old, n) {
			return
		}
	}
}

// fakeClock is an injected Config.Now that moves only when told.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// newPool returns a Pool that is closed when the test ends.
func newPool(t *testing.T, cfg Config) *Pool {
	t.Helper()
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// waitFor polls cond until it holds or waitTimeout passes, then fails the
// test with what was last seen.
func waitFor(t *testing.T, what string, cond func() (bool, any)) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		ok, seen := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s; last saw %v", waitTimeout, what, seen)
		}
		time.Sleep(time.Millisecond)
	}
}

// mn does one "mn" round trip on c.
func mn(c *Conn) error {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := c.SetDeadline(ctx, waitTimeout); err != nil {
		return err
	}
	c.W.WriteString("mn\r\n")
	if err := c.W.Flush(); err != nil {
		return err
	}
	line, err := c.R.ReadSlice('\n')
	if err != nil {
		return err
	}
	if string(line) != "MN\r\n" {
		return errors.New("unexpected reply " + string(line))
	}
	return nil
}

func mustGet(t *testing.T, p *Pool, addr string) *Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	c, err := p.Get(ctx, addr)
	if err != nil {
		t.Fatalf("Get(%s): %v", addr, err)
	}
	return c
}

func statsOf(p *Pool, addr string) AddrStats { return p.Stats()[addr] }
