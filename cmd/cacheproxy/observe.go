package main

import (
	"context"
	"time"

	"github.com/hotcache/hotcache/protocol"
	"github.com/prometheus/client_golang/prometheus"
)

// The proxy's request histogram has the node's name, buckets and command
// classes (node/metrics.go), so one dashboard reads both; its constant
// label is edge=<name> where the node's is node=<name>.

// durationBuckets are the node's: 50µs to 1s.
var durationBuckets = []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1}

// classNames are the command classes, as the node's.
var classNames = [...]string{"get", "set", "delete", "incr", "decr", "touch", "cas", "flush_all", "other"}

const classOther = len(classNames) - 1

// cmdClass maps every protocol.Command to an index of classNames.
var cmdClass = func() (t [256]uint8) {
	for i := range t {
		t[i] = uint8(classOther)
	}
	for _, c := range []struct {
		cmd   protocol.Command
		class string
	}{
		{protocol.CmdGet, "get"}, {protocol.CmdGets, "get"},
		{protocol.CmdGat, "touch"}, {protocol.CmdGats, "touch"}, {protocol.CmdTouch, "touch"},
		{protocol.CmdSet, "set"}, {protocol.CmdAdd, "set"}, {protocol.CmdReplace, "set"},
		{protocol.CmdAppend, "set"}, {protocol.CmdPrepend, "set"}, {protocol.CmdCas, "cas"},
		{protocol.CmdDelete, "delete"}, {protocol.CmdIncr, "incr"}, {protocol.CmdDecr, "decr"},
		{protocol.CmdFlushAll, "flush_all"},
	} {
		for i, n := range classNames {
			if n == c.class {
				t[c.cmd] = uint8(i)
			}
		}
	}
	return t
}()

// latency is cache_request_duration_seconds, created once per proxy.
type latency struct {
	requests *prometheus.HistogramVec
	byClass  [len(classNames)]prometheus.Observer
}

func newLatency(name string) *latency {
	l := &latency{requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:        "cache_request_duration_seconds",
		Help:        "Time from a request parsed to its reply buffered, by command class (owner round trips included).",
		ConstLabels: prometheus.Labels{"edge": name},
		Buckets:     durationBuckets,
	}, []string{"cmd"})}
	for i, c := range classNames {
		l.byClass[i] = l.requests.WithLabelValues(c)
	}
	return l
}

// timedHandler times each request its Handler serves.
type timedHandler struct {
	h   protocol.Handler
	lat *latency
}

// Serve implements protocol.Handler.
func (t timedHandler) Serve(ctx context.Context, w *protocol.ResponseWriter, req *protocol.Request) {
	start := time.Now()
	t.h.Serve(ctx, w, req)
	t.lat.byClass[cmdClass[req.Cmd]].Observe(time.Since(start).Seconds())
}

// logInterval bounds how often the proxy warns of refused connections.
const logInterval = 10 * time.Second

// watchRejections warns, at most once per interval, of connections the
// server refused over -c since its previous warning, until the server
// stops. The accept loop itself logs nothing per connection.
func (p *proxy) watchRejections(maxConns int, interval time.Duration) {
	t := time.NewTicker(min(time.Second, interval))
	defer t.Stop()
	var seen uint64
	var logged time.Time
	for {
		select {
		case <-p.served:
			return
		case now := <-t.C:
			total := p.srv.Stats().RejectedConnections.Load()
			if total == seen || !logged.IsZero() && now.Sub(logged) < interval {
				continue
			}
			p.log.Warn("refusing connections: too many open", "refused", total-seen, "max_conns", maxConns, "refused_total", total)
			seen, logged = total, now
		}
	}
}
