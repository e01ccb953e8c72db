package node

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/hotcache/hotcache/ring"
)

// Some events repeat at the rate of requests or of the hot-key analyzer's
// ticks: a dead owner fails every forward to it, a flapping key turns hot
// and cools every few seconds, a 64-key hot set turns hot at once, a client
// storm is refused connection after connection. Their info and warn lines
// go through the limiters below, so that what reaches the log is bounded
// per interval whatever the load, and nothing is dropped silently: what a
// limiter holds back is counted and reported in a later line. The per
// request detail stays at debug level (-v).

// logInterval is the period of every limiter.
const logInterval = 10 * time.Second

// Lines let through per logInterval before a limiter starts counting
// instead: hot and cool events, and watch streams cut off.
const (
	hotLogBurst   = 10
	watchLogBurst = 10
)

// nodeLogs are the node's limiters. The ring goroutine calls flush every
// tick, so held-back counts are reported within a tick of their interval's
// end even when the events stop.
type nodeLogs struct {
	hot      *rateLog     // "key turned hot", "key cooled"
	watch    *rateLog     // watch streams cut off
	forward  *failureLog  // forwards failing, per owner
	rejected rejectionLog // connections over -c; ring goroutine only
}

func newNodeLogs(l *slog.Logger) *nodeLogs {
	return &nodeLogs{
		hot:      newRateLog(l, slog.LevelInfo, "suppressed hot-key events", hotLogBurst, logInterval),
		watch:    newRateLog(l, slog.LevelWarn, "suppressed watch-stream warnings", watchLogBurst, logInterval),
		forward:  &failureLog{logger: l, interval: logInterval, owners: map[string]*ownerFailures{}},
		rejected: rejectionLog{logger: l, interval: logInterval},
	}
}

// flush reports what the limiters held back in intervals that have ended.
func (nl *nodeLogs) flush(now time.Time) {
	nl.hot.flush(now)
	nl.watch.flush(now)
	nl.forward.flush(now)
}

// forwardFailed records a failed forward to owner.
func (nl *nodeLogs) forwardFailed(owner ring.Member, err error) {
	nl.forward.record(owner.Name, owner.Addr, err, time.Now())
}

// A rateLog lets at most burst lines through per interval and counts the
// others; when an interval with held-back lines ends, one summary line
// (summary, count=K) says how many. Safe for concurrent use.
type rateLog struct {
	logger   *slog.Logger
	level    slog.Level
	summary  string
	burst    int
	interval time.Duration

	mu         sync.Mutex
	start      time.Time // of the current interval
	lines      int       // let through in it
	suppressed int       // held back since the last summary
}

func newRateLog(l *slog.Logger, level slog.Level, summary string, burst int, interval time.Duration) *rateLog {
	return &rateLog{logger: l, level: level, summary: summary, burst: burst, interval: interval}
}

// log writes msg with args unless this interval's burst is spent.
func (r *rateLog) log(now time.Time, msg string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.roll(now)
	if r.lines >= r.burst {
		r.suppressed++
		return
	}
	r.lines++
	r.logger.Log(context.Background(), r.level, msg, args...)
}

func (r *rateLog) flush(now time.Time) {
	r.mu.Lock()
	r.roll(now)
	r.mu.Unlock()
}

// roll starts a new interval once the current one is over, reporting what
// it held back. The caller holds mu.
func (r *rateLog) roll(now time.Time) {
	if now.Sub(r.start) < r.interval {
		return
	}
	if r.suppressed > 0 {
		r.logger.Log(context.Background(), r.level, r.summary, "count", r.suppressed, "interval", r.interval)
		r.suppressed = 0
	}
	r.start, r.lines = now, 0
}

// A failureLog reports failures per owner: the first at once, then at most
// one line per interval with how many failed since the previous line and
// the latest error. Safe for concurrent use.
type failureLog struct {
	logger   *slog.Logger
	interval time.Duration

	mu     sync.Mutex
	owners map[string]*ownerFailures
}

type ownerFailures struct {
	addr   string
	err    error     // the latest
	count  int       // failures since the last line
	logged time.Time // when the last line was written
}

func (f *failureLog) record(owner, addr string, err error, now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	o := f.owners[owner]
	if o == nil {
		o = &ownerFailures{}
		f.owners[owner] = o
	}
	o.addr, o.err = addr, err
	o.count++
	if o.logged.IsZero() || now.Sub(o.logged) >= f.interval {
		f.report(owner, o, now)
	}
}

func (f *failureLog) report(owner string, o *ownerFailures, now time.Time) {
	args := []any{"owner", owner, "addr", o.addr, "err", o.err, "failures", o.count}
	if !o.logged.IsZero() {
		args = append(args, "since_last_log", now.Sub(o.logged).Round(time.Millisecond))
	}
	f.logger.Warn("forwarding to the owner failed", args...)
	o.count, o.logged = 0, now
}

// flush reports owners with failures held back for a whole interval, and
// forgets owners quiet for two.
func (f *failureLog) flush(now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for owner, o := range f.owners {
		switch {
		case o.count > 0 && now.Sub(o.logged) >= f.interval:
			f.report(owner, o, now)
		case o.count == 0 && now.Sub(o.logged) >= 2*f.interval:
			delete(f.owners, owner)
		}
	}
}

// A rejectionLog turns the server's count of connections refused over -c
// into at most one warning per interval with how many were refused since
// the previous one. It is read from the ring goroutine only, so the accept
// loop pays nothing.
type rejectionLog struct {
	logger   *slog.Logger
	interval time.Duration
	seen     uint64    // the count already reported
	logged   time.Time // when the last line was written
}

func (r *rejectionLog) check(total uint64, maxConns int, now time.Time) {
	if total < r.seen { // "stats reset"
		r.seen = total
	}
	if total == r.seen || !r.logged.IsZero() && now.Sub(r.logged) < r.interval {
		return
	}
	r.logger.Warn("refusing connections: too many open", "refused", total-r.seen, "max_conns", maxConns, "refused_total", total)
	r.seen, r.logged = total, now
}
