package connpool

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestBackoffFormula(t *testing.T) {
	const base, cap = 50 * time.Millisecond, 5 * time.Second
	for _, tc := range []struct {
		attempt int
		r       float64
		want    time.Duration
	}{
		{0, 0, 0},
		{0, 0.5, 25 * time.Millisecond},
		{1, 0.5, 50 * time.Millisecond},
		{2, 0.5, 100 * time.Millisecond},
		{6, 1, 3200 * time.Millisecond},
		{7, 1, cap}, // 6.4s capped
		{7, 0.5, cap / 2},
		{1000, 0.5, cap / 2}, // no overflow
	} {
		if got := backoff(base, cap, tc.attempt, tc.r); got != tc.want {
			t.Errorf("backoff(attempt %d, r %v) = %v, want %v", tc.attempt, tc.r, got, tc.want)
		}
	}
	if got := backoff(time.Duration(1<<62), time.Duration(1<<62+1<<61), 3, 1); got != time.Duration(1<<62+1<<61) {
		t.Errorf("huge base: %v", got)
	}
}

// flakyDialer dials the real address unless down, when it fails with errDown.
type flakyDialer struct{ down atomic.Bool }

var errDown = errors.New("connection refused (test)")

func (f *flakyDialer) dial(ctx context.Context, addr string) (net.Conn, error) {
	if f.down.Load() {
		return nil, errDown
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", addr)
}

// seqRand returns rs in turn (then the last one) and counts its calls.
type seqRand struct {
	mu    sync.Mutex
	rs    []float64
	calls int
}

func (s *seqRand) Float64() float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.rs[min(s.calls, len(s.rs)-1)]
	s.calls++
	return r
}

func TestBackoff_failsFastGrowsWithJitterAndRecovers(t *testing.T) {
	ts := startServer(t)
	clk := newFakeClock()
	fd := &flakyDialer{}
	fd.down.Store(true)
	rnd := &seqRand{rs: []float64{0.5, 0.9, 0.1, 0.75, 0.5, 0.5}}
	p := newPool(t, Config{
		Dial: fd.dial, Rand: rnd.Float64, Now: clk.Now,
		BackoffBase: 100 * time.Millisecond, BackoffCap: time.Second,
	})
	ctx := context.Background()

	// Each failed dial opens a backoff of r·min(cap, base·2^n), r from Rand.
	wants := []time.Duration{
		50 * time.Millisecond,  // 0.5 × 100ms
		180 * time.Millisecond, // 0.9 × 200ms
		40 * time.Millisecond,  // 0.1 × 400ms
		600 * time.Millisecond, // 0.75 × 800ms
		500 * time.Millisecond, // 0.5 × min(1s, 1.6s)
	}
	for i, want := range wants {
		_, err := p.Get(ctx, ts.addr)
		var de *DialError
		if !errors.As(err, &de) || !errors.Is(err, errDown) || errors.Is(err, ErrBackoff) {
			t.Fatalf("dial %d: err = %v, want a *DialError wrapping the cause", i, err)
		}
		failedAt := clk.Now()
		for range 3 { // fails fast, without dialing
			_, err = p.Get(ctx, ts.addr)
			if !errors.Is(err, ErrBackoff) || !errors.Is(err, errDown) || !errors.As(err, &de) {
				t.Fatalf("Get in backoff %d: err = %v, want ErrBackoff wrapping the cause", i, err)
			}
		}
		if got := de.Until.Sub(failedAt); got != want {
			t.Errorf("backoff %d = %v, want %v", i, got, want)
		}
		clk.Advance(want - time.Nanosecond)
		if _, err := p.Get(ctx, ts.addr); !errors.Is(err, ErrBackoff) {
			t.Fatalf("Get 1ns before the backoff ends: err = %v, want ErrBackoff", err)
		}
		if s := statsOf(p, ts.addr); s.Dials != uint64(i+1) || s.Backoffs != uint64(4*(i+1)) || !s.InBackoff {
			t.Fatalf("after failure %d: %+v, want %d dials", i, s, i+1)
		}
		clk.Advance(time.Nanosecond)
	}
	if rnd.calls != len(wants) {
		t.Errorf("Rand called %d times for %d failed dials", rnd.calls, len(wants))
	}

	// The server is back: the next Get after the backoff dials and works.
	fd.down.Store(false)
	c := mustGet(t, p, ts.addr)
	if err := mn(c); err != nil {
		t.Fatal(err)
	}
	if s := statsOf(p, ts.addr); s.InBackoff || s.DialErrors != uint64(len(wants)) {
		t.Errorf("after recovery: %+v", s)
	}

	// A success resets the exponent: the next failure backs off from base.
	p.Put(c, errDown) // not reusable: closed
	fd.down.Store(true)
	if _, err := p.Get(ctx, ts.addr); errors.Is(err, ErrBackoff) || err == nil {
		t.Fatalf("dial after recovery: err = %v", err)
	}
	_, err := p.Get(ctx, ts.addr)
	var de *DialError
	if !errors.As(err, &de) || de.Until.Sub(clk.Now()) != 50*time.Millisecond {
		t.Errorf("first backoff after recovery: %v, want 50ms (0.5 × base)", err)
	}
}

func TestBackoff_concurrentFailuresCountOnce(t *testing.T) {
	const n = 3
	clk := newFakeClock()
	var arrived atomic.Int64
	all := make(chan struct{})
	dial := func(ctx context.Context, addr string) (net.Conn, error) {
		if arrived.Add(1) == n {
			close(all)
		}
		select { // all n dials are in flight together, then fail
		case <-all:
			return nil, errDown
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	p := newPool(t, Config{Dial: dial, Rand: func() float64 { return 0.5 }, Now: clk.Now, BackoffBase: 100 * time.Millisecond})
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			if _, err := p.Get(context.Background(), "down:1"); !errors.Is(err, errDown) {
				t.Errorf("err = %v, want errDown", err)
			}
		})
	}
	wg.Wait()
	_, err := p.Get(context.Background(), "down:1")
	var de *DialError
	if !errors.As(err, &de) || !errors.Is(err, ErrBackoff) {
		t.Fatalf("err = %v, want ErrBackoff", err)
	}
	if got := de.Until.Sub(clk.Now()); got != 50*time.Millisecond {
		t.Errorf("backoff after %d simultaneous failures = %v, want one step (50ms)", n, got)
	}
}

func TestBackoff_onlyOneProbeAfterBackoff(t *testing.T) {
	clk := newFakeClock()
	var hold atomic.Bool
	gate := make(chan struct{})
	dial := func(ctx context.Context, addr string) (net.Conn, error) {
		if hold.Load() {
			select {
			case <-gate:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		return nil, errDown
	}
	p := newPool(t, Config{Dial: dial, Rand: func() float64 { return 0.5 }, Now: clk.Now})
	if _, err := p.Get(context.Background(), "down:1"); !errors.Is(err, errDown) {
		t.Fatal(err)
	}
	clk.Advance(time.Minute) // the backoff is over: the next Get probes
	hold.Store(true)
	done := make(chan error, 1)
	go func() { _, err := p.Get(context.Background(), "down:1"); done <- err }()
	waitFor(t, "the probe dial", func() (bool, any) { s := statsOf(p, "down:1"); return s.Dialing == 1, s })
	if _, err := p.Get(context.Background(), "down:1"); !errors.Is(err, ErrBackoff) {
		t.Errorf("Get while the probe is in flight: err = %v, want ErrBackoff", err)
	}
	close(gate)
	if err := <-done; !errors.Is(err, errDown) {
		t.Errorf("probe: %v", err)
	}
	if s := statsOf(p, "down:1"); s.Dials != 2 {
		t.Errorf("stats = %+v, want 2 dials", s)
	}
}

func TestGet_callerCancelDoesNotStartBackoff(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	dial := func(dctx context.Context, addr string) (net.Conn, error) {
		cancel()
		<-dctx.Done()
		return nil, dctx.Err()
	}
	p := newPool(t, Config{Dial: dial})
	if _, err := p.Get(ctx, "x:1"); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if s := statsOf(p, "x:1"); s.InBackoff {
		t.Errorf("the caller's own cancel put the address in backoff: %+v", s)
	}
}
