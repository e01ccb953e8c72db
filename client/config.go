package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"time"

	"github.com/hotcache/hotcache/internal/connpool"
)

// The defaults the zero values of Config fields stand for.
const (
	DefaultTimeout          = time.Second
	DefaultDialTimeout      = time.Second
	DefaultConnsPerServer   = 2
	DefaultMaxInFlight      = 128
	DefaultMaxFanout        = 8
	DefaultDialBatch        = 8
	DefaultBackoffBase      = 100 * time.Millisecond
	DefaultBackoffCap       = 5 * time.Second
	DefaultFailureThreshold = 3
	DefaultHeartbeat        = time.Second
	DefaultNearCacheBytes   = 32 << 20
)

// Failover says how a read is answered when its key's owner cannot be
// reached.
type Failover int

const (
	// FailoverMiss answers the read as a miss: the error matches both
	// ErrCacheMiss and *NodeError, so cache-aside code falls through to its
	// source of truth and can still log the node. This is the default.
	FailoverMiss Failover = iota
	// FailoverNextOwner asks the key's next owner on the ring
	// (ring.Owners(key, 2)); if that fails too, the read is a miss as with
	// FailoverMiss. In cluster mode the next owner serves the key once the
	// cluster has dropped the failed node (before that it forwards, as any
	// node does).
	FailoverNextOwner
)

// Config configures a Client. Set exactly one of Seeds and Servers; every
// other field's zero value is a sensible default, given with the field.
type Config struct {
	// Seeds are memcache addresses (host:port) of cluster nodes: cluster
	// mode. The client opens a watch stream to one of them (any; on a break
	// it moves on to another seed or a member of the last ring, after a
	// jittered backoff) and routes by the ring it streams.
	Seeds []string
	// Servers is a fixed list of memcache addresses: static mode, for plain
	// memcached. Keys are placed on them by the same ring the cluster uses.
	Servers []string

	// Name identifies this client on watch streams (the edge name). Empty
	// means "go-<host>-<pid>-<random>".
	Name string
	// Timeout bounds how long a reply may take: a connection on which no
	// reply arrives for Timeout (at least Timeout/2 after the request or
	// the previous reply) is taken as dead, and every call waiting on it
	// fails with a *NodeError. It also bounds, with DialTimeout, the wait for
	// the first ring in cluster mode. A call's ctx may end its own wait
	// sooner. Zero means 1s.
	Timeout time.Duration
	// DialTimeout bounds a dial. Zero means 1s.
	DialTimeout time.Duration
	// ConnsPerServer is how many connections the client keeps to each
	// server. Requests are pipelined on them: concurrent calls share writes,
	// and replies come back in order. Zero means 2.
	ConnsPerServer int
	// MaxInFlightPerServer bounds the requests queued or awaiting a reply
	// per server. A call past it waits under its ctx, so a slow server turns
	// into waiting or errors, never into unbounded memory. Zero means 128.
	MaxInFlightPerServer int
	// GetFailover says how a read whose owner cannot be reached is answered.
	// The zero value is FailoverMiss.
	GetFailover Failover
	// MaxFanout bounds how many servers one GetMulti asks at once. Zero
	// means 8.
	MaxFanout int
	// DialBatch bounds how many servers are dialed at once when the client
	// warms connections to a new server list or ring. Zero means 8.
	DialBatch int
	// BackoffBase and BackoffCap shape the redial backoff, of connections
	// and of the watch stream: after the n-th consecutive failure (from 0)
	// the next attempt waits rand[0,1) × min(BackoffCap, BackoffBase·2ⁿ).
	// Zero means 100ms and 5s.
	BackoffBase, BackoffCap time.Duration
	// FailureThreshold is how many consecutive failed requests (timeouts,
	// broken connections, failed dials) mark a server down. A down server
	// fails calls at once until its backoff ends; then one call probes it.
	// Zero means 3.
	FailureThreshold int
	// Heartbeat is how often a watch stream is pinged; a stream silent for
	// three heartbeats plus Timeout is taken as broken. Replica streams also
	// report their replicas' hits every Heartbeat/10. Zero means 1s.
	Heartbeat time.Duration
	// NearCacheBytes bounds the near cache: the read replicas of hot keys
	// that nodes push to the client (cluster mode only; in static mode there
	// are none). A replica is accounted as its key, its value and 64 bytes of
	// overhead; a pushed replica that does not fit is refused, and reads of
	// its key go to the owner as usual. Zero means 32 MiB
	// (DefaultNearCacheBytes). Negative disables the near cache: the client
	// opens no replica streams and every read goes to the key's owner.
	NearCacheBytes int64

	// Dial opens connections. Nil means a net.Dialer on "tcp". It is a
	// seam for tests and custom transports; TLS, when set, wraps what it
	// returns.
	Dial func(ctx context.Context, addr string) (net.Conn, error)
	// TLS, if set, makes every connection speak TLS: data connections,
	// watch streams and replica streams alike. What Dial returns is wrapped
	// with tls.Client and its handshake completes within DialTimeout. Set
	// RootCAs to the cluster's CA and, when the servers require client
	// certificates, Certificates. An empty ServerName means the host of the
	// address dialed. Nil means plaintext.
	TLS *tls.Config
	// Username and Password, when Username is set, authenticate every new
	// connection (data connections, watch and replica streams) as
	// memcached's ASCII authentication does, before anything else is sent,
	// for servers started with -Y. Use them with TLS: the password is sent
	// as is.
	Username, Password string
	// Rand returns a number in [0, 1) for the backoff jitter; it must be
	// safe for concurrent use. Nil means math/rand/v2.Float64.
	Rand func() float64
	// Now tells the time for backoffs and stream stamps. Nil means time.Now.
	Now func() time.Time
	// Logger receives the client's rare log lines (ring changes, broken
	// streams). Nil means slog.Default().
	Logger *slog.Logger
}

func (c Config) withDefaults() (Config, error) {
	switch {
	case len(c.Seeds) == 0 && len(c.Servers) == 0:
		return c, fmt.Errorf("client: %w: set Config.Seeds or Config.Servers", ErrNoServers)
	case len(c.Seeds) > 0 && len(c.Servers) > 0:
		return c, errors.New("client: set only one of Config.Seeds and Config.Servers")
	case c.Timeout < 0 || c.DialTimeout < 0 || c.BackoffBase < 0 || c.BackoffCap < 0 || c.Heartbeat < 0:
		return c, errors.New("client: durations must not be negative")
	case c.ConnsPerServer < 0 || c.MaxInFlightPerServer < 0 || c.MaxFanout < 0 || c.DialBatch < 0 || c.FailureThreshold < 0:
		return c, errors.New("client: limits must not be negative")
	case c.GetFailover != FailoverMiss && c.GetFailover != FailoverNextOwner:
		return c, fmt.Errorf("client: unknown GetFailover %d", c.GetFailover)
	}
	c.Timeout = or(c.Timeout, DefaultTimeout)
	c.DialTimeout = or(c.DialTimeout, DefaultDialTimeout)
	c.ConnsPerServer = or(c.ConnsPerServer, DefaultConnsPerServer)
	c.MaxInFlightPerServer = or(c.MaxInFlightPerServer, DefaultMaxInFlight)
	c.MaxFanout = or(c.MaxFanout, DefaultMaxFanout)
	c.DialBatch = or(c.DialBatch, DefaultDialBatch)
	c.BackoffBase = or(c.BackoffBase, DefaultBackoffBase)
	c.BackoffCap = or(c.BackoffCap, max(DefaultBackoffCap, c.BackoffBase))
	if c.BackoffCap < c.BackoffBase {
		return c, errors.New("client: BackoffCap must not be below BackoffBase")
	}
	c.FailureThreshold = or(c.FailureThreshold, DefaultFailureThreshold)
	c.Heartbeat = or(c.Heartbeat, DefaultHeartbeat)
	if c.NearCacheBytes == 0 {
		c.NearCacheBytes = DefaultNearCacheBytes
	}
	if c.Dial == nil {
		d := &net.Dialer{}
		c.Dial = func(ctx context.Context, addr string) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) }
	}
	if c.TLS != nil {
		c.Dial = connpool.DialTLS(c.Dial, c.TLS)
	}
	if c.Username != "" {
		c.Dial = connpool.DialAuth(c.Dial, c.Username, c.Password)
	}
	if c.Rand == nil {
		c.Rand = rand.Float64
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Name == "" {
		c.Name = defaultName()
	}
	if !legalKey(c.Name) {
		return c, fmt.Errorf("client: Name %q must be 1-250 bytes without spaces or control characters", c.Name)
	}
	return c, nil
}

func or[T int | time.Duration](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

// defaultName is "go-<host>-<pid>-<random>", with the host name's odd bytes
// replaced so that it is a valid stream token.
func defaultName() string {
	host, _ := os.Hostname()
	host = strings.Map(func(r rune) rune {
		if r <= ' ' || r >= 0x7f {
			return '_'
		}
		return r
	}, host)
	if len(host) > 64 {
		host = host[:64]
	}
	return fmt.Sprintf("go-%s-%d-%04x", host, os.Getpid(), rand.Uint32()&0xffff)
}
