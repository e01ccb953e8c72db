package node

import (
	"time"

	"github.com/hotcache/hotcache/protocol"
	"github.com/prometheus/client_golang/prometheus"
)

// durationBuckets are the upper bounds, in seconds, of the request and
// forward histograms: 50µs to 1s in 1-2.5-5 steps. A request this node
// serves from its store takes a few microseconds and lands in the first
// bucket; the others are for forwards, lease waits and drains. The forward
// histogram adds 2.5s, above the default forward timeout of 2s.
var durationBuckets = []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1}

// The command classes of cache_request_duration_seconds. gat and gats are
// touches, as in cache_requests_total and memcached's stats; add, replace,
// append and prepend are sets.
const (
	classGet = iota
	classSet
	classDelete
	classIncr
	classDecr
	classTouch
	classCas
	classFlushAll
	classOther
	numClasses
)

var classNames = [numClasses]string{"get", "set", "delete", "incr", "decr", "touch", "cas", "flush_all", "other"}

// cmdClass maps every protocol.Command to its class; indexing a 256-entry
// array by a uint8 needs no bounds check.
var cmdClass = func() (t [256]uint8) {
	for i := range t {
		t[i] = classOther
	}
	for _, c := range []struct {
		cmd   protocol.Command
		class uint8
	}{
		{protocol.CmdGet, classGet}, {protocol.CmdGets, classGet},
		{protocol.CmdGat, classTouch}, {protocol.CmdGats, classTouch}, {protocol.CmdTouch, classTouch},
		{protocol.CmdSet, classSet}, {protocol.CmdAdd, classSet}, {protocol.CmdReplace, classSet},
		{protocol.CmdAppend, classSet}, {protocol.CmdPrepend, classSet}, {protocol.CmdCas, classCas},
		{protocol.CmdDelete, classDelete}, {protocol.CmdIncr, classIncr}, {protocol.CmdDecr, classDecr},
		{protocol.CmdFlushAll, classFlushAll},
	} {
		t[c.cmd] = c.class
	}
	return t
}()

// latency holds the node's two histograms. They are created once with the
// node and observed on the request path: one time.Since and one
// Histogram.Observe (a few atomic adds) per request.
type latency struct {
	requests *prometheus.HistogramVec
	byClass  [numClasses]prometheus.Observer
	forwards prometheus.Histogram
}

func newLatency(name string) *latency {
	l := &latency{
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:        "cache_request_duration_seconds",
			Help:        "Time from a client's request parsed to its reply buffered, by command class (forwards to the owner included; requests from peers not counted).",
			ConstLabels: prometheus.Labels{"node": name},
			Buckets:     durationBuckets,
		}, []string{"cmd"}),
		forwards: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:        "cache_forward_duration_seconds",
			Help:        "Round trips of requests forwarded to a key's owner (one per owner of a multi-key get), failures included.",
			ConstLabels: prometheus.Labels{"node": name},
			Buckets:     append(durationBuckets[:len(durationBuckets):len(durationBuckets)], 2.5),
		}),
	}
	for i, c := range classNames {
		l.byClass[i] = l.requests.WithLabelValues(c)
	}
	return l
}

// request records a request of cmd that took d.
func (l *latency) request(cmd protocol.Command, d time.Duration) {
	l.byClass[cmdClass[cmd]].Observe(d.Seconds())
}

// forward records one forwarded round trip that took d.
func (l *latency) forward(d time.Duration) { l.forwards.Observe(d.Seconds()) }

// nodeCollector reads the node's counters at scrape time, so metrics cost
// the request path nothing beyond the counters stats already keeps.
type nodeCollector struct {
	n                                                               *Node
	requests, forwards, forwardErrors, forwardMisses                *prometheus.Desc
	members, generation, items, bytes, evictions, conns             *prometheus.Desc
	refusals                                                        *prometheus.Desc
	hotKeys, replicated, promotions, cools, invals                  *prometheus.Desc
	edgeHits, ownerReads, drainSeconds, drainTimeouts, drainRefused *prometheus.Desc
	rejected                                                        *prometheus.Desc
}

func (n *Node) collector() *nodeCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, prometheus.Labels{"node": n.cfg.Name})
	}
	return &nodeCollector{
		n:             n,
		requests:      d("cache_requests_total", "Requests served by this node, by command and result.", "cmd", "result"),
		forwards:      d("cache_forwarded_requests_total", "Requests sent on to a key's owner."),
		forwardErrors: d("cache_forward_errors_total", "Forwarded requests that failed (owner unreachable or slow)."),
		forwardMisses: d("cache_forward_missed_keys_total", "Keys answered as misses because their owner failed."),
		members:       d("cache_members", "Members in this node's ring."),
		generation:    d("cache_ring_generation", "How many rings this node has installed."),
		items:         d("cache_items", "Items stored (curr_items)."),
		bytes:         d("cache_bytes", "Bytes charged against the memory limit."),
		evictions:     d("cache_evictions_total", "Items evicted or refused admission."),
		refusals:      d("cache_admission_refusals_total", "New items refused by the admission policy (also in evictions)."),
		conns:         d("cache_connections", "Open client connections."),
		rejected:      d("cache_rejected_connections_total", "Connections refused because -c connections were open."),
		hotKeys:       d("cache_hot_keys", "Keys the hot-key analyzer finds hot."),
		replicated:    d("cache_replicated_keys", "Hot keys edges hold replicas of (or are draining)."),
		promotions:    d("cache_hot_promotions_total", "Hot keys pushed to the edges."),
		cools:         d("cache_hot_cools_total", "Replicated keys that cooled (COOL sent)."),
		invals:        d("cache_hot_invalidations_total", "Writes that invalidated edge replicas before applying."),
		edgeHits:      d("cache_edge_hits_total", "Reads the edges reported answering from this node's replicas."),
		ownerReads:    d("cache_owner_reads_total", "Reads this node served for keys it owns (the edge hit ratio is edge hits over edge hits plus these)."),
		drainSeconds:  d("cache_hot_write_drain_seconds", "Time writes to replicated keys waited for the edges to drop their replicas."),
		drainTimeouts: d("cache_hot_drain_lease_timeouts_total", "Invalidations that ended by waiting out a lease instead of an acknowledgement."),
		drainRefused:  d("cache_hot_write_refused_total", "Writes to replicated keys refused because the edges did not drop their replicas within the write wait."),
	}
}

// Describe implements prometheus.Collector.
func (c *nodeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.requests, c.forwards, c.forwardErrors, c.forwardMisses, c.members,
		c.generation, c.items, c.bytes, c.evictions, c.refusals, c.conns, c.hotKeys, c.replicated, c.promotions,
		c.cools, c.invals, c.edgeHits, c.ownerReads, c.drainSeconds, c.drainTimeouts, c.drainRefused, c.rejected} {
		ch <- d
	}
	c.n.latency.requests.Describe(ch)
	c.n.latency.forwards.Describe(ch)
}

// Collect implements prometheus.Collector.
func (c *nodeCollector) Collect(ch chan<- prometheus.Metric) {
	n, k := c.n, &c.n.counters
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	for _, r := range []struct {
		cmd, result string
		v           uint64
	}{
		{"get", "hit", k.getHits.Load()}, {"get", "miss", k.getMisses.Load()},
		{"set", "total", k.cmdSet.Load()}, {"touch", "hit", k.touchHits.Load()}, {"touch", "miss", k.touchMisses.Load()},
		{"delete", "hit", k.deleteHits.Load()}, {"delete", "miss", k.deleteMisses.Load()},
		{"incr", "hit", k.incrHits.Load()}, {"incr", "miss", k.incrMisses.Load()},
		{"decr", "hit", k.decrHits.Load()}, {"decr", "miss", k.decrMisses.Load()},
		{"cas", "hit", k.casHits.Load()}, {"cas", "miss", k.casMisses.Load()}, {"cas", "badval", k.casBadval.Load()},
		{"flush_all", "total", k.cmdFlush.Load()},
	} {
		counter(c.requests, r.v, r.cmd, r.result)
	}
	counter(c.forwards, n.fwd.requests.Load())
	counter(c.forwardErrors, n.fwd.errors.Load())
	counter(c.forwardMisses, n.fwd.missed.Load())
	if r := n.view.ring.Load(); r != nil {
		gauge(c.members, float64(r.Len()))
	}
	gauge(c.generation, float64(n.view.generation.Load()))
	gauge(c.items, float64(n.store.items.Load()))
	gauge(c.bytes, float64(n.store.bytes.Load()))
	counter(c.evictions, n.store.evictions.Load())
	counter(c.refusals, n.store.refused.Load())
	gauge(c.conns, float64(n.srv.Stats().CurrConnections.Load()))
	counter(c.rejected, n.srv.Stats().RejectedConnections.Load())
	r := n.repl
	if v := n.hotView.Load(); v != nil {
		gauge(c.hotKeys, float64(len(v.hot)))
	}
	gauge(c.replicated, float64(r.count.Load()))
	counter(c.promotions, r.promotions.Load())
	counter(c.cools, r.cools.Load())
	counter(c.invals, r.invalidations.Load())
	counter(c.edgeHits, r.edgeHits.Load())
	counter(c.ownerReads, k.getHits.Load()+k.getMisses.Load()+k.touchHits.Load()+k.touchMisses.Load())
	counter(c.drainTimeouts, r.ackTimeouts.Load())
	counter(c.drainRefused, r.refused.Load())
	ch <- r.writeWait.metric(c.drainSeconds, time.Duration(r.drainWait.Load()))
	n.latency.requests.Collect(ch)
	n.latency.forwards.Collect(ch)
}
