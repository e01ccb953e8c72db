package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hotcache/hotcache/hotspot"
	"github.com/hotcache/hotcache/internal/connpool"
	"github.com/hotcache/hotcache/protocol"
	"github.com/hotcache/hotcache/ring"
)

// A Node is one cache server: a store, the memcache protocol in front of it
// and, when it has a GossipAddr, membership in a cluster whose ring decides
// which node owns each key. New builds it, Start binds and serves, Shutdown
// leaves the cluster and drains.
type Node struct {
	cfg       Config
	store     *store
	srv       *protocol.Server
	started   time.Time
	verbosity atomic.Int32
	counters  counters
	fwd       forwardCounters
	fakeClock bool              // cfg.Clock was set: Serve asks it the time
	latency   *latency          // request and forward histograms (metrics.go)
	logs      *nodeLogs         // rate-limited logs of repeated events (lograte.go)
	hot       *hotspot.Analyzer // ticked and read by the ring goroutine only
	hotView   atomic.Pointer[hotView]

	view           *view
	members        *membership // nil when standalone
	pool           *connpool.Pool
	probes         *connpool.Pool // the handoff's questions, apart from forwards (handoff.go)
	advertise      string
	adminAdvertise string
	admin          *http.Server
	watchers       watchers // open watch streams; see watch.go
	repl           *replicator
	handoff        handoff
	liveWindow     time.Duration // see liveWindow in cluster.go
	drain          drainSignal   // closed by POST /drain; see drain.go

	mu       sync.Mutex
	ln       net.Listener
	adminLn  net.Listener
	serveErr chan error
	stop     chan struct{}
	wg       sync.WaitGroup
	running  bool
	stopped  bool
}

// New validates cfg and builds a Node. It opens nothing; see Start.
func New(cfg Config) (*Node, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	fake := cfg.Clock != nil
	cfg = cfg.withDefaults()
	n := &Node{cfg: cfg, started: cfg.Clock(), stop: make(chan struct{}), fakeClock: fake,
		latency: newLatency(cfg.Name), logs: newNodeLogs(cfg.Logger)}
	st, err := newStore(int64(cfg.MemoryMB)<<20, n.now)
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	n.store = st
	if n.hot, err = hotspot.New(cfg.HotKeys); err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	n.view = newView(cfg.Name, ring.DefaultPartitionCount)
	n.repl = newReplicator(n, cfg.LeasePeriod)
	n.verbosity.Store(int32(cfg.Verbosity))
	n.srv = &protocol.Server{
		Handler:      n,
		MaxItemSize:  cfg.MaxItemSize,
		MaxConns:     cfg.MaxConns,
		IdleTimeout:  cfg.IdleTimeout,
		BlockTimeout: cfg.BlockTimeout,
		Authenticate: cfg.Authenticate,
		Logger:       cfg.Logger,
	}
	return n, nil
}

var _ protocol.Handler = (*Node)(nil)

func (n *Node) now() int64 { return n.cfg.Clock().Unix() }

// clustered reports whether the node gossips with others.
func (n *Node) clustered() bool { return n.members != nil }

// Start binds the memcache (and admin) addresses, joins the cluster when
// configured, and serves in the background.
func (n *Node) Start() (err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.running || n.stopped {
		return errors.New("node: already started")
	}
	defer func() {
		if err != nil {
			n.closeListeners()
		}
	}()
	if n.ln, err = net.Listen("tcp", n.cfg.Addr); err != nil {
		return fmt.Errorf("node: %w", err)
	}
	if n.cfg.TLS != nil {
		n.ln = tls.NewListener(n.ln, n.cfg.TLS)
	}
	n.advertise = n.cfg.AdvertiseAddr
	if n.advertise == "" {
		n.advertise = n.ln.Addr().String()
	}
	if n.cfg.AdminAddr != "" {
		if n.adminLn, err = net.Listen("tcp", n.cfg.AdminAddr); err != nil {
			return fmt.Errorf("node: admin: %w", err)
		}
		n.adminAdvertise = n.adminLn.Addr().String()
		if n.cfg.AdvertiseAddr != "" {
			host, _, _ := net.SplitHostPort(n.cfg.AdvertiseAddr)
			n.adminAdvertise = advertiseOn(n.adminAdvertise, host)
		}
	}
	if n.cfg.GossipAddr != "" {
		if err := n.startGossip(); err != nil {
			return err
		}
		pcfg := connpool.Config{
			Hello: []byte("peer " + n.cfg.Name + "\r\n"),
			// A vanished peer (SYN dropped) should cost a forward little;
			// afterwards the pool fails fast while it backs off.
			DialTimeout: min(n.cfg.ForwardTimeout, 500*time.Millisecond),
		}
		if n.cfg.PeerTLS != nil {
			pcfg.Dial = connpool.DialTLS(nil, n.cfg.PeerTLS)
		}
		if n.cfg.PeerUser != "" {
			pcfg.Dial = connpool.DialAuth(pcfg.Dial, n.cfg.PeerUser, n.cfg.PeerPassword)
		}
		pool, err := connpool.New(pcfg)
		if err != nil {
			return fmt.Errorf("node: %w", err)
		}
		n.pool = pool
		// The handoff asks its peers every 50-500 ms, also while they are
		// unreachable. Its failed dials must not put the forwards' pool in
		// a redial backoff that outlasts a healed partition, and its own
		// backoff must stay short, so that the first round after the heal
		// gets through.
		qcfg := pcfg
		qcfg.MaxIdle, qcfg.MaxActive = 1, 2
		qcfg.BackoffBase, qcfg.BackoffCap = 10*time.Millisecond, handoffInterval
		if n.probes, err = connpool.New(qcfg); err != nil {
			return fmt.Errorf("node: %w", err)
		}
		n.store.fenced = n.view.fenced
	}
	n.rebuild()
	if len(n.cfg.Join) == 0 {
		// Nobody to join: there was no cluster whose owners this first
		// ring could overlap, so its partitions take writes at once (a
		// node that joins one waits out the lease and the handoff).
		n.view.startAlone(n.cfg.LeasePeriod)
	}
	n.view.lastTick.Store(n.view.mono())
	n.running = true
	n.serveErr = make(chan error, 1)
	ln := n.ln
	go func() { n.serveErr <- n.srv.Serve(ln) }()
	n.wg.Go(func() { n.runView(n.stop) })
	if n.pool != nil {
		n.wg.Go(func() { n.runHandoff(n.stop) })
	} else {
		n.view.confirm(math.MaxInt64, 0, nil) // alone for good: nobody to hand over from
	}
	if n.members != nil {
		n.wg.Go(func() { n.members.rejoinEvery(n.cfg.RejoinInterval, n.cfg.Join, n.stop) })
	}
	if n.adminLn != nil {
		n.admin = n.newAdminServer()
		adminLn := n.adminLn
		n.wg.Go(func() { n.admin.Serve(adminLn) })
	}
	n.cfg.Logger.Info("serving memcache", "name", n.cfg.Name, "addr", n.ln.Addr().String(),
		"advertise", n.advertise, "gossip", n.cfg.GossipAddr, "admin", n.adminAdvertise,
		"memory_mb", n.cfg.MemoryMB, "max_item_size", n.cfg.MaxItemSize)
	return nil
}

func (n *Node) closeListeners() {
	if n.ln != nil {
		n.ln.Close()
	}
	if n.adminLn != nil {
		n.adminLn.Close()
	}
	if n.members != nil {
		n.members.ml.Shutdown()
	}
}

// advertiseOn puts addr's port on host when addr listens on every interface.
func advertiseOn(addr, host string) string {
	h, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(h); h != "" && (ip == nil || !ip.IsUnspecified()) {
		return addr
	}
	return net.JoinHostPort(host, port)
}

// Addr returns the bound memcache address, or "" before Start.
func (n *Node) Addr() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ln == nil {
		return ""
	}
	return n.ln.Addr().String()
}

// AdminAddr returns the bound admin HTTP address, or "".
func (n *Node) AdminAddr() string { return n.adminAdvertise }

// GossipAddr returns the address memberlist listens on, or "" when
// standalone.
func (n *Node) GossipAddr() string {
	if n.members == nil {
		return ""
	}
	ln := n.members.ml.LocalNode()
	return net.JoinHostPort(ln.Addr.String(), fmt.Sprint(ln.Port))
}

// Name returns the node's member name.
func (n *Node) Name() string { return n.cfg.Name }

// Ring returns the node's current ring.
func (n *Node) Ring() *ring.Ring { return n.view.ring.Load() }

// Shutdown leaves the cluster (so peers drop this node at once rather than
// after failure detection), stops accepting, lets open connections finish
// their current request, waits for every goroutine the Node started, and
// releases the store. When ctx ends first, connections are closed at once.
// It is safe to call more than once.
func (n *Node) Shutdown(ctx context.Context) error {
	return n.stopNode(ctx, true)
}

// Close stops the node at once, without leaving the cluster: to its peers it
// looks like a crash. Tests use it to kill nodes.
func (n *Node) Close() error {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := n.stopNode(ctx, false)
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

func (n *Node) stopNode(ctx context.Context, leave bool) error {
	n.mu.Lock()
	if n.stopped {
		n.mu.Unlock()
		return nil
	}
	n.stopped = true
	running := n.running
	n.mu.Unlock()
	if !running {
		n.store.close()
		return nil
	}
	if n.members != nil {
		if leave {
			if err := n.members.ml.Leave(2 * time.Second); err != nil {
				n.cfg.Logger.Warn("leave failed", "err", err)
			}
		}
		n.members.ml.Shutdown()
	}
	close(n.stop)
	err := n.srv.Shutdown(ctx)
	if serr := <-n.serveErr; serr != nil && !errors.Is(serr, protocol.ErrServerClosed) && err == nil {
		err = serr
	}
	if n.admin != nil {
		n.admin.Close()
	}
	n.watchers.close()
	n.wg.Wait()
	if n.probes != nil {
		n.probes.Close()
	}
	if n.pool != nil {
		n.pool.Close()
	}
	n.store.close()
	return err
}
