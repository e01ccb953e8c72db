// Command cachebench is a load generator for memcache text protocol servers.
//
//	cachebench [run] -servers 127.0.0.1:11211 [flags]
//	cachebench compare [flags] [name=host:port[,host:port...] ...]
//	cachebench hotkeys [-cached bin/cached] [-proxy bin/cacheproxy] [flags]
//
// run drives -conns connections per server, one goroutine each, with a
// get:set mix over -keys keys drawn uniformly or from a Zipf law
// (internal/workload), -pipeline requests in flight per connection, and
// prints ops/s, hit ratio, latency quantiles, errors and ops per server.
// Keys are placed on servers by xxhash(key) mod the number of servers.
//
// compare runs the same workload against several targets one after the
// other, in rounds, and prints the median ops/s and p99 of each target and
// their ratios to the first target. It can start memcached
// (-start-memcached) and our node (-start-cached bin/cached) on free
// loopback ports itself, and kills them when it ends.
//
// hotkeys starts a 3-node cluster and one proxy, and measures a Zipf load
// through the proxy with hot-key replication off and then on: ops/s, p99,
// requests per node (max/mean) and the share of reads answered at the edge.
// See docs/benchmarks.md.
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
	fs.Var(&servers, "servers", "comma-separated host:port of the servers; keys are hashed to them")
	addLoadFlags(fs, &o)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: cachebench [run] -servers host:port[,host:port...] [flags]\n       cachebench compare -h\n       cachebench hotkeys -h\n\n")
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
		res, err := runLoad(ctx, ks, depth)
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
	Conns     int     `json:"conns_per_server"`
	Pipelines []int   `json:"pipelines"`
	Ratio     string  `json:"ratio"`
	Keys      int     `json:"keys"`
	Dist      string  `json:"dist"`
	S         float64 `json:"s,omitempty"`
	ValueSize int     `json:"value_size"`
	Duration  string  `json:"duration,omitempty"`
	Requests  int64   `json:"requests,omitempty"`
	Warmup    string  `json:"warmup"`
	Prefill   bool    `json:"prefill"`
	Seed      uint64  `json:"seed"`
}

func (o *loadOptions) jsonConfig() jsonConfig {
	c := jsonConfig{
		Conns: o.conns, Pipelines: o.pipelines, Ratio: fmt.Sprintf("%d:%d", o.getWeight, o.setWeight),
		Keys: o.keys, Dist: o.dist, ValueSize: o.valueSize, Warmup: o.warmup.String(), Prefill: o.prefill, Seed: o.seed,
	}
	if o.dist == "zipf" {
		c.S = o.s
	}
	if o.requests > 0 {
		c.Requests = o.requests
	} else {
		c.Duration = o.duration.String()
	}
	return c
}
