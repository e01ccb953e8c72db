package main

// The plot command: SVG charts from the JSON the other commands write.

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
)

// plotInput is any result JSON of cachebench: compare (Depths), run
// (Results), hotkeys (Phases) or failover (Result, KillAt).
type plotInput struct {
	Depths      []depthSummary  `json:"depths"`
	Results     []*result       `json:"results"`
	Phases      []*hotkeysPhase `json:"phases"`
	Result      *result         `json:"result"`
	KillAt      *float64        `json:"kill_at"`
	RecoveredAt float64         `json:"recovered_at"`
	Killed      string          `json:"killed"`
}

func (in *plotInput) kind() string {
	switch {
	case len(in.Depths) > 0:
		return "compare"
	case len(in.Phases) > 0:
		return "hotkeys"
	case in.Result != nil && in.KillAt != nil:
		return "failover"
	case len(in.Results) > 0:
		return "run"
	}
	return ""
}

// plotKinds are the charts plot draws.
var plotKinds = []string{"throughput", "cdf", "nodes", "timeseries"}

func plotCmd(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("cachebench plot", flag.ContinueOnError)
	fs.SetOutput(stderr)
	in := fs.String("in", "", "result JSON of compare, run (-json), hotkeys (-json FILE) or failover")
	kind := fs.String("kind", "throughput", "chart: "+strings.Join(plotKinds, ", "))
	out := fs.String("o", "", "SVG file to write (default stdout)")
	title := fs.String("title", "", "chart title (default: from the kind)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: cachebench plot -in FILE.json -kind %s [-o FILE.svg] [-title T]\n\n"+
			"  throughput  ops/s bars: compare (targets side by side per pipeline depth, min..max whiskers),\n"+
			"              hotkeys (off vs on), run (one bar per depth)\n"+
			"  cdf         latency CDF on a log x axis: compare (one line per target and depth), run, failover\n"+
			"  nodes       share of requests per node: hotkeys (off vs on), compare (per target), run/failover\n"+
			"  timeseries  ops/s, errors and hit ratio per second: failover (kill marked), run\n\n",
			strings.Join(plotKinds, "|"))
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *in == "" || fs.NArg() > 0 {
		fs.Usage()
		return errors.New("plot needs -in FILE and no arguments")
	}
	b, err := os.ReadFile(*in)
	if err != nil {
		return err
	}
	svg, err := renderPlot(b, *kind, *title)
	if err != nil {
		return fmt.Errorf("%s: %w", *in, err)
	}
	if *out == "" {
		_, err := io.WriteString(stdout, svg)
		return err
	}
	return os.WriteFile(*out, []byte(svg), 0o644)
}

// renderPlot draws a chart of one kind from result JSON.
func renderPlot(data []byte, kind, title string) (string, error) {
	var in plotInput
	if err := json.Unmarshal(data, &in); err != nil {
		return "", err
	}
	src := in.kind()
	if src == "" {
		return "", errors.New("not a cachebench result: no depths, results, phases or result")
	}
	def := func(t string) string {
		if title != "" {
			return title
		}
		return t
	}
	switch kind {
	case "throughput":
		return plotThroughput(&in, src, def("Throughput"))
	case "cdf":
		return plotCDF(&in, src, def("Latency CDF"))
	case "nodes":
		return plotNodes(&in, src, def("Requests per node"))
	case "timeseries":
		return plotSeries(&in, src, def("Ops/s and errors per second"))
	}
	return "", fmt.Errorf("-kind %q: want one of %s", kind, strings.Join(plotKinds, ", "))
}

func plotThroughput(in *plotInput, src, title string) (string, error) {
	var series []string
	var groups []barGroup
	switch src {
	case "compare":
		for _, t := range in.Depths[0].Targets {
			series = append(series, t.Name)
		}
		for _, d := range in.Depths {
			g := barGroup{label: fmt.Sprintf("pipeline %d", d.Pipeline)}
			for _, t := range d.Targets {
				g.values = append(g.values, t.OpsPerSec.Median)
				g.lo = append(g.lo, t.OpsPerSec.Min)
				g.hi = append(g.hi, t.OpsPerSec.Max)
			}
			groups = append(groups, g)
		}
	case "hotkeys":
		g := barGroup{label: "3 nodes + proxy, Zipf gets"}
		for _, ph := range in.Phases {
			series = append(series, "replication "+ph.Name)
			g.values = append(g.values, ph.OpsPerSec)
		}
		groups = append(groups, g)
	default:
		rs := in.results()
		series = []string{"ops/s"}
		for _, r := range rs {
			groups = append(groups, barGroup{label: fmt.Sprintf("pipeline %d", r.Pipeline), values: []float64{r.OpsPerSec}})
		}
	}
	return barChart(title, "ops/s", series, groups, fmtTick, fmtRate), nil
}

// results are the runs of a run or failover input.
func (in *plotInput) results() []*result {
	if in.Result != nil {
		return []*result{in.Result}
	}
	return in.Results
}

func cdfLine(name string, ps []percentile) line {
	l := line{name: name}
	for _, p := range ps {
		l.pts = append(l.pts, [2]float64{p.US, p.Q})
	}
	return l
}

func plotCDF(in *plotInput, src, title string) (string, error) {
	var lines []line
	switch src {
	case "compare":
		for _, d := range in.Depths {
			for _, t := range d.Targets {
				name := t.Name
				if len(in.Depths) > 1 {
					name = fmt.Sprintf("%s, pipeline %d", t.Name, d.Pipeline)
				}
				lines = append(lines, cdfLine(name, t.Percentiles))
			}
		}
	case "hotkeys":
		return "", errors.New("hotkeys results have no latency CDF")
	default:
		for _, r := range in.results() {
			lines = append(lines, cdfLine(fmt.Sprintf("pipeline %d", r.Pipeline), r.Percentiles))
		}
	}
	for _, l := range lines {
		if len(l.pts) == 0 {
			return "", fmt.Errorf("%s has no percentiles (written by an older cachebench?)", l.name)
		}
	}
	pct := func(v float64) string { return fmt.Sprintf("%.0f%%", 100*v) }
	return lineChart(title, "latency (log scale)", true, fmtMicros,
		[]panel{{ylabel: "share of requests at or below", lines: lines, ymax: 1, format: pct}}, nil), nil
}

func plotNodes(in *plotInput, src, title string) (string, error) {
	var series []string
	var sets [][]nodeLoad
	switch src {
	case "hotkeys":
		for _, ph := range in.Phases {
			series = append(series, "replication "+ph.Name)
			sets = append(sets, ph.Nodes)
		}
	case "compare":
		d := in.Depths[0]
		for _, t := range d.Targets {
			if len(t.Nodes) > 0 {
				series = append(series, t.Name)
				sets = append(sets, t.Nodes)
			}
		}
	default:
		for _, r := range in.results() {
			if len(r.Nodes) > 0 {
				series = append(series, fmt.Sprintf("pipeline %d", r.Pipeline))
				sets = append(sets, r.Nodes)
			}
		}
	}
	if len(sets) == 0 {
		return "", errors.New("no per-node counts in the input")
	}
	n := 0
	for _, s := range sets {
		n = max(n, len(s))
	}
	var groups []barGroup
	for i := range n {
		g := barGroup{label: fmt.Sprintf("node%d", i+1)}
		for _, s := range sets {
			v := math.NaN()
			if i < len(s) {
				g.label = s[i].Name
				if s[i].Error == "" {
					v = 100 * s[i].Share
				} else {
					g.label += " (no stats)"
				}
			}
			g.values = append(g.values, v)
		}
		groups = append(groups, g)
	}
	pct := func(v float64) string { return fmt.Sprintf("%g%%", v) }
	return barChart(title, "share of requests", series, groups, pct, func(v float64) string { return fmt.Sprintf("%.1f%%", v) }), nil
}

func plotSeries(in *plotInput, src, title string) (string, error) {
	if src == "compare" || src == "hotkeys" {
		return "", fmt.Errorf("%s results have no time series: plot a run or failover result", src)
	}
	var ops, errs, hits []line
	for _, r := range in.results() {
		name := fmt.Sprintf("pipeline %d", r.Pipeline)
		if len(in.results()) == 1 {
			name = ""
		}
		o, e, h := line{name: join(name, "ops/s")}, line{name: join(name, "errors/s")}, line{name: join(name, "hit ratio")}
		for _, s := range r.Series {
			o.pts = append(o.pts, [2]float64{s.T, s.OpsPerSec})
			e.pts = append(e.pts, [2]float64{s.T, float64(s.Errors) / s.Seconds})
			if s.Gets > 0 {
				h.pts = append(h.pts, [2]float64{s.T, float64(s.Hits) / float64(s.Gets)})
			}
		}
		if len(r.Series) == 0 {
			return "", errors.New("the input has no per-second series")
		}
		ops, errs, hits = append(ops, o), append(errs, e), append(hits, h)
	}
	var marks []marker
	if in.KillAt != nil {
		marks = append(marks, marker{x: *in.KillAt, label: in.Killed + " killed"})
		if in.RecoveredAt >= 0 {
			marks = append(marks, marker{x: in.RecoveredAt, label: "recovered"})
		}
	}
	ratio := func(v float64) string { return fmt.Sprintf("%.2g", v) }
	secs := func(v float64) string { return fmt.Sprintf("%gs", v) }
	return lineChart(title, "seconds into the measured window (each point: the second ending there)", false, secs, []panel{
		{ylabel: "ops/s (answered)", lines: ops},
		{ylabel: "errors/s", lines: errs},
		{ylabel: "hit ratio", lines: hits, ymax: 1, format: ratio},
	}, marks), nil
}

func join(a, b string) string {
	if a == "" {
		return b
	}
	return a + " " + b
}
