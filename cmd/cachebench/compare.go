package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
)

// target is one system under test: a name and its servers.
type target struct {
	name     string
	servers  []string
	backends []string      // servers behind a front end, whose stats give the per-node load
	procs    []*serverProc // what cachebench started for it, to stop
	ks       *keySpace
}

// spread is the median, min and max of one measure over the rounds.
type spread struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
}

func spreadOf(vs []float64) spread {
	s := slices.Clone(vs)
	slices.Sort(s)
	if len(s) == 0 {
		return spread{}
	}
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return spread{Median: m, Min: s[0], Max: s[len(s)-1]}
}

// targetSummary is one target at one depth, over all rounds.
type targetSummary struct {
	Name      string   `json:"name"`
	Servers   []string `json:"servers"`
	OpsPerSec spread   `json:"ops_per_sec"`
	P99       spread   `json:"p99_us"`
	HitRatio  float64  `json:"hit_ratio"` // median
	Errors    int64    `json:"errors"`    // over all rounds
	OpsRatio  float64  `json:"ops_ratio"` // median ops/s over the first target's
	P99Ratio  float64  `json:"p99_ratio"` // median p99 over the first target's
	// OpsRatioSpread is the spread of the per-round ratios: round r of this
	// target over round r of the first.
	OpsRatioSpread spread `json:"ops_ratio_rounds"`
	// CoresPer100k is the median CPU of cachebench itself per 100k ops/s.
	CoresPer100k float64 `json:"gen_cores_per_100k_ops"`
	// Percentiles is the latency CDF of every round together.
	Percentiles []percentile `json:"percentiles"`
	// Nodes are the requests each backend served over all rounds.
	Nodes           []nodeLoad `json:"nodes,omitempty"`
	NodeMaxOverMean float64    `json:"node_max_over_mean,omitempty"`
	Rounds          []*result  `json:"rounds"`
}

// depthSummary is every target at one pipeline depth.
type depthSummary struct {
	Pipeline int             `json:"pipeline"`
	Targets  []targetSummary `json:"targets"`
}

// compareOptions are the compare command's flags and targets.
type compareOptions struct {
	load           loadOptions
	rounds         int
	startMemcached countFlag
	startCached    stringList
	memcachedPath  string
	threads        int
	cachedArgs     string
	named          []string // name=host:port[,host:port...] arguments

	startTwemproxy bool
	nutcracker     string
	startCluster   bool
	clusterCached  string
	clusterProxy   string
	proxyArgs      string
	dir            string // for generated configuration files
}

func parseCompare(args []string, stderr io.Writer) (*compareOptions, error) {
	c := &compareOptions{}
	fs := flag.NewFlagSet("cachebench compare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addLoadFlags(fs, &c.load)
	fs.IntVar(&c.rounds, "rounds", 3, "rounds; each runs every target for -duration, starting one target later each round")
	fs.Var(&c.startMemcached, "start-memcached", "start memcached on a free loopback port as a target named memcached (repeat, or =N, for more)")
	fs.Var(&c.startCached, "start-cached", "`PATH` of our node binary to start on a free loopback port as a target named cached (repeatable)")
	fs.StringVar(&c.memcachedPath, "memcached", "/usr/bin/memcached", "memcached binary for -start-memcached")
	fs.IntVar(&c.threads, "memcached-threads", 2, "memcached -t for -start-memcached")
	fs.StringVar(&c.cachedArgs, "cached-args", "", "extra space-separated arguments for -start-cached and the nodes of -start-cluster, e.g. \"-gossip 127.0.0.1:0 -admin 127.0.0.1:0\"")
	fs.BoolVar(&c.startTwemproxy, "start-twemproxy", false, fmt.Sprintf("start %d memcached (-memcached-threads each) and twemproxy in front of them (ketama), as a target named twemproxy", frontendBackends))
	fs.StringVar(&c.nutcracker, "nutcracker", "/usr/sbin/nutcracker", "twemproxy binary for -start-twemproxy")
	fs.BoolVar(&c.startCluster, "start-cluster", false, fmt.Sprintf("start our cluster, %d nodes and one proxy, as a target named hotcache", frontendBackends))
	fs.StringVar(&c.clusterCached, "cluster-cached", "bin/cached", "node binary for -start-cluster")
	fs.StringVar(&c.clusterProxy, "cluster-proxy", "bin/cacheproxy", "proxy binary for -start-cluster")
	fs.StringVar(&c.proxyArgs, "proxy-args", "", "extra space-separated arguments for the proxy of -start-cluster")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: cachebench compare [flags] [name=host:port[,host:port...] ...]\n\n"+
			"Targets started with -start-memcached come first, then -start-twemproxy, -start-cached,\n"+
			"-start-cluster, then the named ones; ratios are against the first. The load of a started\n"+
			"front end (twemproxy, cluster) goes to it alone, and its backends' stats give the per-node load.\n\n")
		fs.PrintDefaults()
	}
	for { // flags and targets may be interleaved
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			break
		}
		c.named, args = append(c.named, fs.Arg(0)), fs.Args()[1:]
	}
	if err := c.load.validate(); err != nil {
		return nil, err
	}
	if c.rounds <= 0 {
		return nil, errors.New("-rounds must be positive")
	}
	if c.startMemcached == 0 && len(c.startCached) == 0 && len(c.named) == 0 && !c.startTwemproxy && !c.startCluster {
		return nil, errors.New("no targets: give name=host:port, -start-memcached, -start-cached, -start-twemproxy or -start-cluster")
	}
	return c, nil
}

func compareCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c, err := parseCompare(args, stderr)
	if err != nil {
		return err
	}
	var targets []*target
	defer func() {
		for _, t := range slices.Backward(targets) {
			for _, p := range slices.Backward(t.procs) {
				p.stop()
			}
		}
	}()
	if c.startTwemproxy {
		if c.dir, err = os.MkdirTemp("", "cachebench-"); err != nil {
			return err
		}
		defer os.RemoveAll(c.dir)
	}
	if err := c.addTargets(ctx, &targets, stderr); err != nil {
		return err
	}
	zipf := newZipfTable(&c.load)
	for _, t := range targets {
		if t.ks, err = newKeySpace(&c.load, t.servers, zipf); err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
		if c.load.prefill {
			n, err := prefill(ctx, t.ks)
			if err != nil {
				return fmt.Errorf("%s: %w", t.name, err)
			}
			fmt.Fprintf(stderr, "cachebench: prefilled %d keys on %s\n", n, t.name)
		}
	}
	var summaries []depthSummary
	for _, depth := range c.load.pipelines {
		d, err := c.runRounds(ctx, targets, depth, stderr)
		if err != nil {
			return err
		}
		summaries = append(summaries, d)
	}
	if c.load.json {
		return writeJSON(stdout, struct {
			Config jsonConfig     `json:"config"`
			Rounds int            `json:"rounds"`
			Depths []depthSummary `json:"depths"`
		}{c.load.jsonConfig(), c.rounds, summaries})
	}
	fmt.Fprintf(stdout, "cachebench compare: %d rounds, %s\n", c.rounds, c.load.describe())
	for _, d := range summaries {
		printDepth(stdout, d)
	}
	return nil
}

// addTargets starts the servers the flags ask for and parses the named
// targets, appending each to *targets as soon as it exists, so that the
// caller stops every started server even if a later one fails.
func (c *compareOptions) addTargets(ctx context.Context, targets *[]*target, stderr io.Writer) error {
	start := func(name, path string, args func(int) []string) error {
		p, err := startServer(ctx, name, path, args)
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "cachebench: started %s pid %d on %s\n", name, p.cmd.Process.Pid, p.addr)
		*targets = append(*targets, &target{name: name, servers: []string{p.addr}, procs: []*serverProc{p}})
		return nil
	}
	// front adds a front end and its backends; procs ends with the front end.
	front := func(name string, procs []*serverProc, backends []string, err error) error {
		t := &target{name: name, procs: procs, backends: backends}
		*targets = append(*targets, t)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		t.servers = []string{procs[len(procs)-1].addr}
		return nil
	}
	for i := range int(c.startMemcached) {
		if err := start(numbered("memcached", i), c.memcachedPath, memcachedArgs(c.threads)); err != nil {
			return err
		}
	}
	if c.startTwemproxy {
		procs, backends, err := startTwemproxy(ctx, c.nutcracker, c.memcachedPath, c.threads, c.dir, c.load.timeout, stderr)
		if err := front("twemproxy", procs, backends, err); err != nil {
			return err
		}
	}
	for i, path := range c.startCached {
		if err := start(numbered("cached", i), path, cachedArgs(strings.Fields(c.cachedArgs))); err != nil {
			return err
		}
	}
	if c.startCluster {
		procs, nodes, err := startCluster(ctx, c.clusterCached, c.clusterProxy, c.cachedArgs, c.proxyArgs, 1024, c.load.valueSize, c.load.timeout, stderr)
		if err := front("hotcache", procs, nodes, err); err != nil {
			return err
		}
	}
	seen := map[string]bool{}
	for _, t := range *targets {
		seen[t.name] = true
	}
	for _, arg := range c.named {
		name, addrs, ok := strings.Cut(arg, "=")
		if !ok || name == "" {
			return fmt.Errorf("target %q: want name=host:port[,host:port...]", arg)
		}
		if seen[name] {
			return fmt.Errorf("two targets are named %q", name)
		}
		seen[name] = true
		servers, err := parseAddrs(addrs)
		if err != nil {
			return fmt.Errorf("target %s: %w", name, err)
		}
		*targets = append(*targets, &target{name: name, servers: servers})
	}
	return nil
}

// runRounds runs every target c.rounds times at one depth. Round r starts
// with target r, so that no target always runs first (or right after the
// same neighbour), and order effects average out.
func (c *compareOptions) runRounds(ctx context.Context, targets []*target, depth int, stderr io.Writer) (depthSummary, error) {
	res := make([][]*result, len(targets))
	for r := range c.rounds {
		for k := range targets {
			i := (r + k) % len(targets)
			t := targets[i]
			got, err := runLoadHooks(ctx, t.ks, depth, runHooks{backends: t.backends})
			if err != nil {
				return depthSummary{}, fmt.Errorf("%s: %w", t.name, err)
			}
			res[i] = append(res[i], got)
			fmt.Fprintf(stderr, "cachebench: pipeline %d round %d/%d %-10s %9.0f ops/s  p99 %-9s hit %.3f  errors %d\n",
				depth, r+1, c.rounds, t.name, got.OpsPerSec, fmtUS(got.Latency.P99), got.HitRatio, got.Errors)
		}
	}
	return summarizeDepth(depth, targets, res), nil
}

func numbered(name string, i int) string {
	if i == 0 {
		return name
	}
	return fmt.Sprintf("%s%d", name, i+1)
}

func summarizeDepth(depth int, targets []*target, res [][]*result) depthSummary {
	d := depthSummary{Pipeline: depth}
	for i, t := range targets {
		var ops, p99, hits, cores []float64
		var errs int64
		var all histogram
		var nodes []nodeLoad
		for _, r := range res[i] {
			ops = append(ops, r.OpsPerSec)
			p99 = append(p99, r.Latency.P99)
			hits = append(hits, r.HitRatio)
			cores = append(cores, r.CoresPer100k)
			errs += r.Errors
			all.merge(&r.hist)
			nodes = addNodeLoads(nodes, r.Nodes)
		}
		ts := targetSummary{
			Name: t.name, Servers: t.servers, OpsPerSec: spreadOf(ops), P99: spreadOf(p99),
			HitRatio: spreadOf(hits).Median, Errors: errs, CoresPer100k: spreadOf(cores).Median,
			Percentiles: percentiles(&all), Nodes: nodes, Rounds: res[i],
		}
		if len(nodes) > 0 {
			loads := make([]uint64, len(nodes))
			for j, n := range nodes {
				loads[j] = n.Requests
			}
			ts.NodeMaxOverMean = maxOverMean(loads)
		}
		d.Targets = append(d.Targets, ts)
	}
	base := d.Targets[0]
	for i := range d.Targets {
		t := &d.Targets[i]
		t.OpsRatio = ratio(t.OpsPerSec.Median, base.OpsPerSec.Median)
		t.P99Ratio = ratio(t.P99.Median, base.P99.Median)
		var rs []float64
		for r := range min(len(t.Rounds), len(base.Rounds)) {
			rs = append(rs, ratio(t.Rounds[r].OpsPerSec, base.Rounds[r].OpsPerSec))
		}
		t.OpsRatioSpread = spreadOf(rs)
	}
	return d
}

// addNodeLoads adds the per-node requests of one round to a running sum
// (nil at first) and recomputes the shares.
func addNodeLoads(sum, round []nodeLoad) []nodeLoad {
	if len(round) == 0 {
		return sum
	}
	if sum == nil {
		sum = make([]nodeLoad, len(round))
		for i, n := range round {
			sum[i] = nodeLoad{Name: n.Name, Addr: n.Addr}
		}
	}
	var total uint64
	for i := range sum {
		if i < len(round) {
			sum[i].Requests += round[i].Requests
			sum[i].Gets += round[i].Gets
			sum[i].Sets += round[i].Sets
			if round[i].Error != "" {
				sum[i].Error = round[i].Error
			}
		}
		total += sum[i].Requests
	}
	for i := range sum {
		sum[i].Share = ratio(float64(sum[i].Requests), float64(total))
	}
	return sum
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func printDepth(w io.Writer, d depthSummary) {
	base := d.Targets[0].Name
	fmt.Fprintf(w, "\npipeline %d\n", d.Pipeline)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  target\tservers\tops/s median [min .. max]\tp99 median [min .. max]\thit ratio\terrors\tops/s vs %s [rounds]\tp99 vs %s\tnode max/mean\n", base, base)
	for _, t := range d.Targets {
		mm := "-"
		if t.NodeMaxOverMean > 0 {
			mm = fmt.Sprintf("%.3f", t.NodeMaxOverMean)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s [%s .. %s]\t%s [%s .. %s]\t%.4f\t%d\t%.2f [%.2f .. %.2f]\t%.2f\t%s\n",
			t.Name, strings.Join(t.Servers, ","),
			fmtRate(t.OpsPerSec.Median), fmtRate(t.OpsPerSec.Min), fmtRate(t.OpsPerSec.Max),
			fmtUS(t.P99.Median), fmtUS(t.P99.Min), fmtUS(t.P99.Max),
			t.HitRatio, t.Errors, t.OpsRatio, t.OpsRatioSpread.Min, t.OpsRatioSpread.Max, t.P99Ratio, mm)
	}
	tw.Flush()
}
