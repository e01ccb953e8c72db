package connpool

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// An addrPool holds the connections and the dial state of one address.
type addrPool struct {
	p    *Pool
	addr string

	mu       sync.Mutex         // guards the fields below
	conns    map[*Conn]struct{} // every open connection, idle or in use
	idle     []*Conn            // oldest first; Get takes the newest
	dialing  int                // dials in flight; they hold slots too
	waiters  []chan struct{}    // Gets waiting for a slot, oldest first; each cap 1
	closed   bool               // set by Close and Forget
	failures int                // consecutive failed dials
	until    time.Time          // while failures > 0: no dial before this
	probing  bool               // while failures > 0: a dial is in flight
	lastErr  error              // why the last dial failed

	dials, dialErrors, healthFailures, waits, backoffs atomic.Uint64
}

func newAddrPool(p *Pool, addr string) *addrPool {
	return &addrPool{p: p, addr: addr, conns: make(map[*Conn]struct{})}
}

// A grant is what Get may do next.
type grant struct {
	kind grantKind
	c    *Conn         // grantIdle
	gen  int           // grantDial: failures when the dial began
	wait chan struct{} // grantWait
	err  error         // grantFail
}

type grantKind int

const (
	grantIdle grantKind = iota // use c
	grantDial                  // a slot is reserved: dial
	grantWait                  // every slot is taken: wait on wait
	grantFail                  // fail with err
)

// nextLocked decides the next step of a Get: reuse the newest idle
// connection, fail fast in backoff, dial into a free slot, or wait.
// a.mu must be held.
func (a *addrPool) nextLocked(now time.Time) grant {
	if a.closed {
		return grant{kind: grantFail, err: a.closedErr()}
	}
	if n := len(a.idle); n > 0 {
		c := a.idle[n-1]
		a.idle[n-1] = nil
		a.idle = a.idle[:n-1]
		c.returned = false
		return grant{kind: grantIdle, c: c}
	}
	if a.failures > 0 && (a.probing || now.Before(a.until)) {
		a.backoffs.Add(1)
		if a.openLocked() < a.p.cfg.MaxActive {
			a.signalLocked() // a woken waiter must pass on the slot it cannot use
		}
		return grant{kind: grantFail, err: &DialError{Addr: a.addr, Err: a.lastErr, Until: a.until, backoff: true}}
	}
	if a.openLocked() < a.p.cfg.MaxActive {
		a.dialing++
		a.probing = a.failures > 0
		a.dials.Add(1)
		return grant{kind: grantDial, gen: a.failures}
	}
	ch := make(chan struct{}, 1)
	a.waiters = append(a.waiters, ch)
	return grant{kind: grantWait, wait: ch}
}

// openLocked counts the connections that hold a slot. a.mu must be held.
func (a *addrPool) openLocked() int { return len(a.conns) + a.dialing }

// signalLocked wakes the oldest waiting Get, if any. a.mu must be held.
func (a *addrPool) signalLocked() {
	if len(a.waiters) > 0 {
		a.waiters[0] <- struct{}{}
		a.waiters = a.waiters[1:]
	}
}

func (a *addrPool) closedErr() error {
	if a.p.ctx.Err() != nil {
		return ErrClosed
	}
	return errForgotten
}

// wait blocks until a slot may be free or ctx ends.
func (a *addrPool) wait(ctx context.Context, ch chan struct{}) error {
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
	}
	a.mu.Lock()
	if i := indexOf(a.waiters, ch); i >= 0 {
		a.waiters = append(a.waiters[:i], a.waiters[i+1:]...)
	} else {
		a.signalLocked() // woken as ctx ended: hand the wake-up on
	}
	a.mu.Unlock()
	return fmt.Errorf("%w to %s: %w", ErrPoolTimeout, a.addr, ctxErr(ctx))
}

func indexOf(ws []chan struct{}, ch chan struct{}) int {
	for i, w := range ws {
		if w == ch {
			return i
		}
	}
	return -1
}

// dial opens a connection into the slot that nextLocked reserved.
func (a *addrPool) dial(ctx context.Context, gen int) (*Conn, error) {
	dctx, cancel := context.WithTimeout(ctx, a.p.cfg.DialTimeout)
	defer cancel()
	defer context.AfterFunc(a.p.ctx, cancel)() // Close aborts dials
	nc, err := a.p.cfg.Dial(dctx, a.addr)
	var c *Conn
	if err == nil {
		c = newConn(nc, a)
		if err = c.hello(dctx, a.p.cfg.Hello); err != nil {
			nc.Close()
			c = nil
		}
	}
	return a.dialed(ctx, gen, c, err)
}

// dialed settles the slot of a finished dial.
func (a *addrPool) dialed(ctx context.Context, gen int, c *Conn, err error) (*Conn, error) {
	now := a.p.cfg.Now()
	a.mu.Lock()
	if err == nil && !a.closed {
		a.dialing--
		a.probing = false
		a.conns[c] = struct{}{}
		a.failures, a.lastErr = 0, nil
		a.mu.Unlock()
		return c, nil
	}
	if err == nil { // closed while dialing
		a.mu.Unlock()
		c.nc.Close()
		a.mu.Lock()
		err = a.closedErr()
	} else if a.p.ctx.Err() != nil {
		err = ErrClosed
	} else {
		a.dialErrors.Add(1)
		a.failedLocked(ctx, gen, now, err)
		err = &DialError{Addr: a.addr, Err: err}
	}
	a.dialing--
	a.probing = false
	a.signalLocked()
	a.mu.Unlock()
	return nil, err
}

// failedLocked starts or extends the backoff after a failed dial. Only the
// address's own failure counts (not the caller's cancelled ctx), and only
// once for dials that were in flight together. a.mu must be held.
func (a *addrPool) failedLocked(ctx context.Context, gen int, now time.Time, err error) {
	if ctx.Err() != nil || callerDeadlinePassed(ctx) || a.failures != gen {
		return
	}
	cfg := &a.p.cfg
	a.until = now.Add(backoff(cfg.BackoffBase, cfg.BackoffCap, a.failures, cfg.Rand()))
	a.failures++
	a.lastErr = err
}

// vet decides whether an idle connection just taken may be handed out:
// not idle past IdleTimeout, and past HealthAfter it must pass the check.
// A connection that fails is closed.
func (a *addrPool) vet(ctx context.Context, c *Conn) bool {
	cfg := &a.p.cfg
	idle := cfg.Now().Sub(c.idleSince)
	if cfg.IdleTimeout > 0 && idle > cfg.IdleTimeout {
		a.release(c)
		return false
	}
	if cfg.HealthAfter < 0 || idle <= cfg.HealthAfter {
		return true
	}
	if err := c.check(ctx, cfg.HealthTimeout); err != nil {
		if ctx.Err() == nil { // the caller's ctx ending is no fault of the server
			a.healthFailures.Add(1)
		}
		a.release(c)
		return false
	}
	return true
}

// put takes back a connection from its holder: to the idle list when keep
// allows and there is room, closed otherwise.
func (a *addrPool) put(c *Conn, keep bool) {
	now := a.p.cfg.Now()
	a.mu.Lock()
	if c.returned {
		a.mu.Unlock()
		return
	}
	c.returned = true
	if keep && !a.closed && len(a.idle) < a.p.cfg.MaxIdle {
		c.idleSince = now
		a.idle = append(a.idle, c)
		a.signalLocked()
		a.mu.Unlock()
		return
	}
	a.mu.Unlock()
	a.release(c)
}

// release closes connections that are not in the idle list, and only then
// frees their slots: a Get woken by a free slot must never make one more
// connection open than MaxActive.
func (a *addrPool) release(cs ...*Conn) {
	for _, c := range cs {
		if c.abort {
			abortClose(c.nc)
		} else {
			c.nc.Close()
		}
	}
	a.mu.Lock()
	for _, c := range cs {
		delete(a.conns, c)
		a.signalLocked()
	}
	a.mu.Unlock()
}

// reap closes the connections idle for longer than timeout at now.
func (a *addrPool) reap(now time.Time, timeout time.Duration) {
	var old []*Conn
	a.mu.Lock()
	kept := a.idle[:0]
	for _, c := range a.idle {
		if now.Sub(c.idleSince) > timeout {
			old = append(old, c)
		} else {
			kept = append(kept, c)
		}
	}
	clear(a.idle[len(kept):])
	a.idle = kept
	a.mu.Unlock()
	if len(old) > 0 {
		a.release(old...)
	}
}

// close closes every connection, idle or in use, wakes every waiting Get and
// refuses further use.
func (a *addrPool) close() {
	a.mu.Lock()
	a.closed = true
	conns := a.conns
	a.conns, a.idle = make(map[*Conn]struct{}), nil
	for len(a.waiters) > 0 {
		a.signalLocked()
	}
	a.mu.Unlock()
	for c := range conns {
		c.nc.Close()
	}
}

// stats reads the address's gauges and counters.
func (a *addrPool) stats() AddrStats {
	now := a.p.cfg.Now()
	a.mu.Lock()
	s := AddrStats{Idle: len(a.idle), Active: len(a.conns) - len(a.idle), Dialing: a.dialing}
	s.InBackoff = a.failures > 0 && now.Before(a.until)
	a.mu.Unlock()
	s.Dials, s.DialErrors = a.dials.Load(), a.dialErrors.Load()
	s.HealthFailures, s.Waits, s.Backoffs = a.healthFailures.Load(), a.waits.Load(), a.backoffs.Load()
	return s
}

// ctxErr is ctx's error, with its cause when one was given.
func ctxErr(ctx context.Context) error {
	err := ctx.Err()
	if cause := context.Cause(ctx); cause != err {
		return fmt.Errorf("%w (%w)", err, cause)
	}
	return err
}

// callerDeadlinePassed reports whether ctx's own deadline has come. A dial
// cut short by it fails with an i/o timeout a moment before ctx.Err turns
// non-nil; that is the caller's hurry, not the address's failure. Socket
// deadlines run on the real clock, so this does too.
func callerDeadlinePassed(ctx context.Context) bool {
	dl, ok := ctx.Deadline()
	return ok && !time.Now().Before(dl)
}
