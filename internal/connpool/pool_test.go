package connpool

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hotcache/hotcache/protocol"
)

func TestGet_waitsPastMaxActive(t *testing.T) {
	ts := startServer(t)
	p := newPool(t, Config{MaxActive: 2})
	c1, c2 := mustGet(t, p, ts.addr), mustGet(t, p, ts.addr)

	// A third Get waits, and gets the first connection once it is Put.
	got := make(chan *Conn, 1)
	go func() {
		c, err := p.Get(context.Background(), ts.addr)
		if err != nil {
			t.Errorf("waiting Get: %v", err)
		}
		got <- c
	}()
	waitFor(t, "the third Get to wait", func() (bool, any) { s := statsOf(p, ts.addr); return s.Waits == 1, s })
	select {
	case c := <-got:
		t.Fatalf("third Get returned %p while both slots were in use", c)
	default:
	}
	p.Put(c1, nil)
	var c3 *Conn
	select {
	case c3 = <-got:
	case <-time.After(waitTimeout):
		t.Fatal("third Get still waiting after a Put")
	}
	if c3.nc != c1.nc {
		t.Error("the waiting Get dialed instead of reusing the Put connection")
	}

	// A Get that waits fails with its ctx's error when ctx ends.
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { _, err := p.Get(ctx, ts.addr); errc <- err }()
	waitFor(t, "the fourth Get to wait", func() (bool, any) { s := statsOf(p, ts.addr); return s.Waits == 2, s })
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) || !errors.Is(err, ErrPoolTimeout) {
		t.Errorf("cancelled waiting Get: err = %v, want context.Canceled and ErrPoolTimeout", err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := p.Get(ctx, ts.addr); !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrPoolTimeout) {
		t.Errorf("Get past its deadline: err = %v, want context.DeadlineExceeded and ErrPoolTimeout", err)
	}

	p.Put(c2, nil)
	p.Put(c3, nil)
	if n := ts.accepted.Load(); n != 2 {
		t.Errorf("server accepted %d connections, want 2", n)
	}
}

func TestGet_neverMoreThanMaxActiveOpen(t *testing.T) {
	const maxActive = 2
	ts := startServer(t)
	var open, maxOpen atomic.Int64 // counted at the client: exact, unlike the server's view of closes
	dial := func(ctx context.Context, addr string) (net.Conn, error) {
		var d net.Dialer
		nc, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, err
		}
		storeMax(&maxOpen, open.Add(1))
		return &countedConn{Conn: nc, open: &open}, nil
	}
	p := newPool(t, Config{MaxActive: maxActive, Dial: dial})
	hammer := func(breakEvery int) {
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Go(func() {
				for i := range 50 {
					c, err := p.Get(context.Background(), ts.addr)
					if err != nil {
						t.Error(err)
						return
					}
					err = mn(c)
					if err == nil && breakEvery > 0 && (g+i)%breakEvery == 0 {
						err = io.ErrUnexpectedEOF // as if the reply were cut short
					}
					p.Put(c, err)
				}
			})
		}
		wg.Wait()
	}

	hammer(0) // every Put reusable: the server sees only MaxActive connections
	if n, m := ts.accepted.Load(), ts.maxOpen.Load(); n > maxActive || m > maxActive {
		t.Errorf("server accepted %d connections, %d open at once; MaxActive is %d", n, m, maxActive)
	}
	hammer(5) // some Puts close their conn: slots are freed and redialed
	if m := maxOpen.Load(); m > maxActive {
		t.Errorf("%d connections were open at once, MaxActive is %d", m, maxActive)
	}
	s := statsOf(p, ts.addr)
	t.Logf("dials %d, waits %d, server accepted %d", s.Dials, s.Waits, ts.accepted.Load())
	if s.Active != 0 || s.Idle > maxActive {
		t.Errorf("after the run: %+v", s)
	}
}

func TestPut_reusesOnlyInSyncConns(t *testing.T) {
	ts := startServer(t)
	p := newPool(t, Config{})
	c := mustGet(t, p, ts.addr)
	first := c.nc
	for _, err := range []error{nil, protocol.ErrBadFormat, InSync(errors.New("miss"))} {
		p.Put(c, err)
		c = mustGet(t, p, ts.addr)
		if c.nc != first {
			t.Fatalf("Put(c, %v) did not keep the connection for reuse", err)
		}
	}
	if err := mn(c); err != nil {
		t.Fatal(err)
	}

	p.Put(c, io.ErrUnexpectedEOF)
	if _, err := first.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("after Put with a short read, Read on the conn = %v, want net.ErrClosed", err)
	}
	c = mustGet(t, p, ts.addr)
	if c.nc == first {
		t.Error("a connection Put with an I/O error was reused")
	}

	// A request written but not flushed leaves the connection out of sync.
	c.W.WriteString("mn\r\n")
	unflushed := c.nc
	p.Put(c, nil)
	if c = mustGet(t, p, ts.addr); c.nc == unflushed {
		t.Error("a connection with unsent bytes was reused")
	}
	p.Put(c, nil)
	if s := statsOf(p, ts.addr); s.Dials != 3 || s.Idle != 1 || s.Active != 0 {
		t.Errorf("stats = %+v, want 3 dials, 1 idle", s)
	}
}

func TestPut_keepsAtMostMaxIdle(t *testing.T) {
	ts := startServer(t)
	p := newPool(t, Config{MaxActive: 4, MaxIdle: 1})
	cs := []*Conn{mustGet(t, p, ts.addr), mustGet(t, p, ts.addr), mustGet(t, p, ts.addr)}
	for _, c := range cs {
		p.Put(c, nil)
	}
	if s := statsOf(p, ts.addr); s.Idle != 1 || s.Active != 0 {
		t.Errorf("stats = %+v, want 1 idle", s)
	}
	waitFor(t, "the server to see two closes", func() (bool, any) { n := ts.open.Load(); return n == 1, n })
}

func TestReusable(t *testing.T) {
	timeout := &net.OpError{Op: "read", Net: "tcp", Err: errTimeout{}}
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nil, true},
		{protocol.ErrBadFormat, true},
		{fmt.Errorf("set: %w", &protocol.ClientError{Msg: "x"}), true},
		{InSync(errors.New("client: cache miss")), true},
		{fmt.Errorf("wrapped: %w", ErrInSync), true},
		{&protocol.ServerError{Msg: "out of memory"}, false},
		{protocol.ErrUnknownCommand, false},
		{io.EOF, false},
		{io.ErrUnexpectedEOF, false},
		{timeout, false},
		{net.ErrClosed, false},
		{context.DeadlineExceeded, false},
		{errors.Join(protocol.ErrBadFormat, io.ErrUnexpectedEOF), false}, // I/O failure wins
		{errors.New("anything else"), false},
	} {
		if got := Reusable(tc.err); got != tc.want {
			t.Errorf("Reusable(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
	if InSync(nil) != nil {
		t.Error("InSync(nil) != nil")
	}
	if e := InSync(io.EOF); e.Error() != "EOF" || !errors.Is(e, io.EOF) {
		t.Errorf("InSync(io.EOF) = %v: must read as and wrap its error", e)
	}
}

type errTimeout struct{}

func (errTimeout) Error() string   { return "i/o timeout" }
func (errTimeout) Timeout() bool   { return true }
func (errTimeout) Temporary() bool { return true }

func TestIdleTimeout_closesOldIdleConns(t *testing.T) {
	ts := startServer(t)
	clk := newFakeClock()
	p := newPool(t, Config{IdleTimeout: 20 * time.Millisecond, Now: clk.Now})
	c := mustGet(t, p, ts.addr)
	p.Put(c, nil)
	clk.Advance(time.Hour)
	waitFor(t, "the reaper to close the idle conn", func() (bool, any) {
		s := statsOf(p, ts.addr)
		return s.Idle == 0 && ts.open.Load() == 0, s
	})
}

func TestGet_dropsIdleConnPastIdleTimeout(t *testing.T) {
	ts := startServer(t)
	clk := newFakeClock()
	p := newPool(t, Config{IdleTimeout: time.Hour, Now: clk.Now}) // the reaper ticks every 30 min: never here
	c := mustGet(t, p, ts.addr)
	old := c.nc
	p.Put(c, nil)
	clk.Advance(2 * time.Hour)
	if c = mustGet(t, p, ts.addr); c.nc == old {
		t.Error("Get handed out a connection idle past IdleTimeout")
	}
	p.Put(c, nil)
}

func TestForget_closesAddrConns(t *testing.T) {
	ts := startServer(t)
	p := newPool(t, Config{})
	idle, busy := mustGet(t, p, ts.addr), mustGet(t, p, ts.addr)
	p.Put(idle, nil)
	p.Forget(ts.addr)
	if _, ok := p.Stats()[ts.addr]; ok {
		t.Error("Stats still lists a forgotten address")
	}
	if err := mn(busy); err == nil {
		t.Error("a connection in use survived Forget")
	}
	p.Put(busy, nil)
	waitFor(t, "the server to see both closes", func() (bool, any) { n := ts.open.Load(); return n == 0, n })
	c := mustGet(t, p, ts.addr) // a forgotten address may be used again
	if err := mn(c); err != nil {
		t.Error(err)
	}
	p.Put(c, nil)
}

func TestHello_sentOnEveryNewConn(t *testing.T) {
	ts := startServer(t)
	p := newPool(t, Config{Hello: []byte("version\r\n")})
	c1, c2 := mustGet(t, p, ts.addr), mustGet(t, p, ts.addr)
	for _, c := range []*Conn{c1, c2} {
		if err := mn(c); err != nil { // the Hello reply was consumed
			t.Fatal(err)
		}
		p.Put(c, nil)
	}
	if n := ts.versions.Load(); n != 2 {
		t.Errorf("server saw %d hellos, want 2", n)
	}

	clk := newFakeClock() // the backoff must not end before the second Get
	refused := newPool(t, Config{Hello: []byte("bogus\r\n"), Now: clk.Now, Rand: func() float64 { return 0.5 }})
	_, err := refused.Get(context.Background(), ts.addr)
	var de *DialError
	if !errors.As(err, &de) || errors.Is(err, ErrBackoff) {
		t.Fatalf("Get with a refused hello: err = %v, want a *DialError", err)
	}
	if _, err := refused.Get(context.Background(), ts.addr); !errors.Is(err, ErrBackoff) {
		t.Errorf("Get right after a refused hello: err = %v, want ErrBackoff", err)
	}
}

func TestWarm_boundsDialsInFlight(t *testing.T) {
	const n, batch = 10, 3
	ts := startServer(t)
	var inflight, maxInflight atomic.Int64
	release := make(chan struct{})
	dial := func(ctx context.Context, _ string) (net.Conn, error) {
		storeMax(&maxInflight, inflight.Add(1))
		defer inflight.Add(-1)
		select {
		case <-release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		var d net.Dialer
		return d.DialContext(ctx, "tcp", ts.addr)
	}
	p := newPool(t, Config{Dial: dial, DialTimeout: time.Minute})
	addrs := make([]string, n)
	for i := range addrs {
		addrs[i] = fmt.Sprintf("node-%d:11211", i)
	}
	done := make(chan error, 1)
	go func() { done <- p.Warm(context.Background(), addrs, batch) }()
	for left := n; left > 0; left-- {
		want := int64(min(batch, left))
		waitFor(t, fmt.Sprintf("%d dials in flight", want), func() (bool, any) { k := inflight.Load(); return k == want, k })
		release <- struct{}{}
	}
	if err := <-done; err != nil {
		t.Fatalf("Warm: %v", err)
	}
	if m := maxInflight.Load(); m != batch {
		t.Errorf("at most %d dials were in flight, want exactly batch=%d", m, batch)
	}
	for _, a := range addrs {
		if s := statsOf(p, a); s.Idle != 1 || s.Dials != 1 {
			t.Errorf("%s: %+v, want one idle conn from one dial", a, s)
		}
	}
}

func TestWarm_reportsEachUnreachableAddr(t *testing.T) {
	ts := startServer(t)
	errDown := errors.New("down")
	dial := func(ctx context.Context, addr string) (net.Conn, error) {
		if addr != ts.addr {
			return nil, errDown
		}
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	}
	p := newPool(t, Config{Dial: dial})
	err := p.Warm(context.Background(), []string{"a:1", ts.addr, "b:1"}, 0)
	var de *DialError
	if !errors.Is(err, errDown) || !errors.As(err, &de) {
		t.Fatalf("Warm: err = %v, want the dial errors", err)
	}
	if got := len(err.(interface{ Unwrap() []error }).Unwrap()); got != 2 {
		t.Errorf("Warm joined %d errors, want 2: %v", got, err)
	}
	if s := statsOf(p, ts.addr); s.Idle != 1 {
		t.Errorf("reachable address not warmed: %+v", s)
	}
}

func TestClose_waitsAndLeaksNothing(t *testing.T) {
	ts := startServer(t)
	before := runtime.NumGoroutine()
	dial := func(ctx context.Context, addr string) (net.Conn, error) {
		if addr == "blackhole:1" {
			<-ctx.Done() // a dial that only Close can end
			return nil, ctx.Err()
		}
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	}
	p, err := New(Config{MaxActive: 1, Dial: dial, DialTimeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	held := mustGet(t, p, ts.addr)
	errs := make(chan error, 2)
	go func() { _, err := p.Get(context.Background(), ts.addr); errs <- err }()
	go func() { _, err := p.Get(context.Background(), "blackhole:1"); errs <- err }()
	waitFor(t, "a waiting Get and a dial in flight", func() (bool, any) {
		s := p.Stats()
		return s[ts.addr].Waits == 1 && s["blackhole:1"].Dialing == 1, s
	})

	if !reaperRunning() {
		t.Fatal("no reaper goroutine before Close")
	}
	p.Close()
	if reaperRunning() { // checked at once: Close must have waited for it
		t.Error("the reaper goroutine outlived Close")
	}
	for range 2 {
		select {
		case err := <-errs:
			if !errors.Is(err, ErrClosed) {
				t.Errorf("Get blocked across Close: err = %v, want ErrClosed", err)
			}
		case <-time.After(waitTimeout):
			t.Fatal("a Get was still blocked after Close returned")
		}
	}
	if _, err := p.Get(context.Background(), ts.addr); !errors.Is(err, ErrClosed) {
		t.Errorf("Get after Close: err = %v, want ErrClosed", err)
	}
	if err := mn(held); err == nil {
		t.Error("a connection in use survived Close")
	}
	p.Put(held, nil)
	p.Close() // idempotent
	waitFor(t, "the server to see the close", func() (bool, any) { n := ts.open.Load(); return n == 0, n })
	waitFor(t, "goroutines to return to the baseline", func() (bool, any) {
		n := runtime.NumGoroutine()
		return n <= before, fmt.Sprintf("%d goroutines, %d before", n, before)
	})
}

func TestNew_validatesConfig(t *testing.T) {
	for _, cfg := range []Config{
		{MaxIdle: -1},
		{MaxActive: -1},
		{DialTimeout: -time.Second},
		{BackoffBase: -1},
		{HealthTimeout: -1},
		{BackoffBase: time.Second, BackoffCap: time.Millisecond},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) accepted an invalid config", cfg)
		}
	}
	p, err := New(Config{MaxActive: 2, IdleTimeout: -1, HealthAfter: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if c := p.cfg; c.MaxIdle != 2 || c.DialTimeout != DefaultDialTimeout || c.BackoffCap != DefaultBackoffCap {
		t.Errorf("defaults not applied: %+v", c)
	}
}

// reaperRunning reports whether any Pool's reaper goroutine is alive.
func reaperRunning() bool {
	buf := make([]byte, 1<<20)
	return strings.Contains(string(buf[:runtime.Stack(buf, true)]), "connpool.(*Pool).reapLoop")
}

func TestClose_waitsForReaper(t *testing.T) {
	var block atomic.Bool
	entered, release := make(chan struct{}, 1), make(chan struct{})
	now := func() time.Time { // blocks the reaper inside a reap when told to
		if block.Load() {
			select {
			case entered <- struct{}{}:
			default:
			}
			<-release
		}
		return time.Now()
	}
	p, err := New(Config{IdleTimeout: 20 * time.Millisecond, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	block.Store(true)
	select {
	case <-entered:
	case <-time.After(waitTimeout):
		t.Fatal("the reaper never ran")
	}
	closed := make(chan struct{})
	go func() { p.Close(); close(closed) }()
	waitFor(t, "Close to wait for the reaper", func() (bool, any) {
		select {
		case <-closed:
			t.Fatal("Close returned while its reaper was still running")
		default:
		}
		return closeIsWaiting(), "Close not yet in WaitGroup.Wait"
	})
	close(release)
	select {
	case <-closed:
	case <-time.After(waitTimeout):
		t.Fatal("Close did not return once the reaper could exit")
	}
	if reaperRunning() {
		t.Error("the reaper goroutine outlived Close")
	}
}

// closeIsWaiting reports whether a goroutine is blocked in Pool.Close's
// WaitGroup.Wait.
func closeIsWaiting() bool {
	buf := make([]byte, 1<<20)
	for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
		if strings.Contains(g, "connpool.(*Pool).Close") && strings.Contains(g, "sync.(*WaitGroup).Wait") {
			return true
		}
	}
	return false
}

// gatedConn's Close waits until the test lets it finish.
type gatedConn struct {
	net.Conn
	entered, release chan struct{}
}

func (c *gatedConn) Close() error {
	select {
	case c.entered <- struct{}{}:
	default:
	}
	<-c.release
	return c.Conn.Close()
}

func TestPut_closesBeforeFreeingSlot(t *testing.T) {
	ts := startServer(t)
	entered, release := make(chan struct{}, 1), make(chan struct{})
	dial := func(ctx context.Context, addr string) (net.Conn, error) {
		var d net.Dialer
		nc, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, err
		}
		return &gatedConn{Conn: nc, entered: entered, release: release}, nil
	}
	p := newPool(t, Config{MaxActive: 1, Dial: dial})
	c := mustGet(t, p, ts.addr)
	put := make(chan struct{})
	go func() { p.Put(c, io.ErrUnexpectedEOF); close(put) }()
	<-entered
	// While the socket is still being closed it holds its slot, so a waiting
	// Get cannot make a second connection open at once.
	if s := statsOf(p, ts.addr); s.Active != 1 {
		t.Errorf("slot freed before the conn was closed: %+v", s)
	}
	close(release)
	<-put
	if s := statsOf(p, ts.addr); s.Active != 0 {
		t.Errorf("slot not freed after Put: %+v", s)
	}
}

// TestPut_resetsAfterIOFailure checks how a connection ends: after an I/O
// failure (here a timeout) with a TCP reset, so that a request still in
// flight is dropped rather than delivered when a cut network heals; after a
// clean release with an ordinary FIN.
func TestPut_resetsAfterIOFailure(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 2)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	// endOf reads what the client sent until the connection ends, and
	// returns how it ended.
	endOf := func(sc net.Conn) error {
		defer sc.Close()
		sc.SetReadDeadline(time.Now().Add(waitTimeout))
		_, err := io.Copy(io.Discard, sc)
		return err // nil: a FIN (EOF)
	}
	p := newPool(t, Config{})

	c := mustGet(t, p, ln.Addr().String())
	sc := <-accepted
	c.SetDeadline(context.Background(), 50*time.Millisecond)
	c.W.WriteString("mn\r\n")
	c.W.Flush()
	_, err = c.R.ReadByte() // never answered
	if !ioFailure(err) {
		t.Fatalf("read = %v, want a timeout", err)
	}
	p.Put(c, err)
	if err := endOf(sc); !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("after a timed-out request the server saw %v, want a reset", err)
	}

	c = mustGet(t, p, ln.Addr().String())
	sc = <-accepted
	p.Put(c, &protocol.ServerError{Msg: "busy"}) // not reused, but no request in flight
	if err := endOf(sc); err != nil {
		t.Errorf("after a clean release the server saw %v, want EOF", err)
	}
}
