package connpool

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"
)

func TestHealthCheck_staleConnChecked(t *testing.T) {
	ts := startServer(t)
	clk := newFakeClock()
	p := newPool(t, Config{HealthAfter: time.Second, HealthTimeout: 5 * time.Second, Now: clk.Now})
	c := mustGet(t, p, ts.addr)
	first := c.nc
	p.Put(c, nil)

	clk.Advance(500 * time.Millisecond) // fresh: reused without a check
	c = mustGet(t, p, ts.addr)
	if c.nc != first || ts.mn.Load() != 0 {
		t.Fatalf("fresh idle conn: reused %v, %d checks; want reused, no check", c.nc == first, ts.mn.Load())
	}
	p.Put(c, nil)

	clk.Advance(2 * time.Second) // stale: checked, passes, reused
	c = mustGet(t, p, ts.addr)
	if c.nc != first || ts.mn.Load() != 1 {
		t.Fatalf("stale idle conn: reused %v, %d checks; want reused after one check", c.nc == first, ts.mn.Load())
	}
	if err := mn(c); err != nil { // the check's reply was consumed
		t.Fatal(err)
	}
	p.Put(c, nil)
}

func TestHealthCheck_wedgedServerConnReplaced(t *testing.T) {
	const checkTimeout = 300 * time.Millisecond
	ts := startServer(t)
	clk := newFakeClock()
	p := newPool(t, Config{HealthAfter: time.Second, HealthTimeout: checkTimeout, Now: clk.Now})
	c := mustGet(t, p, ts.addr)
	stale := c.nc
	p.Put(c, nil)
	clk.Advance(2 * time.Second)
	ts.wedged.Store(true) // TCP stays up, "mn" goes unanswered

	start := time.Now()
	c = mustGet(t, p, ts.addr)
	elapsed := time.Since(start)
	t.Logf("Get with a failed check took %v (check timeout %v)", elapsed, checkTimeout)
	if c.nc == stale {
		t.Fatal("a conn that failed its health check was handed out")
	}
	if elapsed > checkTimeout+5*time.Second { // generous: the machine is shared
		t.Errorf("Get took %v, want about the check timeout %v", elapsed, checkTimeout)
	}
	if s := statsOf(p, ts.addr); s.HealthFailures != 1 || s.Dials != 2 || s.Active != 1 {
		t.Errorf("stats = %+v, want 1 health failure, 2 dials", s)
	}
	if _, err := stale.Read(make([]byte, 1)); err == nil {
		t.Error("the wedged conn was not closed")
	}
	p.Put(c, nil)
}

func TestHealthCheck_off(t *testing.T) {
	ts := startServer(t)
	clk := newFakeClock()
	p := newPool(t, Config{HealthAfter: -1, IdleTimeout: -1, Now: clk.Now})
	c := mustGet(t, p, ts.addr)
	first := c.nc
	p.Put(c, nil)
	clk.Advance(24 * time.Hour)
	c = mustGet(t, p, ts.addr)
	if c.nc != first || ts.mn.Load() != 0 {
		t.Errorf("HealthAfter and IdleTimeout < 0: reused %v, %d checks; want reused, no check", c.nc == first, ts.mn.Load())
	}
	p.Put(c, nil)
}

func TestDeadline_soonerOfCtxAndTimeout(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	ctxAt := func(d time.Duration) context.Context {
		ctx, cancel := context.WithDeadline(context.Background(), now.Add(d))
		t.Cleanup(cancel)
		return ctx
	}
	for _, tc := range []struct {
		name    string
		ctx     context.Context
		timeout time.Duration
		want    time.Time
	}{
		{"neither", context.Background(), 0, time.Time{}},
		{"timeout only", context.Background(), time.Second, now.Add(time.Second)},
		{"ctx only", ctxAt(time.Minute), 0, now.Add(time.Minute)},
		{"timeout sooner", ctxAt(time.Minute), time.Second, now.Add(time.Second)},
		{"ctx sooner", ctxAt(time.Second), time.Minute, now.Add(time.Second)},
	} {
		if got := deadline(now, tc.ctx, tc.timeout); !got.Equal(tc.want) {
			t.Errorf("%s: deadline = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestSetDeadline_cancelUnblocksIO(t *testing.T) {
	ts := startServer(t)
	ts.wedged.Store(true)
	p := newPool(t, Config{})
	c := mustGet(t, p, ts.addr)
	ctx, cancel := context.WithCancel(context.Background())
	if err := c.SetDeadline(ctx, time.Hour); err != nil {
		t.Fatal(err)
	}
	c.W.WriteString("mn\r\n")
	if err := c.W.Flush(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the server to read the request", func() (bool, any) { n := ts.mn.Load(); return n == 1, n })
	cancel()
	_, err := c.R.ReadSlice('\n') // no reply is coming: only the cancel ends this
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read after cancel: err = %v, want a deadline error", err)
	}
	if Reusable(err) {
		t.Error("Reusable(deadline error) = true")
	}
	if err := c.SetDeadline(ctx, time.Second); !errors.Is(err, context.Canceled) {
		t.Errorf("SetDeadline with an ended ctx: err = %v, want context.Canceled", err)
	}
	p.Put(c, err)
}

func TestSetDeadline_cancelAfterRequestKeepsConn(t *testing.T) {
	ts := startServer(t)
	p := newPool(t, Config{})
	c := mustGet(t, p, ts.addr)
	first := c.nc
	if err := mn(c); err != nil { // mn cancels its own ctx when done
		t.Fatal(err)
	}
	p.Put(c, nil)
	c = mustGet(t, p, ts.addr)
	if c.nc != first {
		t.Fatal("a conn whose request ctx ended after the reply was not reused")
	}
	if err := mn(c); err != nil { // the fired watcher did not poison the next request
		t.Fatal(err)
	}
	p.Put(c, nil)
}
