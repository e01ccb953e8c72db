// Command cacheproxy is the edge: a memcache text front end on :11311 that
// routes each key straight to its owner by the cluster's ring, and answers
// reads of hot keys from the replicas the owners push to it. It is a
// protocol.Server whose Handler is the Go client's (client.NewHandler), so
// it shares routing, failover and the near cache with applications that
// embed the client. Its flags mirror cached's where they overlap.
package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"github.com/hotcache/hotcache/internal/cliflag"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hotcache/hotcache/client"
	"github.com/hotcache/hotcache/internal/tlsconf"
	"github.com/hotcache/hotcache/protocol"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func main() {
	err := run(os.Args[1:], os.Stderr)
	var ue usageError
	switch {
	case err == nil:
	case errors.As(err, &ue):
		fmt.Fprintln(os.Stderr, "cacheproxy:", err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "cacheproxy:", err)
		os.Exit(1)
	}
}

// usageError is a bad command line: the process exits with status 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// options are the parsed command line.
type options struct {
	port, listen string
	seeds        []string
	admin        string
	maxConns     int
	maxItemSize  cliflag.ByteSize
	verbose      cliflag.Verbosity
	name         string
	nearCacheMB  int
	heartbeat    time.Duration
	idleTimeout  time.Duration
	blockTimeout time.Duration
	drainTimeout time.Duration
	logFormat    string
	tls          tlsconf.Files // -tls-cert, -tls-key, -tls-ca
	authFile     string        // -Y
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{maxItemSize: cliflag.ByteSize(protocol.DefaultMaxItemSize)}
	fs := flag.NewFlagSet("cacheproxy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var seeds string
	fs.StringVar(&o.port, "p", "11311", "TCP port to listen on")
	fs.StringVar(&o.listen, "l", "", "interface to listen on (default: all)")
	fs.StringVar(&seeds, "seeds", "", "memcache addresses of seed nodes, comma-separated (required)")
	fs.StringVar(&o.admin, "admin", "127.0.0.1:9101", "admin HTTP address (/healthz /readyz /metrics /hotkeys /debug/pprof); empty: none")
	fs.IntVar(&o.maxConns, "c", protocol.DefaultMaxConns, "max simultaneous client connections")
	fs.Var(&o.maxItemSize, "I", "max item size, e.g. 1m, 512k (default 1m)")
	fs.Var(&o.verbose, "v", "verbose (repeat or use -vv for more)")
	fs.Var(cliflag.VerbosityAlias{V: &o.verbose, Level: 2}, "vv", "very verbose")
	fs.StringVar(&o.name, "name", defaultName(), "edge name on the nodes' watch streams")
	fs.IntVar(&o.nearCacheMB, "near-cache-mb", 32, "near cache of hot-key replicas, in MiB; 0 disables it")
	fs.DurationVar(&o.heartbeat, "heartbeat", client.DefaultHeartbeat, "how often watch streams to nodes are pinged and replica hits reported")
	fs.DurationVar(&o.idleTimeout, "idle-timeout", 0, "close connections idle this long (0: never)")
	fs.DurationVar(&o.blockTimeout, "block-timeout", protocol.DefaultBlockTimeout, "close a connection whose data block takes longer than this to arrive")
	fs.DurationVar(&o.drainTimeout, "drain-timeout", 4*time.Second, "on SIGINT/SIGTERM, how long open connections may finish")
	fs.StringVar(&o.logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&o.tls.Cert, "tls-cert", "", "PEM certificate chain: serve memcache over TLS only (with -tls-key), speak TLS to the nodes, and present it to them as client certificate")
	fs.StringVar(&o.authFile, "Y", "", "memcached's ASCII authentication: a `file` of user:password lines; clients must authenticate, and the proxy authenticates to the nodes as the first user")
	fs.StringVar(&o.tls.Key, "tls-key", "", "PEM private key of -tls-cert")
	fs.StringVar(&o.tls.CA, "tls-ca", "", "PEM CA certificates: require client certificates signed by them (mutual TLS), and verify the nodes' certificates with them")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, usageError{err}
	}
	bad := func(format string, a ...any) (*options, error) {
		return nil, usageError{fmt.Errorf(format, a...)}
	}
	switch o.seeds = cliflag.SplitList(seeds); {
	case fs.NArg() > 0:
		return bad("unexpected argument %q", fs.Arg(0))
	case len(o.seeds) == 0:
		return bad("-seeds is required: the memcache addresses (host:port) of one or more cache nodes, e.g. -seeds node1:11211,node2:11211")
	case o.nearCacheMB < 0:
		return bad("-near-cache-mb must not be negative (0 disables the near cache)")
	case o.maxConns <= 0:
		return bad("-c must be positive")
	case o.heartbeat <= 0:
		return bad("-heartbeat must be positive")
	case o.logFormat != "text" && o.logFormat != "json":
		return bad("-log-format must be text or json, not %q", o.logFormat)
	case o.tls.Enabled() && (o.tls.Cert == "" || o.tls.Key == ""):
		return bad("TLS needs -tls-cert and -tls-key (and -tls-ca for nodes with their own CA or for client certificates)")
	}
	for _, s := range o.seeds {
		if _, _, err := net.SplitHostPort(s); err != nil {
			return bad("-seeds: %q is not host:port", s)
		}
	}
	return o, nil
}

func run(args []string, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	logger := newLogger(stderr, o.logFormat, int(o.verbose))
	p, err := start(o, logger)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var serveErr error
	select {
	case <-ctx.Done():
	case <-p.served:
		serveErr = p.serveErr
		logger.Error("memcache listener failed", "err", serveErr)
	}
	logger.Info("shutting down", "drain_timeout", o.drainTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), o.drainTimeout)
	defer cancel()
	if err := p.shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return serveErr
}

// proxy is a running cacheproxy: the client, the memcache server with the
// client's handler, and the admin HTTP server.
type proxy struct {
	log      *slog.Logger
	c        *client.Client
	h        *client.Handler
	srv      *protocol.Server
	ln       net.Listener
	admin    *http.Server
	adminLn  net.Listener
	served   chan struct{} // closed when srv.Serve returned, with serveErr
	serveErr error
	draining atomic.Bool
	latency  *latency
}

// start listens on the memcache and admin addresses and serves them.
func start(o *options, logger *slog.Logger) (p *proxy, err error) {
	p = &proxy{log: logger, served: make(chan struct{})}
	defer func() {
		if err != nil {
			p.closeAll()
		}
	}()
	var serverTLS, nodeTLS *tls.Config
	if o.tls.Enabled() {
		if serverTLS, err = tlsconf.Server(o.tls); err != nil {
			return nil, err
		}
		if nodeTLS, err = tlsconf.Client(o.tls); err != nil {
			return nil, err
		}
	}
	var auth *protocol.AuthFile
	if o.authFile != "" {
		if auth, err = protocol.LoadAuthFile(o.authFile); err != nil {
			return nil, err
		}
	}
	if p.ln, err = net.Listen("tcp", net.JoinHostPort(o.listen, o.port)); err != nil {
		return nil, err
	}
	if serverTLS != nil {
		p.ln = tls.NewListener(p.ln, serverTLS)
	}
	if o.admin != "" {
		if p.adminLn, err = net.Listen("tcp", o.admin); err != nil {
			return nil, fmt.Errorf("admin: %w", err)
		}
	}
	nearCache := int64(o.nearCacheMB) << 20
	if o.nearCacheMB == 0 {
		nearCache = -1 // the client's "disabled"; its zero means the default
	}
	ccfg := client.Config{Seeds: o.seeds, Name: o.name, NearCacheBytes: nearCache, Heartbeat: o.heartbeat, Logger: logger, TLS: nodeTLS}
	if auth != nil {
		ccfg.Username, ccfg.Password = auth.First()
	}
	if p.c, err = client.New(ccfg); err != nil {
		return nil, err
	}
	p.srv = &protocol.Server{MaxItemSize: int(o.maxItemSize), MaxConns: o.maxConns, IdleTimeout: o.idleTimeout, BlockTimeout: o.blockTimeout, Logger: logger}
	if auth != nil {
		p.srv.Authenticate = auth.Check
	}
	p.h = client.NewHandler(p.c, client.HandlerOptions{
		ServerStats: p.srv.Stats(),
		MaxConns:    o.maxConns,
		MaxItemSize: int(o.maxItemSize),
	})
	p.latency = newLatency(o.name)
	p.srv.Handler = timedHandler{p.h, p.latency}
	ln := p.ln
	go func() {
		p.serveErr = p.srv.Serve(ln)
		close(p.served)
	}()
	go p.watchRejections(o.maxConns, logInterval)
	if p.adminLn != nil {
		p.admin = p.newAdminServer(o.name)
		adminLn := p.adminLn
		go p.admin.Serve(adminLn)
	}
	logger.Info("serving memcache", "name", o.name, "addr", p.ln.Addr().String(), "seeds", strings.Join(o.seeds, ","),
		"admin", p.adminAddr(), "near_cache_mb", o.nearCacheMB, "tls", serverTLS != nil, "auth", auth != nil)
	return p, nil
}

// adminAddr is the admin listener's address, or "" without one.
func (p *proxy) adminAddr() string {
	if p.adminLn == nil {
		return ""
	}
	return p.adminLn.Addr().String()
}

// closeAll releases what a failed start had opened.
func (p *proxy) closeAll() {
	if p.ln != nil {
		p.ln.Close()
	}
	if p.adminLn != nil {
		p.adminLn.Close()
	}
	if p.c != nil {
		p.c.Close()
	}
}

// shutdown drains: /readyz turns 503, the memcache server stops accepting
// and lets each connection finish its request (until ctx ends), then the
// client and the admin server close.
func (p *proxy) shutdown(ctx context.Context) error {
	p.draining.Store(true)
	err := p.srv.Shutdown(ctx)
	<-p.served
	if serr := p.serveErr; serr != nil && !errors.Is(serr, protocol.ErrServerClosed) && err == nil {
		err = serr
	}
	p.c.Close()
	if p.admin != nil {
		p.admin.Close()
	}
	return err
}

// ready reports whether the proxy can route: it has a ring and is not
// draining.
func (p *proxy) ready() bool { return !p.draining.Load() && p.c.Ring() != nil }

// hotkey is one replica in /hotkeys.
type hotkey struct {
	Key     string `json:"key"`
	Node    string `json:"node"`
	Bytes   int    `json:"bytes"`
	Hits    uint64 `json:"hits"`
	LeaseMS int64  `json:"lease_ms"`
}

func (p *proxy) newAdminServer(name string) *http.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if !p.ready() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready\n"))
	})
	mux.HandleFunc("GET /hotkeys", func(w http.ResponseWriter, r *http.Request) {
		out := []hotkey{}
		for _, rep := range p.c.Replicas() {
			out = append(out, hotkey{Key: rep.Key, Node: rep.Node, Bytes: rep.Bytes, Hits: rep.Hits, LeaseMS: rep.LeaseLeft.Milliseconds()})
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(out)
	})
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), p.collector(name))
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
}

// proxyCollector reads the handler's and the near cache's counters at
// scrape time, so metrics cost the request path nothing.
type proxyCollector struct {
	p                                           *proxy
	commands, requests, ownerErrors, errReplies *prometheus.Desc
	conns, rejected, members                    *prometheus.Desc
	edgeReplicas, edgeBytes, edgeStreams        *prometheus.Desc
	edgeCounters                                []edgeCounter
}

// edgeCounter is one near-cache counter exported as a Prometheus counter.
type edgeCounter struct {
	desc *prometheus.Desc
	get  func(client.EdgeStats) uint64
}

func (p *proxy) collector(name string) *proxyCollector {
	d := func(metric, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(metric, help, labels, prometheus.Labels{"edge": name})
	}
	c := &proxyCollector{
		p:            p,
		commands:     d("cacheproxy_commands_total", "Requests received, by command.", "cmd"),
		requests:     d("cacheproxy_requests_total", "Requests served, by command and result (gets and gats per key).", "cmd", "result"),
		ownerErrors:  d("cacheproxy_owner_errors_total", "Calls whose owner could not be reached or did not answer in time."),
		errReplies:   d("cacheproxy_error_replies_total", "Error replies relayed from nodes."),
		conns:        d("cacheproxy_connections", "Open client connections."),
		rejected:     d("cacheproxy_rejected_connections_total", "Connections refused because -c connections were open."),
		members:      d("cacheproxy_ring_members", "Members in the ring the proxy routes by (0 before the first ring)."),
		edgeReplicas: d("cacheproxy_edge_replicas", "Hot-key replicas held in the near cache."),
		edgeBytes:    d("cacheproxy_edge_bytes", "Accounted size of the near cache's replicas."),
		edgeStreams:  d("cacheproxy_edge_streams", "Replica streams open to nodes."),
	}
	for _, ec := range []struct {
		name, help string
		get        func(client.EdgeStats) uint64
	}{
		{"hits", "Reads answered from a replica.", func(e client.EdgeStats) uint64 { return e.Hits }},
		{"pushes", "Hot items pushed by owners.", func(e client.EdgeStats) uint64 { return e.Pushes }},
		{"renewals", "Replica leases renewed.", func(e client.EdgeStats) uint64 { return e.Renewals }},
		{"invalidations", "Replicas invalidated by writes.", func(e client.EdgeStats) uint64 { return e.Invalidations }},
		{"cools", "Replicas dropped because their key cooled.", func(e client.EdgeStats) uint64 { return e.Cools }},
		{"refreshes", "Refreshes asked of owners.", func(e client.EdgeStats) uint64 { return e.Refreshes }},
		{"expired", "Reads that found a replica past its lease or TTL.", func(e client.EdgeStats) uint64 { return e.Expired }},
		{"dropped", "Replicas dropped because their stream broke or their node left.", func(e client.EdgeStats) uint64 { return e.Dropped }},
		{"refused", "Pushed replicas refused for lack of room.", func(e client.EdgeStats) uint64 { return e.Refused }},
	} {
		c.edgeCounters = append(c.edgeCounters, edgeCounter{d("cacheproxy_edge_"+ec.name+"_total", ec.help), ec.get})
	}
	return c
}

// Describe implements prometheus.Collector.
func (c *proxyCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.commands, c.requests, c.ownerErrors, c.errReplies, c.conns, c.rejected,
		c.members, c.edgeReplicas, c.edgeBytes, c.edgeStreams} {
		ch <- d
	}
	for _, ec := range c.edgeCounters {
		ch <- ec.desc
	}
	c.p.latency.requests.Describe(ch)
}

// Collect implements prometheus.Collector.
func (c *proxyCollector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	s := c.p.h.Stats()
	for cmd, v := range s.Commands {
		counter(c.commands, v, cmd)
	}
	for _, r := range []struct {
		cmd, result string
		v           uint64
	}{
		{"get", "hit", s.GetHits}, {"get", "miss", s.GetMisses},
		{"set", "total", s.CmdSet}, {"touch", "hit", s.TouchHits}, {"touch", "miss", s.TouchMisses},
		{"delete", "hit", s.DeleteHits}, {"delete", "miss", s.DeleteMisses},
		{"incr", "hit", s.IncrHits}, {"incr", "miss", s.IncrMisses},
		{"decr", "hit", s.DecrHits}, {"decr", "miss", s.DecrMisses},
		{"cas", "hit", s.CasHits}, {"cas", "miss", s.CasMisses}, {"cas", "badval", s.CasBadval},
		{"flush_all", "total", s.CmdFlush},
	} {
		counter(c.requests, r.v, r.cmd, r.result)
	}
	counter(c.ownerErrors, s.OwnerErrors)
	counter(c.errReplies, s.ErrorReplies)
	gauge(c.conns, float64(c.p.srv.Stats().CurrConnections.Load()))
	counter(c.rejected, c.p.srv.Stats().RejectedConnections.Load())
	members := 0
	if r := c.p.c.Ring(); r != nil {
		members = r.Len()
	}
	gauge(c.members, float64(members))
	e := c.p.c.EdgeStats()
	gauge(c.edgeReplicas, float64(e.Replicas))
	gauge(c.edgeBytes, float64(e.Bytes))
	gauge(c.edgeStreams, float64(e.Streams))
	for _, ec := range c.edgeCounters {
		counter(ec.desc, ec.get(e))
	}
	c.p.latency.requests.Collect(ch)
}

func newLogger(w io.Writer, format string, verbose int) *slog.Logger {
	level := slog.LevelInfo
	if verbose > 0 {
		level = slog.LevelDebug
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if format == "json" {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(h)
}

// defaultName is "proxy-<host name>", with bytes a stream token cannot hold
// replaced.
func defaultName() string {
	host, _ := os.Hostname()
	host = strings.Map(func(r rune) rune {
		if r <= ' ' || r >= 0x7f {
			return '_'
		}
		return r
	}, host)
	if host == "" {
		host = "unknown"
	}
	return "proxy-" + host[:min(len(host), 64)]
}
