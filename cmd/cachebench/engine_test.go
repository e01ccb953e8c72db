package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// The epoll engine must count exactly what the goroutine engine counts.
func TestEpoll_memcached(t *testing.T) {
	t.Parallel()
	a, b := startMemcached(t), startMemcached(t)
	out, stderr, err := runCLI(t, t.Context(), "-engine", "epoll", "-servers", a+","+b, "-requests", "2000", "-conns", "3",
		"-pipeline", "1,8", "-keys", "500", "-ratio", "80:15:5", "-value-size", "10-3000", "-prefill", "-warmup", "0", "-quiet", "-json")
	if err != nil {
		t.Fatalf("cachebench: %v\n%s", err, stderr)
	}
	var got runOutput
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v in %s", err, out)
	}
	for _, r := range got.Results {
		if r.Ops != 2000 || r.Errors != 0 || r.Gets+r.Sets+r.Deletes != r.Ops || r.Deletes == 0 {
			t.Errorf("pipeline %d: ops %d errors %d (%s) gets %d sets %d deletes %d", r.Pipeline, r.Ops, r.Errors, r.FirstError, r.Gets, r.Sets, r.Deletes)
		}
		if r.Hits == 0 || r.Hits+r.Misses != r.Gets {
			t.Errorf("pipeline %d: %d hits + %d misses != %d gets", r.Pipeline, r.Hits, r.Misses, r.Gets)
		}
		if len(r.Targets) != 2 || r.Targets[0].Ops+r.Targets[1].Ops != r.Ops || r.Targets[0].Ops == 0 || r.Targets[1].Ops == 0 {
			t.Errorf("pipeline %d: per target %+v", r.Pipeline, r.Targets)
		}
		if l := r.Latency; !(0 < l.P50 && l.P50 <= l.P99 && l.P99 <= l.Max) {
			t.Errorf("pipeline %d: latency %+v", r.Pipeline, l)
		}
		var sum int64
		for _, s := range r.Series {
			sum += s.Ops
		}
		if sum != r.Ops {
			t.Errorf("pipeline %d: the series sums to %d ops, the run to %d", r.Pipeline, sum, r.Ops)
		}
	}
}

// Values larger than the 64 KiB read buffer, and batches larger than the
// socket buffer (the EPOLLOUT path).
func TestEpoll_largeValues(t *testing.T) {
	t.Parallel()
	addr := startMemcached(t)
	r := runJSON(t, "-engine", "epoll", "-servers", addr, "-requests", "120", "-conns", "2", "-pipeline", "8",
		"-keys", "20", "-ratio", "50:50", "-value-size", "100000-400000", "-prefill", "-warmup", "0", "-quiet")
	if r.Ops != 120 || r.Errors != 0 || r.HitRatio != 1 {
		t.Errorf("ops %d errors %d (%s) hit ratio %v", r.Ops, r.Errors, r.FirstError, r.HitRatio)
	}
}

// A server that hangs up every 10 requests: the batches it cuts fail, the
// engine redials, and every request is either answered or failed.
func TestEpoll_serverHangsUp(t *testing.T) {
	t.Parallel()
	srv := startTestServer(t, &slowServer{closeAfter: 10})
	for _, engine := range []string{engineEpoll, engineGo} {
		r := runJSON(t, "-engine", engine, "-servers", srv.addr(), "-requests", "200", "-conns", "2", "-keys", "10",
			"-warmup", "0", "-quiet", "-timeout", "2s")
		if r.Ops+r.Errors != 200 || r.Errors == 0 || r.Reconnects == 0 || r.Ops < 150 {
			t.Errorf("%s: ops %d + errors %d != 200 or no reconnects (%d); first error %q", engine, r.Ops, r.Errors, r.Reconnects, r.FirstError)
		}
	}
}

// A server that never answers: each request times out.
func TestEpoll_timeout(t *testing.T) {
	t.Parallel()
	srv := startTestServer(t, &slowServer{mute: true})
	start := time.Now()
	r := runJSON(t, "-engine", "epoll", "-servers", srv.addr(), "-requests", "3", "-conns", "1", "-keys", "10",
		"-warmup", "0", "-quiet", "-timeout", "200ms")
	if r.Ops != 0 || r.Errors != 3 || !strings.Contains(r.FirstError, "timeout") {
		t.Errorf("ops %d errors %d first error %q; want 3 timeouts", r.Ops, r.Errors, r.FirstError)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("3 timeouts of 200ms took %v", d)
	}
}

// Cancelling the context ends a run at once, even with replies pending.
func TestEpoll_interrupt(t *testing.T) {
	t.Parallel()
	srv := startTestServer(t, &slowServer{mute: true})
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := cli(ctx, []string{"-engine", "epoll", "-servers", srv.addr(), "-duration", "1h", "-conns", "2", "-warmup", "0", "-quiet"},
		new(bytes.Buffer), new(bytes.Buffer))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the context's", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("interrupted run returned after %v", d)
	}
}

func TestEngineFlag(t *testing.T) {
	srv := startSlowServer(t, 0)
	for _, args := range [][]string{{"-engine", "poll"}, {"-engine", "epoll", "-rate", "100"}} {
		if _, _, err := runCLI(t, t.Context(), append([]string{"-servers", srv.addr(), "-requests", "1"}, args...)...); err == nil {
			t.Errorf("%q: no error", args)
		}
	}
}
