package main

import (
	"strings"
	"testing"

	"github.com/hotcache/hotcache/node"
	"github.com/hotcache/hotcache/node/nodetest"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func scrapeProxy(t *testing.T, p *proxy) map[string]*dto.MetricFamily {
	t.Helper()
	code, body := httpGet(t, p.adminAddr(), "/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	return fams
}

// histCount is the count of family name's series with cmd=class, -1 if
// there is none.
func histCount(fams map[string]*dto.MetricFamily, name, class string) float64 {
	f := fams[name]
	if f == nil {
		return -1
	}
	for _, m := range f.Metric {
		for _, l := range m.Label {
			if l.GetName() == "cmd" && l.GetValue() == class && m.Histogram != nil {
				return float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return -1
}

// TestMetricsRequestHistogram: the proxy's /metrics has the node's request
// histogram, labelled edge=<name>, and it counts the requests served.
func TestMetricsRequestHistogram(t *testing.T) {
	t.Parallel()
	n := nodetest.Standalone(t, node.Config{Name: "solo"})
	p := startInProcess(t, n.Addr(), "-name", "edge-h")
	waitFor(t, "/readyz", func() (bool, any) {
		code, body := httpGet(t, p.adminAddr(), "/readyz")
		return code == 200, body
	})
	before := scrapeProxy(t, p)
	f := before["cache_request_duration_seconds"]
	if f == nil || f.GetType() != dto.MetricType_HISTOGRAM {
		t.Fatalf("no cache_request_duration_seconds histogram: %v", f)
	}
	for _, m := range f.Metric {
		edge := ""
		for _, l := range m.Label {
			if l.GetName() == "edge" {
				edge = l.GetValue()
			}
		}
		if edge != "edge-h" {
			t.Errorf("series without edge=\"edge-h\": %v", m.Label)
		}
	}
	for _, name := range []string{"cacheproxy_edge_hits_total", "cacheproxy_rejected_connections_total", "cacheproxy_requests_total"} {
		if before[name] == nil {
			t.Errorf("/metrics has no %s", name)
		}
	}
	m := dialMC(t, p.ln.Addr().String())
	const N = 20
	var req strings.Builder
	req.WriteString("set k 0 0 1\r\nv\r\n")
	for range N {
		req.WriteString("get k\r\n")
	}
	if got := m.do(req.String()); strings.Count(got, "VALUE k 0 1") != N {
		t.Fatalf("replies: %q", got)
	}
	after := scrapeProxy(t, p)
	if d := histCount(after, "cache_request_duration_seconds", "get") - histCount(before, "cache_request_duration_seconds", "get"); d != N {
		t.Errorf("get histogram count moved by %v after %d gets", d, N)
	}
	if d := histCount(after, "cache_request_duration_seconds", "set") - histCount(before, "cache_request_duration_seconds", "set"); d != 1 {
		t.Errorf("set histogram count moved by %v after a set", d)
	}
}
