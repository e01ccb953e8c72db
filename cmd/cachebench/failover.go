package main

// The failover command: our cluster (3 nodes and one proxy) under load
// through the proxy, one node killed with SIGKILL during the measured
// window, and the errors and ops/s of every second around it.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"
)

// recoveryBand is how close to the ops/s before the kill a second must get
// again, with no errors, to count as recovered.
const recoveryBand = 0.2

type failoverOptions struct {
	load                  loadOptions
	cachedPath, proxyPath string
	cachedArgs, proxyArgs string
	memoryMB              int
	kill                  int
	killAt                time.Duration
	jsonPath              string
	quiet                 bool
}

func parseFailover(args []string, stderr io.Writer) (*failoverOptions, error) {
	o := &failoverOptions{}
	fs := flag.NewFlagSet("cachebench failover", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addLoadFlags(fs, &o.load)
	fs.StringVar(&o.cachedPath, "cached", "bin/cached", "`PATH` of the node binary")
	fs.StringVar(&o.proxyPath, "proxy", "bin/cacheproxy", "`PATH` of the proxy binary")
	fs.StringVar(&o.cachedArgs, "cached-args", "", "extra space-separated arguments for every node")
	fs.StringVar(&o.proxyArgs, "proxy-args", "", "extra space-separated arguments for the proxy")
	fs.IntVar(&o.memoryMB, "m", 1024, "item memory of each node in MB (cached -m)")
	fs.IntVar(&o.kill, "kill", 2, fmt.Sprintf("which node to kill, 1..%d", hotkeysNodes))
	fs.DurationVar(&o.killAt, "kill-at", 5*time.Second, "when to kill it, from the start of the measured window")
	fs.StringVar(&o.jsonPath, "json-file", "", "also write the report as JSON to `FILE` (-json prints it on stdout)")
	fs.BoolVar(&o.quiet, "quiet", false, "no progress line on stderr")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: cachebench failover [-cached bin/cached] [-proxy bin/cacheproxy] [-kill-at 5s] [load flags]\n\n"+
			"Starts %d nodes and one proxy on free loopback ports, sets every key once through the proxy, runs the\n"+
			"load through the proxy and kills one node with SIGKILL at -kill-at. Reports ops/s and errors per\n"+
			"second and the time to recover: from the kill to the first second with no errors and ops/s within\n"+
			"%.0f%% of the mean before the kill.\n\n", hotkeysNodes, 100*recoveryBand)
		fs.PrintDefaults()
	}
	o.load.duration = 20 * time.Second
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	o.load.route = routeSingle
	switch err := o.load.validate(); {
	case err != nil:
		return nil, err
	case len(o.load.pipelines) != 1:
		return nil, errors.New("-pipeline takes one depth here")
	case o.load.requests > 0:
		return nil, errors.New("-requests does not apply: the run is timed, give -duration")
	case o.kill < 1 || o.kill > hotkeysNodes:
		return nil, fmt.Errorf("-kill %d: want 1..%d", o.kill, hotkeysNodes)
	case o.killAt <= 0 || o.killAt >= o.load.duration:
		return nil, errors.New("-kill-at must be inside the measured window (0, -duration)")
	case o.memoryMB <= 0:
		return nil, errors.New("-m must be positive")
	}
	return o, nil
}

// failoverReport is the failover command's result.
type failoverReport struct {
	Config jsonConfig `json:"config"`
	Nodes  []string   `json:"nodes"`
	Proxy  string     `json:"proxy"`
	Killed string     `json:"killed"`
	// KillAt is when the node was killed, in seconds from the start of the
	// measured window (the clock of Result.Series).
	KillAt float64 `json:"kill_at"`
	// Before is the mean ops/s of the seconds before the kill.
	Before float64 `json:"ops_per_sec_before"`
	// ErrorsAfter is the errors from the kill to the end.
	ErrorsAfter int64 `json:"errors_after_kill"`
	// MinOpsAfter is the lowest ops/s of a second after the kill.
	MinOpsAfter float64 `json:"min_ops_per_sec_after"`
	// RecoveredAt is the start of the first second after the kill with no
	// errors and ops/s within recoveryBand of Before (-1 if none); Recovery
	// is RecoveredAt - KillAt, the time to recover.
	RecoveredAt float64 `json:"recovered_at"`
	Recovery    float64 `json:"recovery_s"`
	// Relapses counts the seconds after RecoveredAt that had errors again.
	Relapses int     `json:"relapses"`
	Result   *result `json:"result"`
}

// analyze fills the figures that derive from the series and KillAt.
func (rep *failoverReport) analyze() {
	s := rep.Result.Series
	var sum float64
	var n int
	rep.RecoveredAt, rep.Recovery, rep.MinOpsAfter = -1, -1, -1
	for _, x := range s {
		if x.T <= rep.KillAt {
			sum += x.OpsPerSec
			n++
		}
	}
	if n > 0 {
		rep.Before = sum / float64(n)
	}
	for _, x := range s {
		if x.T <= rep.KillAt {
			continue
		}
		rep.ErrorsAfter += x.Errors
		if rep.MinOpsAfter < 0 || x.OpsPerSec < rep.MinOpsAfter {
			rep.MinOpsAfter = x.OpsPerSec
		}
		start := x.T - x.Seconds
		switch {
		case rep.RecoveredAt < 0 && start >= rep.KillAt-0.001 && x.Errors == 0 && x.OpsPerSec >= (1-recoveryBand)*rep.Before:
			rep.RecoveredAt = start
			rep.Recovery = max(0, start-rep.KillAt)
		case rep.RecoveredAt >= 0 && x.Errors > 0:
			rep.Relapses++
		}
	}
}

func failoverCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFailover(args, stderr)
	if err != nil {
		return err
	}
	c := &cluster{o: &hotkeysOptions{
		cachedPath: o.cachedPath, proxyPath: o.proxyPath, cachedArgs: o.cachedArgs, proxyArgs: o.proxyArgs,
		memoryMB: o.memoryMB, valueSize: o.load.valueSize, timeout: o.load.timeout,
	}, log: stderr}
	defer c.stopAll()
	if err := c.startNodes(ctx); err != nil {
		return err
	}
	if err := c.startProxy(ctx, "failover", nil); err != nil {
		return err
	}
	rep := &failoverReport{Config: o.load.jsonConfig(), Proxy: c.proxy.proc.addr}
	var nodes []string
	for _, n := range c.nodes {
		nodes = append(nodes, n.proc.addr)
	}
	rep.Nodes = nodes
	victim := c.nodes[o.kill-1]
	rep.Killed = victim.name
	ks, err := newKeySpace(&o.load, []string{c.proxy.proc.addr}, newZipfTable(&o.load))
	if err != nil {
		return err
	}
	if o.load.prefill {
		t0 := time.Now()
		n, err := prefillThrough(ctx, ks, prefillConns)
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "cachebench: prefilled %d keys through the proxy in %.1fs\n", n, time.Since(t0).Seconds())
	}
	killed := make(chan time.Duration, 1)
	hooks := runHooks{backends: nodes}
	if !o.quiet {
		hooks.progress = stderr
	}
	hooks.atMeasure = func(start time.Time) {
		select {
		case <-time.After(time.Until(start.Add(o.killAt))):
		case <-ctx.Done():
			return
		}
		at := time.Since(start)
		victim.proc.stop() // SIGKILL, then reaped
		fmt.Fprintf(stderr, "cachebench: killed %s (pid %d) at %.2fs\n", victim.name, victim.proc.cmd.Process.Pid, at.Seconds())
		killed <- at
	}
	fmt.Fprintf(stderr, "cachebench: %v warmup, then measuring for %v; %s dies at %v\n", o.load.warmup, o.load.duration, victim.name, o.killAt)
	res, err := runLoadHooks(ctx, ks, o.load.pipelines[0], hooks)
	if err != nil {
		return err
	}
	select {
	case at := <-killed:
		rep.KillAt = at.Seconds()
	default:
		return errors.New("the run ended before the kill")
	}
	rep.Result = res
	rep.analyze()
	if o.jsonPath != "" {
		if err := writeJSONFile(o.jsonPath, rep); err != nil {
			return err
		}
	}
	if o.load.json {
		return writeJSON(stdout, rep)
	}
	printFailover(stdout, o, rep)
	return nil
}

func printFailover(w io.Writer, o *failoverOptions, rep *failoverReport) {
	fmt.Fprintf(w, "cachebench failover: %d nodes + 1 proxy, %s killed at %.2fs; %s\n\n", len(rep.Nodes), rep.Killed, rep.KillAt, o.load.describe())
	fmt.Fprintf(w, "  second   ops/s      errors  hit ratio\n")
	for _, x := range rep.Result.Series {
		mark := ""
		if x.T-x.Seconds < rep.KillAt && rep.KillAt <= x.T {
			mark = "  <- kill"
		}
		if rep.RecoveredAt >= 0 && x.T-x.Seconds == rep.RecoveredAt {
			mark = "  <- recovered"
		}
		hit := "-"
		if x.Gets > 0 {
			hit = fmt.Sprintf("%.3f", float64(x.Hits)/float64(x.Gets))
		}
		fmt.Fprintf(w, "  %6.1f  %9.0f  %6d  %s%s\n", x.T, x.OpsPerSec, x.Errors, hit, mark)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "  ops/s before the kill   %.0f\n", rep.Before)
	fmt.Fprintf(w, "  lowest ops/s after      %.0f\n", rep.MinOpsAfter)
	fmt.Fprintf(w, "  errors after the kill   %d\n", rep.ErrorsAfter)
	if rep.RecoveredAt >= 0 {
		fmt.Fprintf(w, "  time to recover         %.1fs (no errors and ops/s within %.0f%% from %.1fs; %d later seconds with errors)\n",
			rep.Recovery, 100*recoveryBand, rep.RecoveredAt, rep.Relapses)
	} else {
		fmt.Fprintf(w, "  time to recover         not within the run\n")
	}
	if r := rep.Result; r.FirstError != "" {
		fmt.Fprintf(w, "  first error             %s\n", strings.TrimSpace(r.FirstError))
	}
}
