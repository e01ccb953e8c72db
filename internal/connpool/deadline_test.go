package connpool

import (
	"context"
	"errors"
	"net"
	"os"
	"testing"
	"time"
)

// lateCtx is a caller's context whose deadline has passed but whose timer
// has not fired yet (Err is still nil): the moment in which the OS dialer,
// timed by the same deadline, already reports an i/o timeout.
type lateCtx struct{ context.Context }

func (lateCtx) Deadline() (time.Time, bool) { return time.Now().Add(-time.Millisecond), true }

// A dial that fails only because the caller's own deadline came first must
// not put the address into backoff: the next caller, with time to spare,
// dials again.
func TestCallerDeadlineDoesNotStartBackoff(t *testing.T) {
	dials := 0
	p, err := New(Config{
		DialTimeout: 10 * time.Second,
		IdleTimeout: -1,
		Dial: func(ctx context.Context, addr string) (net.Conn, error) {
			dials++
			return nil, &net.OpError{Op: "dial", Err: os.ErrDeadlineExceeded}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := p.Get(lateCtx{context.Background()}, "127.0.0.1:1"); err == nil {
		t.Fatal("dial that timed out succeeded")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, err = p.Get(ctx, "127.0.0.1:1"); errors.Is(err, ErrBackoff) {
		t.Fatalf("the caller's own deadline put the address into backoff: %v", err)
	}
	if dials != 2 {
		t.Fatalf("%d dials; want 2 (no backoff after a caller-deadline failure)", dials)
	}
}
