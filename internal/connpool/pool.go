package connpool

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
)

// A Pool keeps connections to many addresses, a bounded set per address.
// Create one with New; it is safe for concurrent use.
type Pool struct {
	cfg    Config
	ctx    context.Context // cancelled by Close: stops the reaper, aborts dials
	cancel context.CancelFunc
	wg     sync.WaitGroup // the reaper

	mu     sync.Mutex // guards addrs and closed
	addrs  map[string]*addrPool
	closed bool
}

// AddrStats are one address's gauges and counters, for metrics.
type AddrStats struct {
	// Idle is the number of idle connections kept for reuse.
	Idle int
	// Active is the number of connections handed out by Get and not yet Put.
	Active int
	// Dialing is the number of dials in flight.
	Dialing int
	// InBackoff is whether Get now fails fast with ErrBackoff.
	InBackoff bool
	// Dials counts dial attempts, DialErrors the failed ones (dial or Hello).
	Dials, DialErrors uint64
	// HealthFailures counts idle connections that failed the "mn" check.
	HealthFailures uint64
	// Waits counts Gets that had to wait for a slot (MaxActive reached).
	Waits uint64
	// Backoffs counts Gets that failed fast because of backoff.
	Backoffs uint64
}

// New returns a Pool configured by cfg, or an error if cfg is invalid. It
// starts the goroutine that closes connections idle past cfg.IdleTimeout;
// Close stops it.
func New(cfg Config) (*Pool, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	p := &Pool{cfg: cfg, addrs: make(map[string]*addrPool)}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	if cfg.IdleTimeout > 0 {
		p.wg.Go(p.reapLoop)
	}
	return p, nil
}

// Get returns a connection to addr: the most recently used idle one (checked
// first if it was idle longer than HealthAfter), or a new one. When addr
// already has MaxActive connections open it waits for a Put until ctx ends,
// then fails with an error matching both ErrPoolTimeout and ctx's error.
// While addr is in redial backoff it fails at once with a *DialError matching
// ErrBackoff. After Close it fails with ErrClosed. Give the connection back
// with Put.
func (p *Pool) Get(ctx context.Context, addr string) (*Conn, error) {
	waited := false
	for {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("connpool: get %s: %w", addr, ctxErr(ctx))
		}
		a, err := p.addrPool(addr)
		if err != nil {
			return nil, err
		}
		a.mu.Lock()
		g := a.nextLocked(p.cfg.Now())
		a.mu.Unlock()
		switch g.kind {
		case grantIdle:
			if a.vet(ctx, g.c) {
				return g.c, nil
			}
		case grantDial:
			c, err := a.dial(ctx, g.gen)
			if !errors.Is(err, errForgotten) {
				return c, err
			}
		case grantWait:
			if !waited {
				waited = true
				a.waits.Add(1)
			}
			if err := a.wait(ctx, g.wait); err != nil {
				return nil, err
			}
		case grantFail:
			if !errors.Is(g.err, errForgotten) {
				return nil, g.err
			}
		}
	}
}

// addrPool returns addr's pool, creating it on first use.
func (p *Pool) addrPool(addr string) (*addrPool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, ErrClosed
	}
	a := p.addrs[addr]
	if a == nil {
		a = newAddrPool(p, addr)
		p.addrs[addr] = a
	}
	return a, nil
}

// Put gives back a connection from Get, with the error (or nil) that ended
// the caller's last request on it. If Reusable(err), the connection is clean
// (nothing left unread or unsent) and fewer than
// MaxIdle connections to its address are idle, it is kept for reuse (and
// handed to a waiting Get first); otherwise it is closed, which frees its
// slot. After an I/O failure (a timeout, a cut connection) it is closed with
// a TCP reset, so that a request the server has not received yet is never
// delivered when the network heals, long after the caller gave up on it.
// The caller must not use c afterwards. Put(nil, err) does nothing.
func (p *Pool) Put(c *Conn, err error) {
	if c == nil {
		return
	}
	keep := c.settle() && Reusable(err)
	c.abort = err != nil && ioFailure(err)
	c.a.put(c, keep)
}

// Forget closes every connection to addr, idle or in use (a request in flight
// on one fails), and drops its counters and backoff state: for a member that
// has left. A later Get(addr) starts afresh.
func (p *Pool) Forget(addr string) {
	p.mu.Lock()
	a := p.addrs[addr]
	delete(p.addrs, addr)
	p.mu.Unlock()
	if a != nil {
		a.close()
	}
}

// Close closes every connection, idle or in use, aborts dials in flight, wakes
// waiting Gets with ErrClosed, and waits for the pool's goroutine to exit.
// Later Gets fail with ErrClosed; later Puts close their connection. Close may
// be called more than once.
func (p *Pool) Close() {
	p.mu.Lock()
	addrs := p.addrs
	p.addrs, p.closed = nil, true
	p.mu.Unlock()
	p.cancel() // before closing the addresses: their waiters must see ErrClosed
	for _, a := range addrs {
		a.close()
	}
	p.wg.Wait()
}

// Warm opens a connection to each of addrs, at most batch dials at a time
// (batch <= 0 means DefaultWarmBatch), so that a process starting against a
// hundred servers does not open a hundred dials at once. It keeps each
// connection idle, and returns the joined errors of the addresses that could
// not be reached, after trying them all.
func (p *Pool) Warm(ctx context.Context, addrs []string, batch int) error {
	if batch <= 0 {
		batch = DefaultWarmBatch
	}
	var g errgroup.Group
	g.SetLimit(batch)
	errs := make([]error, len(addrs))
	for i, addr := range addrs {
		g.Go(func() error {
			c, err := p.Get(ctx, addr)
			errs[i] = err
			p.Put(c, nil)
			return nil
		})
	}
	g.Wait()
	return errors.Join(errs...)
}

// Stats returns the gauges and counters of every address the pool knows.
func (p *Pool) Stats() map[string]AddrStats {
	out := make(map[string]AddrStats)
	for _, a := range p.snapshot() {
		out[a.addr] = a.stats()
	}
	return out
}

// snapshot lists the address pools.
func (p *Pool) snapshot() []*addrPool {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*addrPool, 0, len(p.addrs))
	for _, a := range p.addrs {
		out = append(out, a)
	}
	return out
}

// reapLoop closes idle connections past IdleTimeout, checking twice per
// IdleTimeout, until Close.
func (p *Pool) reapLoop() {
	t := time.NewTicker(max(p.cfg.IdleTimeout/2, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-t.C:
			now := p.cfg.Now()
			for _, a := range p.snapshot() {
				a.reap(now, p.cfg.IdleTimeout)
			}
		}
	}
}
