// Command cached is a cache node: with no flags, a single-node memcached
// replacement on :11211. Its flags mirror memcached's where they overlap.
package main

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"github.com/hotcache/hotcache/internal/cliflag"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/hotcache/hotcache/internal/tlsconf"
	"github.com/hotcache/hotcache/node"
	"github.com/hotcache/hotcache/protocol"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "cached:", err)
		os.Exit(1)
	}
}

// options are the parsed command line.
type options struct {
	port, listen string
	memoryMB     int
	maxConns     int
	maxItemSize  cliflag.ByteSize
	verbose      cliflag.Verbosity
	idleTimeout  time.Duration
	blockTimeout time.Duration
	drainTimeout time.Duration
	logFormat    string

	name, gossip, join, gossipKey, admin, advertise string

	tls      tlsconf.Files // -tls-cert, -tls-key, -tls-ca
	authFile string        // -Y
}

func parseFlags(args []string) (*options, error) {
	o := &options{maxItemSize: cliflag.ByteSize(1 << 20)}
	fs := flag.NewFlagSet("cached", flag.ContinueOnError)
	fs.StringVar(&o.port, "p", "11211", "TCP port to listen on")
	fs.StringVar(&o.listen, "l", "", "interface to listen on (default: all)")
	fs.IntVar(&o.memoryMB, "m", 64, "item memory in megabytes")
	fs.IntVar(&o.maxConns, "c", 1024, "max simultaneous connections")
	fs.Var(&o.maxItemSize, "I", "max item size, e.g. 1m, 512k (default 1m)")
	fs.Var(&o.verbose, "v", "verbose (repeat or use -vv for more)")
	fs.Var(cliflag.VerbosityAlias{V: &o.verbose, Level: 2}, "vv", "very verbose")
	fs.DurationVar(&o.idleTimeout, "idle-timeout", 0, "close connections idle this long (0: never)")
	fs.DurationVar(&o.blockTimeout, "block-timeout", time.Minute, "close a connection whose data block takes longer than this to arrive")
	fs.DurationVar(&o.drainTimeout, "drain-timeout", 4*time.Second, "on SIGINT/SIGTERM, how long open connections may finish")
	fs.StringVar(&o.logFormat, "log-format", "text", "log format: text or json")
	host, _ := os.Hostname()
	fs.StringVar(&o.name, "name", host, "member name: this node's identity on the ring")
	fs.StringVar(&o.gossip, "gossip", ":7946", "gossip (memberlist) bind address, TCP and UDP; empty: standalone, no cluster")
	fs.StringVar(&o.join, "join", "", "gossip addresses of seed nodes, comma-separated (a DNS name may resolve to several)")
	fs.StringVar(&o.gossipKey, "gossip-key", os.Getenv("CACHED_GOSSIP_KEY"), "base64 AES key (16, 24 or 32 bytes) encrypting gossip, or KEY,OLDKEY,... to also accept older keys while rotating; default $CACHED_GOSSIP_KEY")
	fs.StringVar(&o.admin, "admin", "127.0.0.1:9100", "admin HTTP address (/healthz /readyz /cluster /metrics, POST /drain); empty: none")
	fs.StringVar(&o.advertise, "advertise", "", "memcache address peers and clients use to reach this node (default: the gossip address's host with -p)")
	fs.StringVar(&o.tls.Cert, "tls-cert", "", "PEM certificate chain: serve memcache over TLS only (with -tls-key), and present it to peers when they require client certificates")
	fs.StringVar(&o.authFile, "Y", "", "memcached's ASCII authentication: a `file` of user:password lines; clients and peers must authenticate, and this node authenticates to its peers as the first user")
	fs.StringVar(&o.tls.Key, "tls-key", "", "PEM private key of -tls-cert")
	fs.StringVar(&o.tls.CA, "tls-ca", "", "PEM CA certificates: require client certificates signed by them (mutual TLS), and verify peers' certificates with them (needed for a cluster with its own CA)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if o.tls.Enabled() && (o.tls.Cert == "" || o.tls.Key == "") {
		return nil, errors.New("TLS needs -tls-cert and -tls-key (and -tls-ca for a cluster or for client certificates)")
	}
	return o, nil
}

func run(args []string) error {
	o, err := parseFlags(args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	logger := newLogger(o.logFormat, int(o.verbose))
	setMemoryLimit(o.memoryMB)
	keys, err := decodeKeys(o.gossipKey)
	if err != nil {
		return err
	}
	var key []byte
	var keyring [][]byte
	if len(keys) > 0 {
		key, keyring = keys[0], keys[1:]
	}
	serverTLS, peerTLS, err := tlsConfigs(o.tls)
	if err != nil {
		return err
	}
	auth, err := readAuthFile(o.authFile)
	if err != nil {
		return err
	}
	cfg := node.Config{
		TLS:           serverTLS,
		PeerTLS:       peerTLS,
		Addr:          net.JoinHostPort(o.listen, o.port),
		MemoryMB:      o.memoryMB,
		MaxItemSize:   int(o.maxItemSize),
		MaxConns:      o.maxConns,
		IdleTimeout:   o.idleTimeout,
		BlockTimeout:  o.blockTimeout,
		Verbosity:     int(o.verbose),
		Logger:        logger,
		Name:          o.name,
		GossipAddr:    o.gossip,
		Join:          cliflag.SplitList(o.join),
		GossipKey:     key,
		GossipKeyring: keyring,
		AdminAddr:     o.admin,
		AdvertiseAddr: o.advertise,
	}
	if auth != nil {
		cfg.Authenticate = auth.Check
		cfg.PeerUser, cfg.PeerPassword = auth.First()
	}
	n, err := node.New(cfg)
	if err != nil {
		return err
	}
	if err := n.Start(); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	select {
	case <-ctx.Done():
		logger.Info("shutting down", "drain_timeout", o.drainTimeout)
	case <-n.Drained(): // POST /drain on the admin port (cachectl drain)
		logger.Info("shutting down", "drain_timeout", o.drainTimeout, "reason", "drain requested")
	}
	sctx, cancel := context.WithTimeout(context.Background(), o.drainTimeout)
	defer cancel()
	if err := n.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

// tlsConfigs builds the node's server and peer TLS configurations from the
// -tls-* files, or nils without them. The peer side presents the node's
// own certificate and trusts -tls-ca (the system roots without it).
func tlsConfigs(f tlsconf.Files) (server, peer *tls.Config, err error) {
	if !f.Enabled() {
		return nil, nil, nil
	}
	if server, err = tlsconf.Server(f); err != nil {
		return nil, nil, err
	}
	if peer, err = tlsconf.Client(f); err != nil {
		return nil, nil, err
	}
	return server, peer, nil
}

// readAuthFile reads the -Y file, or returns nil without one.
func readAuthFile(name string) (*protocol.AuthFile, error) {
	if name == "" {
		return nil, nil
	}
	return protocol.LoadAuthFile(name)
}

// setMemoryLimit keeps the Go heap near what -m allows: items are charged
// with their overhead against -m, and the soft limit makes the collector
// work harder before the process grows past about 1.25x that plus the
// runtime's own needs. An explicit GOMEMLIMIT wins.
func setMemoryLimit(memoryMB int) {
	if os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	debug.SetMemoryLimit(int64(memoryMB)<<20*5/4 + 24<<20)
}

func newLogger(format string, verbose int) *slog.Logger {
	level := slog.LevelInfo
	if verbose > 0 {
		level = slog.LevelDebug
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(os.Stderr, opts)
	if format == "json" {
		h = slog.NewJSONHandler(os.Stderr, opts)
	}
	return slog.New(h)
}

// decodeKeys reads "KEY[,KEY...]": base64 gossip keys, the first sent
// with, every one accepted (for a rolling key rotation).
func decodeKeys(s string) ([][]byte, error) {
	var keys [][]byte
	for _, f := range cliflag.SplitList(s) {
		k, err := base64.StdEncoding.DecodeString(f)
		if err != nil {
			return nil, fmt.Errorf("gossip key: %w", err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}
