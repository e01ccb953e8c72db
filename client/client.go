package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/hotcache/hotcache/internal/connpool"
	"github.com/hotcache/hotcache/ring"
)

// A Client talks to a cluster (Config.Seeds) or a fixed list of memcache
// servers (Config.Servers). It is safe for concurrent use. Create it with
// New and stop it with Close.
type Client struct {
	cfg   Config
	pool  *connpool.Pool
	view  atomic.Pointer[view] // nil until the first ring (cluster mode)
	ready chan struct{}        // closed when view is first set
	start time.Time            // origin of watch-stream stamps

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	closed atomic.Bool

	goMu    sync.Mutex     // guards stopped and wg.Add
	stopped bool           // Close has begun: spawn nothing more
	wg      sync.WaitGroup // background goroutines

	mu      sync.Mutex         // guards servers and stream
	servers map[string]*server // by address, kept across rings
	stream  net.Conn           // the open watch stream, closed by Close

	watchStats watchStats
	edge       *edge // the near cache; nil in static mode or when disabled
}

// A view is one ring and the servers its members map to. Views are
// immutable; a ring change swaps in a new one.
type view struct {
	r       *ring.Ring
	gen     uint64
	servers map[string]*server // by member name
}

// owner returns key's owner, or nil for an empty ring.
func (v *view) owner(key string) *server {
	m, ok := v.r.Owner(keyBytes(key))
	if !ok {
		return nil
	}
	return v.servers[m.Name]
}

// keyBytes views key as bytes without copying; the ring only hashes it.
func keyBytes(key string) []byte { return unsafe.Slice(unsafe.StringData(key), len(key)) }

// New returns a Client for cfg. It does not wait for any server: in static
// mode it starts warming connections in the background, in cluster mode it
// starts the watch stream, and calls made before the first ring arrives wait
// for it (within their ctx, Timeout and DialTimeout).
func New(cfg Config) (*Client, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	pool, err := connpool.New(connpool.Config{
		MaxActive:   cfg.ConnsPerServer,
		MaxIdle:     cfg.ConnsPerServer,
		DialTimeout: cfg.DialTimeout,
		BackoffBase: cfg.BackoffBase,
		BackoffCap:  cfg.BackoffCap,
		Dial:        cfg.Dial,
		Rand:        cfg.Rand,
		Now:         cfg.Now,
	})
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	c := &Client{cfg: cfg, pool: pool, ready: make(chan struct{}), start: cfg.Now(), servers: make(map[string]*server)}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	if len(cfg.Servers) > 0 {
		r, err := staticRing(cfg.Servers)
		if err != nil {
			pool.Close()
			return nil, err
		}
		c.install(r, 0)
	} else {
		if cfg.NearCacheBytes > 0 {
			c.edge = newEdge(c)
		}
		c.spawn(c.runWatch)
	}
	return c, nil
}

// staticRing places keys on a fixed server list: each server is a member
// named by its address.
func staticRing(addrs []string) (*ring.Ring, error) {
	members := make([]ring.Member, 0, len(addrs))
	for _, a := range addrs {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return nil, fmt.Errorf("client: server %q: %w", a, err)
		}
		members = append(members, ring.Member{Name: a, Addr: a})
	}
	r, err := ring.New(members, ring.Config{})
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	return r, nil
}

// install makes r the ring calls are routed by, atomically. Connections to
// servers that left are closed; new servers are warmed in bounded batches.
func (c *Client) install(r *ring.Ring, gen uint64) {
	c.mu.Lock()
	old := c.view.Load()
	v := &view{r: r, gen: gen, servers: make(map[string]*server, r.Len())}
	var fresh []string
	for _, m := range r.Members() {
		s := c.servers[m.Addr]
		if s == nil || s.name != m.Name {
			s = newServer(m.Name, m.Addr, &c.cfg)
			c.servers[m.Addr] = s
			fresh = append(fresh, m.Addr)
		}
		v.servers[m.Name] = s
	}
	var gone []string
	for addr, s := range c.servers {
		if v.servers[s.name] != s {
			delete(c.servers, addr)
			gone = append(gone, addr)
		}
	}
	c.view.Store(v)
	c.mu.Unlock()
	if old == nil {
		close(c.ready)
	}
	for _, addr := range gone {
		if !slices.Contains(fresh, addr) {
			c.pool.Forget(addr)
		}
	}
	if len(fresh) > 0 {
		c.spawn(func() { c.pool.Warm(c.ctx, fresh, c.cfg.DialBatch) })
	}
	if c.edge != nil {
		c.edge.reconcile(v)
	}
}

// Ring returns the ring the client routes by, or nil before the first one
// arrives in cluster mode.
func (c *Client) Ring() *ring.Ring {
	if v := c.view.Load(); v != nil {
		return v.r
	}
	return nil
}

// currentView returns the view to route by, waiting for the first ring in
// cluster mode.
func (c *Client) currentView(ctx context.Context) (*view, error) {
	if v := c.view.Load(); v != nil {
		return v, nil
	}
	if c.closed.Load() {
		return nil, ErrClosed
	}
	t := time.NewTimer(c.cfg.Timeout + c.cfg.DialTimeout)
	defer t.Stop()
	select {
	case <-c.ready:
		return c.view.Load(), nil
	case <-ctx.Done():
		return nil, fmt.Errorf("client: waiting for the first ring: %w", ctx.Err())
	case <-t.C:
		return nil, fmt.Errorf("%w: no ring from the seeds %v yet (%s)", ErrNoServers, c.cfg.Seeds, c.watchStats.lastErr())
	case <-c.ctx.Done():
		return nil, ErrClosed
	}
}

// Close closes every connection and stops the client's goroutines, waiting
// for them. Calls in flight fail; later calls return ErrClosed. Close may be
// called more than once.
func (c *Client) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	c.goMu.Lock()
	c.stopped = true
	c.goMu.Unlock()
	c.cancel()
	c.mu.Lock()
	if c.stream != nil {
		c.stream.Close()
	}
	c.mu.Unlock()
	c.pool.Close() // ends every connection's reader
	c.wg.Wait()
	return nil
}

// A server is one memcache address and its health: after FailureThreshold
// consecutive failures it is down until a jittered backoff ends, and then one
// call probes it.
type server struct {
	name, addr string
	sem        chan struct{} // one token per request in flight
	pipes      []pipe        // ConnsPerServer pipelined connections

	failures atomic.Int32 // consecutive failures; 0 on the fast path
	down     atomic.Bool

	mu        sync.Mutex // guards the fields below
	downUntil time.Time
	trips     int  // consecutive times marked down, for the backoff exponent
	probing   bool // a call is probing the down server
}

func newServer(name, addr string, cfg *Config) *server {
	return &server{name: name, addr: addr, sem: make(chan struct{}, cfg.MaxInFlightPerServer), pipes: make([]pipe, cfg.ConnsPerServer)}
}

// allow reports whether a call may go to s now.
func (s *server) allow(now time.Time) bool {
	if !s.down.Load() {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.down.Load() {
		return true
	}
	if s.probing || now.Before(s.downUntil) {
		return false
	}
	s.probing = true
	return true
}

// succeeded records a call that reached s.
func (s *server) succeeded() {
	if s.failures.Load() == 0 && !s.down.Load() {
		return
	}
	s.mu.Lock()
	s.failures.Store(0)
	s.down.Store(false)
	s.trips, s.probing = 0, false
	s.mu.Unlock()
}

// failed records a call that could not reach s and marks it down after
// threshold failures in a row, or again after a failed probe.
func (s *server) failed(now time.Time, cfg *Config) {
	n := s.failures.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.probing || (!s.down.Load() && int(n) >= cfg.FailureThreshold) {
		s.downUntil = now.Add(backoff(cfg.BackoffBase, cfg.BackoffCap, s.trips, cfg.Rand()))
		s.trips++
		s.probing = false
		s.down.Store(true)
	}
}

// backoff is full jitter: r × min(cap, base·2^attempt), r in [0, 1).
func backoff(base, cap time.Duration, attempt int, r float64) time.Duration {
	ceil := base
	for i := 0; i < attempt && ceil < cap; i++ {
		ceil *= 2
	}
	return time.Duration(min(max(r, 0), 1) * float64(min(ceil, cap)))
}

// account records a failed exchange with s, unless the caller's ctx ended
// (no fault of the server) or the pool merely reported its own backoff.
func (c *Client) account(ctx context.Context, s *server, err error) {
	if ctx.Err() != nil || errors.Is(err, connpool.ErrBackoff) || errors.Is(err, connpool.ErrPoolTimeout) {
		return
	}
	s.failed(c.cfg.Now(), &c.cfg)
}

// nodeError wraps a failure to reach s.
func nodeError(s *server, op string, err error) error {
	if errors.Is(err, ErrClosed) {
		return ErrClosed
	}
	return &NodeError{Node: s.name, Addr: s.addr, Op: op, Err: err}
}

// isNodeFailure reports whether err says the server could not be reached,
// as opposed to a reply (miss, not stored, error reply).
func isNodeFailure(err error) bool {
	var ne *NodeError
	return errors.As(err, &ne)
}

// osDeadline reports whether err is a socket deadline.
func osDeadline(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }
