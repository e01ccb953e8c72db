package node

import (
	"crypto/tls"
	"errors"
	"fmt"
	"github.com/hotcache/hotcache/hotspot"
	"log/slog"
	"os"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/hotcache/hotcache/protocol"
)

// Config configures a Node. The zero value is a working single node on
// :11211 with memcached's defaults.
type Config struct {
	// Addr is the memcache listen address. Empty means ":11211".
	Addr string
	// MemoryMB bounds the items' memory, in MiB (memcached's -m). Zero means 64.
	MemoryMB int
	// MaxItemSize is the largest item, in bytes, as memcached's -I counts it.
	// Zero means 1 MiB.
	MaxItemSize int
	// MaxConns is the most client connections served at once (-c). Zero means 1024.
	MaxConns int
	// BlockTimeout bounds how long a storage command's data block may take
	// to arrive (protocol.Server.BlockTimeout). Zero means 1 minute.
	BlockTimeout time.Duration
	// IdleTimeout closes client connections idle this long. Zero means never.
	IdleTimeout time.Duration
	// TLS, if set, makes the memcache listener speak TLS only (as
	// memcached's -Z): it is the server side configuration, with
	// Certificates. To require client certificates (mutual TLS), set
	// ClientCAs and ClientAuth to tls.RequireAndVerifyClientCert. Nil means
	// plaintext.
	TLS *tls.Config
	// PeerTLS, if set, is the client side TLS configuration for the
	// connections this node opens to its peers to forward requests: RootCAs
	// to verify the peers' certificates and, when they require one, a
	// client certificate. In a cluster whose nodes set TLS, every node must
	// set PeerTLS. An empty ServerName means the peer's host as advertised.
	PeerTLS *tls.Config
	// Authenticate, if set, turns on memcached's ASCII authentication on
	// the memcache port (protocol.Server.Authenticate; cached's -Y): a
	// connection must authenticate before anything else, peers included.
	Authenticate func(user, pass []byte) bool
	// PeerUser and PeerPassword, when PeerUser is set, authenticate every
	// connection this node opens to a peer. In a cluster whose nodes set
	// Authenticate, every node must set them.
	PeerUser, PeerPassword string
	// Verbosity is the initial log verbosity (-v); 0 logs warnings and errors.
	Verbosity int
	// Logger receives the node's logs. Nil means slog.Default().
	Logger *slog.Logger
	// Clock returns the current time; tests inject a fake one. Nil means time.Now.
	Clock func() time.Time

	// Name is the node's member name, its identity on the ring. Empty means
	// the host name.
	Name string
	// GossipAddr is memberlist's bind address (TCP and UDP). Empty means no
	// cluster: a standalone node that owns every key. cmd/cached defaults it
	// to ":7946".
	GossipAddr string
	// Join lists seed gossip addresses (host:port; a DNS name may resolve to
	// several). The node joins them at start and keeps re-joining them every
	// RejoinInterval, so that the sides of a healed partition merge.
	Join []string
	// GossipKey is memberlist's AES key (16, 24 or 32 bytes). Empty means
	// gossip in the clear.
	GossipKey []byte
	// GossipKeyring holds further keys this node accepts gossip under,
	// besides GossipKey (which it sends with). It lets a key be rotated one
	// node at a time: docs/security.md has the three rolling steps.
	GossipKeyring [][]byte
	// AdvertiseAddr is the memcache address other nodes and clients use to
	// reach this node. Empty means Addr's port on the address memberlist
	// advertises.
	AdvertiseAddr string
	// AdminAddr is the admin HTTP listen address (/healthz, /readyz,
	// /cluster, /metrics). Empty means no admin server.
	AdminAddr string
	// RejoinInterval is how often the seeds are re-joined. Zero means 10s.
	RejoinInterval time.Duration
	// DeadNodeReclaimTime is how long a dead member's name stays reserved
	// before a node restarted under that name on a new address may take it.
	// Zero means 5s.
	DeadNodeReclaimTime time.Duration
	// LeasePeriod is the lease of a hot key's replica at the edge, counted
	// from the edge's latest stamp (edges renew it every heartbeat), and how
	// long a node that gains a partition waits before acknowledging writes
	// to it, so that replicas the previous owner pushed have expired. An
	// edge that does not acknowledge an invalidation holds its key's writes
	// back until this long after its last stamp. Zero means 2s.
	LeasePeriod time.Duration
	// WriteWait bounds how long a write waits for its key to become
	// writable (a lease or handoff after an ownership change, edges
	// dropping their replicas); a write that would wait longer is refused
	// with SERVER_ERROR ... retry. Keep it below every sender's timeout
	// (the Go client's and the proxy's are 1s, a forward's ForwardTimeout):
	// a write its sender gave up on must not be applied after the sender's
	// retry, as two writes held back together and released together could
	// be. Zero means 250ms.
	WriteWait time.Duration
	// ForwardTimeout bounds a request forwarded to a key's owner. Zero means 2s.
	ForwardTimeout time.Duration
	// ForwardFanout bounds how many owners one multi-key get asks at once.
	// Zero means 8.
	ForwardFanout int
	// HotKeys tunes the hot-key analyzer; the zero value is hotspot's
	// default (docs/hotspot.md).
	HotKeys hotspot.Config
	// GossipTuning, if set, adjusts memberlist's configuration after the node
	// has filled it in; test clusters use it to relax failure detection.
	GossipTuning func(*memberlist.Config)
}

// Version is what the version command and stats report.
const Version = "1.6.18-hotcache-0.1.0"

func (c Config) withDefaults() Config {
	if c.Addr == "" {
		c.Addr = ":11211"
	}
	if c.MemoryMB == 0 {
		c.MemoryMB = 64
	}
	if c.MaxItemSize == 0 {
		c.MaxItemSize = protocol.DefaultMaxItemSize
	}
	if c.MaxConns == 0 {
		c.MaxConns = protocol.DefaultMaxConns
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.Name == "" {
		c.Name, _ = os.Hostname()
	}
	if c.RejoinInterval == 0 {
		c.RejoinInterval = 10 * time.Second
	}
	if c.DeadNodeReclaimTime == 0 {
		c.DeadNodeReclaimTime = 5 * time.Second
	}
	if c.LeasePeriod == 0 {
		c.LeasePeriod = 2 * time.Second
	}
	if c.ForwardTimeout == 0 {
		c.ForwardTimeout = 2 * time.Second
	}
	if c.WriteWait == 0 {
		c.WriteWait = 250 * time.Millisecond
	}
	if c.ForwardFanout == 0 {
		c.ForwardFanout = 8
	}
	return c
}

func (c Config) validate() error {
	switch {
	case c.MemoryMB < 0:
		return errors.New("node: MemoryMB must not be negative")
	case c.MaxItemSize < 0:
		return errors.New("node: MaxItemSize must not be negative")
	case c.MaxItemSize != 0 && c.MaxItemSize < 1024:
		return fmt.Errorf("node: MaxItemSize %d is below memcached's minimum of 1024 bytes", c.MaxItemSize)
	case c.MaxItemSize > 1<<30:
		return fmt.Errorf("node: MaxItemSize %d is above memcached's maximum of 1 GiB", c.MaxItemSize)
	case c.MaxConns < 0:
		return errors.New("node: MaxConns must not be negative")
	case c.IdleTimeout < 0:
		return errors.New("node: IdleTimeout must not be negative")
	case c.LeasePeriod < 0 || c.ForwardTimeout < 0 || c.RejoinInterval < 0 || c.DeadNodeReclaimTime < 0 || c.WriteWait < 0:
		return errors.New("node: durations must not be negative")
	case c.ForwardFanout < 0:
		return errors.New("node: ForwardFanout must not be negative")
	case len(c.Join) > 0 && c.GossipAddr == "":
		return errors.New("node: Join needs a GossipAddr")
	case c.TLS != nil && len(c.TLS.Certificates) == 0 && c.TLS.GetCertificate == nil && c.TLS.GetConfigForClient == nil:
		return errors.New("node: TLS needs a certificate")
	}
	switch len(c.GossipKey) {
	case 0, 16, 24, 32:
	default:
		return fmt.Errorf("node: GossipKey must be 16, 24 or 32 bytes, not %d", len(c.GossipKey))
	}
	for _, k := range c.GossipKeyring {
		if len(k) != 16 && len(k) != 24 && len(k) != 32 {
			return fmt.Errorf("node: every GossipKeyring key must be 16, 24 or 32 bytes, not %d", len(k))
		}
	}
	if len(c.GossipKeyring) > 0 && len(c.GossipKey) == 0 {
		return errors.New("node: GossipKeyring needs a GossipKey to send with")
	}
	if c.MaxItemSize > c.MemoryMB<<20 && c.MemoryMB > 0 {
		return fmt.Errorf("node: MaxItemSize %d exceeds the memory limit of %d MiB", c.MaxItemSize, c.MemoryMB)
	}
	return nil
}
