package node

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// logBuffer collects log lines from concurrent writers.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// lines returns the lines logged so far that contain substr.
func (l *logBuffer) lines(substr string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, line := range strings.Split(l.b.String(), "\n") {
		if line != "" && strings.Contains(line, substr) {
			out = append(out, line)
		}
	}
	return out
}

func bufferLogger() (*slog.Logger, *logBuffer) {
	b := &logBuffer{}
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelInfo})), b
}

// TestFailureLog_burst: 1000 failures of one owner within an interval log
// one line at once and one more, with the count held back, when the
// interval ends; a second owner gets lines of its own.
func TestFailureLog_burst(t *testing.T) {
	l, buf := bufferLogger()
	f := &failureLog{logger: l, interval: logInterval, owners: map[string]*ownerFailures{}}
	t0 := time.Now()
	var wg sync.WaitGroup
	for g := range 10 {
		wg.Go(func() {
			for i := range 100 {
				f.record("n1", "10.0.0.1:11211", errors.New("connection refused"), t0.Add(time.Duration(g*100+i)*time.Millisecond))
			}
		})
	}
	wg.Wait()
	f.record("n2", "10.0.0.2:11211", errors.New("i/o timeout"), t0)
	f.flush(t0.Add(logInterval / 2))
	if got := buf.lines("forwarding to the owner failed"); len(got) != 2 {
		t.Fatalf("%d lines after 1001 failures of two owners within an interval, want 2:\n%s", len(got), strings.Join(got, "\n"))
	}
	f.flush(t0.Add(logInterval + 2*time.Second))
	got := buf.lines("owner=n1")
	if len(got) != 2 || !strings.HasSuffix(got[0], "failures=1") || !strings.Contains(got[1], "failures=999 ") ||
		!strings.Contains(got[1], "addr=10.0.0.1:11211") || !strings.Contains(got[1], `err="connection refused"`) {
		t.Fatalf("owner n1's lines:\n%s\nwant failures=1, then failures=999 with its address and error", strings.Join(got, "\n"))
	}
	if got := buf.lines("owner=n2"); len(got) != 1 {
		t.Fatalf("owner n2 logged %d lines for one failure", len(got))
	}
	f.flush(t0.Add(5 * logInterval))
	if got := buf.lines("forwarding to the owner failed"); len(got) != 3 {
		t.Fatalf("%d lines after quiet intervals, want still 3", len(got))
	}
	if len(f.owners) != 0 {
		t.Errorf("%d quiet owners kept", len(f.owners))
	}
}

// TestRateLog_hotStorm: a whole hot set (64 keys) turning hot and cooling
// within one interval logs hotLogBurst lines, then one summary with the
// rest; a key flapping for a minute logs a bounded number of lines.
func TestRateLog_hotStorm(t *testing.T) {
	l, buf := bufferLogger()
	r := newRateLog(l, slog.LevelInfo, "suppressed hot-key events", hotLogBurst, logInterval)
	t0 := time.Now()
	for i := range 64 {
		r.log(t0, "key turned hot", "key", fmt.Sprint("k", i))
	}
	for i := range 64 {
		r.log(t0.Add(time.Second), "key cooled", "key", fmt.Sprint("k", i))
	}
	if got := len(buf.lines("level=INFO")); got != hotLogBurst {
		t.Fatalf("%d lines for 128 events in one interval, want %d", got, hotLogBurst)
	}
	r.flush(t0.Add(logInterval))
	if got := buf.lines("suppressed hot-key events"); len(got) != 1 || !strings.Contains(got[0], fmt.Sprint("count=", 128-hotLogBurst)) {
		t.Fatalf("summary lines %q, want one with count=%d", got, 128-hotLogBurst)
	}

	l, buf = bufferLogger()
	r = newRateLog(l, slog.LevelInfo, "suppressed hot-key events", hotLogBurst, logInterval)
	for ms := 0; ms < 60_000; ms += 100 { // hot and cool every 100 ms tick
		now := t0.Add(time.Duration(ms) * time.Millisecond)
		r.log(now, "key turned hot", "key", "flap")
		r.log(now, "key cooled", "key", "flap")
		r.flush(now)
	}
	if got, limit := len(buf.lines("level=INFO")), 6*(hotLogBurst+1); got > limit {
		t.Fatalf("a key flapping every tick for a minute logged %d lines, want at most %d", got, limit)
	}
}

// TestRejectionLog: refusals are reported at most once per interval, with
// how many since the previous line.
func TestRejectionLog(t *testing.T) {
	l, buf := bufferLogger()
	r := rejectionLog{logger: l, interval: logInterval}
	t0 := time.Now()
	r.check(0, 4, t0)
	for i := range 1000 {
		r.check(uint64(i+1), 4, t0.Add(time.Duration(i)*time.Millisecond))
	}
	r.check(1000, 4, t0.Add(logInterval+time.Second))
	got := buf.lines("refusing connections")
	if len(got) != 2 || !strings.Contains(got[0], "refused=1 ") || !strings.Contains(got[1], "refused=999 ") {
		t.Fatalf("lines:\n%s\nwant refused=1, then refused=999", strings.Join(got, "\n"))
	}
}
