package main

// Front ends that compare starts with their backends: twemproxy
// (nutcracker) over memcached processes, and our cluster (nodes and one
// proxy, as the hotkeys command starts them).

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// frontendBackends is how many memcached processes twemproxy fronts, and
// how many nodes our cluster has: the same, so that the two compare alike.
const frontendBackends = hotkeysNodes

// nutcrackerConfig is a twemproxy configuration with one pool that listens
// on listen and spreads keys over servers (host:port) by ketama consistent
// hashing of fnv1a_64 hashes, the configuration twemproxy's README
// recommends for memcached. Every server has weight 1; hosts are never
// ejected (a benchmark must not hide a failing backend); one connection per
// server, twemproxy's default, which it pipelines.
func nutcrackerConfig(listen string, servers []string, timeout time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "hotcache:\n")
	fmt.Fprintf(&b, "  listen: %s\n", listen)
	fmt.Fprintf(&b, "  hash: fnv1a_64\n")
	fmt.Fprintf(&b, "  distribution: ketama\n")
	fmt.Fprintf(&b, "  timeout: %d\n", timeout.Milliseconds())
	fmt.Fprintf(&b, "  preconnect: true\n")
	fmt.Fprintf(&b, "  auto_eject_hosts: false\n")
	fmt.Fprintf(&b, "  server_connections: 1\n")
	fmt.Fprintf(&b, "  servers:\n")
	for i, s := range servers {
		fmt.Fprintf(&b, "   - %s:1 mc%d\n", s, i+1)
	}
	return b.String()
}

// startTwemproxy starts frontendBackends memcached processes and one
// nutcracker in front of them, with its configuration in dir. It returns
// every process it started, nutcracker last, even on error, so that the
// caller stops them.
func startTwemproxy(ctx context.Context, nutcracker, memcached string, threads int, dir string, timeout time.Duration, log io.Writer) (procs []*serverProc, backends []string, err error) {
	for i := range frontendBackends {
		name := fmt.Sprintf("twemproxy-mc%d", i+1)
		p, err := startServer(ctx, name, memcached, memcachedArgs(threads))
		if err != nil {
			return procs, nil, err
		}
		fmt.Fprintf(log, "cachebench: started %s pid %d on %s\n", name, p.cmd.Process.Pid, p.addr)
		procs = append(procs, p)
		backends = append(backends, p.addr)
	}
	conf := filepath.Join(dir, "nutcracker.yml")
	p, _, err := startServerPorts(ctx, "twemproxy", nutcracker, 1, func(port int, extra []int) []string {
		listen := "127.0.0.1:" + strconv.Itoa(port)
		if werr := os.WriteFile(conf, []byte(nutcrackerConfig(listen, backends, timeout)), 0o644); werr != nil {
			return []string{"-c", "/nonexistent/" + werr.Error()} // fails to start, with the reason in its output
		}
		return []string{"-c", conf, "-s", strconv.Itoa(extra[0]), "-a", "127.0.0.1"}
	})
	if err != nil {
		return procs, nil, err
	}
	fmt.Fprintf(log, "cachebench: started twemproxy pid %d on %s (%s, ketama over %s)\n", p.cmd.Process.Pid, p.addr, conf, strings.Join(backends, ","))
	return append(procs, p), backends, nil
}

// startCluster starts our cluster as the hotkeys command does (3 nodes, one
// proxy with its default flags plus proxyArgs) and returns its processes,
// proxy last, and the nodes' memcache addresses.
func startCluster(ctx context.Context, cached, proxy, cachedArgs, proxyArgs string, memoryMB, valueSize int, timeout time.Duration, log io.Writer) ([]*serverProc, []string, error) {
	c := &cluster{o: &hotkeysOptions{
		cachedPath: cached, proxyPath: proxy, cachedArgs: cachedArgs, proxyArgs: proxyArgs,
		memoryMB: memoryMB, valueSize: valueSize, timeout: timeout,
	}, log: log}
	err := c.startNodes(ctx)
	if err == nil {
		err = c.startProxy(ctx, "compare", nil)
	}
	var nodes []string
	for _, n := range c.nodes {
		nodes = append(nodes, n.proc.addr)
	}
	return c.procs, nodes, err
}
