// Command cachebench is a load generator for memcache text protocol servers.
//
//	cachebench [run] -servers 127.0.0.1:11211 [flags]
//	cachebench compare [flags] [name=host:port[,host:port...] ...]
//	cachebench hotkeys [-cached bin/cached] [-proxy bin/cacheproxy] [flags]
//	cachebench failover [-cached bin/cached] [-proxy bin/cacheproxy] [-kill-at 5s] [flags]
//	cachebench gencheck [flags]
//	cachebench plot -in RESULT.json -kind throughput|cdf|nodes|timeseries [-o FILE.svg]
//	cachebench suite [-f bench/scenarios.json] [-results DIR] [-bin DIR] [-img DIR]
//
// run drives -conns connections per server with a get:set:delete mix over
// -keys keys (uniform, Zipf, a Zipf whose hot set shifts, or a flash crowd:
// internal/workload), -pipeline requests in flight per connection, in a
// closed loop or, with -rate, an open loop whose latencies run from each
// request's scheduled time. It prints ops/s, hit ratio, latency quantiles,
// errors, per-server and per-backend counts and its own CPU, or all of that
// as JSON with a latency CDF and a per-second series.
//
// compare runs the same workload against several targets in alternating
// rounds and prints the median ops/s and p99 of each target and their ratios
// to the first target. It can start memcached, our node, twemproxy over 3
// memcached, and our cluster of 3 nodes and a proxy on free loopback ports
// itself, and kills them when it ends.
//
// hotkeys starts a 3-node cluster and one proxy, and measures a Zipf load
// through the proxy with hot-key replication off and then on: ops/s, p99,
// requests per node (max/mean) and the share of reads answered at the edge.
// failover kills a node of such a cluster under load and measures the errors
// and ops/s of every second and the time to recover. gencheck compares
// cachebench with memcslap and memaslap against one memcached. plot draws SVG
// charts from the JSON results, and suite runs a scenario file and plots it
// (make bench-report). See docs/benchmarks.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := cli(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case errors.Is(err, flag.ErrHelp):
		os.Exit(2)
	case errors.Is(err, context.Canceled):
		fmt.Fprintln(os.Stderr, "cachebench: interrupted")
		os.Exit(130)
	case err != nil:
		fmt.Fprintln(os.Stderr, "cachebench:", err)
		os.Exit(1)
	}
}

// cli runs one command line; stdout gets the results, stderr the progress.
func cli(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "compare":
			return compareCmd(ctx, args[1:], stdout, stderr)
		case "hotkeys":
			return hotkeysCmd(ctx, args[1:], stdout, stderr)
		case "failover":
			return failoverCmd(ctx, args[1:], stdout, stderr)
		case "plot":
			return plotCmd(ctx, args[1:], stdout, stderr)
		case "gencheck":
			return gencheckCmd(ctx, args[1:], stdout, stderr)
		case "suite":
			return suiteCmd(ctx, args[1:], stdout, stderr)
		case "run":
			args = args[1:]
		}
	}
	return runCmd(ctx, args, stdout, stderr)
}

func runCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("cachebench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o loadOptions
	servers := addrList{"127.0.0.1:11211"}
	fs.Var(&servers, "servers", "comma-separated host:port of the servers; -route says which get requests")
	addLoadFlags(fs, &o)
	quiet := fs.Bool("quiet", false, "no progress line on stderr")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: cachebench [run] -servers host:port[,host:port...] [flags]\n"+
			"       cachebench compare|hotkeys|failover|gencheck|plot|suite -h\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if err := o.validate(); err != nil {
		return err
	}
	var hooks runHooks
	if o.route == routeSingle {
		servers, hooks.backends = servers[:1], servers[1:]
	}
	if !*quiet {
		hooks.progress = stderr
	}
	ks, err := newKeySpace(&o, servers, newZipfTable(&o))
	if err != nil {
		return err
	}
	if o.prefill {
		if err := runPrefill(ctx, ks, stderr); err != nil {
			return err
		}
	}
	var results []*result
	for i, depth := range o.pipelines {
		if !*quiet {
			fmt.Fprintf(stderr, "cachebench: pipeline %d: %v warmup, then measuring\n", depth, o.warmup)
		}
		res, err := runLoadHooks(ctx, ks, depth, hooks)
		if err != nil {
			return err
		}
		results = append(results, res)
		if !o.json {
			if i == 0 {
				fmt.Fprintf(stdout, "cachebench: %s\n", o.describe())
			}
			fmt.Fprintln(stdout)
			printResult(stdout, res)
		}
	}
	if o.json {
		return writeJSON(stdout, struct {
			Config  jsonConfig `json:"config"`
			Results []*result  `json:"results"`
		}{o.jsonConfig(), results})
	}
	return nil
}

func runPrefill(ctx context.Context, ks *keySpace, stderr io.Writer) error {
	n, err := prefill(ctx, ks)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "cachebench: prefilled %d keys on %d server(s)\n", n, len(ks.servers))
	return nil
}

// jsonConfig echoes the workload in JSON output.
type jsonConfig struct {
	Conns      int     `json:"conns_per_server"`
	Pipelines  []int   `json:"pipelines"`
	Ratio      string  `json:"ratio"`
	Keys       int     `json:"keys"`
	Dist       string  `json:"dist"`
	S          float64 `json:"s,omitempty"`
	ValueSize  int     `json:"value_size"`
	ValueMax   int     `json:"value_size_max,omitempty"`
	Duration   string  `json:"duration,omitempty"`
	Requests   int64   `json:"requests,omitempty"`
	Warmup     string  `json:"warmup"`
	Prefill    bool    `json:"prefill"`
	Seed       uint64  `json:"seed"`
	Rate       float64 `json:"rate,omitempty"`
	Route      string  `json:"route,omitempty"`
	Engine     string  `json:"engine,omitempty"`
	ShiftEvery string  `json:"shift_every,omitempty"`
	ShiftRanks int     `json:"shift_ranks,omitempty"`
	FlashAt    string  `json:"flash_at,omitempty"`
	FlashFor   string  `json:"flash_for,omitempty"`
	FlashShare float64 `json:"flash_share,omitempty"`
	Describe   string  `json:"describe"`
}

func (o *loadOptions) jsonConfig() jsonConfig {
	c := jsonConfig{
		Conns: o.conns, Pipelines: o.pipelines, Ratio: o.ratioString(),
		Keys: o.keys, Dist: o.dist, ValueSize: o.valueSize, ValueMax: o.valueMax, Warmup: o.warmup.String(), Prefill: o.prefill, Seed: o.seed,
		Rate: o.rate, Route: o.route, Engine: o.engine, Describe: o.describe(),
	}
	if o.dist != "uniform" {
		c.S = o.s
	}
	switch o.dist {
	case "hotspot":
		c.ShiftEvery, c.ShiftRanks = o.shiftEvery.String(), o.shiftRanks
	case "flash":
		c.FlashAt, c.FlashFor, c.FlashShare = o.flashAt.String(), o.flashFor.String(), o.flashShare
	}
	if o.requests > 0 {
		c.Requests = o.requests
	} else {
		c.Duration = o.duration.String()
	}
	return c
}
