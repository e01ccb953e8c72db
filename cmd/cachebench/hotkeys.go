package main

// The hotkeys command: a 3-node cluster and one proxy, started here, under a
// Zipf read load through the proxy, measured with hot-key replication off and
// then on. See docs/benchmarks.md, "Hot keys: replication off vs on".

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/hotcache/hotcache/internal/workload"
)

const (
	// hotkeysNodes is the size of the cluster the command starts.
	hotkeysNodes = 3
	// topKeys is how many of the hottest keys (Zipf ranks 0..topKeys-1,
	// which are key ids 0..topKeys-1) the top-key edge share covers.
	topKeys = 10
	// readyTimeout bounds each wait for the cluster or the proxy to be ready.
	readyTimeout = 30 * time.Second

	goalMaxOverMean = 1.2
	goalTopShare    = 0.9
)

// hotkeysOptions are the hotkeys command's flags.
type hotkeysOptions struct {
	cachedPath, proxyPath string
	cachedArgs, proxyArgs string
	keys                  int
	s                     float64
	setRatio              float64
	valueSize             int
	conns                 int
	pipeline              int
	warmup, duration      time.Duration
	memoryMB              int
	seed                  uint64
	timeout               time.Duration
	poll                  time.Duration
	jsonPath              string
}

func parseHotkeysFlags(args []string, stderr io.Writer) (*hotkeysOptions, error) {
	o := &hotkeysOptions{}
	fs := flag.NewFlagSet("cachebench hotkeys", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.cachedPath, "cached", "bin/cached", "`PATH` of the node binary")
	fs.StringVar(&o.proxyPath, "proxy", "bin/cacheproxy", "`PATH` of the proxy binary")
	fs.StringVar(&o.cachedArgs, "cached-args", "", "extra space-separated arguments for every node")
	fs.StringVar(&o.proxyArgs, "proxy-args", "", "extra space-separated arguments for the proxy, in both phases")
	fs.IntVar(&o.keys, "keys", 1000000, "number of distinct keys; gets are Zipf over them, sets uniform")
	fs.Float64Var(&o.s, "zipf", 1.2, "Zipf exponent s of the gets (rank 0, key id 0, is the hottest)")
	fs.Float64Var(&o.setRatio, "set-ratio", 0.1, "share of requests that are sets, in [0, 1)")
	fs.IntVar(&o.valueSize, "value-size", 100, "value size in bytes")
	fs.IntVar(&o.conns, "conns", 50, "connections to the proxy, one goroutine each")
	fs.IntVar(&o.pipeline, "pipeline", 1, "requests in flight per connection, written as one batch")
	fs.DurationVar(&o.warmup, "warmup", 3*time.Second, "unmeasured load after the prefill of each phase")
	fs.DurationVar(&o.duration, "duration", 15*time.Second, "measured time of each phase")
	fs.IntVar(&o.memoryMB, "m", 1024, "item memory of each node in MB (cached -m)")
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the key streams and the get/set choice")
	fs.DurationVar(&o.timeout, "timeout", 5*time.Second, "deadline of each network read and write")
	fs.DurationVar(&o.poll, "poll", time.Second, "how often the nodes' \"stats hotkeys\" are sampled during the measured window")
	fs.StringVar(&o.jsonPath, "json", "", "also write the report as JSON to `FILE`")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: cachebench hotkeys [-cached bin/cached] [-proxy bin/cacheproxy] [flags]\n\n"+
			"Starts %d nodes and one proxy on free loopback ports and measures the same load through the proxy\n"+
			"twice: with hot-key replication off (proxy -near-cache-mb 0), then on (the proxy's default).\n\n", hotkeysNodes)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return o, o.validate()
}

func (o *hotkeysOptions) validate() error {
	switch {
	case o.cachedPath == "" || o.proxyPath == "":
		return errors.New("-cached and -proxy are required")
	case o.keys < topKeys || o.keys > 1<<30:
		return fmt.Errorf("-keys must be in [%d, 2^30]", topKeys)
	case !(o.s >= 0) || math.IsInf(o.s, 0):
		return fmt.Errorf("-zipf %v: want a finite s >= 0", o.s)
	case !(o.setRatio >= 0 && o.setRatio < 1):
		return fmt.Errorf("-set-ratio %v: want [0, 1)", o.setRatio)
	case o.valueSize < 0 || o.valueSize > 1<<20-512:
		return errors.New("-value-size must be in [0, 1MiB)")
	case o.conns <= 0:
		return errors.New("-conns must be positive")
	case o.pipeline <= 0 || o.pipeline > 1<<16:
		return fmt.Errorf("-pipeline %d: want 1..65536", o.pipeline)
	case o.warmup < 0:
		return errors.New("-warmup must not be negative")
	case o.duration <= 0:
		return errors.New("-duration must be positive")
	case o.memoryMB <= 0:
		return errors.New("-m must be positive")
	case o.timeout <= 0 || o.poll <= 0:
		return errors.New("-timeout and -poll must be positive")
	}
	return nil
}

// loadOptions is the part of the workload that keySpace, prefill and the
// workers of load.go read.
func (o *hotkeysOptions) loadOptions() *loadOptions {
	setW := int(math.Round(o.setRatio * 1000))
	return &loadOptions{
		conns: o.conns, pipelines: []int{o.pipeline}, getWeight: 1000 - setW, setWeight: setW,
		keys: o.keys, dist: "zipf", s: o.s, valueSize: o.valueSize, duration: o.duration,
		warmup: o.warmup, prefill: true, seed: o.seed, timeout: o.timeout,
	}
}

func (o *hotkeysOptions) describe() string {
	return fmt.Sprintf("%d nodes + 1 proxy, %d conns to the proxy, pipeline %d, gets zipf s=%g over %d keys, "+
		"sets %g%% uniform, %d-byte values, prefilled, %v measured after %v warmup",
		hotkeysNodes, o.conns, o.pipeline, o.s, o.keys, o.setRatio*100, o.valueSize, o.duration, o.warmup)
}

// hotkeysPhase is what one phase measured. Latencies are in microseconds.
type hotkeysPhase struct {
	Name        string   `json:"name"` // "off" or "on"
	Replication bool     `json:"replication"`
	ProxyArgs   []string `json:"proxy_args"`
	Prefilled   int64    `json:"prefilled"`

	Seconds    float64 `json:"seconds"`
	Ops        int64   `json:"ops"`
	OpsPerSec  float64 `json:"ops_per_sec"`
	Gets       int64   `json:"gets"`
	Sets       int64   `json:"sets"`
	HitRatio   float64 `json:"hit_ratio"`
	Errors     int64   `json:"errors"`
	Reconnects int64   `json:"reconnects"`
	FirstError string  `json:"first_error,omitempty"`
	Latency    latency `json:"latency_us"`

	// Nodes are the requests each node served in the window, from its
	// "stats" counters; NodeMaxOverMean is max/mean over them.
	Nodes           []nodeLoad `json:"nodes"`
	NodeMaxOverMean float64    `json:"node_max_over_mean"`

	// ProxyGets are the gets the proxy served in the window (its cmd_get;
	// ProxyGetsFrom says "generator" if it has none), EdgeHits those it
	// answered from replicas (its edge_hits), EdgeShare their ratio.
	ProxyGets     uint64  `json:"proxy_gets"`
	ProxyGetsFrom string  `json:"proxy_gets_from"`
	EdgeHits      uint64  `json:"edge_hits"`
	EdgeShare     float64 `json:"edge_share"`
	// NodeEdgeHits is the growth of the nodes' edge_hits ("stats hotkeys"):
	// the edge hits reported back to the owners, a cross-check of EdgeHits.
	NodeEdgeHits uint64 `json:"node_edge_hits"`

	// Top are the topKeys hottest keys: the gets the generator sent for
	// each in the window and the edge hits their owners counted for them.
	Top          []topKey `json:"top"`
	TopGets      int64    `json:"top_gets"`
	TopEdgeHits  uint64   `json:"top_edge_hits"`
	TopEdgeShare float64  `json:"top_edge_share"`
	PollErrors   int      `json:"hotkeys_poll_errors"`

	// EdgeStreams and EdgeReplicas are the proxy's replica streams and
	// replicas at the end of the window; -1 if it does not report them.
	EdgeStreams  int64 `json:"edge_streams"`
	EdgeReplicas int64 `json:"edge_replicas"`
}

// nodeLoad is one node's share of a phase.
type nodeLoad struct {
	Name     string  `json:"name"`
	Addr     string  `json:"addr"`
	Requests uint64  `json:"requests"`
	Gets     uint64  `json:"gets"`
	Sets     uint64  `json:"sets"`
	Share    float64 `json:"share"`
	Error    string  `json:"error,omitempty"` // why the counts are missing
}

// topKey is one of the hottest keys in a phase.
type topKey struct {
	Rank      int     `json:"rank"`
	Key       string  `json:"key"`
	Gets      int64   `json:"gets"`
	EdgeHits  uint64  `json:"edge_hits"`
	EdgeShare float64 `json:"edge_share"`
}

// hotkeysReport is the command's result.
type hotkeysReport struct {
	Config hotkeysConfig   `json:"config"`
	Phases []*hotkeysPhase `json:"phases"`
	// OnOverOff are the "on" phase's figures over the "off" phase's.
	OnOverOff onOverOff `json:"on_over_off"`
	Goals     []goal    `json:"goals"`
}

type hotkeysConfig struct {
	Nodes     int     `json:"nodes"`
	Keys      int     `json:"keys"`
	S         float64 `json:"zipf_s"`
	SetRatio  float64 `json:"set_ratio"`
	ValueSize int     `json:"value_size"`
	Conns     int     `json:"conns"`
	Pipeline  int     `json:"pipeline"`
	Warmup    string  `json:"warmup"`
	Duration  string  `json:"duration"`
	MemoryMB  int     `json:"node_memory_mb"`
	Seed      uint64  `json:"seed"`
	Poll      string  `json:"poll"`
	Cached    string  `json:"cached"`
	Proxy     string  `json:"proxy"`
}

type onOverOff struct {
	OpsPerSec       float64 `json:"ops_per_sec"`
	P99             float64 `json:"p99"`
	NodeMaxOverMean float64 `json:"node_max_over_mean"`
}

// goal is a target and whether the run met it.
type goal struct {
	Goal  string  `json:"goal"`
	Value float64 `json:"value"`
	Met   bool    `json:"met"`
}

func hotkeysCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseHotkeysFlags(args, stderr)
	if err != nil {
		return err
	}
	c := &cluster{o: o, log: stderr}
	defer c.stopAll()
	if err := c.startNodes(ctx); err != nil {
		return err
	}
	lo := o.loadOptions()
	zipf := workload.NewZipfTable(o.keys, o.s)
	rep := &hotkeysReport{Config: hotkeysConfig{
		Nodes: hotkeysNodes, Keys: o.keys, S: o.s, SetRatio: o.setRatio, ValueSize: o.valueSize, Conns: o.conns,
		Pipeline: o.pipeline, Warmup: o.warmup.String(), Duration: o.duration.String(), MemoryMB: o.memoryMB,
		Seed: o.seed, Poll: o.poll.String(), Cached: o.cachedPath, Proxy: o.proxyPath,
	}}
	for i, ph := range []struct {
		name string
		repl bool
		args []string
	}{{"off", false, []string{"-near-cache-mb", "0"}}, {"on", true, nil}} {
		if i > 0 {
			// A fresh proxy (no replicas, zeroed counters) and an empty
			// cluster, so the phases start alike.
			c.stopProxy()
			if err := c.flushAll(ctx); err != nil {
				return err
			}
		}
		if err := c.startProxy(ctx, ph.name, ph.args); err != nil {
			return err
		}
		ks, err := newKeySpace(lo, []string{c.proxy.proc.addr}, zipf)
		if err != nil {
			return err
		}
		t0 := time.Now()
		n, err := prefillThrough(ctx, ks, prefillConns)
		if err != nil {
			return fmt.Errorf("phase %s: %w", ph.name, err)
		}
		fmt.Fprintf(stderr, "cachebench: phase %s: prefilled %d keys through the proxy in %.1fs\n", ph.name, n, time.Since(t0).Seconds())
		res, err := c.measure(ctx, ks)
		if err != nil {
			return fmt.Errorf("phase %s: %w", ph.name, err)
		}
		res.Name, res.Replication, res.Prefilled = ph.name, ph.repl, n
		res.ProxyArgs = append(append([]string{}, ph.args...), strings.Fields(o.proxyArgs)...)
		rep.Phases = append(rep.Phases, res)
		fmt.Fprintf(stderr, "cachebench: phase %s: %.0f ops/s, p99 %s, node max/mean %.3f, edge %.1f%%, top-%d edge %.1f%%, errors %d\n",
			ph.name, res.OpsPerSec, fmtUS(res.Latency.P99), res.NodeMaxOverMean, 100*res.EdgeShare, topKeys, 100*res.TopEdgeShare, res.Errors)
	}
	c.stopAll()
	rep.finish()
	printHotkeys(stdout, o, rep)
	if o.jsonPath != "" {
		return writeJSONFile(o.jsonPath, rep)
	}
	return nil
}

// prefillConns is how many connections set the keys before each phase. The
// proxy serves the requests of one connection one at a time, each a round
// trip to the key's owner, so pipelining alone does not keep it busy; more
// connections than load.go's prefill uses (16) do. On 2 cores, 100,000 keys
// took 6.5 s with 16 connections, 3.5-4 s with 64, and no less with 128.
const prefillConns = 64

// prefillThrough is load.go's prefill with conns connections to the one
// server of ks: it sets every key once in pipelined batches of 100.
func prefillThrough(ctx context.Context, ks *keySpace, conns int) (int64, error) {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex // guards errs
		errs  []error
		total atomic.Int64
	)
	addr := ks.servers[0]
	for c := range conns {
		wg.Go(func() {
			n, err := prefillConn(ctx, ks, addr, 0, c, conns, 100)
			total.Add(n)
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		return total.Load(), fmt.Errorf("prefill %s: %w", addr, errs[0])
	}
	return total.Load(), nil
}

// finish computes the on/off ratios and the goals.
func (rep *hotkeysReport) finish() {
	off, on := rep.Phases[0], rep.Phases[1]
	rep.OnOverOff = onOverOff{
		OpsPerSec:       ratio(on.OpsPerSec, off.OpsPerSec),
		P99:             ratio(on.Latency.P99, off.Latency.P99),
		NodeMaxOverMean: ratio(on.NodeMaxOverMean, off.NodeMaxOverMean),
	}
	rep.Goals = []goal{
		{Goal: fmt.Sprintf("max/mean <= %g with replication on", goalMaxOverMean), Value: on.NodeMaxOverMean,
			Met: on.NodeMaxOverMean > 0 && on.NodeMaxOverMean <= goalMaxOverMean},
		{Goal: fmt.Sprintf(">= %g%% of top-%d reads at the edge", goalTopShare*100, topKeys), Value: on.TopEdgeShare,
			Met: on.TopEdgeShare >= goalTopShare},
	}
}

func writeJSONFile(path string, v any) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := writeJSON(f, v); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// printHotkeys writes the report for people: one column per phase, then
// on/off, then the goal of the row.
func printHotkeys(w io.Writer, o *hotkeysOptions, rep *hotkeysReport) {
	off, on := rep.Phases[0], rep.Phases[1]
	fmt.Fprintf(w, "cachebench hotkeys: %s\n\n", o.describe())
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	// Every row has the same four columns, or tabwriter would align the
	// rows above and below a shorter one separately; the goal is last.
	row := func(name, off, on, onOff, note string) {
		if onOff == "" {
			onOff = "-"
		}
		line := "  " + name + "\t" + off + "\t" + on + "\t" + onOff
		if note != "" {
			line += "\t" + note
		}
		fmt.Fprintln(tw, line)
	}
	pct := func(v float64) string { return fmt.Sprintf("%.1f%%", 100*v) }
	met := func(g goal) string {
		if g.Met {
			return "goal: " + g.Goal + " (met)"
		}
		return "goal: " + g.Goal + " (NOT met)"
	}
	row("", "replication off", "replication on", "on/off", "")
	row("ops/s", fmt.Sprintf("%.0f", off.OpsPerSec), fmt.Sprintf("%.0f", on.OpsPerSec), fmt.Sprintf("%.2f", rep.OnOverOff.OpsPerSec), "")
	row("p99", fmtUS(off.Latency.P99), fmtUS(on.Latency.P99), fmt.Sprintf("%.2f", rep.OnOverOff.P99), "")
	row("p50", fmtUS(off.Latency.P50), fmtUS(on.Latency.P50), fmt.Sprintf("%.2f", ratio(on.Latency.P50, off.Latency.P50)), "")
	row("hit ratio", fmt.Sprintf("%.4f", off.HitRatio), fmt.Sprintf("%.4f", on.HitRatio), "", "")
	row("errors", strconv.FormatInt(off.Errors, 10), strconv.FormatInt(on.Errors, 10), "", "")
	for i := range off.Nodes {
		a, b := off.Nodes[i], on.Nodes[i]
		row(a.Name+" requests", fmt.Sprintf("%d (%s)", a.Requests, pct(a.Share)), fmt.Sprintf("%d (%s)", b.Requests, pct(b.Share)),
			fmt.Sprintf("%.2f", ratio(float64(b.Requests), float64(a.Requests))), "")
	}
	row("node max/mean", fmt.Sprintf("%.3f", off.NodeMaxOverMean), fmt.Sprintf("%.3f", on.NodeMaxOverMean),
		fmt.Sprintf("%.2f", rep.OnOverOff.NodeMaxOverMean), met(rep.Goals[0]))
	row("reads at the edge", pct(off.EdgeShare), pct(on.EdgeShare), "", "edge_hits / cmd_get of the proxy")
	row(fmt.Sprintf("top-%d reads at the edge", topKeys), pct(off.TopEdgeShare), pct(on.TopEdgeShare), "", met(rep.Goals[1]))
	tw.Flush()
	fmt.Fprintf(w, "\n  top-%d keys (replication on): gets sent, edge hits their owners counted\n", topKeys)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	for _, k := range on.Top {
		fmt.Fprintf(tw, "    %d\t%s\t%d gets\t%d edge hits\t%s\t\n", k.Rank, k.Key, k.Gets, k.EdgeHits, pct(k.EdgeShare))
	}
	tw.Flush()
	if on.FirstError != "" || off.FirstError != "" {
		fmt.Fprintf(w, "\n  first error: off %q, on %q\n", off.FirstError, on.FirstError)
	}
}

// clusterNode is a node cachebench started.
type clusterNode struct {
	proc          *serverProc
	name          string
	gossip, admin string
}

// cluster is the nodes and the proxy of the hotkeys command.
type cluster struct {
	o     *hotkeysOptions
	log   io.Writer
	nodes []*clusterNode
	proxy *clusterNode // nil between phases
	procs []*serverProc
	http  http.Client
}

// stopAll kills every process started, proxy first.
func (c *cluster) stopAll() {
	for _, p := range slices.Backward(c.procs) {
		p.stop()
	}
}

func (c *cluster) stopProxy() {
	if c.proxy != nil {
		c.proxy.proc.stop()
		c.proxy = nil
	}
}

// startNodes starts the nodes, each joining the first by gossip, and waits
// until every node's /cluster lists all of them alive.
func (c *cluster) startNodes(ctx context.Context) error {
	c.http.Timeout = time.Second
	var join string
	for i := range hotkeysNodes {
		name := fmt.Sprintf("node%d", i+1)
		p, extra, err := startServerPorts(ctx, name, c.o.cachedPath, 2, func(port int, extra []int) []string {
			gossip := "127.0.0.1:" + strconv.Itoa(extra[0])
			j := join
			if j == "" {
				j = gossip // the first node joins itself, as the compose file's nodes do
			}
			args := []string{"-p", strconv.Itoa(port), "-l", "127.0.0.1", "-name", name, "-gossip", gossip, "-join", j,
				"-admin", "127.0.0.1:" + strconv.Itoa(extra[1]), "-m", strconv.Itoa(c.o.memoryMB)}
			return append(args, strings.Fields(c.o.cachedArgs)...)
		})
		if err != nil {
			return err
		}
		c.procs = append(c.procs, p)
		n := &clusterNode{proc: p, name: name, gossip: "127.0.0.1:" + strconv.Itoa(extra[0]), admin: "127.0.0.1:" + strconv.Itoa(extra[1])}
		c.nodes = append(c.nodes, n)
		if join == "" {
			join = n.gossip
		}
		fmt.Fprintf(c.log, "cachebench: started %s pid %d on %s (gossip %s, admin %s)\n", name, p.cmd.Process.Pid, p.addr, n.gossip, n.admin)
	}
	return c.waitFor(ctx, c.nodes, "every node to see "+strconv.Itoa(hotkeysNodes)+" alive members", func() error {
		for _, n := range c.nodes {
			if err := c.clusterReady(ctx, n); err != nil {
				return fmt.Errorf("%s: %w", n.name, err)
			}
		}
		return nil
	})
}

// clusterReady checks a node's admin /readyz and /cluster.
func (c *cluster) clusterReady(ctx context.Context, n *clusterNode) error {
	if code, _, err := c.get(ctx, "http://"+n.admin+"/readyz"); err != nil || code != http.StatusOK {
		return fmt.Errorf("/readyz: %d %v", code, err)
	}
	code, body, err := c.get(ctx, "http://"+n.admin+"/cluster")
	if err != nil || code != http.StatusOK {
		return fmt.Errorf("/cluster: %d %v", code, err)
	}
	var info struct {
		Members []struct {
			Name  string `json:"name"`
			State string `json:"state"`
		} `json:"members"`
	}
	if err := json.Unmarshal(body, &info); err != nil {
		return fmt.Errorf("/cluster: %w", err)
	}
	alive := 0
	for _, m := range info.Members {
		if m.State == "alive" {
			alive++
		}
	}
	if len(info.Members) != hotkeysNodes || alive != hotkeysNodes {
		return fmt.Errorf("/cluster lists %d members, %d alive", len(info.Members), alive)
	}
	return nil
}

// startProxy starts the proxy with the nodes as seeds and waits until it
// is ready, routes by a ring of every node, and a set and a get through it
// work.
func (c *cluster) startProxy(ctx context.Context, phase string, phaseArgs []string) error {
	seeds := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		seeds[i] = n.proc.addr
	}
	name := "proxy-" + phase
	p, extra, err := startServerPorts(ctx, name, c.o.proxyPath, 1, func(port int, extra []int) []string {
		args := []string{"-p", strconv.Itoa(port), "-l", "127.0.0.1", "-seeds", strings.Join(seeds, ","),
			"-admin", "127.0.0.1:" + strconv.Itoa(extra[0]), "-name", "cachebench-" + phase}
		args = append(args, phaseArgs...)
		return append(args, strings.Fields(c.o.proxyArgs)...)
	})
	if err != nil {
		return err
	}
	c.procs = append(c.procs, p)
	c.proxy = &clusterNode{proc: p, name: name, admin: "127.0.0.1:" + strconv.Itoa(extra[0])}
	fmt.Fprintf(c.log, "cachebench: started %s pid %d on %s (admin %s): %s\n", name, p.cmd.Process.Pid, p.addr,
		c.proxy.admin, strings.Join(p.cmd.Args[1:], " "))
	return c.waitFor(ctx, []*clusterNode{c.proxy}, "the proxy to be ready", func() error { return c.proxyReady(ctx) })
}

const probeKey = "cachebench:hotkeys:probe"

func (c *cluster) proxyReady(ctx context.Context) error {
	switch code, _, err := c.get(ctx, "http://"+c.proxy.admin+"/readyz"); {
	case err != nil:
		return fmt.Errorf("/readyz: %w", err)
	case code != http.StatusOK && code != http.StatusNotFound: // 404: no /readyz, rely on the checks below
		return fmt.Errorf("/readyz: %d", code)
	}
	st, err := fetchStats(ctx, c.proxy.proc.addr, "", c.o.timeout)
	if err != nil {
		return err
	}
	if v, ok := statUint(statMap(st), "ring_members"); ok && v != hotkeysNodes {
		return fmt.Errorf("ring_members %d", v)
	}
	value := strings.Repeat("x", c.o.valueSize)
	for _, cmd := range []struct{ req, want string }{
		{fmt.Sprintf("set %s 0 0 %d\r\n%s\r\n", probeKey, len(value), value), "STORED\r\n"},
		{"get " + probeKey + "\r\n", fmt.Sprintf("VALUE %s 0 %d\r\n%s\r\nEND\r\n", probeKey, len(value), value)},
	} {
		got, err := exchange(ctx, c.proxy.proc.addr, cmd.req, c.o.timeout)
		if err != nil {
			return err
		}
		if got != cmd.want {
			return fmt.Errorf("%q answered %q", cmd.req[:min(len(cmd.req), 40)], got)
		}
	}
	return nil
}

// flushAll sends flush_all to the first node, which broadcasts it.
func (c *cluster) flushAll(ctx context.Context) error {
	got, err := exchange(ctx, c.nodes[0].proc.addr, "flush_all\r\n", c.o.timeout)
	if err != nil {
		return fmt.Errorf("flush_all: %w", err)
	}
	if got != "OK\r\n" {
		return fmt.Errorf("flush_all answered %q", got)
	}
	return nil
}

// waitFor polls check until it returns nil, one of procs exits, ctx ends or
// readyTimeout passes.
func (c *cluster) waitFor(ctx context.Context, procs []*clusterNode, what string, check func() error) error {
	deadline := time.Now().Add(readyTimeout)
	for {
		err := check()
		if err == nil {
			return nil
		}
		for _, n := range procs {
			if n.proc.hasExited() {
				return fmt.Errorf("%s exited (%v) while waiting for %s; output: %q", n.name, n.proc.cmd.ProcessState, what, n.proc.out.String())
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %v waiting for %s: %w", readyTimeout, what, err)
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// get fetches url and returns its status and body.
func (c *cluster) get(ctx context.Context, url string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, body, err
}

// checkAlive returns an error if any process has exited.
func (c *cluster) checkAlive() error {
	for _, n := range append(slices.Clone(c.nodes), c.proxy) {
		if n != nil && n.proc.hasExited() {
			return fmt.Errorf("%s exited (%v); output: %q", n.name, n.proc.cmd.ProcessState, n.proc.out.String())
		}
	}
	return nil
}

// snapshot is the counters of every node and of the proxy at one instant.
type snapshot struct {
	nodes    []map[string]string // each node's "stats"
	hot      []map[string]uint64 // each node's per-key edge_hits ("stats hotkeys")
	nodeEdge []uint64            // each node's total edge_hits ("stats hotkeys")
	proxy    map[string]string   // the proxy's "stats"
}

// snapshot reads every node's stats and stats hotkeys and the proxy's
// stats, all at once.
func (c *cluster) snapshot(ctx context.Context) (*snapshot, error) {
	s := &snapshot{
		nodes: make([]map[string]string, len(c.nodes)), hot: make([]map[string]uint64, len(c.nodes)),
		nodeEdge: make([]uint64, len(c.nodes)),
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex // guards errs
		errs []error
	)
	fail := func(err error) { mu.Lock(); errs = append(errs, err); mu.Unlock() }
	for i, n := range c.nodes {
		wg.Go(func() {
			st, err := fetchStats(ctx, n.proc.addr, "", c.o.timeout)
			if err != nil {
				fail(fmt.Errorf("%s: %w", n.name, err))
				return
			}
			s.nodes[i] = statMap(st)
		})
		wg.Go(func() {
			st, err := fetchStats(ctx, n.proc.addr, "hotkeys", c.o.timeout)
			if err != nil {
				fail(fmt.Errorf("%s: %w", n.name, err))
				return
			}
			s.hot[i] = parseNodeHotkeys(st)
			s.nodeEdge[i], _ = statUint(statMap(st), "edge_hits")
		})
	}
	wg.Go(func() {
		st, err := fetchStats(ctx, c.proxy.proc.addr, "", c.o.timeout)
		if err != nil {
			fail(fmt.Errorf("%s: %w", c.proxy.name, err))
			return
		}
		s.proxy = statMap(st)
	})
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, errors.Join(err, context.Cause(ctx))
	}
	return s, nil
}

// pollHotkeys reads every node's per-key edge_hits.
func (c *cluster) pollHotkeys(ctx context.Context, t *hitTracker) error {
	hot := make([]map[string]uint64, len(c.nodes))
	errs := make([]error, len(c.nodes))
	var wg sync.WaitGroup
	for i, n := range c.nodes {
		wg.Go(func() {
			st, err := fetchStats(ctx, n.proc.addr, "hotkeys", c.o.timeout)
			hot[i], errs[i] = parseNodeHotkeys(st), err
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for i, h := range hot {
		t.observe(i, h)
	}
	return nil
}

// hkWorker drives one connection of load.go's run with the hotkeys
// workload: gets of Zipf keys (the worker's stream), sets of uniform keys,
// and a count of the gets of each of the topKeys hottest keys.
type hkWorker struct {
	w        *worker
	sets     *workload.Uniform
	setRatio float64
	ids      []int
	top      [topKeys]int64 // answered gets of key id i in the current phase
}

// loop is worker.loop with the key choice above and no request budget.
func (h *hkWorker) loop() {
	w := h.w
	defer w.closeConn()
	phase := w.r.phase.Load()
	for {
		ph := w.r.phase.Load()
		if ph == phaseStop {
			return
		}
		if ph != phase {
			phase = ph
			w.st.reset() // the measured phase starts from zero
			h.top = [topKeys]int64{}
		}
		n := w.r.depth
		if w.conn == nil && !w.dial() {
			if w.r.phase.Load() == phaseStop {
				return
			}
			w.st.errors += int64(n) // the proxy is down: these requests fail
			continue
		}
		w.wbuf, w.ops, h.ids = w.wbuf[:0], w.ops[:0], h.ids[:0]
		for range n {
			if float64(w.rng.Uint64()>>11)*0x1p-53 < h.setRatio {
				id := h.sets.Next()
				w.wbuf = w.r.ks.req.appendSet(w.wbuf, id)
				w.ops = append(w.ops, op{})
				h.ids = append(h.ids, id)
				continue
			}
			id := w.stream.Next()
			var ks, ke int
			w.wbuf, ks, ke = w.r.ks.req.appendGet(w.wbuf, id)
			w.ops = append(w.ops, op{get: true, kstart: int32(ks), kend: int32(ke)})
			h.ids = append(h.ids, id)
		}
		done, err := w.roundTrip()
		for i, q := range w.ops[:done] {
			if id := h.ids[i]; q.get && id < topKeys {
				h.top[id]++
			}
		}
		if err != nil {
			w.st.errors += int64(len(w.ops) - done)
			w.noteErr(err)
			w.closeConn()
			if w.r.phase.Load() != phaseStop {
				w.st.reconnects++
			}
		}
	}
}

// measure runs one phase's load through the proxy: warmup, then the
// measured window, with the counters of the nodes and the proxy read at its
// start and end and the nodes' per-key edge hits sampled every poll.
func (c *cluster) measure(ctx context.Context, ks *keySpace) (*hotkeysPhase, error) {
	o := c.o
	r := &run{ks: ks, depth: o.pipeline, stopped: make(chan struct{})}
	if err := r.dial(); err != nil {
		return nil, err
	}
	hws := make([]*hkWorker, len(r.workers))
	var wg sync.WaitGroup
	for i, w := range r.workers {
		hws[i] = &hkWorker{w: w, sets: workload.NewUniform(o.keys, w.seed^0x5e75e75e75), setRatio: o.setRatio, ids: make([]int, 0, o.pipeline)}
		wg.Go(hws[i].loop)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	stop := func() {
		r.stop()
		select {
		case <-done:
		case <-ctx.Done():
		}
		for _, w := range r.workers {
			w.interrupt() // unblocks reads now rather than at the deadline
		}
		<-done
	}
	abort := func(err error) (*hotkeysPhase, error) {
		stop()
		return nil, err
	}
	if o.warmup > 0 {
		select {
		case <-time.After(o.warmup):
		case <-ctx.Done():
			return abort(context.Cause(ctx))
		}
	}
	r.phase.Store(phaseMeasure)
	start := time.Now()
	end := time.After(o.duration)
	before, err := c.snapshot(ctx)
	if err != nil {
		return abort(err)
	}
	tracker := newHitTracker(len(c.nodes))
	for i, h := range before.hot {
		tracker.observe(i, h)
	}
	tick := time.NewTicker(o.poll)
	defer tick.Stop()
	pollErrors := 0
wait:
	for {
		select {
		case <-end:
			break wait
		case <-tick.C:
			if err := c.pollHotkeys(ctx, tracker); err != nil {
				pollErrors++
			}
		case <-ctx.Done():
			return abort(context.Cause(ctx))
		}
	}
	elapsed := time.Since(start)
	stop()
	if err := ctx.Err(); err != nil {
		return nil, context.Cause(ctx)
	}
	after, err := c.snapshot(ctx)
	if err != nil {
		return nil, err
	}
	if err := c.checkAlive(); err != nil {
		return nil, err
	}
	for i, h := range after.hot {
		tracker.observe(i, h)
	}
	var top [topKeys]int64
	for _, h := range hws {
		for i, n := range h.top {
			top[i] += n
		}
	}
	res := r.result(elapsed)
	ph := &hotkeysPhase{
		Seconds: res.Seconds, Ops: res.Ops, OpsPerSec: res.OpsPerSec, Gets: res.Gets, Sets: res.Sets,
		HitRatio: res.HitRatio, Errors: res.Errors, Reconnects: res.Reconnects, FirstError: res.FirstError,
		Latency: res.Latency, PollErrors: pollErrors,
	}
	if err := c.fill(ph, before, after, tracker, top, res.Gets); err != nil {
		return nil, err
	}
	return ph, nil
}

// fill computes the node loads, the edge shares and the top keys of a
// phase from the snapshots at the start and end of its window.
func (c *cluster) fill(ph *hotkeysPhase, before, after *snapshot, t *hitTracker, top [topKeys]int64, gets int64) error {
	var loads []uint64
	for i, n := range c.nodes {
		b, err := nodeRequests(before.nodes[i])
		if err != nil {
			return fmt.Errorf("%s: %w", n.name, err)
		}
		a, err := nodeRequests(after.nodes[i])
		if err != nil {
			return fmt.Errorf("%s: %w", n.name, err)
		}
		d, err := a.sub(b)
		if err != nil {
			return fmt.Errorf("%s: %w", n.name, err)
		}
		ph.Nodes = append(ph.Nodes, nodeLoad{Name: n.name, Addr: n.proc.addr, Requests: d.requests, Gets: d.gets, Sets: d.sets})
		loads = append(loads, d.requests)
		ph.NodeEdgeHits += sat(after.nodeEdge[i], before.nodeEdge[i])
	}
	var total uint64
	for _, l := range loads {
		total += l
	}
	for i := range ph.Nodes {
		ph.Nodes[i].Share = ratio(float64(ph.Nodes[i].Requests), float64(total))
	}
	ph.NodeMaxOverMean = maxOverMean(loads)

	pb, pa := before.proxy, after.proxy
	hitsB, _ := statUint(pb, "edge_hits")
	hitsA, _ := statUint(pa, "edge_hits")
	ph.EdgeHits = sat(hitsA, hitsB)
	getsB, okB := statUint(pb, "cmd_get")
	getsA, okA := statUint(pa, "cmd_get")
	if okA && okB {
		ph.ProxyGets, ph.ProxyGetsFrom = sat(getsA, getsB), "proxy cmd_get"
	} else {
		ph.ProxyGets, ph.ProxyGetsFrom = uint64(gets), "generator"
	}
	ph.EdgeShare = ratio(float64(ph.EdgeHits), float64(ph.ProxyGets))
	ph.EdgeStreams, ph.EdgeReplicas = -1, -1
	if v, ok := statUint(pa, "edge_streams"); ok {
		ph.EdgeStreams = int64(v)
	}
	if v, ok := statUint(pa, "edge_replicas"); ok {
		ph.EdgeReplicas = int64(v)
	}

	for id, n := range top {
		key := workload.Key(id)
		hits := t.total[key]
		ph.Top = append(ph.Top, topKey{Rank: id, Key: key, Gets: n, EdgeHits: hits, EdgeShare: ratio(float64(hits), float64(n))})
		ph.TopGets += n
		ph.TopEdgeHits += hits
	}
	ph.TopEdgeShare = ratio(float64(ph.TopEdgeHits), float64(ph.TopGets))
	return nil
}

// sat is a - b, or 0 if b > a.
func sat(a, b uint64) uint64 {
	if b > a {
		return 0
	}
	return a - b
}

// maxOverMean is the largest load over the mean load, or 0 if there is no
// load.
func maxOverMean(loads []uint64) float64 {
	if len(loads) == 0 {
		return 0
	}
	var sum, hi uint64
	for _, l := range loads {
		sum += l
		hi = max(hi, l)
	}
	if sum == 0 {
		return 0
	}
	return float64(hi) * float64(len(loads)) / float64(sum)
}

// requestCounts are a node's request counters.
type requestCounts struct{ requests, gets, sets uint64 }

// nodeRequests reads the requests a node served from its "stats": cmd_get
// and cmd_set, which it must report, plus touches, deletes, incrs and
// decrs if it reports them.
func nodeRequests(m map[string]string) (requestCounts, error) {
	var rc requestCounts
	var ok bool
	if rc.gets, ok = statUint(m, "cmd_get"); !ok {
		return rc, errors.New("stats has no cmd_get")
	}
	if rc.sets, ok = statUint(m, "cmd_set"); !ok {
		return rc, errors.New("stats has no cmd_set")
	}
	rc.requests = rc.gets + rc.sets
	for _, name := range []string{"cmd_touch", "delete_hits", "delete_misses", "incr_hits", "incr_misses", "decr_hits", "decr_misses"} {
		v, _ := statUint(m, name)
		rc.requests += v
	}
	return rc, nil
}

// sub returns the growth from b to a; a counter that went down means the
// node restarted or its stats were reset, and the window is void.
func (a requestCounts) sub(b requestCounts) (requestCounts, error) {
	if a.requests < b.requests || a.gets < b.gets || a.sets < b.sets {
		return requestCounts{}, fmt.Errorf("request counters went down from %+v to %+v: restarted or reset?", b, a)
	}
	return requestCounts{a.requests - b.requests, a.gets - b.gets, a.sets - b.sets}, nil
}

// stat is one "STAT <name> <value>" line; value may hold spaces.
type stat struct{ name, value string }

// fetchStats sends "stats[ sub]" to addr and reads the reply.
func fetchStats(ctx context.Context, addr, sub string, timeout time.Duration) ([]stat, error) {
	conn, err := dialDeadline(ctx, addr, timeout)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	req := "stats\r\n"
	if sub != "" {
		req = "stats " + sub + "\r\n"
	}
	if _, err := io.WriteString(conn, req); err != nil {
		return nil, err
	}
	return parseStats(bufio.NewReader(conn))
}

// parseStats reads a stats reply up to its END.
func parseStats(br *bufio.Reader) ([]stat, error) {
	var out []stat
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return nil, fmt.Errorf("stats: %w", err)
		}
		line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		if line == "END" {
			return out, nil
		}
		rest, ok := strings.CutPrefix(line, "STAT ")
		if !ok {
			return nil, fmt.Errorf("stats answered %q", line)
		}
		name, value, _ := strings.Cut(rest, " ")
		if name == "" {
			return nil, fmt.Errorf("stats answered %q", line)
		}
		out = append(out, stat{name, value})
	}
}

// statMap indexes stats by name; a repeated name keeps its last value.
func statMap(st []stat) map[string]string {
	m := make(map[string]string, len(st))
	for _, s := range st {
		m[s.name] = s.value
	}
	return m
}

// statUint returns a counter, and whether it is there and a number.
func statUint(m map[string]string, name string) (uint64, bool) {
	v, err := strconv.ParseUint(m[name], 10, 64)
	return v, err == nil
}

// parseNodeHotkeys reads the per-key edge hits of a node's "stats hotkeys":
// lines "STAT hotkey <key> reads_per_s=<r> served=<s> edge_hits=<n>". A line
// without a readable edge_hits is left out.
func parseNodeHotkeys(st []stat) map[string]uint64 {
	out := make(map[string]uint64)
	for _, s := range st {
		if s.name != "hotkey" {
			continue
		}
		f := strings.Fields(s.value)
		if len(f) == 0 {
			continue
		}
		for _, kv := range f[1:] {
			if v, ok := strings.CutPrefix(kv, "edge_hits="); ok {
				if n, err := strconv.ParseUint(v, 10, 64); err == nil {
					out[f[0]] = n
				}
			}
		}
	}
	return out
}

// hitTracker sums, per key, the edge hits the nodes count for their
// replicated keys over a window, from samples of each node's per-key
// counters. A node's counter for a key starts at zero when the key is
// pushed and vanishes when its replica is dropped; see addHits.
type hitTracker struct {
	last  []map[string]uint64 // per node, the previous sample; nil before the first
	total map[string]uint64
}

func newHitTracker(nodes int) *hitTracker {
	return &hitTracker{last: make([]map[string]uint64, nodes), total: map[string]uint64{}}
}

// observe takes a sample of node's counters. The first is the baseline.
func (t *hitTracker) observe(node int, cur map[string]uint64) {
	if prev := t.last[node]; prev != nil {
		addHits(t.total, prev, cur)
	}
	t.last[node] = cur
}

// addHits adds to total the hits each key gained between two samples of
// one node's per-key counters, prev and cur:
//   - a key in both that grew gained the difference;
//   - a key whose counter went down was re-pushed in between (its counter
//     restarted from zero): it gained its current value;
//   - a key only in cur was pushed in between: it gained its current value;
//   - a key only in prev was dropped: what it gained after prev is lost.
//
// A key dropped and re-pushed in between whose new count passed its old one
// looks like growth and is undercounted; sampling often keeps that rare.
func addHits(total, prev, cur map[string]uint64) {
	for k, n := range cur {
		if p, ok := prev[k]; ok && n >= p {
			total[k] += n - p
		} else {
			total[k] += n
		}
	}
}

// exchange sends req to addr and reads the reply: lines up to one that
// ends a reply (END, STORED, OK, ... or an error). Values must not hold
// such a line.
func exchange(ctx context.Context, addr, req string, timeout time.Duration) (string, error) {
	conn, err := dialDeadline(ctx, addr, timeout)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, req); err != nil {
		return "", err
	}
	br := bufio.NewReader(conn)
	var reply strings.Builder
	for {
		line, err := br.ReadString('\n')
		reply.WriteString(line)
		if err != nil {
			return reply.String(), err
		}
		switch l := strings.TrimSuffix(line, "\r\n"); l {
		case "END", "STORED", "NOT_STORED", "EXISTS", "NOT_FOUND", "OK":
			return reply.String(), nil
		default:
			if errorReply([]byte(l)) {
				return reply.String(), nil
			}
		}
	}
}

// dialDeadline dials addr and sets a deadline of timeout on the connection;
// ctx ending closes it.
func dialDeadline(ctx context.Context, addr string, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if err := conn.SetDeadline(time.Now().Add(timeout)); err != nil {
		conn.Close()
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	return &ctxConn{Conn: conn, stop: stop}, nil
}

// ctxConn is a connection that stops its context watch when closed.
type ctxConn struct {
	net.Conn
	stop func() bool
}

func (c *ctxConn) Close() error { c.stop(); return c.Conn.Close() }
