package main

import (
	"encoding/json"
	"fmt"
	"io"
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
	Hits       int64          `json:"hits"`
	Misses     int64          `json:"misses"`
	HitRatio   float64        `json:"hit_ratio"`
	Errors     int64          `json:"errors"`
	Reconnects int64          `json:"reconnects"`
	FirstError string         `json:"first_error,omitempty"`
	Latency    latency        `json:"latency_us"`
	Targets    []targetResult `json:"per_target"`

	hist histogram // merged latencies, ns
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
	for _, w := range r.workers {
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
	fmt.Fprintf(w, "  ops/s      %.0f (%d ops: %d gets, %d sets)\n", res.OpsPerSec, res.Ops, res.Gets, res.Sets)
	fmt.Fprintf(w, "  hit ratio  %.4f (%d hits, %d misses)\n", res.HitRatio, res.Hits, res.Misses)
	l := res.Latency
	fmt.Fprintf(w, "  latency    p50 %s  p99 %s  p99.9 %s  max %s  mean %s\n", fmtUS(l.P50), fmtUS(l.P99), fmtUS(l.P999), fmtUS(l.Max), fmtUS(l.Mean))
	fmt.Fprintf(w, "  errors     %d (reconnects %d)\n", res.Errors, res.Reconnects)
	if res.FirstError != "" {
		fmt.Fprintf(w, "  first error: %s\n", res.FirstError)
	}
	fmt.Fprintf(w, "  per target:\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	for _, t := range res.Targets {
		fmt.Fprintf(tw, "    %s\t%.0f ops/s\t%d ops\t%d errors\tp99 %s\t\n", t.Addr, t.OpsPerSec, t.Ops, t.Errors, fmtUS(t.P99))
	}
	tw.Flush()
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
