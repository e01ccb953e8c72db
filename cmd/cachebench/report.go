package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"text/tabwriter"
	"time"
)

// result is what one run measured. Latencies are in microseconds.
type result struct {
	Servers    []string       `json:"servers"`
	Pipeline   int            `json:"pipeline"`
	Conns      int            `json:"conns_per_server"`
	Seconds    float64        `json:"seconds"`
	Ops        int64          `json:"ops"`
	OpsPerSec  float64        `json:"ops_per_sec"`
	Gets       int64          `json:"gets"`
	Sets       int64          `json:"sets"`
	Deletes    int64          `json:"deletes"`
	Hits       int64          `json:"hits"`
	Misses     int64          `json:"misses"`
	HitRatio   float64        `json:"hit_ratio"`
	Errors     int64          `json:"errors"`
	Reconnects int64          `json:"reconnects"`
	FirstError string         `json:"first_error,omitempty"`
	Latency    latency        `json:"latency_us"`
	Targets    []targetResult `json:"per_target"`

	// Open loop (-rate): the requested rate, the requests that fell due in
	// the window but were never sent because the connection was still
	// waiting for earlier replies, and the p99 of how late the generator
	// itself woke up to send a request that was due while it was idle.
	TargetRate float64 `json:"target_rate,omitempty"`
	Unsent     int64   `json:"unsent,omitempty"`
	SchedLag   float64 `json:"sched_lag_p99_us,omitempty"`

	// CPUSeconds is the CPU time (user + system) cachebench used in the
	// measured window; CoresPer100k is that over the window's length, per
	// 100k ops/s: the generator's own cost.
	CPUSeconds   float64 `json:"gen_cpu_seconds"`
	CoresPer100k float64 `json:"gen_cores_per_100k_ops"`

	// Percentiles is the latency CDF: (quantile, µs) pairs.
	Percentiles []percentile `json:"percentiles"`
	// Series is ops/s, errors and hits per second of the measured window.
	Series []second `json:"series"`
	// Nodes is the requests each backend served in the window, from its
	// stats (-route single), and NodeMaxOverMean their max/mean.
	Nodes           []nodeLoad `json:"nodes,omitempty"`
	NodeMaxOverMean float64    `json:"node_max_over_mean,omitempty"`
	NodeStatsError  string     `json:"node_stats_error,omitempty"`

	hist histogram // merged latencies, ns
}

// percentile is one point of a latency CDF.
type percentile struct {
	Q  float64 `json:"q"`
	US float64 `json:"us"`
}

// cdfQuantiles are the quantiles of Percentiles: every 5% to 90%, then
// ten per decade of 1-q up to 0.99999, then the maximum.
var cdfQuantiles = func() []float64 {
	var qs []float64
	for i := 0; i < 18; i++ {
		qs = append(qs, float64(i)*0.05)
	}
	for k := 10; k <= 50; k++ {
		qs = append(qs, 1-math.Pow(10, -float64(k)/10))
	}
	return append(qs, 1)
}()

// percentiles returns h's CDF at cdfQuantiles, in microseconds.
func percentiles(h *histogram) []percentile {
	if h.n == 0 {
		return nil
	}
	out := make([]percentile, 0, len(cdfQuantiles))
	for _, q := range cdfQuantiles {
		out = append(out, percentile{Q: q, US: float64(h.quantile(q)) / 1e3})
	}
	return out
}

// latency is a latency summary in microseconds.
type latency struct {
	P50  float64 `json:"p50"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99_9"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

// targetResult is one server's share of a run.
type targetResult struct {
	Addr      string  `json:"addr"`
	Ops       int64   `json:"ops"`
	OpsPerSec float64 `json:"ops_per_sec"`
	Errors    int64   `json:"errors"`
	P99       float64 `json:"p99_us"`
}

func summarize(h *histogram) latency {
	us := func(ns int64) float64 { return float64(ns) / 1e3 }
	return latency{
		P50:  us(h.quantile(0.5)),
		P99:  us(h.quantile(0.99)),
		P999: us(h.quantile(0.999)),
		Max:  us(h.max),
		Mean: h.mean() / 1e3,
	}
}

// result sums the workers' counts after the run.
func (r *run) result(elapsed time.Duration) *result {
	o := r.ks.opts
	res := &result{Servers: r.ks.servers, Pipeline: r.depth, Conns: o.conns, Seconds: elapsed.Seconds()}
	per := make([]connStats, len(r.ks.servers))
	var lag histogram
	for _, w := range r.workers {
		lag.merge(&w.st.lag)
		res.Deletes += w.st.deletes
		res.Unsent += w.st.unsent
		st, p := &w.st, &per[w.server]
		p.ops += st.ops
		p.errors += st.errors
		p.hist.merge(&st.hist)
		res.Ops += st.ops
		res.Gets += st.gets
		res.Sets += st.sets
		res.Hits += st.hits
		res.Misses += st.misses
		res.Errors += st.errors
		res.Reconnects += st.reconnects
		if res.FirstError == "" {
			res.FirstError = st.firstErr
		}
		res.hist.merge(&st.hist)
	}
	secs := max(elapsed.Seconds(), 1e-9)
	res.OpsPerSec = float64(res.Ops) / secs
	if res.Gets > 0 {
		res.HitRatio = float64(res.Hits) / float64(res.Gets)
	}
	res.Latency = summarize(&res.hist)
	res.Percentiles = percentiles(&res.hist)
	if o.rate > 0 {
		res.TargetRate = o.rate
		res.SchedLag = float64(lag.quantile(0.99)) / 1e3
	}
	res.CPUSeconds = r.cpu
	if res.OpsPerSec > 0 {
		res.CoresPer100k = r.cpu / secs / (res.OpsPerSec / 1e5)
	}
	res.Series = r.series
	if r.nodes != nil {
		res.Nodes = r.nodes
		loads := make([]uint64, len(r.nodes))
		for i, n := range r.nodes {
			loads[i] = n.Requests
		}
		res.NodeMaxOverMean = maxOverMean(loads)
	}
	res.NodeStatsError = r.backErr
	for i, addr := range r.ks.servers {
		p := &per[i]
		res.Targets = append(res.Targets, targetResult{
			Addr: addr, Ops: p.ops, OpsPerSec: float64(p.ops) / secs, Errors: p.errors, P99: float64(p.hist.quantile(0.99)) / 1e3,
		})
	}
	return res
}

// fmtUS formats microseconds with three significant digits.
func fmtUS(us float64) string {
	switch {
	case us < 10:
		return fmt.Sprintf("%.2fµs", us)
	case us < 1000:
		return fmt.Sprintf("%.1fµs", us)
	case us < 1e6:
		return fmt.Sprintf("%.2fms", us/1e3)
	}
	return fmt.Sprintf("%.2fs", us/1e6)
}

// fmtRate formats ops/s as e.g. 152.3k.
func fmtRate(r float64) string {
	switch {
	case r >= 1e6:
		return fmt.Sprintf("%.2fM", r/1e6)
	case r >= 1e3:
		return fmt.Sprintf("%.1fk", r/1e3)
	}
	return fmt.Sprintf("%.0f", r)
}

// printResult writes one run for people.
func printResult(w io.Writer, res *result) {
	fmt.Fprintf(w, "pipeline %d: %d conns/server, %d server(s), %.2fs measured\n", res.Pipeline, res.Conns, len(res.Servers), res.Seconds)
	fmt.Fprintf(w, "  ops/s      %.0f (%d ops: %d gets, %d sets, %d deletes)\n", res.OpsPerSec, res.Ops, res.Gets, res.Sets, res.Deletes)
	if res.TargetRate > 0 {
		fmt.Fprintf(w, "  open loop  target %.0f requests/s, %d scheduled but not sent, generator wake-up lag p99 %s\n",
			res.TargetRate, res.Unsent, fmtUS(res.SchedLag))
	}
	fmt.Fprintf(w, "  hit ratio  %.4f (%d hits, %d misses)\n", res.HitRatio, res.Hits, res.Misses)
	l := res.Latency
	fmt.Fprintf(w, "  latency    p50 %s  p99 %s  p99.9 %s  max %s  mean %s\n", fmtUS(l.P50), fmtUS(l.P99), fmtUS(l.P999), fmtUS(l.Max), fmtUS(l.Mean))
	fmt.Fprintf(w, "  errors     %d (reconnects %d)\n", res.Errors, res.Reconnects)
	fmt.Fprintf(w, "  generator  %.2f CPU s, %.2f cores per 100k ops/s\n", res.CPUSeconds, res.CoresPer100k)
	if res.FirstError != "" {
		fmt.Fprintf(w, "  first error: %s\n", res.FirstError)
	}
	fmt.Fprintf(w, "  per target:\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	for _, t := range res.Targets {
		fmt.Fprintf(tw, "    %s\t%.0f ops/s\t%d ops\t%d errors\tp99 %s\t\n", t.Addr, t.OpsPerSec, t.Ops, t.Errors, fmtUS(t.P99))
	}
	tw.Flush()
	if len(res.Nodes) > 0 {
		fmt.Fprintf(w, "  per node (from their stats), max/mean %.3f:\n", res.NodeMaxOverMean)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		for _, n := range res.Nodes {
			fmt.Fprintf(tw, "    %s\t%s\t%d requests\t%.1f%%\t%s\t\n", n.Name, n.Addr, n.Requests, 100*n.Share, n.Error)
		}
		tw.Flush()
	}
	if res.NodeStatsError != "" {
		fmt.Fprintf(w, "  node stats: %s\n", res.NodeStatsError)
	}
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
