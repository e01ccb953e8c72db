package node_test

import (
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hotcache/hotcache/hotspot"
	"github.com/hotcache/hotcache/node"
	"github.com/hotcache/hotcache/node/nodetest"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape fetches and parses a node's /metrics.
func scrape(t *testing.T, n *node.Node) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + n.AdminAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	return fams
}

// metric returns the series of family name whose labels include want, or
// nil.
func metric(fams map[string]*dto.MetricFamily, name string, want ...string) *dto.Metric {
	f := fams[name]
	if f == nil {
		return nil
	}
next:
	for _, m := range f.Metric {
		for i := 0; i+1 < len(want); i += 2 {
			found := false
			for _, l := range m.Label {
				if l.GetName() == want[i] && l.GetValue() == want[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		return m
	}
	return nil
}

// value is a counter's or gauge's value, or a histogram's count; -1 when
// the series is missing.
func value(fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	m := metric(fams, name, labels...)
	switch {
	case m == nil:
		return -1
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	return -1
}

// TestMetrics scrapes /metrics from a node of a three-node cluster over
// HTTP, checks that every family operators alert on is there with its type,
// and that the series move with the requests made: gets served, gets
// forwarded, a key turning hot and a write invalidating it.
func TestMetrics(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test")
	}
	c := nodetest.Start(t, 3, func(i int, cfg *node.Config) {
		cfg.HotKeys = hotspot.Config{MinRate: 20, Unsampled: true, MinHot: 300 * time.Millisecond, MaxWriteRatio: -1}
	})
	n0 := c.Node(0)
	local, remote := "", ""
	for i := 0; local == "" || remote == ""; i++ {
		k := clusterKey(i)
		switch m, _ := n0.Ring().Owner([]byte(k)); m.Name {
		case "n0":
			local = k
		case "n1":
			remote = k
		}
	}
	d := dial(t, n0.Addr())
	if r := d.set(local, "v", 0); r != "STORED" {
		t.Fatalf("set %s: %s", local, r)
	}

	before := scrape(t, n0)
	ownerBefore := scrape(t, c.Node(1))
	types := map[string]dto.MetricType{
		"cache_requests_total":                 dto.MetricType_COUNTER,
		"cache_request_duration_seconds":       dto.MetricType_HISTOGRAM,
		"cache_forward_duration_seconds":       dto.MetricType_HISTOGRAM,
		"cache_forwarded_requests_total":       dto.MetricType_COUNTER,
		"cache_forward_errors_total":           dto.MetricType_COUNTER,
		"cache_ring_generation":                dto.MetricType_GAUGE,
		"cache_members":                        dto.MetricType_GAUGE,
		"cache_hot_keys":                       dto.MetricType_GAUGE,
		"cache_hot_promotions_total":           dto.MetricType_COUNTER,
		"cache_hot_invalidations_total":        dto.MetricType_COUNTER,
		"cache_edge_hits_total":                dto.MetricType_COUNTER,
		"cache_hot_write_drain_seconds":        dto.MetricType_HISTOGRAM,
		"cache_hot_drain_lease_timeouts_total": dto.MetricType_COUNTER,
		"cache_evictions_total":                dto.MetricType_COUNTER,
		"cache_rejected_connections_total":     dto.MetricType_COUNTER,
	}
	for name, typ := range types {
		f := before[name]
		if f == nil {
			t.Errorf("/metrics has no %s", name)
			continue
		}
		if f.GetType() != typ {
			t.Errorf("%s is a %v, want %v", name, f.GetType(), typ)
		}
		for _, m := range f.Metric {
			if metric(map[string]*dto.MetricFamily{name: {Metric: []*dto.Metric{m}}}, name, "node", "n0") == nil {
				t.Errorf("%s series without node=\"n0\": %v", name, m.Label)
			}
		}
	}
	if v := value(before, "cache_members"); v != 3 {
		t.Errorf("cache_members = %v, want 3", v)
	}
	if v := value(before, "cache_ring_generation"); v < 1 {
		t.Errorf("cache_ring_generation = %v, want >= 1", v)
	}
	for _, class := range []string{"get", "set", "delete", "incr", "decr", "touch", "cas", "flush_all", "other"} {
		m := metric(before, "cache_request_duration_seconds", "cmd", class)
		if m == nil {
			t.Errorf("no cache_request_duration_seconds{cmd=%q}", class)
			continue
		}
		var bounds []float64
		for _, b := range m.Histogram.Bucket {
			if !math.IsInf(b.GetUpperBound(), 1) {
				bounds = append(bounds, b.GetUpperBound())
			}
		}
		if len(bounds) < 10 || len(bounds) > 16 || bounds[0] != 0.00005 || bounds[len(bounds)-1] != 1 {
			t.Errorf("cmd=%s bucket bounds %v, want about a dozen from 50µs to 1s", class, bounds)
		}
	}
	if v := value(before, "cache_request_duration_seconds", "cmd", "set"); v < 1 {
		t.Errorf("set histogram count %v after a set", v)
	}

	// N gets of a key n0 owns: N hits, N observations of class get.
	const N = 25
	for range N {
		if _, ok := d.get(local); !ok {
			t.Fatalf("get %s missed", local)
		}
	}
	// One get of a key n1 owns: forwarded, one round trip observed.
	d.get(remote)
	after := scrape(t, n0)
	delta := func(name string, labels ...string) float64 {
		return value(after, name, labels...) - value(before, name, labels...)
	}
	if v := delta("cache_requests_total", "cmd", "get", "result", "hit"); v != N {
		t.Errorf("cache_requests_total{get,hit} moved by %v after %d hits", v, N)
	}
	if v := delta("cache_request_duration_seconds", "cmd", "get"); v < N+1 {
		t.Errorf("get histogram count moved by %v after %d gets", v, N+1)
	}
	if m := metric(after, "cache_request_duration_seconds", "cmd", "get"); m.Histogram.GetSampleSum() <= 0 {
		t.Errorf("get histogram sum %v", m.Histogram.GetSampleSum())
	}
	if v := delta("cache_forward_duration_seconds"); v < 1 {
		t.Errorf("forward histogram count moved by %v after a forwarded get", v)
	}
	// The owner served it on a peer connection: counted as a hit there, but
	// timed only at n0, so summing the histograms over nodes counts each
	// client request once.
	ownerAfter := scrape(t, c.Node(1))
	if v := value(ownerAfter, "cache_requests_total", "cmd", "get", "result", "miss") + value(ownerAfter, "cache_requests_total", "cmd", "get", "result", "hit") -
		value(ownerBefore, "cache_requests_total", "cmd", "get", "result", "miss") - value(ownerBefore, "cache_requests_total", "cmd", "get", "result", "hit"); v != 1 {
		t.Errorf("the owner counted %v gets for one forwarded get", v)
	}
	if v := value(ownerAfter, "cache_request_duration_seconds", "cmd", "get") - value(ownerBefore, "cache_request_duration_seconds", "cmd", "get"); v != 0 {
		t.Errorf("the owner's get histogram moved by %v for a get a peer forwarded", v)
	}
	if f, h := value(after, "cache_forwarded_requests_total"), value(after, "cache_forward_duration_seconds"); f != h {
		t.Errorf("cache_forwarded_requests_total %v but %v forward round trips observed", f, h)
	}

	// Heat the key until it is hot and pushed; then a write invalidates it.
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { defer close(done); heat(dial(t, n0.Addr()), local, stop) }()
	defer func() { close(stop); <-done }()
	var hot map[string]*dto.MetricFamily
	waitFor(t, 30*time.Second, "the key to turn hot and be pushed", func() bool {
		hot = scrape(t, n0)
		return value(hot, "cache_hot_keys") >= 1 && value(hot, "cache_hot_promotions_total") >= 1
	})
	if r := d.set(local, "v2", 0); r != "STORED" {
		t.Fatalf("set of the hot key: %s", r)
	}
	final := scrape(t, n0)
	if v := value(final, "cache_hot_invalidations_total") - value(hot, "cache_hot_invalidations_total"); v < 1 {
		t.Errorf("cache_hot_invalidations_total moved by %v after a write to a replicated key", v)
	}
	if v := value(final, "cache_hot_write_drain_seconds"); v < 1 {
		t.Errorf("cache_hot_write_drain_seconds count %v after a drained write", v)
	}
	body := scrapeText(t, n0)
	for _, want := range []string{"# TYPE cache_request_duration_seconds histogram", `cache_request_duration_seconds_bucket{cmd="get",node="n0",le="+Inf"}`,
		`cache_forward_duration_seconds_sum{node="n0"}`, `cache_forward_duration_seconds_count{node="n0"}`} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics text lacks %q", want)
		}
	}
}

func scrapeText(t *testing.T, n *node.Node) string {
	t.Helper()
	_, body := httpGet(t, "http://"+n.AdminAddr()+"/metrics")
	return body
}
