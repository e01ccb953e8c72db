package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hotcache/hotcache/protocol"
)

// A Node is one cache server: a store and the memcache protocol in front of
// it. New builds it, Start binds and serves, Shutdown drains and stops it.
type Node struct {
	cfg       Config
	store     *store
	srv       *protocol.Server
	started   time.Time
	verbosity atomic.Int32
	counters  counters

	mu       sync.Mutex
	ln       net.Listener
	serveErr chan error
	stopped  bool
}

// New validates cfg and builds a Node. It opens nothing; see Start.
func New(cfg Config) (*Node, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	n := &Node{cfg: cfg, started: cfg.Clock()}
	st, err := newStore(int64(cfg.MemoryMB)<<20, n.now)
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	n.store = st
	n.verbosity.Store(int32(cfg.Verbosity))
	n.srv = &protocol.Server{
		Handler:     n,
		MaxItemSize: cfg.MaxItemSize,
		MaxConns:    cfg.MaxConns,
		IdleTimeout: cfg.IdleTimeout,
		Logger:      cfg.Logger,
	}
	return n, nil
}

var _ protocol.Handler = (*Node)(nil)

func (n *Node) now() int64 { return n.cfg.Clock().Unix() }

// Start binds the memcache address and serves it in the background.
func (n *Node) Start() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ln != nil || n.stopped {
		return errors.New("node: already started")
	}
	ln, err := net.Listen("tcp", n.cfg.Addr)
	if err != nil {
		return fmt.Errorf("node: %w", err)
	}
	n.ln = ln
	n.serveErr = make(chan error, 1)
	go func() { n.serveErr <- n.srv.Serve(ln) }()
	n.cfg.Logger.Info("serving memcache", "addr", ln.Addr().String(), "memory_mb", n.cfg.MemoryMB, "max_item_size", n.cfg.MaxItemSize)
	return nil
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

// Shutdown stops accepting, lets open connections finish their current
// request, waits for every goroutine the Node started, and releases the
// store. When ctx ends first, connections are closed at once. It is safe to
// call more than once.
func (n *Node) Shutdown(ctx context.Context) error {
	n.mu.Lock()
	if n.stopped {
		n.mu.Unlock()
		return nil
	}
	n.stopped = true
	started := n.ln != nil
	n.mu.Unlock()
	err := n.srv.Shutdown(ctx)
	if started {
		if serr := <-n.serveErr; serr != nil && !errors.Is(serr, protocol.ErrServerClosed) && err == nil {
			err = serr
		}
	}
	n.store.close()
	return err
}
