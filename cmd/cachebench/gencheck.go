package main

// The gencheck command: is cachebench the bottleneck? It runs cachebench
// and two independent load generators from libmemcached-tools against the
// same memcached, in alternating rounds, with the workloads matched as
// closely as the tools allow, and reports the throughput and the CPU cost
// of each generator.

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

type gencheckOptions struct {
	memcached, memcslap, memaslap string
	threads                       int
	conns                         int
	perConn                       int
	duration                      time.Duration
	rounds                        int
	jsonPath                      string
}

// genRun is one run of one generator.
type genRun struct {
	Tool      string  `json:"tool"`
	Engine    string  `json:"engine,omitempty"` // cachebench's -engine
	Ops       int64   `json:"ops"`
	Seconds   float64 `json:"seconds"`
	OpsPerSec float64 `json:"ops_per_sec"`
	// CPUSeconds is the generator's user + system CPU time: for cachebench
	// in the measured window, for the other tools over the whole process
	// (memcslap's includes loading its keys, which CPUOps counts too).
	CPUSeconds float64 `json:"cpu_seconds"`
	CPUOps     int64   `json:"cpu_ops"`
	// CPUPer100k is CPU seconds per 100k requests: equally, the cores the
	// generator keeps busy per 100k ops/s.
	CPUPer100k float64 `json:"cpu_per_100k_ops"`
	Command    string  `json:"command"`
}

// genPair is a workload run by another tool and by cachebench with each
// of its engines.
type genPair struct {
	Name     string     `json:"name"`
	Workload string     `json:"workload"`
	Tool     []*genRun  `json:"tool_runs"`
	ToolOps  spread     `json:"tool_ops_per_sec"`
	ToolCPU  float64    `json:"tool_cpu_per_100k_ops"`
	Engines  []*genSide `json:"cachebench"`
}

// genSide is cachebench with one engine on a pair's workload.
type genSide struct {
	Engine string    `json:"engine"`
	Runs   []*genRun `json:"runs"`
	Ops    spread    `json:"ops_per_sec"`
	Ratio  spread    `json:"ratio_rounds"` // over the tool, round by round
	CPU    float64   `json:"cpu_per_100k_ops"`
}

type gencheckReport struct {
	Memcached string     `json:"memcached"`
	Threads   int        `json:"memcached_threads"`
	Conns     int        `json:"conns"`
	Rounds    int        `json:"rounds"`
	Pairs     []*genPair `json:"pairs"`
}

func parseGencheck(args []string, stderr io.Writer) (*gencheckOptions, error) {
	o := &gencheckOptions{}
	fs := flag.NewFlagSet("cachebench gencheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.memcached, "memcached", "/usr/bin/memcached", "memcached binary")
	fs.StringVar(&o.memcslap, "memcslap", "/usr/bin/memcslap", "memcslap binary (libmemcached-tools); empty to skip")
	fs.StringVar(&o.memaslap, "memaslap", "/usr/bin/memcaslap", "memaslap binary (Debian calls it memcaslap); empty to skip")
	fs.IntVar(&o.threads, "memcached-threads", 2, "memcached -t")
	fs.IntVar(&o.conns, "conns", 50, "connections (memcslap threads, memaslap concurrency, cachebench -conns)")
	fs.IntVar(&o.perConn, "gets", 4000, "memcslap: gets per thread (-e); cachebench sends as many in all")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "memaslap -t and the matching cachebench -duration")
	fs.IntVar(&o.rounds, "rounds", 3, "rounds; each runs every generator once, the order alternating")
	fs.StringVar(&o.jsonPath, "json", "", "also write the report as JSON to `FILE`")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if o.conns <= 0 || o.perConn <= 0 || o.rounds <= 0 || o.duration < time.Second || o.threads <= 0 {
		return nil, errors.New("-conns, -gets, -rounds and -memcached-threads must be positive, -duration at least 1s")
	}
	if o.memcslap == "" && o.memaslap == "" {
		return nil, errors.New("nothing to compare with: -memcslap and -memaslap are both empty")
	}
	return o, nil
}

var (
	memcslapRE = regexp.MustCompile(`Time to get\s+(\d+) keys by\s+(\d+) threads:\s+([0-9.]+) seconds`)
	memaslapRE = regexp.MustCompile(`Run time: ([0-9.]+)s Ops: (\d+) TPS: (\d+)`)
)

// parseMemcslap reads the gets and their seconds from memcslap's output.
func parseMemcslap(out string) (gets int64, secs float64, err error) {
	m := memcslapRE.FindStringSubmatch(out)
	if m == nil {
		return 0, 0, fmt.Errorf("no \"Time to get\" line in memcslap's output %q", out)
	}
	gets, _ = strconv.ParseInt(m[1], 10, 64)
	secs, _ = strconv.ParseFloat(m[3], 64)
	if secs <= 0 {
		return 0, 0, fmt.Errorf("memcslap took %v s", secs)
	}
	return gets, secs, nil
}

// parseMemaslap reads the last "Run time: ... Ops: ... TPS: ..." line.
func parseMemaslap(out string) (ops int64, secs float64, err error) {
	all := memaslapRE.FindAllStringSubmatch(out, -1)
	if all == nil {
		return 0, 0, fmt.Errorf("no \"Run time\" line in memaslap's output %q", out)
	}
	m := all[len(all)-1]
	secs, _ = strconv.ParseFloat(m[1], 64)
	ops, _ = strconv.ParseInt(m[2], 10, 64)
	if secs <= 0 {
		return 0, 0, fmt.Errorf("memaslap ran %v s", secs)
	}
	return ops, secs, nil
}

// runTool runs an external generator and returns its output and CPU time.
func runTool(ctx context.Context, path string, args ...string) (string, float64, string, error) {
	cmd := exec.CommandContext(ctx, path, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	line := path + " " + strings.Join(args, " ")
	if err := cmd.Run(); err != nil {
		return out.String(), 0, line, fmt.Errorf("%s: %w: %s", line, err, out.String())
	}
	ps := cmd.ProcessState
	return out.String(), (ps.UserTime() + ps.SystemTime()).Seconds(), line, nil
}

func gencheckCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseGencheck(args, stderr)
	if err != nil {
		return err
	}
	mc, err := startServer(ctx, "memcached", o.memcached, memcachedArgs(o.threads))
	if err != nil {
		return err
	}
	defer mc.stop()
	fmt.Fprintf(stderr, "cachebench: started memcached pid %d on %s\n", mc.cmd.Process.Pid, mc.addr)
	rep := &gencheckReport{Memcached: o.memcached, Threads: o.threads, Conns: o.conns, Rounds: o.rounds}

	// Pair 1: memcslap gets. It loads -e keys with values of random size
	// (measured below) and then each of its threads gets -e of them; the
	// cachebench side gets the same number of keys, prefilled with sizes
	// drawn from 10-5000 bytes, over as many connections.
	type side struct {
		pair *genPair
		tool func() (*genRun, error)
		ours func(engine string) (*genRun, error)
	}
	var sides []side
	if o.memcslap != "" {
		p := &genPair{Name: "memcslap", Workload: fmt.Sprintf("gets, %d keys", o.perConn)}
		lo := &loadOptions{conns: o.conns, pipelines: []int{1}, getWeight: 1, keys: o.perConn, dist: "uniform",
			valueSize: 10, valueMax: 5000, requests: int64(o.conns * o.perConn), seed: 1, timeout: 5 * time.Second, route: routeHash}
		ks, err := newKeySpace(lo, []string{mc.addr}, nil)
		if err != nil {
			return err
		}
		if _, err := prefill(ctx, ks); err != nil {
			return err
		}
		sides = append(sides, side{p,
			func() (*genRun, error) {
				out, cpu, line, err := runTool(ctx, o.memcslap, "-s", mc.addr, "-c", strconv.Itoa(o.conns), "-e", strconv.Itoa(o.perConn), "-t", "get")
				if err != nil {
					return nil, err
				}
				gets, secs, err := parseMemcslap(out)
				if err != nil {
					return nil, err
				}
				loaded := int64(o.perConn)
				return &genRun{Tool: "memcslap", Ops: gets, Seconds: secs, OpsPerSec: float64(gets) / secs, CPUSeconds: cpu,
					CPUOps: gets + loaded, CPUPer100k: cpu / float64(gets+loaded) * 1e5, Command: line}, nil
			},
			func(engine string) (*genRun, error) { return ourRun(ctx, ks, lo, engine) },
		})
	}
	if o.memaslap != "" {
		p := &genPair{Name: "memaslap", Workload: fmt.Sprintf("90:10, 100 B values, %v", o.duration)}
		lo := &loadOptions{conns: o.conns, pipelines: []int{1}, getWeight: 9, setWeight: 1, keys: 100_000, dist: "uniform",
			valueSize: 100, duration: o.duration, seed: 2, timeout: 5 * time.Second, route: routeHash}
		ks, err := newKeySpace(lo, []string{mc.addr}, nil)
		if err != nil {
			return err
		}
		if _, err := prefill(ctx, ks); err != nil {
			return err
		}
		secs := strconv.Itoa(int(o.duration.Seconds())) + "s"
		sides = append(sides, side{p,
			func() (*genRun, error) {
				out, cpu, line, err := runTool(ctx, o.memaslap, "-s", mc.addr, "-T", "2", "-c", strconv.Itoa(o.conns), "-X", "100", "-t", secs)
				if err != nil {
					return nil, err
				}
				ops, s, err := parseMemaslap(out)
				if err != nil {
					return nil, err
				}
				return &genRun{Tool: "memaslap", Ops: ops, Seconds: s, OpsPerSec: float64(ops) / s, CPUSeconds: cpu,
					CPUOps: ops, CPUPer100k: cpu / float64(ops) * 1e5, Command: line}, nil
			},
			func(engine string) (*genRun, error) { return ourRun(ctx, ks, lo, engine) },
		})
	}
	engines := []string{engineGo}
	if epollAvailable {
		engines = append(engines, engineEpoll)
	}
	for _, s := range sides {
		for _, e := range engines {
			s.pair.Engines = append(s.pair.Engines, &genSide{Engine: e})
		}
	}
	for r := range o.rounds {
		for _, s := range sides {
			// The tool, then each engine; every other round the reverse.
			steps := []func() (*genRun, error){s.tool}
			for _, e := range s.pair.Engines {
				steps = append(steps, func() (*genRun, error) { return s.ours(e.Engine) })
			}
			if r%2 == 1 {
				slices.Reverse(steps)
			}
			for _, f := range steps {
				g, err := f()
				if err != nil {
					return err
				}
				if g.Tool == "cachebench" {
					for _, e := range s.pair.Engines {
						if e.Engine == g.Engine {
							e.Runs = append(e.Runs, g)
						}
					}
				} else {
					s.pair.Tool = append(s.pair.Tool, g)
				}
				fmt.Fprintf(stderr, "cachebench: gencheck round %d/%d %-9s %-10s %-5s %9.0f ops/s  %.2f CPU s per 100k requests\n",
					r+1, o.rounds, s.pair.Name, g.Tool, g.Engine, g.OpsPerSec, g.CPUPer100k)
			}
		}
	}
	for _, s := range sides {
		s.pair.finish()
		rep.Pairs = append(rep.Pairs, s.pair)
	}
	printGencheck(stdout, rep)
	if o.jsonPath != "" {
		return writeJSONFile(o.jsonPath, rep)
	}
	return nil
}

// ourRun is one cachebench run of the workload on ks with an engine.
func ourRun(ctx context.Context, ks *keySpace, lo *loadOptions, engine string) (*genRun, error) {
	lo.engine = engine
	res, err := runLoad(ctx, ks, 1)
	if err != nil {
		return nil, err
	}
	if res.Errors > 0 {
		return nil, fmt.Errorf("cachebench: %d errors (%s)", res.Errors, res.FirstError)
	}
	return &genRun{Tool: "cachebench", Engine: engine, Ops: res.Ops, Seconds: res.Seconds, OpsPerSec: res.OpsPerSec, CPUSeconds: res.CPUSeconds,
		CPUOps: res.Ops, CPUPer100k: res.CPUSeconds / float64(max(1, res.Ops)) * 1e5,
		Command: "cachebench -servers " + strings.Join(ks.servers, ",") + " " + lo.flagsString()}, nil
}

// flagsString is the run command line of a workload built in code.
func (o *loadOptions) flagsString() string {
	length := "-duration " + o.duration.String()
	if o.requests > 0 {
		length = "-requests " + strconv.FormatInt(o.requests, 10)
	}
	return fmt.Sprintf("-engine %s -conns %d -pipeline 1 -ratio %s -keys %d -dist %s -value-size %s %s -warmup 0 -prefill",
		o.engine, o.conns, o.ratioString(), o.keys, o.dist, o.sizeString(), length)
}

func (p *genPair) finish() {
	var tool, tc []float64
	for _, t := range p.Tool {
		tool = append(tool, t.OpsPerSec)
		tc = append(tc, t.CPUPer100k)
	}
	p.ToolOps, p.ToolCPU = spreadOf(tool), spreadOf(tc).Median
	for _, e := range p.Engines {
		var ops, rs, cpu []float64
		for i, g := range e.Runs {
			ops = append(ops, g.OpsPerSec)
			cpu = append(cpu, g.CPUPer100k)
			if i < len(p.Tool) {
				rs = append(rs, ratio(g.OpsPerSec, p.Tool[i].OpsPerSec))
			}
		}
		e.Ops, e.Ratio, e.CPU = spreadOf(ops), spreadOf(rs), spreadOf(cpu).Median
	}
}

func printGencheck(w io.Writer, rep *gencheckReport) {
	fmt.Fprintf(w, "cachebench gencheck: memcached -t %d, %d connections, %d rounds\n\n", rep.Threads, rep.Conns, rep.Rounds)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  workload\tgenerator\tops/s median [min .. max]\tvs the tool, per round\tCPU s per 100k requests\n")
	for _, p := range rep.Pairs {
		fmt.Fprintf(tw, "  %s\t%s\t%s [%s .. %s]\t-\t%.2f\n", p.Workload, p.Name,
			fmtRate(p.ToolOps.Median), fmtRate(p.ToolOps.Min), fmtRate(p.ToolOps.Max), p.ToolCPU)
		for _, e := range p.Engines {
			fmt.Fprintf(tw, "  \tcachebench -engine %s\t%s [%s .. %s]\t%.2f [%.2f .. %.2f]\t%.2f\n", e.Engine,
				fmtRate(e.Ops.Median), fmtRate(e.Ops.Min), fmtRate(e.Ops.Max), e.Ratio.Median, e.Ratio.Min, e.Ratio.Max, e.CPU)
		}
	}
	tw.Flush()
}
